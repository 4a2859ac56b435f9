"""AlexNet on log-mel spectrograms.

Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional Neural
Networks" (NeurIPS), section 3.5 (the five conv + three fully connected layers) and 4.2
(dropout 0.5 in the first two fully connected layers), in torchvision's single-tower layout
(64 / 192 / 384 / 256 / 256 channels, no local response normalisation, adaptive 6 x 6
average pool before the classifier).

Adapted to audio: the input is a log-mel batch [batch, frames, mel_bins], read as a
1-channel image, so the first conv has 1 input channel; every other layer is torchvision's,
and with num_classes=1000 the parameter count is torchvision's minus 2 * 64 * 11 * 11.
A max pool whose input is smaller than its 3 x 3 window covers what is there instead of
collapsing to zero size (torch fails on any axis shorter than 63 inputs), so log-mel inputs
down to 32 x 32 run.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.convolution import Conv
from audiozoo.nn.dense import Dense
from audiozoo.nn.pooling import adaptive_avg_pool, as_image, flatten_chw, max_pool

# (channels, kernel, stride, padding, max pool after) of torchvision's `features`.
CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
         (256, 3, 1, 1, False), (256, 3, 1, 1, True))


class AlexNet(nn.Module):
    """AlexNet; `features` is the 4096-d input of the last Linear."""

    num_classes: int = 1000
    dropout_rate: float = 0.5
    hidden: int = 4096
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmel"

    def setup(self):
        self.head = Dense(self.num_classes, dtype=self.dtype, name="fc3")

    @nn.compact
    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = as_image(x).astype(self.dtype)
        for i, (channels, kernel, stride, pad, pool) in enumerate(CONVS):
            x = Conv(channels, (kernel, kernel), (stride, stride), padding=[(pad, pad)] * 2,
                     dtype=self.dtype, name=f"conv{i + 1}")(x)
            x = nn.relu(x)
            if pool:
                x = max_pool(x, 3, 2)
        x = flatten_chw(adaptive_avg_pool(x, 6))
        # torchvision: Dropout -> Linear -> ReLU -> Dropout -> Linear -> ReLU -> Linear.
        for i in range(2):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = nn.relu(Dense(self.hidden, dtype=self.dtype, name=f"fc{i + 1}")(x))
        return x

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train))
