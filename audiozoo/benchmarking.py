"""Timing helpers shared by the benchmark scripts under experiments/.

Speed claims in this project are ratios measured in one run on one device; these helpers make
every script time a call the same way (compile and warm up first, block on the result) and
name the device the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import jax
import numpy as np


def device_label() -> str:
    """The first device as a table cell: "cpu (N cores)" or the accelerator's kind."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return device.device_kind


def call_seconds(fn: Callable[[], object], repeats: int, reduce: str = "min") -> float:
    """Seconds per call of fn(): one compile-and-warm-up call, then `repeats` timed calls
    (each blocked on its result), reduced by "min" (best) or "median"."""
    return interleaved_seconds({"fn": fn}, repeats, reduce)["fn"]


def interleaved_seconds(fns: dict[str, Callable[[], object]], repeats: int,
                        reduce: str = "min") -> dict[str, float]:
    """Seconds per call of each of fns, timed in turn (one call of each per round, `repeats`
    rounds, after one warm-up call of each): on a machine whose speed drifts, every
    contender sees the same drift, so their ratio holds where back-to-back blocks of calls
    would not. Each function must block on its own result (jax results are blocked here)."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
    pick = {"min": np.min, "median": np.median}[reduce]
    return {name: float(pick(t)) for name, t in times.items()}
