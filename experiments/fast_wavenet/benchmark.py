"""Fast (ring-buffer) vs naive WaveNet generation speed: the Fast WaveNet paper's comparison.

Paine et al. 2016, "Fast Wavenet Generation Algorithm", figure 3: samples per second of the
cached (fast) and the recompute-everything (naive) generator as the number of layers grows,
on the current device. Then the 20-layer, 2-stack, residual 64, gate 128, skip 64, kernel 2,
256-class config at several batch sizes, with the generator's state memory. Both generators
run the same sampling (random, temperature 1) under one jit with one lax.scan. Each row runs
in fresh processes; in each, a fast figure is the best of three timed runs of at least
--seconds after a compile-and-warm-up call, and the row reports the median over --processes
processes with its range. The naive figure is one timed run in the first process; the ratio
is fast (median) / naive.

    python experiments/fast_wavenet/benchmark.py                        # the full table
    python experiments/fast_wavenet/benchmark.py --layers 4 8 --batches 1 --seconds 0.5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo import generation
from audiozoo.benchmarking import device_label
from audiozoo.models.wavenet import WaveNet

PAPER_CONFIG = dict(kernel_size=2, residual_channels=64, gate_channels=128, skip_channels=64,
                    num_classes=256)


def measure(run, batch: int, min_seconds: float, first_steps: int, repeats: int = 3) -> float:
    """Samples/s of run(steps) (all rows together): steps grow until a run lasts min_seconds
    (each length compiled and warmed up before it is timed), then the best of `repeats`."""
    steps = first_steps
    while True:
        jax.block_until_ready(run(steps))
        elapsed = _seconds(run, steps)
        if elapsed >= min_seconds:
            break
        steps = int(steps * min(8.0, 1.5 * min_seconds / max(elapsed, 1e-6))) + 1
    best = min([elapsed] + [_seconds(run, steps) for _ in range(repeats - 1)])
    return batch * steps / best


def _seconds(run, steps: int) -> float:
    start = time.perf_counter()
    jax.block_until_ready(run(steps))
    return time.perf_counter() - start


def fast_runner(net, variables, batch: int):
    def run(steps):
        return generation.sample(net, variables, jax.random.key(0), steps, batch_size=batch)
    return run


def naive_runner(net, variables, batch: int):
    def run(steps):
        return generation.sample_naive(net, variables, jax.random.key(0), steps,
                                       batch_size=batch)
    return run


def build(layers: int):
    net = WaveNet(num_layers=layers, num_stacks=2 if layers >= 2 else 1, **PAPER_CONFIG)
    return net, net.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))


def measure_row(layers: int, batch: int, seconds: float, naive: bool) -> dict:
    net, variables = build(layers)
    state = generation.init_state(net, variables, batch)
    row = dict(layers=layers, rf=net.receptive_field, batch=batch,
               state=generation.state_bytes(state),
               fast=measure(fast_runner(net, variables, batch), batch, seconds, 256))
    if naive:
        row["naive"] = measure(naive_runner(net, variables, batch), batch, seconds, 2, repeats=1)
    return row


def measure_in_subprocesses(layers: int, batch: int, seconds: float, processes: int) -> dict:
    """The row's fast figure is the median over `processes` fresh processes (the naive one
    is measured in the first): on this 2-core machine the same batch-1 program ran about
    2x slower in some processes than in others, whatever ran before it."""
    runs = []
    for i in range(processes):
        command = [sys.executable, __file__, "--row", str(layers), str(batch),
                   "--seconds", str(seconds)] + ([] if i == 0 else ["--no-naive"])
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    fast = sorted(r["fast"] for r in runs)
    return dict(runs[0], fast=float(np.median(fast)), fast_range=(fast[0], fast[-1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4, 6, 8, 10, 12, 14, 16,
                                                                  18, 20])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="minimum duration of each timed run")
    parser.add_argument("--processes", type=int, default=3,
                        help="fresh processes per row; the fast figure is their median")
    parser.add_argument("--row", type=int, nargs=2, metavar=("LAYERS", "BATCH"),
                        help="measure one row in this process and print it as JSON")
    parser.add_argument("--no-naive", action="store_true", help="with --row: fast only")
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure_row(*args.row, args.seconds, naive=not args.no_naive)))
        return
    device = device_label()
    print("| config | device | batch | receptive field | fast samples/s (median; range) "
          "| naive samples/s (baseline) | fast / naive | state bytes |")
    print("|---|---|---|---|---|---|---|---|")
    rows = [(n, 1) for n in args.layers] + [(20, b) for b in args.batches if b != 1 or
                                            20 not in args.layers]
    for layers, batch in rows:
        r = measure_in_subprocesses(layers, batch, args.seconds, args.processes)
        low, high = r["fast_range"]
        print(f"| {r['layers']} layers, 2 stacks, R64 G128 S64 k2 | {device} | {r['batch']} "
              f"| {r['rf']} | {r['fast']:,.0f} ({low:,.0f} - {high:,.0f}) | {r['naive']:,.1f} "
              f"| {r['fast'] / r['naive']:,.1f} | {r['state']:,} |", flush=True)


if __name__ == "__main__":
    main()
