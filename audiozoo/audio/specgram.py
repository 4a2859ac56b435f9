"""GANSynth's spectral representations: log-magnitude with phase, instantaneous frequency (IF),
or mel IF, and their inverses.

Engel et al. 2019, "GANSynth: Adversarial Neural Audio Synthesis" (ICLR), section 3 ("Phase",
"IF" and "IF-Mel" of Table 1), as implemented in magenta's models/gansynth/lib
(specgrams_helper.py, spectral_ops.py):

- STFT with a periodic Hann window, hop = nfft / 4, no centring; the audio is zero-padded at
  the FRONT only, to hop * (frames - 1) + nfft samples (2,304 zeros for a 4 s note at nfft
  1024, 3,072 at the "+H" nfft 2048), so the frame grid ends exactly at the last sample.
- The DC bin is dropped and Nyquist kept: nfft / 2 bins. Inversion puts a zero DC bin back.
- Channel 0: log(|X| + 1e-6). Channel 1: the phase angle / pi ("phase"), or the IF: the
  finite difference along time of the unwrapped phase (the first frame keeps its raw phase),
  / pi ("if"). Inversion integrates it back (cumsum), so IF loses nothing but rounding.
- "if_mel": as many mel bins as linear ones (mel = 1127 ln(1 + f / 700), 0 to 8 kHz, the
  linear bins placed at linspace(0, 8000, n) with row 0 zeroed, band edges evenly spaced in
  mel but each triangle linear in Hz and at least 1.5 bins wide, no area normalisation); channel 0 is the log mel POWER log(|X|^2 M + 1e-6), channel 1
  the IF of the mel-projected unwrapped phase. The inverse uses magenta's pseudo-inverse
  M+ = M^T diag(1 / colsum(M M^T)), which is not an exact inverse: IF-Mel is lossy by design.
- `normalize` / `denormalize`: the released training normaliser, magnitude
  clip(0.0661371661726 x + 0.113718730221, -1, 1) (log 1e-6 .. 10.3766 onto -0.8 .. 0.8) and
  phase / IF x 0.8.

Tensors are [batch, frames, bins, 2] float32; everything is jit-able and batched over any
leading axes of the audio. A 4 s note at 16 kHz gives 256 x 512 x 2 (nfft 1024) or
128 x 1024 x 2 (nfft 2048, "+H").
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from audiozoo.audio.spectral import istft, stft

__all__ = ["REPRESENTATIONS", "decode", "denormalize", "encode", "instantaneous_frequency",
           "linear_to_mel", "mel_matrix", "mel_pseudo_inverse", "mel_to_linear", "normalize",
           "num_frames_for", "unwrap"]

REPRESENTATIONS = ("phase", "if", "if_mel")
NOTE_LENGTH = 64000  # 4 s at 16 kHz, the NSynth note
SAMPLE_RATE = 16000
LOG_EPS = 1e-6
# The released normaliser (magenta gansynth, data_normalizer "specgrams_simple_normalizer").
MAG_SCALE, MAG_SHIFT, PHASE_SCALE = 0.0661371661726, 0.113718730221, 0.8
# magenta's mel scale (spectral_ops.py), distinct from the Slaney/HTK ones in spectral.py.
_MEL_BREAK_HZ, _MEL_HIGH_Q = 700.0, 1127.0


def _check_representation(representation: str) -> None:
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown spectral representation {representation!r}; valid: "
                         f"{', '.join(REPRESENTATIONS)}")


def num_frames_for(audio_length: int, nfft: int) -> int:
    """The frame count GANSynth uses: the power of two covering audio_length / hop (a 4 s note
    gives 256 at nfft 1024 and 128 at nfft 2048), so the image side halves cleanly."""
    hop = nfft // 4
    frames = 2 ** math.ceil(math.log2(max(1, math.ceil(audio_length / hop))))
    assert hop * (frames - 1) + nfft >= audio_length
    return frames


# ---------------------------------------------------------------------------- phase and IF
def unwrap(phase: ArrayLike, axis: int = -2) -> jnp.ndarray:
    """numpy.unwrap along `axis` (discontinuity pi): adds the multiples of 2 pi that make
    successive differences lie in [-pi, pi]. (magenta's version skips numpy's zeroing of the
    correction where |difference| < pi, where it is zero up to rounding anyway.)"""
    phase = jnp.asarray(phase)
    diff = jnp.diff(phase, axis=axis)
    wrapped = jnp.mod(diff + jnp.pi, 2 * jnp.pi) - jnp.pi
    wrapped = jnp.where((wrapped == -jnp.pi) & (diff > 0), jnp.pi, wrapped)
    correction = jnp.where(jnp.abs(diff) < jnp.pi, 0.0, wrapped - diff)
    zero = jnp.zeros_like(jnp.take(phase, jnp.array([0]), axis=axis))
    return phase + jnp.concatenate([zero, jnp.cumsum(correction, axis=axis)], axis=axis)


def instantaneous_frequency(phase: ArrayLike, axis: int = -2) -> jnp.ndarray:
    """The time derivative of the unwrapped phase, / pi; the first frame keeps its raw phase,
    so `cumsum(if * pi)` gives back the phase (up to multiples of 2 pi)."""
    phase = jnp.asarray(phase)
    first = jnp.take(phase, jnp.array([0]), axis=axis)
    return jnp.concatenate([first, jnp.diff(unwrap(phase, axis), axis=axis)], axis=axis) / jnp.pi


def _integrate(if_over_pi: jnp.ndarray) -> jnp.ndarray:
    return jnp.cumsum(if_over_pi * jnp.pi, axis=-2)


# ------------------------------------------------------------------------------------- mel
def _hz_to_mel(hz):
    return _MEL_HIGH_Q * np.log(1.0 + np.asarray(hz, np.float64) / _MEL_BREAK_HZ)


def _mel_to_hz(mel):
    return _MEL_BREAK_HZ * (np.exp(np.asarray(mel, np.float64) / _MEL_HIGH_Q) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_matrix(num_bins: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """magenta's linear_to_mel_weight_matrix with num_bins mel bands over num_bins linear bins,
    0 Hz to Nyquist: float32 [linear, mel], so `power @ M` maps to mel."""
    nyquist = sample_rate / 2.0
    bins_hz = np.linspace(0.0, nyquist, num_bins)[:, None]
    edges = np.linspace(_hz_to_mel(0.0), _hz_to_mel(nyquist), num_bins + 2)
    lower, center, upper = edges[:-2].copy(), edges[1:-1], edges[2:].copy()
    # Narrow low bands would fall between linear bins: widen them to 1.5 bins in Hz.
    min_width = 1.5 * nyquist / num_bins
    narrow = _mel_to_hz(upper) - _mel_to_hz(lower) < min_width
    rhs = 0.5 * min_width / (_mel_to_hz(center) + _MEL_BREAK_HZ)
    half = _MEL_HIGH_Q * np.log(rhs + np.sqrt(1.0 + rhs**2))
    lower[narrow], upper[narrow] = (center - half)[narrow], (center + half)[narrow]
    # Edges are spaced on the mel scale but the triangles are linear in Hz, as in magenta.
    lower, center, upper = _mel_to_hz(lower), _mel_to_hz(center), _mel_to_hz(upper)
    rising = (bins_hz - lower) / (center - lower)
    falling = (upper - bins_hz) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=8)
def mel_pseudo_inverse(num_bins: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """magenta's mel -> linear matrix M^T diag(1 / colsum(M M^T)): float32 [mel, linear]."""
    m = mel_matrix(num_bins, sample_rate).astype(np.float64)
    sums = (m @ m.T).sum(axis=0)
    scale = np.where(np.abs(sums) > 1e-8, 1.0 / np.where(sums == 0, 1.0, sums), sums)
    return (m.T @ np.diag(scale)).astype(np.float32)


def linear_to_mel(spec: jnp.ndarray) -> jnp.ndarray:
    """Linear log-magnitude + IF -> log mel power + mel IF."""
    m = jnp.asarray(mel_matrix(spec.shape[-2]))
    power = jnp.exp(2.0 * spec[..., 0])
    mel_phase = _integrate(spec[..., 1]) @ m
    return jnp.stack([jnp.log(power @ m + LOG_EPS), instantaneous_frequency(mel_phase)], -1)


def mel_to_linear(spec: jnp.ndarray) -> jnp.ndarray:
    """Log mel power + mel IF -> linear log-magnitude + IF, through the pseudo-inverse."""
    m_inv = jnp.asarray(mel_pseudo_inverse(spec.shape[-2]))
    logmag = 0.5 * jnp.log(jnp.exp(spec[..., 0]) @ m_inv + LOG_EPS)
    phase = _integrate(spec[..., 1]) @ m_inv
    return jnp.stack([logmag, instantaneous_frequency(phase)], -1)


# ------------------------------------------------------------------------ encode / decode
def encode(audio: ArrayLike, representation: str = "if", nfft: int = 1024, *,
           num_frames: int | None = None) -> jnp.ndarray:
    """Waveforms [..., samples] -> [..., frames, nfft / 2, 2] (see the module docstring).
    `num_frames` defaults to `num_frames_for(samples, nfft)`."""
    _check_representation(representation)
    audio = jnp.asarray(audio, jnp.float32)
    frames = num_frames or num_frames_for(audio.shape[-1], nfft)
    return _encode(audio, representation=representation, nfft=nfft, num_frames=frames)


@functools.partial(jax.jit, static_argnames=("representation", "nfft", "num_frames"))
def _encode(audio, *, representation: str, nfft: int, num_frames: int):
    hop = nfft // 4
    padding = hop * (num_frames - 1) + nfft - audio.shape[-1]
    if padding < 0:
        raise ValueError(f"{num_frames} frames of hop {hop} cover {audio.shape[-1] + padding} "
                         f"samples, fewer than the audio's {audio.shape[-1]}")
    audio = jnp.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(padding, 0)])
    spec = stft(audio, nfft, hop, center=False)[..., 1:]  # drop DC, keep Nyquist
    logmag = jnp.log(jnp.abs(spec) + LOG_EPS)
    angle = jnp.angle(spec)
    if representation == "phase":
        return jnp.stack([logmag, angle / jnp.pi], -1)
    linear = jnp.stack([logmag, instantaneous_frequency(angle)], -1)
    return linear_to_mel(linear) if representation == "if_mel" else linear


def decode(spec: ArrayLike, representation: str = "if", nfft: int | None = None, *,
           audio_length: int = NOTE_LENGTH) -> jnp.ndarray:
    """[..., frames, bins, 2] -> waveforms [..., audio_length], the inverse of `encode`.
    `nfft` defaults to 2 x bins; audio_length is what was encoded (the front padding is
    cropped)."""
    _check_representation(representation)
    spec = jnp.asarray(spec, jnp.float32)
    if spec.ndim < 3 or spec.shape[-1] != 2:
        raise ValueError(f"spectrogram of shape {spec.shape}: expected [..., frames, bins, 2]")
    nfft = nfft or 2 * spec.shape[-2]
    if nfft != 2 * spec.shape[-2]:
        raise ValueError(f"spectrogram has {spec.shape[-2]} bins; nfft={nfft} gives {nfft // 2}")
    return _decode(spec, representation=representation, audio_length=audio_length)


@functools.partial(jax.jit, static_argnames=("representation", "audio_length"))
def _decode(spec, *, representation: str, audio_length: int):
    if representation == "if_mel":
        spec = mel_to_linear(spec)
    angle = spec[..., 1] * jnp.pi if representation == "phase" else _integrate(spec[..., 1])
    complex_spec = jnp.exp(spec[..., 0]) * jnp.exp(1j * angle)
    dc = jnp.zeros(complex_spec.shape[:-1] + (1,), complex_spec.dtype)
    nfft = 2 * spec.shape[-2]
    audio = istft(jnp.concatenate([dc, complex_spec], -1), nfft, nfft // 4)
    if audio.shape[-1] < audio_length:
        raise ValueError(f"{spec.shape[-3]} frames give {audio.shape[-1]} samples, fewer than "
                         f"audio_length={audio_length}")
    return audio[..., audio.shape[-1] - audio_length:]


# ------------------------------------------------------------------------- normalisation
def normalize(spec: ArrayLike) -> jnp.ndarray:
    """Raw representation -> the [-1, 1] range the networks see (the released normaliser)."""
    spec = jnp.asarray(spec)
    mag = jnp.clip(MAG_SCALE * spec[..., 0] + MAG_SHIFT, -1.0, 1.0)
    return jnp.stack([mag, PHASE_SCALE * spec[..., 1]], -1)


def denormalize(spec: ArrayLike) -> jnp.ndarray:
    """Inverse of `normalize` (exact where the magnitude was not clipped)."""
    spec = jnp.asarray(spec)
    return jnp.stack([(spec[..., 0] - MAG_SHIFT) / MAG_SCALE, spec[..., 1] / PHASE_SCALE], -1)
