"""How long the trainer's first step waits for XLA: compile time and optimized program size of
`init_train_state` and the train step (`Task.averaged_train_step`) for the given configs.

    python experiments/benchmark/compile_time.py                      # the tiny configs
    python experiments/benchmark/compile_time.py configs/nsynth_ae_tiny.py
    XLA_FLAGS=--xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_COMPILE python experiments/benchmark/compile_time.py

The persistent compilation cache is off, so every figure is a cold compile. The batch is the
task's `dummy_batch` at the config's `train.batch_size`. "instructions" counts the optimized
HLO's instructions (the size of what XLA hands to LLVM), a machine-independent figure beside
the machine-dependent seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import time

os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"  # before jax is imported

import jax  # noqa: E402

from audiozoo.benchmarking import device_label  # noqa: E402
from audiozoo.config import load_config  # noqa: E402
from audiozoo.tasks import build_task  # noqa: E402

DEFAULT_CONFIGS = ["configs/wavenet_tiny.py", "configs/wavenet_vocoder_tiny.py",
                   "configs/classify_tiny.py"]


def compile_seconds(fn, *args):
    """(seconds to compile `jax.jit(fn)` for `args`, the compiled program)."""
    lowered = jax.jit(fn).lower(*args)
    start = time.perf_counter()
    compiled = lowered.compile()
    return time.perf_counter() - start, compiled


def instructions(compiled) -> int:
    return len(re.findall(r"^\s+\S+ = ", compiled.as_text(), flags=re.MULTILINE))


def measure(config_path: str) -> list[tuple[str, float, int]]:
    task = build_task(load_config(config_path))
    batch = task.dummy_batch(task.config.train.batch_size)
    init_s, init = compile_seconds(task.init_train_state, jax.random.key(0), batch)
    state = init(jax.random.key(0), batch)
    step_s, step = compile_seconds(task.averaged_train_step, state, batch, jax.random.key(1))
    return [("init_train_state", init_s, instructions(init)),
            ("train step", step_s, instructions(step))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS)
    args = parser.parse_args()
    print(f"jax {jax.__version__}; {device_label()}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print("| config | program | compile s | instructions |")
    print("|---|---|---|---|")
    for config in args.configs:
        for program, seconds, count in measure(config):
            print(f"| {config} | {program} | {seconds:.1f} | {count:,} |", flush=True)


if __name__ == "__main__":
    main()
