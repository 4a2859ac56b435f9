"""Tests for spectral inversion (audiozoo.audio.griffin_lim, spectral.inverse_stft) and the
vocoder-evaluation metrics (audiozoo.audio.spectral_distance).

The librosa comparisons skip when librosa (a `parity` extra, not a dependency) is missing.
Tolerances are a few times what was measured (librosa 0.11, jax 0.10, float32 CPU); the
measured values are next to each bound.
"""

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.audio import griffin_lim as gl
from audiozoo.audio import spectral
from audiozoo.audio.frontend import Frontend
from audiozoo.audio.griffin_lim import griffin_lim, mel_to_audio, mel_to_linear
from audiozoo.audio.spectral_distance import log_mel_distance, spectral_convergence

RATE = 16000
N_FFT, HOP = 512, 160  # the default Frontend's; 160 does not divide 512


def _tone(n=8000, f0=220.0, noise=0.0, seed=0):
    """Eight harmonics with 20 ms fades (no clicks), optionally over white noise."""
    t = np.arange(n) / RATE
    x = sum(0.3 / k * np.sin(2 * np.pi * f0 * k * t + k) for k in range(1, 9))
    x = x * np.minimum(1.0, t / 0.02) * np.minimum(1.0, (t[-1] - t) / 0.02)
    x = x + noise * np.random.default_rng(seed).standard_normal(n)
    return x.astype(np.float32)


def _noise(n=8000, seed=1):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


# ----------------------------------------------------------------------------- inverse STFT


@pytest.mark.parametrize("hop,length,pad_mode", [(160, 8000, "reflect"), (128, 8000, "constant"),
                                                 (100, 7999, "reflect")])
def test_inverse_stft_round_trips(hop, length, pad_mode):
    x = _tone(length, noise=0.01)
    spec = spectral.stft(x, N_FFT, hop, pad_mode=pad_mode)
    y = np.asarray(spectral.inverse_stft(spec, N_FFT, hop, length=length))
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1e-6)  # measured 1.5e-7


def test_inverse_stft_default_length_batch_and_win_length():
    x = np.stack([_tone(8000), _noise(8000)])
    spec = spectral.stft(x, N_FFT, HOP, win_length=400)
    frames = spec.shape[-2]
    y = np.asarray(spectral.inverse_stft(spec, N_FFT, HOP, win_length=400))
    assert y.shape == (2, HOP * (frames - 1))  # librosa's default length when centred
    np.testing.assert_allclose(y, x[:, :y.shape[-1]], atol=1e-6)
    longer = np.asarray(spectral.inverse_stft(spec, N_FFT, HOP, win_length=400,
                                              length=frames * HOP))
    np.testing.assert_array_equal(longer[:, :y.shape[-1]], y)
    with pytest.raises(ValueError, match="n_fft // 2 \\+ 1"):
        spectral.inverse_stft(spec[..., :-1], N_FFT, HOP)


def test_inverse_stft_matches_librosa():
    librosa = pytest.importorskip("librosa")
    spec = np.asarray(spectral.stft(_tone(8000, noise=0.01), N_FFT, HOP))
    rng = np.random.default_rng(0)
    spec = spec * np.exp(1j * rng.uniform(0, 2 * np.pi, spec.shape))  # inconsistent phases
    spec = spec.astype(np.complex64)
    for length in (None, 7777, spec.shape[0] * HOP, spec.shape[0] * HOP + 1000):
        ours = np.asarray(spectral.inverse_stft(spec, N_FFT, HOP, length=length))
        ref = librosa.istft(spec.T, hop_length=HOP, n_fft=N_FFT, length=length)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=2e-6)  # measured 1.2e-7


# ----------------------------------------------------------------------------- Griffin-Lim


# (n_iter, momentum, pad_mode, rtol): relative L2 difference from librosa.griffinlim, both in
# float32. Measured: 2.4e-7 (1 iteration), 1.6e-4 (momentum 0), 6.2e-4 / 1.1e-4 (60 fast
# iterations). librosa's own float32 result differs from its float64 one by 3e-3 at 60
# iterations, so what is left is float32 rounding amplified by the momentum.
@pytest.mark.parametrize("n_iter,momentum,pad_mode,rtol", [
    (1, 0.99, "constant", 2e-6),
    (60, 0.0, "constant", 1e-3),
    (60, 0.99, "constant", 3e-3),
    (60, 0.99, "reflect", 3e-3),
])
def test_griffin_lim_matches_librosa(n_iter, momentum, pad_mode, rtol):
    librosa = pytest.importorskip("librosa")
    magnitude = np.abs(np.asarray(spectral.stft(_tone(8000, noise=0.01), N_FFT, HOP)))
    ours = np.asarray(griffin_lim(magnitude, N_FFT, HOP, n_iter, momentum, pad_mode=pad_mode))
    ref = librosa.griffinlim(magnitude.T, n_iter=n_iter, hop_length=HOP, n_fft=N_FFT,
                             window="hann", center=True, momentum=momentum, init=None,
                             pad_mode=pad_mode)
    assert ours.shape == ref.shape
    assert _rel(ours, ref) < rtol


def test_griffin_lim_converges_batches_and_lengths():
    x = np.stack([_tone(8000), _tone(8000, f0=330.0, noise=0.01)])
    magnitude = np.abs(np.asarray(spectral.stft(x, N_FFT, HOP)))
    frames = magnitude.shape[-2]

    def inconsistency(y):  # how far |stft(y)| is from the target magnitude, per example
        return np.asarray([_rel(np.abs(spectral.stft(yi, N_FFT, HOP)), m)
                           for yi, m in zip(y, magnitude)])

    zero_phase = np.asarray(griffin_lim(magnitude, N_FFT, HOP, n_iter=0))
    fast = np.asarray(griffin_lim(magnitude, N_FFT, HOP))
    assert np.all(inconsistency(fast) < inconsistency(zero_phase) / 4)  # 0.06 vs 0.87
    np.testing.assert_allclose(np.asarray(griffin_lim(magnitude[1], N_FFT, HOP)), fast[1],
                               atol=1e-5)
    longer = np.asarray(griffin_lim(magnitude, N_FFT, HOP, length=frames * HOP))
    assert longer.shape == (2, frames * HOP)
    np.testing.assert_array_equal(longer[:, :fast.shape[-1]], fast)


def test_griffin_lim_rejects_bad_arguments():
    magnitude = np.ones((10, N_FFT // 2 + 1), np.float32)
    with pytest.raises(ValueError, match="n_fft // 2 \\+ 1"):
        griffin_lim(magnitude, 2 * N_FFT, HOP)
    with pytest.raises(ValueError, match="momentum"):
        griffin_lim(magnitude, N_FFT, HOP, momentum=-0.5)
    with pytest.raises(ValueError, match="n_iter"):
        griffin_lim(magnitude, N_FFT, HOP, n_iter=-1)


# ----------------------------------------------------------------------------- mel -> linear


def _mel_power(x, frontend=Frontend()):
    """The mel spectrogram a logmel frontend takes the log of, [frames, n_mels]."""
    magnitude = np.abs(np.asarray(spectral.stft(x, frontend.n_fft, frontend.hop_length)))
    return (magnitude ** gl._logmel_power(frontend) @ gl.logmel_basis(frontend)).astype(
        np.float32)


def _db_error(linear_power, mel, basis):
    """Mean |dB| by which linear_power misses `mel` once projected on the bands."""
    def db(m):
        return 10 * np.log10(np.maximum(m, 1e-10))
    return float(np.mean(np.abs(db(linear_power @ basis) - db(mel))))


def test_mel_to_linear_without_iterations_is_librosas_answer():
    librosa = pytest.importorskip("librosa")
    mel = _mel_power(_tone(8000, noise=0.01))
    basis = gl.logmel_basis(Frontend())
    ref = librosa.feature.inverse.mel_to_stft(mel.T, sr=RATE, n_fft=N_FFT, power=2.0,
                                              fmin=50.0, fmax=8000.0).T
    # Same starting point (the clipped pseudo-inverse), where librosa's L-BFGS-B stops on
    # this signal: its absolute gradient tolerance is met at once (measured 6.5e-5).
    assert _rel(mel_to_linear(mel, basis, n_iter=0), ref) < 1e-3
    # That start reproduces the mel bands to 3.7 dB on average, the converged one to 0.01.
    assert _db_error(ref**2, mel, basis) > 2.0
    assert _db_error(np.asarray(mel_to_linear(mel, basis)) ** 2, mel, basis) < 0.1


def test_mel_to_linear_matches_converged_librosa_nnls():
    librosa = pytest.importorskip("librosa")
    mel = _mel_power(_tone(2400, noise=0.01))  # 16 frames: L-BFGS-B takes ~1 s on them
    basis = gl.logmel_basis(Frontend())
    # librosa's solver run (nearly) to convergence. The NNLS minimisers are not unique (64
    # bands, 257 bins), so two solvers from the same start agree only approximately:
    # measured 4.4% in magnitude, while both reproduce the mel bands to 1.4e-6 (relative).
    power = librosa.util.nnls(basis.T, mel.T, pgtol=1e-10, factr=1e4, maxiter=2000).T
    ours = np.asarray(mel_to_linear(mel, basis, power=1.0))
    assert _rel(ours @ basis, mel) < 1e-4 and _rel(power @ basis, mel) < 1e-4
    assert _rel(np.sqrt(ours), np.sqrt(power)) < 0.1


def test_mel_to_linear_is_non_negative_and_leaves_uncovered_bins_at_zero():
    frontend = Frontend(f_min=300.0, f_max=6000.0)
    basis = gl.logmel_basis(frontend)
    x = np.stack([_tone(4000, noise=0.01), _noise(4000)])
    magnitude = np.asarray(mel_to_linear(_mel_power(x, frontend), basis, n_iter=200))
    assert magnitude.shape == (2, 1 + 4000 // HOP, N_FFT // 2 + 1)
    assert np.all(magnitude >= 0)
    uncovered = basis.sum(axis=1) == 0  # below 300 Hz and above 6 kHz
    assert uncovered.sum() > 10 and np.all(magnitude[..., uncovered] == 0)
    with pytest.raises(ValueError, match="basis"):
        mel_to_linear(np.ones((3, 10)), basis)


# ----------------------------------------------------------------------------- log-mel -> audio

# Mel bands of |X| rather than |X|^2, where the Frontend has that option.
_MAGNITUDE_FRONTENDS = ([Frontend(power=1.0)]
                        if "power" in {f.name for f in dataclasses.fields(Frontend)} else [])


@pytest.mark.parametrize("frontend", [
    Frontend(), Frontend(mean=-30.0, std=20.0), Frontend(log="ln"),
    Frontend(mel_scale="htk", mel_norm="none", f_min=0.0, f_max=0.0, n_mels=40),
    *_MAGNITUDE_FRONTENDS,
], ids=["db", "normalised", "ln", "htk"] + ["magnitude"] * len(_MAGNITUDE_FRONTENDS))
def test_undo_log_recovers_the_mel_power(frontend):
    # Also checks that logmel_basis is the front end's filter bank.
    x = _tone(8000, noise=0.01)
    feats = np.asarray(frontend(x))
    mel = gl._undo_log(feats * frontend.std + frontend.mean, frontend.log)
    np.testing.assert_allclose(mel, _mel_power(x, frontend), rtol=2e-4, atol=1e-9)


@pytest.mark.parametrize("frontend", [Frontend(), *_MAGNITUDE_FRONTENDS],
                         ids=["power"] + ["magnitude"] * len(_MAGNITUDE_FRONTENDS))
def test_mel_to_audio_of_a_tone_is_close_to_it(frontend):
    x = _tone(8000, noise=0.003)
    feats = frontend(x)
    y = np.asarray(mel_to_audio(feats, frontend))
    assert y.dtype == np.float32 and y.shape == (feats.shape[0] * HOP,)  # 51 frames: 8160
    # Measured 1.0 dB for Griffin-Lim, 21 dB for white noise of a similar level (mel bands
    # of |X|: 0.52 and 10.7 dB, half of each, as the dB of |X| are half those of |X|^2).
    distance = float(log_mel_distance(x, y, frontend))
    assert distance < 3.0
    assert float(log_mel_distance(x, _noise(), frontend)) > 5 * distance


def test_mel_to_audio_undoes_the_normalisation_and_batches():
    plain, normalised = Frontend(), Frontend(mean=-30.0, std=20.0)
    x = np.stack([_tone(8000, noise=0.003), _tone(8000, f0=330.0, noise=0.003)])
    y = np.asarray(mel_to_audio(normalised(x), normalised))
    assert y.shape == (2, 51 * HOP)
    single = np.asarray(mel_to_audio(plain(x[0]), plain))
    # Equal as spectra, not sample by sample: the rounding of (x - mean) / std (6e-6 dB)
    # moves the NNLS solution along its flat directions (8e-4) and Griffin-Lim's phases
    # amplify it further (samples differ by up to 0.45, as do the phases of a sum of
    # harmonics that sound alike). Measured: 0.29 dB apart, 0.99 and 1.01 dB from x.
    assert float(log_mel_distance(y[0], single, plain)) < 1.0
    assert float(log_mel_distance(x[0], y[0], plain)) < 3.0
    assert float(log_mel_distance(x[0], single, plain)) < 3.0
    with pytest.raises(ValueError, match="logmel"):
        mel_to_audio(np.zeros((5, 128)), Frontend(kind="fbank"))
    with pytest.raises(ValueError, match="64"):
        mel_to_audio(np.zeros((5, 40)), plain)


def test_logmel_constants_are_the_spectrogram_defaults():
    # mel_to_audio assumes the Frontend computes |X|^2 and floors at amin.
    assert gl._LOGMEL_DEFAULTS["power"] == 2.0 and gl._LOGMEL_DEFAULTS["amin"] == 1e-10


# ----------------------------------------------------------------------------- metrics


def test_metrics_are_zero_for_identical_signals():
    x = np.stack([_tone(8000, noise=0.01), _noise()])
    np.testing.assert_array_equal(log_mel_distance(x, x, Frontend()), [0.0, 0.0])
    np.testing.assert_array_equal(spectral_convergence(x, x, N_FFT, HOP), [0.0, 0.0])
    # Magnitudes only: a sign flip is invisible to both.
    assert float(spectral_convergence(x[0], -x[0], N_FFT, HOP)) < 1e-6
    assert float(log_mel_distance(x[0], -x[0], Frontend())) < 1e-4
    # A mixed-precision vocoder's bfloat16 output is accepted (8-bit mantissa: 0.2% error).
    assert float(spectral_convergence(x[0], jnp.asarray(x[0], jnp.bfloat16), N_FFT, HOP)) < 0.01


def test_log_mel_distance_known_values_and_symmetry():
    x, y = _tone(8000, noise=0.01), _noise()
    frontend = Frontend()
    d = log_mel_distance(x, y, frontend)
    assert d.shape == () and float(d) == pytest.approx(float(log_mel_distance(y, x, frontend)))
    # Halving the amplitude lowers every (unfloored) band by 20 log10(2) dB, in either log.
    for f in (frontend, Frontend(log="ln", mean=5.0, std=3.0)):
        assert float(log_mel_distance(x, 0.5 * x, f)) == pytest.approx(20 * math.log10(2),
                                                                       abs=1e-3)
    # Only the common length counts.
    longer = np.concatenate([x, np.ones(HOP, np.float32)])
    assert float(log_mel_distance(x, longer, frontend)) == 0.0


def test_spectral_convergence_known_values():
    x = np.stack([_tone(8000, noise=0.01), _noise()])
    silent = np.zeros_like(x)
    np.testing.assert_allclose(spectral_convergence(x, silent, N_FFT, HOP), [1.0, 1.0])
    np.testing.assert_allclose(spectral_convergence(x, 0.25 * x, N_FFT, HOP), [0.75, 0.75],
                               rtol=1e-6)
    np.testing.assert_allclose(spectral_convergence(x, 3.0 * x, N_FFT, HOP), [2.0, 2.0],
                               rtol=1e-6)
    # Not symmetric: the reference normalises (|1 - c| vs |1 - 1/c|).
    assert float(spectral_convergence(3.0 * x[0], x[0], N_FFT, HOP)) == pytest.approx(2 / 3)
    # Undefined for a silent reference, per example.
    out = spectral_convergence(np.stack([x[0], silent[1]]), x, N_FFT, HOP)
    assert out[0] == 0.0 and np.isnan(out[1])
    # A hand-made case: the reference's STFT is twice the estimate's on the bins of one
    # sinusoid, and both have only those bins, so the ratio is |2 - 1| / 2.
    sine = np.sin(2 * np.pi * 1000 * np.arange(4000) / RATE).astype(np.float32)
    assert float(spectral_convergence(sine, 0.5 * sine, N_FFT, HOP)) == pytest.approx(0.5)


@pytest.mark.parametrize("metric", ["log_mel", "convergence"])
def test_metrics_reject_bad_inputs(metric):
    def call(ref, est, **kw):
        if metric == "log_mel":
            return log_mel_distance(ref, est, Frontend(), **kw)
        return spectral_convergence(ref, est, N_FFT, HOP, **kw)

    x = _tone(4000)
    with pytest.raises(ValueError, match="NaN"):
        call(x, np.where(np.arange(4000) == 7, np.nan, x))
    with pytest.raises(ValueError, match=r"NaN or infinite samples in examples \[1\]"):
        call(np.stack([x, x]), np.stack([x, np.full_like(x, np.inf)]))
    with pytest.raises(ValueError, match="empty"):
        call(np.zeros(0, np.float32), x)
    with pytest.raises(ValueError, match="batch size"):
        call(np.stack([x, x]), np.stack([x, x, x]))
    with pytest.raises(ValueError, match="layout"):
        call(x, x[None])
    with pytest.raises(ValueError, match="float audio"):
        call((x * 32767).astype(np.int16), x)
    with pytest.raises(ValueError, match="resample"):
        call(x, x, sample_rates=(16000, 22050))
    call(x, x, sample_rates=(16000, 16000))


def test_log_mel_distance_checks_the_frontend():
    x = _tone(4000)
    with pytest.raises(ValueError, match="frontend expects 16000 Hz"):
        log_mel_distance(x, x, Frontend(), sample_rates=(22050, 22050))
    with pytest.raises(ValueError, match="logmel"):
        log_mel_distance(x, x, Frontend(kind="fbank"))
