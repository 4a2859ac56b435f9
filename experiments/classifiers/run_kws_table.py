"""The keyword-spotting table: every configs/kws.py recipe and the in-project baseline on the
test speakers of a Speech Commands-layout set (by default the noisy set make_noisy_kws.py makes).

Each recipe trains in its own workdir (WORKDIR/VARIANT, kept so `audiozoo evaluate` can look
again; a finished one is restored, not retrained), then is evaluated on every clip of the
set's testing_list.txt; the baseline (`audiozoo baseline`: logistic regression on log-mel
mean and std) is fitted on the same training clips and tested on the same clips. Prints one
markdown table: accuracy on the test speakers and on the validation speakers, steps, train
time and device.

    python experiments/classifiers/make_noisy_kws.py --out data/noisy_kws
    python experiments/classifiers/run_kws_table.py --root data/noisy_kws       # ~2 h on 2 cores
    python experiments/classifiers/run_kws_table.py --root data/noisy_kws --steps 40 \\
        --workdir runs/kws_smoke                                                 # a smoke run
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

import audiozoo
from audiozoo import evaluation
from audiozoo.baseline import run_baseline
from audiozoo.config import load_config
from audiozoo.data import make_dataset
from audiozoo.train.loop import train

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "kws.py"
VARIANTS = ("cnn", "sincnet", "ast", "wav2vec2_classifier")
TIMING = "train_time.json"


def recipe_config(variant: str, root: str, steps: int | None):
    config = load_config(f"{CONFIG}:{variant}")
    config.data.root = root
    if steps:  # a shorter run: evaluate and save only at its end
        config.train.update(num_steps=steps, eval_every=steps, checkpoint_every=steps,
                            log_every=max(1, steps // 10))
        config.optim.warmup_steps = min(config.optim.warmup_steps, steps // 10)
    return config


def with_eval_list(config, name: str):
    config = copy.deepcopy(config)
    config.data.eval_list = name
    return config


def timed_train(config, workdir: Path) -> float:
    """Trains (or finishes) the run; the seconds all its invocations spent training."""
    timing = workdir / TIMING
    before = json.loads(timing.read_text())["seconds"] if timing.exists() else 0.0
    start = time.perf_counter()
    train(config, workdir)
    seconds = before + time.perf_counter() - start
    timing.write_text(json.dumps({"seconds": seconds}) + "\n")
    return seconds


def accuracy(workdir: Path, config, list_name: str) -> float:
    run = audiozoo.load(workdir)
    dataset = make_dataset(with_eval_list(config, list_name).data, "eval")
    return evaluation.evaluate(run.task, run.state, dataset, run.labels)["accuracy"]


def count_params(workdir: Path) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(audiozoo.load(workdir).state.params))


def run_recipe(variant: str, root: str, steps: int | None, workdir: Path) -> dict:
    config = recipe_config(variant, root, steps)
    seconds = timed_train(config, workdir)
    return {"recipe": f"kws.py:{variant}", "model": config.model.name,
            "params": f"{count_params(workdir):,}", "steps": config.train.num_steps,
            "train_s": seconds, "test": accuracy(workdir, config, "testing_list.txt"),
            "validation": accuracy(workdir, config, "validation_list.txt")}


def run_linear_baseline(root: str) -> dict:
    config = recipe_config("cnn", root, None)  # the recipes' data settings; no model is used
    start = time.perf_counter()
    test = run_baseline(with_eval_list(config, "testing_list.txt"))["accuracy"]
    seconds = time.perf_counter() - start
    validation = run_baseline(with_eval_list(config, "validation_list.txt"))["accuracy"]
    return {"recipe": "`audiozoo baseline`", "model": "logistic regression, log-mel mean + std",
            "params": f"{(2 * 64 + 1) * config.model.num_classes:,}", "steps": "L-BFGS",
            "train_s": seconds, "test": test, "validation": validation}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="data/noisy_kws", help="the Speech Commands-layout set")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=None,
                        help="train steps of every recipe (default: each recipe's own)")
    parser.add_argument("--workdir", default="runs/kws_table", type=Path,
                        help="one workdir per recipe below this folder")
    args = parser.parse_args()
    device = f"{jax.devices()[0].platform} x{jax.device_count()} ({os.cpu_count()} host cores)"
    rows = [run_linear_baseline(args.root)]
    for variant in args.variants:
        rows.append(run_recipe(variant, args.root, args.steps, args.workdir / variant))
        print(f"done {variant}: test accuracy {rows[-1]['test']:.3f}", flush=True)
    base = rows[0]["test"]
    print("\n| recipe | model | params | steps | train time | device | test speakers accuracy "
          "| vs baseline | validation speakers accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        margin = "—" if r is rows[0] else f"{100 * (r['test'] - base):+.1f} points"
        print(f"| {r['recipe']} | {r['model']} | {r['params']} | {r['steps']} | {r['train_s']:.0f} s "
              f"| {device} | {100 * r['test']:.1f} % | {margin} | {100 * r['validation']:.1f} % |")


if __name__ == "__main__":
    main()
