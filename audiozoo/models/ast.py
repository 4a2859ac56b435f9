"""AST: the Audio Spectrogram Transformer, and its import from Hugging Face checkpoints.

Gong, Chung and Glass 2021, "AST: Audio Spectrogram Transformer", Interspeech
(arXiv 2104.01778). Implements section 2.1 (model architecture): the fbank spectrogram is cut
into 16x16 patches with overlap 6 in both frequency and time (stride 10; 1024 frames x 128
bins -> 12 x 101 = 1212 patches), each linearly projected (a strided conv) to a 768-d
embedding; a [CLS] token and, from DeiT (Touvron et al. 2021), a distillation token are
prepended; learned position embeddings are added; a ViT-Base encoder (Dosovitskiy et al.
2021: 12 pre-LN layers, 12 heads, MLP 3072) follows, and the output of the two special tokens,
averaged, feeds the MLP head (LayerNorm -> Linear). Section 2.2's ImageNet pretraining
(channel summing, position-embedding cut/interpolation from DeiT's 24 x 24 grid) is a
weight-import concern: `audiozoo.models.imagenet_vit`. With `distillation_token=False` the
model has only the [CLS] token, which alone feeds the head: the token layout of a plain ViT,
for starting from one.

Input: Kaldi fbank [batch, frames, num_mel_bins], normalised outside the model, (x - mean) /
(2 std) (the front end's job). The module turns it frequency-first, [batch, mel, frames, 1],
as AST and Hugging Face `ASTPatchEmbeddings` do, so patches are flattened frequency-major:
patch index = f * t_dim + t.

Variable length: the module is built for `num_frames` (the reference `max_length`); an input
with another number of frames gets its patch position embeddings resampled along time only
(bilinear, `jax.image.resize` on the [f_dim, t_dim, hidden] grid, no antialiasing, like
PyTorch `F.interpolate(mode="bilinear")`), the frequency grid and the two special tokens'
embeddings unchanged. At `num_frames` this is the identity. (The AST reference crops, rather
than interpolates, when fine-tuning a 1024-frame model on shorter clips; interpolation is our
choice because it needs no centre offset and works both ways.)

`from_hf(path)` reads a local `ASTForAudioClassification` (or bare `ASTModel`) directory made
by `save_pretrained`; logits match `transformers` to ~1e-6 (tests/test_ast.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from audiozoo.models.hf_checkpoint import (CheckpointFormatError, as_is, check_shapes, conv,
                                           dense, encoder_names, layer_norm, load_hf_dir, take,
                                           take_all)
from audiozoo.nn.convolution import Conv
from audiozoo.nn.dense import Dense
from audiozoo.nn.transformer import Encoder

TOKEN_INIT = nn.initializers.truncated_normal(0.02)  # DeiT / AST's trunc_normal_(std=.02)


def patch_grid(frames: int, mel_bins: int, patch_size: int, frequency_stride: int,
               time_stride: int) -> tuple[int, int]:
    """(f_dim, t_dim): how many patches a VALID strided conv fits along each axis."""
    if frames < patch_size or mel_bins < patch_size:
        raise ValueError(f"a {frames} x {mel_bins} (frames x mel bins) spectrogram is smaller than "
                         f"one {patch_size} x {patch_size} patch")
    return ((mel_bins - patch_size) // frequency_stride + 1,
            (frames - patch_size) // time_stride + 1)


def resize_time_positions(grid: jax.Array, t_dim: int) -> jax.Array:
    """Patch position embeddings [f_dim, t, hidden] resampled to [f_dim, t_dim, hidden].

    Bilinear along time only (the frequency size is unchanged); no-op at the same length.
    """
    if grid.shape[1] == t_dim:
        return grid
    return jax.image.resize(grid, (grid.shape[0], t_dim, grid.shape[2]), method="bilinear",
                            antialias=False)


class AST(nn.Module):
    """Audio Spectrogram Transformer classifier (see the module docstring).

    `features` is the pooled representation that feeds the MLP head: (CLS + distillation
    token outputs) / 2 (the CLS output alone with `distillation_token=False`) after the
    encoder's final LayerNorm, before the head's LayerNorm (the paper's MLP head is LayerNorm +
    Linear as one unit; this is also Hugging Face's `ASTModel` `pooler_output`). With
    `num_classes=0` there is no head and `__call__` returns these features (what a bare
    `ASTModel` checkpoint provides).
    """

    input_kind: ClassVar[str] = "fbank"

    num_classes: int
    num_frames: int = 1024  # the time length the position embeddings are learned for
    num_mel_bins: int = 128
    patch_size: int = 16
    frequency_stride: int = 10
    time_stride: int = 10
    hidden: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    dropout: float = 0.0
    attention_dropout: float = 0.0
    layer_norm_eps: float = 1e-12
    distillation_token: bool = True  # DeiT's second special token (False: ViT's CLS only)
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    def grid(self, frames: int | None = None) -> tuple[int, int]:
        """(f_dim, t_dim) of the patch grid for `frames` (default `num_frames`)."""
        return patch_grid(self.num_frames if frames is None else frames, self.num_mel_bins,
                          self.patch_size, self.frequency_stride, self.time_stride)

    @property
    def num_patches(self) -> int:
        f_dim, t_dim = self.grid()
        return f_dim * t_dim

    @property
    def num_special_tokens(self) -> int:
        """The tokens before the patches: [CLS] and, in DeiT's layout, the distillation token."""
        return 2 if self.distillation_token else 1

    def setup(self):
        self.patch_embed = Conv(self.hidden, (self.patch_size, self.patch_size),
                                strides=(self.frequency_stride, self.time_stride),
                                padding="VALID", dtype=self.dtype)
        self.cls_token = self.param("cls_token", TOKEN_INIT, (1, 1, self.hidden))
        if self.distillation_token:
            self.dist_token = self.param("dist_token", TOKEN_INIT, (1, 1, self.hidden))
        self.pos_embed = self.param("pos_embed", TOKEN_INIT,
                                    (1, self.num_special_tokens + self.num_patches, self.hidden))
        self.encoder = Encoder(self.num_layers, self.num_heads, self.mlp_dim, self.dropout,
                               self.attention_dropout, layer_norm_eps=self.layer_norm_eps,
                               layer_norm_first=True, dtype=self.dtype)
        if self.num_classes:
            self.head_norm = nn.LayerNorm(epsilon=self.layer_norm_eps, dtype=self.dtype)
            self.head = Dense(self.num_classes, dtype=self.dtype)

    def _check_input(self, x: jax.Array) -> None:
        if x.ndim != 3 or x.shape[2] != self.num_mel_bins:
            raise ValueError(f"AST expects fbank [batch, frames, {self.num_mel_bins}]; got shape "
                             f"{x.shape}")

    def position_embeddings(self, frames: int) -> jax.Array:
        """[1, special tokens + f_dim * t_dim, hidden] for an input of `frames` frames."""
        f_dim, t_dim = self.grid()
        _, new_t_dim = self.grid(frames)
        special = self.pos_embed[:, :self.num_special_tokens]
        patches = self.pos_embed[0, self.num_special_tokens:].reshape(f_dim, t_dim, self.hidden)
        patches = resize_time_positions(patches, new_t_dim).reshape(1, -1, self.hidden)
        return jnp.concatenate([special, patches], axis=1)

    def embed(self, x: jax.Array) -> jax.Array:
        """fbank [batch, frames, mel] -> tokens [batch, special + patches, hidden], with
        positions."""
        self._check_input(x)
        x = x.astype(self.dtype)
        image = jnp.swapaxes(x, 1, 2)[..., None]  # [batch, mel, frames, 1]: frequency first
        patches = self.patch_embed(image)  # [batch, f_dim, t_dim, hidden]
        patches = patches.reshape(x.shape[0], -1, self.hidden)  # frequency-major order
        special = [self.cls_token, self.dist_token] if self.distillation_token else [self.cls_token]
        special = jnp.concatenate(special, axis=1).astype(self.dtype)
        special = jnp.broadcast_to(special, (x.shape[0], self.num_special_tokens, self.hidden))
        tokens = jnp.concatenate([special, patches], axis=1)
        # Positions are resampled in float32, then rounded once.
        return tokens + self.position_embeddings(x.shape[1]).astype(self.dtype)

    def encode(self, x: jax.Array, train: bool = False) -> jax.Array:
        """The encoder's last hidden state [batch, special + patches, hidden] (after its
        LayerNorm)."""
        return self.encoder(self.embed(x), train=train)

    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Pooled [batch, hidden]: the mean of the CLS and distillation token outputs (the CLS
        output without a distillation token)."""
        hidden = self.encode(x, train)
        if not self.distillation_token:
            return hidden[:, 0]
        return (hidden[:, 0] + hidden[:, 1]) / 2

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """fbank [batch, frames, mel] -> logits [batch, num_classes]."""
        pooled = self.features(x, train)
        if not self.num_classes:
            return pooled
        return self.head(self.head_norm(pooled))


# ---- Hugging Face import ---------------------------------------------------------------------

HF_PREFIX = "audio_spectrogram_transformer."
# Checkpoint names of one encoder layer, per layout: the on-disk one (every Hub checkpoint, and
# what transformers 5 still writes) and transformers 5's in-memory module names.
HF_LAYER_NAMES = {
    "encoder.layer.{}.": {
        ("attention", "query"): "attention.attention.query",
        ("attention", "key"): "attention.attention.key",
        ("attention", "value"): "attention.attention.value",
        ("attention", "out"): "attention.output.dense",
        ("mlp", "fc1"): "intermediate.dense",
        ("mlp", "fc2"): "output.dense",
        ("attention_norm",): "layernorm_before",
        ("mlp_norm",): "layernorm_after",
    },
    "layers.{}.": {
        ("attention", "query"): "attention.q_proj",
        ("attention", "key"): "attention.k_proj",
        ("attention", "value"): "attention.v_proj",
        ("attention", "out"): "attention.o_proj",
        ("mlp", "fc1"): "mlp.fc1",
        ("mlp", "fc2"): "mlp.fc2",
        ("attention_norm",): "layernorm_before",
        ("mlp_norm",): "layernorm_after",
    },
}
IGNORED_SUFFIXES = ("position_ids",)  # buffers, not parameters


def from_hf(path: str | Path) -> tuple[AST, dict]:
    """(module, variables) from a local Hugging Face AST directory (config.json + weights).

    Reads `ASTForAudioClassification` checkpoints (logits) and bare `ASTModel` ones (then
    `num_classes=0` and `apply` returns the pooled features). Every checkpoint tensor must be
    used and every parameter found, with the shape the config implies.
    """
    config, weights = load_hf_dir(path)
    where = Path(path) / "config.json"
    prefix = HF_PREFIX if any(k.startswith(HF_PREFIX) for k in weights) else ""
    has_head = any(k.startswith("classifier.") for k in weights)
    module = _module_from_config(config, where, _num_labels(config, weights) if has_head else 0)
    used: set[str] = set()
    params = _convert(weights, module, prefix, used)
    unused = sorted(k for k in set(weights) - used if not k.endswith(IGNORED_SUFFIXES))
    if unused:
        raise CheckpointFormatError(
            f"{len(unused)} tensors of the checkpoint in {path} map to no AST parameter, e.g. "
            f"{unused[:5]}; is it an ASTForAudioClassification / ASTModel checkpoint?")
    dummy = jax.ShapeDtypeStruct((1, module.num_frames, module.num_mel_bins), jnp.float32)
    check_shapes(module, params, dummy, where=path)
    return module, {"params": jax.tree.map(jnp.asarray, params)}


def _num_labels(config: dict, weights: dict[str, np.ndarray]) -> int:
    n = len(config["id2label"]) if "id2label" in config else config.get("num_labels")
    rows = take(weights, "classifier.dense.weight", set()).shape[0]
    if n is not None and n != rows:
        raise CheckpointFormatError(f"config.json has {n} labels but classifier.dense.weight has "
                                    f"{rows} rows")
    return rows


def check_block_config(config: dict, where: Path) -> None:
    """The encoder blocks a Hugging Face ViT-family config.json describes are ours: GELU MLP,
    biased query/key/value."""
    if config.get("hidden_act", "gelu") != "gelu" or not config.get("qkv_bias", True):
        raise CheckpointFormatError(
            f"{where}: only hidden_act='gelu' with qkv_bias=true is supported (got "
            f"hidden_act={config.get('hidden_act')!r}, qkv_bias={config.get('qkv_bias')!r})")


def _module_from_config(config: dict, where: Path, num_classes: int) -> AST:
    def need(key, default=None):
        value = config.get(key, default)
        if value is None:
            raise CheckpointFormatError(f"{where} has no {key!r}")
        return value

    model_type = config.get("model_type", "audio-spectrogram-transformer")
    if model_type != "audio-spectrogram-transformer":
        raise CheckpointFormatError(f"{where} is model_type={model_type!r}, not an AST checkpoint")
    check_block_config(config, where)
    patch = need("patch_size", 16)
    if isinstance(patch, (list, tuple)):
        if len(set(patch)) != 1:
            raise CheckpointFormatError(f"{where}: non-square patch_size={patch} is not supported")
        patch = patch[0]
    return AST(
        num_classes=num_classes, num_frames=need("max_length", 1024),
        num_mel_bins=need("num_mel_bins", 128), patch_size=int(patch),
        frequency_stride=need("frequency_stride", 10), time_stride=need("time_stride", 10),
        hidden=need("hidden_size"), num_layers=need("num_hidden_layers"),
        num_heads=need("num_attention_heads"), mlp_dim=need("intermediate_size"),
        dropout=float(config.get("hidden_dropout_prob", 0.0)),
        attention_dropout=float(config.get("attention_probs_dropout_prob", 0.0)),
        layer_norm_eps=float(need("layer_norm_eps", 1e-12)),
    )


def _hf_names(module: AST, prefix: str, layout: str):
    """(flax param path, checkpoint name, converter) for every parameter of `module`."""
    emb = f"{prefix}embeddings."
    # Conv2d [out, in, kh, kw] -> HWIO; kh runs over frequency in both frameworks.
    yield from conv(("patch_embed",), f"{emb}patch_embeddings.projection")
    yield ("cls_token",), f"{emb}cls_token", as_is
    yield ("dist_token",), f"{emb}distillation_token", as_is
    yield ("pos_embed",), f"{emb}position_embeddings", as_is
    yield from encoder_names(HF_LAYER_NAMES[layout], prefix + layout, f"{prefix}layernorm",
                             module.num_layers)
    if module.num_classes:
        yield from layer_norm(("head_norm",), "classifier.layernorm")
        yield from dense(("head",), "classifier.dense")


def hf_layer_layout(weights: dict[str, np.ndarray], prefix: str) -> str:
    """The key of HF_LAYER_NAMES that the checkpoint's encoder layers are saved under (the
    on-disk one when neither matches, so that a missing tensor is named in its terms)."""
    return next((k for k in HF_LAYER_NAMES if f"{prefix}{k.format(0)}layernorm_before.weight"
                 in weights), "encoder.layer.{}.")


def _convert(weights, module: AST, prefix: str, used: set[str]) -> dict:
    layout = hf_layer_layout(weights, prefix)
    flat = take_all(weights, _hf_names(module, prefix, layout), used)
    return traverse_util.unflatten_dict(flat)
