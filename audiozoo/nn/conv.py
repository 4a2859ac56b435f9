"""Causal dilated 1-D convolution and the dilation schedule of a stack of them.

WaveNet (van den Oord et al. 2016, arXiv 1609.03499), sections 2.1 and 2.3: a causal
convolution only sees the present and the past, and dilation d skips d - 1 samples between
taps, so a stack of dilations 1, 2, 4, ... grows the receptive field exponentially
(`dilation_schedule`; the NSynth encoder, Engel et al. 2017 section 3.1, uses the same one).

`audiozoo.generation` runs the one-sample form (the Fast WaveNet idea, Paine et al. 2016): a
layer needs only its last (kernel_size - 1) * dilation inputs, kept in a fixed-size ring buffer.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn


def dilation_schedule(num_layers: int, num_stacks: int) -> tuple[int, ...]:
    """Dilations 1, 2, 4, ... doubling within a stack and restarting at 1 for each stack."""
    if num_layers < 1 or num_stacks < 1 or num_layers % num_stacks:
        raise ValueError(
            f"num_layers={num_layers} must be a positive multiple of num_stacks={num_stacks}"
        )
    per_stack = num_layers // num_stacks
    return tuple(2 ** (i % per_stack) for i in range(num_layers))


class CausalConv1D(nn.Module):
    """Conv over [batch, time, channels] whose output at t depends on inputs <= t only.

    The kernel is stored as [kernel_size, in, out]; tap j looks (kernel_size - 1 - j) * dilation
    samples into the past, so the last tap is the present sample.
    """

    features: int
    kernel_size: int = 2
    dilation: int = 1
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32  # computation; the parameters stay float32

    @property
    def history(self) -> int:
        """How many past inputs one output needs: the size of this layer's ring buffer."""
        return (self.kernel_size - 1) * self.dilation

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", self.kernel_init, (self.kernel_size, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        x = x.astype(self.dtype)
        # All padding on the left: the output at t never sees x[t + 1:].
        y = jax.lax.conv_general_dilated(
            x,
            kernel.astype(x.dtype),
            window_strides=(1,),
            padding=[(self.history, 0)],
            rhs_dilation=(self.dilation,),
            dimension_numbers=("NWC", "WIO", "NWC"),
        )
        return y if bias is None else y + bias.astype(x.dtype)
