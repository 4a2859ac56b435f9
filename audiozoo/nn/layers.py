"""Small layer factories shared by the convolutional classifiers, with torchvision's
conventions: symmetric `kernel // 2` padding, bias-free convs before batch norm, and batch norm
statistics in the explicit `batch_stats` collection (momentum 0.9 = torch's 0.1)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.convolution import Conv


def batch_norm(train: bool, *, axis: int = -1, epsilon: float = 1e-5, dtype: Any = jnp.float32,
               name: str | None = None) -> nn.BatchNorm:
    """Batch statistics in training, running averages in evaluation."""
    return nn.BatchNorm(use_running_average=not train, axis=axis, momentum=0.9, epsilon=epsilon,
                        dtype=dtype, name=name)


def torch_conv(features: int, kernel: int, stride: int = 1, *, kernel_init,
               use_bias: bool = False, dtype: Any = jnp.float32,
               name: str | None = None) -> nn.Conv:
    """A square conv padded like torch's `padding=kernel // 2`."""
    pad = kernel // 2
    return Conv(features, (kernel, kernel), (stride, stride), padding=[(pad, pad)] * 2,
                use_bias=use_bias, kernel_init=kernel_init, dtype=dtype, name=name)
