"""Objective adapters: one per model family, between the model and the generic trainer.

A task turns a config into a model, a train state, a jit-able train step and eval step, and
audio samples; the trainer calls nothing else. `build_task(config)` picks the task by
`config.task.name`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from audiozoo.config import ConfigError

# task.name -> "module:class", imported on first use.
TASKS = {
    "wavenet": "wavenet:WaveNetTask",
    "vocoder": "vocoder:VocoderTask",
    "classify": "classify:ClassifyTask",
    "wav2vec2_pretrain": "wav2vec2_pretrain:Wav2Vec2PretrainTask",
    "autoencoder": "autoencoder:AutoencoderTask",
    "prior": "prior:PriorTask",
    "gansynth": "gansynth:GANSynthTask",
}


def build_task(config):
    name = config.task.name
    if name not in TASKS:
        raise ConfigError(f"unknown task.name={name!r}; valid names: {', '.join(sorted(TASKS))}")
    module, attr = TASKS[name].split(":")
    return getattr(importlib.import_module(f"audiozoo.tasks.{module}"), attr)(config)


def restore_latest(workdir: str | Path):
    """(config, task, state) of a trained workdir's latest checkpoint, for inference: the
    state's params are the parameter EMA when the run kept one (`Task.for_inference`)."""
    import jax

    from audiozoo.checkpoint import Checkpointer, load_workdir_config

    config = load_workdir_config(workdir)
    task = build_task(config)
    shapes = jax.eval_shape(task.init_train_state, jax.random.key(0), task.dummy_batch(1))
    return config, task, task.for_inference(Checkpointer(workdir).restore_state(shapes))
