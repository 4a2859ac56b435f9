"""AST initialised from an ImageNet-pretrained DeiT / ViT checkpoint on local disk.

Gong, Chung and Glass 2021, "AST: Audio Spectrogram Transformer" (arXiv 2104.01778),
section 2.2 "ImageNet Pretraining": AST and ViT share their architecture, so AST starts from an
ImageNet DeiT (Touvron et al. 2021; the paper's results use the distilled base model at 384 x
384, timm's `deit_base_distilled_patch16_384`, a 24 x 24 patch grid) adapted in two places.
This module implements the `imagenet_pretrain=True` branch of `ASTModel.__init__` in the
reference code (YuanGongND/ast, src/models/ast_models.py):

- patch embedding: the image model's 16 x 16 kernel over 3 (RGB) input channels is summed over
  the channels (`torch.sum(proj.weight, dim=1).unsqueeze(1)`) to read the one spectrogram
  channel; its bias is kept. AST's stride (10, overlapping patches) differs from the image
  model's (16); the kernel is the same.
- position embeddings: the image grid [H, W] is adapted to AST's [f_dim, t_dim], the time axis
  (W) first, then frequency (H). An axis that gets no longer is cut from the middle, from
  index size // 2 - target // 2 (the reference's `int(hw / 2) - int(t_dim / 2)`); an axis that
  gets longer is stretched bilinearly (PyTorch `F.interpolate(mode="bilinear")`, half-pixel
  centres, here `jax.image.resize` without antialiasing, as in `audiozoo.models.ast`). The
  special tokens' embeddings are kept as they are.
- the encoder blocks and the final LayerNorm are taken as they are; the image classifier
  heads (DeiT has two) and a ViT pooler are not: AST gets a fresh head for its labels.

A distilled DeiT (CLS + distillation tokens) fits the paper's AST. A plain ViT (or a DeiT
without distillation, which Hugging Face saves as a ViT) has the CLS token only and fits
`AST(distillation_token=False)`, whose head then reads the CLS output alone. LayerNorm epsilon
is AST's own (1e-12, Hugging Face's; timm trained DeiT with 1e-6, a negligible difference).

Checkpoint layouts, told apart by their tensor names:

- Hugging Face: a `save_pretrained` directory (config.json + model.safetensors or
  pytorch_model.bin) of `DeiTModel`, `DeiTForImageClassification(WithTeacher)`, `ViTModel` or
  `ViTForImageClassification`; config.json gives the head count, checked against AST's.
- timm: a state dict (`patch_embed.proj`, `cls_token`, `dist_token`, `pos_embed`,
  `blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm`) in one
  .safetensors or .npz file, a PyTorch .pth / .bin file when torch is installed (DeiT's
  released files wrap it as {"model": ...}), or a Hub directory of a timm model (config.json +
  model.safetensors). timm fuses query, key and value into one `attn.qkv` Linear (rows q, k,
  v), split here; it does not record the head count, which is then AST's.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from audiozoo.models.ast import (AST, HF_LAYER_NAMES, HF_PREFIX, IGNORED_SUFFIXES,
                                 check_block_config, hf_layer_layout)
from audiozoo.models.hf_checkpoint import (CheckpointFormatError, Names, as_is, check_shapes,
                                           conv_kernel, encoder_names, fused_dense, load_hf_dir,
                                           load_weights_file, take_all)

# The tensors around the encoder, per layout (Hugging Face names follow the model's prefix).
EMBEDDING_NAMES = {
    "hf": {"patch": "embeddings.patch_embeddings.projection", "cls": "embeddings.cls_token",
           "dist": "embeddings.distillation_token", "pos": "embeddings.position_embeddings",
           "norm": "layernorm"},
    "timm": {"patch": "patch_embed.proj", "cls": "cls_token", "dist": "dist_token",
             "pos": "pos_embed", "norm": "norm"},
}
LAYOUT_NAMES = {"hf": "Hugging Face", "timm": "timm"}
TIMM_BLOCK = "blocks.{}."
# A timm block but its fused query/key/value Linear `attn.qkv`.
TIMM_LAYER_NAMES = {
    ("attention", "out"): "attn.proj",
    ("mlp", "fc1"): "mlp.fc1",
    ("mlp", "fc2"): "mlp.fc2",
    ("attention_norm",): "norm1",
    ("mlp_norm",): "norm2",
}
LAYER_INDEX = {"hf": r"(?:encoder\.layer|layers)\.(\d+)\.", "timm": r"blocks\.(\d+)\."}
IMAGE_MODEL_TYPES = ("deit", "vit")
# Image-classification parts AST does not take (names after the model prefix): Hugging Face's
# heads and ViT pooler, timm's heads and pre-logits layer.
IMAGE_HEADS = ("classifier.", "cls_classifier.", "distillation_classifier.", "pooler.",
               "head.", "head_dist.", "pre_logits.")
VIT_HEAD_DIM = 64  # every DeiT and ViT size: hidden = 64 * heads


# ---- the adaptation (section 2.2) -------------------------------------------------------------

def sum_input_channels(weight: np.ndarray) -> np.ndarray:
    """torch Conv2d weight [dim, channels, kh, kw] -> flax kernel [kh, kw, 1, dim], summed over
    the input channels: the RGB filters' responses to a grey image, which a spectrogram is."""
    return conv_kernel(weight.sum(axis=1, keepdims=True))


def fit_axis(grid: np.ndarray, axis: int, size: int) -> np.ndarray:
    """`grid` with `axis` cut to its middle `size` entries, or bilinearly stretched to `size`
    when it is shorter (the reference only ever stretches, never shrinks, by interpolation)."""
    length = grid.shape[axis]
    if size <= length:
        start = length // 2 - size // 2
        return np.take(grid, np.arange(start, start + size), axis=axis)
    shape = list(grid.shape)
    shape[axis] = size
    return np.asarray(jax.image.resize(grid, shape, method="bilinear", antialias=False))


def adapt_position_grid(grid: np.ndarray, f_dim: int, t_dim: int) -> np.ndarray:
    """Image patch positions [H, W, dim] -> AST's [f_dim, t_dim, dim]: rows are frequency and
    columns time, and the time axis is fitted first, as in the reference."""
    return fit_axis(fit_axis(grid, 1, t_dim), 0, f_dim)


def adapt_position_embeddings(pos: np.ndarray, num_tokens: int, image_grid: tuple[int, int],
                              audio_grid: tuple[int, int]) -> np.ndarray:
    """[1, tokens + H * W, dim] -> [1, tokens + f_dim * t_dim, dim]; the special tokens' rows
    unchanged, the patch rows (row-major over the grid in both models) adapted."""
    special, patches = pos[:, :num_tokens], pos[0, num_tokens:]
    grid = adapt_position_grid(patches.reshape(*image_grid, pos.shape[-1]), *audio_grid)
    return np.concatenate([special, grid.reshape(1, -1, pos.shape[-1])], axis=1)


# ---- reading a checkpoint -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ImageViT:
    """An image DeiT / ViT checkpoint: its tensors, where they are, and the sizes they imply."""

    path: Path
    weights: dict[str, np.ndarray]
    layout: str  # "hf" or "timm"
    prefix: str  # before every Hugging Face name: "deit.", "vit." or ""
    config: dict  # config.json; {} for a bare state-dict file

    def name(self, part: str) -> str:
        return self.prefix + EMBEDDING_NAMES[self.layout][part]

    def tensor(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise CheckpointFormatError(f"{self.path}: no tensor {name!r} in this "
                                        f"{LAYOUT_NAMES[self.layout]} checkpoint; is it a ViT "
                                        f"/ DeiT?")
        return self.weights[name]

    @property
    def distilled(self) -> bool:
        return self.name("dist") in self.weights

    @property
    def num_tokens(self) -> int:
        return 2 if self.distilled else 1

    @property
    def hidden(self) -> int:
        return self.tensor(self.name("patch") + ".weight").shape[0]

    @property
    def patch_size(self) -> int:
        kh, kw = self.tensor(self.name("patch") + ".weight").shape[2:]
        if kh != kw:
            raise CheckpointFormatError(f"{self.path}: non-square {kh} x {kw} patches are not "
                                        f"supported")
        return kh

    @functools.cached_property
    def num_layers(self) -> int:
        pattern = re.compile(re.escape(self.prefix) + LAYER_INDEX[self.layout])
        indices = {int(m.group(1)) for k in self.weights if (m := pattern.match(k))}
        if not indices:
            raise CheckpointFormatError(f"{self.path}: no encoder layers found")
        return max(indices) + 1

    @functools.cached_property
    def hf_layer_layout(self) -> str:
        return hf_layer_layout(self.weights, self.prefix)

    @property
    def mlp_dim(self) -> int:
        if self.layout == "timm":
            return self.tensor(TIMM_BLOCK.format(0) + "mlp.fc1.weight").shape[0]
        fc1 = HF_LAYER_NAMES[self.hf_layer_layout][("mlp", "fc1")]
        return self.tensor(f"{self.prefix}{self.hf_layer_layout.format(0)}{fc1}.weight").shape[0]

    @property
    def num_heads(self) -> int | None:
        """From config.json; None for timm, whose state dicts do not record it."""
        return self.config.get("num_attention_heads") if self.layout == "hf" else None

    @property
    def grid(self) -> tuple[int, int]:
        """(H, W): the image patch grid of the position embeddings."""
        patches = self.tensor(self.name("pos")).shape[1] - self.num_tokens
        size = self.config.get("image_size") if self.layout == "hf" else None
        if size is not None:  # Hugging Face: image_size (int or [h, w]) // patch_size
            h, w = (size, size) if isinstance(size, int) else size
            grid = (h // self.patch_size, w // self.patch_size)
        else:  # timm: square images
            side = math.isqrt(patches)
            grid = (side, side)
        if grid[0] * grid[1] != patches:
            raise CheckpointFormatError(
                f"{self.path}: {patches} patch position embeddings do not form a "
                f"{grid[0]} x {grid[1]} grid (after {self.num_tokens} special tokens)")
        return grid

    def describe(self) -> str:
        kind = "DeiT (CLS + distillation tokens)" if self.distilled else "ViT (CLS token only)"
        heads = f", num_heads={self.num_heads}" if self.num_heads is not None else ""
        return (f"a {LAYOUT_NAMES[self.layout]} {kind} with "
                f"hidden={self.hidden}, num_layers={self.num_layers}, mlp_dim={self.mlp_dim}"
                f"{heads}, patch_size={self.patch_size}, a {self.grid[0]} x {self.grid[1]} grid")


def read_image_checkpoint(path: str | Path) -> ImageViT:
    """A Hugging Face directory or a timm state-dict file / directory, its layout recognised."""
    path = Path(path)
    if path.is_dir():
        config, weights = load_hf_dir(path)
    elif path.is_file():
        config, weights = {}, load_weights_file(path)
    else:
        raise CheckpointFormatError(
            f"{path} does not exist: give a Hugging Face DeiT / ViT directory (config.json + "
            f"model.safetensors) or a timm state-dict file (.safetensors, .npz, .pth)")
    layout, prefix = _layout(weights, path)
    if layout == "hf":
        model_type = config.get("model_type")
        if model_type not in IMAGE_MODEL_TYPES:
            raise CheckpointFormatError(f"{path}: model_type={model_type!r} is not one of "
                                        f"{IMAGE_MODEL_TYPES}")
        check_block_config(config, path / "config.json")
    return ImageViT(path, weights, layout, prefix, config)


def _layout(weights: dict[str, np.ndarray], path: Path) -> tuple[str, str]:
    """("hf" or "timm", the prefix of the model's names), from where the patch kernel is."""
    timm_patch = EMBEDDING_NAMES["timm"]["patch"] + ".weight"
    if timm_patch in weights:
        return "timm", ""
    hf_patch = EMBEDDING_NAMES["hf"]["patch"] + ".weight"
    prefix = next((k[:-len(hf_patch)] for k in weights if k.endswith(hf_patch)), None)
    if prefix == HF_PREFIX:
        raise CheckpointFormatError(f"{path} is an AST checkpoint, not an image model; start "
                                    f"from it with task.init_from_hf instead")
    if prefix is None:
        raise CheckpointFormatError(
            f"{path} is neither a timm ViT / DeiT state dict (no {timm_patch!r}) nor a Hugging "
            f"Face one (no '...{hf_patch}'); its tensors are named like {sorted(weights)[:4]}")
    return "hf", prefix


# ---- into AST -----------------------------------------------------------------------------------

def from_imagenet(path: str | Path, module: AST) -> dict:
    """{"params": ...} of `module` but its head, from the image DeiT / ViT at `path` adapted
    as in section 2.2; every tensor of the checkpoint but the image heads must be used, and
    the sizes must be `module`'s (a CheckpointFormatError names the config fix otherwise)."""
    image = read_image_checkpoint(path)
    check_fits(image, module)
    used: set[str] = set()
    params = traverse_util.unflatten_dict(take_all(image.weights, _names(image, module), used))
    _check_all_used(image, used)
    dummy = jax.ShapeDtypeStruct((1, module.num_frames, module.num_mel_bins), jnp.float32)
    check_shapes(module.clone(num_classes=0), params, dummy, where=image.path)
    return {"params": jax.tree.map(jnp.asarray, params)}


def check_fits(image: ImageViT, module: AST) -> None:
    """The checkpoint's sizes and token layout are `module`'s; the error says what to set."""
    sizes = {"hidden": image.hidden, "num_layers": image.num_layers, "mlp_dim": image.mlp_dim,
             "patch_size": image.patch_size, "distillation_token": image.distilled}
    if image.num_heads is not None:
        sizes["num_heads"] = image.num_heads
    wrong = {k: v for k, v in sizes.items() if getattr(module, k) != v}
    if wrong:
        ours = ", ".join(f"{k}={getattr(module, k)}" for k in wrong)
        fix = " ".join(f"--config.model.{k}={v}" for k, v in wrong.items())
        raise CheckpointFormatError(
            f"{image.path} is {image.describe()}, but the AST model has {ours}; set {fix} to "
            f"build AST at the checkpoint's size, or use a checkpoint of the configured size")
    if image.num_heads is None and module.hidden != VIT_HEAD_DIM * module.num_heads:
        # A wrong head count would load without error and compute something else.
        fix = (f": set --config.model.num_heads={module.hidden // VIT_HEAD_DIM} if the checkpoint "
               f"is one" if module.hidden % VIT_HEAD_DIM == 0 else "")
        warnings.warn(f"{image.path}: timm state dicts do not record the head count; using "
                      f"model.num_heads={module.num_heads} ({module.hidden // module.num_heads}"
                      f"-d heads), but DeiT / ViT use {VIT_HEAD_DIM}-d heads{fix}", stacklevel=3)


def _names(image: ImageViT, module: AST) -> Names:
    """(AST param path, checkpoint name, converter) for every AST parameter but the head."""
    patch = image.name("patch")
    yield ("patch_embed", "kernel"), f"{patch}.weight", sum_input_channels
    yield ("patch_embed", "bias"), f"{patch}.bias", as_is
    yield ("cls_token",), image.name("cls"), as_is
    if image.distilled:
        yield ("dist_token",), image.name("dist"), as_is
    positions = functools.partial(adapt_position_embeddings, num_tokens=image.num_tokens,
                                  image_grid=image.grid, audio_grid=module.grid())
    yield ("pos_embed",), image.name("pos"), positions
    if image.layout == "hf":
        layout = image.hf_layer_layout
        yield from encoder_names(HF_LAYER_NAMES[layout], image.prefix + layout, image.name("norm"),
                                 image.num_layers)
        return
    yield from encoder_names(TIMM_LAYER_NAMES, TIMM_BLOCK, image.name("norm"), image.num_layers)
    for i in range(image.num_layers):
        attention = ("encoder", f"layers_{i}", "attention")
        yield from fused_dense([attention + (p,) for p in ("query", "key", "value")],
                               TIMM_BLOCK.format(i) + "attn.qkv")


def _check_all_used(image: ImageViT, used: set[str]) -> None:
    def ignored(key: str) -> bool:
        name = key[len(image.prefix):] if key.startswith(image.prefix) else key
        return name.startswith(IMAGE_HEADS) or key.endswith(IGNORED_SUFFIXES)

    unused = sorted(k for k in image.weights.keys() - used if not ignored(k))
    if unused:
        raise CheckpointFormatError(
            f"{image.path}: {len(unused)} tensors map to no AST parameter, e.g. {unused[:5]}; "
            f"AST starts from a plain pre-LayerNorm ViT / DeiT (no layer scale, register tokens "
            f"or other additions)")
