"""Tests for audiozoo.audio.spectral: STFT, mel filter banks, log-mel and Kaldi fbank."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.audio import spectral
from audiozoo.audio.spectral import kaldi_fbank, log_mel_spectrogram, mel_filterbank, stft

F32_EPS = float(np.finfo(np.float32).eps)


def _test_signal(n, rate=16000, seed=0):
    """A tone plus a little noise: energy in every band, a clear peak in some."""
    t = np.arange(n) / rate
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise).astype(np.float32)


def _sine(n, freq=1234.5, rate=16000):
    return (0.9 * np.sin(2 * np.pi * freq * np.arange(n) / rate + 0.3)).astype(np.float32)


# ----------------------------------------------------------------------------- STFT


def test_stft_matches_numpy_definition():
    x = _test_signal(1000)
    n_fft, hop, win = 256, 100, 200
    ours = np.asarray(stft(x, n_fft, hop, win))
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    window = np.zeros(n_fft)
    window[28:228] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic, centred
    frames = [padded[i * hop:i * hop + n_fft] * window for i in range(1 + len(x) // hop)]
    expected = np.fft.rfft(np.array(frames), axis=-1)
    assert ours.shape == (1 + 1000 // 100, n_fft // 2 + 1) == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_stft_not_centred_and_batched():
    x = np.stack([_test_signal(700, seed=s) for s in range(6)]).reshape(2, 3, 700)
    out = stft(x, 128, 64, center=False)
    assert out.shape == (2, 3, 1 + (700 - 128) // 64, 65)
    np.testing.assert_allclose(out[1, 2], stft(x[1, 2], 128, 64, center=False), atol=1e-6)


def test_stft_bad_window_length():
    with pytest.raises(ValueError, match="win_length"):
        stft(np.zeros(512, np.float32), 128, 64, win_length=256)


# ----------------------------------------------------------------------------- mel scale


def test_mel_scale_hand_checked_values():
    # Slaney: linear 200/3 Hz per mel below 1 kHz, 27 mels per factor 6.4 above.
    np.testing.assert_allclose(spectral.hz_to_mel(1000.0), 15.0, rtol=1e-12)
    np.testing.assert_allclose(spectral.hz_to_mel(500.0), 7.5, rtol=1e-12)
    np.testing.assert_allclose(spectral.hz_to_mel(6400.0), 42.0, rtol=1e-12)
    np.testing.assert_allclose(spectral.hz_to_mel(700.0, "htk"), 2595 * np.log10(2), rtol=1e-12)
    f = np.array([0.0, 100.0, 999.0, 1000.0, 4321.0, 16000.0])
    for scale in ("slaney", "htk"):
        np.testing.assert_allclose(spectral.mel_to_hz(spectral.hz_to_mel(f, scale), scale), f,
                                   rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(spectral.kaldi_mel_scale(700.0), 1127 * np.log(2), rtol=1e-12)


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_mel_triangles_peak_at_centres_with_unit_height(scale):
    sr, n_fft, n_mels, f_min, f_max = 16000, 8192, 20, 100.0, 7000.0
    bank = mel_filterbank(sr, n_fft, n_mels, f_min, f_max, scale=scale, norm=None)
    assert bank.shape == (n_fft // 2 + 1, n_mels) and bank.dtype == np.float32
    bin_hz = sr / n_fft
    edges = spectral.mel_to_hz(np.linspace(spectral.hz_to_mel(f_min, scale),
                                           spectral.hz_to_mel(f_max, scale), n_mels + 2), scale)
    peaks = np.argmax(bank, axis=0) * bin_hz
    assert np.all(np.abs(peaks - edges[1:-1]) <= bin_hz / 2 + 1e-9)
    # Height 1 at the centre: the nearest bin is within half a bin of it.
    min_width = np.diff(edges).min()
    assert np.all(bank.max(axis=0) <= 1.0 + 1e-6)
    assert np.all(bank.max(axis=0) >= 1.0 - (bin_hz / 2) / min_width)
    # Zero outside [left edge, right edge].
    freqs = np.arange(n_fft // 2 + 1) * bin_hz
    outside = (freqs[:, None] <= edges[None, :-2]) | (freqs[:, None] >= edges[None, 2:])
    assert np.all(bank[outside] == 0)


def test_slaney_norm_gives_unit_area():
    sr, n_fft = 16000, 16384
    bank = mel_filterbank(sr, n_fft, 32, 50.0, 7500.0, scale="slaney", norm="slaney")
    area = bank.sum(axis=0) * sr / n_fft  # Riemann sum over Hz
    np.testing.assert_allclose(area, 1.0, rtol=2e-3)


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None])
def test_mel_filterbank_matches_librosa(htk, norm):
    librosa = pytest.importorskip("librosa")
    for sr, n_fft, n_mels, f_min, f_max in [(32000, 1024, 64, 50.0, 14000.0),
                                            (16000, 512, 40, 0.0, None)]:
        ours = mel_filterbank(sr, n_fft, n_mels, f_min, f_max,
                              scale="htk" if htk else "slaney", norm=norm)
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max,
                                  htk=htk, norm=norm).T
        np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_mel_filterbank_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        mel_filterbank(16000, 512, 40, scale="bark")
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(16000, 512, 40, f_max=9000.0)


# ----------------------------------------------------------------------------- log-mel

LOGMEL = dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, f_min=50.0, f_max=8000.0)


@pytest.mark.parametrize("top_db", [None, 40.0])
def test_log_mel_matches_librosa_power_to_db(top_db):
    librosa = pytest.importorskip("librosa")
    x = _test_signal(8000)
    ours = np.asarray(log_mel_spectrogram(x, top_db=top_db, **LOGMEL))
    mel = librosa.feature.melspectrogram(
        y=x.astype(np.float64), sr=16000, n_fft=512, hop_length=160, n_mels=64, fmin=50.0,
        fmax=8000.0, pad_mode="reflect", power=2.0)
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=top_db).T
    assert ours.shape == ref.shape == (1 + 8000 // 160, 64)
    assert np.abs(ours - ref).max() <= 1e-3


def test_log_mel_ln_and_db_agree_and_batch():
    x = np.stack([_test_signal(4000, seed=s) for s in range(3)])
    db = log_mel_spectrogram(x, **LOGMEL)
    ln = log_mel_spectrogram(x, log="ln", **LOGMEL)
    assert db.shape == ln.shape == (3, 26, 64)
    np.testing.assert_allclose(ln, db * np.log(10) / 10, atol=1e-4)  # mel >> amin here
    np.testing.assert_allclose(db[2], log_mel_spectrogram(x[2], **LOGMEL), atol=1e-4)
    silent = log_mel_spectrogram(np.zeros(4000, np.float32), **LOGMEL)
    np.testing.assert_allclose(silent, -100.0)  # 10 log10(amin)


def test_log_mel_jit_and_grad():
    f = jax.jit(lambda x: log_mel_spectrogram(x, **LOGMEL).mean())
    x = jnp.asarray(_test_signal(2000))
    g = jax.grad(f)(x)
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))


# ----------------------------------------------------------------------------- Kaldi fbank


def kaldi_fbank_reference(x, sr=16000, bins=23, frame_ms=25.0, shift_ms=10.0, window="povey",
                          preemph=0.97, low=20.0, high=0.0, snip_edges=True, use_energy=False,
                          energy_floor=1.0, use_power=True):
    """Kaldi compute-fbank-feats written out plainly from its definition, in float64."""
    x = np.asarray(x, np.float64)
    shift, size = int(sr * shift_ms * 0.001), int(sr * frame_ms * 0.001)
    nfft = 2 ** math.ceil(math.log2(size))
    if snip_edges:
        frames = [x[s:s + size] for s in range(0, len(x) - size + 1, shift)]
    else:  # centred on f * shift + shift / 2, mirrored at the edges (edge sample repeated)
        frames = []
        for f in range((len(x) + shift // 2) // shift):
            start = f * shift + shift // 2 - size // 2
            idx = []
            for j in range(start, start + size):
                while j < 0 or j >= len(x):
                    j = -j - 1 if j < 0 else 2 * len(x) - 1 - j
                idx.append(j)
            frames.append(x[idx])
    high = high + sr / 2 if high <= 0 else high
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    mel_lo, delta = mel(low), (mel(high) - mel(low)) / (bins + 1)
    windows = {
        "hanning": lambda a: 0.5 - 0.5 * math.cos(a),
        "hamming": lambda a: 0.54 - 0.46 * math.cos(a),
        "povey": lambda a: (0.5 - 0.5 * math.cos(a)) ** 0.85,
        "rectangular": lambda a: 1.0,
    }
    out = []
    for frame in frames:
        frame = frame - frame.mean()
        energy = math.log(max(float(np.sum(frame**2)), F32_EPS))
        if energy_floor > 0:
            energy = max(energy, math.log(energy_floor))
        buf = np.zeros(nfft)
        for j in range(size):
            emphasised = frame[j] - preemph * frame[max(j - 1, 0)]
            buf[j] = emphasised * windows[window](2 * math.pi * j / (size - 1))
        spec = np.abs(np.fft.rfft(buf)) ** (2 if use_power else 1)
        row = [energy] if use_energy else []
        for b in range(bins):
            left, centre, right = (mel_lo + (b + i) * delta for i in range(3))
            acc = 0.0
            for k in range(nfft // 2):  # the Nyquist bin gets no weight in Kaldi
                m = mel(k * sr / nfft)
                if left < m < right:
                    acc += spec[k] * ((m - left) / (centre - left) if m <= centre
                                      else (right - m) / (right - centre))
            row.append(math.log(max(acc, F32_EPS)))
        out.append(row)
    return np.array(out)


KALDI_CASES = [
    ({}, {}),
    (dict(num_mel_bins=128, window="hanning"), dict(bins=128, window="hanning")),
    (dict(window="hamming", snip_edges=False, use_energy=True, low_freq=60.0, high_freq=-400.0),
     dict(window="hamming", snip_edges=False, use_energy=True, low=60.0, high=-400.0)),
    (dict(window="rectangular", use_power=False, preemphasis=0.0, num_mel_bins=40),
     dict(window="rectangular", use_power=False, preemph=0.0, bins=40)),
]


@pytest.mark.parametrize("ours_kw,ref_kw", KALDI_CASES)
def test_kaldi_fbank_float64_matches_definition(ours_kw, ref_kw):
    with jax.enable_x64(True):
        for x in (_sine(3000), np.random.default_rng(1).uniform(-1, 1, 3000)):
            ours = np.asarray(kaldi_fbank(x.astype(np.float64), **ours_kw))
            ref = kaldi_fbank_reference(x, **ref_kw)
            assert ours.dtype == np.float64 and ours.shape == ref.shape
            assert np.abs(ours - ref).max() <= 1e-6


@pytest.mark.parametrize("ours_kw,ref_kw", KALDI_CASES[:3])
def test_kaldi_fbank_float32_matches_definition(ours_kw, ref_kw):
    noise = np.random.default_rng(2).uniform(-1, 1, 3000).astype(np.float32)
    ours = np.asarray(kaldi_fbank(noise, **ours_kw))
    assert ours.dtype == np.float32
    assert np.abs(ours - kaldi_fbank_reference(noise, **ref_kw)).max() <= 1e-3
    # A pure tone's far bands sit ~100 dB under its peak, where float32 FFT rounding noise
    # dominates; within 18 nats (78 dB) of each frame's loudest band float32 holds 1e-3.
    sine = _sine(3000)
    ours = np.asarray(kaldi_fbank(sine, **ours_kw))
    ref = kaldi_fbank_reference(sine, **ref_kw)
    bands = slice(1, None) if ref_kw.get("use_energy") else slice(None)
    loud = ref[:, bands] > ref[:, bands].max(axis=1, keepdims=True) - 18.0
    assert np.abs(ours - ref)[:, bands][loud].max() <= 1e-3


@pytest.mark.parametrize("n", [400, 559, 560, 16000, 16123])
def test_kaldi_frame_counts(n):
    x = np.random.default_rng(0).uniform(-1, 1, n).astype(np.float32)
    assert kaldi_fbank(x, num_mel_bins=128).shape == (1 + (n - 400) // 160, 128)
    assert kaldi_fbank(x, snip_edges=False).shape == ((n + 80) // 160, 23)


def test_kaldi_fbank_batched_jit_and_errors():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 1200)).astype(np.float32)
    f = jax.jit(lambda w: kaldi_fbank(w, num_mel_bins=24, window="hanning"))
    out = f(x)
    assert out.shape == (2, 3, 1 + (1200 - 400) // 160, 24)
    np.testing.assert_allclose(out[1, 0], kaldi_fbank(x[1, 0], num_mel_bins=24, window="hanning"),
                               atol=1e-5)
    with pytest.raises(ValueError, match="shorter than one 400-sample frame"):
        kaldi_fbank(x[..., :399])
    with pytest.raises(ValueError, match="window"):
        kaldi_fbank(x, window="hann")
    with pytest.raises(ValueError, match="high_freq"):
        kaldi_fbank(x, high_freq=9000.0)


def test_kaldi_dither_needs_key_and_is_deterministic():
    x = np.random.default_rng(0).uniform(-0.1, 0.1, 1000).astype(np.float32)
    with pytest.raises(ValueError, match="rng"):
        kaldi_fbank(x, dither=1.0)
    a = kaldi_fbank(x, dither=1e-3, rng=jax.random.key(0))
    b = kaldi_fbank(x, dither=1e-3, rng=jax.random.key(0))
    c = kaldi_fbank(x, dither=1e-3, rng=jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a, kaldi_fbank(x), atol=0.1)  # dither is tiny next to the signal


def test_kaldi_silence_is_floored_at_float32_eps():
    out = kaldi_fbank(np.zeros(800, np.float32), use_energy=True)
    np.testing.assert_allclose(out[:, 1:], math.log(F32_EPS), rtol=1e-6)
    np.testing.assert_allclose(out[:, 0], 0.0)  # log energy floored at log(energy_floor = 1)


def test_kaldi_fbank_matches_torchaudio():
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    import torch
    x = _test_signal(8000)
    ref = kaldi.fbank(torch.from_numpy(x)[None], htk_compat=True, sample_frequency=16000,
                      use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0,
                      frame_shift=10).numpy()
    ours = np.asarray(kaldi_fbank(x, num_mel_bins=128, window="hanning"))
    assert np.abs(ours - ref).max() <= 1e-3
