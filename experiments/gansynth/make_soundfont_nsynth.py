"""Renders an NSynth-format release (examples.json + audio/*.wav) from a GM soundfont.

Each note is 4 s at 16 kHz, held 3 s and released 1 s, one per (GM program, pitch,
velocity); GM programs carry NSynth instrument families and sources and are split into
train / valid / test by instrument. See audiozoo/data/soundfont.py for the recipe and
the GM mapping. Needs the fluidsynth program and a soundfont:

    apt-get install fluidsynth timgm6mb-soundfont
    python experiments/gansynth/make_soundfont_nsynth.py --out data/soundfont_nsynth
    python experiments/gansynth/make_soundfont_nsynth.py --out /tmp/sf --programs 0 24 40-43 \\
        --pitch-range 48 72 --velocities 100

Prints a summary (notes per split and per family/source, silent notes skipped, the
loudest note) and writes it to OUT/render_summary.json. Read the result with
``audiozoo.data.NSynth(OUT, "train")`` or ``--config.data.name=nsynth --config.data.root=OUT``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

from audiozoo.data.base import DataError
from audiozoo.data.nsynth import FAMILIES, SOURCES, SPLITS
from audiozoo.data.soundfont import (
    DEFAULT_GAIN,
    DEFAULT_PITCH_RANGE,
    DEFAULT_SOUNDFONT,
    DEFAULT_VELOCITIES,
    GM_INSTRUMENTS,
    ReleaseSummary,
    render_release,
    select_programs,
)
from audiozoo.files import write_text_atomic


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="release root: gets nsynth-{train,valid,test}/")
    parser.add_argument("--soundfont", default=DEFAULT_SOUNDFONT, help="a General MIDI .sf2 file")
    parser.add_argument("--programs", nargs="+", default=["acoustic"],
                        help="GM programs: numbers 0-127, ranges (40-47), 'all', a source "
                             "(acoustic, electronic, synthetic) or a family; default: acoustic")
    parser.add_argument("--pitch-range", nargs=2, type=int, default=list(DEFAULT_PITCH_RANGE),
                        metavar=("LOW", "HIGH"), help="MIDI pitches, inclusive (default: 24 84)")
    parser.add_argument("--velocities", nargs="+", type=int, default=list(DEFAULT_VELOCITIES))
    parser.add_argument("--seed", type=int, default=0, help="seed of the instrument split")
    parser.add_argument("--workers", type=int, default=2, help="fluidsynth processes at once")
    parser.add_argument("--gain", type=float, default=DEFAULT_GAIN,
                        help="fluidsynth master gain; the run stops if a note would clip")
    return parser.parse_args(argv)


def progress_printer(every: int = 500):
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        if done % every and done != total:
            return
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done)
        print(f"  {done}/{total} notes, {elapsed:.0f} s, about {eta:.0f} s left", file=sys.stderr, flush=True)

    return report


def summary_table(summary: ReleaseSummary, total_notes: int) -> str:
    """The markdown tables printed at the end (and pasted into the README)."""
    splits = summary.split_counts()
    lines = ["| split | instruments (GM programs) | notes |", "|---|---|---|"]
    for split in SPLITS:
        lines.append(f"| {split} | {len(summary.programs[split])} | {splits[split]} |")
    lines.append(f"| all | {sum(len(p) for p in summary.programs.values())} | {sum(splits.values())} |")
    lines += ["", "| family | source | " + " | ".join(SPLITS) + " |", "|---|---|" + "---|" * len(SPLITS)]
    for family in FAMILIES:
        for source in SOURCES:
            row = [summary.counts.get((split, family, source), 0) for split in SPLITS]
            if any(row):
                lines.append(f"| {family} | {source} | " + " | ".join(map(str, row)) + " |")
    peak_db = 20 * math.log10(summary.peak) if summary.peak > 0 else float("-inf")
    lines += [
        "",
        f"notes rendered: {total_notes}; written: {sum(splits.values())}; "
        f"skipped as silent: {len(summary.silent)}",
        f"loudest note: {summary.peak_note} at {summary.peak:.4f} of full scale ({peak_db:.2f} dBFS)",
        f"time: {summary.seconds:.0f} s ({total_notes / max(summary.seconds, 1e-9):.1f} notes/s)",
    ]
    return "\n".join(lines)


def summary_json(summary: ReleaseSummary, args: argparse.Namespace, programs: list[int]) -> dict:
    return {
        "soundfont": os.path.abspath(args.soundfont), "gain": args.gain, "seed": args.seed,
        "pitch_range": args.pitch_range, "velocities": sorted(set(args.velocities)),
        "programs": {split: [{"program": p, "name": GM_INSTRUMENTS[p].name,
                              "instrument_str": GM_INSTRUMENTS[p].instrument_str}
                             for p in summary.programs[split]] for split in SPLITS},
        "notes": summary.split_counts(), "requested_programs": programs,
        "silent": summary.silent, "peak": summary.peak, "peak_note": summary.peak_note,
        "seconds": round(summary.seconds, 1), "workers": args.workers,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        programs = select_programs(args.programs)
        total = len(programs) * (args.pitch_range[1] - args.pitch_range[0] + 1) * len(set(args.velocities))
        print(f"rendering {total} notes of {len(programs)} GM programs with {args.soundfont} into {args.out}",
              file=sys.stderr)
        summary = render_release(args.out, programs, pitch_range=args.pitch_range,
                                 velocities=args.velocities, soundfont=args.soundfont, gain=args.gain,
                                 seed=args.seed, workers=args.workers, progress=progress_printer())
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    write_text_atomic(os.path.join(args.out, "render_summary.json"),
                      json.dumps(summary_json(summary, args, programs), indent=1))
    print(summary_table(summary, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
