"""DenseNet on log-mel spectrograms.

Huang, Liu, van der Maaten & Weinberger 2017, "Densely Connected Convolutional Networks"
(CVPR), section 3 and Table 1: DenseNet-BC, where each layer is BN-ReLU-1x1 conv
(bn_size * growth channels) -> BN-ReLU-3x3 conv (growth channels) and its output is
concatenated onto its input; transitions are BN-ReLU-1x1 conv (compression 0.5) -> 2 x 2
average pool. DenseNet-121: growth 32, 64 stem channels, blocks of (6, 12, 24, 16) layers.
torchvision's layout: a 7 x 7 stride-2 stem conv + BN + ReLU + 3 x 3 stride-2 max pool, a final
BN + ReLU, global average pooling and one Linear.

Adapted to audio: the input is a log-mel batch [batch, frames, mel_bins], read as a
1-channel image, so the stem conv has 1 input channel; with num_classes=1000 the parameter
count is torchvision's minus 2 * 64 * 7 * 7. The transitions' 2 x 2 average pool averages a
1-wide map whole instead of emptying it (torch would fail), so inputs below 32 x 32 still run.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.dense import Dense
from audiozoo.nn.layers import batch_norm, torch_conv
from audiozoo.nn.pooling import as_image, avg_pool, global_avg_pool, max_pool

# torchvision's init: kaiming_normal_ (fan_in) for convs, zero bias for the Linear.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def conv(features: int, kernel: int, stride: int = 1, name: str | None = None, *,
         dtype: Any = jnp.float32) -> nn.Conv:
    return torch_conv(features, kernel, stride, kernel_init=CONV_INIT, dtype=dtype, name=name)


def _layers(train: bool, dtype: Any):
    """(conv, batch norm) factories computing in `dtype`."""
    return (functools.partial(conv, dtype=dtype),
            functools.partial(batch_norm, train, dtype=dtype))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv -> BN-ReLU-3x3 conv; returns the input with the new maps appended."""

    growth_rate: int
    bn_size: int
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cv, bn = _layers(train, self.dtype)
        y = cv(self.bn_size * self.growth_rate, 1, name="conv1")(nn.relu(bn(name="norm1")(x)))
        y = cv(self.growth_rate, 3, name="conv2")(nn.relu(bn(name="norm2")(y)))
        y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        return jnp.concatenate([x, y], axis=-1)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv to `features` channels -> 2 x 2 average pool."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cv, bn = _layers(train, self.dtype)
        x = cv(self.features, 1, name="conv")(nn.relu(bn(name="norm")(x)))
        return avg_pool(x, 2)


class DenseNet(nn.Module):
    """DenseNet-BC family; `features` is the pooled embedding after the final BN + ReLU."""

    num_classes: int = 1000
    growth_rate: int = 32
    block_config: Sequence[int] = (6, 12, 24, 16)
    num_init_features: int = 64
    bn_size: int = 4
    compression: float = 0.5
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmel"

    def setup(self):
        self.head = Dense(self.num_classes, bias_init=nn.initializers.zeros,
                          dtype=self.dtype, name="classifier")

    @nn.compact
    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        cv, bn = _layers(train, self.dtype)
        x = cv(self.num_init_features, 7, 2, "conv0")(as_image(x).astype(self.dtype))
        x = max_pool(nn.relu(bn(name="norm0")(x)), 3, 2, padding=1)
        for b, num_layers in enumerate(self.block_config):
            for i in range(num_layers):
                x = DenseLayer(self.growth_rate, self.bn_size, self.dropout_rate,
                               dtype=self.dtype, name=f"block{b + 1}_layer{i + 1}")(x, train)
            if b < len(self.block_config) - 1:
                x = Transition(int(x.shape[-1] * self.compression), dtype=self.dtype,
                               name=f"transition{b + 1}")(x, train)
        return global_avg_pool(nn.relu(bn(name="norm5")(x)))

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train))


DenseNet121 = functools.partial(DenseNet, growth_rate=32, block_config=(6, 12, 24, 16),
                                num_init_features=64)
DenseNet169 = functools.partial(DenseNet, growth_rate=32, block_config=(6, 12, 32, 32),
                                num_init_features=64)
