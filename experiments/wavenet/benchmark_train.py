"""Training throughput of WaveNet configs on the current device, in audio samples per second.

One row per config: the full jitted train step (forward, backward, Adam update, data-parallel
over every local device) against the forward pass alone on the same batch, measured in the
same run; the ratio says what training costs on top of inference.

    python experiments/wavenet/benchmark_train.py                 # tiny + nv-wavenet medium
    python experiments/wavenet/benchmark_train.py --configs configs/wavenet_paper.py --batch 4
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
import numpy as np

from audiozoo.benchmarking import call_seconds
from audiozoo.config import apply_overrides, load_config
from audiozoo.train import mesh as mesh_lib
from audiozoo.tasks import build_task

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIGS = ("configs/wavenet_tiny.py", "configs/wavenet_nv_medium.py")


def measure(config_path: str, batch: int | None, segment: int | None, repeats: int) -> dict:
    config = load_config(ROOT / config_path)
    overrides = []
    if batch:
        overrides.append(("train.batch_size", str(batch)))
    if segment:
        overrides.append(("data.segment_length", str(segment)))
    apply_overrides(config, overrides)
    task = build_task(config)
    mesh = mesh_lib.make_mesh()
    host = {k: np.asarray(v) for k, v in task.dummy_batch(config.train.batch_size).items()}
    host["audio"] = np.random.default_rng(0).uniform(-0.5, 0.5, host["audio"].shape).astype(np.float32)
    data = mesh_lib.global_batch(mesh, host)
    rng = jax.random.key(0)
    state = jax.jit(task.init_state, out_shardings=mesh_lib.replicated(mesh))(rng, data)
    train_step = jax.jit(task.train_step)
    forward = jax.jit(lambda s, b: task.eval_step(s, b, rng))
    samples = config.train.batch_size * config.data.segment_length
    train_s = call_seconds(lambda: train_step(state, data, rng), repeats, reduce="median")
    forward_s = call_seconds(lambda: forward(state, data), repeats, reduce="median")
    return {
        "config": Path(config_path).stem, "batch": config.train.batch_size,
        "segment": config.data.segment_length, "train": samples / train_s,
        "forward": samples / forward_s,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--batch", type=int, default=None, help="override train.batch_size")
    parser.add_argument("--segment", type=int, default=None, help="override data.segment_length")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = f"{jax.devices()[0].platform} x{jax.device_count()} ({os.cpu_count()} host cores)"
    print("| config | device | batch | segment | train samples/s | forward samples/s (baseline) | train / forward |")
    print("|---|---|---|---|---|---|---|")
    for path in args.configs:
        r = measure(path, args.batch, args.segment, args.repeats)
        print(f"| {r['config']} | {device} | {r['batch']} | {r['segment']} | {r['train']:,.0f} "
              f"| {r['forward']:,.0f} | {r['train'] / r['forward']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
