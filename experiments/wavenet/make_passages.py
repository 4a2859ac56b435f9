"""Renders musical passages of sampled instruments from a GM soundfont into a wav folder.

Per General MIDI program, N seeded random pieces (a melody over a diatonic scale, with
chords and a bass line on instruments that play them), each rendered as one MIDI file by
fluidsynth and written as a 16-bit mono WAV; see audiozoo/data/passages.py for the recipe
and the manifest. Needs the fluidsynth program and a soundfont:

    apt-get install fluidsynth fluid-soundfont-gm     # or timgm6mb-soundfont
    python experiments/wavenet/make_passages.py --out data/passages
    python experiments/wavenet/make_passages.py --out /tmp/p --programs 0 24 40 --passages 8 --seconds 2

Writes OUT/<program>/<index>.wav (one class folder per program, e.g. 000_acoustic_grand_piano)
and OUT/passages.json, and prints the count, the minutes of audio and the time taken. Train on
it with ``--config.data.name=wav_folder --config.data.root=OUT`` (add
``--config.data.labels=True`` for the program as a class).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from audiozoo.data.base import DataError
from audiozoo.data.passages import (
    DEFAULT_GAIN,
    DEFAULT_PROGRAMS,
    DEFAULT_SAMPLE_RATE,
    DEFAULT_SECONDS,
    FLUIDR3_SOUNDFONT,
    render_passages,
)
from audiozoo.data.soundfont import DEFAULT_SOUNDFONT, GM_INSTRUMENTS, select_programs


def default_soundfont() -> str:
    """FluidR3_GM (larger, better sampled) where installed, else TimGM6mb."""
    return FLUIDR3_SOUNDFONT if os.path.isfile(FLUIDR3_SOUNDFONT) else DEFAULT_SOUNDFONT


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the wav folder to create (must be empty or absent)")
    parser.add_argument("--programs", nargs="+", default=[str(p) for p in DEFAULT_PROGRAMS],
                        help="GM programs 0-127, ranges (40-43), a family or source name, or 'all' "
                             "(default: piano, nylon guitar, violin, cello, trumpet, flute)")
    parser.add_argument("--passages", type=int, default=100, help="passages per program")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="length of each passage")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same files")
    parser.add_argument("--soundfont", default=default_soundfont(),
                        help=f"a General MIDI .sf2 file (default: {default_soundfont()})")
    parser.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE)
    parser.add_argument("--gain", type=float, default=DEFAULT_GAIN,
                        help="fluidsynth master gain; a passage that would clip is rendered lower")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="fluidsynth processes at once")
    return parser.parse_args(argv)


def progress_printer(every: int = 100):
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        if done % every and done != total:
            return
        elapsed = time.perf_counter() - start
        print(f"  {done}/{total} passages, {elapsed:.0f} s, about {elapsed / done * (total - done):.0f} s left",
              file=sys.stderr, flush=True)

    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        programs = select_programs(args.programs)
        names = ", ".join(f"{p} {GM_INSTRUMENTS[p].name}" for p in programs)
        print(f"rendering {args.passages} x {args.seconds:g} s passages of {len(programs)} GM programs "
              f"({names}) with {args.soundfont} into {args.out}", file=sys.stderr)
        summary = render_passages(args.out, programs=programs, num_passages=args.passages, seconds=args.seconds,
                                  seed=args.seed, sample_rate=args.sample_rate, soundfont=args.soundfont,
                                  gain=args.gain, workers=args.workers, progress=progress_printer())
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(summary.files)} passages ({summary.audio_seconds / 60:.2f} min of audio at "
          f"{args.sample_rate} Hz) of {len(programs)} programs to {summary.root} in {summary.seconds:.1f} s "
          f"({summary.speed:.1f} s of audio per second, {args.workers} workers)")
    print(f"loudest passage: {summary.peak:.3f} of full scale; rendered at a lower gain to stay below it: "
          f"{len(summary.reduced)}")
    print(f"manifest: {os.path.join(summary.root, 'passages.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
