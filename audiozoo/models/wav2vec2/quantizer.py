"""The Gumbel-softmax product quantiser of wav2vec 2.0.

Baevski et al. 2020, "wav2vec 2.0", arXiv 2006.11477, section 2 ("Quantization module"): G
codebooks of V entries, one entry chosen per codebook by a straight-through Gumbel softmax
(Jang et al. 2016) and the choices concatenated. Parameter names follow Hugging Face
transformers' `Wav2Vec2GumbelVectorQuantizer` (modeling_wav2vec2.py).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.models.wav2vec2.backbone import UNIT_UNIFORM
from audiozoo.models.wav2vec2.objective import codebook_perplexity
from audiozoo.nn.dense import Dense


class GumbelVectorQuantizer(nn.Module):
    """Product quantiser: G codebooks of V entries; the chosen entries are concatenated.

    Training: hard Gumbel softmax (straight-through: one-hot forward, soft gradient) at the
    given temperature, drawing from the "gumbel" rng; the perplexity is of the batch-averaged
    *soft* distribution. Eval: argmax and the perplexity of the hard choices. With `mask`,
    the average runs over masked frames only (as HF).
    """

    num_groups: int = 2
    num_vars: int = 320
    codevector_dim: int = 256
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None, *,
                 temperature: float | jax.Array = 2.0,
                 train: bool = False) -> tuple[jax.Array, jax.Array]:
        """x [batch, frames, dim] -> (codevectors [batch, frames, codevector_dim], perplexity)."""
        if self.codevector_dim % self.num_groups:
            raise ValueError(f"codevector_dim={self.codevector_dim} must be divisible by "
                             f"num_groups={self.num_groups}")
        g, v = self.num_groups, self.num_vars
        codevectors = self.param("codevectors", UNIT_UNIFORM, (g * v, self.codevector_dim // g))
        # The code logits stay float32 whatever self.dtype (a small matmul): with N(0, 1)
        # weights they are tens, where bfloat16's steps are 0.125, and divided by a
        # temperature down to 0.5 the rounding would move the Gumbel softmax's probabilities
        # (and the diversity loss's perplexity) by up to 13%.
        logits = Dense(g * v, name="weight_proj", kernel_init=nn.initializers.normal(1.0),
                       bias_init=nn.initializers.zeros, dtype=jnp.float32)(x)
        logits = logits.reshape(*x.shape[:-1], g, v)
        if train:
            gumbel = jax.random.gumbel(self.make_rng("gumbel"), logits.shape)
            soft = jax.nn.softmax((logits + gumbel) / temperature, axis=-1)
            hard = jax.nn.one_hot(jnp.argmax(soft, axis=-1), v, dtype=soft.dtype)
            probs = hard + soft - jax.lax.stop_gradient(soft)  # straight-through
            perplexity = codebook_perplexity(jax.nn.softmax(logits, axis=-1), mask)
        else:
            probs = jax.nn.one_hot(jnp.argmax(logits, axis=-1), v, dtype=logits.dtype)
            perplexity = codebook_perplexity(probs, mask)
        chosen = jnp.einsum("...gv,gvd->...gd", probs.astype(self.dtype),
                            codevectors.reshape(g, v, -1).astype(self.dtype))
        return chosen.reshape(*x.shape[:-1], self.codevector_dim), perplexity
