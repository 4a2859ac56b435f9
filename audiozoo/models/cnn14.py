"""Cnn14 of PANNs on log-mel spectrograms.

Kong, Cao, Iqbal, Wang, Wang & Plumbley 2020, "PANNs: Large-Scale Pretrained Audio Neural
Networks for Audio Pattern Recognition" (IEEE/ACM TASLP), section III-A and Table II, as in
the authors' code (audioset_tagging_cnn, `Cnn14`): batch norm over the mel axis (`bn0`); six
conv blocks of 2 x (3 x 3 conv without bias, BN, ReLU) with 64, 128, 256, 512, 1024, 2048
channels, each followed by a 2 x 2 average pool (1 x 1, i.e. none, after the sixth) and
dropout 0.2; the mean over frequency, then max + mean over time; dropout 0.5; fc1 (2048) +
ReLU; the output Linear. PANNs puts a sigmoid on the output for AudioSet tagging; here the
model returns logits, so the loss chooses (sigmoid BCE for multi-label, softmax CE otherwise).

The input is the log-mel batch [batch, frames, mel_bins] PANNs computes inside its model
(32 kHz, Hann 1024, hop 320, 64 mels 50-14000 Hz), read as a 1-channel image; `bn0`
normalises each mel bin, so its size is the input's mel_bins. The STFT and mel matrices that
PANNs keeps as frozen torch parameters are not part of this module. `features` is fc1's
ReLU output, PANNs' 2048-d "embedding" (PANNs also applies dropout 0.5 to the embedding it
returns, but feeds the classifier the undropped one; so does this module).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.convolution import Conv
from audiozoo.nn.dense import Dense
from audiozoo.nn.layers import batch_norm
from audiozoo.nn.pooling import as_image, avg_pool

# PANNs' init_layer: xavier_uniform_ weights, zero biases.
INIT = nn.initializers.xavier_uniform()


class ConvBlock(nn.Module):
    """2 x (3 x 3 conv, BN, ReLU) -> average pool of `pool` x `pool` (1 = none)."""

    features: int
    pool: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i in (1, 2):
            x = Conv(self.features, (3, 3), padding=[(1, 1)] * 2, use_bias=False,
                     kernel_init=INIT, dtype=self.dtype, name=f"conv{i}")(x)
            x = nn.relu(batch_norm(train, dtype=self.dtype, name=f"bn{i}")(x))
        return avg_pool(x, self.pool) if self.pool > 1 else x


class Cnn14(nn.Module):
    """PANNs Cnn14 returning logits (see the module docstring)."""

    num_classes: int = 527
    channels: Sequence[int] = (64, 128, 256, 512, 1024, 2048)
    embedding_dim: int = 2048
    block_dropout: float = 0.2
    head_dropout: float = 0.5
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    input_kind: ClassVar[str] = "logmel"

    def setup(self):
        self.head = Dense(self.num_classes, kernel_init=INIT, dtype=self.dtype,
                          name="fc_audioset")

    @nn.compact
    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        # [batch, frames, mels, 1]: normalising over axis 2 gives one mean/var per mel bin.
        # bn0 reads the float32 features and returns self.dtype: PANNs feeds it unnormalised
        # dB, a large offset per bin that bfloat16 would round before the mean is subtracted.
        x = batch_norm(train, axis=2, dtype=self.dtype, name="bn0")(as_image(x))
        last = len(self.channels) - 1
        for i, width in enumerate(self.channels):
            x = ConvBlock(width, pool=1 if i == last else 2, dtype=self.dtype,
                          name=f"conv_block{i + 1}")(x, train)
            x = nn.Dropout(self.block_dropout, deterministic=not train)(x)
        x = x.mean(axis=2)                      # over frequency -> [batch, frames, channels]
        x = x.max(axis=1) + x.mean(axis=1)      # max + mean over time
        x = nn.Dropout(self.head_dropout, deterministic=not train)(x)
        return nn.relu(Dense(self.embedding_dim, kernel_init=INIT, dtype=self.dtype,
                             name="fc1")(x))

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train))
