"""Notes of a Standard MIDI File, and mixing separately generated notes into one performance.

GANSynth plays a MIDI file note by note (Engel et al. 2019, section 4.4 and the online
supplement; magenta models/gansynth/lib/generate_util.py): every note is generated at its
pitch, shaped by an envelope (a 10 ms linear attack, the note's length, a 0.3 s linear
release), peak-normalised, and added at its start time. Here a note's length is capped at
3 s (the reference's MAX_NOTE_LENGTH, so that the release stays inside a 4 s note), each
note is scaled by velocity / 127, and the mix is scaled to a peak of 0.5 (the reference's
final "/ max / 2"); the reference normalises by the maximum rather than the peak magnitude,
which is taken here as a slip.

The reader takes format 0 and 1 files with any number of tracks, running status, tempo
changes (from any track, applied to all as the format defines) and ticks-per-quarter time
division; SMPTE time division is refused. Percussion (channel 10) has no pitch and is
skipped. A note-on with velocity 0 is a note-off; a note still sounding at the end of its
track ends there.
"""

from __future__ import annotations

import bisect

import dataclasses
import os
import struct

import numpy as np

ATTACK_SECONDS = 0.010
RELEASE_SECONDS = 0.3
MAX_NOTE_SECONDS = 3.0
MIX_PEAK = 0.5
DRUM_CHANNEL = 9  # channel 10, counted from 1
DEFAULT_TEMPO = 500_000  # microseconds per quarter note (120 bpm)


class MidiError(ValueError):
    """A MIDI file that cannot be read as notes."""


@dataclasses.dataclass(frozen=True)
class Note:
    pitch: int
    velocity: int
    start: float  # seconds
    end: float  # seconds


def read_notes(path: str | os.PathLike) -> list[Note]:
    """Every pitched note of a Standard MIDI File, sorted by start time then pitch."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise MidiError(f"cannot read MIDI file {str(path)!r}: {e.strerror or e}") from None
    try:
        return _parse(data)
    except (MidiError, struct.error, IndexError) as e:
        raise MidiError(f"{str(path)!r} is not a readable Standard MIDI File: {e}") from None


def _parse(data: bytes) -> list[Note]:
    if data[:4] != b"MThd":
        raise MidiError("no MThd header")
    length, fmt, num_tracks, division = struct.unpack(">IHHH", data[4:14])
    if fmt not in (0, 1):
        raise MidiError(f"format {fmt} (only formats 0 and 1 are read)")
    if division & 0x8000:
        raise MidiError("SMPTE time division (only ticks per quarter note are read)")
    pos, tracks = 8 + length, []
    for _ in range(num_tracks):
        if data[pos:pos + 4] != b"MTrk":
            raise MidiError(f"expected an MTrk chunk at byte {pos}")
        (size,) = struct.unpack(">I", data[pos + 4:pos + 8])
        tracks.append(_track_events(data[pos + 8:pos + 8 + size]))
        pos += 8 + size
    tempos = sorted((e[0], e[2]) for events in tracks for e in events if e[1] == "tempo")
    seconds = _tick_clock(tempos, division)
    notes = [Note(pitch, velocity, seconds(on), seconds(off))
             for events in tracks for pitch, velocity, on, off in _note_spans(events)]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def _track_events(track: bytes) -> list[tuple]:
    """(absolute tick, "on" | "off" | "tempo", ...) events of one track."""
    events, pos, tick, status = [], 0, 0, None
    while pos < len(track):
        delta, pos = _varlen(track, pos)
        tick += delta
        byte = track[pos]
        if byte == 0xFF:  # meta event
            kind, (length, pos) = track[pos + 1], _varlen(track, pos + 2)
            if kind == 0x51:
                events.append((tick, "tempo", int.from_bytes(track[pos:pos + 3], "big")))
            if kind == 0x2F:
                events.append((tick, "end"))
            pos += length
            continue
        if byte in (0xF0, 0xF7):  # sysex
            length, pos = _varlen(track, pos + 1)
            pos += length
            continue
        if byte & 0x80:
            status, pos = byte, pos + 1
        elif status is None:
            raise MidiError("a data byte before any status byte")
        kind, channel = status & 0xF0, status & 0x0F
        size = 1 if kind in (0xC0, 0xD0) else 2
        args = track[pos:pos + size]
        pos += size
        if kind in (0x80, 0x90) and channel != DRUM_CHANNEL:
            on = kind == 0x90 and args[1] > 0
            events.append((tick, "on" if on else "off", channel, args[0], args[1]))
    return events


def _note_spans(events) -> list[tuple[int, int, int, int]]:
    """(pitch, velocity, start tick, end tick) per note; a note still on at the end of the
    track ends there, and a repeated note-on ends the sounding one first."""
    sounding, spans = {}, []
    end_tick = max((e[0] for e in events), default=0)
    for tick, kind, *rest in events:
        if kind not in ("on", "off"):
            continue
        channel, pitch, velocity = rest
        if (channel, pitch) in sounding:
            start, start_velocity = sounding.pop((channel, pitch))
            spans.append((pitch, start_velocity, start, tick))
        if kind == "on":
            sounding[channel, pitch] = (tick, velocity)
    spans += [(pitch, velocity, start, end_tick)
              for (_, pitch), (start, velocity) in sounding.items()]
    return spans


def _tick_clock(tempos, division: int):
    """tick -> seconds under the tempo map [(tick, microseconds per quarter)]."""
    marks, seconds, last_tick, tempo = [(0, 0.0, DEFAULT_TEMPO)], 0.0, 0, DEFAULT_TEMPO
    for tick, value in sorted(tempos, key=lambda t: t[0]):  # stable: same-tick order kept
        seconds += (tick - last_tick) * tempo / division / 1e6
        last_tick, tempo = tick, value
        marks.append((tick, seconds, tempo))
    mark_ticks = [m[0] for m in marks]

    def to_seconds(tick: int) -> float:
        # The last mark at or before `tick`: a tempo set at tick 0 replaces the default.
        start_tick, start_seconds, tempo = marks[bisect.bisect_right(mark_ticks, tick) - 1]
        return start_seconds + (tick - start_tick) * tempo / division / 1e6

    return to_seconds


def notes_to_midi(notes: list[Note], ticks_per_quarter: int = 480) -> bytes:
    """A format 0 Standard MIDI File of the notes (channel 1, 120 bpm), e.g. to write a
    melody for `audiozoo generate --midi`."""
    seconds_per_tick = DEFAULT_TEMPO / ticks_per_quarter / 1e6
    events = sorted([(round(n.start / seconds_per_tick), 1, 0x90, n.pitch, n.velocity) for n in notes]
                    + [(round(n.end / seconds_per_tick), 0, 0x80, n.pitch, 0) for n in notes])
    track, last = bytearray(), 0
    for tick, _, status, pitch, velocity in events:  # offs sort before ons at the same tick
        track += varlen_bytes(tick - last) + bytes([status, pitch, velocity])
        last = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_quarter)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def varlen_bytes(value: int) -> bytes:
    """An SMF variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _varlen(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[pos]
        value, pos = (value << 7) | (byte & 0x7F), pos + 1
        if not byte & 0x80:
            return value, pos


def envelope(note_seconds: float, sample_rate: int) -> np.ndarray:
    """The reference's amplitude envelope: a linear attack over the first 10 ms, 1 until the
    note ends (at most 3 s), then a linear 0.3 s release."""
    sustain = round(sample_rate * min(note_seconds, MAX_NOTE_SECONDS))
    attack, release = round(sample_rate * ATTACK_SECONDS), round(sample_rate * RELEASE_SECONDS)
    shape = np.ones(sustain + release, np.float32)
    shape[:attack] = np.linspace(0.0, 1.0, attack)
    shape[sustain:] = np.linspace(1.0, 0.0, release)
    return shape


def mix_notes(audio: np.ndarray, notes: list[Note], sample_rate: int) -> np.ndarray:
    """One performance from generated notes audio [len(notes), samples] (each at its note's
    pitch): enveloped, peak-normalised, scaled by velocity / 127, added at the start times;
    the mix has a peak of 0.5. A note longer than the generated audio ends with it."""
    if len(audio) != len(notes):
        raise ValueError(f"{len(audio)} generated notes for {len(notes)} MIDI notes")
    starts = [round(n.start * sample_rate) for n in notes]
    shapes = [envelope(n.end - n.start, sample_rate) for n in notes]
    out = np.zeros(max((s + len(e) for s, e in zip(starts, shapes)), default=0) + sample_rate,
                   np.float32)
    for clip, note, start, shape in zip(audio, notes, starts, shapes):
        shape = shape[:len(clip)]
        shaped = clip[:len(shape)] * shape
        peak = np.max(np.abs(shaped))
        if peak > 0:
            out[start:start + len(shaped)] += shaped / peak * (note.velocity / 127)
    peak = np.max(np.abs(out))
    return out * (MIX_PEAK / peak) if peak > 0 else out
