"""The train state (one pytree that holds everything a checkpoint must restore) and the
exponential moving average of parameters that runs may keep beside it.

The EMA follows TensorFlow's `tf.train.ExponentialMovingAverage`, which the reference
trainers use: magenta's NSynth WaveNet (nsynth/wavenet/train.py: decay 0.9999 with
`num_updates=global_step`) and GANSynth (gansynth/lib/model.py: the generator's, decay 0.999).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from audiozoo.config import ConfigError


@struct.dataclass
class TrainState:
    """step, params, optimiser state and any other model collections (e.g. batch_stats).

    Randomness is not stored: each step's key is fold_in(seed key, step), so a resumed run
    draws the same keys as an uninterrupted one.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    extra: Any = struct.field(default_factory=dict)
    ema: Any = None


@dataclasses.dataclass(frozen=True)
class ParameterEMA:
    """ema <- d * ema + (1 - d) * params after every applied step, starting from the initial
    parameters. With `warmup`, d = min(decay, (1 + step) / (10 + step)) as TensorFlow's EMA
    with num_updates does, so the average is not dominated by the random initialisation."""

    decay: float
    warmup: bool = False

    @classmethod
    def from_config(cls, train) -> "ParameterEMA | None":
        """The EMA `train.ema_decay` / `train.ema_warmup` ask for; None when decay is 0."""
        decay = train.get("ema_decay", 0.0)
        if decay == 0:
            return None
        if not 0 < decay < 1:
            raise ConfigError(f"train.ema_decay={decay!r} must be 0 (no EMA) or in (0, 1), e.g. "
                             "0.9999; set --config.train.ema_decay")
        return cls(float(decay), bool(train.get("ema_warmup", False)))

    def decay_at(self, step: jax.Array) -> jax.Array:
        step = jnp.asarray(step, jnp.float32)
        return jnp.minimum(self.decay, (1.0 + step) / (10.0 + step)) if self.warmup else jnp.float32(self.decay)

    def update(self, ema, params, step: jax.Array):
        """The average after the step numbered `step` (0 for the first) produced `params`."""
        decay = self.decay_at(step)
        return jax.tree.map(lambda e, p: (decay * e + (1.0 - decay) * p).astype(e.dtype), ema, params)


def tree_select(pred: jax.Array, on_true, on_false):
    """`pred ? on_true : on_false` for two pytrees of the same structure (pred a scalar).

    A `lax.cond` rather than a `where` per leaf: XLA fuses the computation of `pred` (for
    `all_finite`, an AND over every leaf) into each leaf's select, which made the train step
    of configs/wavenet_tiny.py 64,000 HLO instructions and an 18 s compile on XLA:CPU, against
    16,000 and 5 s with the cond (experiments/benchmark/compile_time.py)."""
    return jax.lax.cond(pred, lambda: on_true, lambda: on_false)


def all_finite(*trees) -> jax.Array:
    """One boolean: every floating-point element of `trees` is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for t in trees for x in jax.tree.leaves(t)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)
