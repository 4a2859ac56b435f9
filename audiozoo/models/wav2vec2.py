"""wav2vec 2.0: self-supervised speech representations from raw waveform.

Baevski, Zhou, Mohamed & Auli 2020, "wav2vec 2.0: A Framework for Self-Supervised Learning of
Speech Representations", arXiv 2006.11477. Implements section 2 (model: the convolutional
feature encoder, the Transformer context network with its convolutional relative positional
embedding, the Gumbel-softmax product quantiser), section 3.1 (masking: span starts drawn
with probability p, spans of M frames that may overlap), section 3.2 (objective: the
contrastive loss over K distractors drawn from other masked frames of the same utterance,
cosine similarity over a temperature kappa, plus the codebook diversity loss weighted by alpha)
and the regularisers of section 4.2 (feature-encoder gradient scaling; the feature penalty is
the task's).

The layout follows the Hugging Face `transformers` port (itself a port of fairseq), so its
checkpoints load with `from_hf` and produce the same hidden states:

- `Wav2Vec2` = HF `Wav2Vec2Model`: waveform [batch, samples] at 16 kHz -> last hidden state
  [batch, frames, hidden]; one frame per 320 samples (20 ms), 16000 samples -> 49 frames.
  "group" feature-encoder norm with post-LN Transformer is the BASE model; "layer" norm with
  pre-LN (`do_stable_layer_norm`) is the LARGE LV-60k model. Checkpoints trained with
  `do_normalize` (LV-60k ones) expect each waveform scaled to zero mean, unit variance first.
- `Wav2Vec2ForPreTraining`: the model plus quantiser, `project_hid` and `project_q`; its
  outputs go to `pretraining_loss` with a mask from `compute_mask` and distractors from
  `sample_negative_indices` (the task `audiozoo.tasks.wav2vec2_pretrain` wires them up).
- `Wav2Vec2Classifier` = HF `Wav2Vec2ForSequenceClassification`: projector -> mean over
  frames -> classifier.

The Transformer is the shared `audiozoo.nn.transformer.Encoder` (post-LN for BASE, pre-LN for
LARGE, LayerDrop); the positional convolution is added to its input. That convolution keeps
its weight normalisation (Salimans & Kingma 2016) as two parameters, `weight_g` [kernel] and
`weight_v` [kernel, hidden / groups, hidden], with weight = g * v / ||v|| where the norm runs
over everything but the kernel axis (PyTorch `weight_norm(..., dim=2)`), so parameter counts
and training dynamics match the reference. `from_hf` reads g and v under both PyTorch namings
(`parametrizations.weight.original0/1` and the older `weight_g/weight_v`) and also accepts a
plain folded `weight` (then v = weight, g = |v|).

Masking counts spans as HF and fairseq do, mask_prob * frames / M: their `mask_prob` is the
paper's span-start probability p times M, so the paper's p = 0.065, M = 10 is mask_prob 0.65.
Masking and distractor sampling use static shapes and jit; the reference draws them in NumPy.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from audiozoo.models.hf_checkpoint import CheckpointFormatError, load_hf_dir, take
from audiozoo.nn.convolution import Conv
from audiozoo.nn.transformer import Encoder

FEATURE_NORMS = ("group", "layer")
# The feature encoder's norms are PyTorch defaults, independent of `layer_norm_eps`.
CONV_NORM_EPS = 1e-5


def gelu(x: jax.Array) -> jax.Array:
    # PyTorch / HF "gelu" is the exact erf form, not flax's default tanh approximation.
    return nn.gelu(x, approximate=False)


def feature_frames(num_samples: int, kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Frames the feature encoder makes of `num_samples` (valid convolutions)."""
    for k, s in zip(kernels, strides):
        num_samples = (num_samples - k) // s + 1
    return num_samples


# ---- feature encoder (section 2, "Feature encoder") -------------------------------------
class ConvLayer(nn.Module):
    """Conv1d (valid, strided) -> optional GroupNorm(channels) or LayerNorm -> GELU."""

    features: int
    kernel_size: int
    stride: int
    use_bias: bool = False
    norm: str | None = None  # "group", "layer" or None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = Conv(self.features, (self.kernel_size,), strides=(self.stride,), padding="VALID",
                 use_bias=self.use_bias, dtype=self.dtype, name="conv",
                 kernel_init=nn.initializers.variance_scaling(2.0, "fan_in", "normal"))(x)
        if self.norm == "group":
            # One group per channel: each channel is normalised over time, per utterance.
            x = nn.GroupNorm(num_groups=self.features, epsilon=CONV_NORM_EPS, dtype=self.dtype,
                             name="layer_norm")(x)
        elif self.norm == "layer":
            x = nn.LayerNorm(epsilon=CONV_NORM_EPS, dtype=self.dtype, name="layer_norm")(x)
        return gelu(x)


class FeatureEncoder(nn.Module):
    """Seven strided convolutions: [batch, samples] -> [batch, frames, conv_dim[-1]]."""

    conv_dim: Sequence[int]
    conv_kernel: Sequence[int]
    conv_stride: Sequence[int]
    conv_bias: bool = False
    norm: str = "group"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, waveform: jax.Array) -> jax.Array:
        # The whole encoder runs in self.dtype, as in fairseq's fp16 training: rounding the
        # waveform costs a relative error (about 55 dB SNR in bfloat16, at any level), the
        # first conv sums only kernel-size products and its norm takes float32 statistics.
        # Zero-mean unit-variance scaling (do_normalize) is the caller's, in float32.
        x = waveform.astype(self.dtype)[..., None]
        for i, (dim, k, s) in enumerate(zip(self.conv_dim, self.conv_kernel, self.conv_stride)):
            # "group": GroupNorm on the first layer only (BASE); "layer": after every conv.
            norm = self.norm if self.norm == "layer" or i == 0 else None
            x = ConvLayer(dim, k, s, self.conv_bias, norm, self.dtype,
                          name=f"conv_layers_{i}")(x)
        return x


class FeatureProjection(nn.Module):
    """LayerNorm -> Dense(hidden) -> dropout; also returns the normalised features, which the
    quantiser reads."""

    features: int
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        normed = nn.LayerNorm(epsilon=self.layer_norm_eps, dtype=self.dtype, name="layer_norm")(x)
        fan_in = x.shape[-1]
        hidden = nn.Dense(self.features, dtype=self.dtype, name="projection",
                          kernel_init=nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                          bias_init=_uniform(1 / math.sqrt(fan_in)))(normed)
        return nn.Dropout(self.dropout, deterministic=not train)(hidden), normed


def _uniform(limit: float):
    return lambda rng, shape, dtype=jnp.float32: jax.random.uniform(rng, shape, dtype, -limit, limit)


def _unit_uniform(rng, shape, dtype=jnp.float32):
    return jax.random.uniform(rng, shape, dtype)


class PositionalConvEmbedding(nn.Module):
    """Grouped, weight-normalised Conv1d(hidden, hidden, kernel, padding kernel // 2) -> drop the
    extra last frame of an even kernel -> GELU (section 2, "Contextualized representations")."""

    kernel_size: int = 128
    groups: int = 16
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dim, k = x.shape[-1], self.kernel_size
        if dim % self.groups:
            raise ValueError(f"hidden size {dim} is not divisible by num_conv_pos_embedding_groups="
                             f"{self.groups}")
        std = 2 * math.sqrt(1 / (k * dim))  # fairseq's init, kept by HF
        v = self.param("weight_v", nn.initializers.normal(std), (k, dim // self.groups, dim))
        # g starts at |v| so the initial weight is v itself, as torch's weight_norm does.
        g = self.param("weight_g", lambda _: jnp.linalg.norm(v, axis=(1, 2)))
        bias = self.param("bias", nn.initializers.zeros, (dim,))
        weight = weight_norm(g, v)  # in float32, then rounded once
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype), weight.astype(self.dtype), window_strides=(1,),
            padding=[(k // 2, k // 2)], dimension_numbers=("NWC", "WIO", "NWC"),
            feature_group_count=self.groups)
        y = y + bias.astype(self.dtype)
        if k % 2 == 0:
            y = y[:, :-1]  # "SamePad": symmetric padding of an even kernel adds one frame
        return gelu(y)


def weight_norm(g: jax.Array, v: jax.Array) -> jax.Array:
    """g * v / ||v||, norms over all axes but the kernel axis (PyTorch weight_norm dim=2)."""
    return g[:, None, None] * v / jnp.linalg.norm(v, axis=(1, 2), keepdims=True)


def _scale_grad(x: jax.Array, scale: float) -> jax.Array:
    """Identity forward, gradient times `scale` backward (fairseq's GradMultiply)."""
    if scale == 1.0:
        return x
    return scale * x + (1.0 - scale) * jax.lax.stop_gradient(x)


# ---- masking (section 3.1) --------------------------------------------------------------
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


# ---- the model --------------------------------------------------------------------------
class Wav2Vec2Outputs(NamedTuple):
    last_hidden_state: jax.Array  # [batch, frames, hidden]
    extract_features: jax.Array  # LayerNorm'd conv features [batch, frames, conv_dim[-1]]
    conv_features: jax.Array  # raw conv features (fairseq's feature penalty reads these)


class Wav2Vec2Fields(nn.Module):
    """The architecture and regularisation fields shared by `Wav2Vec2` and the classifier;
    defaults are HF `Wav2Vec2Config()`'s (the BASE model)."""

    conv_dim: Sequence[int] = (512,) * 7
    conv_kernel: Sequence[int] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: Sequence[int] = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    feat_extract_norm: str = "group"
    hidden: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate: int = 3072  # FFN width
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False  # pre-LN Transformer (LARGE LV-60k)
    layer_norm_eps: float = 1e-5
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.1
    feat_proj_dropout: float = 0.0
    layerdrop: float = 0.1
    # Fine-tuning SpecAugment in train mode (HF `apply_spec_augment`); the masked-frame
    # embedding exists when either probability is positive, as in HF. mask_time_prob is HF's
    # (see `compute_mask`): pretraining with the paper's p = 0.065, M = 10 uses 0.65.
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_time_min_masks: int = 2
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    mask_feature_min_masks: int = 0
    # Gradient into the feature encoder times this (section 4.2 of the paper uses 0.1).
    feature_grad_mult: float = 1.0
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    def backbone_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in BACKBONE_FIELDS}

    def num_frames(self, num_samples: int) -> int:
        return feature_frames(num_samples, self.conv_kernel, self.conv_stride)

    @property
    def has_mask_embedding(self) -> bool:
        return self.mask_time_prob > 0 or self.mask_feature_prob > 0


class Wav2Vec2(Wav2Vec2Fields):
    """HF `Wav2Vec2Model`: waveform [batch, samples] -> last hidden state [batch, frames, hidden].

    `mask_time_indices` [batch, frames] (bool) replaces those frames by `masked_spec_embed`
    (pretraining passes its own); without it, training draws the HF fine-tuning masks from
    the "dropout" rng when `mask_time_prob` / `mask_feature_prob` are positive.
    `attention_mask` [batch, samples] (1 = real sample) handles right-padded batches as HF does.
    """

    input_kind: ClassVar[str] = "waveform"

    def setup(self):
        if self.feat_extract_norm not in FEATURE_NORMS:
            raise ValueError(f"feat_extract_norm={self.feat_extract_norm!r} is not one of "
                             f"{FEATURE_NORMS}")
        if not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ValueError(f"conv_dim, conv_kernel and conv_stride need one entry per layer; got "
                             f"{len(self.conv_dim)}, {len(self.conv_kernel)}, {len(self.conv_stride)}")
        self.feature_extractor = FeatureEncoder(tuple(self.conv_dim), tuple(self.conv_kernel),
                                                tuple(self.conv_stride), self.conv_bias,
                                                self.feat_extract_norm, self.dtype)
        self.feature_projection = FeatureProjection(self.hidden, self.feat_proj_dropout,
                                                    self.layer_norm_eps, self.dtype)
        if self.has_mask_embedding:
            self.masked_spec_embed = self.param("masked_spec_embed", _unit_uniform,
                                                (self.hidden,))
        self.pos_conv_embed = PositionalConvEmbedding(self.num_conv_pos_embeddings,
                                                      self.num_conv_pos_embedding_groups,
                                                      self.dtype)
        # Attention dropout, activation dropout, LayerDrop and both LN placements are the
        # shared encoder's; the positional convolution runs before it.
        self.encoder = Encoder(
            num_layers=self.num_layers, num_heads=self.num_heads, mlp_dim=self.intermediate,
            dropout=self.hidden_dropout, attention_dropout=self.attention_dropout,
            activation_dropout=self.activation_dropout, layer_drop=self.layerdrop,
            layer_norm_eps=self.layer_norm_eps, layer_norm_first=self.do_stable_layer_norm,
            dtype=self.dtype)

    def __call__(self, waveform: jax.Array, train: bool = False,
                 mask_time_indices: jax.Array | None = None,
                 attention_mask: jax.Array | None = None) -> jax.Array:
        return self.encode(waveform, train, mask_time_indices, attention_mask).last_hidden_state

    def encode(self, waveform: jax.Array, train: bool = False,
               mask_time_indices: jax.Array | None = None,
               attention_mask: jax.Array | None = None) -> Wav2Vec2Outputs:
        if waveform.ndim != 2:
            raise ValueError(f"expected a waveform batch [batch, samples], got shape "
                             f"{tuple(waveform.shape)}; add a batch axis for a single clip")
        if self.num_frames(waveform.shape[1]) < 1:
            raise ValueError(f"{waveform.shape[1]} samples are too few for the feature encoder "
                             f"(kernels {tuple(self.conv_kernel)}, strides {tuple(self.conv_stride)})")
        conv_features = self.feature_extractor(waveform)
        conv_features = _scale_grad(conv_features, self.feature_grad_mult)
        hidden, extract_features = self.feature_projection(conv_features, train)
        frame_mask = self.frame_mask(attention_mask, hidden.shape[1])
        hidden = self.mask_hidden(hidden, train, mask_time_indices)
        if frame_mask is not None:
            hidden = jnp.where(frame_mask[..., None], hidden, 0.0)  # padded frames are zero
        hidden = hidden + self.pos_conv_embed(hidden)
        hidden = self.encoder(hidden, frame_mask, train)
        return Wav2Vec2Outputs(hidden, extract_features, conv_features)

    def frame_mask(self, attention_mask: jax.Array | None, frames: int) -> jax.Array | None:
        """Sample-level padding mask -> frame-level [batch, frames] (frames of the real length)."""
        if attention_mask is None:
            return None
        lengths = jnp.sum(attention_mask, axis=-1)
        for k, s in zip(self.conv_kernel, self.conv_stride):
            lengths = (lengths - k) // s + 1
        return jnp.arange(frames)[None, :] < lengths[:, None]

    def mask_hidden(self, hidden: jax.Array, train: bool,
                    mask_time_indices: jax.Array | None) -> jax.Array:
        batch, frames, dim = hidden.shape
        if mask_time_indices is None and train and self.mask_time_prob > 0:
            mask_time_indices = compute_mask(self.make_rng("dropout"), batch, frames,
                                             self.mask_time_prob, self.mask_time_length,
                                             self.mask_time_min_masks)
        if mask_time_indices is not None:
            if not self.has_mask_embedding:
                raise ValueError("mask_time_indices given but the model has no masked_spec_embed: "
                                 "set mask_time_prob > 0")
            embed = self.masked_spec_embed.astype(hidden.dtype)
            hidden = jnp.where(mask_time_indices[..., None].astype(bool), embed, hidden)
        if train and self.mask_feature_prob > 0:
            channels = compute_mask(self.make_rng("dropout"), batch, dim, self.mask_feature_prob,
                                    self.mask_feature_length, self.mask_feature_min_masks)
            hidden = jnp.where(channels[:, None, :], 0.0, hidden)
        return hidden


BACKBONE_FIELDS = tuple(f for f in Wav2Vec2Fields.__dataclass_fields__
                        if f not in ("parent", "name"))

LARGE_LV60 = dict(hidden=1024, num_layers=24, num_heads=16, intermediate=4096,
                  feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)

# BASE: 12 x 768, group-norm feature encoder, post-LN (HF facebook/wav2vec2-base).
Wav2Vec2Base = functools.partial(Wav2Vec2)
# LARGE trained on LV-60k: 24 x 1024, layer-norm feature encoder with conv bias, pre-LN
# (HF facebook/wav2vec2-large-lv60).
Wav2Vec2Large = functools.partial(Wav2Vec2, **LARGE_LV60)


# ---- quantiser (section 2, "Quantization module") ---------------------------------------
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
        codevectors = self.param("codevectors", _unit_uniform, (g * v, self.codevector_dim // g))
        # The code logits stay float32 whatever self.dtype (a small matmul): with N(0, 1)
        # weights they are tens, where bfloat16's steps are 0.125, and divided by a
        # temperature down to 0.5 the rounding would move the Gumbel softmax's probabilities
        # (and the diversity loss's perplexity) by up to 13%.
        logits = nn.Dense(g * v, name="weight_proj", kernel_init=nn.initializers.normal(1.0),
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
        projected = nn.Dense(self.proj_codevector_dim, dtype=self.dtype,
                             name="project_hid")(out.last_hidden_state)
        features = nn.Dropout(self.feat_quantizer_dropout, deterministic=not train)(
            out.extract_features)
        quantizer = GumbelVectorQuantizer(self.num_codevector_groups,
                                          self.num_codevectors_per_group, self.codevector_dim,
                                          self.dtype, name="quantizer")
        quantized, perplexity = quantizer(features, mask_time_indices, temperature=temperature,
                                          train=train)
        quantized = nn.Dense(self.proj_codevector_dim, dtype=self.dtype,
                             name="project_q")(quantized)
        return PretrainingOutputs(projected, quantized, perplexity, out.conv_features)


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


# ---- classifier -------------------------------------------------------------------------
class Wav2Vec2Classifier(Wav2Vec2Fields):
    """HF `Wav2Vec2ForSequenceClassification`: wav2vec 2.0 -> projector Dense(proj_size) per
    frame -> mean over frames -> classifier Dense(num_classes). `features` is the pooled
    projector output."""

    input_kind: ClassVar[str] = "waveform"
    num_classes: int = 2
    classifier_proj_size: int = 256

    def setup(self):
        self.wav2vec2 = Wav2Vec2(**self.backbone_fields())
        self.projector = nn.Dense(self.classifier_proj_size, dtype=self.dtype)
        self.classifier = nn.Dense(self.num_classes, dtype=self.dtype)

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


# ---- Hugging Face checkpoints -----------------------------------------------------------
# config.json keys -> module fields, with HF's defaults for keys an older file leaves out.
_HF_FIELDS = {
    "conv_dim": ("conv_dim", (512,) * 7),
    "conv_kernel": ("conv_kernel", (10, 3, 3, 3, 3, 2, 2)),
    "conv_stride": ("conv_stride", (5, 2, 2, 2, 2, 2, 2)),
    "conv_bias": ("conv_bias", False),
    "feat_extract_norm": ("feat_extract_norm", "group"),
    "hidden_size": ("hidden", 768),
    "num_hidden_layers": ("num_layers", 12),
    "num_attention_heads": ("num_heads", 12),
    "intermediate_size": ("intermediate", 3072),
    "num_conv_pos_embeddings": ("num_conv_pos_embeddings", 128),
    "num_conv_pos_embedding_groups": ("num_conv_pos_embedding_groups", 16),
    "do_stable_layer_norm": ("do_stable_layer_norm", False),
    "layer_norm_eps": ("layer_norm_eps", 1e-5),
    "hidden_dropout": ("hidden_dropout", 0.1),
    "attention_dropout": ("attention_dropout", 0.1),
    "activation_dropout": ("activation_dropout", 0.1),
    "feat_proj_dropout": ("feat_proj_dropout", 0.0),
    "layerdrop": ("layerdrop", 0.1),
    "mask_time_prob": ("mask_time_prob", 0.05),
    "mask_time_length": ("mask_time_length", 10),
    "mask_time_min_masks": ("mask_time_min_masks", 2),
    "mask_feature_prob": ("mask_feature_prob", 0.0),
    "mask_feature_length": ("mask_feature_length", 10),
    "mask_feature_min_masks": ("mask_feature_min_masks", 0),
}
_HF_PRETRAINING_FIELDS = {
    "num_codevector_groups": 2, "num_codevectors_per_group": 320, "codevector_dim": 256,
    "proj_codevector_dim": 256, "feat_quantizer_dropout": 0.0,
}
# Tensors of Wav2Vec2ForPreTraining's head, dropped when only the encoder is asked for.
_PRETRAINING_HEAD = ("quantizer.", "project_hid.", "project_q.")
# Weight-norm (g, v) of the positional conv: torch.nn.utils.parametrizations names, then the
# older torch.nn.utils.weight_norm names.
_WEIGHT_NORM_NAMES = (("parametrizations.weight.original0", "parametrizations.weight.original1"),
                      ("weight_g", "weight_v"))


def config_from_hf(config: dict) -> dict[str, Any]:
    """`Wav2Vec2` fields from a Hugging Face `config.json` dict (HF defaults for missing keys)."""
    if config.get("model_type", "wav2vec2") != "wav2vec2":
        raise CheckpointFormatError(f"config.json has model_type={config['model_type']!r}; "
                                    f"wav2vec2.from_hf reads 'wav2vec2' checkpoints only")
    for key in ("hidden_act", "feat_extract_activation"):
        if config.get(key, "gelu") != "gelu":
            raise CheckpointFormatError(f"config.json {key}={config[key]!r} is not supported "
                                        f"(only 'gelu')")
    if config.get("add_adapter") or config.get("adapter_attn_dim") is not None:
        raise CheckpointFormatError("config.json enables adapters (add_adapter / adapter_attn_dim), "
                                    "which wav2vec2.from_hf does not support")
    fields = {}
    for key, (field, default) in _HF_FIELDS.items():
        value = config.get(key, default)
        fields[field] = tuple(value) if isinstance(value, list) else value
    return fields


def _linear(w: np.ndarray) -> np.ndarray:
    return w.T  # torch Linear [out, in] -> flax Dense [in, out]


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 1, 0)  # torch Conv1d [out, in, k] -> [k, in, out]


def _same(w: np.ndarray) -> np.ndarray:
    return w


def _dense(path: tuple[str, ...], name: str, bias: bool = True):
    yield path + ("kernel",), f"{name}.weight", _linear
    if bias:
        yield path + ("bias",), f"{name}.bias", _same


def _norm(path: tuple[str, ...], name: str):
    yield path + ("scale",), f"{name}.weight", _same
    yield path + ("bias",), f"{name}.bias", _same


def hf_names(model: Wav2Vec2):
    """(flax param path, HF tensor name, converter) for every parameter of a `Wav2Vec2` except
    the positional conv's weight norm (see `_pos_conv_weights`)."""
    for i in range(len(model.conv_dim)):
        path, name = ("feature_extractor", f"conv_layers_{i}"), f"feature_extractor.conv_layers.{i}"
        yield path + ("conv", "kernel"), f"{name}.conv.weight", _conv
        if model.conv_bias:
            yield path + ("conv", "bias"), f"{name}.conv.bias", _same
        if model.feat_extract_norm == "layer" or i == 0:
            yield from _norm(path + ("layer_norm",), f"{name}.layer_norm")
    yield from _norm(("feature_projection", "layer_norm"), "feature_projection.layer_norm")
    yield from _dense(("feature_projection", "projection"), "feature_projection.projection")
    if model.has_mask_embedding:
        yield ("masked_spec_embed",), "masked_spec_embed", _same
    yield ("pos_conv_embed", "bias"), "encoder.pos_conv_embed.conv.bias", _same
    yield from _norm(("encoder", "norm"), "encoder.layer_norm")
    for i in range(model.num_layers):
        path, name = ("encoder", f"layers_{i}"), f"encoder.layers.{i}"
        for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"),
                             ("out", "out_proj")):
            yield from _dense(path + ("attention", ours), f"{name}.attention.{theirs}")
        yield from _norm(path + ("attention_norm",), f"{name}.layer_norm")
        yield from _dense(path + ("mlp", "fc1"), f"{name}.feed_forward.intermediate_dense")
        yield from _dense(path + ("mlp", "fc2"), f"{name}.feed_forward.output_dense")
        yield from _norm(path + ("mlp_norm",), f"{name}.final_layer_norm")


def _pos_conv_weights(weights: dict, prefix: str, used: set[str]) -> dict[tuple[str, ...], np.ndarray]:
    """weight_g [k] and weight_v [k, in / groups, out] from either weight-norm naming, or from a
    plain folded `weight` (then v = weight and g = |weight|, which reproduces it exactly)."""
    base = f"{prefix}encoder.pos_conv_embed.conv."
    for g_name, v_name in _WEIGHT_NORM_NAMES:
        if base + v_name in weights:
            g = take(weights, base + g_name, used).reshape(-1)
            v = _conv(take(weights, base + v_name, used))
            return {("pos_conv_embed", "weight_g"): g, ("pos_conv_embed", "weight_v"): v}
    v = _conv(take(weights, base + "weight", used))
    return {("pos_conv_embed", "weight_g"): np.linalg.norm(v, axis=(1, 2)),
            ("pos_conv_embed", "weight_v"): v}


def _backbone_params(model: Wav2Vec2, weights: dict, prefix: str, used: set[str]) -> dict:
    flat = {path: convert(take(weights, prefix + name, used)) for path, name, convert in hf_names(model)}
    flat.update(_pos_conv_weights(weights, prefix, used))
    return flat


def _head_params(weights: dict, used: set[str]) -> dict:
    flat = {("quantizer", "codevectors"): take(weights, "quantizer.codevectors", used)[0]}
    for path, name, convert in (*_dense(("quantizer", "weight_proj"), "quantizer.weight_proj"),
                                *_dense(("project_hid",), "project_hid"),
                                *_dense(("project_q",), "project_q")):
        flat[path] = convert(take(weights, name, used))
    return flat


def _check_shapes(module: nn.Module, params: dict, example: jax.Array, *init_args) -> None:
    """Every converted tensor has the shape the module expects, and nothing is missing."""
    expected = jax.eval_shape(lambda: module.init(jax.random.key(0), example, *init_args))
    expected = traverse_util.flatten_dict(expected["params"])
    got = traverse_util.flatten_dict(params)
    for path in sorted(set(expected) | set(got)):
        if path not in got or path not in expected:
            raise CheckpointFormatError(f"parameter {'/'.join(path)} is missing from the "
                                        f"{'checkpoint' if path not in got else 'model'}")
        if tuple(got[path].shape) != tuple(expected[path].shape):
            raise CheckpointFormatError(
                f"parameter {'/'.join(path)}: checkpoint shape {tuple(got[path].shape)}, model "
                f"expects {tuple(expected[path].shape)}; does config.json match the weights?")


def from_hf(path: str | Path, *, pretraining: bool = False) -> tuple[nn.Module, dict]:
    """(module, variables) from a local Hugging Face `Wav2Vec2Model` or `Wav2Vec2ForPreTraining`
    directory (config.json + model.safetensors or pytorch_model.bin); no network.

    Default: the `Wav2Vec2` encoder, `module.apply(variables, waveform)` -> last hidden state;
    a ForPreTraining checkpoint's quantiser and projections are then left out on purpose.
    `pretraining=True`: `Wav2Vec2ForPreTraining` with its head (the checkpoint must have it).
    Any other tensor in the checkpoint (a CTC or classification head, adapters) is an error.
    """
    config, weights = load_hf_dir(path)
    model = Wav2Vec2(**config_from_hf(config))
    prefix = "wav2vec2." if any(k.startswith("wav2vec2.") for k in weights) else ""
    used: set[str] = set()
    flat = _backbone_params(model, weights, prefix, used)
    if pretraining:
        if prefix != "wav2vec2.":
            raise CheckpointFormatError(f"{path} holds a Wav2Vec2Model without the pretraining "
                                        f"head; load it with pretraining=False")
        head = {k: config.get(k, v) for k, v in _HF_PRETRAINING_FIELDS.items()}
        module = Wav2Vec2ForPreTraining(wav2vec2=model, **head)
        flat = {("wav2vec2", *p): v for p, v in flat.items()}
        flat.update(_head_params(weights, used))
    else:
        module = model
        used.update(k for k in weights if k.startswith(_PRETRAINING_HEAD))
    unused = sorted(set(weights) - used)
    if unused:
        raise CheckpointFormatError(
            f"{path}: {len(unused)} checkpoint tensors have no place in the model, e.g. "
            f"{unused[:3]}; from_hf reads Wav2Vec2Model and Wav2Vec2ForPreTraining checkpoints")
    params = traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})
    example = jnp.zeros((1, _min_samples(model)), jnp.float32)
    if pretraining:
        _check_shapes(module, params, example, jnp.zeros((1, 1), bool))
    else:
        _check_shapes(module, params, example)
    return module, {"params": params}


def _min_samples(model: Wav2Vec2) -> int:
    """The shortest input that gives one frame."""
    samples = 1
    for k, s in reversed(list(zip(model.conv_kernel, model.conv_stride))):
        samples = (samples - 1) * s + k
    return samples
