"""audiozoo: a JAX/Flax model zoo for neural audio.

Submodules load on first use (`az.generation`, `az.models`, ...), so `import audiozoo` and the
CLI start quickly.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("audio", "config", "data", "generation", "models", "nn", "tasks", "train")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"audiozoo.{name}")
    raise AttributeError(f"module 'audiozoo' has no attribute {name!r}")
