"""Reading Hugging Face checkpoint directories from local disk, with no network.

A directory saved by `transformers` `save_pretrained` holds `config.json` and the weights as
`model.safetensors` (read with `safetensors.numpy`, no torch needed) or `pytorch_model.bin`
(read with torch when it is installed). Model modules map these PyTorch-named arrays onto their
Flax parameter trees with the converters below: each lists its parameters as (flax path,
checkpoint name, converter) triples built from `dense`, `conv` and `layer_norm`, reads them with
`take_all` and checks the result against its own `init` with `check_shapes`. The layouts are
PyTorch's (torch.nn.Linear, Conv1d/Conv2d, LayerNorm) as `transformers` saves them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

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
    if (path / SAFETENSORS).exists():
        from safetensors.numpy import load_file

        weights = load_file(str(path / SAFETENSORS))
    elif (path / TORCH_BIN).exists():
        weights = _load_torch_bin(path / TORCH_BIN)
    else:
        raise CheckpointFormatError(f"{path} holds neither {SAFETENSORS} nor {TORCH_BIN}")
    return {k: np.asarray(v, np.float32) for k, v in weights.items()}


def _load_torch_bin(file: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointFormatError(
            f"{file} is a PyTorch pickle and torch is not installed: install the parity extra "
            f"(pip install 'audiozoo[parity]') or re-save the checkpoint with "
            f"safe_serialization=True"
        ) from None
    state = torch.load(file, map_location="cpu", weights_only=True)
    return {k: v.float().numpy() for k, v in state.items()}


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


def take_all(weights: dict[str, np.ndarray], names: Names, used: set[str],
             prefix: str = "") -> dict[tuple[str, ...], np.ndarray]:
    """{flax path: converted tensor} for every (path, prefix + name, converter) in `names`."""
    return {path: convert(take(weights, prefix + name, used)) for path, name, convert in names}


def check_shapes(module, params: dict, *example_inputs, where: str | Path) -> None:
    """Every parameter `module.init(rng, *example_inputs)` makes is in `params` with the same
    shape, and `params` holds nothing else; `where` (the checkpoint) heads the error."""
    expected = jax.eval_shape(module.init, jax.random.key(0), *example_inputs)["params"]
    want, got = traverse_util.flatten_dict(expected), traverse_util.flatten_dict(params)
    for path in sorted(want.keys() | got.keys()):
        name = "/".join(path)
        if path not in got or path not in want:
            raise CheckpointFormatError(f"{where}: parameter {name} is missing from the "
                                        f"{'checkpoint' if path not in got else 'model'}")
        if tuple(got[path].shape) != tuple(want[path].shape):
            raise CheckpointFormatError(
                f"{where}: parameter {name} has shape {tuple(got[path].shape)} in the checkpoint "
                f"but the model expects {tuple(want[path].shape)}; does config.json match the "
                f"weights?")
