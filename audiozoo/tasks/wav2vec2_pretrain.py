"""Objective adapter for wav2vec 2.0 self-supervised pretraining.

Baevski et al. 2020 (arXiv 2006.11477), sections 3.1-3.2 and 4.2: mask spans of the latent
frames (spans of M = model.mask_time_length frames; model.mask_time_prob is HF's / fairseq's
mask_prob = the paper's start probability p times M, 0.65 for p = 0.065), predict
each masked frame's quantised latent among K distractors drawn from other masked frames of the
same utterance (contrastive loss, cosine similarity / kappa), plus alpha times the codebook
diversity loss. The Gumbel temperature is annealed from `max_gumbel_temperature` by
`gumbel_temperature_decay` per update down to `min_gumbel_temperature` (2 -> 0.5, 0.999995);
the update count lives in the train state (`extra["counters"]["num_updates"]`), so a resumed
run continues the schedule. Optionally adds fairseq's L2 penalty on the feature-encoder output
(`feature_penalty_weight`). Losses are per masked frame (HF returns sums).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from audiozoo.config import ConfigError
from audiozoo.models import build_model
from audiozoo.models.wav2vec2 import (Wav2Vec2, Wav2Vec2ForPreTraining, compute_mask,
                                      pretraining_loss, sample_negative_indices)
from audiozoo.tasks.base import SupervisedTask

COUNTERS = "counters"


def gumbel_temperature(num_updates: jax.Array, start: float = 2.0, end: float = 0.5,
                       decay: float = 0.999995) -> jax.Array:
    """max(start * decay ** num_updates, end)."""
    return jnp.maximum(start * decay ** jnp.asarray(num_updates, jnp.float32), end)


class Wav2Vec2PretrainTask(SupervisedTask):
    def __init__(self, config):
        super().__init__(config)
        backbone = build_model(config.model)
        if not isinstance(backbone, Wav2Vec2):
            raise ConfigError(f"task wav2vec2_pretrain needs model.name='wav2vec2', got "
                              f"{config.model.name!r}")
        t = config.task
        self.model = Wav2Vec2ForPreTraining(
            wav2vec2=backbone, num_codevector_groups=t.num_codevector_groups,
            num_codevectors_per_group=t.num_codevectors_per_group,
            codevector_dim=t.codevector_dim, proj_codevector_dim=t.proj_codevector_dim,
            feat_quantizer_dropout=t.feat_quantizer_dropout, dtype=backbone.dtype)
        self.backbone = backbone
        self.frames = backbone.num_frames(config.data.segment_length)
        self._check_config()

    def _check_config(self):
        net = self.backbone
        if net.mask_time_prob <= 0:
            raise ConfigError("wav2vec 2.0 pretraining masks frames: set model.mask_time_prob > 0 "
                              "(the paper's p = 0.065 with M = 10 is mask_time_prob = 0.65)")
        if self.frames < max(net.mask_time_length, 2):
            raise ConfigError(
                f"data.segment_length={self.config.data.segment_length} gives {self.frames} "
                f"frames, fewer than model.mask_time_length={net.mask_time_length}; use longer "
                f"segments (one frame per {_hop(net)} samples)")
        if net.mask_time_min_masks < 1 or (net.mask_time_min_masks == 1 and net.mask_time_length < 2):
            raise ConfigError("distractors come from other masked frames: set "
                              "model.mask_time_min_masks so at least 2 frames are masked")

    def dummy_batch(self, batch_size):
        return {"audio": jnp.zeros((batch_size, self.config.data.segment_length), jnp.float32)}

    def init_variables(self, rng, batch):
        audio = batch["audio"]
        mask = jnp.zeros((audio.shape[0], self.frames), bool)
        variables = self.model.init({"params": rng}, audio, mask, train=False)
        return {**variables, COUNTERS: {"num_updates": jnp.zeros((), jnp.int32)}}

    def temperature(self, num_updates):
        t = self.config.task
        return gumbel_temperature(num_updates, t.max_gumbel_temperature, t.min_gumbel_temperature,
                                  t.gumbel_temperature_decay)

    def loss(self, params, extra, batch, rng, train):
        t, net = self.config.task, self.backbone
        audio = batch["audio"]
        mask_rng, negative_rng, dropout_rng, gumbel_rng = jax.random.split(rng, 4)
        mask = compute_mask(mask_rng, audio.shape[0], self.frames, net.mask_time_prob,
                            net.mask_time_length, net.mask_time_min_masks)
        negatives = sample_negative_indices(negative_rng, mask, t.num_negatives)
        num_updates = extra[COUNTERS]["num_updates"]
        temperature = self.temperature(num_updates)
        out = self.model.apply({"params": params}, audio, mask, temperature=temperature,
                               train=train, rngs={"dropout": dropout_rng, "gumbel": gumbel_rng})
        # The model computes in model.dtype; the contrastive loss reads float32.
        loss, metrics = pretraining_loss(
            out.projected_states.astype(jnp.float32),
            out.projected_quantized_states.astype(jnp.float32),
            out.codevector_perplexity.astype(jnp.float32),
            mask, negatives, num_codevectors=self.model.num_codevectors,
            logit_temperature=t.contrastive_logits_temperature,
            diversity_loss_weight=t.diversity_loss_weight)
        penalty = jnp.mean(jnp.square(out.conv_features.astype(jnp.float32)))
        loss = loss + t.feature_penalty_weight * penalty
        metrics = dict(metrics, loss=loss, feature_penalty=penalty, temperature=temperature)
        if train:
            extra = {**extra, COUNTERS: {"num_updates": num_updates + 1}}
        return loss, (metrics, extra)


def _hop(net: Wav2Vec2) -> int:
    hop = 1
    for s in net.conv_stride:
        hop *= s
    return hop
