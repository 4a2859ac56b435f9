"""A workdir's saved state: its config.json and orbax `CheckpointManager` checkpoints (train
state, step, data position, config).

Saves are atomic (orbax writes to a temporary directory and renames it when complete), so a
run killed mid-save still has its previous checkpoint. Training resumes from the latest one by
default; a workdir whose checkpoint came from an incompatible config is refused, never
overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path

import orbax.checkpoint as ocp

from audiozoo import config as config_lib
from audiozoo.config import ConfigError

CONFIG_FILE = "config.json"

# Config sections whose change makes an old checkpoint meaningless for the new run.
STRUCTURAL_SECTIONS = ("model", "task")
STRUCTURAL_KEYS = (("optim", "name"),)


class IncompatibleCheckpointError(ConfigError):
    pass


def load_workdir_config(workdir: str | Path):
    """The config a workdir was trained with (its config.json). Task fields added to the
    library after it was saved take their defaults, which keep the behaviour it was trained
    with (what `config_differences` also assumes)."""
    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {workdir} a workdir made by `audiozoo train`?")
    config = config_lib.from_json(path.read_text())
    for key, value in config_lib.base_config(config.task.name).task.items():
        if key not in config.task:
            config.task[key] = value
    return config


class Checkpointer:
    def __init__(self, workdir: str | Path, *, max_to_keep: int = 3):
        self.directory = Path(workdir).absolute() / "checkpoints"
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, *, data_position: dict, config_json: str) -> None:
        meta = {"step": int(step), "data_position": data_position, "config": json.loads(config_json)}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )

    def restore_meta(self, step: int | None = None) -> dict:
        step = self._latest_or(step)
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return restored["meta"]

    def restore_state(self, abstract_state, step: int | None = None):
        """Restores into the structure, shapes and shardings of `abstract_state`."""
        step = self._latest_or(step)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
        )
        return restored["state"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def _latest_or(self, step):
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(
                f"no checkpoint in {self.directory}; train first with `audiozoo train`"
            )
        return step


def config_differences(saved: dict, current: dict) -> list[str]:
    """Lines `key: saved -> current` for every structural field that differs."""
    diffs = []
    # A field added to the library after the checkpoint was saved is absent from its config;
    # at its default value it changes nothing, so it is no difference.
    task_name = current.get("task", {}).get("name", "wavenet")
    defaults = config_lib.base_config(task_name).to_dict()
    for section in STRUCTURAL_SECTIONS:
        diffs += _dict_diffs(saved.get(section, {}), current.get(section, {}), section,
                             defaults.get(section, {}))
    for section, key in STRUCTURAL_KEYS:
        old, new = saved.get(section, {}).get(key), current.get(section, {}).get(key)
        if old != new:
            diffs.append(f"{section}.{key}: {old!r} -> {new!r}")
    # A parameter EMA is part of the state: turning it on or off changes what is saved.
    old, new = (c.get("train", {}).get("ema_decay", 0.0) for c in (saved, current))
    if bool(old) != bool(new):
        diffs.append(f"train.ema_decay: {old!r} -> {new!r} (turns the parameter EMA "
                     f"{'on' if new else 'off'})")
    return diffs


def _dict_diffs(old: dict, new: dict, prefix: str, defaults: dict) -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _dict_diffs(a, b, f"{prefix}.{key}", defaults.get(key) or {})
        elif key not in old and key in defaults and _same(b, defaults[key]):
            continue
        elif a != b:
            diffs.append(f"{prefix}.{key}: {a!r} -> {b!r}")
    return diffs


def _same(value, default) -> bool:
    """Equal as saved in config.json (tuples come back as lists)."""
    return json.loads(json.dumps(value)) == json.loads(json.dumps(default))


def check_compatible(saved_config: dict, current_config: dict, directory: Path) -> None:
    diffs = config_differences(saved_config, current_config)
    if diffs:
        raise IncompatibleCheckpointError(
            f"the checkpoint in {directory} was made with a different config, so it cannot be "
            f"resumed (nothing was overwritten):\n  " + "\n  ".join(diffs)
            + "\nUse a new --workdir, or restore the config it was made with."
        )

