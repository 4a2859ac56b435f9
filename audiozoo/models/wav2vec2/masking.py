"""Span masking and distractor sampling for wav2vec 2.0 pretraining and fine-tuning.

Baevski et al. 2020, "wav2vec 2.0", arXiv 2006.11477: section 3.1 (masking: span starts drawn
with probability p, spans of M frames that may overlap) and section 3.2 (K distractors drawn
uniformly from the other masked frames of the same utterance). The counts follow Hugging Face
transformers' modeling_wav2vec2.py (`_compute_mask_indices`, `_sample_negative_indices`), whose
`mask_prob` is the paper's p times M; here the draws are static-shaped jax, so they jit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

def num_masked_spans(length: int, mask_prob: float, mask_length: int, min_masks: int,
                     epsilon: jax.Array) -> jax.Array:
    """int(mask_prob * length / mask_length + epsilon), at least min_masks, at most what fits:
    HF `_compute_mask_indices`' count (epsilon ~ U[0, 1) rounds it probabilistically)."""
    num = jnp.floor(mask_prob * length / mask_length + epsilon).astype(jnp.int32)
    num = jnp.maximum(num, min_masks)
    num = jnp.where(num * mask_length > length, length // mask_length, num)
    return jnp.minimum(num, max(length - (mask_length - 1), 0))


def compute_mask(rng: jax.Array, batch: int, frames: int, mask_prob: float = 0.65,
                 mask_length: int = 10, min_masks: int = 2) -> jax.Array:
    """Boolean time mask [batch, frames], HF `_compute_mask_indices` without padding.

    Each row gets the same number of spans, int(mask_prob * frames / mask_length + U[0, 1))
    (one draw per call, as the reference), with distinct start frames drawn uniformly from
    [0, frames - mask_length]; spans may overlap, so fewer than num_spans * mask_length frames
    can be masked. `mask_prob` is HF's and fairseq's: an upper bound on the masked fraction,
    i.e. the paper's start probability p times M. The paper's p = 0.065, M = 10 is therefore
    mask_prob = 0.65 (the default), which masks about 49% of the frames.
    """
    if mask_length < 1:
        raise ValueError(f"mask_length must be >= 1, got {mask_length}")
    if mask_length > frames:
        raise ValueError(f"mask_length={mask_length} exceeds the sequence length {frames}: "
                         f"use a longer input or a shorter mask_length")
    eps_rng, start_rng = jax.random.split(rng)
    num = num_masked_spans(frames, mask_prob, mask_length, min_masks, jax.random.uniform(eps_rng))
    # Static upper bound on the count (epsilon < 1), so shapes do not depend on the draw.
    max_spans = max(min(max(int(mask_prob * frames / mask_length + 1), min_masks),
                        frames // mask_length, frames - mask_length + 1), 0)
    if max_spans == 0:
        return jnp.zeros((batch, frames), bool)
    # Distinct starts without replacement: the first max_spans of a random permutation.
    keys = jax.random.uniform(start_rng, (batch, frames - mask_length + 1))
    starts = jnp.argsort(keys, axis=-1)[:, :max_spans]
    used = jnp.arange(max_spans) < num
    offset = jnp.arange(frames)[None, None, :] - starts[:, :, None]
    in_span = (offset >= 0) & (offset < mask_length) & used[None, :, None]
    return jnp.any(in_span, axis=1)


def sample_negative_indices(rng: jax.Array, mask: jax.Array, num_negatives: int) -> jax.Array:
    """Distractor frame indices int32 [batch, frames, num_negatives] (HF
    `_sample_negative_indices`, without its batch offset): for each masked frame, frames drawn
    uniformly with replacement from the *other* masked frames of the same utterance. Entries of
    unmasked frames are meaningless (they are not scored). Needs >= 2 masked frames per row.
    """
    batch, frames = mask.shape
    count = jnp.sum(mask, axis=-1, keepdims=True)  # [batch, 1]
    # Masked frame positions first, in order: masked_positions[b, r] = r-th masked frame.
    masked_positions = jnp.argsort(~mask, axis=-1, stable=True)
    rank = jnp.cumsum(mask, axis=-1) - 1  # a masked frame's rank among the masked ones
    u = jax.random.uniform(rng, (batch, frames, num_negatives))
    draw = jnp.floor(u * (count[..., None] - 1)).astype(jnp.int32)
    # Draw from count - 1 ranks and skip the frame's own: uniform over the others.
    draw = jnp.where(draw >= rank[..., None], draw + 1, draw)
    draw = jnp.clip(draw, 0, frames - 1)
    return jnp.take_along_axis(masked_positions[:, None, :], draw, axis=-1).astype(jnp.int32)
