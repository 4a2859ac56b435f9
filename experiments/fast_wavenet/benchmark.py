"""Fast (ring-buffer) vs naive WaveNet generation speed: the Fast WaveNet paper's comparison.

Paine et al. 2016, "Fast Wavenet Generation Algorithm", figure 3: samples per second of the
cached (fast) and the recompute-everything (naive) generator as the number of layers grows,
on the current device. Then the 20-layer, 2-stack, residual 64, gate 128, skip 64, kernel 2,
256-class config at several batch sizes, with the generator's state memory. Both generators
run the same sampling (random, temperature 1) under one jit with one lax.scan; every figure
is measured after a compile-and-warm-up call, and the ratio is fast / naive in the same run.

    python experiments/fast_wavenet/benchmark.py                        # the full table
    python experiments/fast_wavenet/benchmark.py --layers 4 8 --batches 1 --seconds 0.5
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp

from audiozoo import generation
from audiozoo.models.wavenet import WaveNet

PAPER_CONFIG = dict(kernel_size=2, residual_channels=64, gate_channels=128, skip_channels=64,
                    num_classes=256)


def device_name() -> str:
    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return d.device_kind


def measure(run, batch: int, min_seconds: float, first_steps: int) -> float:
    """Samples/s of run(steps) (all rows together), growing steps until a run lasts
    min_seconds; each length is compiled and warmed up before it is timed."""
    steps = first_steps
    while True:
        jax.block_until_ready(run(steps))
        start = time.perf_counter()
        jax.block_until_ready(run(steps))
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return batch * steps / elapsed
        steps = int(steps * min(8.0, 1.5 * min_seconds / max(elapsed, 1e-6))) + 1


def fast_runner(net, variables, batch: int):
    def run(steps):
        return generation.sample(net, variables, jax.random.key(0), steps, batch_size=batch)
    return run


def naive_runner(net, variables, batch: int):
    def run(steps):
        return generation.sample_naive(net, variables, jax.random.key(0), steps,
                                       batch_size=batch)
    return run


def row(layers: int, batch: int, args) -> dict:
    net = WaveNet(num_layers=layers, num_stacks=2 if layers >= 2 else 1, **PAPER_CONFIG)
    variables = net.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    fast = measure(fast_runner(net, variables, batch), batch, args.seconds, 256)
    naive = measure(naive_runner(net, variables, batch), batch, args.seconds, 2)
    state = generation.init_state(net, variables, batch)
    return dict(layers=layers, rf=net.receptive_field, batch=batch, fast=fast, naive=naive,
                state=generation.state_bytes(state))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4, 6, 8, 10, 12, 14, 16,
                                                                  18, 20])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="minimum duration of each timed run")
    args = parser.parse_args()
    device = device_name()
    print("| config | device | batch | receptive field | fast samples/s | naive samples/s "
          "(baseline) | fast / naive | state bytes |")
    print("|---|---|---|---|---|---|---|---|")
    rows = [(n, 1) for n in args.layers] + [(20, b) for b in args.batches if b != 1 or
                                            20 not in args.layers]
    for layers, batch in rows:
        r = row(layers, batch, args)
        print(f"| {r['layers']} layers, 2 stacks, R64 G128 S64 k2 | {device} | {r['batch']} "
              f"| {r['rf']} | {r['fast']:,.0f} | {r['naive']:,.1f} | {r['fast'] / r['naive']:,.1f} "
              f"| {r['state']:,} |", flush=True)


if __name__ == "__main__":
    main()
