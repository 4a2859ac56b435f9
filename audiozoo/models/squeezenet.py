"""SqueezeNet 1.1 on log-mel spectrograms.

Iandola et al. 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size" (arXiv 1602.07360), section 3.1-3.3: Fire modules (a 1 x 1 "squeeze"
conv feeding parallel 1 x 1 and 3 x 3 "expand" convs whose outputs are concatenated), no
fully connected layer: dropout 0.5, a 1 x 1 conv to num_classes, ReLU, global average
pooling. Version 1.1 as in torchvision (the authors' v1.1 release): a 3 x 3 stride-2 stem
conv with 64 channels and max pools (3 x 3, stride 2, ceil mode) after the stem and after
Fire 3 and Fire 5, for 2.4x less computation than v1.0 at the same accuracy.

Adapted to audio: the input is a log-mel batch [batch, frames, mel_bins], read as a
1-channel image, so the stem conv has 1 input channel; with num_classes=1000 the parameter
count is torchvision's minus 2 * 64 * 3 * 3. The ReLU on the class scores is the paper's and
torchvision's (`final_relu=False` drops it: then the scores can be negative, which plain
cross-entropy training prefers).

`features` is the 512-d global average of the last Fire module's maps; `__call__` applies the
1 x 1 classifier conv to the maps before pooling, as the paper does (with the ReLU in between
the two orders differ, so logits are not an affine function of `features`).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.convolution import Conv
from audiozoo.nn.pooling import as_image, global_avg_pool, max_pool

# (squeeze, expand 1x1, expand 3x3) of Fire 2-9, and where v1.1 max-pools (after the index).
FIRES = ((16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
         (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))
POOL_AFTER_FIRE = (1, 3)

# torchvision's init: kaiming_uniform_ for convs, N(0, 0.01) for the classifier conv.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "uniform")


class Fire(nn.Module):
    """1x1 squeeze -> ReLU -> [1x1 expand, 3x3 expand] -> ReLU -> concatenate."""

    squeeze: int
    expand1x1: int
    expand3x3: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(Conv, kernel_init=CONV_INIT, dtype=self.dtype)
        x = nn.relu(conv(self.squeeze, (1, 1), name="squeeze")(x))
        e1 = conv(self.expand1x1, (1, 1), name="expand1x1")(x)
        e3 = conv(self.expand3x3, (3, 3), padding=[(1, 1)] * 2, name="expand3x3")(x)
        return nn.relu(jnp.concatenate([e1, e3], axis=-1))


class SqueezeNet1_1(nn.Module):  # noqa: N801 - torchvision's name
    """SqueezeNet v1.1 (see the module docstring)."""

    num_classes: int = 1000
    dropout_rate: float = 0.5
    final_relu: bool = True
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmel"

    def setup(self):
        self.classifier_dropout = nn.Dropout(self.dropout_rate)
        self.final_conv = Conv(self.num_classes, (1, 1),
                               kernel_init=nn.initializers.normal(0.01), dtype=self.dtype,
                               name="final_conv")

    @nn.compact
    def feature_map(self, x: jax.Array, train: bool = False) -> jax.Array:
        """The last Fire module's output [batch, h, w, 512]."""
        x = Conv(64, (3, 3), (2, 2), padding="VALID", kernel_init=CONV_INIT, dtype=self.dtype,
                 name="conv1")(as_image(x).astype(self.dtype))
        x = max_pool(nn.relu(x), 3, 2, ceil_mode=True)
        for i, widths in enumerate(FIRES):
            x = Fire(*widths, dtype=self.dtype, name=f"fire{i + 2}")(x)
            if i in POOL_AFTER_FIRE:
                x = max_pool(x, 3, 2, ceil_mode=True)
        return x

    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        return global_avg_pool(self.feature_map(x, train))

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = self.classifier_dropout(self.feature_map(x, train), deterministic=not train)
        x = self.final_conv(x)
        if self.final_relu:
            x = nn.relu(x)
        return global_avg_pool(x)
