"""audiozoo: a JAX/Flax model zoo for neural audio.

Submodules load on first use (`az.generation`, `az.models`, ...), so `import audiozoo` and the
CLI start quickly. `az.load(workdir)` opens a trained workdir (see `audiozoo.trained`).
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("audio", "config", "data", "generation", "models", "nn", "tasks", "train",
               "trained")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"audiozoo.{name}")
    if name == "load":
        return importlib.import_module("audiozoo.trained").load
    raise AttributeError(f"module 'audiozoo' has no attribute {name!r}")
