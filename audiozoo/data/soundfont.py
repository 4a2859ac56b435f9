"""An NSynth-format release rendered from a General MIDI soundfont with fluidsynth.

NSynth (Engel et al. 2017, "Neural Audio Synthesis of Musical Notes with WaveNet
Autoencoders", arXiv 1704.01279, section 3 "The NSynth dataset") is 305,979 notes of
1,006 instruments from commercial sample libraries. Each note is 4 s of mono audio at
16 kHz: the key is held for the first 3 s and released for the last 1 s. Every
instrument is played at every pitch of a standard piano (MIDI 21-108) at five velocities
(25, 50, 75, 100, 127), minus the pitches it cannot produce (65.4 per instrument on
average), and labelled with one of 11 instrument families and one of three sources:
acoustic or electronic for instruments recorded from acoustic or electronic instruments,
synthetic for synthesized ones.

This module makes a release with the same layout, fields and note recipe from a GM
soundfont, so NSynth configs (GANSynth's acoustic notes at pitch 24-84 among them) train
and evaluate on recorded instrument samples where NSynth cannot be downloaded; the same
configs read the real release unchanged. Per (GM program, pitch, velocity) it writes a
one-note Standard MIDI File (note on at 0 s, off at 3 s, end at 4 s), renders it with
the ``fluidsynth`` command line (reverb and chorus off, so the sound is the soundfont's
samples and envelopes only), averages the channels to mono, drops fluidsynth's
one-block start latency, cuts or pads to exactly 64,000 samples and writes a 16-bit
WAV. A note that renders silent (the soundfont has no sample for that key) is skipped
and counted. Levels are fluidsynth's at one fixed gain, not normalised per note, so
velocity still shows in the level; a note reaching full scale stops the run rather than
being clipped or scaled.

Labels: ``GM_INSTRUMENTS`` maps the GM programs that have an NSynth family to a
family and a source, "acoustic" only where the GM instrument is an acoustic one.
``instrument`` is the GM program number; ``instrument_str`` numbers the programs of one
family and source in program order, so a program has the same name in every release.
The NSynth qualities (bright, dark, ...) come from listening and heuristics this renderer
does not do: ``qualities`` is all zeros and ``qualities_str`` empty. Instruments (programs),
not notes, are split into train / valid / test, as in NSynth.

The Standard MIDI File writer (``smf_bytes``) and the fluidsynth render (``render_midi``)
are shared with ``audiozoo.data.passages``, which renders multi-note passages the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from audiozoo.audio.io import write_audio
from audiozoo.audio.midi import varlen_bytes
from audiozoo.data.base import DataError
from audiozoo.data.nsynth import (FAMILIES, NUM_SAMPLES, QUALITIES, SAMPLE_RATE, SOURCES, SPLITS,
                                   check_pitch_range)
from audiozoo.files import make_dir, write_text_atomic

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"  # Debian package timgm6mb-soundfont
DEFAULT_VELOCITIES = (75, 100, 127)
DEFAULT_PITCH_RANGE = (24, 84)  # GANSynth's range
# fluidsynth's master gain (its default is 0.2). At 1.0 the loudest TimGM6mb notes stay
# below full scale with headroom (the measured peak is in experiments/gansynth/README.md).
DEFAULT_GAIN = 1.0
HOLD_SECONDS = 3.0
SILENCE_PEAK = 1e-4  # -80 dBFS, about 3 steps of 16-bit audio: no sound for this key
SPLIT_FRACTIONS = {"valid": 0.1, "test": 0.1}  # of the instruments; train gets the rest

# The SMF clock: 480 ticks per quarter note at 120 bpm (500,000 us per quarter) is 960
# ticks per second, so 3 s and 4 s are whole numbers of ticks.
TICKS_PER_QUARTER = 480
TEMPO_US_PER_QUARTER = 500_000
TICKS_PER_SECOND = TICKS_PER_QUARTER * 1_000_000 // TEMPO_US_PER_QUARTER

# fluidsynth renders in blocks of 64 frames and starts a note at the second block.
_LATENCY = 64
_SECONDS = NUM_SAMPLES // SAMPLE_RATE

INSTALL_FLUIDSYNTH = "install it with apt-get install fluidsynth"
INSTALL_SOUNDFONT = "install one with apt-get install timgm6mb-soundfont, or pass another GM .sf2"


@dataclasses.dataclass(frozen=True)
class GMInstrument:
    """One GM program with its NSynth labels."""

    program: int  # 0-127, as sent in the MIDI program change (GM numbers are 1-128)
    name: str  # the GM Level 1 name
    family: str
    source: str
    index: int  # among the programs of the same family and source, in program order

    @property
    def family_id(self) -> int:
        return FAMILIES.index(self.family)

    @property
    def source_id(self) -> int:
        return SOURCES.index(self.source)

    @property
    def instrument_str(self) -> str:
        return f"{self.family}_{self.source}_{self.index:03d}"


# GM programs with an NSynth family, as (first program, names, family, source). Sampled
# electric and electro-mechanical instruments (electric pianos and guitars, tonewheel
# organs, electric basses) are "electronic", synthesizer patches "synthetic". Choices:
# GM's chromatic percussion (celesta to dulcimer), kalimba, tinkle bell and steel drums
# are struck and pitched: mallet. Pipe and reed organs are acoustic organs. Free reeds
# (accordions, harmonica), bagpipe and shanai are reed; plucked strings (sitar, banjo,
# shamisen, koto) are guitar; harp and fiddle are string; pipes (piccolo to ocarina,
# whistle included) are flute. Left out, having no NSynth family: timpani (47),
# orchestra hit (55), synth pads (88-95) and effects (96-103), unpitched or drum-like
# percussion (113, 115-119) and sound effects (120-127).
_GM_TABLE: tuple[tuple[int, tuple[str, ...], str, str], ...] = (
    (0, ("Acoustic Grand Piano", "Bright Acoustic Piano"), "keyboard", "acoustic"),
    (2, ("Electric Grand Piano",), "keyboard", "electronic"),
    (3, ("Honky-tonk Piano",), "keyboard", "acoustic"),
    (4, ("Electric Piano 1", "Electric Piano 2"), "keyboard", "electronic"),
    (6, ("Harpsichord",), "keyboard", "acoustic"),
    (7, ("Clavi",), "keyboard", "electronic"),
    (8, ("Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone",
         "Tubular Bells", "Dulcimer"), "mallet", "acoustic"),
    (16, ("Drawbar Organ", "Percussive Organ", "Rock Organ"), "organ", "electronic"),
    (19, ("Church Organ", "Reed Organ"), "organ", "acoustic"),
    (21, ("Accordion", "Harmonica", "Tango Accordion"), "reed", "acoustic"),
    (24, ("Acoustic Guitar (nylon)", "Acoustic Guitar (steel)"), "guitar", "acoustic"),
    (26, ("Electric Guitar (jazz)", "Electric Guitar (clean)", "Electric Guitar (muted)",
          "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics"), "guitar", "electronic"),
    (32, ("Acoustic Bass",), "bass", "acoustic"),
    (33, ("Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
          "Slap Bass 2"), "bass", "electronic"),
    (38, ("Synth Bass 1", "Synth Bass 2"), "bass", "synthetic"),
    (40, ("Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings",
          "Orchestral Harp"), "string", "acoustic"),
    (48, ("String Ensemble 1", "String Ensemble 2"), "string", "acoustic"),
    (50, ("Synth Strings 1", "Synth Strings 2"), "string", "synthetic"),
    (52, ("Choir Aahs", "Voice Oohs"), "vocal", "acoustic"),
    (54, ("Synth Voice",), "vocal", "synthetic"),
    (56, ("Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section"),
     "brass", "acoustic"),
    (62, ("Synth Brass 1", "Synth Brass 2"), "brass", "synthetic"),
    (64, ("Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn",
          "Bassoon", "Clarinet"), "reed", "acoustic"),
    (72, ("Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle",
          "Ocarina"), "flute", "acoustic"),
    (80, ("Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
          "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)"),
     "synth_lead", "synthetic"),
    (104, ("Sitar", "Banjo", "Shamisen", "Koto"), "guitar", "acoustic"),
    (108, ("Kalimba",), "mallet", "acoustic"),
    (109, ("Bag pipe",), "reed", "acoustic"),
    (110, ("Fiddle",), "string", "acoustic"),
    (111, ("Shanai",), "reed", "acoustic"),
    (112, ("Tinkle Bell",), "mallet", "acoustic"),
    (114, ("Steel Drums",), "mallet", "acoustic"),
)


def _gm_instruments() -> dict[int, GMInstrument]:
    rows = sorted((first + i, name, family, source)
                  for first, names, family, source in _GM_TABLE for i, name in enumerate(names))
    counts: dict[tuple[str, str], int] = {}
    table = {}
    for program, name, family, source in rows:
        index = counts.get((family, source), 0)
        counts[(family, source)] = index + 1
        table[program] = GMInstrument(program, name, family, source, index)
    return table


GM_INSTRUMENTS: dict[int, GMInstrument] = _gm_instruments()


def select_programs(specs: Iterable[str | int]) -> list[int]:
    """The mapped GM programs named by ``specs``, sorted and unique.

    Each spec is a program (``40``), a range (``40-47``), a source or family name
    (``acoustic``, ``guitar``) or ``all``; names and ranges keep only mapped programs,
    a single unmapped program is an error.
    """
    chosen: set[int] = set()
    for spec in specs:
        chosen |= _programs_of(str(spec).strip())
    if not chosen:
        raise DataError(f"--programs {list(specs)!r} selects no mapped GM program; {_program_help()}")
    return sorted(chosen)


def _programs_of(spec: str) -> set[int]:
    mapped = GM_INSTRUMENTS
    if spec == "all":
        return set(mapped)
    if spec in SOURCES:
        return {p for p, inst in mapped.items() if inst.source == spec}
    if spec in FAMILIES:
        return {p for p, inst in mapped.items() if inst.family == spec}
    low, _, high = spec.partition("-")
    if not (low.isdigit() and (high.isdigit() or not high)):
        raise DataError(f"cannot read program spec {spec!r}; {_program_help()}")
    low_p, high_p = int(low), int(high or low)
    if not 0 <= low_p <= high_p <= 127:
        raise DataError(f"program spec {spec!r} is outside GM programs 0-127; {_program_help()}")
    if not high and low_p not in mapped:
        raise DataError(f"GM program {low_p} has no NSynth family in GM_INSTRUMENTS "
                        f"(audiozoo/data/soundfont.py); {_program_help()}")
    return {p for p in range(low_p, high_p + 1) if p in mapped}


def _program_help() -> str:
    return ("give mapped programs (0-127, see GM_INSTRUMENTS), ranges like 40-47, 'all', a source "
            f"({', '.join(SOURCES)}) or a family ({', '.join(FAMILIES)})")


# ----------------------------------------------------------------------------- MIDI


def note_midi(program: int, pitch: int, velocity: int, *, hold_seconds: float = HOLD_SECONDS,
              total_seconds: float = _SECONDS) -> bytes:
    """A format-0 Standard MIDI File playing one note on channel 1.

    Tempo, program change and note on at tick 0, note off after ``hold_seconds``, end of
    track at ``total_seconds``, so the release sounds until the end of the file.
    """
    _check_midi_value("program", program)
    _check_midi_value("pitch", pitch)
    _check_midi_value("velocity", velocity, low=1)  # velocity 0 means note off
    hold = round(hold_seconds * TICKS_PER_SECOND)
    rest = round(total_seconds * TICKS_PER_SECOND) - hold
    if hold <= 0 or rest < 0:
        raise DataError(f"a note needs 0 < hold_seconds ({hold_seconds}) <= total_seconds ({total_seconds})")
    events = [(0, bytes([0xC0, program])), (0, bytes([0x90, pitch, velocity])),
              (hold, bytes([0x80, pitch, 0]))]
    return smf_bytes(events, hold + rest)


def smf_bytes(events: Sequence[tuple[int, bytes]], end_tick: int, *,
              tempo_us_per_quarter: int = TEMPO_US_PER_QUARTER) -> bytes:
    """A format-0 Standard MIDI File (one track, ``TICKS_PER_QUARTER`` ticks per quarter).

    The track holds the tempo at tick 0, then ``events``, (absolute tick, channel message
    bytes) pairs written in the order given, which must not go back in time, then the end
    of track at ``end_tick``. Every message has its status byte (no running status).
    """
    body, last = [varlen_bytes(0) + b"\xff\x51\x03" + tempo_us_per_quarter.to_bytes(3, "big")], 0
    for tick, message in events:
        if tick < last:
            raise DataError(f"MIDI events go back in time: tick {tick} after tick {last}")
        body.append(varlen_bytes(tick - last) + message)
        last = tick
    if end_tick < last:
        raise DataError(f"the end of track (tick {end_tick}) comes before the last event (tick {last})")
    body.append(varlen_bytes(end_tick - last) + b"\xff\x2f\x00")
    track = b"".join(body)
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def _check_midi_value(name: str, value: int, low: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= 127:
        raise DataError(f"MIDI {name} must be an integer in [{low}, 127], got {value!r}")


# ----------------------------------------------------------------------------- rendering


def find_fluidsynth() -> str:
    """The path of the fluidsynth program, or a DataError saying how to install it."""
    path = shutil.which("fluidsynth")
    if path is None:
        raise DataError(f"the fluidsynth program is not on PATH; {INSTALL_FLUIDSYNTH}")
    return path


def check_soundfont(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"soundfont {path!r} does not exist; {INSTALL_SOUNDFONT}")
    return path


def render_note(program: int, pitch: int, velocity: int, *, soundfont: str = DEFAULT_SOUNDFONT,
                gain: float = DEFAULT_GAIN, fluidsynth: str | None = None) -> np.ndarray:
    """One note as float32 [64000] mono at 16 kHz, at fluidsynth's level (not normalised)."""
    midi = note_midi(program, pitch, velocity)
    audio = render_midi(midi, soundfont=soundfont, gain=gain, sample_rate=SAMPLE_RATE, fluidsynth=fluidsynth,
                        what=f"program {program} pitch {pitch} velocity {velocity}")
    return fit_length(audio, NUM_SAMPLES)


def render_midi(midi: bytes, *, soundfont: str, gain: float, sample_rate: int, fluidsynth: str | None = None,
                what: str = "a MIDI file", options: Sequence[str] = ()) -> np.ndarray:
    """fluidsynth's render of a Standard MIDI File: float32 mono at ``sample_rate``.

    Reverb and chorus are off, so the sound is the soundfont's samples and envelopes only;
    the channels are averaged and fluidsynth's start latency is dropped. The level is
    fluidsynth's at ``gain``, not normalised, and may exceed full scale: the caller checks
    the peak. ``options`` are extra fluidsynth arguments (``-o name=value`` settings);
    ``what`` names the file in errors.
    """
    fluidsynth = fluidsynth or find_fluidsynth()
    with tempfile.TemporaryDirectory(prefix="audiozoo-midi-") as tmp:
        midi_path, wav = os.path.join(tmp, "in.mid"), os.path.join(tmp, "out.wav")
        Path(midi_path).write_bytes(midi)
        # -O float: fluidsynth neither clips nor dithers, so the caller's peak check sees
        # the true level.
        command = [fluidsynth, "-n", "-i", "-q", "-R", "0", "-C", "0", *options, "-g", str(gain),
                   "-r", str(sample_rate), "-T", "wav", "-O", "float", "-F", wav, soundfont, midi_path]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.isfile(wav):
            raise DataError(f"fluidsynth failed on {what} (exit {done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-500:]}; "
                            f"check that {soundfont!r} is a valid .sf2 file")
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise DataError(f"fluidsynth wrote {rate} Hz audio for -r {sample_rate}; check the fluidsynth version")
    return _drop_latency(audio.mean(axis=1))


def _drop_latency(audio: np.ndarray) -> np.ndarray:
    """Starts the sound at sample 0 as in NSynth, removing only a block that is all zeros."""
    if len(audio) > _LATENCY and not np.any(audio[:_LATENCY]):
        return audio[_LATENCY:]
    return audio


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """``audio`` cut or zero-padded to exactly ``num_samples`` (float32)."""
    out = np.zeros(num_samples, np.float32)
    out[: min(len(audio), num_samples)] = audio[:num_samples]
    return out


# ----------------------------------------------------------------------------- release


def note_str(instrument: GMInstrument, pitch: int, velocity: int) -> str:
    """NSynth's note name, e.g. "guitar_acoustic_000-060-100"."""
    return f"{instrument.instrument_str}-{pitch:03d}-{velocity:03d}"


def note_entry(instrument: GMInstrument, pitch: int, velocity: int) -> dict:
    """An examples.json entry with every field of the NSynth release."""
    return {
        # NSynth's "note" is a unique integer id; this one is unique per (program, pitch, velocity).
        "note": (instrument.program * 128 + pitch) * 128 + velocity,
        "note_str": note_str(instrument, pitch, velocity),
        "instrument": instrument.program,
        "instrument_str": instrument.instrument_str,
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": SAMPLE_RATE,
        "instrument_family": instrument.family_id,
        "instrument_family_str": instrument.family,
        "instrument_source": instrument.source_id,
        "instrument_source_str": instrument.source,
        "qualities": [0] * len(QUALITIES),  # not annotated
        "qualities_str": [],
    }


def split_programs(programs: Sequence[int], seed: int = 0,
                   fractions: dict[str, float] = SPLIT_FRACTIONS) -> dict[int, str]:
    """Assigns each program to one split, deterministically for a seed and program set.

    The programs are ordered by family and source (randomly within each), and the
    held-out ones are taken at evenly spaced positions from a random start, so valid and
    test spread over the families like the train split.
    """
    programs = sorted({int(p) for p in programs})
    unknown = [p for p in programs if p not in GM_INSTRUMENTS]
    if unknown:
        raise DataError(f"GM programs {unknown} have no NSynth family; {_program_help()}")
    rng = np.random.default_rng(seed)
    keys = rng.random(len(programs))
    order = sorted(range(len(programs)), key=lambda i: (
        GM_INSTRUMENTS[programs[i]].family_id, GM_INSTRUMENTS[programs[i]].source_id, keys[i]))
    held = [(split, _held_count(len(programs), fractions[split])) for split in ("valid", "test")]
    total_held = sum(n for _, n in held)
    splits = {p: "train" for p in programs}
    if total_held:
        start = rng.random()
        positions = [int((j + start) * len(programs) / total_held) for j in range(total_held)]
        labels = [split for split, n in held for _ in range(n)]
        rng.shuffle(labels)
        for position, split in zip(positions, labels):
            splits[programs[order[position]]] = split
    return splits


def _held_count(num_programs: int, fraction: float) -> int:
    # From three instruments on, valid and test get at least one each; fewer all train.
    if num_programs < 3 or fraction <= 0:
        return 0
    return max(1, round(num_programs * fraction))


@dataclasses.dataclass
class ReleaseSummary:
    """What ``render_release`` wrote: counts, skipped notes, the loudest note and the time."""

    root: str
    counts: dict[tuple[str, str, str], int]  # (split, family, source) -> notes written
    programs: dict[str, list[int]]  # split -> GM programs
    silent: list[str]  # note_strs skipped because they rendered silent
    peak: float  # the largest |sample| written
    peak_note: str
    seconds: float

    def split_counts(self) -> dict[str, int]:
        return {split: sum(n for (s, _, _), n in self.counts.items() if s == split) for split in SPLITS}


def render_release(
    root: str | os.PathLike,
    programs: Sequence[int],
    *,
    pitch_range: Sequence[int] = DEFAULT_PITCH_RANGE,
    velocities: Sequence[int] = DEFAULT_VELOCITIES,
    soundfont: str | os.PathLike = DEFAULT_SOUNDFONT,
    gain: float = DEFAULT_GAIN,
    seed: int = 0,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> ReleaseSummary:
    """Renders ``root/nsynth-{train,valid,test}/`` (examples.json + audio/*.wav).

    One note per (program, pitch in ``pitch_range`` inclusive, velocity), each split's
    examples.json written only after all its audio, so an interrupted run never lists
    a missing file. ``workers`` fluidsynth processes run at once. ``progress(done,
    total)`` is called after every note.
    """
    fluidsynth, soundfont = find_fluidsynth(), check_soundfont(soundfont)
    root = os.fspath(root)
    _check_empty_root(root)
    pitches = _pitches(pitch_range)
    for velocity in velocities:
        _check_midi_value("velocity", velocity, low=1)
    splits = split_programs(programs, seed)
    notes = [(GM_INSTRUMENTS[p], pitch, int(v)) for p in sorted(splits) for pitch in pitches
             for v in sorted(set(velocities))]
    start = time.perf_counter()

    def render(note) -> float | None:
        instrument, pitch, velocity = note
        audio = render_note(instrument.program, pitch, velocity, soundfont=soundfont, gain=gain,
                            fluidsynth=fluidsynth)
        peak = float(np.max(np.abs(audio)))
        name = note_str(instrument, pitch, velocity)
        if peak < SILENCE_PEAK:
            return None
        if peak >= 1.0:
            raise DataError(f"note {name} (GM program {instrument.program}) peaks at {peak:.3f} at gain "
                            f"{gain}, which would clip; rerun with --gain {gain * 0.9 / peak:.2f}")
        path = os.path.join(root, f"nsynth-{splits[instrument.program]}", "audio", name + ".wav")
        write_audio(path, audio, SAMPLE_RATE)
        return peak

    entries: dict[str, dict] = {split: {} for split in SPLITS}
    counts: dict[tuple[str, str, str], int] = {}
    silent, best = [], (0.0, "")
    pool = ThreadPoolExecutor(max(1, int(workers)))
    try:
        for done, (note, peak) in enumerate(zip(notes, pool.map(render, notes)), 1):
            instrument, pitch, velocity = note
            name, split = note_str(*note), splits[instrument.program]
            if peak is None:
                silent.append(name)
            else:
                entries[split][name] = note_entry(*note)
                key = (split, instrument.family, instrument.source)
                counts[key] = counts.get(key, 0) + 1
                best = max(best, (peak, name))
            if progress is not None:
                progress(done, len(notes))
    finally:
        # On an error or Ctrl-C, drop the queued notes instead of rendering them all first.
        pool.shutdown(wait=True, cancel_futures=True)
    for split, split_entries in entries.items():
        if split_entries:  # no folder for an empty split: the reader would reject it anyway
            _write_examples(root, split, split_entries)
    programs_by_split = {s: [p for p in sorted(splits) if splits[p] == s] for s in SPLITS}
    return ReleaseSummary(root, counts, programs_by_split, silent, best[0], best[1],
                          time.perf_counter() - start)


def _pitches(pitch_range: Sequence[int]) -> list[int]:
    low, high = check_pitch_range(pitch_range)
    return list(range(low, high + 1))


def _check_empty_root(root: str) -> None:
    # Old audio next to a new examples.json would mix two renders in one folder.
    for split in SPLITS:
        split_dir = os.path.join(root, f"nsynth-{split}")
        if os.path.isdir(split_dir) and os.listdir(split_dir):
            raise DataError(f"{split_dir!r} already holds a release; choose another --out or delete it first")


def _write_examples(root: str, split: str, entries: dict[str, dict]) -> None:
    split_dir = make_dir(os.path.join(root, f"nsynth-{split}"))
    text = json.dumps({name: entries[name] for name in sorted(entries)})
    write_text_atomic(split_dir / "examples.json", text)
