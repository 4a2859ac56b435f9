"""Reading Hugging Face checkpoint directories from local disk, with no network.

A directory saved by `transformers` `save_pretrained` holds `config.json` and the weights as
`model.safetensors` (read with `safetensors.numpy`, no torch needed) or `pytorch_model.bin`
(read with torch when it is installed). Model modules map these PyTorch-named arrays onto their
Flax parameter trees.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
