"""The convolution audiozoo's conv layers run (the CNNs, SincNet, AST's patch embedding,
wav2vec 2.0's feature encoder, the NSynth encoder, GANSynth's equalised convs):
`jax.lax.conv_general_dilated`, except where XLA:CPU's convolution is pathologically slow.
WaveNet's causal conv and wav2vec 2.0's grouped positional conv call lax directly: their maps
are long sequences, never the small maps below.

XLA:CPU's convolution is fast on ordinary maps and very slow when the input map has fewer
positions than the kernel has taps (a 3 x 3 conv over a 2 x 2 or 4 x 2 map, a 5 x 5 conv over
4 x 4): up to about 100x slower than the same arithmetic as matrix products
(`experiments/benchmark/conv_paths.py`). The late stages of every CNN on short spectrograms
live there (ResNet-18's last stage on a 1 s log-mel sees 4 x 2). The gradients of a strided
conv are slow up to four times as many positions.

On those shapes this module computes the same convolution as one matrix product: the
strided slices of the padded input that the kernel's taps read, side by side along the
channels, @ the kernel as a [taps * in, out] matrix: the same products, summed in a different
order, so it matches the convolution to float32 rounding, and its gradient is slices and a
matmul too. Every other shape, and every other backend, takes
`jax.lax.conv_general_dilated` unchanged. Parameters and their layout are flax's
(`nn.Conv`'s kernel [*window, in, out]), so checkpoints and weight converters do not change.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
    """`jax.lax.conv_general_dilated` with the same signature and result; small maps on CPU
    go through `conv_as_tap_matmuls`."""
    args = (lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count, precision, preferred_element_type)
    pads = _tap_matmul_pads(*args[:9])
    if pads is None or not _cpu_conv_is_slow(lhs.shape, rhs.shape, window_strides):
        return lax.conv_general_dilated(*args)
    return conv_as_tap_matmuls(lhs, rhs, window_strides, pads, rhs_dilation, precision,
                               preferred_element_type)


def conv_as_tap_matmuls(lhs, rhs, window_strides, pads, rhs_dilation=None, precision=None,
                        preferred_element_type=None):
    """Channels-last convolution (lhs [batch, *spatial, in], rhs [*window, in, out], explicit
    (low, high) pads) as one matmul: the strided input slices of the kernel's taps side by
    side along the channels [batch, *out_spatial, taps * in] @ the kernel as [taps * in, out].
    Taps that only ever read padding add zeros and are left out (most of a 7 x 7 kernel on a
    2 x 2 map). One matmul rather than one per tap: a per-tap matmul would copy its tap's
    [in, out] slice out of the kernel every call (9 MB per 3 x 3 x 512 x 512 kernel)."""
    spatial = lhs.ndim - 2
    dilation = tuple(rhs_dilation or (1,) * spatial)
    window = rhs.shape[:spatial]
    sizes = lhs.shape[1:-1]
    x = jnp.pad(lhs, [(0, 0), *pads, (0, 0)])
    out_size = [(x.shape[1 + i] - (window[i] - 1) * dilation[i] - 1) // window_strides[i] + 1
                for i in range(spatial)]
    taps = [tap for tap in itertools.product(*(range(k) for k in window))
            if all(_reads_input(t * d, n, st, lo, size) for t, d, n, st, (lo, _), size in
                   zip(tap, dilation, out_size, window_strides, pads, sizes))]
    pieces = []
    for tap in taps:
        start = [t * d for t, d in zip(tap, dilation)]
        limit = [s + (n - 1) * st + 1 for s, n, st in zip(start, out_size, window_strides)]
        pieces.append(lax.slice(x, [0, *start, 0], [x.shape[0], *limit, x.shape[-1]],
                                [1, *window_strides, 1]))
    kernel = rhs.reshape(-1, *rhs.shape[-2:])  # [taps, in, out], row-major like `taps`
    if len(taps) < kernel.shape[0]:
        kernel = kernel[jnp.asarray([np.ravel_multi_index(tap, window) for tap in taps])]
    out_dtype = preferred_element_type or jnp.result_type(lhs, rhs)
    # A convolution accumulates low-precision products in float32; so does this matmul.
    accumulate = jnp.promote_types(out_dtype, jnp.float32)
    out = lax.dot_general(jnp.concatenate(pieces, axis=-1), kernel.reshape(-1, rhs.shape[-1]),
                          (((spatial + 1,), (0,)), ((), ())), precision=precision,
                          preferred_element_type=accumulate)
    return out.astype(out_dtype)


def _reads_input(start: int, count: int, stride: int, low_pad: int, size: int) -> bool:
    """Whether padded positions start, start + stride, ... (count of them) meet the input,
    which occupies padded positions low_pad .. low_pad + size - 1."""
    first = max(0, -(-(low_pad - start) // stride))  # first step at or past the input's start
    return first < count and start + first * stride < low_pad + size


def _tap_matmul_pads(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                     dimension_numbers, feature_group_count, batch_group_count):
    """The explicit pads if this convolution is one `conv_as_tap_matmuls` computes (channels
    last, kernel window-first, no input dilation, no groups, non-negative pads, a non-empty
    output), else None."""
    spatial = lhs.ndim - 2
    if spatial < 1 or feature_group_count != 1 or batch_group_count != 1:
        return None
    if lhs_dilation is not None and any(d != 1 for d in lhs_dilation):
        return None
    dims = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    channels_last = (0, spatial + 1, *range(1, spatial + 1))
    if dims.lhs_spec != channels_last or dims.out_spec != channels_last:
        return None
    if dims.rhs_spec != (spatial + 1, spatial, *range(spatial)):
        return None
    dilation = tuple(rhs_dilation or (1,) * spatial)
    window = [(k - 1) * d + 1 for k, d in zip(rhs.shape[:spatial], dilation)]
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(lhs.shape[1:-1], window, window_strides, padding)
    else:
        pads = [tuple(p) for p in padding]
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        return None
    if any(n + lo + hi < w for n, (lo, hi), w in zip(lhs.shape[1:-1], pads, window)):
        return None
    return pads


def _cpu_conv_is_slow(lhs_shape, rhs_shape, window_strides) -> bool:
    """Where XLA:CPU's convolution (or its gradient) is many times slower than tap matmuls:
    an input map with fewer positions than the kernel has taps, or, for a strided conv (whose
    gradients are slow on wider maps), fewer than four times as many (the regions measured
    by `experiments/benchmark/conv_paths.py --grid`)."""
    if jax.default_backend() != "cpu":
        return False
    spatial = len(lhs_shape) - 2
    positions = math.prod(lhs_shape[1:-1])
    taps = math.prod(rhs_shape[:spatial])
    strided = any(s != 1 for s in window_strides)
    return positions < (4 * taps if strided else taps)


# flax's nn.Conv running the convolution above: the layer audiozoo's conv models build.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)
