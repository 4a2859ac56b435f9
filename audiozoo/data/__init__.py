"""Datasets and batching.

``make_dataset(config.data, split)`` builds the dataset a config names:

* ``synthetic`` (the default everywhere): procedural notes made on the fly, no
  download. The eval split uses ``seed + 1``, so it holds different notes.
* ``wav_folder``: fixed-length crops of the audio files under ``root``. The eval
  split is ``eval_root`` if set, else the last ``eval_fraction`` of the sorted
  files (per class folder with ``labels=True``); train then gets the rest.

``BatchLoader`` turns a dataset into deterministic, resumable, per-host batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audiozoo.data.base import DataError, Dataset
from audiozoo.data.loader import BatchLoader
from audiozoo.data.synthetic import FAMILY_NAMES, SyntheticNotes
from audiozoo.data.wav_folder import DEFAULT_EXTENSIONS, WavFolder, class_of, list_audio_files, split_files

__all__ = [
    "BatchLoader",
    "DataError",
    "Dataset",
    "FAMILY_NAMES",
    "SyntheticNotes",
    "WavFolder",
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


def _synthetic(cfg: Any, split: str) -> SyntheticNotes:
    train = split == "train"
    return SyntheticNotes(
        _field(cfg, "num_train" if train else "num_eval"),
        sample_rate=_field(cfg, "sample_rate"),
        segment_length=_field(cfg, "segment_length"),
        # A different seed gives the eval split its own notes.
        seed=_field(cfg, "seed") + (0 if train else 1),
        pitch_range=tuple(_field(cfg, "pitch_range")),
        families=_field(cfg, "families"),
    )


def _wav_folder(cfg: Any, split: str) -> WavFolder:
    root, eval_root = _field(cfg, "root"), _field(cfg, "eval_root")
    labels = bool(_field(cfg, "labels"))
    extensions = tuple(_field(cfg, "extensions", DEFAULT_EXTENSIONS))
    if not root:
        raise DataError("config.data.root is empty; set --config.data.root=/path/to/audio")
    train_files = list_audio_files(root, extensions)
    # Label ids come from the training folder so that both splits number classes alike.
    classes = sorted({class_of(f, root) for f in train_files}) if labels else None
    if eval_root:
        files = train_files if split == "train" else None
        folder = root if split == "train" else eval_root
    else:
        parts = split_files(train_files, root, _field(cfg, "eval_fraction"), labels=labels)
        files = parts[0] if split == "train" else parts[1]
        folder = root
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
    )


_BUILDERS = {"synthetic": _synthetic, "wav_folder": _wav_folder}
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
