"""The Transformer encoder shared by the ViT-style and speech models (AST, wav2vec 2.0).

Vaswani et al. 2017, "Attention Is All You Need", section 3.2 (scaled dot-product and
multi-head attention) and 3.3 (position-wise feed-forward network), with the two placements of
layer normalisation in use:

- post-LN (`layer_norm_first=False`, the original Transformer, BERT, wav2vec 2.0 base):
  x = LN(x + Drop(Attn(x))); x = LN(x + MLP(x)).
- pre-LN (`layer_norm_first=True`, ViT (Dosovitskiy et al. 2021, eq. 2-3), AST, wav2vec 2.0
  large): x = x + Drop(Attn(LN(x))); x = x + MLP(LN(x)).

`Encoder` adds the one extra LayerNorm each placement needs: pre-LN blocks leave the residual
stream unnormalised, so the stack ends with a LayerNorm; post-LN blocks end normalised, so the
LayerNorm goes on the input instead (as BERT's embedding LayerNorm and wav2vec 2.0 base's
`encoder.layer_norm` do).

Parameter names (what checkpoint converters map onto): a block holds `attention` with
`query` / `key` / `value` / `out` Dense layers, `attention_norm`, `mlp` with `fc1` / `fc2`, and
`mlp_norm`; an encoder holds `layers_0`, `layers_1`, ... and `norm`. Dense kernels are
[in, out] (PyTorch Linear weights transposed).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.dense import Dense

# big_vision / flax ViT initialisation for the encoder's projections.
DENSE_INIT = nn.initializers.xavier_uniform()


def gelu(x: jax.Array) -> jax.Array:
    """GELU in its exact erf form, 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's nn.GELU and HF's
    "gelu" write it (flax's default is the tanh approximation). `jax.nn.gelu(approximate=False)`
    goes through erfc, which XLA:CPU evaluates 2.5x slower than erf (2,428 x 3,072, one core:
    9.9 against 4.0 ms); the two differ by under 1e-6 there."""
    return 0.5 * x * (1 + jax.lax.erf(x * jnp.asarray(0.5 ** 0.5, x.dtype)))


def expand_mask(mask: jax.Array | None) -> jax.Array | None:
    """A boolean mask broadcastable to the [batch, heads, query, key] attention scores.

    mask: [batch, key_len] (1/True = a real frame, 0/False = padding, the Hugging Face
    `attention_mask` convention) or a full mask broadcastable to [batch, heads, query, key].
    """
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.ndim == 2:
        mask = mask[:, None, None, :]
    if mask.ndim != 4:
        raise ValueError(f"attention mask must be [batch, key_len] or [batch, heads, query, key]; "
                         f"got shape {mask.shape}")
    return mask.astype(bool)


def attend(q, k, v, mask=None, dropout=None, *, normalise_output: bool = True):
    """Scaled dot-product attention, heads first: q [batch, heads, query, head_dim], k and v
    [batch, heads, key, head_dim], mask broadcastable to [batch, heads, query, key] (see
    `expand_mask`); dropout, if given, acts on the probabilities. Returns [batch, heads,
    query, head_dim].

    With `normalise_output`, softmax(s) v is computed as (exp(s - max s) v) / sum exp(s -
    max s): the normalisation divides the [query, head_dim] output instead of the [query,
    key] probabilities, one pass less over the scores. On XLA:CPU that is faster with
    gradients and in the loop over heads, but all heads' forward pass alone ran up to 2.4x
    slower than the textbook order (`experiments/benchmark/attention_paths.py`), which
    `normalise_output=False` keeps. The maximum is a constant shift (softmax does not depend
    on it), so no gradient flows through it."""
    # Scores and exponentials in float32 (the products stay in q's dtype): half-precision
    # scores would be rounded before the exponential, or overflow.
    scores = jnp.einsum("bhqd,bhkd->bhqk", q * jnp.asarray(q.shape[-1] ** -0.5, q.dtype), k,
                        preferred_element_type=jnp.float32)
    if mask is not None:
        # A select, not an added bias: min + a negative score would overflow to -inf.
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    weights = jnp.exp(scores - jax.lax.stop_gradient(scores.max(-1, keepdims=True)))
    total = weights.sum(-1, keepdims=True)
    if not normalise_output:
        weights, total = weights / total, 1.0
    if dropout is not None:
        weights = dropout(weights)  # dropout(p) / total == dropout(p / total)
    y = jnp.einsum("bhqk,bhkd->bhqd", weights.astype(v.dtype), v,
                   preferred_element_type=jnp.float32)
    return (y / total).astype(v.dtype)


def attend_per_head(q, k, v, mask=None):
    """`attend` computed two heads at a time (a `lax.map` over batch x heads): the same
    arithmetic, but each step's scores [2, query, key] stay in cache, where XLA:CPU otherwise
    streams every head's scores through memory several times
    (`experiments/benchmark/attention_paths.py`)."""
    batch, heads, queries, dim = q.shape
    group = 2 if (batch * heads) % 2 == 0 else 1
    steps = batch * heads // group

    def grouped(x):  # [batch, heads, ...] -> [steps, 1, group, ...]
        return x.reshape(steps, 1, group, *x.shape[2:])

    masks = None
    if mask is not None:
        masks = grouped(jnp.broadcast_to(mask, (batch, heads, *mask.shape[2:])))
    y = jax.lax.map(lambda args: attend(*args), (grouped(q), grouped(k), grouped(v), masks))
    return y.reshape(batch, heads, queries, dim)


def _attend_per_head(q_shape, k_shape) -> bool:
    """Whether to loop over heads on CPU: once all heads' scores pass 2^23 floats
    (`experiments/benchmark/attention_paths.py`, batch 2 x 12 heads: at 499 tokens, 6.0M
    scores, the loop is slower than all heads at once; at 1,214 it is faster, forward and
    with gradients)."""
    batch, heads, queries, _ = q_shape
    return jax.default_backend() == "cpu" and batch * heads * queries * k_shape[2] >= 2 ** 23


class MultiHeadAttention(nn.Module):
    """Self-attention with separate query / key / value / output projections."""

    num_heads: int
    dropout: float = 0.0  # on the attention probabilities
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None,
                 train: bool = False) -> jax.Array:
        """x: [batch, time, dim]; mask: see `expand_mask`. Returns [batch, time, dim]."""
        dim = x.shape[-1]
        if dim % self.num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads={self.num_heads}")
        head_dim = dim // self.num_heads

        def project(name):  # -> [batch, heads, time, head_dim]
            y = Dense(dim, use_bias=self.use_bias, kernel_init=DENSE_INIT, dtype=self.dtype,
                      name=name)(x)
            return jnp.moveaxis(y.reshape(*x.shape[:-1], self.num_heads, head_dim), -2, 1)

        q, k, v = project("query"), project("key"), project("value")
        mask = expand_mask(mask)
        if train and self.dropout > 0:
            y = attend(q, k, v, mask, nn.Dropout(self.dropout, deterministic=False))
        elif _attend_per_head(q.shape, k.shape):
            y = attend_per_head(q, k, v, mask)
        else:
            y = attend(q, k, v, mask, normalise_output=train)
        y = jnp.moveaxis(y, 1, -2).reshape(x.shape)
        return Dense(dim, kernel_init=DENSE_INIT, dtype=self.dtype, name="out")(y)


class MLP(nn.Module):
    """fc1 -> exact (erf) GELU -> dropout -> fc2 -> dropout; the block's feed-forward half."""

    mlp_dim: int
    dropout: float = 0.0
    activation_dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        h = Dense(self.mlp_dim, kernel_init=DENSE_INIT, dtype=self.dtype, name="fc1")(x)
        h = gelu(h)
        h = nn.Dropout(self.activation_dropout, deterministic=not train)(h)
        h = Dense(x.shape[-1], kernel_init=DENSE_INIT, dtype=self.dtype, name="fc2")(h)
        return nn.Dropout(self.dropout, deterministic=not train)(h)


class EncoderBlock(nn.Module):
    """One Transformer layer, post-LN or pre-LN (see the module docstring)."""

    num_heads: int
    mlp_dim: int
    dropout: float = 0.0  # on the attention and MLP outputs, before each residual sum
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    layer_norm_first: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None,
                 train: bool = False) -> jax.Array:
        attention = MultiHeadAttention(self.num_heads, self.attention_dropout, dtype=self.dtype,
                                       name="attention")
        attention_norm = nn.LayerNorm(epsilon=self.layer_norm_eps, dtype=self.dtype,
                                      name="attention_norm")
        mlp = MLP(self.mlp_dim, self.dropout, self.activation_dropout, dtype=self.dtype,
                  name="mlp")
        mlp_norm = nn.LayerNorm(epsilon=self.layer_norm_eps, dtype=self.dtype, name="mlp_norm")
        drop = nn.Dropout(self.dropout, deterministic=not train)
        if self.layer_norm_first:
            x = x + drop(attention(attention_norm(x), mask, train))
            return x + mlp(mlp_norm(x), train)
        x = attention_norm(x + drop(attention(x, mask, train)))
        return mlp_norm(x + mlp(x, train))


class Encoder(nn.Module):
    """A stack of `EncoderBlock`s plus the stack's own LayerNorm and input dropout.

    pre-LN: dropout -> blocks -> norm.  post-LN: norm -> dropout -> blocks.
    `layer_drop` (Fan et al. 2020, LayerDrop; used by wav2vec 2.0 fine-tuning) skips each
    whole layer with that probability during training, drawing from the "dropout" rng.
    """

    num_layers: int
    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    layer_drop: float = 0.0
    layer_norm_eps: float = 1e-5
    layer_norm_first: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None,
                 train: bool = False) -> jax.Array:
        """x: [batch, time, dim]; mask: [batch, time] (1 = real frame) or None."""
        norm = nn.LayerNorm(epsilon=self.layer_norm_eps, dtype=self.dtype, name="norm")
        if not self.layer_norm_first:
            x = norm(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        for i in range(self.num_layers):
            y = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout, self.attention_dropout,
                             self.activation_dropout, self.layer_norm_eps,
                             self.layer_norm_first, dtype=self.dtype,
                             name=f"layers_{i}")(x, mask, train)
            x = self._maybe_skip(x, y, train)
        return norm(x) if self.layer_norm_first else x

    def _maybe_skip(self, x: jax.Array, y: jax.Array, train: bool) -> jax.Array:
        if not train or self.layer_drop == 0.0:
            return y
        # One draw per step for the whole batch, as LayerDrop does; a select keeps it jittable.
        skip = jax.random.uniform(self.make_rng("dropout")) < self.layer_drop
        return jnp.where(skip, x, y)
