"""wav2vec 2.0 for pretraining: the network plus the quantiser and the two projections.

Baevski et al. 2020, "wav2vec 2.0", arXiv 2006.11477, section 2 (the quantised targets read
the unmasked feature-encoder output; the context network reads the masked one) and section 3.2
(both are projected to the dimension the contrastive loss compares). Hugging Face transformers'
`Wav2Vec2ForPreTraining` (modeling_wav2vec2.py), whose outputs go to
`objective.pretraining_loss`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.models.wav2vec2.backbone import Wav2Vec2
from audiozoo.models.wav2vec2.quantizer import GumbelVectorQuantizer
from audiozoo.nn.dense import Dense


class PretrainingOutputs(NamedTuple):
    projected_states: jax.Array  # project_hid(context) [batch, frames, proj_codevector_dim]
    projected_quantized_states: jax.Array  # project_q(quantised targets), same shape
    codevector_perplexity: jax.Array
    conv_features: jax.Array


class Wav2Vec2ForPreTraining(nn.Module):
    """HF `Wav2Vec2ForPreTraining`: `wav2vec2` (a `Wav2Vec2`) + quantiser + projections.

    The quantiser reads the LayerNorm'd, unmasked feature-encoder output (after
    `feat_quantizer_dropout`); the Transformer reads the masked projection of the same.
    """

    wav2vec2: Wav2Vec2 | None = None
    num_codevector_groups: int = 2
    num_codevectors_per_group: int = 320
    codevector_dim: int = 256
    proj_codevector_dim: int = 256
    feat_quantizer_dropout: float = 0.0
    dtype: Any = jnp.float32  # of the head; the backbone has its own

    @property
    def num_codevectors(self) -> int:
        return self.num_codevector_groups * self.num_codevectors_per_group

    @nn.compact
    def __call__(self, waveform: jax.Array, mask_time_indices: jax.Array, *,
                 temperature: float | jax.Array = 2.0, train: bool = False,
                 attention_mask: jax.Array | None = None) -> PretrainingOutputs:
        if self.wav2vec2 is None:
            raise ValueError("Wav2Vec2ForPreTraining needs wav2vec2=Wav2Vec2(...)")
        out = self.wav2vec2.encode(waveform, train, mask_time_indices, attention_mask)
        projected = Dense(self.proj_codevector_dim, dtype=self.dtype,
                          name="project_hid")(out.last_hidden_state)
        features = nn.Dropout(self.feat_quantizer_dropout, deterministic=not train)(
            out.extract_features)
        quantizer = GumbelVectorQuantizer(self.num_codevector_groups,
                                          self.num_codevectors_per_group, self.codevector_dim,
                                          self.dtype, name="quantizer")
        quantized, perplexity = quantizer(features, mask_time_indices, temperature=temperature,
                                          train=train)
        quantized = Dense(self.proj_codevector_dim, dtype=self.dtype,
                          name="project_q")(quantized)
        return PretrainingOutputs(projected, quantized, perplexity, out.conv_features)
