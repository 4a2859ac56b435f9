"""Upsampling of frame-rate conditioning features to the audio rate.

WaveNet (van den Oord et al. 2016), section 2.5: local conditioning features at a lower rate
are upsampled with a learned transposed convolution network; repetition of each frame
"worked slightly worse" but is what the NSynth autoencoder uses (Engel et al. 2017, sec. 3.1).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

UPSAMPLE_METHODS = ("transposed", "repeat")


def _half_identity_init(key, shape, dtype=jnp.float32):
    """Kernel [2s, c, c] that starts as the mean of the two overlapping frames, a smooth
    interpolation, instead of noise the conditioning path must first learn to undo."""
    del key
    width, channels_in, channels_out = shape
    eye = jnp.eye(channels_in, channels_out, dtype=dtype)
    return jnp.broadcast_to(0.5 * eye, (width, channels_in, channels_out))


class ConditionUpsampler(nn.Module):
    """[batch, frames, channels] -> [batch, frames * prod(scales), channels]."""

    scales: tuple[int, ...]
    method: str = "transposed"
    dtype: Any = jnp.float32  # computation (and output); the parameters stay float32

    @property
    def hop_length(self) -> int:
        return math.prod(self.scales)

    @nn.compact
    def __call__(self, frames: jax.Array) -> jax.Array:
        if self.method not in UPSAMPLE_METHODS:
            raise ValueError(f"upsample method {self.method!r} is not one of {UPSAMPLE_METHODS}")
        x = frames.astype(self.dtype)
        if self.method == "repeat":
            return jnp.repeat(x, self.hop_length, axis=1)
        for scale in self.scales:
            # Kernel 2 * scale with stride scale: each output blends two neighbouring frames.
            x = nn.ConvTranspose(
                x.shape[-1], (2 * scale,), strides=(scale,), padding="SAME",
                kernel_init=_half_identity_init, dtype=self.dtype,
            )(x)
        return x
