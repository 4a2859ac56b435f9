"""Inception v1 (GoogLeNet) on log-mel spectrograms.

Szegedy et al. 2015, "Going Deeper with Convolutions" (CVPR), section 4-5 and Table 1: a
stem (7 x 7 stride-2 conv, max pool, 1 x 1 and 3 x 3 convs, max pool), nine Inception modules
(3a-b, 4a-e, 5a-b; each concatenates a 1 x 1 branch, 1 x 1 -> 3 x 3, 1 x 1 -> "5 x 5" and
3 x 3 max pool -> 1 x 1) with max pools between the groups, global average pooling, dropout
and one Linear. torchvision's layout: every conv is conv (no bias) + batch norm (eps 1e-3, as
torchvision) + ReLU, the pools use ceil mode, the auxiliary classifiers are left out, and
the "5 x 5" branch uses a 3 x 3 kernel (torchvision kept that to load its weights;
`branch3_kernel=5` gives the paper's 5 x 5).

Adapted to audio: the input is a log-mel batch [batch, frames, mel_bins], read as a
1-channel image, so the stem conv has 1 input channel; with num_classes=1000 the parameter
count is torchvision's (aux_logits=False) minus 2 * 64 * 7 * 7.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.dense import Dense
from audiozoo.nn.layers import batch_norm, torch_conv
from audiozoo.nn.pooling import as_image, global_avg_pool, max_pool

# torchvision: trunc_normal_(std=0.01, a=-2, b=2) truncates at 200 std, i.e. a plain normal.
INIT = nn.initializers.normal(0.01)

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj for each module.
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# A max pool (window, stride; ceil mode) follows these modules.
POOL_AFTER = {"3b": 3, "4e": 2}


class BasicConv(nn.Module):
    """conv (no bias) -> BN -> ReLU, torchvision's BasicConv2d."""

    features: int
    kernel: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = torch_conv(self.features, self.kernel, self.stride, kernel_init=INIT,
                       dtype=self.dtype, name="conv")(x)
        # torchvision's GoogLeNet uses eps 1e-3 here.
        x = batch_norm(train, epsilon=1e-3, dtype=self.dtype, name="bn")(x)
        return nn.relu(x)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on the channel axis."""

    ch1x1: int
    ch3x3red: int
    ch3x3: int
    ch5x5red: int
    ch5x5: int
    pool_proj: int
    branch3_kernel: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = functools.partial(BasicConv, dtype=self.dtype)
        b1 = conv(self.ch1x1, 1, name="branch1")(x, train)
        b2 = conv(self.ch3x3red, 1, name="branch2_reduce")(x, train)
        b2 = conv(self.ch3x3, 3, name="branch2")(b2, train)
        b3 = conv(self.ch5x5red, 1, name="branch3_reduce")(x, train)
        b3 = conv(self.ch5x5, self.branch3_kernel, name="branch3")(b3, train)
        b4 = max_pool(x, 3, 1, padding=1, ceil_mode=True)
        b4 = conv(self.pool_proj, 1, name="branch4")(b4, train)
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class InceptionV1(nn.Module):
    """GoogLeNet without auxiliary heads; `features` is the 1024-d pooled embedding."""

    num_classes: int = 1000
    dropout_rate: float = 0.2
    branch3_kernel: int = 3
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmel"

    def setup(self):
        self.head = Dense(self.num_classes, kernel_init=INIT, dtype=self.dtype, name="fc")

    @nn.compact
    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = functools.partial(BasicConv, dtype=self.dtype)
        x = conv(64, 7, 2, name="conv1")(as_image(x).astype(self.dtype), train)
        x = max_pool(x, 3, 2, ceil_mode=True)
        x = conv(64, 1, name="conv2")(x, train)
        x = conv(192, 3, name="conv3")(x, train)
        x = max_pool(x, 3, 2, ceil_mode=True)
        for key, widths in MODULES.items():
            x = InceptionModule(*widths, branch3_kernel=self.branch3_kernel, dtype=self.dtype,
                                name=f"inception{key}")(x, train)
            if key in POOL_AFTER:
                x = max_pool(x, POOL_AFTER[key], 2, ceil_mode=True)
        x = global_avg_pool(x)
        return nn.Dropout(self.dropout_rate, deterministic=not train)(x)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train))


GoogLeNet = InceptionV1
