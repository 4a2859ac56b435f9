"""Waveform augmentation for labelled audio: background noise at a random SNR, room
reverberation, random gain and time shift, applied inside the jitted train step.

- Background noise (Warden 2018, "Speech Commands: A Dataset for Limited-Vocabulary Speech
  Recognition", section 6: clips of the `_background_noise_` folder mixed into 80 % of the
  training examples): each noisy example takes a random crop of a random noise file, or noise
  generated with a 1/f^beta power spectrum (white beta = 0, pink 1, brown 2, shaped in the
  frequency domain), and `mix_at_snr` scales it so that 10 log10(P_signal / P_noise) is
  exactly the SNR drawn uniformly from a range. Ko et al. 2017 ("A study on data augmentation
  of reverberant speech for robust speech recognition", section 3) add point-source noises at
  0, 5, 10 and 15 dB SNR; the default range spans those.
- Reverberation (Ko et al. 2017, sections 2-3): convolution with a room impulse response
  (RIR), measured ones read from a folder or synthetic ones: a direct path followed by
  exponentially decaying Gaussian noise (the diffuse tail of statistical room acoustics) whose
  amplitude falls 60 dB in RT60 seconds, RT60 and the direct-to-reverberant energy ratio drawn
  from ranges. Every RIR starts at its direct path and has unit energy, so the reverberant
  clip is neither delayed nor louder on average than the dry one, and it keeps the clip's
  length (the tail beyond the clip's end is cut, as it is in a fixed-length recording).
- Gain: the whole clip scaled by a factor drawn uniformly in dB.
- Time shift: `audiozoo.audio.augment.time_shift` (Warden 2018: +-100 ms).

Everything is a pure jax function of an explicit PRNG key; `WaveAugment` applies them in the
order shift, reverberation, noise, gain (speech is reverberated before the noise is added, as
in Ko et al.), each to a random subset of the batch, from keys folded out of one step key, so
an augmented batch is a pure function of (data, step key) and a resumed run sees what an
uninterrupted one saw. Noise and RIR files become fixed arrays once, on the host
(`noise_bank`, `rir_bank`); the step indexes them with random draws.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from audiozoo.audio.augment import time_shift

__all__ = ["NOISE_COLOURS", "NoiseBank", "WaveAugment", "coloured_noise", "mix_at_snr",
           "noise_bank", "random_gain", "reverberate", "rir_bank", "synthetic_rir"]

# Exponent beta of the noise power spectral density 1/f^beta.
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Signal or noise power below this counts as silence: no noise is mixed in (no SNR exists).
SILENCE_POWER = 1e-10
# 60 dB of amplitude decay: ln(10^(60/20)).
_LN_1000 = math.log(1000.0)


def _uniform(rng, shape, low_high) -> jnp.ndarray:
    low, high = low_high
    return jax.random.uniform(rng, shape, minval=low, maxval=high)


def coloured_noise(rng: jax.Array, shape: tuple[int, int], beta: ArrayLike) -> jnp.ndarray:
    """Gaussian noise [batch, samples] with power spectrum ~ 1/f^beta (`beta` a scalar or one
    per row) and unit RMS; the DC bin is removed, so brown noise does not wander off."""
    batch, length = shape
    spectrum = jnp.fft.rfft(jax.random.normal(rng, shape), axis=-1)
    freqs = jnp.arange(spectrum.shape[-1]) / length
    beta = jnp.broadcast_to(jnp.asarray(beta, jnp.float32), (batch,))[:, None]
    # Amplitude ~ f^(-beta / 2) so that power ~ f^(-beta).
    shaping = jnp.where(freqs > 0, jnp.maximum(freqs, 1.0 / length) ** (-beta / 2), 0.0)
    noise = jnp.fft.irfft(spectrum * shaping, n=length, axis=-1)
    return noise / jnp.sqrt(jnp.mean(noise**2, axis=-1, keepdims=True) + SILENCE_POWER)


def mix_at_snr(signal: ArrayLike, noise: ArrayLike, snr_db: ArrayLike) -> jnp.ndarray:
    """signal + a * noise per row of [batch, samples], with a such that 10 log10(P_signal /
    P_(a noise)) = snr_db ([batch] or a scalar), powers being means of squares over the row.
    A silent signal or noise row is returned unchanged: it has no SNR to set."""
    signal, noise = jnp.asarray(signal), jnp.asarray(noise)
    p_signal = jnp.mean(signal**2, axis=-1, keepdims=True)
    p_noise = jnp.mean(noise**2, axis=-1, keepdims=True)
    snr = jnp.broadcast_to(jnp.asarray(snr_db, signal.dtype), signal.shape[:1])[:, None]
    audible = (p_signal > SILENCE_POWER) & (p_noise > SILENCE_POWER)
    scale = jnp.sqrt(p_signal / (jnp.where(audible, p_noise, 1.0) * 10.0 ** (snr / 10.0)))
    return signal + jnp.where(audible, scale, 0.0) * noise


def synthetic_rir(rng: jax.Array, batch: int, taps: int, sample_rate: int, rt60: ArrayLike,
                  drr_db: ArrayLike) -> jnp.ndarray:
    """[batch, taps] impulse responses: a unit direct path at tap 0, then Gaussian noise
    decaying 60 dB in rt60 seconds, scaled so the direct-to-reverberant energy ratio is
    drr_db; unit energy. rt60 and drr_db: [batch] or scalars."""
    rt60 = jnp.broadcast_to(jnp.asarray(rt60, jnp.float32), (batch,))[:, None]
    drr = jnp.broadcast_to(jnp.asarray(drr_db, jnp.float32), (batch,))[:, None]
    t = jnp.arange(1, taps) / sample_rate
    tail = jax.random.normal(rng, (batch, taps - 1)) * jnp.exp(-_LN_1000 * t / rt60)
    tail_energy = jnp.sum(tail**2, axis=-1, keepdims=True)
    tail = tail * jnp.sqrt(10.0 ** (-drr / 10.0) / jnp.maximum(tail_energy, SILENCE_POWER))
    rir = jnp.concatenate([jnp.ones((batch, 1)), tail], axis=-1)
    return rir / jnp.sqrt(jnp.sum(rir**2, axis=-1, keepdims=True))


def reverberate(audio: ArrayLike, rir: ArrayLike) -> jnp.ndarray:
    """Each row of audio [batch, samples] convolved with its RIR [batch, taps] (direct path at
    tap 0), cut to the clip's length: the dry sound stays where it was."""
    audio, rir = jnp.asarray(audio), jnp.asarray(rir)
    length = audio.shape[-1]
    n = 1 << (length + rir.shape[-1] - 2).bit_length()  # >= the linear convolution's length
    wet = jnp.fft.irfft(jnp.fft.rfft(audio, n) * jnp.fft.rfft(rir, n), n)
    return wet[..., :length].astype(audio.dtype)


def random_gain(rng: jax.Array, audio: ArrayLike, gain_db: tuple[float, float]) -> jnp.ndarray:
    """Each row of [batch, samples] times 10^(g / 20), g uniform in gain_db."""
    audio = jnp.asarray(audio)
    gain = _uniform(rng, (audio.shape[0], 1), gain_db)
    return audio * (10.0 ** (gain / 20.0)).astype(audio.dtype)


# ---- banks of files: host-side, once -------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class NoiseBank:
    """Noise files laid end to end: `audio` float32 [total]; file i covers
    audio[starts[i] : starts[i] + spans[i] + segment - 1], so a crop of `segment` samples
    may start anywhere in [starts[i], starts[i] + spans[i])."""

    audio: np.ndarray
    starts: np.ndarray
    spans: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def crops(self, rng: jax.Array, index: jnp.ndarray, segment: int) -> jnp.ndarray:
        """A random crop [batch, segment] of file index[b] for each row b."""
        spans = jnp.asarray(self.spans)[index]
        offset = jnp.floor(jax.random.uniform(rng, index.shape) * spans).astype(jnp.int32)
        first = jnp.asarray(self.starts)[index] + jnp.minimum(offset, spans - 1)
        return jnp.asarray(self.audio)[first[:, None] + jnp.arange(segment)]


def noise_bank(clips: list[np.ndarray], segment: int) -> NoiseBank:
    """The bank of noise clips (float arrays at the training rate) for crops of `segment`
    samples; a clip shorter than that is repeated until it is long enough."""
    if not clips:
        raise ValueError("noise_bank needs at least one clip")
    tiled = [np.resize(c, max(len(c), segment)).astype(np.float32) for c in clips]
    lengths = np.array([len(c) for c in tiled])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return NoiseBank(np.concatenate(tiled), starts.astype(np.int32),
                     (lengths - segment + 1).astype(np.int32))


def rir_bank(clips: list[np.ndarray], max_taps: int) -> np.ndarray:
    """Measured RIRs as float32 [files, taps]: each cut to start at its direct path (its
    largest magnitude), kept for at most `max_taps` taps, zero-padded to the longest, scaled to
    unit energy."""
    aligned = [np.asarray(c, np.float32)[int(np.argmax(np.abs(c))):][:max_taps] for c in clips]
    taps = max(len(c) for c in aligned)
    bank = np.stack([np.pad(c, (0, taps - len(c))) for c in aligned])
    return bank / np.sqrt(np.sum(bank.astype(np.float64)**2, axis=-1, keepdims=True)).astype(np.float32)


# ---- the pipeline --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class WaveAugment:
    """The waveform augmentations of a training batch; see the module docstring.

    noise_prob / rir_prob: fraction of examples that get noise / reverberation. A noisy
    example draws its noise uniformly among the bank's files and the generated `noise_colours`
    (each colour counts as one more file); a reverberant one among the bank's RIRs and, when
    `rir_rt60` is a range, one synthetic room. Ranges are (low, high), SNR and gain in dB.
    """

    sample_rate: int
    max_shift: int = 0
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (0.0, 15.0)
    noise_colours: tuple[str, ...] = ()
    noise_files: NoiseBank | None = None
    rir_prob: float = 0.0
    rir_rt60: tuple[float, ...] = ()
    rir_drr_db: tuple[float, float] = (0.0, 10.0)
    rir_files: np.ndarray | None = None
    gain_db: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        if self.noise_prob > 0 and not (self.noise_colours or self.noise_files):
            raise ValueError("noise_prob > 0 needs noise files or noise_colours")
        if self.rir_prob > 0 and not (self.rir_rt60 or self.rir_files is not None):
            raise ValueError("rir_prob > 0 needs RIR files or an rir_rt60 range")
        unknown = set(self.noise_colours) - set(NOISE_COLOURS)
        if unknown:
            raise ValueError(f"unknown noise colours {sorted(unknown)}; valid: {list(NOISE_COLOURS)}")

    @property
    def active(self) -> bool:
        return bool(self.max_shift or self.noise_prob or self.rir_prob or self.gain_db != (0.0, 0.0))

    def __call__(self, rng: jax.Array, audio: ArrayLike) -> jnp.ndarray:
        """Augmented audio [batch, samples]; the keys are fold_in(rng, 1...4)."""
        audio = jnp.asarray(audio)
        if self.max_shift:
            audio = time_shift(jax.random.fold_in(rng, 1), audio, self.max_shift)
        if self.rir_prob > 0:
            audio = self._sometimes(jax.random.fold_in(rng, 2), self.rir_prob, audio, self.reverb)
        if self.noise_prob > 0:
            audio = self._sometimes(jax.random.fold_in(rng, 3), self.noise_prob, audio, self.noisy)
        if self.gain_db != (0.0, 0.0):
            audio = random_gain(jax.random.fold_in(rng, 4), audio, self.gain_db)
        return audio

    @staticmethod
    def _sometimes(rng, prob: float, audio, transform):
        """transform(audio) on a random `prob` of the rows, the rest unchanged."""
        pick_key, key = jax.random.split(rng)
        chosen = jax.random.uniform(pick_key, (audio.shape[0], 1)) < prob
        return jnp.where(chosen, transform(key, audio), audio)

    def noise(self, rng: jax.Array, shape: tuple[int, int]) -> jnp.ndarray:
        """One noise row per example: a crop of a bank file or a generated colour."""
        choice_key, crop_key, colour_key = jax.random.split(rng, 3)
        files = len(self.noise_files) if self.noise_files else 0
        index = jax.random.randint(choice_key, shape[:1], 0, files + len(self.noise_colours))
        betas = jnp.array([NOISE_COLOURS[c] for c in self.noise_colours] or [0.0])
        generated = coloured_noise(colour_key, shape, betas[jnp.clip(index - files, 0, len(betas) - 1)])
        if not files:
            return generated
        cropped = self.noise_files.crops(crop_key, jnp.minimum(index, files - 1), shape[1])
        return jnp.where((index < files)[:, None], cropped, generated)

    def noisy(self, rng: jax.Array, audio: jnp.ndarray) -> jnp.ndarray:
        noise_key, snr_key = jax.random.split(rng)
        snr = _uniform(snr_key, audio.shape[:1], self.noise_snr_db)
        return mix_at_snr(audio, self.noise(noise_key, audio.shape), snr).astype(audio.dtype)

    @property
    def _taps(self) -> int:
        synthetic = round(max(self.rir_rt60) * self.sample_rate) if self.rir_rt60 else 1
        files = self.rir_files.shape[1] if self.rir_files is not None else 1
        return max(synthetic, files, 2)

    def rirs(self, rng: jax.Array, batch: int) -> jnp.ndarray:
        """One RIR [batch, taps] per example: a bank file or a synthetic room."""
        choice_key, room_key, rt60_key, drr_key = jax.random.split(rng, 4)
        files = 0 if self.rir_files is None else len(self.rir_files)
        index = jax.random.randint(choice_key, (batch,), 0, files + bool(self.rir_rt60))
        if self.rir_rt60:
            rooms = synthetic_rir(room_key, batch, self._taps, self.sample_rate,
                                  _uniform(rt60_key, (batch,), self.rir_rt60),
                                  _uniform(drr_key, (batch,), self.rir_drr_db))
        if not files:
            return rooms
        bank = jnp.pad(jnp.asarray(self.rir_files), ((0, 0), (0, self._taps - self.rir_files.shape[1])))
        measured = bank[jnp.minimum(index, files - 1)]
        return jnp.where((index < files)[:, None], measured, rooms) if self.rir_rt60 else measured

    def reverb(self, rng: jax.Array, audio: jnp.ndarray) -> jnp.ndarray:
        return reverberate(audio, self.rirs(rng, audio.shape[0]))
