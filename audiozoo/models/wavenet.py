"""WaveNet: a generative model of raw audio.

van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio", arXiv 1609.03499.
Implements section 2.1 (dilated causal convolutions, any kernel size and dilation schedule),
2.2 (softmax over mu-law classes), 2.3 (gated activation units), 2.4 (residual and skip
connections; output stack relu -> 1x1 -> relu -> 1x1) and 2.5 (global conditioning by an id
embedding or a vector, local conditioning upsampled by a learned transposed-conv stack or by
repetition). The discretized mixture-of-logistics head is the 16-bit extension of PixelCNN++
(Salimans et al. 2017) as used by later WaveNet vocoders. `skip_start` starts the skip sum from
a 1x1 of the embedded input, as the NSynth decoder of magenta's nsynth/wavenet/h512_bo16.py
does (its `skip_start` conv); that decoder also reads each sample as one value, its mu-law
class c as c / (num_classes / 2) - 1, through a causal kernel-3 conv (`scalar_input`,
`input_kernel=3`: its `startconv`).

Contract: `logits = net.apply(variables, codes)` with codes int32 [batch, time] gives
[batch, time, num_classes] (softmax head) or [batch, time, 3 * num_mixtures] (MoL head), and
logits[:, t] predicts codes[:, t + 1]. `audiozoo.generation` runs the same network one sample
at a time with per-layer ring buffers, through `fast_params`, `embed_codes` and
`output_stack`.

Mixed precision: `dtype` is the computation dtype (e.g. jnp.bfloat16) of every layer; the
parameters stay float32. The logits come out in float32 whatever `dtype` is (`LogitsDense`):
they feed a softmax or a mixture-of-logistics likelihood, both computed in float32.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from audiozoo.audio.mulaw import linear_dequantize
from audiozoo.nn.conv import CausalConv1D, dilation_schedule
from audiozoo.nn.dense import Dense, dot_general
from audiozoo.nn.gated import GatedResidualBlock
from audiozoo.nn.mixture_logistics import mol_num_params
from audiozoo.nn.upsample import ConditionUpsampler

OUTPUTS = ("softmax", "mol")


def _check_code_range(codes, num_classes: int) -> None:
    """Codes outside [0, num_classes) would read NaN embedding rows. Concrete codes (a call
    outside jit) are checked here; traced ones cannot be, and give NaN logits instead."""
    if isinstance(codes, jax.core.Tracer) or not codes.size:
        return
    if not jnp.issubdtype(codes.dtype, jnp.integer):
        raise ValueError(f"codes must be integers (e.g. mu_law_quantize(audio)), got {codes.dtype}")
    values = np.asarray(codes)  # numpy: inside another trace, jnp ops would be traced too
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"codes must be in [0, {num_classes}) (num_classes), got values "
                         f"{low}..{high}")


class LogitsDense(nn.Module):
    """nn.Dense (the same parameters and initialisation) whose output is float32 logits: the
    product runs in `dtype`, the accumulation and the bias in float32. A bfloat16 output
    would round mixture means to 2^-8 of their size, hundreds of 16-bit bins. The full pass
    and the one-sample generator both run this layer, so both round alike."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        x = x.astype(self.dtype)
        y = dot_general(x, kernel.astype(x.dtype), (((x.ndim - 1,), (0,)), ((), ())),
                        preferred_element_type=jnp.float32)
        return y + bias


class WaveNet(nn.Module):
    """Autoregressive WaveNet over integer sample codes (see the module docstring)."""

    num_layers: int = 20
    num_stacks: int = 2
    kernel_size: int = 2
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 64
    num_classes: int = 256
    output: str = "softmax"
    num_mixtures: int = 10
    # An explicit schedule overrides num_layers / num_stacks (e.g. non-powers of two).
    dilations: Sequence[int] | None = None
    # Global conditioning: ids in [0, num_global_ids) embedded to global_channels, or, with
    # num_global_ids == 0 and global_channels > 0, float vectors [batch, global_channels].
    num_global_ids: int = 0
    global_channels: int = 0
    # Local conditioning: [batch, frames, local_channels], upsampled by prod(upsample_scales).
    local_channels: int = 0
    upsample_scales: Sequence[int] = ()
    upsample: str = "transposed"
    # Also add the local features, through a 1x1, after the output stack's first 1x1 (the
    # NSynth decoder, Engel et al. 2017, section 3.1).
    condition_output: bool = False
    # Start the skip sum from a 1x1 (with bias) of the embedded input, before any layer's
    # skip is added: the `skip_start` conv of magenta's nsynth/wavenet/h512_bo16.py
    # (Config.build), which reads the output of the decoder's start conv. Off: the sum starts
    # at zero, as in van den Oord et al. 2016.
    skip_start: bool = False
    # Read softmax-head codes as values c / (num_classes / 2) - 1 (the companded sample, as
    # magenta's NSynth decoder reads `x_scaled`) through a conv with bias, not an embedding
    # table. The MoL head always reads values (the linear class centres).
    scalar_input: bool = False
    # Width of that input conv: > 1 makes it causal over the last input_kernel values (the
    # kernel-3 `startconv` of h512_bo16.py); 1 is a per-sample 1x1.
    input_kernel: int = 1
    # The computation dtype (jnp.bfloat16 for mixed precision); parameters stay float32.
    dtype: Any = jnp.float32

    # ---- static structure -------------------------------------------------------------
    @property
    def layer_dilations(self) -> tuple[int, ...]:
        if self.dilations is not None:
            return tuple(int(d) for d in self.dilations)
        return dilation_schedule(self.num_layers, self.num_stacks)

    @property
    def receptive_field(self) -> int:
        """Samples that logits[:, t] can see: codes[t - receptive_field + 1 : t + 1]."""
        return self.input_kernel + (self.kernel_size - 1) * sum(self.layer_dilations)

    @property
    def reads_values(self) -> bool:
        """Whether the input layer reads each code as a value rather than a table row."""
        return self.scalar_input or self.output == "mol"

    @property
    def hop_length(self) -> int:
        """Audio samples per local-conditioning frame."""
        return math.prod(self.upsample_scales)

    @property
    def output_channels(self) -> int:
        return self.num_classes if self.output == "softmax" else mol_num_params(self.num_mixtures)

    @property
    def uses_global(self) -> bool:
        return self.num_global_ids > 0 or self.global_channels > 0

    @property
    def uses_local(self) -> bool:
        return self.local_channels > 0

    def setup(self):
        self._check_fields()
        dense = functools.partial(Dense, dtype=self.dtype)
        if not self.reads_values:
            # One-hot input followed by a 1x1 conv, as a lookup table.
            self.input_proj = nn.Embed(self.num_classes, self.residual_channels, dtype=self.dtype)
        elif self.input_kernel > 1:
            self.input_proj = CausalConv1D(self.residual_channels, self.input_kernel,
                                           dtype=self.dtype)
        else:
            # The sample value itself, as a scalar in [-1, 1].
            self.input_proj = dense(self.residual_channels)
        if self.num_global_ids > 0:
            self.global_embed = nn.Embed(self.num_global_ids, self.global_channels,
                                         dtype=self.dtype)
        if self.uses_local:
            self.upsampler = ConditionUpsampler(tuple(self.upsample_scales), self.upsample,
                                                dtype=self.dtype)
        dilations = self.layer_dilations
        self.blocks = [
            GatedResidualBlock(
                self.residual_channels, self.gate_channels, self.skip_channels,
                self.kernel_size, d, use_global=self.uses_global, use_local=self.uses_local,
                residual_out=i < len(dilations) - 1, dtype=self.dtype,
            )
            for i, d in enumerate(dilations)
        ]
        if self.skip_start:
            self.skip_start_proj = dense(self.skip_channels)
        self.output_hidden = dense(self.skip_channels)
        if self.condition_output:
            self.output_cond = dense(self.skip_channels, use_bias=False)
        self.output_logits = LogitsDense(self.output_channels, dtype=self.dtype)

    def _check_fields(self):
        if self.output not in OUTPUTS:
            raise ValueError(f"output={self.output!r} is not one of {OUTPUTS}")
        if self.kernel_size < 1:
            raise ValueError(f"kernel_size={self.kernel_size} must be >= 1")
        if self.input_kernel < 1 or (self.input_kernel > 1 and not self.reads_values):
            raise ValueError(f"input_kernel={self.input_kernel} must be >= 1, and > 1 needs an "
                             "input of values (scalar_input=True or the MoL head)")
        if any(d < 1 for d in self.layer_dilations):
            raise ValueError(f"dilations {self.layer_dilations} must all be >= 1")
        if self.num_global_ids > 0 and self.global_channels < 1:
            raise ValueError("num_global_ids > 0 needs global_channels (the embedding size) >= 1")
        if self.uses_local and not self.upsample_scales:
            raise ValueError("local_channels > 0 needs upsample_scales (product = hop length)")
        if self.condition_output and not self.uses_local:
            raise ValueError("condition_output=True needs local conditioning (local_channels > 0)")

    # ---- full-sequence forward pass -----------------------------------------------------
    def __call__(self, codes, global_cond=None, local_cond=None):
        """codes int [batch, time] -> float32 logits [batch, time, output_channels]."""
        codes = jnp.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be [batch, time], got shape {codes.shape}")
        _check_code_range(codes, self.num_classes)
        g = self.global_vector(global_cond, codes.shape[0])
        c = self.upsample_local(local_cond, codes.shape[0], codes.shape[1])
        return self.trunk(codes, g, c)

    def trunk(self, codes, global_vector=None, local_samples=None):
        """The network on prepared conditioning: the global vector [batch, dim] and local
        features already at the audio rate [batch, time, ch]."""
        x = self.embed_codes(codes)
        skips = self.skip_start_proj(x) if self.skip_start else 0.0
        for block in self.blocks:
            x, skip = block(x, global_vector, local_samples)
            skips = skips + skip
        return self.output_stack(skips, local_samples)

    # ---- pieces shared by the full pass and the one-step form ---------------------------
    def embed_codes(self, codes):
        if not self.reads_values:
            return self.input_proj(codes)
        return self.embed_values(self.input_values(codes))

    def input_values(self, codes):
        """Codes [...] -> the values the input layer reads, float32 [..., 1]."""
        if self.output == "mol":
            return linear_dequantize(codes, self.num_classes)[..., None]
        return (codes.astype(jnp.float32) / (self.num_classes / 2) - 1.0)[..., None]

    def embed_values(self, values):
        """The input layer on values [batch, time, 1] (with input_kernel > 1 a causal conv,
        so the one-sample generator runs it on a window of the last input_kernel values)."""
        return self.input_proj(values)

    def output_stack(self, skips, local_samples=None):
        hidden = self.output_hidden(nn.relu(skips))
        if self.condition_output:
            hidden = hidden + self.output_cond(local_samples)
        return self.output_logits(nn.relu(hidden))

    def global_vector(self, global_cond, batch: int):
        """The per-utterance conditioning vector [batch, dim] (or None)."""
        if not self.uses_global:
            if global_cond is not None:
                raise ValueError("global_cond given, but the model has no global conditioning")
            return None
        if global_cond is None:
            raise ValueError("this WaveNet is globally conditioned: pass global_cond")
        global_cond = jnp.asarray(global_cond)
        if self.num_global_ids > 0:
            if global_cond.shape != (batch,) or not jnp.issubdtype(global_cond.dtype, jnp.integer):
                raise ValueError(
                    f"global_cond must be int ids of shape ({batch},), got "
                    f"{global_cond.dtype}{list(global_cond.shape)}"
                )
            return self.global_embed(global_cond)
        if global_cond.shape != (batch, self.global_channels):
            raise ValueError(
                f"global_cond must be [{batch}, {self.global_channels}] floats, got "
                f"{list(global_cond.shape)}"
            )
        return global_cond.astype(self.dtype)

    # ---- the one-sample form, for audiozoo.generation -----------------------------------
    def fast_params(self):
        """The layers' parameters rearranged for one-sample steps, stacked over layers:

        present: per layer [residual, gate] (the dilated kernel's last tap), past [layers,
        (kernel - 1) * residual, gate] (its other taps, oldest first), bias [layers, gate],
        global [layers, global_dim, gate], local [local_ch, layers * gate],
        res_kernel/res_bias for every layer but the last, skip_kernel [layers * gate / 2,
        skip] with the skip biases summed (with skip_start, the start 1x1's kernel comes
        first, [residual + layers * gate / 2, skip], and its bias is in the sum). The input
        and output layers run through `embed_codes` and `output_stack` themselves.
        """
        blocks = [b.variables["params"] for b in self.blocks]
        skips = [b["skip_proj"] for b in blocks]
        if self.skip_start:  # one matmul for every skip, the start one included
            skips = [self.skip_start_proj.variables["params"], *skips]
        taps = jnp.stack([b["dilated"]["kernel"] for b in blocks])  # [layers, kernel, res, gate]
        packed = {
            # Per-layer arrays, not one stacked array: XLA:CPU copies a slice of a stacked
            # weight out before every matmul, every step.
            "present": list(taps[:, -1]),
            "past": taps[:, :-1].reshape(taps.shape[0], -1, taps.shape[-1]),
            "bias": jnp.stack([b["dilated"]["bias"] for b in blocks]),
            "res_kernel": [b["residual_proj"]["kernel"] for b in blocks[:-1]],
            "res_bias": [b["residual_proj"]["bias"] for b in blocks[:-1]],
            "skip_kernel": jnp.concatenate([s["kernel"] for s in skips]),
            "skip_bias": sum(s["bias"] for s in skips),
        }
        if self.uses_global:
            packed["global"] = jnp.stack([b["global_proj"]["kernel"] for b in blocks])
        if self.uses_local:
            packed["local"] = jnp.concatenate([b["local_proj"]["kernel"] for b in blocks], 1)
        return packed

    def upsample_local(self, local_cond, batch: int, num_samples: int):
        """Frame-rate features [batch, frames, ch] -> [batch, num_samples, ch] (or None)."""
        if not self.uses_local:
            if local_cond is not None:
                raise ValueError("local_cond given, but the model has no local conditioning")
            return None
        if local_cond is None:
            raise ValueError("this WaveNet is locally conditioned: pass local_cond")
        local_cond = jnp.asarray(local_cond)
        needed = -(-num_samples // self.hop_length)
        if (local_cond.ndim != 3 or local_cond.shape[0] != batch
                or local_cond.shape[2] != self.local_channels or local_cond.shape[1] < needed):
            raise ValueError(
                f"local_cond must be [{batch}, >= {needed} frames, {self.local_channels}] for "
                f"{num_samples} samples at hop {self.hop_length}, got {list(local_cond.shape)}"
            )
        return self.upsampler(local_cond)[:, :num_samples]
