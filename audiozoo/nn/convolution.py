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

On those shapes this module computes the same convolution as a sum over kernel taps of
(strided slice of the padded input) @ (that tap's [in, out] matrix): the same products,
summed in a different order, so it matches the convolution to float32 rounding, and its
gradient is slices and matmuls too. Every other shape, and every other backend, takes
`jax.lax.conv_general_dilated` unchanged. Parameters and their layout are flax's
(`nn.Conv`'s kernel [*window, in, out]), so checkpoints and weight converters do not change.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
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
    (low, high) pads) as a sum over the kernel's taps of strided input slices @ tap matrices.
    Taps that only ever read padding add zeros and are skipped (most of a 7 x 7 kernel on a
    2 x 2 map)."""
    spatial = lhs.ndim - 2
    dilation = tuple(rhs_dilation or (1,) * spatial)
    window = rhs.shape[:spatial]
    sizes = lhs.shape[1:-1]
    x = jnp.pad(lhs, [(0, 0), *pads, (0, 0)])
    out_size = [(x.shape[1 + i] - (window[i] - 1) * dilation[i] - 1) // window_strides[i] + 1
                for i in range(spatial)]
    out_dtype = preferred_element_type or jnp.result_type(lhs, rhs)
    # A convolution accumulates low-precision products in float32; so does this sum of taps.
    accumulate = jnp.promote_types(out_dtype, jnp.float32)
    out = jnp.zeros((lhs.shape[0], *out_size, rhs.shape[-1]), accumulate)
    for tap in itertools.product(*(range(k) for k in window)):
        start = [t * d for t, d in zip(tap, dilation)]
        if not all(_reads_input(s, n, st, lo, size) for s, n, st, (lo, _), size in
                   zip(start, out_size, window_strides, pads, sizes)):
            continue
        limit = [s + (n - 1) * st + 1 for s, n, st in zip(start, out_size, window_strides)]
        piece = lax.slice(x, [0, *start, 0], [x.shape[0], *limit, x.shape[-1]],
                          [1, *window_strides, 1])
        out = out + lax.dot_general(piece, rhs[tap], (((spatial + 1,), (0,)), ((), ())),
                                    precision=precision, preferred_element_type=accumulate)
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
