"""Optimiser and learning-rate schedule from the `optim` section of a config (optax).

"piecewise" is a table of rates: `learning_rate` from step 0, then `lr_values[i]` from global
step `lr_boundaries[i]` on, the form of `Config.learning_rate_schedule` in magenta's
nsynth/wavenet/h512_bo16.py (applied by nsynth/wavenet/train.py: the rate of the largest key
<= global_step). The rates are given, not products of decay factors, so each is exactly the
float32 of the number written in the config.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from audiozoo.config import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear", "step", "piecewise")


def make_schedule(optim, num_steps: int) -> optax.Schedule:
    """Linear warm-up (optional) into a constant, cosine, linear-to-zero, step-decay or
    piecewise-constant schedule. Boundaries are global steps, warm-up included."""
    lr, warmup = optim.learning_rate, optim.warmup_steps
    if optim.schedule == "constant":
        main = optax.constant_schedule(lr)
    elif optim.schedule == "cosine":
        main = optax.cosine_decay_schedule(lr, max(num_steps - warmup, 1))
    elif optim.schedule == "linear":
        main = optax.linear_schedule(lr, 0.0, max(num_steps - warmup, 1))
    elif optim.schedule == "step":
        boundaries = {int(b) - warmup: optim.decay_factor for b in optim.decay_boundaries}
        main = optax.piecewise_constant_schedule(lr, boundaries)
    elif optim.schedule == "piecewise":
        boundaries, values = piecewise_table(optim)
        main = _piecewise(lr, [b - warmup for b in boundaries], values)
    else:
        raise ValueError(f"optim.schedule={optim.schedule!r} is not one of {SCHEDULES}")
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def piecewise_table(optim) -> tuple[list[int], list[float]]:
    """(lr_boundaries, lr_values) of a "piecewise" schedule, checked. Read with .get: configs
    written before the piecewise schedule existed have neither key."""
    boundaries = list(optim.get("lr_boundaries", None) or ())
    values = list(optim.get("lr_values", None) or ())
    fix = ('set optim.lr_boundaries (global steps, increasing) and optim.lr_values (the rate '
           'from each boundary on, one per boundary; optim.learning_rate is the rate before the '
           'first), e.g. c.optim.update(schedule="piecewise", learning_rate=2e-4, '
           'lr_boundaries=(90_000,), lr_values=(1e-4,))')
    if not boundaries:
        raise ConfigError(f"optim.schedule='piecewise' has no optim.lr_boundaries: {fix}")
    if len(values) != len(boundaries):
        raise ConfigError(f"optim.lr_values has {len(values)} rates for {len(boundaries)} "
                          f"optim.lr_boundaries: {fix}")
    if any(int(b) != b for b in boundaries) or any(b <= a for a, b in zip(boundaries, boundaries[1:])):
        raise ConfigError(f"optim.lr_boundaries={tuple(boundaries)} must be strictly increasing "
                          f"whole steps: {fix}")
    if boundaries[0] <= max(optim.warmup_steps, 0):
        raise ConfigError(f"optim.lr_boundaries starts at {boundaries[0]}: the first boundary "
                          f"must come after step 0 and the optim.warmup_steps="
                          f"{optim.warmup_steps} warm-up (optim.learning_rate is the rate "
                          f"before it)")
    if any(not v > 0 for v in [optim.learning_rate, *values]):
        raise ConfigError(f"optim.learning_rate={optim.learning_rate} and optim.lr_values="
                          f"{tuple(values)} must all be > 0: {fix}")
    return [int(b) for b in boundaries], [float(v) for v in values]


def _piecewise(first: float, boundaries, values) -> optax.Schedule:
    """first before boundaries[0], values[i] from boundaries[i] on (boundary included)."""
    table = jnp.asarray([first, *values], jnp.float32)
    starts = jnp.asarray(boundaries, jnp.int32)

    def schedule(count):
        return table[jnp.sum(count >= starts)]

    return schedule


def make_optimizer(optim, num_steps: int) -> optax.GradientTransformation:
    """Gradient clipping by global norm (when grad_clip_norm > 0), then the optimiser."""
    _check_values(optim)
    schedule = make_schedule(optim, num_steps)
    if optim.name == "adam":
        tx = optax.adam(schedule, b1=optim.b1, b2=optim.b2, eps=optim.eps)
    elif optim.name == "adamw":
        tx = optax.adamw(schedule, b1=optim.b1, b2=optim.b2, eps=optim.eps,
                         weight_decay=optim.weight_decay)
    elif optim.name == "sgd":
        tx = optax.sgd(schedule, momentum=optim.momentum or None)
    elif optim.name == "rmsprop":
        tx = optax.rmsprop(schedule, decay=optim.b2, eps=optim.eps, momentum=optim.momentum)
    else:
        raise ValueError(f"optim.name={optim.name!r} is not one of {OPTIMIZERS}")
    if optim.grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm), tx)
    return tx


def _check_values(optim) -> None:
    """Values no optimiser can use, refused by key before any work (a negative rate would
    climb the loss; b1 or b2 >= 1 never forgets a gradient)."""
    largest = float(jnp.finfo(jnp.float32).max)
    rules = [  # (key, acceptable, what it must be)
        ("learning_rate", lambda v: 0 < v <= largest, "> 0 and finite (e.g. 1e-3)"),
        ("warmup_steps", lambda v: v >= 0, ">= 0"),
        ("b1", lambda v: 0 <= v < 1, "in [0, 1) (e.g. 0.9)"),
        ("b2", lambda v: 0 <= v < 1, "in [0, 1) (e.g. 0.999)"),
        ("eps", lambda v: v > 0, "> 0 (e.g. 1e-8)"),
        ("weight_decay", lambda v: v >= 0, ">= 0"),
        ("momentum", lambda v: v >= 0, ">= 0"),
    ]
    for key, acceptable, requirement in rules:
        if not acceptable(optim[key]):
            raise ConfigError(f"optim.{key}={optim[key]} must be {requirement}; set "
                              f"--config.optim.{key}")
