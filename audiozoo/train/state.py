"""The train state: one pytree that holds everything a checkpoint must restore."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


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


def tree_select(pred: jax.Array, on_true, on_false):
    """Element-wise `pred ? on_true : on_false` over two pytrees of the same structure."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def all_finite(*trees) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for t in trees for x in jax.tree.leaves(t)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)
