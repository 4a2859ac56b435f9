"""Tests for audiozoo.data: synthetic notes, wav folders, the batch loader, the factory."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf
from ml_collections import ConfigDict

from audiozoo.audio.io import AudioError
from audiozoo.data import FAMILY_NAMES, BatchLoader, DataError, SyntheticNotes, WavFolder, make_dataset
from audiozoo.data.synthetic import VELOCITIES, midi_to_hz, render_note

SR = 16000


# ----------------------------------------------------------------------------- helpers


def _spectrum(audio: np.ndarray, sample_rate: int = SR, pad: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum and its frequencies; ``pad`` zero-pads for finer peak positions."""
    n = len(audio) * pad
    return np.abs(np.fft.rfft(audio, n)) ** 2, np.fft.rfftfreq(n, 1 / sample_rate)


def _centroid(audio: np.ndarray) -> float:
    power, freqs = _spectrum(audio)
    return float((power * freqs).sum() / power.sum())


def _band_energy(power, freqs, centre, width=10.0) -> float:
    return float(power[np.abs(freqs - centre) <= width].sum())


def _write(path, audio, sample_rate=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    # FLOAT (or 24-bit FLAC, for these ramps) keeps samples exact, so crops can be
    # compared with the written signal.
    subtype = "PCM_24" if path.suffix == ".flac" else "FLOAT"
    sf.write(str(path), np.asarray(audio, np.float32), sample_rate, subtype=subtype)


def _ramp(n: int, start: int = 0) -> np.ndarray:
    """Distinct sample values, so a crop's offset can be read off its first sample."""
    return ((np.arange(start, start + n) % 30000) / 32768).astype(np.float32)


def _offset_in(whole: np.ndarray, crop: np.ndarray) -> int:
    """The offset at which ``crop`` occurs in ``whole``; fails the test if nowhere."""
    for o in np.flatnonzero(whole == crop[0]):
        if np.array_equal(whole[o : o + len(crop)], crop):
            return int(o)
    raise AssertionError("crop is not a contiguous slice of the signal")


class IndexDataset:
    """Examples that record their index and draw one number from the example rng."""

    sample_rate = SR
    segment_length = 1

    def __init__(self, n: int, delay: float = 0.0, fail_at: int | None = None):
        self.n, self.delay, self.fail_at = n, delay, fail_at

    def __len__(self):
        return self.n

    def example(self, index, rng):
        time.sleep(self.delay)
        if index == self.fail_at:
            raise DataError(f"example {index} is broken")
        return {"index": np.int32(index), "noise": np.float32(rng.random())}

    def __getitem__(self, index):
        return self.example(index, np.random.default_rng([0, index]))


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_dtypes_and_range():
    ds = SyntheticNotes(40, segment_length=4000)
    assert len(ds) == 40 and ds.num_families == len(FAMILY_NAMES) == 5
    assert ds.pitch_range == (36, 84) and ds.num_pitches == 49
    for i in range(len(ds)):
        ex = ds[i]
        assert set(ex) == {"audio", "pitch", "family", "velocity"}
        assert ex["audio"].shape == (4000,) and ex["audio"].dtype == np.float32
        for key in ("pitch", "family", "velocity"):
            assert ex[key].shape == () and ex[key].dtype == np.int32
        assert 36 <= ex["pitch"] <= 84 and 0 <= ex["family"] < 5 and int(ex["velocity"]) in VELOCITIES
        assert np.all(np.isfinite(ex["audio"])) and np.abs(ex["audio"]).max() <= 0.9 + 1e-6
        # The full note peaks exactly at the velocity's amplitude.
        np.testing.assert_allclose(np.abs(ds.note(i)).max(), 0.9 * int(ex["velocity"]) / 127, rtol=1e-5)
    assert len({int(ds[i]["family"]) for i in range(len(ds))}) == 5


def test_synthetic_is_deterministic_but_crops_follow_the_rng():
    a, b = SyntheticNotes(8, segment_length=4000, seed=3), SyntheticNotes(8, segment_length=4000, seed=3)
    for i in range(8):
        np.testing.assert_array_equal(a.note(i), b.note(i))
        np.testing.assert_array_equal(a[i]["audio"], b[i]["audio"])
    note = a.note(5)
    crops = [a.example(5, np.random.default_rng(k)) for k in range(4)]
    offsets = {_offset_in(note, c["audio"]) for c in crops}
    assert len(offsets) > 1, "different rngs should give different crops"
    for c in crops:  # ...of the same note, with the same labels
        assert {k: int(v) for k, v in c.items() if k != "audio"} == {
            k: int(v) for k, v in crops[0].items() if k != "audio"
        }
    assert not np.array_equal(SyntheticNotes(8, seed=4).note(5), note)


def test_synthetic_long_segment_is_the_whole_note():
    ds = SyntheticNotes(2, sample_rate=8000, segment_length=12000)
    assert ds.note_length == 12000
    np.testing.assert_array_equal(ds.example(1, np.random.default_rng(7))["audio"], ds.note(1))


def test_sine_fundamental_is_the_fft_peak():
    ds = SyntheticNotes(12, families=("sine",), pitch_range=(30, 90))
    for i in range(len(ds)):
        pitch = int(ds[i]["pitch"])
        power, freqs = _spectrum(ds.note(i), pad=8)
        peak, f0 = freqs[np.argmax(power)], midi_to_hz(pitch)
        # Within the 5-cent detune (plus a bin), far from the neighbouring semitones.
        assert abs(peak - f0) <= f0 * (2 ** (6 / 1200) - 1) + 0.2, (pitch, peak, f0)


def test_families_are_spectrally_distinct():
    f0 = midi_to_hz(48)
    notes = {f: render_note(48, f, 100, sample_rate=SR, num_samples=SR) for f in FAMILY_NAMES}
    power, freqs = _spectrum(notes["square"])
    odd = sum(_band_energy(power, freqs, n * f0) for n in (1, 3, 5, 7))
    even = sum(_band_energy(power, freqs, n * f0) for n in (2, 4, 6, 8))
    assert even < 1e-4 * odd
    power, freqs = _spectrum(notes["saw"])
    saw_even = sum(_band_energy(power, freqs, n * f0) for n in (2, 4, 6, 8))
    saw_odd = sum(_band_energy(power, freqs, n * f0) for n in (1, 3, 5, 7))
    assert saw_even > 0.1 * saw_odd
    assert _centroid(notes["sine"]) * 2 < _centroid(notes["saw"])
    assert _centroid(notes["sine"]) * 2 < _centroid(notes["square"])
    # Pluck: high harmonics die first, so the note gets darker.
    assert _centroid(notes["pluck"][:3200]) > 1.5 * _centroid(notes["pluck"][8000:11200])
    # Bell: an inharmonic partial at 2.756 f0, nothing at the harmonic 2 f0.
    power, freqs = _spectrum(notes["bell"])
    assert _band_energy(power, freqs, 2.756 * f0) > 100 * _band_energy(power, freqs, 2 * f0)


def test_partials_above_nyquist_are_dropped():
    f0 = midi_to_hz(96)  # 2093 Hz: harmonics 1-3 fit below 8 kHz, 4-7 would alias
    harmonics = [4, 5, 6, 7]
    bell_partials = [5.404, 8.933, 13.344, 18.64]
    for family, ratios in [("saw", harmonics), ("square", [5, 7]), ("pluck", harmonics), ("bell", bell_partials)]:
        power, freqs = _spectrum(render_note(96, family, 127, sample_rate=SR, num_samples=SR))
        folded = [abs((r * f0 + SR / 2) % SR - SR / 2) for r in ratios]  # where they would land
        aliased = sum(_band_energy(power, freqs, f, width=30) for f in folded)
        assert aliased < 1e-4 * power.sum(), family


def test_render_is_fast():
    render_note(40, "saw", 100, sample_rate=SR, num_samples=SR)  # warm the wavetable cache
    for family in FAMILY_NAMES:
        start = time.perf_counter()
        for _ in range(10):
            render_note(40, family, 100, sample_rate=SR, num_samples=SR)
        # The target is < 2 ms; leave headroom for a loaded test machine.
        assert (time.perf_counter() - start) / 10 < 0.01, family


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_examples=0), "num_examples"),
        (dict(pitch_range=(50, 130)), "0 <= low <= high <= 127"),
        (dict(pitch_range=(60, 40)), "0 <= low <= high <= 127"),
        (dict(pitch_range=(36, 120)), "Nyquist"),
        (dict(families=("sine", "noise_hit")), "noise_hit.*sine, square, saw, pluck, bell"),
        (dict(families=()), "empty"),
    ],
)
def test_synthetic_argument_errors(kwargs, match):
    kwargs = {"num_examples": 4, **kwargs}
    with pytest.raises(DataError, match=match):
        SyntheticNotes(kwargs.pop("num_examples"), **kwargs)


def test_synthetic_family_subset_numbers_families_within_the_subset():
    ds = SyntheticNotes(20, families="bell, sine")
    assert ds.families == ("bell", "sine") and ds.num_families == 2
    assert {int(ds[i]["family"]) for i in range(20)} == {0, 1}


# ----------------------------------------------------------------------------- wav folder


def test_wav_folder_label_mode(tmp_path):
    _write(tmp_path / "dog" / "b.wav", _ramp(9000))
    _write(tmp_path / "cat" / "a.flac", _ramp(9000))
    _write(tmp_path / "dog" / "deep" / "c.wav", _ramp(9000))
    (tmp_path / "dog" / "notes.txt").write_text("not audio")
    ds = WavFolder(tmp_path, sample_rate=SR, segment_length=4000, labels=True)
    assert ds.classes == ("cat", "dog")
    assert [p.split(str(tmp_path))[1] for p in ds.files] == ["/cat/a.flac", "/dog/b.wav", "/dog/deep/c.wav"]
    labels = [ds[i]["label"] for i in range(3)]
    assert [int(x) for x in labels] == [0, 1, 1]
    assert all(x.dtype == np.int32 and x.shape == () for x in labels)


def test_wav_folder_crops_are_random_slices(tmp_path):
    signal = _ramp(20000)
    _write(tmp_path / "x.wav", signal)
    ds = WavFolder(tmp_path, sample_rate=SR, segment_length=5000)
    assert list(ds.lengths) == [20000] and set(ds[0]) == {"audio"}
    offsets = set()
    for k in range(5):
        audio = ds.example(0, np.random.default_rng(k))["audio"]
        assert audio.shape == (5000,) and audio.dtype == np.float32
        offsets.add(_offset_in(signal, audio))
    assert len(offsets) > 1 and max(offsets) <= 15000
    np.testing.assert_array_equal(ds.example(0, np.random.default_rng(1))["audio"],
                                  ds.example(0, np.random.default_rng(1))["audio"])


def test_wav_folder_pads_short_files_with_zeros_at_the_end(tmp_path):
    _write(tmp_path / "short.wav", _ramp(3000, start=1))
    audio = WavFolder(tmp_path, sample_rate=SR, segment_length=8000)[0]["audio"]
    assert audio.shape == (8000,)
    np.testing.assert_array_equal(audio[:3000], _ramp(3000, start=1))
    assert not audio[3000:].any()


def test_wav_folder_missing_and_empty_roots(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=f"{missing}.*does not exist.*--config.data.root"):
        WavFolder(missing, sample_rate=SR, segment_length=100)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.md").write_text("hi")
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'}.*no audio files.*\\.wav"):
        WavFolder(tmp_path / "empty", sample_rate=SR, segment_length=100)


def test_wav_folder_corrupt_file_is_named_or_skipped(tmp_path):
    _write(tmp_path / "good.wav", _ramp(2000))
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00 this is not a wave file")
    with pytest.raises(AudioError, match="bad.wav"):
        WavFolder(tmp_path, sample_rate=SR, segment_length=1000)
    with pytest.warns(UserWarning, match="bad.wav"):
        ds = WavFolder(tmp_path, sample_rate=SR, segment_length=1000, skip_bad=True)
    assert len(ds) == 1 and ds.files[0].endswith("good.wav")
    (tmp_path / "good.wav").unlink()
    with pytest.warns(UserWarning), pytest.raises(DataError, match="unreadable"):
        WavFolder(tmp_path, sample_rate=SR, segment_length=1000, skip_bad=True)


def _spoil(path, how):
    """Damages a file after the dataset's header check: NaN samples, or cut short."""
    if how == "nan":
        _write(path, np.full(len(sf.read(str(path))[0]), np.nan, np.float32))
    else:
        path.write_bytes(path.read_bytes()[:-1000])


@pytest.mark.parametrize("how,error", [("nan", "NaN or Inf"), ("truncated", "truncated")])
def test_wav_folder_file_that_fails_later_is_named_or_stood_in_for(tmp_path, how, error):
    for i in range(4):
        _write(tmp_path / f"f{i}.wav", _ramp(3000, start=1000 * i))
    strict = WavFolder(tmp_path, sample_rate=SR, segment_length=1000)
    lenient, again = (WavFolder(tmp_path, sample_rate=SR, segment_length=1000, skip_bad=True)
                      for _ in range(2))
    _spoil(tmp_path / "f1.wav", how)
    with pytest.raises(AudioError, match=rf"f1.wav.*{error}.*--config.data.skip_bad=True"):
        strict.example(1, np.random.default_rng(0))
    with pytest.warns(UserWarning, match=rf"skipping bad audio file .*f1.wav.*{error}") as caught:
        used, audio = lenient.crop(1, np.random.default_rng(0))
        lenient.example(1, np.random.default_rng(1))
    assert len(caught) == 1  # once per file
    assert used == 2  # the next file in index order stands in
    _offset_in(_ramp(3000, start=2000), audio)
    # Two loaders (threads and all) give the same batches: a pure function of (seed, step).
    with pytest.warns(UserWarning, match="f1.wav"):
        batches = [[b["audio"] for b in BatchLoader(ds, global_batch_size=4, seed=3).iterate(0, 3)]
                   for ds in (lenient, again)]
    np.testing.assert_array_equal(batches[0], batches[1])
    assert np.isfinite(batches[0]).all()
    for i in (0, 2, 3):
        _spoil(tmp_path / f"f{i}.wav", how)
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none of the 4 audio files"):
        lenient.example(0, np.random.default_rng(0))


def test_wav_folder_file_in_root_is_an_error_in_label_mode(tmp_path):
    _write(tmp_path / "cls" / "a.wav", _ramp(100))
    _write(tmp_path / "loose.wav", _ramp(100))
    with pytest.raises(DataError, match="loose.wav.*subfolder"):
        WavFolder(tmp_path, sample_rate=SR, segment_length=100, labels=True)


def test_wav_folder_sample_rate_mismatch(tmp_path):
    t = np.arange(8000) / 8000
    _write(tmp_path / "tone8k.wav", 0.5 * np.sin(2 * np.pi * 440 * t), sample_rate=8000)
    with pytest.raises(AudioError, match="tone8k.wav.*8000.*16000"):
        WavFolder(tmp_path, sample_rate=SR, segment_length=SR, resample=False)
    ds = WavFolder(tmp_path, sample_rate=SR, segment_length=SR, resample=True)
    assert list(ds.lengths) == [SR]
    audio = ds[0]["audio"]
    assert audio.shape == (SR,) and np.abs(audio[-100:]).max() > 0.1  # filled, not padded
    power, freqs = _spectrum(audio)
    assert abs(freqs[np.argmax(power)] - 440) <= 1


# ----------------------------------------------------------------------------- loader


def _indices(batch) -> list[int]:
    return [int(i) for i in batch["index"]]


def test_every_index_once_per_epoch():
    loader = BatchLoader(IndexDataset(14), global_batch_size=4, seed=5)
    assert loader.steps_per_epoch == 3 and loader.position(7) == (2, 4)
    epochs = [sum((_indices(loader.host_batch(s)) for s in range(3 * e, 3 * e + 3)), []) for e in range(3)]
    for e, seen in enumerate(epochs):
        assert len(seen) == 12 and len(set(seen)) == 12  # 2 of 14 dropped, none repeated
        np.testing.assert_array_equal(seen, np.random.default_rng([5, e]).permutation(14)[:12])
    assert epochs[0] != epochs[1]


def test_without_drop_remainder_batches_span_epochs():
    loader = BatchLoader(IndexDataset(10), global_batch_size=4, seed=0, drop_remainder=False)
    seen = sum((_indices(loader.host_batch(s)) for s in range(5)), [])
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))


def test_example_rng_depends_on_seed_epoch_and_index():
    ds = IndexDataset(4)
    loader = BatchLoader(ds, global_batch_size=4, seed=9)
    for step in (0, 1):
        batch = loader.host_batch(step)
        for i, noise in zip(_indices(batch), batch["noise"]):
            assert noise == np.float32(np.random.default_rng([9, step, i]).random())


def test_host_slices_concatenate_to_the_global_batch():
    ds = SyntheticNotes(40, segment_length=2000)
    whole = BatchLoader(ds, global_batch_size=8, seed=1)
    hosts = [BatchLoader(ds, global_batch_size=8, seed=1, process_index=p, process_count=4) for p in range(4)]
    for step in (0, 4, 11):
        parts = [h.host_batch(step) for h in hosts]
        assert parts[0]["audio"].shape == (2, 2000)
        expected = whole.host_batch(step)
        for key in expected:
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), expected[key])


def test_resumed_iteration_matches_an_uninterrupted_run():
    ds = SyntheticNotes(20, segment_length=2000)  # random crops: the rngs must line up too
    loader = BatchLoader(ds, global_batch_size=4, seed=2)
    fresh = list(loader.iterate(0, stop_step=8))
    resumed = list(BatchLoader(ds, global_batch_size=4, seed=2).iterate(start_step=5, stop_step=8))
    assert len(fresh) == 8 and len(resumed) == 3
    for a, b in zip(fresh[5:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for step, batch in enumerate(fresh):
        np.testing.assert_array_equal(batch["audio"], loader.host_batch(step)["audio"])


def test_prefetch_generator_closes_without_hanging():
    before = threading.active_count()
    loader = BatchLoader(IndexDataset(64, delay=0.002), global_batch_size=8, seed=0, num_workers=2)
    gen = loader.iterate()
    assert _indices(next(gen)) == _indices(loader.host_batch(0))
    time.sleep(0.1)  # let the producer fill the queue and block on it
    start = time.perf_counter()
    gen.close()
    assert time.perf_counter() - start < 2.0
    deadline = time.time() + 2.0
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_errors_while_building_reach_the_consumer():
    loader = BatchLoader(IndexDataset(8, fail_at=3), global_batch_size=8, seed=0)
    with pytest.raises(DataError, match="example 3 is broken"):
        next(loader.iterate())


def test_batch_size_errors():
    with pytest.raises(DataError, match="10 does not divide by process_count 4"):
        BatchLoader(IndexDataset(100), global_batch_size=10, seed=0, process_count=4)
    with pytest.raises(DataError, match="5 example.*global_batch_size 8"):
        BatchLoader(IndexDataset(5), global_batch_size=8, seed=0)
    with pytest.raises(DataError, match="process_index 4"):
        BatchLoader(IndexDataset(100), global_batch_size=8, seed=0, process_index=4, process_count=4)


# ----------------------------------------------------------------------------- factory


def _synthetic_config(**overrides) -> ConfigDict:
    cfg = dict(name="synthetic", sample_rate=SR, segment_length=2000, seed=0, num_train=16,
               num_eval=8, pitch_range=(40, 70), families=FAMILY_NAMES)
    return ConfigDict({**cfg, **overrides})


def test_make_dataset_synthetic_splits():
    cfg = _synthetic_config()
    train, evaluation = make_dataset(cfg, "train"), make_dataset(cfg, "eval")
    assert (len(train), len(evaluation)) == (16, 8)
    assert train.pitch_range == (40, 70) and evaluation.seed == train.seed + 1
    for i in range(8):
        assert not np.array_equal(train.note(i), evaluation.note(i))


def test_make_dataset_errors():
    with pytest.raises(DataError, match="'nsynthh'.*synthetic, wav_folder"):
        make_dataset(_synthetic_config(name="nsynthh"), "train")
    with pytest.raises(DataError, match="'test'.*train, eval"):
        make_dataset(_synthetic_config(), "test")
    cfg = _synthetic_config()
    del cfg["num_eval"]
    with pytest.raises(DataError, match="num_eval"):
        make_dataset(cfg, "eval")


def _wav_config(root, **overrides) -> ConfigDict:
    cfg = dict(name="wav_folder", sample_rate=SR, segment_length=500, seed=0, root=str(root),
               eval_root="", eval_fraction=0.25, labels=True, skip_bad=False, resample=True)
    return ConfigDict({**cfg, **overrides})


def test_make_dataset_wav_folder_splits(tmp_path):
    for cls in ("a", "b"):
        for k in range(4):
            _write(tmp_path / "train" / cls / f"{k}.wav", _ramp(600))
    _write(tmp_path / "held" / "b" / "x.wav", _ramp(600))
    cfg = _wav_config(tmp_path / "train")
    train, evaluation = make_dataset(cfg, "train"), make_dataset(cfg, "eval")
    # The last quarter of each class folder is held out; ids agree between splits.
    assert [f.rsplit("train", 1)[1] for f in evaluation.files] == ["/a/3.wav", "/b/3.wav"]
    assert len(train) == 6 and not set(train.files) & set(evaluation.files)
    assert train.classes == evaluation.classes == ("a", "b")
    assert [int(evaluation[i]["label"]) for i in range(2)] == [0, 1]
    held = make_dataset(_wav_config(tmp_path / "train", eval_root=str(tmp_path / "held")), "eval")
    assert len(held) == 1 and int(held[0]["label"]) == 1
    unlabelled = make_dataset(_wav_config(tmp_path / "train", labels=False), "eval")
    assert [f.rsplit("train", 1)[1] for f in unlabelled.files] == ["/b/2.wav", "/b/3.wav"]
