"""GANSynth training-step time per stage: one compiled program per stage (what the trainer
runs, `GANSynthTask.step_variant`) against one program that picks the stage with a
`lax.switch` (every stage's network compiled into one step, the stage a traced value).

The network grows by stage, so its size is static per stage. A `lax.switch` would keep one
program for the whole run; on XLA:CPU its branches ran far slower than the same computation
compiled alone, so the trainer compiles per stage. This script keeps the measurement that
decided it repeatable. Weights are random; a figure is the best of --repeats timed steps
after a compile-and-warm-up step; the ratio is switch / per-stage at the same stage.

    python experiments/gansynth/benchmark_stages.py        # experiments/gansynth/table1.py:if_mel
"""

from __future__ import annotations

import argparse
import functools
import os

import jax
import jax.numpy as jnp

from audiozoo.benchmarking import call_seconds, device_label
from audiozoo.config import load_config
from audiozoo.tasks import build_task

HERE = os.path.dirname(os.path.abspath(__file__))


def switch_step(task):
    """task.train_step with the stage chosen inside the program by a lax.switch."""
    def step(state, batch, rng):
        blocks = task._blocks(state.step * task.config.train.batch_size)
        branches = [functools.partial(task.train_step, variant=b)
                    for b in range(1, task.model.resolutions + 1)]
        return jax.lax.switch(blocks - 1, branches, state, batch, rng)
    return jax.jit(step)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.path.join(HERE, "table1.py") + ":if_mel")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    task = build_task(config)
    batch_size = config.train.batch_size
    batch = dict(task.dummy_batch(batch_size),
                 audio=0.1 * jax.random.normal(jax.random.key(1), (batch_size, config.data.segment_length)))
    state = task.init_state(jax.random.key(0), batch)
    switched = switch_step(task)
    device = device_label()
    print(f"config {args.config}, jax {jax.__version__}\n")
    print("| stage (blocks) | device | batch | dtype | per-stage program, ms/step | lax.switch program, ms/step | switch / per-stage |")
    print("|---|---|---|---|---|---|---|")
    phase_steps = config.task.stable_images // batch_size
    for blocks in range(1, task.model.resolutions + 1):
        # The first step of the stable phase with `blocks` blocks.
        at = state.replace(step=jnp.asarray(2 * (blocks - 1) * phase_steps, jnp.int32))
        assert task.step_variant(int(at.step)) == blocks
        static = jax.jit(functools.partial(task.train_step, variant=blocks))
        fast = call_seconds(lambda: static(at, batch, jax.random.key(2)), args.repeats)
        slow = call_seconds(lambda: switched(at, batch, jax.random.key(2)), args.repeats)
        print(f"| {blocks} | {device} | {batch_size} | float32 | {fast * 1e3:,.0f} | "
              f"{slow * 1e3:,.0f} | {slow / fast:.1f} |", flush=True)


if __name__ == "__main__":
    main()
