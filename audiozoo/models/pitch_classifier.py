"""The pitch classifier behind GANSynth's sample metrics.

Engel et al. 2019, "GANSynth" (ICLR), section 4.2: Inception Score, Pitch Accuracy, Pitch
Entropy and FID are computed with a pitch classifier trained on NSynth. Its network is the
one magenta's evaluation code restores (gansynth/lib/eval/pitch_classifier_utils.py, `_fit`,
the nsynth baseline "pitch" model): on a [512 bins x 256 frames x 1] log-magnitude image,

    conv 5x5 stride 2, 128                      (layer 0)
    seven convs 4x4 stride 2: 128, 128, 256, 256, 256, 512, 512   (layers 1-7)
    conv 4x4 stride (2 over bins, 1 over frames), 512              (layer 7_1)
    conv 1x1, 1024                               (layer 8)
    conv 1x1 to the logits

every conv with SAME padding, no bias, batch norm, and LeakyReLU(0.1) (none after the
logits, which are batch-normalised too, as in the reference).

Differences, on purpose:
- Only the pitch head (`num_classes`, default the 128 MIDI pitches). The reference trains
  one logit vector for 128 pitches, 10 qualities, 11 families and 3 sources at once; the
  metrics read only the pitch logits, and the classification task trains one label key,
  so the quality, family and source heads are left out.
- The input is audiozoo's [batch, frames, bins] layout (the "logmag" front end); it is
  transposed here to the reference's [bins, frames] image, so the (2, 1) stride of layer
  7_1 halves the bins as in the reference.
- For a 512 x 256 input the last map is 1 x 1. Other sizes (short test clips) give another
  map size: SAME padding never shrinks an axis below 1, and the last map is averaged over
  its positions, so any input of at least 1 x 1 runs.

`features` is the 512-d output of layer 7_1, the "penultimate (512) features" on which the
GANSynth evaluation computes FID (the 1x1 layer of 1024 sits between it and the logits).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.convolution import Conv
from audiozoo.nn.dense import Dense
from audiozoo.nn.pooling import as_image

# (name, kernel, stride over (bins, frames)) of layers 0..7 and 7_1; widths are `channels`.
LAYERS = ((("0", 5, (2, 2)),) + tuple((str(i), 4, (2, 2)) for i in range(1, 8))
          + (("7_1", 4, (2, 1)),))
CHANNELS = (128, 128, 128, 256, 256, 256, 512, 512, 512)
# slim.conv2d's default initialiser.
INIT = nn.initializers.xavier_uniform()


class PitchClassifier(nn.Module):
    """GANSynth's evaluation pitch classifier (see the module docstring)."""

    num_classes: int = 128
    channels: Sequence[int] = CHANNELS
    hidden: int = 1024
    negative_slope: float = 0.1
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmag"

    def setup(self):
        if len(self.channels) != len(LAYERS):
            raise ValueError(f"channels has {len(self.channels)} widths; the network has "
                             f"{len(LAYERS)} strided convs")
        self.hidden_layer = Dense(self.hidden, use_bias=False, kernel_init=INIT,
                                  dtype=self.dtype, name="conv8")
        self.hidden_norm = self._norm("bn8")
        self.logits_layer = Dense(self.num_classes, use_bias=False, kernel_init=INIT,
                                  dtype=self.dtype, name="logits")
        self.logits_norm = self._norm("bn_logits")

    def _norm(self, name: str) -> nn.BatchNorm:
        return nn.BatchNorm(momentum=0.9, epsilon=1e-5, dtype=self.dtype, name=name)

    @nn.compact
    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        """[batch, frames, bins] -> the 512-d output of layer 7_1 (averaged over positions)."""
        x = jnp.swapaxes(as_image(x), 1, 2).astype(self.dtype)  # -> [batch, bins, frames, 1]
        for (layer, kernel, stride), width in zip(LAYERS, self.channels):
            x = Conv(width, (kernel, kernel), stride, padding="SAME", use_bias=False,
                     kernel_init=INIT, dtype=self.dtype, name=f"conv{layer}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=self.dtype, name=f"bn{layer}")(x)
            x = nn.leaky_relu(x, self.negative_slope)
        return x.mean(axis=(1, 2))  # 1 x 1 for the reference's 512 x 256 input

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        h = self.hidden_norm(self.hidden_layer(self.features(x, train)),
                             use_running_average=not train)
        h = nn.leaky_relu(h, self.negative_slope)
        return self.logits_norm(self.logits_layer(h), use_running_average=not train)
