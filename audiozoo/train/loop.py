"""The generic training loop: data -> jitted, data-parallel train step -> metrics,
evaluation, checkpoints, samples. Model-specific work happens in the task."""

from __future__ import annotations

import collections
import contextlib
import functools
import json
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from audiozoo import config as config_lib
from audiozoo.audio.io import write_audio
from audiozoo.checkpoint import CONFIG_FILE, Checkpointer, check_compatible
from audiozoo.config import ConfigError
from audiozoo.data import BatchLoader, DataError, make_dataset
from audiozoo.files import WorkdirLock, make_dir, remove_stale_temporaries, write_text_atomic
from audiozoo.interrupt import graceful_interrupt, stop_requested
from audiozoo.tasks import build_task
from audiozoo.train import mesh as mesh_lib
from audiozoo.plots import plot_loss_curve
from audiozoo.train.metrics import MetricWriter
from audiozoo.train.tensorboard import TensorBoardWriter


class TrainingDivergedError(RuntimeError):
    pass


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a run; `message` says what was saved and how to go on."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# train.KEY -> (smallest allowed value, what it means); checked before any work is done.
_TRAIN_MINIMUMS = {
    "num_steps": (1, "the step to train to"), "batch_size": (1, "examples per step"),
    "log_every": (0, "steps between logged losses; 0 logs only at the end"),
    "eval_every": (0, "0 never evaluates"), "checkpoint_every": (0, "0 saves only at the end"),
    "sample_every": (0, "0 samples only at the end"), "keep_checkpoints": (1, "checkpoints kept"),
    "num_eval_batches": (1, "batches per evaluation"),
}
# Per-step losses the explosion guard takes its running median over.
LOSS_WINDOW = 1000


def check_train_config(train) -> None:
    """ConfigError naming the first `train.*` value no run can use."""
    for key, (low, meaning) in _TRAIN_MINIMUMS.items():
        value = train.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"train.{key}={value!r} must be an integer >= {low} ({meaning}); "
                              f"set --config.train.{key}")
    ratio = train.get("max_loss_ratio", 0.0)
    if not (ratio == 0 or 1 < ratio < float("inf")):
        raise ConfigError(f"train.max_loss_ratio={ratio!r} must be 0 (no explosion guard) or a "
                          "finite number > 1; set --config.train.max_loss_ratio")


class LossGuard:
    """Stops a run whose loss explodes while staying finite (which the NaN/Inf check misses).

    A step's loss trips it when it exceeds both `ratio` x the median of the last LOSS_WINDOW
    step losses before it and the run's first loss: the second condition keeps a model that
    has driven its loss near zero from tripping on one harder batch. The median needs at
    least one earlier step and a positive value (losses here are likelihoods, so >= 0).
    """

    def __init__(self, ratio: float):
        self.ratio = float(ratio)
        self.first: float | None = None
        self.history: collections.deque[float] = collections.deque(maxlen=LOSS_WINDOW)

    def first_exploded(self, losses) -> tuple[int, float, float] | None:
        """(index, loss, median before it) of the first exploded loss among these
        consecutive steps' losses, else None; the losses checked join the history."""
        for i, loss in enumerate(map(float, losses)):
            if self.ratio and self.history:
                median = float(np.median(self.history))
                if median > 0 and loss > max(self.ratio * median, self.first):
                    return i, loss, median
            self.first = loss if self.first is None else self.first
            self.history.append(loss)
        return None


class Trainer:
    """Holds what one run needs; `run()` trains to config.train.num_steps."""

    def __init__(self, config, workdir: str | Path):
        check_train_config(config.train)
        self.config = config
        self.workdir = Path(workdir)
        self.loss_guard = LossGuard(config.train.get("max_loss_ratio", 0.0))
        self.is_main = jax.process_index() == 0
        self.task = build_task(config)
        mesh_lib.check_batch_size(config.train.batch_size)
        self.mesh = mesh_lib.make_mesh()
        self.train_loader = self._loader("train", config.data.seed)
        # No eval split is needed (or read) when the run never evaluates.
        self.eval_loader = self._loader("eval", config.data.seed + 1) if config.train.eval_every else None
        self.task.check_data(self.train_loader.dataset)
        self.task.prepare_training(self.train_loader.dataset, self.workdir)
        self.checkpointer = Checkpointer(self.workdir, max_to_keep=config.train.keep_checkpoints)
        # .get: a config saved before train.tensorboard existed still loads.
        self.tensorboard = TensorBoardWriter(
            self.workdir, enabled=self.is_main and config.train.get("tensorboard", True))
        self.writer = MetricWriter(self.workdir, enabled=self.is_main, tensorboard=self.tensorboard)
        # Independent streams; each step's key is fold_in(step_key, step), a pure function
        # of the step, so resumed runs draw what uninterrupted ones would.
        self.init_key, self.step_key, self.eval_key, self.sample_key = jax.random.split(
            jax.random.key(config.seed), 4)
        self._compile()

    def _loader(self, split: str, seed: int) -> BatchLoader:
        dataset = make_dataset(self.config.data, split)
        try:
            return BatchLoader(dataset, global_batch_size=self.config.train.batch_size,
                               seed=seed, process_index=jax.process_index(),
                               process_count=jax.process_count(), what=f"the {split} split")
        except DataError as e:
            if split == "eval":  # a small folder's eval split is a small fraction of it
                raise DataError(f"{e}; or train without evaluating: "
                                "--config.train.eval_every=0") from None
            raise

    def _compile(self):
        self._init = jax.jit(self.task.init_train_state, out_shardings=mesh_lib.replicated(self.mesh))
        self._compiled = {}

    def step_fn(self, kind: str, step: int):
        """The jitted train step (with the parameter EMA) or eval step (of the state's
        inference parameters) for step `step`: kind "train" or "eval"; one compiled program
        per `task.step_variant(step)`, built when first needed."""
        variant = self.task.step_variant(step)
        if (kind, variant) not in self._compiled:
            fn = self.task.averaged_train_step if kind == "train" else self._eval_step
            if variant is not None:
                fn = functools.partial(fn, variant=variant)
            self._compiled[kind, variant] = jax.jit(
                fn, out_shardings=mesh_lib.replicated(self.mesh),
                donate_argnums=0 if kind == "train" else ())
        return self._compiled[kind, variant]

    def _eval_step(self, state, batch, rng, **variant):
        return self.task.eval_step(self.task.for_inference(state), batch, rng, **variant)

    def batch(self, host_batch):
        return mesh_lib.global_batch(self.mesh, host_batch)

    # ---- state --------------------------------------------------------------------
    def initial_state(self):
        """Fresh state, or the latest checkpoint's when the workdir has one."""
        batch = self.batch(self.train_loader.host_batch(0))
        latest = self.checkpointer.latest_step()
        if latest is None:
            state = self.task.load_pretrained(self._init(self.init_key, batch))
            return jax.device_put(state, mesh_lib.replicated(self.mesh)), 0
        meta = self.checkpointer.restore_meta(latest)
        check_compatible(meta["config"], json.loads(config_lib.to_json(self.config)),
                         self.checkpointer.directory)
        # Shapes and shardings only: the restored state is the one copy in memory.
        shapes = jax.eval_shape(self._init, self.init_key, batch)
        return self.checkpointer.restore_state(shapes, latest), latest

    def save(self, step: int, state) -> None:
        epoch, offset = self.train_loader.position(step)
        self.checkpointer.save(step, state, config_json=config_lib.to_json(self.config),
                               data_position={"step": step, "epoch": epoch, "offset": offset})
        self.tensorboard.flush()  # a killed run's event file then covers what resuming keeps

    # ---- loop ---------------------------------------------------------------------
    def run(self):
        try:
            return self._run()
        finally:  # also on Ctrl-C and errors: the events written so far reach the disk
            self.tensorboard.close()

    def _run(self):
        make_dir(self.workdir)
        if self.is_main:  # what a killed run left half-written; the workdir lock makes it ours
            for folder in (self.workdir, self.workdir / "samples"):
                remove_stale_temporaries(folder)
        state, start = self.initial_state()
        if self.is_main:
            write_text_atomic(self.workdir / CONFIG_FILE, config_lib.to_json(self.config))
        self._write_task_files(resuming=start > 0)
        self.writer.drop_after(start)
        train = self.config.train
        pending, done, saved = [], start, start
        bar = tqdm(total=train.num_steps, initial=start, disable=not self.is_main, desc="train")
        batches = self.train_loader.iterate(start, train.num_steps)
        try:
            for step, host_batch in zip(range(start, train.num_steps), batches):
                if stop_requested():
                    raise KeyboardInterrupt
                rng = jax.random.fold_in(self.step_key, step)
                state, metrics = self.step_fn("train", step)(state, self.batch(host_batch), rng)
                pending.append(metrics)
                done = step + 1
                last = done == train.num_steps
                if _every(done, train.log_every, train.checkpoint_every) or last:
                    summary = self._flush(done, pending)
                    pending = []
                    bar.set_postfix(loss=f"{summary['loss']:.4f}")
                if train.eval_every and (_every(done, train.eval_every) or last):
                    self.evaluate(state, done)
                if _every(done, train.checkpoint_every) or last:
                    self.save(done, state)
                    saved = done
                if _every(done, train.sample_every) and not last:
                    self.write_samples(state, done)
                bar.update(1)
        except KeyboardInterrupt:
            # Ctrl-C keeps the finished steps: save them, so rerunning the command resumes here.
            # (A second Ctrl-C inside XLA can leave the state donated to an unfinished step.)
            if done > saved and not _deleted(state):
                if pending:
                    self._flush(done, pending)
                self.save(done, state)
            self.checkpointer.wait()
            raise TrainingInterrupted(_interrupted_message(self.checkpointer, f"at step {done}")) from None
        finally:
            batches.close()
            bar.close()
            self.checkpointer.wait()
        if start < train.num_steps:
            self.write_samples(state, train.num_steps)
        self.plot()
        return state

    def _write_task_files(self, resuming: bool) -> None:
        """The task's workdir files; a resumed checkpoint was trained with the old ones, so
        they must not change under it."""
        for name, text in self.task.workdir_files(self.train_loader.dataset).items():
            path = self.workdir / name
            if resuming and path.exists() and path.read_text() != text:
                raise config_lib.ConfigError(
                    f"{path} holds what the checkpoint in {self.workdir} was trained with, but the "
                    f"data now gives something else:\n  was: {path.read_text().strip()}\n  now: "
                    f"{text.strip()}\nRestore the data the run was made with, or use a new --workdir.")
            if self.is_main:
                write_text_atomic(path, text)

    def _flush(self, step: int, pending: list) -> dict:
        """Averages the metrics since the last flush. Stops on a NaN/Inf step or an exploded
        loss; the loop flushes before every checkpoint, so no such stretch is ever saved."""
        stacked = jax.device_get(pending)
        first = step - len(pending) + 1  # the step number of stacked[0]
        bad = next((i for i, m in enumerate(stacked) if m["finite"] < 1), None)
        if bad is not None:
            self._diverged(f"loss or update became NaN/Inf at step {first + bad}; that step "
                           "was not applied")
        exploded = self.loss_guard.first_exploded([m["loss"] for m in stacked])
        if exploded is not None:
            i, loss, median = exploded
            self._diverged(
                f"loss exploded at step {first + i}: {loss:.4g} is over "
                f"train.max_loss_ratio={self.loss_guard.ratio:g} x the median {median:.4g} of "
                f"the losses before it (--config.train.max_loss_ratio=0 turns this check off)")
        summary = _mean_metrics(stacked)
        del summary["finite"]
        self.writer.write(step, "train", summary)
        return summary

    def _diverged(self, what: str):
        """Raises TrainingDivergedError saying what is kept on disk: nothing of the failing
        stretch was saved, and the newest checkpoint may be older than expected or absent."""
        self.checkpointer.wait()  # a save in flight counts once it is complete
        latest = self.checkpointer.latest_step()
        if latest is None:
            kept = (f"no checkpoint was saved before it (train.checkpoint_every="
                    f"{self.config.train.checkpoint_every}), so nothing of this run is kept and "
                    "rerunning starts from scratch")
        else:
            kept = (f"the newest checkpoint, step {latest} in {self.checkpointer.directory}, "
                    "passed these checks and is kept; rerunning resumes from it")
        raise TrainingDivergedError(
            f"{what}; {kept}. Lower --config.optim.learning_rate, tighten "
            "--config.optim.grad_clip_norm, or add --config.task.input_noise, then rerun.")

    def evaluate(self, state, step: int) -> dict:
        metrics, eval_step = [], self.step_fn("eval", step)
        for i in range(self.config.train.num_eval_batches):
            batch = self.batch(self.eval_loader.host_batch(i))
            metrics.append(eval_step(state, batch, self.eval_key))
        summary = _mean_metrics(jax.device_get(metrics))
        # The metrics cover only these examples (batches may repeat a small split), not the
        # whole split; `audiozoo evaluate` reports on every example.
        summary["examples"] = self.config.train.num_eval_batches * self.config.train.batch_size
        self.writer.write(step, "eval", summary)
        return summary

    def write_samples(self, state, step: int) -> list[Path]:
        clips = self.task.samples(self.task.for_inference(state),
                                  jax.random.fold_in(self.sample_key, step))
        if not self.is_main:
            return []
        paths = []
        for name, audio in clips.items():
            path = self.workdir / "samples" / f"step{step:07d}_{name}.wav"
            write_audio(path, audio, self.task.sample_rate)
            self.tensorboard.write_sample(step, name, audio, self.task.sample_rate)
            paths.append(path)
        return paths

    def plot(self) -> None:
        records = self.writer.read()
        if self.is_main and records:
            plot_loss_curve(records, self.workdir / "loss.png")


def _mean_metrics(metrics: list[dict]) -> dict[str, float]:
    """Per-key mean of a list of host-side metric dicts."""
    return {k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}


def _interrupted_message(checkpointer: Checkpointer, when: str) -> str:
    latest = checkpointer.latest_step()
    if latest is None:
        return (f"interrupted {when}, before any checkpoint was written; nothing was saved, "
                "and rerunning the same command starts from the beginning")
    return (f"interrupted {when}; the checkpoint of step {latest} in {checkpointer.directory} "
            "is kept: rerun the same command to resume there")


def _deleted(tree) -> bool:
    return any(isinstance(x, jax.Array) and x.is_deleted() for x in jax.tree.leaves(tree))


def _every(step: int, *periods: int) -> bool:
    """Whether step is a multiple of any of the (positive) periods; 0 means never."""
    return any(p and step % p == 0 for p in periods)


def train(config, workdir):
    """Trains (resuming from the workdir's latest checkpoint) and returns the final state.

    The run holds the workdir's lock (one run per workdir; in a multi-host run process 0 holds
    it for all), and Ctrl-C stops it after the current step, saving the finished steps
    (`TrainingInterrupted` says what was kept)."""
    check_train_config(config.train)  # before the lock creates the workdir
    lock = WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
    with lock, graceful_interrupt("the current training step"):
        try:
            return Trainer(config, workdir).run()
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:  # a second Ctrl-C during start-up
            message = _interrupted_message(Checkpointer(workdir), "during start-up")
            raise TrainingInterrupted(message) from None
