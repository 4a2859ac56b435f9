"""Tests for audiozoo.data.passages and experiments/wavenet/make_passages.py: composition, the MIDI
file, the wav folder layout and manifest, determinism, levels, errors, and reading the folder with
the wav_folder dataset. Renders use TimGM6mb and skip where fluidsynth or the soundfont is missing."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiozoo.audio.midi import _varlen
from audiozoo.config import base_config
from audiozoo.data import DataError, make_dataset
from audiozoo.data import passages as pmod
from audiozoo.data.passages import (
    CHORD,
    MANIFEST,
    MELODY,
    PEAK_LIMIT,
    TARGET_PEAK,
    VELOCITY_RANGE,
    compose,
    passage_seed,
    program_folder,
    render_passages,
    voice_of,
)
from audiozoo.data.soundfont import DEFAULT_SOUNDFONT, GM_INSTRUMENTS

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = [0, 40]  # piano (melody, chords, bass) and violin (melody only)
SECONDS, RATE, SEED, COUNT = 1.5, 16000, 3, 2


@pytest.fixture(scope="module")
def fluidsynth_ok():
    if shutil.which("fluidsynth") is None or not os.path.isfile(DEFAULT_SOUNDFONT):
        pytest.skip("needs the fluidsynth program and the TimGM6mb soundfont "
                    "(apt-get install fluidsynth timgm6mb-soundfont)")


def _render(root, seed=SEED, programs=PROGRAMS, **kwargs):
    return render_passages(root, programs=programs, num_passages=COUNT, seconds=SECONDS, seed=seed,
                           sample_rate=RATE, soundfont=DEFAULT_SOUNDFONT, workers=2, **kwargs)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, fluidsynth_ok):
    root = tmp_path_factory.mktemp("passages") / "set"
    summary = _render(root)
    return root, summary, json.loads((root / MANIFEST).read_text())


# ----------------------------------------------------------------------------- composition


def test_compose_is_seeded_and_fits_the_instrument():
    assert compose(0, 4.0, 7) == compose(0, 4.0, 7)
    assert compose(0, 4.0, 7).notes != compose(0, 4.0, 8).notes
    parts = {0: set(), 40: set()}
    for seed in range(20):
        for program in parts:
            passage = compose(program, 4.0, seed)
            voice = voice_of(program)
            assert passage.notes[0].start == 0, "a passage starts with a note, not a rest"
            assert passage.seconds(passage.end_tick) == pytest.approx(4.0, abs=1e-3)
            for note in passage.notes:
                assert 0 <= note.start < note.end <= passage.end_tick
                assert VELOCITY_RANGE[0] <= note.velocity <= VELOCITY_RANGE[1]
                if note.part == MELODY:
                    assert voice.melody[0] <= note.pitch <= voice.melody[1]
            parts[program] |= {n.part for n in passage.notes}
    assert parts == {0: {"melody", "chord", "bass"}, 40: {"melody"}}  # violin plays no chords


def test_compose_varies_key_tempo_meter_and_velocity():
    passages = [compose(0, 4.0, seed) for seed in range(40)]
    assert len({p.key for p in passages}) >= 12
    assert len({p.beats_per_bar for p in passages}) == 2
    assert min(p.bpm for p in passages) < 90 < 126 < max(p.bpm for p in passages)
    velocities = [n.velocity for p in passages for n in p.notes]
    assert max(velocities) - min(velocities) >= 40
    melody = [n for n in passages[0].notes if n.part == MELODY]
    lengths = {n.end - n.start for n in melody}
    assert len(lengths) > 1, "note lengths vary"


def _smf_notes(data: bytes) -> tuple[int, list[tuple[int, int, int, int, int]]]:
    """(tempo, [(channel, pitch, velocity, on tick, off tick)]) of a one-track file without
    running status, read here rather than with audiozoo.audio.midi so that the test checks
    the bytes independently."""
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    pos, tick, tempo, sounding, notes, end = 22, 0, None, {}, [], None
    while pos < len(data):
        delta, pos = _varlen(data, pos)
        tick += delta
        status = data[pos]
        if status == 0xFF:
            size, after = _varlen(data, pos + 2)
            if data[pos + 1] == 0x51:
                tempo = int.from_bytes(data[after:after + size], "big")
            end = tick if data[pos + 1] == 0x2F else end
            pos = after + size
        elif status & 0xF0 == 0xC0:
            pos += 2
        else:
            channel, pitch, velocity = status & 0x0F, data[pos + 1], data[pos + 2]
            if status & 0xF0 == 0x90:
                assert (channel, pitch) not in sounding, "a note starts while the same note sounds"
                sounding[channel, pitch] = (tick, velocity)
            else:
                on, on_velocity = sounding.pop((channel, pitch))
                notes.append((channel, pitch, on_velocity, on, tick))
            pos += 3
    assert not sounding and end is not None and pos == len(data)
    return tempo, notes


def test_midi_file_holds_the_composed_notes():
    passage = compose(24, 3.0, 11)  # guitar: strummed chords on their own channel
    tempo, notes = _smf_notes(passage.midi())
    assert tempo == passage.tempo_us
    channels = {MELODY: 0, CHORD: 1, "bass": 2}
    assert sorted(notes) == sorted((channels[n.part], n.pitch, n.velocity, n.start, n.end) for n in passage.notes)
    chord = [n for n in passage.notes if n.part == CHORD]
    assert chord and len({n.start for n in chord}) > 1, "guitar chords are strummed"


# ----------------------------------------------------------------------------- rendered set


def test_layout_length_rate_and_subtype(rendered):
    root, summary, _ = rendered
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert folders == ["000_acoustic_grand_piano", "040_violin"] == [program_folder(p) for p in PROGRAMS]
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == [MANIFEST]
    for folder in folders:
        assert sorted(p.name for p in (root / folder).iterdir()) == ["0000.wav", "0001.wav"]
    for name in summary.files:
        info = sf.info(str(root / name))
        assert (info.frames, info.samplerate, info.channels, info.subtype) == (
            round(SECONDS * RATE), RATE, 1, "PCM_16")
    assert summary.audio_seconds == pytest.approx(len(PROGRAMS) * COUNT * SECONDS)


def test_audio_is_not_silent_and_not_clipped(rendered):
    root, summary, manifest = rendered
    for entry in manifest["passages"]:
        audio, _ = sf.read(str(root / entry["file"]), dtype="float32")
        peak = float(np.abs(audio).max())
        assert 0.02 < peak <= PEAK_LIMIT
        assert entry["peak"] == pytest.approx(peak, abs=1 / 32768)
        assert np.abs(audio[:800]).max() > 1e-3, "the first note sounds from the start"
        assert np.sqrt(np.mean(audio ** 2)) > 0.003
        assert np.mean(np.abs(audio) > 0.999) == 0
    assert summary.peak == max(e["peak"] for e in manifest["passages"])


def test_manifest_is_consistent(rendered):
    root, summary, manifest = rendered
    assert (manifest["sample_rate"], manifest["seconds"], manifest["num_samples"]) == (RATE, SECONDS, 24000)
    assert (manifest["seed"], manifest["channels"], manifest["subtype"]) == (SEED, 1, "PCM_16")
    assert manifest["soundfont"] == os.path.abspath(DEFAULT_SOUNDFONT)
    assert manifest["soundfont_bytes"] == os.path.getsize(DEFAULT_SOUNDFONT)
    assert manifest["fluidsynth"][0].isdigit()
    assert [(p["program"], p["folder"], p["passages"]) for p in manifest["programs"]] == [
        (0, "000_acoustic_grand_piano", COUNT), (40, "040_violin", COUNT)]
    assert manifest["programs"][1]["name"] == GM_INSTRUMENTS[40].name == "Violin"
    entries = manifest["passages"]
    assert [e["file"] for e in entries] == summary.files and len(entries) == len(PROGRAMS) * COUNT
    for e in entries:
        assert (root / e["file"]).is_file() and e["file"].startswith(program_folder(e["program"]) + "/")
        assert e["seed"] == passage_seed(SEED, e["program"], e["index"])
        passage = compose(e["program"], SECONDS, e["seed"])  # the manifest's seed gives the piece back
        assert e["notes"] == passage.note_rows() and e["num_notes"] == len(e["notes"]) > 0
        assert (e["key"], e["tempo_bpm"]) == (passage.key, round(passage.bpm, 2))
        assert e["gain"] == manifest["gain"] and e["file"] not in summary.reduced
        for start, end, pitch, velocity, part in e["notes"]:
            assert 0 <= start < end <= SECONDS and 0 <= pitch <= 127 and part in ("melody", "chord", "bass")


def test_same_seed_same_bytes_other_seed_other_audio(rendered, tmp_path):
    root, summary, _ = rendered
    again = _render(tmp_path / "again")
    for name in summary.files:
        assert (root / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert (root / MANIFEST).read_bytes() == (tmp_path / "again" / MANIFEST).read_bytes()
    other = _render(tmp_path / "other", seed=SEED + 1, programs=[0])
    for name in other.files:
        assert (root / name).read_bytes() != (tmp_path / "other" / name).read_bytes()
    assert again.files == summary.files


def test_wav_folder_dataset_reads_the_folder(rendered):
    root, _, _ = rendered
    config = base_config("vocoder")
    config.data.name, config.data.root, config.data.labels = "wav_folder", str(root), True
    train, evaluation = make_dataset(config.data, "train"), make_dataset(config.data, "eval")
    assert train.classes == ("000_acoustic_grand_piano", "040_violin") == evaluation.classes
    assert len(train) + len(evaluation) == len(PROGRAMS) * COUNT
    example = train.example(0, np.random.default_rng(0))
    assert example["audio"].shape == (config.data.segment_length,) and int(example["label"]) == 0
    assert np.abs(example["audio"]).max() > 0


def test_a_loud_passage_is_rendered_at_a_lower_gain(fluidsynth_ok, tmp_path):
    summary = render_passages(tmp_path / "loud", programs=[0], num_passages=1, seconds=1.0, seed=0,
                              soundfont=DEFAULT_SOUNDFONT, gain=10.0)
    manifest = json.loads((tmp_path / "loud" / MANIFEST).read_text())
    entry = manifest["passages"][0]
    assert summary.reduced == [entry["file"]] and manifest["gain"] == 10.0 and entry["gain"] < 10.0
    assert TARGET_PEAK - 0.05 < entry["peak"] <= PEAK_LIMIT


# ----------------------------------------------------------------------------- levels and errors (fake synth)


def _fake_render(level):
    """A render_midi stand-in: a sine whose peak is ``level`` x gain."""
    def render(midi, *, gain, sample_rate, **_):
        t = np.arange(sample_rate) / sample_rate
        return (level * gain * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return render


def test_gain_is_lowered_for_a_passage_that_would_clip(monkeypatch):
    monkeypatch.setattr(pmod, "render_midi", _fake_render(2.0))
    audio, gain = pmod.render_passage(compose(0, 1.0, 0), sample_rate=RATE, num_samples=RATE,
                                      soundfont="x.sf2", gain=1.0, fluidsynth="fluidsynth")
    assert gain == pytest.approx(TARGET_PEAK / 2.0) and np.abs(audio).max() == pytest.approx(TARGET_PEAK, abs=1e-3)


def test_a_silent_passage_is_an_error(monkeypatch):
    monkeypatch.setattr(pmod, "render_midi", _fake_render(0.0))
    with pytest.raises(DataError, match="renders silent"):
        pmod.render_passage(compose(0, 1.0, 0), sample_rate=RATE, num_samples=RATE, soundfont="x.sf2",
                            gain=1.0, fluidsynth="fluidsynth")


@pytest.mark.parametrize("kwargs, match", [
    (dict(programs=[47]), "GM program 47 cannot play passages"),
    (dict(programs=[128]), "cannot play passages; choose pitched instruments among 0-46"),
    (dict(programs=["0"]), "cannot play passages"),
    (dict(programs=[]), "non-empty list"),
    (dict(seconds=0), "seconds must be a positive number"),
    (dict(seconds=-1.0), "seconds must be a positive number"),
    (dict(seconds=float("nan")), "seconds must be a positive number"),
    (dict(num_passages=0), "num_passages must be a positive integer"),
    (dict(seed=-1), "seed must be a non-negative integer"),
    (dict(sample_rate=4000), r"sample_rate must be an integer in \[8000, 96000\]"),
    (dict(gain=0.0), "gain must be in"),
    (dict(soundfont="/no/such.sf2"), "soundfont '/no/such.sf2' does not exist"),
])
def test_bad_arguments_are_clear_errors(kwargs, match, tmp_path, monkeypatch):
    monkeypatch.setattr(pmod, "find_fluidsynth", lambda: "fluidsynth")  # errors come before any render
    args = dict(programs=[0], num_passages=1, seconds=1.0, seed=0, soundfont=DEFAULT_SOUNDFONT) | kwargs
    if not os.path.isfile(args["soundfont"]) and "soundfont" not in kwargs:
        args["soundfont"] = str(tmp_path / "fake.sf2")
        Path(args["soundfont"]).write_bytes(b"sfbk")
    with pytest.raises(DataError, match=match):
        render_passages(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.setattr(pmod, "find_fluidsynth", lambda: "fluidsynth")
    font = tmp_path / "fake.sf2"
    font.write_bytes(b"sfbk")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.wav").write_bytes(b"")
    with pytest.raises(DataError, match="is not empty; choose another --out"):
        render_passages(tmp_path / "out", programs=[0], num_passages=1, soundfont=str(font))


def test_missing_fluidsynth_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install fluidsynth"):
        render_passages(tmp_path / "out", programs=[0], num_passages=1)


# ----------------------------------------------------------------------------- script


def _script():
    path = REPO / "experiments" / "wavenet" / "make_passages.py"
    spec = importlib.util.spec_from_file_location("make_passages", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_script_prints_what_it_wrote(fluidsynth_ok, tmp_path, capsys):
    script = _script()
    out = tmp_path / "p"
    assert script.main(["--out", str(out), "--programs", "24", "--passages", "1", "--seconds", "1",
                        "--soundfont", DEFAULT_SOUNDFONT, "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 1 passages (0.02 min of audio at 16000 Hz) of 1 programs" in printed
    assert "s of audio per second" in printed
    assert sf.info(str(out / "024_acoustic_guitar_nylon" / "0000.wav")).frames == 16000
    assert script.main(["--out", str(tmp_path / "q"), "--programs", "47"]) == 1
    assert "program 47 has no NSynth family" in capsys.readouterr().err
    assert script.main(["--out", str(tmp_path / "q"), "--seconds", "0"]) == 1
    assert "seconds must be a positive number" in capsys.readouterr().err


def test_script_defaults():
    args = _script().parse_args(["--out", "x"])
    assert [int(p) for p in args.programs] == [0, 24, 40, 42, 56, 73]
    assert (args.seconds, args.sample_rate, args.seed) == (4.0, 16000, 0)
    assert os.path.basename(args.soundfont) in ("FluidR3_GM.sf2", "TimGM6mb.sf2")


@pytest.mark.slow
def test_every_program_renders_a_passage(fluidsynth_ok, tmp_path):
    """Every choosable program sounds in its range with TimGM6mb and stays below full scale."""
    summary = render_passages(tmp_path / "all", programs=sorted(GM_INSTRUMENTS), num_passages=1, seconds=2.0,
                              soundfont=DEFAULT_SOUNDFONT)
    assert len(summary.files) == len(GM_INSTRUMENTS) and summary.peak <= PEAK_LIMIT
