"""Reading Hugging Face checkpoint directories from local disk, with no network.

A directory saved by `transformers` `save_pretrained` holds `config.json` and the weights as
`model.safetensors` (read with `safetensors.numpy`, no torch needed) or `pytorch_model.bin`
(read with torch when it is installed). Model modules map these PyTorch-named arrays onto their
Flax parameter trees with the converters below: each lists its parameters as (flax path,
checkpoint name, converter) triples built from `dense`, `conv` and `layer_norm`, reads them with
`take_all` and checks the result against its own `init` with `check_shapes`. The layouts are
PyTorch's (torch.nn.Linear, Conv1d/Conv2d, LayerNorm) as `transformers` saves them.

`load_weights_file` reads a bare state dict from one file (.safetensors, .npz, or a PyTorch
pickle when torch is installed), e.g. a timm checkpoint; `encoder_names` and `fused_dense` name
the parameters of `audiozoo.nn.transformer.Encoder` for any checkpoint naming scheme.
"""

from __future__ import annotations

import functools
import json
import pickle
from pathlib import Path
from typing import Callable, Iterable, Sequence

import jax
import numpy as np
from flax import traverse_util

SAFETENSORS = "model.safetensors"
TORCH_BIN = "pytorch_model.bin"


class CheckpointFormatError(ValueError):
    """A checkpoint directory that cannot be read; the message names the file and the fix."""


def load_hf_dir(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config dict, {parameter name: float32 numpy array}) of a local checkpoint directory."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointFormatError(f"checkpoint directory {path} does not exist")
    config_file = path / "config.json"
    if not config_file.exists():
        raise CheckpointFormatError(f"{config_file} is missing: is {path} a Hugging Face checkpoint "
                                    f"directory (made by save_pretrained)?")
    config = json.loads(config_file.read_text())
    return config, _load_weights(path)


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    for name in (SAFETENSORS, TORCH_BIN):
        if (path / name).exists():
            return load_weights_file(path / name)
    raise CheckpointFormatError(f"{path} holds neither {SAFETENSORS} nor {TORCH_BIN}")


TORCH_SUFFIXES = (".bin", ".pth", ".pt")
# Training scripts (DeiT's, timm's) save the state dict under one of these keys.
STATE_DICT_KEYS = ("model", "state_dict", "model_ema")


def load_weights_file(file: str | Path) -> dict[str, np.ndarray]:
    """{parameter name: float32 numpy array} of one state-dict file: .safetensors, .npz, or
    a PyTorch pickle (.bin / .pth / .pt, read with torch when it is installed)."""
    file = Path(file)
    if not file.is_file():
        raise CheckpointFormatError(f"checkpoint file {file} does not exist")
    if file.suffix == ".safetensors":
        from safetensors.numpy import load_file

        weights = load_file(str(file))
    elif file.suffix == ".npz":
        with np.load(file, allow_pickle=False) as npz:
            weights = dict(npz)
    elif file.suffix in TORCH_SUFFIXES:
        weights = _load_torch_file(file)
    else:
        raise CheckpointFormatError(
            f"{file}: unknown checkpoint format {file.suffix!r}; expected .safetensors, .npz, "
            f"or a PyTorch state dict ({', '.join(TORCH_SUFFIXES)})")
    return {k: np.asarray(v, np.float32) for k, v in weights.items()}


def _load_torch_file(file: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointFormatError(
            f"{file} is a PyTorch pickle and torch is not installed: install the parity extra "
            f"(pip install 'audiozoo[parity]') or save it as .safetensors (save_pretrained with "
            f"safe_serialization=True, or safetensors.torch.save_file)"
        ) from None
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refuses arbitrary pickled objects
        raise CheckpointFormatError(f"{file} holds more than tensors ({e}); save only its state "
                                    f"dict (torch.save(model.state_dict(), ...))") from None
    # A training checkpoint wraps the weights ({"model": state_dict, ...}): take them.
    wrapper = next((k for k in STATE_DICT_KEYS if isinstance(state.get(k), dict)), None)
    if wrapper is not None:
        state = state[wrapper]
    return {k: v.float().numpy() for k, v in state.items() if isinstance(v, torch.Tensor)}


def take(weights: dict[str, np.ndarray], name: str, used: set[str]) -> np.ndarray:
    """weights[name], recording that it was used; a missing name is a clear error."""
    if name not in weights:
        raise CheckpointFormatError(f"checkpoint has no parameter {name!r}; is it the right model type?")
    used.add(name)
    return weights[name]


# ---- PyTorch tensor -> Flax parameter ----------------------------------------------------
# A model lists its parameters as (flax path, checkpoint name, converter) triples; `take_all`
# reads them and `check_shapes` compares the result with the module's own parameter tree.
Converter = Callable[[np.ndarray], np.ndarray]
Names = Iterable[tuple[tuple[str, ...], str, Converter]]


def as_is(w: np.ndarray) -> np.ndarray:
    return w


def linear_kernel(w: np.ndarray) -> np.ndarray:
    return w.T  # torch Linear [out, in] -> flax Dense [in, out]


def conv_kernel(w: np.ndarray) -> np.ndarray:
    # torch Conv1d/2d [out, in, *window] -> flax [*window, in, out] (WIO / HWIO)
    return w.transpose(*range(2, w.ndim), 1, 0)


def dense(path: tuple[str, ...], name: str, bias: bool = True) -> Names:
    """A torch `Linear` `name` as the flax `Dense` at `path`."""
    yield path + ("kernel",), f"{name}.weight", linear_kernel
    if bias:
        yield path + ("bias",), f"{name}.bias", as_is


def conv(path: tuple[str, ...], name: str, bias: bool = True) -> Names:
    """A torch `Conv1d` / `Conv2d` `name` as the flax `Conv` at `path`."""
    yield path + ("kernel",), f"{name}.weight", conv_kernel
    if bias:
        yield path + ("bias",), f"{name}.bias", as_is


def layer_norm(path: tuple[str, ...], name: str) -> Names:
    """A torch `LayerNorm` (or `GroupNorm`) `name` as the flax norm at `path`."""
    yield path + ("scale",), f"{name}.weight", as_is
    yield path + ("bias",), f"{name}.bias", as_is


def fused_dense(paths: Sequence[tuple[str, ...]], name: str, bias: bool = True) -> Names:
    """A torch `Linear` `name` whose output rows are len(paths) equal blocks, in order (timm's
    fused `attn.qkv`: query, key, value), as one flax `Dense` per block."""
    for i, path in enumerate(paths):
        rows = functools.partial(_row_block, index=i, count=len(paths))
        yield path + ("kernel",), f"{name}.weight", lambda w, rows=rows: linear_kernel(rows(w))
        if bias:
            yield path + ("bias",), f"{name}.bias", rows


def _row_block(w: np.ndarray, index: int, count: int) -> np.ndarray:
    if w.shape[0] % count:
        raise CheckpointFormatError(f"a fused tensor of shape {w.shape} does not split into "
                                    f"{count} equal blocks of rows")
    size = w.shape[0] // count
    return w[index * size:(index + 1) * size]


def encoder_names(layer_names: dict[tuple[str, ...], str], layer_prefix: str, final_norm: str,
                  num_layers: int) -> Names:
    """The parameters of `audiozoo.nn.transformer.Encoder`: its final LayerNorm `final_norm`,
    and in layer i each (path in the block: checkpoint name) of `layer_names` under
    `layer_prefix.format(i)`; paths ending in "norm" are LayerNorms, the others Linears."""
    yield from layer_norm(("encoder", "norm"), final_norm)
    for i in range(num_layers):
        for path, name in layer_names.items():
            convert = layer_norm if path[-1].endswith("norm") else dense
            yield from convert(("encoder", f"layers_{i}", *path), layer_prefix.format(i) + name)


def take_all(weights: dict[str, np.ndarray], names: Names, used: set[str],
             prefix: str = "") -> dict[tuple[str, ...], np.ndarray]:
    """{flax path: converted tensor} for every (path, prefix + name, converter) in `names`."""
    return {path: convert(take(weights, prefix + name, used)) for path, name, convert in names}


def check_shapes(module, params: dict, *example_inputs, where: str | Path) -> None:
    """Every parameter `module.init(rng, *example_inputs)` makes is in `params` with the same
    shape, and `params` holds nothing else; `where` (the checkpoint) heads the error."""
    expected = jax.eval_shape(module.init, jax.random.key(0), *example_inputs)["params"]
    check_tree(params, expected, f"{where}: parameter",
               hint="; does config.json match the weights?")


def check_tree(got: dict, want, what: str, *, source: str = "checkpoint", hint: str = "") -> None:
    """`got` (converted weights) has exactly the paths and shapes of `want` (the model's tree,
    arrays or shape structs); the CheckpointFormatError names the first path that differs,
    after `what`."""
    got_flat, want_flat = traverse_util.flatten_dict(got), traverse_util.flatten_dict(want)
    for path in sorted(got_flat.keys() | want_flat.keys()):
        name = "/".join(path)
        if path not in got_flat or path not in want_flat:
            raise CheckpointFormatError(f"{what} {name} is missing from the "
                                        f"{source if path not in got_flat else 'model'}")
        if tuple(got_flat[path].shape) != tuple(want_flat[path].shape):
            raise CheckpointFormatError(
                f"{what} {name} has shape {tuple(got_flat[path].shape)} in the {source} but the "
                f"model expects {tuple(want_flat[path].shape)}{hint}")
