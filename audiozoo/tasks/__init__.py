"""Objective adapters: one per model family, between the model and the generic trainer.

A task turns a config into a model, a train state, a jit-able train step and eval step, and
audio samples; the trainer calls nothing else. `build_task(config)` picks the task by
`config.task.name`.
"""

from __future__ import annotations

from audiozoo.config import ConfigError


def _registry() -> dict:
    from audiozoo.tasks.wavenet import WaveNetTask

    return {"wavenet": WaveNetTask}


def build_task(config):
    registry = _registry()
    name = config.task.name
    if name not in registry:
        raise ConfigError(f"unknown task.name={name!r}; valid names: {', '.join(sorted(registry))}")
    return registry[name](config)
