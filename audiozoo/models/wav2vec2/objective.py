"""The wav2vec 2.0 pretraining objective: contrastive loss plus codebook diversity loss.

Baevski et al. 2020, "wav2vec 2.0", arXiv 2006.11477, section 3.2: L = L_m + alpha L_d, where
L_m scores the true quantised target of each masked frame against K distractors by cosine
similarity over a temperature kappa, and L_d pushes the codebooks' perplexity (the exponent
of the entropy of the batch-averaged code distribution) towards G V. Matches Hugging Face
transformers' `Wav2Vec2ForPreTraining` loss (modeling_wav2vec2.py) divided by the number of
masked frames.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def codebook_perplexity(probs: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """sum over groups of exp(entropy of the frame-averaged distribution): probs [..., G, V]."""
    flat = probs.reshape(-1, *probs.shape[-2:])
    if mask is None:
        marginal = jnp.mean(flat, axis=0)
    else:
        weights = mask.reshape(-1).astype(flat.dtype)
        marginal = jnp.einsum("n,ngv->gv", weights, flat) / jnp.sum(weights)
    entropy = -jnp.sum(jax.scipy.special.xlogy(marginal, marginal), axis=-1)
    return jnp.sum(jnp.exp(entropy))


def cosine_similarity(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
    """torch.cosine_similarity over the last axis: a.b / max(|a| |b|, eps)."""
    norms = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
    return jnp.sum(a * b, axis=-1) / jnp.maximum(norms, eps)


def pretraining_loss(projected_states: jax.Array, projected_quantized_states: jax.Array,
                     codevector_perplexity: jax.Array, mask_time_indices: jax.Array,
                     negative_indices: jax.Array, *, num_codevectors: int,
                     logit_temperature: float = 0.1, diversity_loss_weight: float = 0.1,
                     ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Section 3.2: L = L_m + alpha L_d, both per masked frame.

    L_m = -log softmax over [q_t, distractors] of cos(c_t, .) / kappa at the positive, for
    masked t; a distractor equal to q_t (a collapsed codebook) is left out, as in fairseq/HF.
    L_d = (G V - perplexity) / (G V). HF returns the sums over masked frames (this times
    their number). negative_indices: [batch, frames, K] frame indices within each utterance.
    """
    mask = mask_time_indices.astype(bool)
    batch = jnp.arange(projected_quantized_states.shape[0])[:, None, None]
    negatives = projected_quantized_states[batch, negative_indices]  # [b, t, K, d]
    targets = jnp.concatenate([projected_quantized_states[:, :, None], negatives], axis=2)
    logits = cosine_similarity(projected_states[:, :, None].astype(jnp.float32),
                               targets.astype(jnp.float32)) / logit_temperature
    neg_is_pos = jnp.all(negatives == projected_quantized_states[:, :, None], axis=-1)
    logits = logits.at[..., 1:].set(jnp.where(neg_is_pos, -jnp.inf, logits[..., 1:]))
    nll = jax.nn.logsumexp(logits, axis=-1) - logits[..., 0]
    num_masked = jnp.maximum(jnp.sum(mask), 1)
    contrastive = jnp.sum(jnp.where(mask, nll, 0.0)) / num_masked
    diversity = (num_codevectors - codevector_perplexity) / num_codevectors
    loss = contrastive + diversity_loss_weight * diversity
    # The positive wins when it strictly beats every distractor.
    correct = jnp.all(logits[..., :1] > logits[..., 1:], axis=-1)
    accuracy = jnp.sum(jnp.where(mask, correct, False)) / num_masked
    metrics = {"loss": loss, "contrastive_loss": contrastive, "diversity_loss": diversity,
               "codevector_perplexity": codevector_perplexity, "accuracy": accuracy,
               "masked_fraction": jnp.mean(mask)}
    return loss, metrics
