"""TensorFlow 1 checkpoints as magenta writes them: reading, checking, and the workdir made
from them.

magenta trains with `tf.train.Saver` (models/nsynth/wavenet/train.py through slim,
models/gansynth/lib/train_util.py through tfgan), so a checkpoint is a prefix PREFIX with
PREFIX.index and PREFIX.data-00000-of-00001 holding every global variable by name: the
model's own, and the training's state beside them (Adam's slots `<var>/Adam` and
`<var>/Adam_1`, the moving averages `<var>/ExponentialMovingAverage`, `global_step`,
`beta1_power`, ...). TensorFlow reads them (`tf.train.load_checkpoint`); it is needed for this
step only, from the optional `magenta` extra.

`check_variables` compares a checkpoint with the name -> shape table of the model it should
hold before anything is mapped, and names every missing, mis-shaped or unexpected model
variable; what it leaves is training state, reported, never silently taken for weights.
`write_workdir` then saves the mapped parameters as a normal workdir (config.json, the
task's files, an orbax checkpoint), which `audiozoo.load` and every verb read with the core
install alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo import config as config_lib
from audiozoo.checkpoint import CONFIG_FILE, Checkpointer
from audiozoo.files import make_dir, write_text_atomic
from audiozoo.models.hf_checkpoint import CheckpointFormatError, check_tree

NEEDS_TENSORFLOW = ("reading magenta's TensorFlow checkpoints needs TensorFlow: "
                    "pip install 'audiozoo[magenta]' (only the import needs it; the imported "
                    "workdir runs on the core install)")
# Per-variable training state TF keeps beside a variable V, named V/<suffix>.
SLOT_SUFFIXES = ("Adam", "Adam_1", "ExponentialMovingAverage", "Momentum", "RMSProp",
                 "RMSProp_1")
EMA_SUFFIX = "ExponentialMovingAverage"
IMPORT_NOTE = "magenta_import.json"
MAX_LISTED = 12  # names per kind of problem in an error message


def tensorflow():
    """The tensorflow module, or a RuntimeError saying how to install it."""
    try:
        import tensorflow as tf
    except ImportError:
        raise RuntimeError(NEEDS_TENSORFLOW) from None
    return tf


def checkpoint_prefix(path: str | Path) -> str:
    """The checkpoint prefix `path` names: PREFIX itself (PREFIX.index beside it) or a
    directory holding checkpoints (its newest, by the `checkpoint` file or the step)."""
    path = Path(path).absolute()
    if Path(f"{path}.index").is_file():
        return str(path)
    if path.is_dir():
        latest = tensorflow().train.latest_checkpoint(str(path))
        if latest and Path(f"{latest}.index").is_file():
            return latest
        # The `checkpoint` file may name the machine it was trained on: take the newest step.
        indexes = sorted(path.glob("*.index"), key=lambda p: (_step_of(p.stem), p.name))
        if indexes:
            return str(indexes[-1].with_suffix(""))
    raise FileNotFoundError(
        f"no TensorFlow checkpoint at {path}: pass its prefix (PREFIX.index and "
        "PREFIX.data-00000-of-00001 exist, e.g. wavenet-ckpt/model.ckpt-200000) or a directory "
        "holding one")


def _step_of(stem: str) -> int:
    tail = stem.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class TFCheckpoint:
    """The variables of one checkpoint: `shapes` {name: shape}, `read(name)` float32."""

    def __init__(self, path: str | Path):
        self.prefix = checkpoint_prefix(path)
        try:
            self._reader = tensorflow().train.load_checkpoint(self.prefix)
        except Exception as e:  # TF raises its own error types for unreadable files
            raise CheckpointFormatError(f"{self.prefix} is not a readable TensorFlow "
                                        f"checkpoint: {e}") from None
        self.shapes = {name: tuple(shape) for name, shape
                       in self._reader.get_variable_to_shape_map().items()}

    def read(self, name: str) -> np.ndarray:
        return np.asarray(self._reader.get_tensor(name), np.float32)

    @property
    def global_step(self) -> int | None:
        """The `global_step` variable, else the step Saver put in the name (model.ckpt-N)."""
        if "global_step" in self.shapes:
            return int(self._reader.get_tensor("global_step"))
        step = _step_of(Path(self.prefix).name)
        return None if step < 0 else step


def base_variable(name: str, optimizer_scopes: tuple[str, ...] = ()) -> str:
    """The variable a slot or moving average belongs to (`V/Adam` -> `V`, also under an
    optimiser's own scope), or `name` itself."""
    for scope in optimizer_scopes:
        if name.startswith(scope + "/"):
            name = name[len(scope) + 1:]
    head, _, tail = name.rpartition("/")
    return head if head and tail in SLOT_SUFFIXES else name


def check_variables(ckpt: TFCheckpoint, expected: dict[str, tuple[int, ...]],
                    is_model_variable: Callable[[str], bool],
                    optimizer_scopes: tuple[str, ...] = ()) -> list[str]:
    """Every name of `expected` is in the checkpoint with its shape, and no other variable
    looks like part of the model (`is_model_variable`, asked of names that are not a slot
    or average of an expected one); else a CheckpointFormatError naming each offender.
    Returns the names left over: training state, which the import does not use."""
    missing = sorted(set(expected) - set(ckpt.shapes))
    misshaped = [f"{name} {ckpt.shapes[name]} (expected {expected[name]})"
                 for name in sorted(set(expected) & set(ckpt.shapes))
                 if ckpt.shapes[name] != tuple(expected[name])]
    model_names = {base_variable(name) for name in expected}
    extra = sorted(set(ckpt.shapes) - set(expected))
    unexpected = [name for name in extra
                  if base_variable(name, optimizer_scopes) not in model_names
                  and is_model_variable(base_variable(name, optimizer_scopes))]
    problems = [(missing, "missing"), (misshaped, "with the wrong shape"),
                (unexpected, "not in the model")]
    if any(names for names, _ in problems):
        raise CheckpointFormatError(
            f"{ckpt.prefix} does not hold the expected model: "
            + "; ".join(_listed(names, what) for names, what in problems if names)
            + ". Is it the checkpoint this importer reads (see `audiozoo import --help`)?")
    return [name for name in extra if name not in unexpected]


def _listed(names: list[str], what: str) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return f"{len(names)} variable(s) {what}: {shown}{more}"


def swap_halves(x: np.ndarray) -> np.ndarray:
    """The two halves of the last axis exchanged: magenta gates with sigmoid(first half) *
    tanh(second half), audiozoo with tanh(first) * sigmoid(second); the product is the same."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., half:], x[..., :half]], axis=-1)


# ---- the workdir ---------------------------------------------------------------------------

def write_workdir(workdir: str | Path, task, params: dict, *, step: int, ema=None,
                  note: dict) -> Path:
    """Saves `params` (and a parameter EMA) as the latest checkpoint of a new workdir for
    `task`, with its config.json, the task's files and `note` (where the weights came from)
    in IMPORT_NOTE. The optimiser state starts fresh (Adam's counts and moments at zero)."""
    workdir = Path(workdir)
    state = _state(task, params, ema, step)  # checked before anything is written
    checkpointer = Checkpointer(workdir)
    try:
        if checkpointer.latest_step() is not None:
            raise ValueError(f"{workdir} already holds a checkpoint (step "
                             f"{checkpointer.latest_step()}); import into a new --workdir")
        make_dir(workdir)
        config_json = config_lib.to_json(task.config)
        write_text_atomic(workdir / CONFIG_FILE, config_json)
        for name, text in task.workdir_files(None).items():
            write_text_atomic(workdir / name, text)
        write_text_atomic(workdir / IMPORT_NOTE, json.dumps(note, indent=1) + "\n")
        checkpointer.save(step, state, data_position={"step": step, "imported": note["source"]},
                          config_json=config_json)
        checkpointer.wait()
    finally:
        checkpointer.close()
    return workdir


def _state(task, params: dict, ema, step: int):
    """The train state `task` restores, holding `params` (checked against the model's own
    parameter tree) and `ema`; everything else as a fresh run starts it (zeros)."""
    abstract = jax.eval_shape(task.init_train_state, jax.random.key(0), task.dummy_batch(1))
    check_tree(params, abstract.params, "parameter", source="import")
    if (ema is None) != (abstract.ema is None):
        raise ValueError(f"the config {'keeps' if abstract.ema is not None else 'has no'} "
                         "parameter EMA, but the import gives "
                         f"{'none' if ema is None else 'one'}")
    if ema is not None:
        check_tree(ema, abstract.ema, "EMA parameter", source="import")
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)
    return zeros.replace(step=jnp.asarray(step, jnp.int32), params=jax.tree.map(jnp.asarray, params),
                         ema=None if ema is None else jax.tree.map(jnp.asarray, ema))

