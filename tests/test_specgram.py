"""GANSynth's spectral representations against independent numpy computations of magenta's
definitions: shapes, front padding, IF, mel projection and its pseudo-inverse, round trips."""

import numpy as np
import pytest

from audiozoo.audio import specgram

RATE = 16000


def _notes(batch=2, length=64000):
    """Decaying harmonic notes (no DC, which the representation drops by design)."""
    t = np.arange(length) / RATE
    rows = [0.5 * np.sin(2 * np.pi * f * t) * np.exp(-t) + 0.2 * np.sin(6 * np.pi * f * t + 1)
            * np.exp(-3 * t) for f in (220.0, 440.5, 97.9)[:batch]]
    return np.stack(rows).astype(np.float32)


def _numpy_stft(audio, nfft, frames):
    """magenta's waves_to_stfts: all padding at the front, periodic Hann, no centring, DC
    dropped."""
    hop = nfft // 4
    padded = np.pad(audio.astype(np.float64), [(0, 0), (hop * (frames - 1) + nfft - audio.shape[-1], 0)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nfft) / nfft)
    idx = hop * np.arange(frames)[:, None] + np.arange(nfft)
    return np.fft.rfft(padded[:, idx] * window, axis=-1)[..., 1:]


@pytest.mark.parametrize("nfft, shape", [(1024, (256, 512, 2)), (2048, (128, 1024, 2))])
def test_shapes_and_front_padding_match_the_reference_stft(nfft, shape):
    audio = _notes()
    spec = np.asarray(specgram.encode(audio, "phase", nfft=nfft))
    assert spec.shape == (2,) + shape
    expected = _numpy_stft(audio, nfft, shape[0])
    strong = np.abs(expected) > 1e-2  # float32 rounding dominates the log of tiny bins
    np.testing.assert_allclose(np.exp(spec[..., 0]), np.abs(expected) + 1e-6,
                               atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(spec[..., 0][strong], np.log(np.abs(expected[strong]) + 1e-6),
                               atol=1e-3)
    diff = np.angle(np.exp(1j * (spec[..., 1] * np.pi - np.angle(expected))))
    assert np.abs(diff[strong]).max() < 1e-3


def test_if_is_the_time_derivative_of_the_unwrapped_phase():
    audio = _notes()
    phase = np.asarray(specgram.encode(audio, "phase", nfft=1024))[..., 1] * np.pi
    inst = np.asarray(specgram.encode(audio, "if", nfft=1024))[..., 1]
    unwrapped = np.unwrap(phase, axis=-2)
    np.testing.assert_allclose(inst[:, 0], phase[:, 0] / np.pi, atol=1e-6)
    np.testing.assert_allclose(inst[:, 1:], np.diff(unwrapped, axis=-2) / np.pi, atol=1e-4)
    assert np.abs(inst[:, 1:]).max() <= 1.0 + 1e-6  # a wrapped difference, within +-pi


def test_unwrap_matches_numpy():
    phase = np.random.default_rng(0).uniform(-np.pi, np.pi, (3, 50, 7)).cumsum(1) % (2 * np.pi)
    np.testing.assert_allclose(specgram.unwrap(phase, axis=1), np.unwrap(phase, axis=1), atol=1e-5)


@pytest.mark.parametrize("nfft", [1024, 2048])
@pytest.mark.parametrize("representation", ["phase", "if"])
def test_round_trip_is_exact_away_from_the_edges(representation, nfft):
    audio = _notes()
    back = np.asarray(specgram.decode(specgram.encode(audio, representation, nfft=nfft),
                                      representation))
    assert back.shape == audio.shape and back.dtype == np.float32
    error = back[:, 2048:-2048] - audio[:, 2048:-2048]
    assert np.sqrt(np.mean(error**2)) <= 1e-4


def _reference_mel_matrix(n, rate=RATE):
    """magenta spectral_ops.linear_to_mel_weight_matrix(n, n, rate, 0, rate / 2), written out."""
    to_mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    to_hz = lambda m: 700.0 * (np.exp(np.asarray(m) / 1127.0) - 1.0)  # noqa: E731
    linear = np.linspace(0.0, rate / 2, n)[1:, None]
    edges = np.linspace(to_mel(0.0), to_mel(rate / 2), n + 2)
    lower, center, upper = edges[:-2].copy(), edges[1:-1], edges[2:].copy()
    threshold = 1.5 * (rate / 2) / n
    for i in range(n):
        if to_hz(upper[i]) - to_hz(lower[i]) < threshold:
            rhs = 0.5 * threshold / (to_hz(center[i]) + 700.0)
            dm = 1127.0 * np.log(rhs + np.sqrt(1.0 + rhs**2))
            lower[i], upper[i] = center[i] - dm, center[i] + dm
    lo, ce, up = to_hz(lower)[None], to_hz(center)[None], to_hz(upper)[None]
    weights = np.maximum(0.0, np.minimum((linear - lo) / (ce - lo), (up - linear) / (up - ce)))
    return np.pad(weights, [(1, 0), (0, 0)])


def test_mel_matrix_and_pseudo_inverse_follow_the_reference():
    m = specgram.mel_matrix(512)
    np.testing.assert_allclose(m, _reference_mel_matrix(512), atol=1e-6)
    assert m.shape == (512, 512) and not m[0].any()
    p = m.astype(np.float64) @ m.T
    sums = p.sum(axis=0)
    expected = m.T @ np.diag([1.0 / x if abs(x) > 1e-8 else x for x in sums])
    np.testing.assert_allclose(specgram.mel_pseudo_inverse(512), expected, rtol=1e-5, atol=1e-7)


def test_if_mel_projects_and_inverts_as_the_reference():
    audio = _notes(1)
    linear = np.asarray(specgram.encode(audio, "if", nfft=1024), np.float64)
    mel = np.asarray(specgram.encode(audio, "if_mel", nfft=1024), np.float64)
    m, m_inv = specgram.mel_matrix(512), specgram.mel_pseudo_inverse(512)
    phase = np.cumsum(linear[..., 1] * np.pi, axis=-2)
    np.testing.assert_allclose(mel[..., 0], np.log(np.exp(2 * linear[..., 0]) @ m + 1e-6), atol=1e-3)
    mel_phase = phase @ m
    mel_if = np.concatenate([mel_phase[:, :1], np.diff(np.unwrap(mel_phase, axis=-2), axis=-2)],
                            axis=-2) / np.pi
    np.testing.assert_allclose(mel[..., 1], mel_if, atol=2e-3)
    back = np.asarray(specgram.mel_to_linear(mel.astype(np.float32)), np.float64)
    np.testing.assert_allclose(back[..., 0], 0.5 * np.log(np.exp(mel[..., 0]) @ m_inv + 1e-6),
                               atol=1e-3)
    # Lossy, but a note comes back recognisable: most of its energy, at the right place.
    audio_back = np.asarray(specgram.decode(mel, "if_mel"))[0, 4096:-4096]
    reference = audio[0, 4096:-4096]
    correlation = np.dot(audio_back, reference) / np.linalg.norm(audio_back) / np.linalg.norm(reference)
    assert correlation > 0.9


def test_normaliser_maps_the_released_range_and_inverts():
    raw = np.stack([np.array([np.log(1e-6), 10.3766, 0.0]), np.array([-1.0, 0.5, 1.0])], -1)
    norm = np.asarray(specgram.normalize(raw))
    np.testing.assert_allclose(norm[:, 0], [-0.8, 0.8, 0.113718730221], atol=1e-4)
    np.testing.assert_allclose(norm[:, 1], [-0.8, 0.4, 0.8], atol=1e-6)
    np.testing.assert_allclose(specgram.denormalize(norm), raw, atol=1e-4)
    assert float(specgram.normalize(np.array([[30.0, 0.0]]))[0, 0]) == 1.0  # clipped


def test_batched_over_leading_axes():
    audio = _notes(3, 16000).reshape(3, 1, 16000).repeat(2, axis=1)
    spec = specgram.encode(audio, "if", nfft=1024)
    assert spec.shape == (3, 2, 64, 512, 2)
    np.testing.assert_allclose(spec[:, 0], spec[:, 1])
    assert specgram.decode(spec, "if", audio_length=16000).shape == (3, 2, 16000)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown spectral representation 'mag'.*if_mel"):
        specgram.encode(_notes(1), "mag")
    with pytest.raises(ValueError, match="expected \\[..., frames, bins, 2\\]"):
        specgram.decode(np.zeros((1, 8, 16)), "if")
    with pytest.raises(ValueError, match="nfft=1024 gives 512"):
        specgram.decode(np.zeros((1, 8, 16, 2)), "if", nfft=1024)
    with pytest.raises(ValueError, match="fewer than the audio"):
        specgram.encode(_notes(1), "if", nfft=1024, num_frames=8)
