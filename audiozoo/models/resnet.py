"""ResNet on log-mel spectrograms.

He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition" (CVPR), section
3.3 and Table 1: a 7 x 7 stride-2 stem conv and 3 x 3 stride-2 max pool, four stages of
residual blocks (64, 128, 256, 512 base widths; the first block of stages 2-4 halves the map),
global average pooling and one Linear. Two-layer basic blocks for ResNet18/34, 1-3-1
bottleneck blocks (4x expansion) for ResNet50+. As torchvision (v1.5), a bottleneck puts its
stride on the 3 x 3 conv, and a shortcut that changes shape is a 1 x 1 conv + batch norm
(option B of section 3.3). Structured like flax's examples/imagenet.

Adapted to audio: the input is a log-mel batch [batch, frames, mel_bins], read as a
1-channel image, so the stem conv has 1 input channel; with num_classes=1000 the parameter
count is torchvision's minus 2 * 64 * 7 * 7. Paddings are torch's explicit ones (not 'SAME')
so torchvision weights map one to one. Every stride-2 layer pads, so any input of at least
1 x 1 keeps a non-empty map.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.dense import Dense
from audiozoo.nn.layers import batch_norm, torch_conv
from audiozoo.nn.pooling import as_image, global_avg_pool, max_pool

# torchvision's init: kaiming_normal_(mode="fan_out", nonlinearity="relu") for every conv.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv(features: int, kernel: int, stride: int = 1, name: str | None = None, *,
         dtype: Any = jnp.float32) -> nn.Conv:
    return torch_conv(features, kernel, stride, kernel_init=CONV_INIT, dtype=dtype, name=name)


class BasicBlock(nn.Module):
    """3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus the (projected) input, -> ReLU."""

    filters: int
    stride: int = 1
    dtype: Any = jnp.float32
    expansion: ClassVar[int] = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cv, bn = _layers(train, self.dtype)
        y = nn.relu(bn(name="bn1")(cv(self.filters, 3, self.stride, "conv1")(x)))
        y = bn(name="bn2")(cv(self.filters, 3, name="conv2")(y))
        return nn.relu(y + shortcut(x, y.shape[-1], self.stride, train, self.dtype))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand to 4 * filters, each with BN, plus shortcut."""

    filters: int
    stride: int = 1
    dtype: Any = jnp.float32
    expansion: ClassVar[int] = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cv, bn = _layers(train, self.dtype)
        y = nn.relu(bn(name="bn1")(cv(self.filters, 1, name="conv1")(x)))
        y = nn.relu(bn(name="bn2")(cv(self.filters, 3, self.stride, "conv2")(y)))
        y = bn(name="bn3")(cv(self.filters * self.expansion, 1, name="conv3")(y))
        return nn.relu(y + shortcut(x, y.shape[-1], self.stride, train, self.dtype))


def _layers(train: bool, dtype: Any):
    """(conv, batch norm) factories computing in `dtype`."""
    return (functools.partial(conv, dtype=dtype),
            functools.partial(batch_norm, train, dtype=dtype))


def shortcut(x: jax.Array, features: int, stride: int, train: bool,
             dtype: Any = jnp.float32) -> jax.Array:
    """Identity when shapes agree, else a strided 1x1 conv + BN ("downsample" in torchvision).

    Called from inside a block's compact method, so its layers belong to that block.
    """
    if stride == 1 and x.shape[-1] == features:
        return x
    cv, bn = _layers(train, dtype)
    return bn(name="downsample_bn")(cv(features, 1, stride, "downsample_conv")(x))


class ResNet(nn.Module):
    """ResNet family; `features` is the pooled [batch, 512 * expansion] embedding."""

    stage_sizes: Sequence[int]
    block: Any = BasicBlock
    num_classes: int = 1000
    num_filters: int = 64
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmel"

    def setup(self):
        self.head = Dense(self.num_classes, dtype=self.dtype, name="fc")

    @nn.compact
    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        cv, bn = _layers(train, self.dtype)
        x = cv(self.num_filters, 7, 2, "conv1")(as_image(x).astype(self.dtype))
        x = nn.relu(bn(name="bn1")(x))
        x = max_pool(x, 3, 2, padding=1)
        for stage, num_blocks in enumerate(self.stage_sizes):
            for i in range(num_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                x = self.block(self.num_filters * 2**stage, stride, dtype=self.dtype,
                               name=f"layer{stage + 1}_{i}")(x, train)
        return global_avg_pool(x)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train))


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck)
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block=Bottleneck)
