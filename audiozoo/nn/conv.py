"""Causal dilated 1-D convolution, in full-sequence and one-step form.

WaveNet (van den Oord et al. 2016, arXiv 1609.03499), sections 2.1 and 2.3: a causal
convolution only sees the present and the past, and dilation d skips d - 1 samples between
taps, so a stack of dilations 1, 2, 4, ... grows the receptive field exponentially.

The one-step form (`CausalConv1D.step`) is the Fast WaveNet idea (Paine et al. 2016): a layer
needs only its last (kernel_size - 1) * dilation inputs, kept in a fixed-size ring buffer.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn


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

    def step(self, x_t: jax.Array, past: jax.Array) -> jax.Array:
        """One output sample from the present input x_t [batch, in] and its past taps.

        past: [batch, kernel_size - 1, in], the inputs (kernel_size - 1) * dilation, ...,
        1 * dilation samples ago, oldest first (what the ring buffer holds for this layer).
        Reads the parameters `__call__` created, so it never initialises anything itself.
        """
        kernel = self.get_variable("params", "kernel")
        bias = self.get_variable("params", "bias") if self.use_bias else None
        taps = jnp.concatenate([past, x_t[:, None, :]], axis=1)  # [batch, kernel, in]
        taps = taps.astype(self.dtype)
        y = jnp.einsum("bki,kio->bo", taps, kernel.astype(self.dtype))
        return y if bias is None else y + bias.astype(self.dtype)
