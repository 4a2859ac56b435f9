"""Optimiser and learning-rate schedule from the `optim` section of a config (optax)."""

from __future__ import annotations

import optax

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear", "step")


def make_schedule(optim, num_steps: int) -> optax.Schedule:
    """Linear warm-up (optional) into a constant, cosine, linear-to-zero or step-decay schedule."""
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
    else:
        raise ValueError(f"optim.schedule={optim.schedule!r} is not one of {SCHEDULES}")
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(optim, num_steps: int) -> optax.GradientTransformation:
    """Gradient clipping by global norm (when grad_clip_norm > 0), then the optimiser."""
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
