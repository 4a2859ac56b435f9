"""The mel-conditioned WaveNet vocoder: feature alignment, causality, fast = full pass,
copy synthesis through the CLI and `audiozoo.load`, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

import audiozoo as az
from audiozoo import generation
from audiozoo.cli import main
from audiozoo.config import ConfigError, load_config
from audiozoo.tasks import build_task

CONFIG = "configs/wavenet_vocoder_tiny.py"
RATE, HOP = 16000, 128


def tiny(**model):
    config = load_config(CONFIG)
    config.model.update(dict(num_layers=4, num_stacks=1, residual_channels=8, gate_channels=16,
                             skip_channels=8, **model))
    config.data.segment_length = 8 * HOP
    return config


def tone(seconds=0.25, freq=220.0, rate=RATE):
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) * np.exp(-3 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny vocoder trained 12 steps on the built-in notes (samples included)."""
    run = tmp_path_factory.mktemp("vocoder") / "run"
    args = ["train", "--config", CONFIG, "--workdir", str(run), "--config.train.num_steps=12",
            "--config.train.eval_every=0", "--config.train.checkpoint_every=12",
            "--config.train.log_every=4", "--config.task.num_samples=1",
            "--config.task.sample_seconds=0.02", "--config.train.tensorboard=False"]
    assert main(args) == 0
    return run


def test_shifting_the_audio_by_one_hop_shifts_the_features_by_one_frame():
    task = build_task(tiny())
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 40 * HOP).astype(np.float32)
    features = np.asarray(task.features(audio[None]))[0]
    shifted = np.asarray(task.features(audio[None, HOP:]))[0]
    assert features.shape == (40, 40) and shifted.shape == (39, 40)
    # Away from the edges (the STFT's reflect padding), frame f + 1 of the audio is frame f
    # of the audio one hop later.
    np.testing.assert_allclose(shifted[4:-4], features[5:-4], atol=2e-4)
    assert task.features(audio[None, :HOP * 3 + 1]).shape == (1, 4, 40)  # whole hops, padded
    # Shorter than half an STFT window: zero-padded first, still one frame per started hop.
    short = task.features(audio[None, :50])
    assert short.shape == (1, 1, 40) and np.all(np.isfinite(short))


def test_the_vocoder_is_causal_in_the_audio_and_sees_the_conditioning():
    task = build_task(tiny())
    net = task.model
    audio = jnp.asarray(tone(seconds=16 * HOP / RATE))[None]
    codes, features = task.quantize(audio), task.features(audio)
    variables = task.init_variables(jax.random.key(0), {"audio": audio})
    logits = net.apply(variables, codes, local_cond=features)
    later = codes.at[:, 1000:].set(0)
    np.testing.assert_array_equal(net.apply(variables, later, local_cond=features)[:, :1000],
                                  logits[:, :1000])
    louder = features.at[:, 10:].add(1.0)  # frames from sample 1280 on
    moved = net.apply(variables, codes, local_cond=louder)
    assert float(jnp.max(jnp.abs(moved[:, 1400:] - logits[:, 1400:]))) > 1e-3


def test_teacher_forced_fast_vocoding_equals_the_full_pass():
    task = build_task(tiny())
    net = task.model
    audio = jnp.asarray(tone(seconds=6 * HOP / RATE))[None]
    codes, features = task.quantize(audio), task.features(audio)
    variables = task.init_variables(jax.random.key(1), {"audio": audio})
    full = net.apply(variables, codes, local_cond=features)
    stepped = generation.teacher_force(net, variables, codes, local_cond=features)
    assert float(jnp.max(jnp.abs(stepped - full))) <= 1e-4


def test_vocode_feeds_each_frame_to_the_samples_it_conditions():
    """Argmax vocoding: every sample is the full pass's argmax given the samples before it."""
    task = build_task(tiny())
    audio = tone(seconds=3 * HOP / RATE)[None]
    variables = task.init_variables(jax.random.key(2), {"audio": jnp.asarray(audio)})
    out = task.copy_synthesis(variables["params"], audio, jax.random.key(0), method="argmax")
    assert out.shape == audio.shape and out[0, 0] == 0.0
    codes = task.quantize(jnp.asarray(out))
    full = task.model.apply(variables, codes[:, :-1], local_cond=task.features(audio))
    np.testing.assert_array_equal(jnp.argmax(full, -1)[:, 1:], codes[:, 2:])


@pytest.mark.parametrize("change, message", [
    (dict(local_channels=32), "model.local_channels=32 must equal frontend.n_mels=40"),
    (dict(upsample_scales=(4, 4, 4)), "= 64 must equal frontend.hop_length=128"),
    (dict(local_channels=0), "'vocoder' task conditions on log-mel frames"),
])
def test_config_mismatches_name_the_keys(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_task(tiny(**change))


def test_a_wavenet_task_with_local_channels_points_to_the_vocoder():
    config = load_config("configs/wavenet_tiny.py")
    config.model.update(local_channels=8, upsample_scales=(4,))
    with pytest.raises(ConfigError, match="the 'vocoder' task"):
        build_task(config)


@pytest.mark.integration
def test_copy_synthesis_from_the_cli_keeps_each_input_length(workdir, tmp_path, capsys):
    assert sorted(p.name for p in (workdir / "samples").iterdir()) == [
        "step0000012_0_original.wav", "step0000012_0_vocoded.wav"]
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, tone(0.05), RATE)
    sf.write(b, tone(0.03, 330.0), RATE)
    out = tmp_path / "out.wav"
    assert main(["vocode", str(a), str(b), "--workdir", str(workdir), "--out", str(out)]) == 0
    lengths = [len(sf.read(tmp_path / f"out_{i}.wav")[0]) for i in range(2)]
    assert lengths == [800, 480]
    assert "wrote" in capsys.readouterr().out
    # The same clips through audiozoo.load, with the same seed, are the same samples.
    run = az.load(workdir)
    clips = run.vocode([sf.read(path, dtype="float32")[0] for path in (a, b)])
    np.testing.assert_allclose(clips[0], sf.read(tmp_path / "out_0.wav", dtype="float32")[0],
                               atol=1 / 32768)
    # Features made elsewhere: the model's own, saved to .npy.
    np.save(tmp_path / "a.npy", np.asarray(run.task.features(tone(0.05)[None]))[0])
    assert main(["vocode", "--mel", str(tmp_path / "a.npy"), "--workdir", str(workdir),
                 "--out", str(tmp_path / "m.wav"), "--mel-hop", "128"]) == 0
    assert len(sf.read(tmp_path / "m.wav")[0]) == 7 * HOP


@pytest.mark.parametrize("features, message", [
    (np.zeros((10, 39), np.float32), r"holds float32\[10, 39\]; this vocoder takes log-mel frames \[frames, 40\]"),
    (np.full((10, 40), np.nan, np.float32), "NaN or infinite"),
    (np.full((10, 40), -47.0, np.float32), "mean -47 and std 0, not what normalised"),
    (np.zeros((10, 40), np.int32), r"holds int32\[10, 40\]"),
])
@pytest.mark.integration
def test_bad_mel_input_is_refused_with_what_is_expected(workdir, tmp_path, capsys, features, message):
    path = tmp_path / "f.npy"
    np.save(path, features)
    assert main(["vocode", "--mel", str(path), "--workdir", str(workdir), "--out", str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err
    assert "125 frames/s (hop 128 at 16000 Hz)" in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.integration
def test_vocode_flags_are_checked(workdir, tmp_path, capsys):
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((4, 40), np.float32))
    a = tmp_path / "a.wav"
    sf.write(a, tone(0.02), RATE)
    out = ["--workdir", str(workdir), "--out", str(tmp_path / "o.wav")]
    assert main(["vocode", str(a), "--mel", str(path), *out]) == 2
    assert main(["vocode", "--mel", str(path), "--mel-hop", "256", *out]) == 2
    assert "frames are 128 samples apart" in capsys.readouterr().err
    assert main(["generate", "--workdir", str(workdir), "--seconds", "0.1", "--out", str(tmp_path / "g.wav")]) == 2
    assert "its verbs are: `audiozoo vocode`, `audiozoo evaluate`" in capsys.readouterr().err


@pytest.mark.integration
def test_evaluate_scores_copy_synthesis_against_griffin_lim(workdir, tmp_path, capsys):
    held = tmp_path / "held" / "piano"
    held.mkdir(parents=True)
    sf.write(held / "a.wav", tone(0.15), RATE)
    sf.write(held / "b.wav", tone(0.04, 440.0), RATE)
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "--workdir", str(workdir), "--data", str(tmp_path / "held"),
                 "--audio-dir", str(tmp_path / "audio"), "--report", str(report_path),
                 "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "griffin_lim" in out and "wavenet" in out
    report = __import__("json").loads(report_path.read_text())
    assert report["clips"] == 2 and [r["name"] for r in report["per_clip"]] == ["piano/a.wav", "piano/b.wav"]
    for method in ("wavenet", "griffin_lim"):
        scores = [r[method]["log_mel_distance_db"] for r in report["per_clip"]]
        assert report["mean"][method]["log_mel_distance_db"] == pytest.approx(np.mean(scores))
    # Griffin-Lim from the clip's own frames is close to it; an untrained vocoder is not.
    mean = {method: report["mean"][method]["log_mel_distance_db"] for method in ("wavenet", "griffin_lim")}
    assert mean["griffin_lim"] < 12.0 < mean["wavenet"]
    # b is too short for the finer frames and is left out of their mean.
    fine = [r["griffin_lim"]["fine_log_mel_distance_db"] for r in report["per_clip"]]
    assert 0 < fine[0] < 12.0 and fine[1] is None  # NaN, written as null
    assert report["mean"]["griffin_lim"]["fine_log_mel_distance_db"] == pytest.approx(fine[0])
    assert len(sf.read(tmp_path / "audio" / "piano_a_griffin_lim.wav")[0]) == 2400
    assert len(sf.read(tmp_path / "audio" / "piano_b_wavenet.wav")[0]) == 640
