"""Datasets and batching.

``make_dataset(config.data, split)`` builds the dataset a config names:

* ``synthetic`` (the default everywhere): procedural notes made on the fly, no
  download. The eval split uses ``seed + 1``, so it holds different notes. With it and
  ``nsynth``, ``crop`` says where a segment shorter than a note is taken: at a
  ``random`` offset or at the note's ``start`` (its onset).
* ``wav_folder``: fixed-length crops of the audio files under ``root``. The eval
  split is ``eval_root`` if set, else the last ``eval_fraction`` of the sorted
  files (per class folder with ``labels=True``), or the files named in
  ``eval_list`` (Speech Commands' testing_list.txt); train then gets the rest, less
  the files named by the lists in ``train_exclude_lists`` (Speech Commands keeps
  validation_list.txt and testing_list.txt both out of training).
  In label mode, folders starting with "_" are not classes and are left out, and
  class ids follow the training folder's class names in natural order.
  ``pad_mode`` ("end" or "random") says where a file shorter than the segment sits.
* ``csv``: files and labels from a metadata table, folds for the split (ESC-50).
* ``nsynth``: the NSynth json/wav release under ``root`` (``root/nsynth-train/...``).
  Train reads ``nsynth-train``, eval reads ``eval_split`` ("valid" unless set).
  Optional filters: ``pitch_range``, ``sources``, ``instrument_families`` (NSynth
  names; ``families`` names the synthetic timbres) and ``velocities``; empty keeps
  all. ``check_files=True`` checks every selected file's header at start-up.
* ``synthetic_nsynth``: the ``synthetic`` notes with NSynth's example keys.

``audiozoo.data.soundfont`` renders a release in NSynth's format from a General MIDI
soundfont (fluidsynth), which ``nsynth`` then reads like the official one.

``BatchLoader`` turns a dataset into deterministic, resumable, per-host batches.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from audiozoo.data.base import DataError, Dataset
from audiozoo.data.labelled import LabelledAudio, labelled_split, read_table
from audiozoo.data.loader import BatchLoader
from audiozoo.data.nsynth import NSynth, SyntheticNSynth
from audiozoo.data.synthetic import FAMILY_NAMES, SyntheticNotes
from audiozoo.data.wav_folder import (
    DEFAULT_EXTENSIONS,
    WavFolder,
    class_of,
    list_audio_files,
    sorted_classes,
    split_files,
)

__all__ = [
    "FAMILY_NAMES",
    "BatchLoader",
    "DataError",
    "Dataset",
    "LabelledAudio",
    "NSynth",
    "SyntheticNSynth",
    "SyntheticNotes",
    "WavFolder",
    "class_names",
    "label_names",
    "labelled_folder",
    "make_dataset",
]

SPLITS = ("train", "eval")


def make_dataset(data_config: Any, split: str) -> Dataset:
    """The ``split`` ("train" or "eval") of the dataset ``data_config.name`` names.

    ``data_config`` is a ConfigDict (or any object with attributes, or a mapping)
    with ``name``, ``sample_rate``, ``segment_length``, ``seed`` and the fields of
    the chosen dataset (see the module docstring and ``_BUILDERS``).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    name = _field(data_config, "name")
    if name not in _BUILDERS:
        raise DataError(
            f"unknown dataset {name!r} in config.data.name; valid names: {', '.join(_BUILDERS)}"
        )
    return _BUILDERS[name](data_config, split)


def class_names(data_config: Any, label_key: str) -> list[str] | None:
    """Names of the classes behind `label_key`, or None when the data does not name them."""
    if _field(data_config, "name") == "synthetic":
        families = _field(data_config, "families")
        families = families.split(",") if isinstance(families, str) else families
        return list(families) if label_key == "family" else None
    try:
        return list(make_dataset(data_config, "train").classes) or None
    except (DataError, OSError):
        return None


def label_names(dataset: Dataset, label_key: str) -> tuple[str, ...] | None:
    """Names of `dataset`'s classes behind `label_key`, in id order, or None when the
    dataset does not name them (e.g. synthetic pitch)."""
    if label_key == "label":
        return tuple(getattr(dataset, "classes", ())) or None
    if label_key == "family" and hasattr(dataset, "families"):
        return tuple(dataset.families)
    return None


def _synthetic(cfg: Any, split: str, cls: type = SyntheticNotes) -> SyntheticNotes:
    train = split == "train"
    return cls(
        _field(cfg, "num_train" if train else "num_eval"),
        sample_rate=_field(cfg, "sample_rate"),
        segment_length=_field(cfg, "segment_length"),
        # A different seed gives the eval split its own notes.
        seed=_field(cfg, "seed") + (0 if train else 1),
        pitch_range=tuple(_field(cfg, "pitch_range")),
        families=_field(cfg, "families"),
        crop=_field(cfg, "crop", "random"),
    )


def _wav_folder(cfg: Any, split: str) -> WavFolder:
    root, eval_root = _field(cfg, "root"), _field(cfg, "eval_root")
    labels = bool(_field(cfg, "labels"))
    extensions = tuple(_field(cfg, "extensions", DEFAULT_EXTENSIONS))
    if not root:
        raise DataError("config.data.root is empty; set --config.data.root=/path/to/audio")
    train_files = class_files(root, extensions, labels)
    # Label ids come from the training folder so that both splits number classes alike.
    classes = sorted_classes(class_of(f, root) for f in train_files) if labels else None
    eval_list = _field(cfg, "eval_list", "")
    if eval_root:
        files = train_files if split == "train" else class_files(eval_root, extensions, labels)
        folder = root if split == "train" else eval_root
    elif eval_list:
        files, folder = _listed_split(train_files, root, eval_list, split), root
    else:
        parts = split_files(train_files, root, _field(cfg, "eval_fraction"), labels=labels)
        files = parts[0] if split == "train" else parts[1]
        folder = root
    if split == "train":
        files = _without_listed(files, root, tuple(_field(cfg, "train_exclude_lists", ())))
    return WavFolder(
        folder,
        sample_rate=_field(cfg, "sample_rate"),
        segment_length=_field(cfg, "segment_length"),
        labels=labels,
        skip_bad=bool(_field(cfg, "skip_bad")),
        resample=bool(_field(cfg, "resample")),
        extensions=extensions,
        files=files,
        classes=classes,
        seed=_field(cfg, "seed"),
        pad_mode=_field(cfg, "pad_mode", "end"),
    )


def labelled_folder(cfg: Any, folder: str) -> WavFolder:
    """Every file of a folder of class subfolders (folder/CLASS/...), read as `cfg` (a data
    config) reads audio; e.g. a test set to evaluate a trained classifier on."""
    extensions = tuple(_field(cfg, "extensions", DEFAULT_EXTENSIONS))
    return WavFolder(folder, sample_rate=_field(cfg, "sample_rate"),
                     segment_length=_field(cfg, "segment_length"), labels=True,
                     skip_bad=bool(_field(cfg, "skip_bad", False)),
                     resample=bool(_field(cfg, "resample", True)), extensions=extensions,
                     files=class_files(folder, extensions, True), seed=_field(cfg, "seed"),
                     pad_mode=_field(cfg, "pad_mode", "end"))


def class_files(root: str, extensions, labels: bool) -> list[str]:
    """The audio files under `root`; in label mode without folders starting with "_",
    which are not classes (Speech Commands' _background_noise_)."""
    files = list_audio_files(root, extensions)
    if labels:
        files = [f for f in files if not class_of(f, root).startswith("_")]
    if not files:
        raise DataError(f"{root!r} holds no audio outside folders starting with '_'; "
                        "put each class's files in a folder named after the class")
    return files


def _listed_split(files: list[str], root: str, eval_list: str, split: str) -> list[str]:
    """Eval = the files a list names (paths relative to root, one per line: Speech Commands'
    testing_list.txt); train = all the others."""
    path = os.path.join(root, eval_list)
    listed = _read_list(path, "eval_list")
    chosen = [f for f in files if (os.path.normpath(os.path.relpath(f, root)) in listed) == (split == "eval")]
    if not chosen:
        raise DataError(f"the {split} split is empty: {path!r} lists "
                        f"{'none' if split == 'eval' else 'all'} of the files under {root!r}")
    return chosen


def _without_listed(files: list[str], root: str, lists: tuple[str, ...]) -> list[str]:
    """`files` less those the `lists` (relative to root) name: Speech Commands keeps both
    validation_list.txt and testing_list.txt out of training, one of them being eval_list."""
    if not lists:
        return files
    listed = set().union(*(_read_list(os.path.join(root, name), "train_exclude_lists") for name in lists))
    kept = [f for f in files if os.path.normpath(os.path.relpath(f, root)) not in listed]
    if not kept:
        raise DataError(f"the train split is empty: data.train_exclude_lists {list(lists)} name "
                        f"every training file under {root!r}")
    return kept


def _read_list(path: str, key: str) -> set[str]:
    """The normalised relative paths a file list names, one per line."""
    if not os.path.isfile(path):
        raise DataError(f"file list {path!r} does not exist; set --config.data.{key} "
                        "(relative to data.root) or leave it empty")
    with open(path) as f:
        return {os.path.normpath(line.strip()) for line in f if line.strip()}


def _csv(cfg: Any, split: str) -> LabelledAudio:
    root = _field(cfg, "root")
    if not root:
        raise DataError("config.data.root is empty; set --config.data.root=/path/to/dataset")
    columns = dict(file_column=_field(cfg, "file_column"), label_column=_field(cfg, "label_column"),
                   fold_column=_field(cfg, "fold_column"))
    rows = read_table(os.path.join(root, _field(cfg, "csv_path")), **columns)
    files, label_of, classes = labelled_split(
        rows, root=root, audio_dir=_field(cfg, "audio_dir"), eval_folds=_field(cfg, "eval_folds"),
        split=split, multi_label=bool(_field(cfg, "multi_label")),
        separator=_field(cfg, "label_separator"), **columns)
    audio = WavFolder(os.path.join(root, _field(cfg, "audio_dir")),
                      sample_rate=_field(cfg, "sample_rate"), segment_length=_field(cfg, "segment_length"),
                      skip_bad=bool(_field(cfg, "skip_bad")), resample=bool(_field(cfg, "resample")),
                      files=files, seed=_field(cfg, "seed"), pad_mode=_field(cfg, "pad_mode", "end"))
    return LabelledAudio(audio, label_of, classes)


def _nsynth(cfg: Any, split: str) -> NSynth:
    root = _field(cfg, "root")
    if not root:
        raise DataError("config.data.root is empty; set --config.data.root to the folder holding nsynth-train/")
    if _field(cfg, "sample_rate") != NSynth.sample_rate:
        raise DataError(f"NSynth is recorded at {NSynth.sample_rate} Hz but config.data.sample_rate is "
                        f"{_field(cfg, 'sample_rate')}; set --config.data.sample_rate={NSynth.sample_rate}")
    return NSynth(
        root,
        "train" if split == "train" else _field(cfg, "eval_split", "valid"),
        pitch_range=_field(cfg, "pitch_range"),
        sources=_field(cfg, "sources", ()),
        families=_field(cfg, "instrument_families", ()),
        velocities=_field(cfg, "velocities", ()),
        segment_length=_field(cfg, "segment_length"),
        crop=_field(cfg, "crop", "random"),
        seed=_field(cfg, "seed"),
        check=bool(_field(cfg, "check_files", False)),
    )


def _synthetic_nsynth(cfg: Any, split: str) -> SyntheticNSynth:
    return _synthetic(cfg, split, SyntheticNSynth)


_BUILDERS = {"synthetic": _synthetic, "wav_folder": _wav_folder, "csv": _csv,
             "nsynth": _nsynth, "synthetic_nsynth": _synthetic_nsynth}
_MISSING = object()


def _field(cfg: Any, key: str, default: Any = _MISSING) -> Any:
    """``cfg.key`` (or ``cfg[key]``), with a DataError naming the key if it is absent."""
    if isinstance(cfg, Mapping):
        value = cfg.get(key, default)
    else:
        value = getattr(cfg, key, default)
    if value is _MISSING:
        raise DataError(f"the data config has no field {key!r}; add config.data.{key} to the config")
    return value
