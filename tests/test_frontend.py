"""Tests for audiozoo.audio.frontend (Frontend, default configs) and audiozoo.audio.stats."""

import json
import warnings

import jax
import ml_collections
import numpy as np
import pytest

from audiozoo.audio import FeatureStats, Frontend, default_frontend_config, kaldi_fbank
from audiozoo.audio import log_mel_spectrogram


def _audio(batch=2, samples=4000, seed=0):
    t = np.arange(samples) / 16000
    noise = np.random.default_rng(seed).standard_normal((batch, samples))
    return (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * noise + 0.01).astype(np.float32)


def test_default_configs_build_and_shapes():
    x = _audio()
    np.testing.assert_array_equal(Frontend.from_config(default_frontend_config("waveform"))(x), x)
    logmel = Frontend.from_config(default_frontend_config("logmel"))
    assert logmel(x).shape == (2, 1 + 4000 // 160, 64) == logmel.output_shape(4000, batch=2)
    fbank = Frontend.from_config(default_frontend_config("fbank"))
    assert fbank(x).shape == (2, 1 + (4000 - 400) // 160, 128) == fbank.output_shape(4000, batch=2)
    assert (logmel.num_bins, fbank.num_bins) == (64, 128)


def test_logmel_normalisation_is_x_minus_mean_over_std():
    cfg = default_frontend_config("logmel")
    cfg.update(mean=-20.0, std=10.0, n_mels=32, mel_scale="htk", log="ln", f_max=0.0)
    out = Frontend.from_config(cfg)(_audio())
    raw = log_mel_spectrogram(_audio(), sample_rate=16000, n_fft=512, hop_length=160, n_mels=32,
                              f_min=50.0, f_max=None, scale="htk", log="ln")
    np.testing.assert_allclose(out, (raw + 20.0) / 10.0, atol=1e-5)


def test_fbank_is_ast_normalised_kaldi_fbank():
    cfg = default_frontend_config("fbank")
    assert (cfg.mean, cfg.std) == (-4.2677393, 4.5689974)
    x = _audio()
    out = Frontend.from_config(cfg)(x)
    centred = x - x.mean(axis=1, keepdims=True)
    raw = kaldi_fbank(centred, num_mel_bins=128, window="hanning", frame_shift_ms=10.0)
    np.testing.assert_allclose(out, (raw - cfg.mean) / (2 * cfg.std), atol=1e-5)


def test_fbank_matches_hugging_face_ast_feature_extractor():
    transformers = pytest.importorskip("transformers")
    x = _audio(batch=1, samples=6000)[0]
    cfg = default_frontend_config("fbank")
    cfg.num_frames = 48  # 36 real frames, then zero padding before normalisation (as AST)
    with jax.enable_x64(True):  # compare definitions, not float32 rounding
        ours = np.asarray(Frontend.from_config(cfg)(x[None].astype(np.float64)))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its 128-bin bank has empty low bands at 512 points
        extractor = transformers.ASTFeatureExtractor(max_length=48)
        ref = extractor(x, sampling_rate=16000, return_tensors="np")["input_values"][0]
    assert ours.shape == ref.shape == (48, 128)
    # Without torchaudio HF computes in float64 (measured 1e-7 apart); with it, HF runs
    # torchaudio in float32, whose rounding in quiet bands reaches ~1e-4 after normalising.
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_num_frames_crops_and_pads():
    cfg = default_frontend_config("fbank")
    cfg.update(num_frames=10, mean=0.0, std=1.0)  # normalisation off, for fbank too
    x = _audio()
    short = Frontend.from_config(cfg)(x)
    full = kaldi_fbank(x - x.mean(axis=1, keepdims=True), num_mel_bins=128, window="hanning")
    np.testing.assert_allclose(short, full[:, :10], atol=1e-5)
    cfg.update(num_frames=30, mean=-4.0, std=2.0)
    front = Frontend.from_config(cfg)
    padded = front.unnormalised(x)
    np.testing.assert_allclose(front(x), (padded + 4.0) / 4.0, atol=1e-6)
    assert padded.shape == (2, 30, 128)
    np.testing.assert_array_equal(padded[:, full.shape[1]:], 0.0)


def test_frontend_is_hashable_static_jit_argument():
    front = Frontend.from_config(default_frontend_config("logmel"))
    same = Frontend.from_config(default_frontend_config("logmel"))
    assert hash(front) == hash(same) and front == same

    @jax.jit
    def features(x):
        return front(x)

    f = jax.jit(lambda fe, x: fe(x), static_argnums=0)
    np.testing.assert_allclose(f(front, _audio()), features(_audio()), atol=1e-5)


def test_from_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="valid kinds: waveform, logmel, fbank"):
        default_frontend_config("mfcc")
    with pytest.raises(ValueError, match="valid kinds"):
        Frontend.from_config({"kind": "cqt"})
    with pytest.raises(ValueError, match="unknown frontend config keys \\['nmels'\\]"):
        Frontend.from_config({"kind": "logmel", "nmels": 40})
    with pytest.raises(ValueError, match="Kaldi window"):
        Frontend.from_config({"kind": "fbank", "window": "hann"})
    with pytest.raises(ValueError, match="mean=0.0 and std=1.0"):
        Frontend.from_config({"kind": "waveform", "mean": 1.0})
    with pytest.raises(ValueError, match="std"):
        Frontend.from_config({"kind": "logmel", "std": 0.0})
    # a partial section takes the kind's defaults
    front = Frontend.from_config(ml_collections.ConfigDict({"kind": "fbank", "num_mel_bins": 64}))
    assert front.window == "hanning" and front.num_mel_bins == 64 and front.std == 4.5689974


# ----------------------------------------------------------------------------- FeatureStats


def test_stats_in_chunks_equal_numpy_over_everything(tmp_path):
    rng = np.random.default_rng(0)
    chunks = [rng.normal(-4.0, 3.0, (n, 7, 5)).astype(np.float32) for n in (3, 1, 8, 4)]
    everything = np.concatenate(chunks).astype(np.float64)
    stats = FeatureStats()
    for c in chunks[:2]:
        stats.update(c)
    other = FeatureStats().update(chunks[2]).update(jax.numpy.asarray(chunks[3]))
    stats.merge(other)
    assert stats.count == everything.size
    np.testing.assert_allclose(stats.mean, everything.mean(), rtol=1e-12)
    np.testing.assert_allclose(stats.std, everything.std(), rtol=1e-10)
    path = tmp_path / "stats.json"
    stats.save(path)
    assert json.loads(path.read_text())["mean"] == pytest.approx(everything.mean())
    loaded = FeatureStats.load(path)
    assert (loaded.count, loaded.mean, loaded.std) == (stats.count, stats.mean, stats.std)
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]  # no temp file left


def test_per_bin_stats_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(6, 9, 4)) * np.arange(1, 5) + np.arange(4)
    stats = FeatureStats(per_bin=True).update(data[:2]).update(data[2:])
    flat = data.reshape(-1, 4)
    np.testing.assert_allclose(stats.mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, flat.std(axis=0), rtol=1e-10)
    stats.save(tmp_path / "s.json")
    np.testing.assert_array_equal(FeatureStats.load(tmp_path / "s.json").std, stats.std)
    with pytest.raises(ValueError, match="3 bins"):
        stats.update(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="empty"):
        FeatureStats().mean
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats().update(np.array([1.0, np.nan]))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        FeatureStats.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        FeatureStats.load(tmp_path / "missing.json")
