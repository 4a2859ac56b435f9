"""The wav2vec 2.0 network: convolutional feature encoder and Transformer context network.

Baevski, Zhou, Mohamed & Auli 2020, "wav2vec 2.0", arXiv 2006.11477, section 2: the feature
encoder (seven strided convolutions, GELU, group or layer norm), the Transformer with its
convolutional relative positional embedding (weight-normalised, Salimans & Kingma 2016), and
section 4.2's feature-encoder gradient scaling. `Wav2Vec2` is Hugging Face's `Wav2Vec2Model`
(transformers' modeling_wav2vec2.py, a port of fairseq's wav2vec2.py) layer for layer, with the
fine-tuning SpecAugment masks (`masking.compute_mask`) in train mode.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.models.wav2vec2.masking import compute_mask
from audiozoo.nn.convolution import Conv
from audiozoo.nn.dense import Dense
from audiozoo.nn.transformer import Encoder, gelu

FEATURE_NORMS = ("group", "layer")
# The feature encoder's norms are PyTorch defaults, independent of `layer_norm_eps`.
CONV_NORM_EPS = 1e-5
# U[0, 1), torch's uniform_() default: the masked-frame embedding and the codebook entries.
UNIT_UNIFORM = nn.initializers.uniform(1.0)


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
        hidden = Dense(self.features, dtype=self.dtype, name="projection",
                       kernel_init=nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                       bias_init=_uniform(1 / math.sqrt(fan_in)))(normed)
        return nn.Dropout(self.dropout, deterministic=not train)(hidden), normed


def _uniform(limit: float):
    return lambda rng, shape, dtype=jnp.float32: jax.random.uniform(rng, shape, dtype, -limit, limit)


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
            self.masked_spec_embed = self.param("masked_spec_embed", UNIT_UNIFORM,
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
