"""The task protocol the trainer relies on, and the one-model, one-optimiser base class."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audiozoo.tasks.optim import make_optimizer
from audiozoo.tasks.state import ParameterEMA, TrainState, all_finite, tree_select

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def float32(tree):
    """Every array of `tree` in float32: what a task hands its losses, metrics and outputs,
    whatever the model's computation dtype."""
    return jax.tree.map(lambda a: a.astype(jnp.float32), tree)


class Task:
    """What the trainer calls. Subclasses with two optimisers (GANs) override `init_state`
    and `train_step`; the trainer does not change."""

    # The `audiozoo` verbs that use a trained model of this task (besides train), so that a
    # verb given the wrong kind of workdir can name the ones that apply.
    verbs: tuple[str, ...] = ()
    # GANSynth: `generate` and `interpolate` make notes at pitches, not audio of a length.
    makes_notes = False

    def __init__(self, config):
        self.config = config
        self.ema = ParameterEMA.from_config(config.train)

    @property
    def sample_rate(self) -> int:
        return self.config.data.sample_rate

    def init_state(self, rng: jax.Array, batch: Batch) -> TrainState:
        raise NotImplementedError

    # ---- parameter EMA (train.ema_decay): kept by the trainer, used for inference -----------
    def averaged(self, params):
        """The part of the parameters the EMA averages (all of them; GANSynth: its generator)."""
        return params

    def with_averaged(self, params, averaged):
        """`params` with the averaged part replaced by `averaged`."""
        return averaged

    def init_train_state(self, rng: jax.Array, batch: Batch) -> TrainState:
        """`init_state`, plus the EMA's starting point (the initial parameters) when kept."""
        state = self.init_state(rng, batch)
        return state.replace(ema=self.averaged(state.params)) if self.ema else state

    def averaged_train_step(self, state: TrainState, batch: Batch, rng: jax.Array, **variant):
        """`train_step`, then the EMA update (skipped with the step when it was not finite)."""
        new_state, metrics = self.train_step(state, batch, rng, **variant)
        if self.ema:
            ema = self.ema.update(state.ema, self.averaged(new_state.params), state.step)
            new_state = new_state.replace(ema=tree_select(metrics["finite"] > 0, ema, state.ema))
        return new_state, metrics

    def for_inference(self, state: TrainState) -> TrainState:
        """The state evaluation, samples and exports use: the averaged parameters in place of
        the raw ones when the run keeps an EMA."""
        if state.ema is None:
            return state
        return state.replace(params=self.with_averaged(state.params, state.ema))

    def variables(self, state: TrainState) -> dict[str, Any]:
        """{"params": ..., other collections} for `self.model.apply`."""
        return {"params": state.params, **state.extra}

    def step_variant(self, step: int) -> Hashable | None:
        """What the computation of step `step` depends on beyond its inputs' shapes (None: the
        same program for every step). The trainer compiles `train_step` / `eval_step` once per
        variant and passes it as `variant=`: GANSynth's networks grow by stage, and one
        program per stage ran up to 29x faster on XLA:CPU than a `lax.switch` over stages."""
        return None

    def train_step(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        """Must return metrics["finite"] = 0 and leave the state unchanged when the loss or the
        update is NaN/Inf, so the trainer can stop with the last good state intact."""
        raise NotImplementedError

    def eval_step(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        raise NotImplementedError

    def load_pretrained(self, state: TrainState) -> TrainState:
        """A fresh run's state with pretrained weights grafted in (default: unchanged). Runs
        outside jit, once, before the first step; resumed runs restore instead."""
        return state

    def check_data(self, dataset) -> None:
        """Raises a ConfigError when the training data cannot feed this task (e.g. a class
        count the model was not built for). Called once, before the first step."""

    def prepare_training(self, dataset, workdir) -> None:
        """Training-only set-up from the training data, once, before the first step (default:
        none), e.g. a classifier's input statistics or augmentation files. What it measures
        it keeps in the config (saved as config.json) and in `workdir_files`, which it reads
        back from `workdir` on resume."""

    def workdir_files(self, dataset) -> dict[str, str]:
        """{file name: text} the trainer writes into the workdir at the start of a run
        (e.g. the label set a classifier was trained with); a resumed run must give the
        same text."""
        return {}

    def dummy_batch(self, batch_size: int) -> Batch:
        """A batch of the right shapes and dtypes (for building states without data)."""
        raise NotImplementedError

    def samples(self, state: TrainState, rng: jax.Array) -> dict[str, np.ndarray]:
        """Audio clips (float [-1, 1], at sample_rate) that show what the model learned."""
        return {}


class SupervisedTask(Task):
    """One parameter tree, one optax optimiser, one differentiable loss."""

    def __init__(self, config):
        super().__init__(config)
        self.tx = make_optimizer(config.optim, config.train.num_steps)

    def init_variables(self, rng: jax.Array, batch: Batch) -> dict[str, Any]:
        raise NotImplementedError

    def loss(self, params, extra, batch: Batch, rng: jax.Array, train: bool):
        """Returns (scalar loss, (metrics, updated extra collections))."""
        raise NotImplementedError

    def init_state(self, rng, batch):
        variables = dict(self.init_variables(rng, batch))
        params = variables.pop("params")
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=self.tx.init(params), extra=variables)

    def train_step(self, state, batch, rng):
        def loss_fn(params):
            return self.loss(params, state.extra, batch, rng, True)

        (loss, (metrics, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                                  opt_state=opt_state, extra=extra)
        finite = all_finite(loss, updates)
        # A non-finite step is not applied: the trainer stops and the state stays good.
        new_state = tree_select(finite, new_state, state)
        metrics = dict(metrics, grad_norm=optax.global_norm(grads), finite=finite.astype(jnp.float32))
        return new_state, metrics

    def eval_step(self, state, batch, rng):
        _, (metrics, _) = self.loss(state.params, state.extra, batch, rng, False)
        return metrics
