"""Tests for audiozoo.data.nsynth on a small fake NSynth release written to tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from ml_collections import ConfigDict

from audiozoo.data import BatchLoader, DataError, NSynth, SyntheticNSynth, make_dataset
from audiozoo.data.nsynth import (
    FAMILIES,
    GANSYNTH_FILTER,
    NUM_SAMPLES,
    QUALITIES,
    SAMPLE_RATE,
    SOURCES,
)

# (instrument_str, instrument id, pitch, velocity): family and source come from the name.
NOTES = [
    ("guitar_acoustic_014", 14, 43, 50),
    ("guitar_acoustic_014", 14, 90, 127),
    ("bass_electronic_018", 18, 22, 25),
    ("bass_electronic_018", 18, 40, 100),
    ("keyboard_synthetic_003", 3, 60, 75),
    ("keyboard_synthetic_003", 3, 84, 75),
    ("flute_acoustic_002", 2, 24, 100),
    ("flute_acoustic_002", 2, 84, 25),
    ("string_acoustic_056", 56, 21, 50),
    ("mallet_electronic_001", 1, 70, 127),
]
KEYS = {"audio", "pitch", "velocity", "instrument", "instrument_family", "family", "instrument_source",
        "qualities"}


def _note_str(instrument_str: str, pitch: int, velocity: int) -> str:
    return f"{instrument_str}-{pitch:03d}-{velocity:03d}"


def _entry(instrument_str: str, instrument: int, pitch: int, velocity: int) -> dict:
    family, source = instrument_str.split("_")[0], instrument_str.split("_")[1]
    qualities = [int((pitch + q) % 3 == 0) for q in range(len(QUALITIES))]
    return {
        "note": pitch * 1000 + velocity, "note_str": _note_str(instrument_str, pitch, velocity),
        "instrument": instrument, "instrument_str": instrument_str, "pitch": pitch,
        "velocity": velocity, "sample_rate": SAMPLE_RATE, "qualities": qualities,
        "qualities_str": [QUALITIES[q] for q in range(10) if qualities[q]],
        "instrument_family": FAMILIES.index(family), "instrument_family_str": family,
        "instrument_source": SOURCES.index(source), "instrument_source_str": source,
    }


def _audio(pitch: int, velocity: int) -> np.ndarray:
    """A distinct signal per note, so a read can be matched to what was written."""
    t = np.arange(NUM_SAMPLES) / SAMPLE_RATE
    return (velocity / 200 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t)).astype(np.float32)


def _write_release(root, split: str = "train", notes=NOTES) -> dict:
    """Writes root/nsynth-{split}/ (json in reverse order, to test sorting); returns the json."""
    audio_dir = root / f"nsynth-{split}" / "audio"
    audio_dir.mkdir(parents=True)
    entries = {}
    for instrument_str, instrument, pitch, velocity in reversed(notes):
        name = _note_str(instrument_str, pitch, velocity)
        entries[name] = _entry(instrument_str, instrument, pitch, velocity)
        # FLOAT keeps samples exact, so reads compare equal to the written signal.
        sf.write(str(audio_dir / f"{name}.wav"), _audio(pitch, velocity), SAMPLE_RATE, subtype="FLOAT")
    (root / f"nsynth-{split}" / "examples.json").write_text(json.dumps(entries))
    return entries


@pytest.fixture
def release(tmp_path):
    return tmp_path, _write_release(tmp_path)


# ----------------------------------------------------------------------------- reading


def test_len_order_and_examples(release):
    root, entries = release
    ds = NSynth(root)
    assert len(ds) == len(NOTES)
    assert list(ds.note_strs) == sorted(entries) and ds.note_strs[0] == "bass_electronic_018-022-025"
    for i, name in enumerate(ds.note_strs):
        entry, ex = entries[name], ds[i]
        assert set(ex) == KEYS | {"note_str"} and ex["note_str"] == name == ds.note_str(i)
        assert ex["audio"].dtype == np.float32 and ex["audio"].shape == (NUM_SAMPLES,)
        np.testing.assert_array_equal(ex["audio"], _audio(entry["pitch"], entry["velocity"]))
        for key in ("pitch", "velocity", "instrument", "instrument_family", "instrument_source"):
            assert ex[key].dtype == np.int32 and ex[key].shape == () and int(ex[key]) == entry[key], key
        assert int(ex["family"]) == entry["instrument_family"]
        assert ex["qualities"].dtype == np.int32 and ex["qualities"].tolist() == entry["qualities"]
    assert ds.classes == FAMILIES and ds.sample_rate == SAMPLE_RATE


def test_examples_batch_without_note_str(release):
    ds = NSynth(release[0], segment_length=1000)
    assert set(ds.example(0, np.random.default_rng(0))) == KEYS
    batch = BatchLoader(ds, global_batch_size=4, seed=0).host_batch(0)
    assert batch["audio"].shape == (4, 1000) and batch["qualities"].shape == (4, 10)


def test_segment_crop_follows_the_rng(release):
    ds = NSynth(release[0], segment_length=4000)
    whole = ds.note(3)
    offsets = set()
    for k in range(6):
        crop = ds.example(3, np.random.default_rng(k))["audio"]
        assert crop.shape == (4000,)
        starts = [o for o in np.flatnonzero(whole == crop[0]) if np.array_equal(whole[o : o + 4000], crop)]
        assert starts, "the crop is not a slice of the note"
        offsets.add(int(starts[0]))
    assert len(offsets) > 1
    np.testing.assert_array_equal(ds[3]["audio"], ds[3]["audio"])  # ds[i] is a fixed crop


@pytest.mark.parametrize(
    "kwargs, count",
    [
        ({"pitch_range": (24, 84)}, 7),
        ({"pitch_range": (84, 84)}, 2),
        ({"sources": ("acoustic",)}, 5),
        ({"sources": "electronic, synthetic"}, 5),
        ({"sources": (1,)}, 3),
        ({"families": ("guitar", "flute")}, 4),
        ({"families": (FAMILIES.index("bass"),)}, 2),
        ({"velocities": (25, 127)}, 4),
        ({"velocities": "75"}, 2),
        ({"pitch_range": (40, 100), "sources": ("acoustic",), "velocities": (50,)}, 1),
        (GANSYNTH_FILTER, 3),
        ({"sources": (), "families": None, "velocities": ()}, len(NOTES)),
    ],
)
def test_filters(release, kwargs, count):
    ds = NSynth(release[0], **kwargs)
    assert len(ds) == count
    assert list(ds.note_strs) == sorted(ds.note_strs)
    assert len(ds.metadata["pitch"]) == count and ds.metadata["qualities"].shape == (count, 10)


def test_gansynth_subset(release):
    ds = NSynth.gansynth(release[0], segment_length=2000)
    assert ds.note_strs == ("flute_acoustic_002-024-100", "flute_acoustic_002-084-025",
                            "guitar_acoustic_014-043-050")
    assert all(int(ds[i]["instrument_source"]) == 0 and 24 <= int(ds[i]["pitch"]) <= 84 for i in range(3))


def test_check_files_passes_on_a_good_release(release):
    NSynth(release[0], check=True).check_files()


# ----------------------------------------------------------------------------- errors


def test_missing_root_split_and_files(tmp_path):
    with pytest.raises(DataError, match="nope.*does not exist.*nsynth-train.jsonwav.tar.gz"):
        NSynth(tmp_path / "nope")
    with pytest.raises(DataError, match="nsynth-valid.*does not exist.*nsynth-valid.jsonwav.tar.gz"):
        NSynth(tmp_path, "valid")
    with pytest.raises(DataError, match="'dev'.*train, valid, test"):
        NSynth(tmp_path, "dev")
    (tmp_path / "nsynth-test" / "audio").mkdir(parents=True)
    with pytest.raises(DataError, match="examples.json' does not exist.*extract"):
        NSynth(tmp_path, "test")


def test_root_pointing_at_the_split_folder_gets_a_hint(release):
    with pytest.raises(DataError, match="contains nsynth-"):
        NSynth(release[0] / "nsynth-train")


def test_bad_json(tmp_path):
    _write_release(tmp_path)
    path = tmp_path / "nsynth-train" / "examples.json"
    path.write_text('{"guitar_acoustic_014-043-050": {"pitch": 43,')
    with pytest.raises(DataError, match="examples.json.*not valid JSON"):
        NSynth(tmp_path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="should map note names"):
        NSynth(tmp_path)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("pitch", None, "has no field 'pitch'"),
        ("qualities", None, "has no field 'qualities'"),
        ("velocity", "loud", "velocity='loud'"),
        ("instrument_family", 11, r"instrument_family=11.*\[0, 10\]"),
        ("qualities", [0, 1], "qualities=.*10 flags"),
    ],
)
def test_bad_json_entry(tmp_path, field, value, match):
    entries = _write_release(tmp_path)
    name = "flute_acoustic_002-084-025"
    if value is None:
        del entries[name][field]
    else:
        entries[name][field] = value
    (tmp_path / "nsynth-train" / "examples.json").write_text(json.dumps(entries))
    with pytest.raises(DataError, match=f"entry '{name}'.*{match}"):
        NSynth(tmp_path)


def _broken(tmp_path, name: str, how: str) -> NSynth:
    """The release with note ``name``'s wav broken ``how``; returns the dataset and its index."""
    _write_release(tmp_path)
    path = tmp_path / "nsynth-train" / "audio" / f"{name}.wav"
    if how == "missing":
        path.unlink()
    elif how == "corrupt":
        path.write_bytes(b"RIFF\x00\x01garbage" * 10)
    elif how == "rate":
        sf.write(str(path), np.zeros(NUM_SAMPLES, np.float32), 22050)
    elif how == "length":
        sf.write(str(path), np.zeros(32000, np.float32), SAMPLE_RATE)
    return NSynth(tmp_path)  # files are checked lazily: building still works


@pytest.mark.parametrize(
    "how, match",
    [
        ("missing", "listed in examples.json but .*is missing; re-extract nsynth-train.jsonwav.tar.gz"),
        ("corrupt", "cannot read audio file"),
        ("rate", "has 64000 samples at 22050 Hz; expected exactly 64000 samples at 16000 Hz"),
        ("length", "has 32000 samples at 16000 Hz; expected exactly 64000 samples at 16000 Hz"),
    ],
)
def test_bad_wav_raises_on_read_and_in_check_files(tmp_path, how, match):
    name = "guitar_acoustic_014-090-127"
    ds = _broken(tmp_path, name, how)
    index = ds.note_strs.index(name)
    ds[index - 1]  # the other notes still read
    with pytest.raises(DataError, match=f"{name}.*{match}"):
        ds[index]
    with pytest.raises(DataError, match=f"(?s)1 of the 10 selected.*{name}.*{match}"):
        ds.check_files()
    with pytest.raises(DataError, match=name):
        NSynth(tmp_path, check=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pitch_range": (100, 120)}, "pitch_range filter.*10 notes before it have pitches 21-90"),
        ({"sources": ("acoustic",), "families": ("bass",)},
         "families filter.*5 notes before it have families flute, guitar, string"),
        ({"velocities": (1,)}, "velocities filter.*velocities 25, 50, 75, 100, 127"),
        ({"pitch_range": (22, 22), "sources": ("synthetic",)}, "sources filter.*have sources electronic"),
    ],
)
def test_empty_after_filters(release, kwargs, match):
    with pytest.raises(DataError, match=match):
        NSynth(release[0], **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sources": ("analog",)}, "source 'analog'.*0 acoustic, 1 electronic, 2 synthetic"),
        ({"families": ("piano",)}, "family 'piano'.*3 guitar"),
        ({"families": (11,)}, "family 11"),
        ({"pitch_range": (60,)}, "two MIDI numbers"),
        ({"segment_length": 64001}, r"segment_length.*\[1, 64000\]"),
    ],
)
def test_bad_arguments(release, kwargs, match):
    with pytest.raises(DataError, match=match):
        NSynth(release[0], **kwargs)


# ----------------------------------------------------------------------------- synthetic + factory


def test_synthetic_nsynth_has_the_nsynth_keys():
    ds = SyntheticNSynth(6, segment_length=8000, families=("sine", "bell"))
    assert len(ds) == 6 and ds.classes == ("sine", "bell")
    for i in range(len(ds)):
        ex = ds[i]
        assert set(ex) == KEYS | {"note_str"} and ex["audio"].shape == (8000,)
        assert ex["audio"].dtype == np.float32 and ex["qualities"].tolist() == [0] * 10
        assert int(ex["instrument_source"]) == 2 and int(ex["family"]) == int(ex["instrument_family"]) < 2
        assert 24 <= int(ex["pitch"]) <= 84
        family = ds.classes[int(ex["family"])]
        assert ex["note_str"] == ds.note_str(i) == f"{family}_synthetic_{int(ex['family']):03d}-" + "-".join(
            f"{int(ex[k]):03d}" for k in ("pitch", "velocity"))
    assert SyntheticNSynth(1).segment_length == NUM_SAMPLES


def _nsynth_config(root, **overrides) -> ConfigDict:
    cfg = {"name": "nsynth", "root": str(root), "sample_rate": SAMPLE_RATE, "segment_length": NUM_SAMPLES,
           "seed": 0, "pitch_range": (0, 127), "num_train": 8, "num_eval": 4, "families": ("sine", "saw")}
    return ConfigDict({**cfg, **overrides})


def test_make_dataset_nsynth(release):
    root = release[0]
    _write_release(root, "valid", NOTES[:4])
    _write_release(root, "test", NOTES[4:])
    train, evaluation = (make_dataset(_nsynth_config(root), s) for s in ("train", "eval"))
    assert (train.split, len(train), evaluation.split, len(evaluation)) == ("train", 10, "valid", 4)
    assert len(make_dataset(_nsynth_config(root, eval_split="test"), "eval")) == 6
    cfg = _nsynth_config(root, segment_length=1000, pitch_range=(24, 84), sources="acoustic",
                         instrument_families=("flute",), velocities=(100,), check_files=True)
    ds = make_dataset(cfg, "train")
    assert ds.note_strs == ("flute_acoustic_002-024-100",) and ds[0]["audio"].shape == (1000,)


def test_make_dataset_nsynth_errors(release):
    with pytest.raises(DataError, match="config.data.root is empty"):
        make_dataset(_nsynth_config(""), "train")
    with pytest.raises(DataError, match="16000 Hz.*sample_rate is 22050"):
        make_dataset(_nsynth_config(release[0], sample_rate=22050), "train")
    cfg = _nsynth_config(release[0])
    del cfg["pitch_range"]
    with pytest.raises(DataError, match="pitch_range"):
        make_dataset(cfg, "train")


def test_make_dataset_synthetic_nsynth(tmp_path):
    cfg = _nsynth_config(tmp_path, name="synthetic_nsynth", segment_length=4000, pitch_range=(40, 60))
    train, evaluation = make_dataset(cfg, "train"), make_dataset(cfg, "eval")
    assert (len(train), len(evaluation)) == (8, 4) and evaluation.seed == train.seed + 1
    assert train.classes == ("sine", "saw") and set(train.example(0, np.random.default_rng(0))) == KEYS
    assert 40 <= int(train[0]["pitch"]) <= 60 and train[0]["audio"].shape == (4000,)


def test_crop_start_takes_the_onset(release):
    from audiozoo.data import SyntheticNotes

    root, _ = release
    whole = NSynth(root, "train")[0]["audio"]
    start = NSynth(root, "train", segment_length=1000, crop="start")
    for seed in range(3):
        example = start.example(0, np.random.default_rng(seed))
        np.testing.assert_array_equal(example["audio"], whole[:1000])
    notes = SyntheticNotes(4, segment_length=4000, crop="start")
    np.testing.assert_array_equal(notes.example(1, np.random.default_rng(0))["audio"],
                                  notes.note(1)[:4000])
    with pytest.raises(DataError, match="crop='middle' is not one of"):
        NSynth(root, "train", crop="middle")
