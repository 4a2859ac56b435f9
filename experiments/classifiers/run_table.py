"""The classifier table: every model on the synthetic family-classification task.

For each variant of configs/classify_tiny.py: parameter count, input features, inference
throughput (examples/s of the jitted front end + model, eval mode) with its ratio to ResNet-18
measured in the same run, and the eval accuracy reached in a fixed training budget (the same
steps, batch and schedule for all). Prints one markdown table.

    python experiments/classifiers/run_table.py                   # all variants, 300 steps
    python experiments/classifiers/run_table.py --models resnet18 ast --steps 100
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from audiozoo.config import load_config
from audiozoo.tasks import build_task
from audiozoo.train.loop import train

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "classify_tiny.py"
VARIANTS = ("resnet18", "alexnet", "vgg11", "vgg16", "inception_v1", "resnet50", "densenet121",
            "squeezenet1_1", "cnn14", "sincnet", "ast", "wav2vec2_classifier")


def count_params(task) -> int:
    shapes = jax.eval_shape(task.init_state, jax.random.key(0), task.dummy_batch(1))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes.params))


def throughput(task, state, batch: int, repeats: int = 5) -> float:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (batch, task.config.data.segment_length))
    predict = jax.jit(task.predict)
    jax.block_until_ready(predict(state, audio))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(predict(state, audio))
    return batch * repeats / (time.perf_counter() - start)


def input_shape(task) -> str:
    features = jax.eval_shape(task.frontend, task.dummy_batch(1)["audio"])
    return f"{task.frontend.kind} {'x'.join(str(d) for d in features.shape[1:])}"


def run(model: str, steps: int, batch: int, workdir: Path) -> dict:
    config = load_config(f"{CONFIG}:{model}")
    config.train.update(num_steps=steps, eval_every=steps, checkpoint_every=steps,
                        log_every=max(1, steps // 10))
    start = time.perf_counter()
    state = train(config, workdir)
    seconds = time.perf_counter() - start
    records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
    accuracy = [r["accuracy"] for r in records if r["split"] == "eval"][-1]
    task = build_task(config)
    return {"model": model, "params": count_params(task), "input": input_shape(task),
            "examples_per_s": throughput(task, state, batch), "accuracy": accuracy,
            "train_s": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16, help="inference batch for throughput")
    args = parser.parse_args()
    device = f"{jax.devices()[0].platform} x{jax.device_count()} ({os.cpu_count()} host cores)"
    scratch = Path(tempfile.mkdtemp(prefix="cls_table_"))
    rows = []
    try:
        for model in args.models:
            rows.append(run(model, args.steps, args.batch, scratch / model))
            print(f"done {model}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = next((r["examples_per_s"] for r in rows if r["model"] == "resnet18"), rows[0]["examples_per_s"])
    print(f"\n| model | params | input | device | batch | inference examples/s | vs resnet18 "
          f"| eval accuracy after {args.steps} steps | train time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['input']} | {device} | {args.batch} "
              f"| {r['examples_per_s']:,.0f} | {r['examples_per_s'] / base:.2f} "
              f"| {100 * r['accuracy']:.1f} % | {r['train_s']:.0f} s |")


if __name__ == "__main__":
    main()
