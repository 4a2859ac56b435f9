"""The gated residual block of WaveNet.

WaveNet (van den Oord et al. 2016, arXiv 1609.03499): section 2.3 (gated activation
z = tanh(W_f * x) . sigmoid(W_g * x)), section 2.4 (residual and parameterised skip
connections) and section 2.5 (global conditioning adds V h, local conditioning adds V * y, in
every layer). The NSynth autoencoder and the discrete autoencoders reuse this block for their
decoders. `audiozoo.generation` runs the one-sample form, sharing `gated_activation`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.conv import CausalConv1D
from audiozoo.nn.dense import Dense


def gated_activation(h):
    """z = tanh(filter) . sigmoid(gate), the two halves of h's last axis (section 2.3); shared
    by the full pass and the one-sample generator."""
    filt, gate = jnp.split(h, 2, axis=-1)
    return jnp.tanh(filt) * jax.nn.sigmoid(gate)


class GatedResidualBlock(nn.Module):
    """Dilated causal conv -> (+ conditioning) -> tanh . sigmoid -> residual and skip 1x1s.

    The dilated conv produces `gate_channels`, split in two halves for the filter and the
    gate, so the gated activation has gate_channels / 2 channels. Returns (residual, skip).
    """

    residual_channels: int
    gate_channels: int
    skip_channels: int
    kernel_size: int = 2
    dilation: int = 1
    use_global: bool = False
    use_local: bool = False
    # The last block's residual output feeds nothing, so it has no parameters.
    residual_out: bool = True
    dtype: Any = jnp.float32  # computation; the parameters stay float32

    def setup(self):
        if self.gate_channels % 2:
            raise ValueError(
                f"gate_channels={self.gate_channels} must be even: it is split into filter and gate"
            )
        dense = functools.partial(Dense, dtype=self.dtype)
        self.dilated = CausalConv1D(self.gate_channels, self.kernel_size, self.dilation,
                                    dtype=self.dtype)
        self.global_proj = dense(self.gate_channels, use_bias=False) if self.use_global else None
        self.local_proj = dense(self.gate_channels, use_bias=False) if self.use_local else None
        self.skip_proj = dense(self.skip_channels)
        self.residual_proj = dense(self.residual_channels) if self.residual_out else None

    def __call__(self, x, global_cond=None, local_cond=None):
        """x: [batch, time, residual]; global_cond: [batch, dim]; local_cond: [batch, time, dim]."""
        if global_cond is not None:
            global_cond = global_cond[:, None, :]  # the same vector at every time step
        return self._gate(x, self.dilated(x), global_cond, local_cond)

    def _gate(self, x, h, global_cond, local_cond):
        if self.global_proj is not None:
            h = h + self.global_proj(global_cond)
        if self.local_proj is not None:
            h = h + self.local_proj(local_cond)
        z = gated_activation(h)
        # x + (z W + b), the bias inside: written (x + z W) + b, XLA:CPU fused the residual
        # sums into the dilated convs' gradient transposes and recomputed the whole residual
        # stream in every layer's backward pass, nearly doubling a 20-layer WaveNet's gradient.
        residual = x if self.residual_proj is None else x.astype(self.dtype) + self.residual_proj(z)
        return residual, self.skip_proj(z)
