"""The non-causal dilated encoder of the WaveNet autoencoder, shared by the discrete ones.

Engel et al. 2017, "Neural Audio Synthesis of Musical Notes with WaveNet Autoencoders"
(arXiv 1704.01279), section 3.1 and figure 1: a conv, then residual blocks
relu -> dilated non-causal conv (kernel 3) -> relu -> 1x1, with dilation 2^(i mod 10) over
30 layers and 128 channels; a 1x1 down to the latent width; average pooling over `hop`
samples (512 in the paper: a 4 s, 64000-sample note gives 125 frames). The autoregressive
discrete autoencoders (Dieleman et al. 2018) use the same stack with their own hop and a
quantiser after it.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.conv import dilation_schedule
from audiozoo.nn.convolution import Conv
from audiozoo.nn.dense import Dense


class DilatedEncoder(nn.Module):
    """[batch, time, in] -> [batch, ceil(time / hop), out_channels].

    A time that is not a multiple of hop is zero-padded at the end, so every sample falls in
    a frame (the last frame averages over the padding too).
    """

    num_layers: int = 30
    num_stacks: int = 3
    kernel_size: int = 3
    channels: int = 128
    out_channels: int = 16
    hop_length: int = 512
    dtype: Any = jnp.float32  # computation (and output); the parameters stay float32

    @property
    def dilations(self) -> tuple[int, ...]:
        try:
            return dilation_schedule(self.num_layers, self.num_stacks)
        except ValueError as e:  # say which stack of the autoencoder is misconfigured
            raise ValueError(f"encoder {e}") from None

    @property
    def receptive_field(self) -> int:
        """Samples each pre-pooling output sees, centred on it (before the hop's pooling)."""
        return self.kernel_size + (self.kernel_size - 1) * sum(self.dilations)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 3:
            raise ValueError(f"encoder input must be [batch, time, channels], got {x.shape}")
        if self.hop_length < 1:
            raise ValueError(f"hop_length={self.hop_length} must be >= 1")
        conv = functools.partial(Conv, self.channels, (self.kernel_size,), padding="SAME",
                                 dtype=self.dtype)
        dense = functools.partial(Dense, dtype=self.dtype)
        h = conv(name="start")(x)
        for i, dilation in enumerate(self.dilations):
            r = conv(kernel_dilation=(dilation,), name=f"dilated_{i}")(nn.relu(h))
            h = h + dense(self.channels, name=f"residual_{i}")(nn.relu(r))
        return average_pool(dense(self.out_channels, name="latent")(h), self.hop_length)


def average_pool(x: jax.Array, hop: int) -> jax.Array:
    """Mean over consecutive hop-long windows of [batch, time, ch], zero-padding the end (in
    x's dtype; jnp.mean sums bfloat16 in float32)."""
    frames = -(-x.shape[1] // hop)
    x = jnp.pad(x, ((0, 0), (0, frames * hop - x.shape[1]), (0, 0)))
    return x.reshape(x.shape[0], frames, hop, x.shape[2]).mean(axis=2)
