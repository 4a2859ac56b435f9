"""Tests for audiozoo.data.soundfont: MIDI bytes, GM mapping, split, JSON, and renders read back
with the NSynth reader (the fluidsynth ones skip where fluidsynth or the soundfont is missing)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from audiozoo.audio.io import audio_info, read_audio
from audiozoo.data import DataError, NSynth
from audiozoo.audio.midi import _varlen
from audiozoo.data import soundfont as sfmod
from audiozoo.data.nsynth import FAMILIES, GANSYNTH_FILTER, NUM_SAMPLES, QUALITIES, SAMPLE_RATE, SOURCES
from audiozoo.data.soundfont import (
    DEFAULT_SOUNDFONT,
    GM_INSTRUMENTS,
    HOLD_SECONDS,
    TICKS_PER_SECOND,
    note_entry,
    note_midi,
    note_str,
    render_note,
    render_release,
    select_programs,
    split_programs,
)

REPO = Path(__file__).resolve().parents[1]
HAVE_RENDERER = shutil.which("fluidsynth") is not None and os.path.isfile(DEFAULT_SOUNDFONT)
needs_fluidsynth = pytest.mark.skipif(
    not HAVE_RENDERER, reason="needs fluidsynth and the TimGM6mb soundfont "
                              "(apt-get install fluidsynth timgm6mb-soundfont)")

# Every field of an entry in the official examples.json.
NSYNTH_FIELDS = {"note", "note_str", "instrument", "instrument_str", "pitch", "velocity", "sample_rate",
                 "instrument_family", "instrument_family_str", "instrument_source", "instrument_source_str",
                 "qualities", "qualities_str"}


# ----------------------------------------------------------------------------- MIDI


def _parse_smf(data: bytes) -> tuple[tuple[int, int, int], list[tuple[int, bytes]]]:
    """(format, tracks, division) and the one track's (absolute tick, event bytes)."""
    assert data[:4] == b"MThd"
    length, fmt, ntracks, division = struct.unpack(">IHHH", data[4:14])
    assert length == 6
    assert data[14:18] == b"MTrk"
    (track_length,) = struct.unpack(">I", data[18:22])
    track = data[22:]
    assert len(track) == track_length, "track length field does not match the bytes after it"
    events, pos, tick = [], 0, 0
    while pos < len(track):
        delta, pos = _varlen(track, pos)
        tick += delta
        status = track[pos]
        if status == 0xFF:  # meta: type, length, data
            size, end = _varlen(track, pos + 2)
            events.append((tick, track[pos:end + size]))
            pos = end + size
        else:
            assert status & 0x80, "running status is not used, so every event has a status byte"
            size = 2 if status & 0xF0 == 0xC0 else 3
            events.append((tick, track[pos:pos + size]))
            pos += size
    return (fmt, ntracks, division), events


def test_midi_is_one_note_held_three_seconds():
    header, events = _parse_smf(note_midi(40, 60, 100))
    assert header == (0, 1, 480)
    tempo = int.from_bytes(events[0][1][3:], "big")
    ticks_per_second = 480 * 1_000_000 / tempo
    assert ticks_per_second == TICKS_PER_SECOND == 960
    assert events == [
        (0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),
        (0, bytes([0xC0, 40])),                       # program change, channel 1
        (0, bytes([0x90, 60, 100])),                  # note on
        (int(HOLD_SECONDS * ticks_per_second), bytes([0x80, 60, 0])),  # note off at 3 s
        (int(4 * ticks_per_second), b"\xff\x2f\x00"),  # end of track at 4 s
    ]


@pytest.mark.parametrize("args, match", [((0, 60, 0), r"velocity.*\[1, 127\]"),
                                         ((0, 128, 100), "pitch"), ((-1, 60, 100), "program")])
def test_midi_rejects_bad_values(args, match):
    with pytest.raises(DataError, match=match):
        note_midi(*args)


# ----------------------------------------------------------------------------- GM mapping


def test_gm_mapping_is_complete_and_valid():
    assert len(GM_INSTRUMENTS) == 96
    for program, inst in GM_INSTRUMENTS.items():
        assert inst.program == program and 0 <= program <= 127 and inst.name
        assert FAMILIES[inst.family_id] == inst.family and SOURCES[inst.source_id] == inst.source
    names = [inst.instrument_str for inst in GM_INSTRUMENTS.values()]
    assert len(set(names)) == len(names)
    groups: dict[tuple[str, str], list[int]] = {}
    for inst in GM_INSTRUMENTS.values():  # indices count 0, 1, ... in program order per group
        groups.setdefault((inst.family, inst.source), []).append(inst.index)
    assert all(indices == list(range(len(indices))) for indices in groups.values())


@pytest.mark.parametrize("program, family, source", [
    (0, "keyboard", "acoustic"), (4, "keyboard", "electronic"), (8, "mallet", "acoustic"),
    (16, "organ", "electronic"), (19, "organ", "acoustic"), (24, "guitar", "acoustic"),
    (30, "guitar", "electronic"), (32, "bass", "acoustic"), (38, "bass", "synthetic"),
    (48, "string", "acoustic"), (50, "string", "synthetic"), (52, "vocal", "acoustic"),
    (56, "brass", "acoustic"), (71, "reed", "acoustic"), (73, "flute", "acoustic"),
    (81, "synth_lead", "synthetic"),
])
def test_gm_mapping_examples(program, family, source):
    inst = GM_INSTRUMENTS[program]
    assert (inst.family, inst.source) == (family, source)


def test_select_programs():
    acoustic = select_programs(["acoustic"])
    assert len(acoustic) == 63 and all(GM_INSTRUMENTS[p].source == "acoustic" for p in acoustic)
    assert select_programs(["all"]) == sorted(GM_INSTRUMENTS)
    assert select_programs(["40-47", "0", 0]) == [0, 40, 41, 42, 43, 44, 45, 46]  # 47 has no family
    assert select_programs(["brass"]) == list(range(56, 64))
    for spec, match in [("47", "program 47 has no NSynth family"), ("piano", "cannot read program spec"),
                        ("120-127", "selects no mapped GM program"), ("100-200", "outside GM programs")]:
        with pytest.raises(DataError, match=match):
            select_programs([spec])


# ----------------------------------------------------------------------------- split and JSON


def test_split_is_by_instrument_deterministic_and_spread():
    programs = select_programs(["acoustic"])
    splits = split_programs(programs, seed=0)
    assert sorted(splits) == programs  # each program in exactly one split
    by_split = {s: {p for p in programs if splits[p] == s} for s in ("train", "valid", "test")}
    assert [len(by_split[s]) for s in ("train", "valid", "test")] == [51, 6, 6]
    held = by_split["valid"] | by_split["test"]
    assert len({GM_INSTRUMENTS[p].family for p in held}) >= 5  # not all from one family
    assert split_programs(programs, seed=0) == splits
    assert split_programs(list(reversed(programs)), seed=0) == splits
    assert split_programs(programs, seed=1) != splits
    assert set(split_programs([0, 24], seed=0).values()) == {"train"}  # too few to hold out


def test_note_entry_has_every_nsynth_field():
    inst = GM_INSTRUMENTS[25]
    entry = note_entry(inst, 60, 100)
    assert set(entry) == NSYNTH_FIELDS
    assert entry["note_str"] == note_str(inst, 60, 100) == "guitar_acoustic_001-060-100"
    assert (entry["instrument"], entry["instrument_str"]) == (25, "guitar_acoustic_001")
    assert (entry["pitch"], entry["velocity"], entry["sample_rate"]) == (60, 100, SAMPLE_RATE)
    assert (entry["instrument_family"], entry["instrument_family_str"]) == (FAMILIES.index("guitar"), "guitar")
    assert (entry["instrument_source"], entry["instrument_source_str"]) == (0, "acoustic")
    assert entry["qualities"] == [0] * len(QUALITIES) and entry["qualities_str"] == []
    ids = {note_entry(GM_INSTRUMENTS[p], pitch, v)["note"]
           for p in (0, 114) for pitch in (0, 127) for v in (1, 127)}
    assert len(ids) == 8  # unique per (program, pitch, velocity)


# ----------------------------------------------------------------------------- release (fake synth)


def _fake_synth(monkeypatch, tmp_path, *, silent_pitch=None, loud=1.0):
    """Replaces fluidsynth by a sine per note, silent at ``silent_pitch``, scaled by ``loud``."""
    font = tmp_path / "fake.sf2"
    font.write_bytes(b"sfbk")

    def fake_render(program, pitch, velocity, **_):
        t = np.arange(NUM_SAMPLES) / SAMPLE_RATE
        level = 0.0 if pitch == silent_pitch else loud * velocity / 254
        return (level * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t)).astype(np.float32)

    monkeypatch.setattr(sfmod, "find_fluidsynth", lambda: "fluidsynth")
    monkeypatch.setattr(sfmod, "render_note", fake_render)
    return str(font)


def test_release_layout_json_and_filters_with_a_fake_synth(tmp_path, monkeypatch):
    font = _fake_synth(monkeypatch, tmp_path, silent_pitch=30)
    root = tmp_path / "release"
    programs = [0, 1, 4, 24, 80]
    summary = render_release(root, programs, pitch_range=(29, 31), velocities=(100, 127), soundfont=font)
    splits = split_programs(programs, seed=0)
    assert summary.programs == {s: [p for p in programs if splits[p] == s] for s in ("train", "valid", "test")}
    assert len(summary.silent) == 5 * 2 and all("-030-" in name for name in summary.silent)
    assert sum(summary.split_counts().values()) == 5 * 2 * 2
    assert summary.peak == pytest.approx(127 / 254, abs=1e-3) and summary.peak_note.endswith("-127")
    for split, split_programs_ in summary.programs.items():
        ds = NSynth(root, split, check=True)
        assert len(ds) == 4 * len(split_programs_) == summary.split_counts()[split]
        assert set(ds.metadata["instrument"].tolist()) == set(split_programs_)
        entries = json.loads((root / f"nsynth-{split}" / "examples.json").read_text())
        assert all(set(e) == NSYNTH_FIELDS and e["note_str"] == name for name, e in entries.items())
    assert summary.programs["train"] == [1, 4, 24]  # two acoustic, one electronic
    gansynth = NSynth.gansynth(root, "train")
    assert len(gansynth) == 4 * 2 and set(gansynth.metadata["instrument"].tolist()) == {1, 24}
    with pytest.raises(DataError, match="already holds a release"):
        render_release(root, programs, soundfont=font)


def test_release_stops_before_clipping(tmp_path, monkeypatch):
    font = _fake_synth(monkeypatch, tmp_path, loud=2.5)
    with pytest.raises(DataError, match=r"peaks at 1\.250 at gain 1\.0, which would clip; rerun with --gain 0\.72"):
        render_release(tmp_path / "r", [0], pitch_range=(60, 60), velocities=(127,), soundfont=font)
    assert not (tmp_path / "r" / "nsynth-train" / "examples.json").exists()


def test_missing_tools_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="timgm6mb-soundfont"):
        sfmod.check_soundfont(tmp_path / "none.sf2")
    monkeypatch.setattr(sfmod.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install fluidsynth"):
        render_release(tmp_path, [0])


# ----------------------------------------------------------------------------- fluidsynth


@needs_fluidsynth
def test_render_and_read_back_with_the_nsynth_reader(tmp_path):
    programs = [0, 4, 24, 80]  # keyboard acoustic and electronic, guitar acoustic, synth lead
    root = tmp_path / "release"
    summary = render_release(root, programs, pitch_range=(59, 60), velocities=(100,), workers=2)
    assert summary.silent == [] and 0.01 < summary.peak < 1.0
    assert summary.programs == {"train": [4, 24], "valid": [80], "test": [0]}
    ds = NSynth(root, "train", check=True)
    assert len(ds) == 4 and len(NSynth(root, "valid")) == len(NSynth(root, "test")) == 2
    for i in range(len(ds)):
        info = audio_info(ds.path(i))
        assert (info.frames, info.sample_rate, info.channels) == (NUM_SAMPLES, SAMPLE_RATE, 1)
        ex = ds[i]
        assert ex["audio"].shape == (NUM_SAMPLES,) and int(ex["pitch"]) in (59, 60)
        assert int(ex["velocity"]) == 100 and ex["note_str"].endswith(f"-{int(ex['pitch']):03d}-100")
        onset = int(np.argmax(np.abs(ex["audio"]) > 1e-3))
        assert onset < 400, "the note should start at the beginning of the file, as in NSynth"
    acoustic = NSynth(root, "train", sources=("acoustic",), pitch_range=(60, 60))
    assert acoustic.note_strs == ("guitar_acoustic_000-060-100",)
    gansynth = NSynth.gansynth(root, "train")
    assert gansynth.note_strs == NSynth(root, "train", **GANSYNTH_FILTER).note_strs
    assert gansynth.note_strs == ("guitar_acoustic_000-059-100", "guitar_acoustic_000-060-100")
    with pytest.raises(DataError, match="sources filter"):  # the synth lead is the only valid instrument
        NSynth.gansynth(root, "valid")


@needs_fluidsynth
def test_note_is_held_then_released_and_silent_keys_render_silent():
    audio = render_note(0, 60, 127)
    assert audio.dtype == np.float32 and audio.shape == (NUM_SAMPLES,)
    held = np.abs(audio[int(2.5 * SAMPLE_RATE):3 * SAMPLE_RATE]).max()
    released = np.abs(audio[int(3.8 * SAMPLE_RATE):]).max()
    assert held > 10 * released, "the note should decay after the note off at 3 s"
    # TimGM6mb's Baritone Sax has no sample at the top of GANSynth's range.
    assert not np.any(render_note(67, 84, 127))


@needs_fluidsynth
def test_script_prints_the_summary(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "make_soundfont_nsynth", REPO / "experiments" / "gansynth" / "make_soundfont_nsynth.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "sf"
    assert script.main(["--out", str(out), "--programs", "0", "--pitch-range", "60", "61",
                        "--velocities", "100"]) == 0
    printed = capsys.readouterr().out
    assert "| train | 1 | 2 |" in printed and "| keyboard | acoustic | 2 | 0 | 0 |" in printed
    saved = json.loads((out / "render_summary.json").read_text())
    assert saved["notes"] == {"train": 2, "valid": 0, "test": 0} and saved["silent"] == []
    assert len(NSynth.gansynth(out, "train")) == 2
    np.testing.assert_array_equal(read_audio(NSynth(out).path(0)).shape, (NUM_SAMPLES,))
    assert script.main(["--out", str(out), "--programs", "47"]) == 1
    assert "program 47 has no NSynth family" in capsys.readouterr().err
