"""NSynth: the official json/wav release on disk, and a synthetic stand-in.

NSynth (Engel et al. 2017, "Neural Audio Synthesis of Musical Notes with WaveNet
Autoencoders", arXiv 1704.01279) holds 305,979 notes of 1,006 instruments, each 4 s
of mono audio at 16 kHz (64,000 samples), labelled with MIDI pitch, velocity,
instrument, instrument family and source, and 10 binary sonic qualities.

Layout (the extracted ``nsynth-{train,valid,test}.jsonwav.tar.gz`` archives)::

    root/
      nsynth-train/
        examples.json            {note_str: {"pitch": 43, "velocity": 50, ...}, ...}
        audio/<note_str>.wav     e.g. audio/guitar_acoustic_014-043-050.wav
      nsynth-valid/ ...
      nsynth-test/ ...

``NSynth(root, split)`` reads ``examples.json`` when built, keeps the notes that
pass its filters and orders them by ``note_str``, so an index means the same note on
every host and run. Audio is read when an example is asked for; each file's header
is checked then (16 kHz, exactly 64,000 samples), and ``check_files()`` checks every
selected file up front, which is worth it for a subset but slow for the 289k-note
train split. Nothing is ever skipped: a bad file raises a DataError naming it.

Example keys (all numpy, so the loader can stack them): ``audio`` float32
[segment_length] (the whole note, or a crop at an offset drawn from the rng given to
``example``; with ``crop="start"`` always the note's first samples, its attack, as a
note generator such as GANSynth needs), int32 scalars ``pitch``, ``velocity``, ``instrument``,
``instrument_family``, ``instrument_source`` and ``family`` (= ``instrument_family``,
the key SyntheticNotes uses, so family-conditioned configs work with either), and
``qualities`` int32 [10]. ``ds[i]`` adds ``note_str`` (a Python str); ``example``
leaves it out because strings cannot be batched onto devices, and
``ds.note_str(i)`` / ``ds.note_strs`` give it by index.

``SyntheticNSynth`` makes SyntheticNotes' procedural notes with the same keys (4 s at
16 kHz by default, source "synthetic"), so NSynth configs run without the download.

The GANSynth subset (Engel et al. 2019, arXiv 1902.08710) is the acoustic notes of
MIDI pitch 24-84: ``NSynth.gansynth(root, split)`` or ``NSynth(root, split,
**GANSYNTH_FILTER)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from audiozoo.audio.io import AudioError, audio_info, read_audio
from audiozoo.data.base import DataError, DatasetMixin, Example, check_crop
from audiozoo.data.synthetic import FAMILY_NAMES, SyntheticNotes

SPLITS: tuple[str, ...] = ("train", "valid", "test")
SAMPLE_RATE = 16000
NUM_SAMPLES = 64000  # 4 s at 16 kHz
SOURCES: tuple[str, ...] = ("acoustic", "electronic", "synthetic")
FAMILIES: tuple[str, ...] = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet",
    "organ", "reed", "string", "synth_lead", "vocal",
)
QUALITIES: tuple[str, ...] = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)
GANSYNTH_FILTER = {"pitch_range": (24, 84), "sources": ("acoustic",)}
DOWNLOAD_URL = "https://magenta.tensorflow.org/datasets/nsynth"

# Integer label fields of an examples.json entry, with their valid ranges (inclusive).
_INT_FIELDS: dict[str, tuple[int, int]] = {
    "pitch": (0, 127),
    "velocity": (0, 127),
    "instrument": (0, 2**31 - 1),
    "instrument_family": (0, len(FAMILIES) - 1),
    "instrument_source": (0, len(SOURCES) - 1),
}



class NSynth(DatasetMixin):
    """The notes of one split of the NSynth json/wav release; see the module docstring.

    Args:
      root: the folder holding ``nsynth-{split}/``.
      split: "train", "valid" or "test".
      pitch_range: keep MIDI pitches in [low, high] (inclusive); None keeps all.
      sources: keep these instrument sources (names or ids 0-2; a string is a
        comma-separated list); None or empty keeps all.
      families: keep these instrument families (names or ids 0-10), as ``sources``.
      velocities: keep these MIDI velocities; None or empty keeps all.
      segment_length: samples per example, at most 64,000; None is the whole note.
      crop: where a shorter segment is taken: "random" (an offset from the example's rng)
        or "start" (the onset).
      seed: seed of the fixed rng behind ``dataset[index]``.
      check: check every selected file's header now (see ``check_files``).

    Attributes:
      note_strs: the selected notes' names, sorted; index i is note_strs[i].
      metadata: int32 arrays of the selected notes' labels by field name
        (``pitch``, ..., ``qualities`` [len, 10]).
      classes: the 11 family names, indexed by ``instrument_family``.
    """

    sample_rate = SAMPLE_RATE
    classes = FAMILIES

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        pitch_range: Sequence[int] | None = None,
        sources: Sequence[str | int] | str | None = None,
        families: Sequence[str | int] | str | None = None,
        velocities: Sequence[int] | str | None = None,
        segment_length: int | None = None,
        crop: str = "random",
        seed: int = 0,
        check: bool = False,
    ):
        self.crop = check_crop(crop)
        self.root = os.fspath(root)
        self.split = split
        self.split_dir = _split_dir(self.root, split)
        self.audio_dir = os.path.join(self.split_dir, "audio")
        self.segment_length = _check_segment_length(segment_length)
        self.seed = int(seed)
        names, columns = _read_examples(os.path.join(self.split_dir, "examples.json"))
        keep = self._select(columns, pitch_range, sources, families, velocities)
        self.note_strs = tuple(n for n, k in zip(names, keep) if k)
        self.metadata = {key: value[keep] for key, value in columns.items()}
        if check:
            self.check_files()

    @classmethod
    def gansynth(cls, root: str | os.PathLike, split: str = "train", **kwargs) -> NSynth:
        """The GANSynth subset: acoustic notes of MIDI pitch 24-84."""
        return cls(root, split, **GANSYNTH_FILTER, **kwargs)

    def __len__(self) -> int:
        return len(self.note_strs)

    def __getitem__(self, index: int) -> dict:
        index = self._check_index(index)
        return {**super().__getitem__(index), "note_str": self.note_strs[index]}

    def note_str(self, index: int) -> str:
        return self.note_strs[self._check_index(index)]

    def path(self, index: int) -> str:
        """The wav file of note ``index``."""
        return os.path.join(self.audio_dir, self.note_str(index) + ".wav")

    def note(self, index: int) -> np.ndarray:
        """The whole note ``index`` as float32 [64000], its header checked first."""
        index = self._check_index(index)
        path = self._check_file(index)
        try:
            audio = read_audio(path)
        except AudioError as e:
            raise DataError(f"NSynth note {self.note_strs[index]!r}: {e}") from e
        return audio

    def example(self, index: int, rng: np.random.Generator) -> Example:
        index = self._check_index(index)
        offset = int(rng.integers(NUM_SAMPLES - self.segment_length + 1))
        offset = offset if self.crop == "random" else 0
        audio = self.note(index)[offset : offset + self.segment_length]
        labels = {key: value[index] for key, value in self.metadata.items()}
        return _nsynth_example(audio, **labels)

    def check_files(self) -> None:
        """Checks every selected file's header; one DataError lists all bad files."""
        problems = []
        for index in range(len(self)):
            try:
                self._check_file(index)
            except DataError as e:
                problems.append(str(e))
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise DataError(
                f"{len(problems)} of the {len(self)} selected NSynth files under {self.audio_dir!r} "
                f"are bad:\n  {shown}{more}"
            )

    def _check_file(self, index: int) -> str:
        """The path of note ``index`` after checking it exists, is 16 kHz and 64,000 samples."""
        path, note = self.path(index), self.note_strs[index]
        fix = f"re-extract nsynth-{self.split}.jsonwav.tar.gz into {self.root!r}"
        if not os.path.isfile(path):
            raise DataError(f"NSynth note {note!r} is listed in examples.json but {path!r} is missing; {fix}")
        try:
            info = audio_info(path)
        except AudioError as e:
            raise DataError(f"NSynth note {note!r}: {e}") from e
        if info.sample_rate != SAMPLE_RATE or info.frames != NUM_SAMPLES:
            raise DataError(
                f"NSynth file {path!r} has {info.frames} samples at {info.sample_rate} Hz; expected "
                f"exactly {NUM_SAMPLES} samples at {SAMPLE_RATE} Hz (4 s); {fix}"
            )
        return path

    def _select(self, columns, pitch_range, sources, families, velocities) -> np.ndarray:
        """The mask of notes passing every filter; names the filter that leaves none."""
        filters = [
            ("pitch_range", pitch_range, "pitch", _pitch_mask),
            ("sources", sources, "instrument_source", _id_mask(SOURCES, "source", "sources")),
            ("families", families, "instrument_family", _id_mask(FAMILIES, "family", "families")),
            ("velocities", velocities, "velocity", _velocity_mask),
        ]
        keep = np.ones(len(columns["pitch"]), bool)
        for name, wanted, key, mask_fn in filters:
            if _no_filter(wanted):
                continue
            passed = keep & mask_fn(columns[key], wanted)
            if not passed.any():
                raise DataError(
                    f"no NSynth notes left in {self.split_dir!r} after the {name} filter {wanted!r}; the "
                    f"{int(keep.sum())} notes before it have {_describe(key, columns[key][keep])}; "
                    f"widen the {name} filter"
                )
            keep = passed
        return keep


class SyntheticNSynth(SyntheticNotes):
    """SyntheticNotes with NSynth's example keys, 4 s at 16 kHz by default.

    ``instrument_family``, ``family`` and ``instrument`` are the index of the note's
    timbre in ``families`` (also ``classes``); ``instrument_source`` is 2
    ("synthetic"); ``qualities`` are all zero. ``ds[i]`` adds a ``note_str`` in
    NSynth's style, e.g. "saw_synthetic_002-060-100".
    """

    def __init__(
        self,
        num_examples: int = 4096,
        *,
        sample_rate: int = SAMPLE_RATE,
        segment_length: int = NUM_SAMPLES,
        seed: int = 0,
        pitch_range: Sequence[int] = GANSYNTH_FILTER["pitch_range"],
        families: Sequence[str] | str = FAMILY_NAMES,
        crop: str = "random",
    ):
        super().__init__(num_examples, sample_rate=sample_rate, segment_length=segment_length,
                         seed=seed, pitch_range=pitch_range, families=families, crop=crop)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.families

    def __getitem__(self, index: int) -> dict:
        return {**super().__getitem__(index), "note_str": self.note_str(index)}

    def note_str(self, index: int) -> str:
        spec = self.note_spec(index)
        return f"{self.families[spec.family]}_synthetic_{spec.family:03d}-{spec.pitch:03d}-{spec.velocity:03d}"

    def example(self, index: int, rng: np.random.Generator) -> Example:
        out = super().example(index, rng)
        family = out["family"]
        return _nsynth_example(
            out["audio"], pitch=out["pitch"], velocity=out["velocity"], instrument=family,
            instrument_family=family, instrument_source=SOURCES.index("synthetic"),
            qualities=np.zeros(len(QUALITIES), np.int32),
        )


def _nsynth_example(audio, *, pitch, velocity, instrument, instrument_family, instrument_source,
                    qualities) -> Example:
    return {
        "audio": np.asarray(audio, np.float32),
        "pitch": np.int32(pitch),
        "velocity": np.int32(velocity),
        "instrument": np.int32(instrument),
        "instrument_family": np.int32(instrument_family),
        "family": np.int32(instrument_family),
        "instrument_source": np.int32(instrument_source),
        "qualities": np.asarray(qualities, np.int32),
    }


# ----------------------------------------------------------------------------- reading


def _split_dir(root: str, split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown NSynth split {split!r}; valid splits: {', '.join(SPLITS)}")
    split_dir = os.path.join(root, f"nsynth-{split}")
    fix = (f"download nsynth-{split}.jsonwav.tar.gz from {DOWNLOAD_URL} and extract it into {root!r}, "
           f"giving {os.path.join(split_dir, 'examples.json')!r} and {os.path.join(split_dir, 'audio')!r}")
    if not os.path.isdir(root):
        raise DataError(f"NSynth root {root!r} does not exist; {fix}")
    if not os.path.isdir(split_dir):
        # A common slip: pointing root at the split folder itself.
        hint = (" (root should be the folder that contains nsynth-*/, not a split folder)"
                if os.path.isfile(os.path.join(root, "examples.json")) else "")
        raise DataError(f"NSynth split folder {split_dir!r} does not exist{hint}; {fix}")
    for needed in ("examples.json", "audio"):
        if not os.path.exists(os.path.join(split_dir, needed)):
            raise DataError(f"{os.path.join(split_dir, needed)!r} does not exist; {fix}")
    return split_dir


def _read_examples(path: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """examples.json as its sorted note names and int32 label columns."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as e:
        raise DataError(f"cannot read {path!r} ({e}); re-extract it from the NSynth archive") from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataError(f"{path!r} is not valid JSON ({e}); re-extract it from the NSynth archive") from e
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path!r} should map note names to their labels but holds "
                        f"{type(raw).__name__} {str(raw)[:80]!r}; re-extract it from the NSynth archive")
    names = sorted(raw)
    rows = [_parse_entry(path, name, raw[name]) for name in names]
    columns = {key: np.array([row[i] for row in rows], np.int32) for i, key in enumerate(_INT_FIELDS)}
    columns["qualities"] = np.array([row[-1] for row in rows], np.int32).reshape(len(rows), len(QUALITIES))
    return names, columns


def _parse_entry(path: str, name: str, entry) -> tuple:
    """(pitch, velocity, instrument, family, source, qualities) of one entry, checked."""
    where = f"{path!r} entry {name!r}"
    fix = "re-extract examples.json from the NSynth archive"
    if not isinstance(entry, dict):
        raise DataError(f"{where} is {type(entry).__name__}, not an object of labels; {fix}")
    values = []
    for key, (low, high) in _INT_FIELDS.items():
        value = _field(entry, key, where, fix)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DataError(f"{where} has {key}={value!r}; expected an integer in [{low}, {high}]; {fix}")
        values.append(value)
    qualities = _field(entry, "qualities", where, fix)
    if not (isinstance(qualities, list) and len(qualities) == len(QUALITIES)
            and all(q in (0, 1) and not isinstance(q, float) for q in qualities)):
        raise DataError(f"{where} has qualities={qualities!r}; expected {len(QUALITIES)} flags (0 or 1); {fix}")
    return (*values, qualities)


def _field(entry: dict, key: str, where: str, fix: str):
    if key not in entry:
        raise DataError(f"{where} has no field {key!r} (fields: {', '.join(sorted(entry))}); {fix}")
    return entry[key]


# ----------------------------------------------------------------------------- filters


def _no_filter(wanted) -> bool:
    if wanted is None:
        return True
    return not wanted.strip() if isinstance(wanted, str) else len(wanted) == 0


def _as_list(wanted) -> list:
    # A string (e.g. from a command-line override) is a comma-separated list.
    if isinstance(wanted, str):
        return [w.strip() for w in wanted.split(",") if w.strip()]
    return list(wanted)


def check_pitch_range(pitch_range) -> tuple[int, int]:
    """(low, high) of a MIDI pitch range, inclusive; DataError unless 0 <= low <= high <= 127."""
    try:
        low, high = (int(p) for p in pitch_range)
    except (TypeError, ValueError):
        raise DataError(f"pitch_range must be two MIDI numbers (low, high), got {pitch_range!r}") from None
    if not 0 <= low <= high <= 127:
        raise DataError(f"pitch_range {pitch_range!r} must satisfy 0 <= low <= high <= 127")
    return low, high


def _pitch_mask(pitch: np.ndarray, pitch_range) -> np.ndarray:
    low, high = check_pitch_range(pitch_range)
    return (pitch >= low) & (pitch <= high)


def _id_mask(names: tuple[str, ...], what: str, plural: str):
    """A mask function for a filter by name or id over ``names``."""

    def mask(ids: np.ndarray, wanted) -> np.ndarray:
        return np.isin(ids, [_id_of(w, names, what, plural) for w in _as_list(wanted)])

    return mask


def _id_of(value, names: tuple[str, ...], what: str, plural: str) -> int:
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(names):
        return int(value)
    if isinstance(value, str) and value.isdigit() and int(value) < len(names):
        return int(value)
    valid = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    raise DataError(f"unknown NSynth instrument {what} {value!r}; valid {plural}: {valid}")


def _velocity_mask(velocity: np.ndarray, wanted) -> np.ndarray:
    try:
        values = [int(v) for v in _as_list(wanted)]
    except (TypeError, ValueError):
        raise DataError(f"velocities must be MIDI velocities (ints), got {wanted!r}") from None
    return np.isin(velocity, values)


def _describe(key: str, values: np.ndarray) -> str:
    """What a label column holds, for error messages."""
    present = sorted({int(v) for v in values})
    if key == "pitch":
        return f"pitches {present[0]}-{present[-1]}"
    if key == "instrument_source":
        return "sources " + ", ".join(SOURCES[v] for v in present)
    if key == "instrument_family":
        return "families " + ", ".join(FAMILIES[v] for v in present)
    return "velocities " + ", ".join(map(str, present))


def _check_segment_length(segment_length: int | None) -> int:
    if segment_length is None:
        return NUM_SAMPLES
    if (isinstance(segment_length, bool) or not isinstance(segment_length, (int, np.integer))
            or not 1 <= segment_length <= NUM_SAMPLES):
        raise DataError(
            f"NSynth segment_length must be an integer in [1, {NUM_SAMPLES}] (notes are 4 s at 16 kHz), "
            f"got {segment_length!r}; fix --config.data.segment_length"
        )
    return int(segment_length)
