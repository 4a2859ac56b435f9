"""VGG on log-mel spectrograms.

Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (ICLR), section 2.1-2.2 and Table 1: stacks of 3 x 3 convs (stride 1, padding 1)
with 2 x 2 max pools, configurations A (VGG11) and D (VGG16), then three fully connected
layers with dropout 0.5 after the first two. torchvision's layout: an adaptive 7 x 7 average
pool before the classifier, and optional batch norm after every conv (`batch_norm=True`,
torchvision's vgg*_bn; off by default as in the paper).

Adapted to audio: the input is a log-mel batch [batch, frames, mel_bins], read as a
1-channel image, so the first conv has 1 input channel; with num_classes=1000 the parameter
count is torchvision's minus 2 * 64 * 3 * 3. A 2 x 2 pool over a 1-wide map keeps it 1 wide
(torch would fail), so inputs narrower than 32 still run.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.dense import Dense
from audiozoo.nn.layers import batch_norm, torch_conv
from audiozoo.nn.pooling import adaptive_avg_pool, as_image, flatten_chw, max_pool

# Table 1 of the paper: conv widths, "M" for a 2 x 2 max pool.
VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")

# torchvision's init: kaiming_normal_(mode="fan_out") for convs, N(0, 0.01) for Linears.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
DENSE_INIT = nn.initializers.normal(0.01)


class VGG(nn.Module):
    """VGG family; `features` is the 4096-d input of the last Linear."""

    num_classes: int = 1000
    layers: Sequence[int | str] = VGG16_LAYERS
    batch_norm: bool = False
    dropout_rate: float = 0.5
    hidden: int = 4096
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmel"

    def setup(self):
        self.head = Dense(self.num_classes, kernel_init=DENSE_INIT, dtype=self.dtype,
                          name="fc3")

    @nn.compact
    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = as_image(x).astype(self.dtype)
        conv_index = 0
        for layer in self.layers:
            if layer == "M":
                x = max_pool(x, 2, 2)
                continue
            conv_index += 1
            x = torch_conv(int(layer), 3, kernel_init=CONV_INIT, use_bias=True,
                           dtype=self.dtype, name=f"conv{conv_index}")(x)
            if self.batch_norm:
                x = batch_norm(train, dtype=self.dtype, name=f"bn{conv_index}")(x)
            x = nn.relu(x)
        x = flatten_chw(adaptive_avg_pool(x, 7))
        # torchvision: Linear -> ReLU -> Dropout -> Linear -> ReLU -> Dropout -> Linear.
        for i in range(2):
            x = nn.relu(Dense(self.hidden, kernel_init=DENSE_INIT, dtype=self.dtype,
                              name=f"fc{i + 1}")(x))
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return x

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train))


VGG11 = functools.partial(VGG, layers=VGG11_LAYERS)
VGG16 = functools.partial(VGG, layers=VGG16_LAYERS)
