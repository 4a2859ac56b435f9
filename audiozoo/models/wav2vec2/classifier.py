"""wav2vec 2.0 sequence classifier: the network, a projector, mean pooling and a linear head.

Baevski et al. 2020, "wav2vec 2.0", arXiv 2006.11477, section 3.3: the pretrained network is
fine-tuned with a randomly initialised head on the context network (a linear CTC projection
for speech recognition there). For utterance classification the head is Hugging Face
transformers' `Wav2Vec2ForSequenceClassification` (modeling_wav2vec2.py): projector per
frame -> mean over the real frames -> classifier.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp

from audiozoo.models.wav2vec2.backbone import LARGE_LV60, Wav2Vec2, Wav2Vec2Fields
from audiozoo.nn.dense import Dense


class Wav2Vec2Classifier(Wav2Vec2Fields):
    """HF `Wav2Vec2ForSequenceClassification`: wav2vec 2.0 -> projector Dense(proj_size) per
    frame -> mean over frames -> classifier Dense(num_classes). `features` is the pooled
    projector output."""

    input_kind: ClassVar[str] = "waveform"
    num_classes: int = 2
    classifier_proj_size: int = 256

    def setup(self):
        self.wav2vec2 = Wav2Vec2(**self.backbone_fields())
        self.projector = Dense(self.classifier_proj_size, dtype=self.dtype)
        self.classifier = Dense(self.num_classes, dtype=self.dtype)

    def features(self, x: jax.Array, train: bool = False,
                 attention_mask: jax.Array | None = None) -> jax.Array:
        hidden = self.projector(self.wav2vec2(x, train, attention_mask=attention_mask))
        frames = self.wav2vec2.frame_mask(attention_mask, hidden.shape[1])
        if frames is None:
            return jnp.mean(hidden, axis=1)
        weights = frames.astype(hidden.dtype)[..., None]
        return jnp.sum(hidden * weights, axis=1) / jnp.sum(weights, axis=1)

    def __call__(self, x: jax.Array, train: bool = False,
                 attention_mask: jax.Array | None = None) -> jax.Array:
        return self.classifier(self.features(x, train, attention_mask))


Wav2Vec2BaseClassifier = functools.partial(Wav2Vec2Classifier)
Wav2Vec2LargeClassifier = functools.partial(Wav2Vec2Classifier, **LARGE_LV60)
