"""Music from nothing with a stacked ADA and a prior (Dieleman et al. 2018, sections 3-4).

Trains, on a folder of recordings (e.g. soundfont piano passages from
experiments/wavenet/make_passages.py), a level-1 argmax autoencoder on the audio, a level-2
one on level 1's codes, and a WaveNet prior on level 2's codes (configs/ada_tiny.py: argmax,
level2, prior), then samples the prior and decodes top-down into WAV files. Prints each
model's eval bits per code, the stack's receptive fields (in codes, samples and seconds) and
where the WAVs are; writes the same to OUT/music.json.

    python experiments/wavenet/make_passages.py --out data/piano --programs 0 --passages 240
    python experiments/ada/music.py --data data/piano --out runs/ada_music --count 4 --seconds 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

import audiozoo as az
from audiozoo.audio.io import write_audio
from audiozoo.config import apply_overrides, load_config
from audiozoo.files import write_text_atomic
from audiozoo.train.loop import train

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "ada_tiny.py"
LEVELS = ("argmax", "level2", "prior")


def train_level(variant: str, workdir: Path, data: str, steps: int, lower: Path | None) -> dict:
    """Trains one model of the stack; returns its last eval record and the time taken."""
    config = load_config(f"{CONFIG}:{variant}")
    overrides = [("data.name", "wav_folder"), ("data.root", data), ("train.num_steps", str(steps)),
                 ("train.eval_every", str(steps)), ("train.checkpoint_every", str(steps)),
                 ("train.num_eval_batches", "8"), ("task.num_samples", "0")]
    if lower is not None:
        overrides.append(("task.lower_workdir", str(lower)))
    apply_overrides(config, overrides)
    start = time.perf_counter()
    train(config, workdir)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    return {"variant": variant, "steps": steps, "train_seconds": round(seconds, 1),
            "eval": [r for r in records if r["split"] == "eval"][-1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a folder of audio files (wav_folder)")
    parser.add_argument("--out", required=True, help="workdirs and WAVs go here")
    parser.add_argument("--steps", type=int, nargs=3, default=(600, 600, 800),
                        metavar=("LEVEL1", "LEVEL2", "PRIOR"), help="training steps of each model")
    parser.add_argument("--count", type=int, default=4, help="clips to generate")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each clip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    out = Path(args.out)
    rows, lower = [], None
    for variant, steps in zip(LEVELS, args.steps):
        workdir = out / variant
        rows.append(train_level(variant, workdir, args.data, steps, lower))
        lower = workdir
    prior = az.load(lower)
    start = time.perf_counter()
    audio = prior.generate(seconds=args.seconds, batch_size=args.count, seed=args.seed)
    generate_seconds = time.perf_counter() - start
    paths = [out / "music" / f"music_{i}.wav" for i in range(args.count)]
    for path, clip in zip(paths, audio):
        write_audio(path, clip, prior.sample_rate)
    result = {"device": str(jax.devices()[0].device_kind), "models": rows,
              "receptive_fields": prior.task.stack_receptive_fields(),
              "generated": [str(p) for p in paths], "generate_seconds": round(generate_seconds, 1)}
    write_text_atomic(out / "music.json", json.dumps(result, indent=1) + "\n")

    print("| model | steps | eval bits/code | train time |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['steps']} | {row['eval']['bits_per_code']:.3f} | "
              f"{row['train_seconds']:.0f} s |")
    print("\n| level | receptive field (codes) | samples | seconds |")
    print("|---|---|---|---|")
    for f in result["receptive_fields"]:
        print(f"| {f['level']} | {f['codes']} | {f['samples']} | {f['seconds']:.3f} |")
    print(f"\n{args.count} clips of {args.seconds:g} s from nothing in {generate_seconds:.0f} s: "
          f"{paths[0].parent}")


if __name__ == "__main__":
    main()
