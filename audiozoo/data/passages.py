"""Short musical passages rendered from a General MIDI soundfont with fluidsynth, as a wav folder.

Single notes (``audiozoo.data.soundfont``) teach a model how one instrument sounds at one
pitch; a vocoder or a stacked autoencoder trained for music also has to hear note
transitions, legato and overlapping releases, chords and changing dynamics. This module
writes such audio from the same sampled instruments: per GM program, ``num_passages``
seeded random pieces, each ``seconds`` long.

A piece (``compose``) has a random key (major or natural minor), tempo (72-144 bpm) and
meter (4/4, or 3/4 one time in four). Its bars follow a chord progression over I, ii, IV,
V and vi that starts on I. The melody is a random walk over the diatonic scale inside the
instrument's playing range, in steps of mostly a second or third with occasional leaps,
moving to a tone of the bar's chord on most downbeats; its notes last from a sixteenth to
a dotted half, with occasional rests, and are held for a per-piece fraction (70-100 %) of
their length, from staccato to legato. Velocities (60-120) follow a per-bar dynamic that
drifts up and down, with accents on downbeats and beats. Instruments that play chords
(keyboards, organs, guitars, harps, string ensembles, accordions, mallets) add triads on
some bars (strummed on guitars: one note after another, 15 ms apart), and those with a
bass register a bass line (held roots, root and fifth, or a walking arpeggio). Melody,
chords and bass play on MIDI channels 1-3, so that a pitch in two parts sounds twice.

Each piece is ONE format-0 Standard MIDI File rendered by the ``fluidsynth`` program
(https://www.fluidsynth.org) with the shared recipe of ``soundfont.render_midi``: reverb
and chorus off, channels averaged to mono, the start latency dropped, then cut to exactly
``round(seconds * sample_rate)`` samples and written as 16-bit WAV. Notes that would
start in the last 0.1 s are left out and notes still sounding at the end are cut there.
fluidsynth loads only the samples a file uses (its ``synth.dynamic-sample-loading``
setting, which gives the same samples as loading all of them), so that a large
soundfont costs little per file.

Levels: a passage is rendered at ``gain``; if it peaks above ``PEAK_LIMIT`` (-0.18 dBFS)
it is rendered again at the gain that puts its peak at ``TARGET_PEAK`` (-0.92 dBFS),
fluidsynth's float output scaling linearly with the gain, and the lower gain is recorded in
the manifest. Nothing is clipped and quiet passages are not raised, so levels follow the
velocities. A passage that renders silent (the soundfont has no samples for the
instrument) is an error.

Layout (what ``audiozoo.data.WavFolder`` reads, one class folder per program)::

    out_dir/passages.json                   the manifest, written last
    out_dir/000_acoustic_grand_piano/0000.wav
    out_dir/024_acoustic_guitar_nylon/0000.wav ...

The manifest records the run's settings (sample rate, seconds, seed, gain, soundfont path
and size, fluidsynth version) and per passage its file, program, seed (``compose(program,
seconds, seed)`` gives the same piece), key, meter, tempo, gain, peak and notes. Programs
are the General MIDI Level 1 sound set (MIDI Manufacturers Association, "General MIDI
System Level 1", 1991), numbered 0-127 as sent in the program change; the instruments with
an NSynth family in ``soundfont.GM_INSTRUMENTS`` can be chosen (not percussion, pads or
sound effects).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from audiozoo.audio.io import write_audio
from audiozoo.data.base import DataError
from audiozoo.data.soundfont import (
    DEFAULT_SOUNDFONT,
    GM_INSTRUMENTS,
    SILENCE_PEAK,
    TICKS_PER_QUARTER,
    check_soundfont,
    find_fluidsynth,
    fit_length,
    render_midi,
    smf_bytes,
)
from audiozoo.files import make_dir, write_text_atomic

FLUIDR3_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"  # Debian package fluid-soundfont-gm
# Piano, nylon guitar, violin, cello, trumpet, flute: acoustic instruments of several families.
DEFAULT_PROGRAMS = (0, 24, 40, 42, 56, 73)
DEFAULT_SECONDS = 4.0
DEFAULT_SAMPLE_RATE = 16000
# fluidsynth's master gain, as for single notes. At 1.0, 4 s passages of the default
# programs and of louder ones (organ, harp, accordion, strings) peak at 0.09-0.87 of full
# scale (median about -12 dBFS) with both Debian soundfonts; one that would go above
# PEAK_LIMIT is rendered again lower.
DEFAULT_GAIN = 1.0
PEAK_LIMIT = 0.98  # above this a passage is rendered again at a lower gain
TARGET_PEAK = 0.9
MANIFEST = "passages.json"

VELOCITY_RANGE = (60, 120)
TEMPO_RANGE = (72, 144)  # quarter notes per minute
END_MARGIN_SECONDS = 0.1  # no note starts this close to the end
MIN_NOTE_SECONDS = 0.08  # shorter note values are not used at fast tempi
STRUM_SECONDS = 0.015
FLUIDSYNTH_RATES = (8000, 96000)  # the range of fluidsynth's synth.sample-rate setting

MELODY, CHORD, BASS = "melody", "chord", "bass"
_CHANNELS = {MELODY: 0, CHORD: 1, BASS: 2}
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Note values in beats with their weights: mostly eighths and quarters.
_DURATIONS = ((0.25, 1.0), (0.5, 6.0), (0.75, 1.0), (1.0, 6.0), (1.5, 2.0), (2.0, 2.0), (3.0, 0.5))
# Melody steps in scale degrees: mostly seconds, some thirds, few leaps.
_STEPS = ((-4, 1.0), (-3, 2.0), (-2, 6.0), (-1, 12.0), (0, 3.0), (1, 12.0), (2, 6.0), (3, 2.0), (4, 1.0))
# Chord progression: the next bar's chord (a scale degree, 0 = I) given this bar's.
_NEXT_CHORD = {0: (3, 4, 5, 1), 1: (4,), 3: (4, 0, 1), 4: (0, 5), 5: (3, 1)}


@dataclasses.dataclass(frozen=True)
class Voice:
    """How a program plays: MIDI pitch ranges of its melody and bass, where its chords sit."""

    melody: tuple[int, int]
    bass: tuple[int, int] | None = None  # None: no bass line
    chords: int | None = None  # the lowest chord root; None: no chords
    strum: bool = False  # chord notes one after another (plucked strings)


# Per NSynth family, then per program where the family's range does not fit the
# instrument (ranges from common orchestration tables, kept inside the comfortable part).
# Every key of every range sounds in both Debian soundfonts (TimGM6mb, FluidR3_GM),
# checked by rendering each key once.
_FAMILY_VOICES = {
    "keyboard": Voice((60, 84), (36, 55), 52),
    "organ": Voice((60, 84), (36, 55), 53),
    "guitar": Voice((55, 79), (40, 52), 52, strum=True),
    "mallet": Voice((60, 88), None, 55),
    "bass": Voice((28, 55)),
    "string": Voice((55, 88)),
    "brass": Voice((55, 79)),
    "reed": Voice((55, 82)),
    "flute": Voice((60, 93)),
    "vocal": Voice((55, 79)),
    "synth_lead": Voice((55, 84)),
}
_ENSEMBLE = Voice((55, 84), (36, 52), 48)
_ACCORDION = Voice((53, 84), (41, 55), 53)
_PROGRAM_VOICES = {
    9: Voice((72, 96), None, 67), 14: Voice((60, 77)),  # glockenspiel, tubular bells
    21: _ACCORDION, 22: Voice((60, 84)), 23: _ACCORDION,
    41: Voice((48, 79)), 42: Voice((36, 67)), 43: Voice((28, 52)), 44: Voice((48, 84)),
    45: Voice((48, 84)), 46: _ENSEMBLE, 48: _ENSEMBLE, 49: _ENSEMBLE, 50: _ENSEMBLE, 51: _ENSEMBLE,
    57: Voice((40, 70)), 58: Voice((29, 58)), 60: Voice((41, 72)), 61: Voice((48, 79)),
    64: Voice((56, 84)), 65: Voice((49, 78)), 66: Voice((44, 73)), 67: Voice((36, 64)),
    68: Voice((58, 88)), 69: Voice((52, 79)), 70: Voice((34, 67)), 71: Voice((50, 86)),
    72: Voice((74, 98)), 74: Voice((72, 96)), 75: Voice((60, 88)), 76: Voice((60, 84)),
    # Whistle: TimGM6mb has no samples above 79, so the range stops there for both fonts.
    77: Voice((55, 84)), 78: Voice((62, 79)), 79: Voice((60, 84)),
    104: Voice((48, 79)), 106: Voice((50, 79)), 107: Voice((50, 84), None, 55, strum=True),
    109: Voice((67, 81)), 111: Voice((60, 84)), 112: Voice((72, 96)),
}


def voice_of(program: int) -> Voice:
    """The Voice of a GM program; DataError for one that cannot be chosen."""
    if isinstance(program, bool) or not isinstance(program, (int, np.integer)) or program not in GM_INSTRUMENTS:
        raise DataError(f"GM program {program!r} cannot play passages; choose pitched instruments among "
                        f"{_program_ranges()} (GM_INSTRUMENTS in audiozoo/data/soundfont.py)")
    return _PROGRAM_VOICES.get(int(program), _FAMILY_VOICES[GM_INSTRUMENTS[program].family])


def _program_ranges() -> str:
    runs, programs = [], sorted(GM_INSTRUMENTS)
    for p in programs:
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def program_folder(program: int) -> str:
    """The class folder of a program: its number and GM name, "024_acoustic_guitar_nylon"."""
    slug = re.sub(r"[^a-z0-9]+", "_", GM_INSTRUMENTS[program].name.lower()).strip("_")
    return f"{program:03d}_{slug}"


# ----------------------------------------------------------------------------- composition


@dataclasses.dataclass(frozen=True)
class PassageNote:
    start: int  # ticks
    end: int  # ticks
    pitch: int
    velocity: int
    part: str  # MELODY, CHORD or BASS


@dataclasses.dataclass(frozen=True)
class Passage:
    """A composed piece: its key, meter and tempo and its notes, in MIDI ticks."""

    program: int
    seed: int
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" or "minor"
    beats_per_bar: int
    tempo_us: int  # microseconds per quarter note, as in the MIDI tempo event
    end_tick: int
    notes: tuple[PassageNote, ...]

    @property
    def key(self) -> str:
        return f"{_NOTE_NAMES[self.tonic]} {self.mode}"

    @property
    def bpm(self) -> float:
        return 60e6 / self.tempo_us

    def seconds(self, tick: int) -> float:
        return tick * self.tempo_us / (TICKS_PER_QUARTER * 1e6)

    def midi(self) -> bytes:
        """The piece as a format-0 Standard MIDI File, ending at ``end_tick``."""
        parts = sorted({n.part for n in self.notes}, key=_CHANNELS.get)
        # At one tick, note offs go before note ons so that a repeated pitch sounds again.
        timed = [(0, 0, bytes([0xC0 | _CHANNELS[p], self.program])) for p in parts]
        for n in self.notes:
            channel = _CHANNELS[n.part]
            timed.append((n.start, 2, bytes([0x90 | channel, n.pitch, n.velocity])))
            timed.append((n.end, 1, bytes([0x80 | channel, n.pitch, 0])))
        timed.sort(key=lambda e: (e[0], e[1]))
        return smf_bytes([(tick, message) for tick, _, message in timed], self.end_tick,
                         tempo_us_per_quarter=self.tempo_us)

    def note_rows(self) -> list[list]:
        """The notes as [start s, end s, pitch, velocity, part] rows for the manifest."""
        return [[round(self.seconds(n.start), 4), round(self.seconds(n.end), 4), n.pitch, n.velocity, n.part]
                for n in self.notes]


def compose(program: int, seconds: float, seed: int) -> Passage:
    """A seeded random piece for GM ``program``, ``seconds`` long (see the module docstring)."""
    voice = voice_of(program)
    _check_seconds(seconds)
    rng = np.random.default_rng(seed)
    tonic, mode = int(rng.integers(12)), ("major", "minor")[int(rng.integers(2))]
    tempo_us = round(60e6 / int(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1)))
    beats_per_bar = 3 if rng.random() < 0.25 else 4
    beats = seconds * 1e6 / tempo_us
    bars = math.ceil(beats / beats_per_bar) + 1
    scale = [(tonic + step) % 12 for step in _SCALES[mode]]
    chords = _progression(rng, bars)
    dynamics = _dynamics(rng, bars)
    shape = _Shape(beats_per_bar, tempo_us, scale, chords, dynamics, gate=float(rng.uniform(0.7, 1.0)))
    notes = _melody(rng, shape, voice.melody, beats)
    if voice.bass is not None and rng.random() < 0.85:
        notes += _bass(rng, shape, voice.bass, bars)
    if voice.chords is not None:
        notes += _chords(rng, shape, voice, bars)
    end_tick = round(beats * TICKS_PER_QUARTER)
    return Passage(int(program), int(seed), tonic, mode, beats_per_bar, tempo_us, end_tick,
                   _trim(notes, end_tick, shape.ticks(END_MARGIN_SECONDS * 1e6 / tempo_us)))


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What the parts of one piece share."""

    beats_per_bar: int
    tempo_us: int
    scale: list[int]  # the pitch classes of the key, from the tonic
    chords: list[int]  # per bar, the chord's root as a scale degree
    dynamics: list[int]  # per bar, the base velocity
    gate: float  # the fraction of its note value a note is held

    def chord_classes(self, bar: int) -> list[int]:
        degree = self.chords[bar]
        return [self.scale[(degree + 2 * k) % 7] for k in range(3)]

    @staticmethod
    def ticks(beats: float) -> int:
        return round(beats * TICKS_PER_QUARTER)

    def velocity(self, rng: np.random.Generator, bar: int, beat: float, offset: int = 0) -> int:
        accent = 8 if beat == 0 else 3 if beat == int(beat) else 0
        value = self.dynamics[bar] + accent + offset + int(rng.integers(-5, 6))
        return int(np.clip(value, *VELOCITY_RANGE))


def _progression(rng: np.random.Generator, bars: int) -> list[int]:
    chords = [0]
    while len(chords) < bars:
        options = _NEXT_CHORD[chords[-1]]
        chords.append(int(options[int(rng.integers(len(options)))]))
    return chords


def _dynamics(rng: np.random.Generator, bars: int) -> list[int]:
    """Per bar base velocities: a random walk, so a piece swells and fades."""
    level, levels = int(rng.integers(72, 106)), []
    for _ in range(bars):
        levels.append(level)
        level = int(np.clip(level + rng.integers(-10, 11), 66, 110))
    return levels


def _pitches_in(classes: Sequence[int], low: int, high: int) -> list[int]:
    return [p for p in range(low, high + 1) if p % 12 in classes]


def _melody(rng: np.random.Generator, shape: _Shape, register: tuple[int, int], beats: float) -> list[PassageNote]:
    pitches = _pitches_in(shape.scale, *register)
    index = _nearest_chord_tone(pitches, len(pitches) // 2, shape.chord_classes(0))
    values = [(b, w) for b, w in _DURATIONS if b * shape.tempo_us / 1e6 >= MIN_NOTE_SECONDS]
    lengths, weights = np.array([b for b, _ in values]), np.array([w for _, w in values])
    steps, step_weights = np.array([s for s, _ in _STEPS]), np.array([w for _, w in _STEPS])
    notes, t = [], 0.0
    while t < beats:
        bar, beat = int(t // shape.beats_per_bar), t % shape.beats_per_bar
        if notes and rng.random() < 0.1:  # a rest; the piece itself starts with a note
            t += float(rng.choice([0.5, 1.0]))
            continue
        length = float(rng.choice(lengths, p=weights / weights.sum()))
        if notes:
            index = _reflect(index + int(rng.choice(steps, p=step_weights / step_weights.sum())), len(pitches))
            if beat == 0 and rng.random() < 0.7:  # land on the bar's chord
                index = _nearest_chord_tone(pitches, index, shape.chord_classes(bar))
        start = shape.ticks(t)
        notes.append(PassageNote(start, start + max(1, shape.ticks(length * shape.gate)), pitches[index],
                                 shape.velocity(rng, bar, beat), MELODY))
        t += length
    return notes


def _reflect(index: int, size: int) -> int:
    """Keeps a random walk inside [0, size) by bouncing off the ends."""
    while not 0 <= index < size:
        index = -index if index < 0 else 2 * (size - 1) - index
    return index


def _nearest_chord_tone(pitches: list[int], index: int, classes: list[int]) -> int:
    tones = [i for i, p in enumerate(pitches) if p % 12 in classes]
    return min(tones, key=lambda i: (abs(i - index), i))


def _bass(rng: np.random.Generator, shape: _Shape, register: tuple[int, int], bars: int) -> list[PassageNote]:
    """Held roots, root and fifth, or a walking arpeggio, one pattern per piece."""
    per_bar = shape.beats_per_bar
    patterns = {"held": [(0, per_bar, 0)], "root_fifth": [(0, per_bar - 2, 0), (per_bar - 2, 2, 2)],
                "walking": [(b, 1, (0, 1, 2, 1)[b]) for b in range(per_bar)]}
    pattern = patterns[("held", "root_fifth", "walking")[int(rng.integers(3))]]
    notes = []
    for bar in range(bars):
        classes = shape.chord_classes(bar)
        root = _pitches_in(classes[:1], register[0], register[0] + 11)[0]
        for beat, length, tone in pattern:
            pitch = root if tone == 0 else min(_pitches_in(classes[tone:tone + 1], root, root + 11))
            start = shape.ticks(bar * per_bar + beat)
            notes.append(PassageNote(start, start + shape.ticks(length * shape.gate), pitch,
                                     shape.velocity(rng, bar, beat, offset=-10), BASS))
    return notes


def _chords(rng: np.random.Generator, shape: _Shape, voice: Voice, bars: int) -> list[PassageNote]:
    """Triads on some bars (a per-piece share), a bar or half a bar long, in some inversion."""
    share, notes = float(rng.uniform(0.25, 0.6)), []
    strum = shape.ticks(STRUM_SECONDS * 1e6 / shape.tempo_us) if voice.strum else 0
    for bar in range(bars):
        if rng.random() >= share:
            continue
        classes = shape.chord_classes(bar)
        root = _pitches_in(classes[:1], voice.chords, voice.chords + 11)[0]
        inversion = int(rng.integers(3))
        pitches = [min(_pitches_in([c], root, root + 11)) for c in classes]
        pitches = sorted(pitches[inversion:] + [p + 12 for p in pitches[:inversion]])
        length = shape.beats_per_bar / (1 + int(rng.integers(2)))
        start = shape.ticks(bar * shape.beats_per_bar)
        end = start + shape.ticks(length * shape.gate)
        velocity = shape.velocity(rng, bar, 0, offset=-15)
        for k, pitch in enumerate(pitches):
            notes.append(PassageNote(min(start + k * strum, end - 1), end, pitch, velocity, CHORD))
    return notes


def _trim(notes: list[PassageNote], end_tick: int, margin: int) -> tuple[PassageNote, ...]:
    """Drops notes that would start in the last ``margin`` ticks (keeping the first note)
    and cuts those still sounding at ``end_tick``."""
    kept = [dataclasses.replace(n, end=min(n.end, end_tick)) for n in notes
            if n.start == 0 or n.start < end_tick - margin]
    return tuple(sorted(kept, key=lambda n: (n.start, _CHANNELS[n.part], n.pitch)))


# ----------------------------------------------------------------------------- rendering


def render_passage(passage: Passage, *, sample_rate: int, num_samples: int, soundfont: str, gain: float,
                   fluidsynth: str | None = None) -> tuple[np.ndarray, float]:
    """(float32 [num_samples] mono audio, the gain used): below ``PEAK_LIMIT`` or an error."""
    midi = passage.midi()
    what = f"the passage of GM program {passage.program} with seed {passage.seed}"
    for attempt in range(3):  # the gain is linear, so the second render lands at TARGET_PEAK
        audio = fit_length(render_midi(midi, soundfont=soundfont, gain=gain, sample_rate=sample_rate,
                                       fluidsynth=fluidsynth, what=what,
                                       options=("-o", "synth.dynamic-sample-loading=1")), num_samples)
        peak = float(np.max(np.abs(audio)))
        if peak < SILENCE_PEAK:
            raise DataError(f"{what} renders silent with {soundfont!r}; the soundfont has no samples for "
                            f"this instrument, choose another program or soundfont")
        if peak <= PEAK_LIMIT:
            return audio, gain
        if attempt == 2:
            raise DataError(f"{what} still peaks at {peak:.3f} at gain {gain}; lower --gain")
        gain = float(f"{gain * TARGET_PEAK / peak:.4g}")  # a gain that prints as it is used
    raise AssertionError("unreachable")


@dataclasses.dataclass
class PassagesSummary:
    """What ``render_passages`` wrote."""

    root: str
    files: list[str]  # relative to root, in manifest order
    audio_seconds: float
    reduced: list[str]  # files rendered below ``gain`` to stay under full scale
    peak: float  # the largest |sample| written
    seconds: float  # wall-clock time of the run

    @property
    def speed(self) -> float:
        """Seconds of audio rendered per second."""
        return self.audio_seconds / max(self.seconds, 1e-9)


def render_passages(
    out_dir: str | os.PathLike,
    *,
    programs: Sequence[int] = DEFAULT_PROGRAMS,
    num_passages: int,
    seconds: float = DEFAULT_SECONDS,
    seed: int = 0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    soundfont: str | os.PathLike = DEFAULT_SOUNDFONT,
    gain: float = DEFAULT_GAIN,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PassagesSummary:
    """Writes ``num_passages`` passages per GM program into ``out_dir`` (see the module docstring).

    ``workers`` fluidsynth processes run at once (default: one per CPU). The manifest is
    written after all the audio, so an interrupted run leaves no manifest. ``progress(done,
    total)`` is called after every passage. Raises DataError on bad arguments, a missing
    fluidsynth or soundfont, a non-empty ``out_dir`` or a passage that renders silent.
    """
    programs = _check_programs(programs)
    _check_seconds(seconds)
    _check_args(num_passages, seed, sample_rate, gain)
    fluidsynth, soundfont = find_fluidsynth(), check_soundfont(soundfont)
    root = os.fspath(out_dir)
    _check_empty(root)
    num_samples = round(seconds * sample_rate)
    jobs = [(p, i, passage_seed(seed, p, i)) for p in programs for i in range(num_passages)]
    width = max(4, len(str(num_passages - 1)))
    start = time.perf_counter()

    def render(job) -> dict:
        program, index, job_seed = job
        passage = compose(program, seconds, job_seed)
        audio, used_gain = render_passage(passage, sample_rate=sample_rate, num_samples=num_samples,
                                          soundfont=soundfont, gain=gain, fluidsynth=fluidsynth)
        name = f"{program_folder(program)}/{index:0{width}d}.wav"
        write_audio(os.path.join(root, *name.split("/")), audio, sample_rate)
        return _entry(name, index, passage, used_gain, float(np.max(np.abs(audio))))

    entries = []
    pool = ThreadPoolExecutor(max(1, int(workers or os.cpu_count() or 1)))
    try:
        for done, entry in enumerate(pool.map(render, jobs), 1):
            entries.append(entry)
            if progress is not None:
                progress(done, len(jobs))
    finally:
        # On an error or Ctrl-C, drop the queued passages instead of rendering them all first.
        pool.shutdown(wait=True, cancel_futures=True)
    settings = dict(sample_rate=sample_rate, seconds=seconds, num_samples=num_samples, seed=seed, gain=gain,
                    soundfont=soundfont, fluidsynth=fluidsynth, num_passages=num_passages)
    write_text_atomic(os.path.join(root, MANIFEST), json.dumps(_manifest(programs, entries, settings), indent=1))
    return PassagesSummary(root, [e["file"] for e in entries], len(entries) * num_samples / sample_rate,
                           [e["file"] for e in entries if e["gain"] != gain],
                           max(e["peak"] for e in entries), time.perf_counter() - start)


def passage_seed(seed: int, program: int, index: int) -> int:
    """The seed of one passage: independent streams per (run seed, program, index)."""
    return int(np.random.SeedSequence([seed, program, index]).generate_state(1)[0])


def _entry(name: str, index: int, passage: Passage, gain: float, peak: float) -> dict:
    return {"file": name, "program": passage.program, "index": index, "seed": passage.seed,
            "key": passage.key, "meter": f"{passage.beats_per_bar}/4", "tempo_bpm": round(passage.bpm, 2),
            "gain": gain, "peak": round(peak, 5), "num_notes": len(passage.notes),
            "notes": passage.note_rows()}


def _manifest(programs: list[int], entries: list[dict], settings: dict) -> dict:
    counts = {p: sum(e["program"] == p for e in entries) for p in programs}
    return {
        "sample_rate": settings["sample_rate"], "seconds": settings["seconds"],
        "num_samples": settings["num_samples"], "channels": 1, "subtype": "PCM_16",
        "seed": settings["seed"], "gain": settings["gain"], "peak_limit": PEAK_LIMIT,
        "target_peak": TARGET_PEAK, "soundfont": os.path.abspath(settings["soundfont"]),
        "soundfont_bytes": os.path.getsize(settings["soundfont"]),
        "fluidsynth": fluidsynth_version(settings["fluidsynth"]),
        "passages_per_program": settings["num_passages"],
        "programs": [{"program": p, "name": GM_INSTRUMENTS[p].name, "folder": program_folder(p),
                      "family": GM_INSTRUMENTS[p].family, "source": GM_INSTRUMENTS[p].source,
                      "passages": counts[p]} for p in programs],
        "note_fields": ["start_seconds", "end_seconds", "pitch", "velocity", "part"],
        "passages": entries,
    }


def fluidsynth_version(fluidsynth: str) -> str:
    """fluidsynth's version ("2.3.1"), since renders can differ between versions."""
    done = subprocess.run([fluidsynth, "--version"], capture_output=True, text=True)
    found = re.search(r"version\s+(\S+)", done.stdout)
    return found.group(1) if found else "unknown"


def _check_programs(programs: Sequence[int]) -> list[int]:
    if not isinstance(programs, Sequence) or isinstance(programs, (str, bytes)) or not programs:
        raise DataError(f"give GM programs as a non-empty list of numbers, got {programs!r}")
    for program in programs:
        voice_of(program)
    return sorted({int(p) for p in programs})


def _check_seconds(seconds: float) -> None:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise DataError(f"seconds must be a positive number, got {seconds!r}")


def _check_args(num_passages: int, seed: int, sample_rate: int, gain: float) -> None:
    if isinstance(num_passages, bool) or not isinstance(num_passages, int) or num_passages < 1:
        raise DataError(f"num_passages must be a positive integer, got {num_passages!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    low, high = FLUIDSYNTH_RATES
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not low <= sample_rate <= high:
        raise DataError(f"sample_rate must be an integer in [{low}, {high}] Hz (fluidsynth's range), "
                        f"got {sample_rate!r}")
    if not isinstance(gain, (int, float)) or not 0 < gain <= 10:
        raise DataError(f"gain must be in (0, 10] (fluidsynth's -g range), got {gain!r}")


def _check_empty(root: str) -> None:
    # Old files beside a new manifest would mix two renders in one folder.
    if os.path.isdir(root) and os.listdir(root):
        raise DataError(f"{root!r} is not empty; choose another --out or delete it first")
    make_dir(root)
