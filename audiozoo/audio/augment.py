"""Batch augmentation for the classifiers: SpecAugment masks, mixup and random time shift.

- `spec_augment`: time and frequency masking of SpecAugment (Park et al. 2019, section 2;
  time warping is left out, as AST and PANNs also leave it out). Each mask's width t is
  drawn uniformly from {0, ..., param} and its start t0 from {0, ..., size - t}, so a mask
  always lies inside the spectrogram; every example in the batch gets its own masks.
- `mixup`: Zhang et al. 2018 ("mixup: Beyond Empirical Risk Minimization", section 2):
  x = lam x_i + (1 - lam) x_j, y = lam y_i + (1 - lam) y_j with lam ~ Beta(alpha, alpha),
  here one lam per example and j given by a random permutation of the batch, so the
  partners come from the same batch and no second data stream is needed.
- `time_shift`: moves each waveform by a random whole number of samples in
  [-max_shift, max_shift] (one draw per example), filling the vacated end with zeros
  rather than wrapping around, so no onset appears in the middle of a clip.

All are pure jax functions of an explicit PRNG key and jit-able (mask counts and shift
bounds are static).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["mixup", "spec_augment", "time_shift"]


def _band_masks(rng: jax.Array, batch: int, size: int, count: int, param: int) -> jnp.ndarray:
    """Union of `count` random bands per example: bool [batch, size]."""
    if count == 0 or param == 0:
        return jnp.zeros((batch, size), bool)
    width_key, start_key = jax.random.split(rng)
    widths = jax.random.randint(width_key, (batch, count), 0, min(param, size) + 1)
    # randint's maxval is exclusive and may be an array: starts in {0, ..., size - width}.
    starts = jax.random.randint(start_key, (batch, count), 0, size - widths + 1)
    pos = jnp.arange(size)[None, None, :]
    inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])
    return jnp.any(inside, axis=1)


def spec_augment(
    rng: jax.Array,
    spec: ArrayLike,
    *,
    num_time_masks: int = 2,
    time_mask_param: int = 40,
    num_freq_masks: int = 2,
    freq_mask_param: int = 15,
    mask_value: float = 0.0,
) -> jnp.ndarray:
    """Sets random time spans and frequency bands of [batch, frames, bins] to `mask_value`.

    Mask counts and params are Python ints (static under jit). Masks may overlap, so an
    example can have fewer, wider masked regions than `num_*_masks`.
    """
    spec = jnp.asarray(spec)
    if spec.ndim != 3:
        raise ValueError(f"spec_augment expects [batch, frames, bins], got shape {spec.shape}")
    for name, value in [("num_time_masks", num_time_masks), ("time_mask_param", time_mask_param),
                        ("num_freq_masks", num_freq_masks), ("freq_mask_param", freq_mask_param)]:
        if value < 0:
            raise ValueError(f"{name}={value} must be >= 0")
    return _spec_augment(rng, spec, mask_value, counts=(num_time_masks, num_freq_masks),
                         params=(time_mask_param, freq_mask_param))


# Jitted so that eager callers (data pipelines, tests) compile once per shape, not per op.
@functools.partial(jax.jit, static_argnames=("counts", "params"))
def _spec_augment(rng, spec, mask_value, *, counts: tuple[int, int], params: tuple[int, int]):
    batch, frames, bins = spec.shape
    time_key, freq_key = jax.random.split(rng)
    time = _band_masks(time_key, batch, frames, counts[0], params[0])
    freq = _band_masks(freq_key, batch, bins, counts[1], params[1])
    masked = time[:, :, None] | freq[:, None, :]
    return jnp.where(masked, jnp.asarray(mask_value, spec.dtype), spec)


def mixup(
    rng: jax.Array, x: ArrayLike, labels_onehot: ArrayLike, alpha: float = 0.2
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mixes each example with a random partner: (mixed x, mixed labels).

    `x` is [batch, ...] (waveforms or spectrograms), `labels_onehot` [batch, classes]
    (one-hot or already soft). lam ~ Beta(alpha, alpha) per example.
    """
    x = jnp.asarray(x)
    labels = jnp.asarray(labels_onehot)
    if alpha <= 0:
        raise ValueError(f"mixup alpha={alpha} must be > 0 (lam ~ Beta(alpha, alpha)); "
                         f"to train without mixup, do not call it")
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"x has batch {x.shape[0]} but labels_onehot has {labels.shape[0]}")
    return _mixup(rng, x, labels, alpha)


@jax.jit
def _mixup(rng, x, labels, alpha):
    lam_key, perm_key = jax.random.split(rng)
    batch = x.shape[0]
    lam = jax.random.beta(lam_key, alpha, alpha, (batch,))
    perm = jax.random.permutation(perm_key, batch)

    def mix(a: jnp.ndarray) -> jnp.ndarray:
        w = lam.astype(a.dtype).reshape((batch,) + (1,) * (a.ndim - 1))
        return w * a + (1 - w) * a[perm]

    return mix(x), mix(labels.astype(jnp.promote_types(labels.dtype, jnp.float32)))


def time_shift(rng: jax.Array, audio: ArrayLike, max_shift: int) -> jnp.ndarray:
    """Shifts each row of [batch, samples] by its own uniform shift in [-max_shift, max_shift]
    samples (positive: later), zero-filled. `max_shift` is a Python int (static under jit)."""
    audio = jnp.asarray(audio)
    if audio.ndim != 2:
        raise ValueError(f"time_shift expects [batch, samples], got shape {audio.shape}")
    if max_shift < 0:
        raise ValueError(f"max_shift={max_shift} must be >= 0")
    if max_shift == 0:
        return audio
    return _time_shift(rng, audio, max_shift=int(max_shift))


@functools.partial(jax.jit, static_argnames=("max_shift",))
def _time_shift(rng, audio, *, max_shift: int):
    batch, length = audio.shape
    shifts = jax.random.randint(rng, (batch, 1), -max_shift, max_shift + 1)
    source = jnp.arange(length)[None, :] - shifts
    inside = (source >= 0) & (source < length)
    moved = jnp.take_along_axis(audio, jnp.clip(source, 0, length - 1), axis=1)
    return jnp.where(inside, moved, jnp.zeros((), audio.dtype))
