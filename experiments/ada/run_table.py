"""Autoencoder table: tiny NSynth AE and ADA bottlenecks on the same data and budget.

Trains each config spec for the same steps, batch and schedule on the synthetic NSynth-like
notes, then reports the eval reconstruction cross-entropy (bits per modelled code: per audio
sample at level 1), the codebook perplexity and usage on the eval batches (discrete
bottlenecks), decoding speed with the ring-buffer generator (samples/s at batch 1, against
the naive generator in the same run) and the training time. `--level2` also trains a second
level on the codes of the named level-1 spec and reports the stack's receptive fields.
Prints one markdown table (plus the receptive-field table with --level2).

    python experiments/ada/run_table.py                                   # VQ, VQ-EMA, argmax
    python experiments/ada/run_table.py --specs configs/nsynth_ae_tiny.py
    python experiments/ada/run_table.py --specs configs/ada_tiny.py:argmax --level2
    python experiments/ada/run_table.py --seed 1                          # another seed
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from audiozoo import generation
from audiozoo.config import apply_overrides, load_config
from audiozoo.tasks import build_task
from audiozoo.train.loop import train

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPECS = ("configs/ada_tiny.py:vq", "configs/ada_tiny.py:vq_ema", "configs/ada_tiny.py:argmax")


def run(spec: str, steps: int, workdir: Path, overrides=()) -> dict:
    config = load_config(str(ROOT / spec))
    apply_overrides(config, [("train.num_steps", str(steps)), ("train.eval_every", str(steps)),
                             ("train.checkpoint_every", str(steps)), ("train.num_eval_batches", "8"),
                             ("task.num_samples", "0"), *overrides])
    start = time.perf_counter()
    state = train(config, workdir)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    final = [r for r in records if r["split"] == "eval"][-1]
    first = [r for r in records if r["split"] == "train"][0]
    task = build_task(config)
    return {"spec": spec, "first_bits": first["bits_per_code"], "bits": final["bits_per_code"],
            "perplexity": final.get("perplexity"), "usage": final.get("usage"),
            "codes": task.model.num_codes if task.model.discrete else None, "train_s": seconds,
            "level": task.level, "task": task, "state": state}


def decode_speed(task, state, seconds: float = 1.0) -> tuple[float, float]:
    """(fast, naive) samples/s decoding one clip at batch 1 (each after a warm-up call)."""
    net = task.model.decoder_net
    variables = {"params": state.params["decoder"]}
    frames = max(1, int(seconds * task.sample_rate) // (task.model.hop_length * task.hop_to_audio))
    latent = np.zeros((1, frames, task.model.latent_width), np.float32)
    steps = frames * task.model.hop_length
    rates = []
    for sample in (generation.sample, generation.sample_naive):
        run_once = lambda: sample(net, variables, jax.random.key(0), steps, local_cond=latent)  # noqa: E731
        jax.block_until_ready(run_once())
        start = time.perf_counter()
        jax.block_until_ready(run_once())
        rates.append(steps / (time.perf_counter() - start))
    return tuple(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", nargs="+", default=list(DEFAULT_SPECS))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--level2", action="store_true",
                        help="also train configs/ada_tiny.py:level2 on the first spec's codes")
    parser.add_argument("--workdir", default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0, help="config.seed (initialisation, rngs)")
    args = parser.parse_args()
    device = f"{jax.devices()[0].platform} ({os.cpu_count()} cores)"
    scratch = Path(args.workdir or tempfile.mkdtemp(prefix="ada_table_"))
    seed = [("seed", str(args.seed))]
    rows = []
    for spec in args.specs:
        rows.append(run(spec, args.steps, scratch / spec.replace("/", "_").replace(":", "_"), seed))
    if args.level2:
        lower = scratch / args.specs[0].replace("/", "_").replace(":", "_")
        rows.append(run("configs/ada_tiny.py:level2", args.steps, scratch / "level2",
                        [("task.lower_workdir", str(lower)), *seed]))
    print(f"\n| config | level | device | eval bits/code after {args.steps} steps (step 1) "
          "| perplexity / codes | usage | decode samples/s, batch 1 (naive) | fast / naive "
          "| train time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fast, naive = decode_speed(r["task"], r["state"])
        codes = "-" if r["codes"] is None else f"{r['perplexity']:.1f} / {r['codes']}"
        usage = "-" if r["usage"] is None else f"{100 * r['usage']:.0f} %"
        print(f"| {r['spec']} | {r['level']} | {device} | {r['bits']:.3f} ({r['first_bits']:.3f}) "
              f"| {codes} | {usage} | {fast:,.0f} ({naive:,.0f}) | {fast / naive:.1f} "
              f"| {r['train_s']:.0f} s |", flush=True)
    if args.level2:
        print("\n| level | decoder receptive field (codes) | in audio samples | one latent frame covers (samples) |")
        print("|---|---|---|---|")
        for f in rows[-1]["task"].stack_receptive_fields():
            print(f"| {f['level']} | {f['codes']} | {f['samples']} | {f['hop_samples']} |")


if __name__ == "__main__":
    main()
