"""Pooling over the spatial axes of NHWC images, with PyTorch's sizing rules.

The spectrogram CNNs (AlexNet, VGG, GoogLeNet, ResNet, DenseNet, SqueezeNet, Cnn14) are
defined by their torchvision / PANNs layouts, so their pools follow `torch.nn` exactly:

- `adaptive_avg_pool` / `adaptive_max_pool`: output bin i covers inputs
  floor(i * in / out) to ceil((i + 1) * in / out), as `nn.AdaptiveAvgPool2d`; bins overlap
  when `in` is not a multiple of `out` and repeat inputs when in < out. This is what keeps
  AlexNet's and VGG's classifier sizes (256 * 6 * 6, 512 * 7 * 7) whatever the input size.
- `max_pool` / `avg_pool`: `nn.MaxPool2d` (zero or symmetric padding, `ceil_mode`) and
  `nn.AvgPool2d` (no padding, floor).

One deliberate extension: log-mel inputs are small (1 s of audio is ~100 frames x 64 mels),
and where torch would produce a zero-sized axis (an input smaller than the window) these
pools instead cover what is there with one output position. For every input torch accepts,
the result is identical to torch's.

`as_image` is the input adapter the same models share: [batch, frames, mels] -> NHWC.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn


def as_image(x: jax.Array) -> jax.Array:
    """A spectrogram batch [batch, frames, mel_bins] as a 1-channel image [b, frames, mels, 1]."""
    if x.ndim != 3:
        raise ValueError(
            f"expected a log-mel batch [batch, frames, mel_bins], got shape {tuple(x.shape)}; "
            "add a batch axis for a single example"
        )
    return x[..., None]


def adaptive_bins(in_size: int, out_size: int) -> list[tuple[int, int]]:
    """[start, end) of each of `out_size` bins over `in_size` inputs, as torch computes them."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"adaptive pooling needs positive sizes, got in={in_size}, out={out_size}")
    return [((i * in_size) // out_size, -(-((i + 1) * in_size) // out_size))
            for i in range(out_size)]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _bin_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] averaging weights: row i is 1 / len over bin i and 0 elsewhere."""
    weights = np.zeros((out_size, in_size), np.float32)
    for i, (start, end) in enumerate(adaptive_bins(in_size, out_size)):
        weights[i, start:end] = 1.0 / (end - start)
    return weights


def adaptive_avg_pool(x: jax.Array, output_size: int | Sequence[int]) -> jax.Array:
    """[b, h, w, c] -> [b, out_h, out_w, c], the mean over each bin (`AdaptiveAvgPool2d`)."""
    out_h, out_w = _pair(output_size)
    # A mean over a rectangle is a mean over rows of means over columns, so two small
    # matrix products do it with static shapes and no gather.
    rows = jnp.asarray(_bin_matrix(x.shape[1], out_h), x.dtype)
    cols = jnp.asarray(_bin_matrix(x.shape[2], out_w), x.dtype)
    return jnp.einsum("bhwc,ph,qw->bpqc", x, rows, cols)


def _adaptive_max_axis(x: jax.Array, axis: int, out_size: int) -> jax.Array:
    bins = adaptive_bins(x.shape[axis], out_size)
    parts = [jax.lax.slice_in_dim(x, s, e, axis=axis).max(axis=axis) for s, e in bins]
    return jnp.stack(parts, axis=axis)


def adaptive_max_pool(x: jax.Array, output_size: int | Sequence[int]) -> jax.Array:
    """[b, h, w, c] -> [b, out_h, out_w, c], the max over each bin (`AdaptiveMaxPool2d`)."""
    out_h, out_w = _pair(output_size)
    return _adaptive_max_axis(_adaptive_max_axis(x, 1, out_h), 2, out_w)


def pool_output_size(size: int, window: int, stride: int, padding: int = 0,
                     ceil_mode: bool = False) -> int:
    """Output length of a torch pool along one axis, at least 1 (see the module docstring)."""
    span = size + 2 * padding - window
    if span < 0:
        return 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # torch drops a last window that would start in the right padding only.
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _torch_padding(size: int, window: int, stride: int, padding: int,
                   ceil_mode: bool) -> tuple[int, int]:
    """(left, right) padding that makes a VALID reduce_window give torch's output length."""
    out = pool_output_size(size, window, stride, padding, ceil_mode)
    right = max(padding, (out - 1) * stride + window - size - padding)
    return padding, right


def max_pool(x: jax.Array, window: int, stride: int, padding: int = 0,
             ceil_mode: bool = False) -> jax.Array:
    """`nn.MaxPool2d(window, stride, padding, ceil_mode=...)` over NHWC; pads with -inf."""
    pads = [_torch_padding(n, window, stride, padding, ceil_mode) for n in x.shape[1:3]]
    return window_max(x, (window, window), (stride, stride), pads)


def window_max(x: jax.Array, window: Sequence[int], strides: Sequence[int],
               padding: Sequence[tuple[int, int]] | None = None) -> jax.Array:
    """Max over windows of x [batch, *spatial, channels] (`nn.max_pool` with explicit
    (low, high) -inf padding per spatial axis), whose gradient goes to the first maximum of
    each window in row-major order, as PyTorch's max pools route it.

    The gradient is written out tap by tap (`_window_max_grad`): XLA:CPU expands the
    select-and-scatter that `reduce_window`'s own gradient lowers to into a reduce over one
    int32 index array per axis and a scatter; without them SqueezeNet's training step ran
    1.2-1.4x faster in float32 and 1.6-2.0x in bfloat16 (experiments/benchmark/README.md)."""
    window, strides = tuple(map(int, window)), tuple(map(int, strides))
    padding = tuple((int(low), int(high)) for low, high in padding or [(0, 0)] * len(window))
    return _window_max(x, window, strides, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _window_max(x, window, strides, padding):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *window, 1), (1, *strides, 1),
                                 ((0, 0), *padding, (0, 0)))


def _window_max_forward(x, window, strides, padding):
    y = _window_max(x, window, strides, padding)
    return y, (x, y)


def _window_max_grad(window, strides, padding, residuals, grad):
    """Each tap's strided view of the -inf padded x is compared with the window maxima; the
    first tap that holds a window's maximum takes its gradient, placed back by interior
    padding. The padding is made here, not in the forward pass, which does without it."""
    x, y = residuals
    # In float32 whatever x's dtype: exact for the comparisons, and XLA:CPU would convert
    # every bfloat16 tap to float32 and back.
    dtype = grad.dtype
    x, y, grad = (a.astype(jnp.float32) for a in (x, y, grad))
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-jnp.inf)
    dx = jnp.zeros_like(x)
    taken = jnp.zeros(y.shape, bool)
    for offset in itertools.product(*map(range, window)):
        ends = [o + (n - 1) * s + 1 for o, n, s in zip(offset, y.shape[1:-1], strides)]
        view = jax.lax.slice(x, (0, *offset, 0), (x.shape[0], *ends, x.shape[-1]),
                             (1, *strides, 1))
        first = (view == y) & ~taken
        taken = taken | first
        pads = [(o, size - end, s - 1) for o, end, size, s in
                zip(offset, ends, x.shape[1:-1], strides)]
        dx = dx + jax.lax.pad(jnp.where(first, grad, 0), jnp.zeros((), grad.dtype),
                              [(0, 0, 0), *pads, (0, 0, 0)])
    unpadded = dx[(slice(None), *(slice(low, size - high) for (low, high), size
                                   in zip(padding, x.shape[1:-1])), slice(None))]
    return (unpadded.astype(dtype),)


_window_max.defvjp(_window_max_forward, _window_max_grad)


def avg_pool(x: jax.Array, window: int | Sequence[int]) -> jax.Array:
    """`nn.AvgPool2d(window)` over NHWC (stride = window, floor); an axis shorter than the
    window is averaged whole instead of vanishing."""
    win = tuple(min(w, n) for w, n in zip(_pair(window), x.shape[1:3]))
    return nn.avg_pool(x, win, win, padding="VALID")


def global_avg_pool(x: jax.Array) -> jax.Array:
    """[b, h, w, c] -> [b, c]: the mean over both spatial axes."""
    return x.mean(axis=(1, 2))


def flatten_chw(x: jax.Array) -> jax.Array:
    """[b, h, w, c] -> [b, c * h * w] in torch's NCHW order, so a torchvision classifier's
    first Linear weight maps onto the Dense kernel without permuting its rows."""
    return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], math.prod(x.shape[1:]))
