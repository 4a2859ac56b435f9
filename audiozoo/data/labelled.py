"""Labelled audio from a metadata table: the ESC-50 layout (Piczak 2015).

    root/meta/esc50.csv   filename,fold,target,category,...
    root/audio/1-100032-A-0.wav

Each row names a file and its class (or, for multi-label tables, several classes joined by a
separator, giving a multi-hot label); a fold column splits train from eval, as the ESC-50
five-fold protocol does. The audio side is a `WavFolder` over the listed files, so crops,
resampling and bad-file handling are the same as for any folder of audio.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np

from audiozoo.data.base import DataError, DatasetMixin, Example
from audiozoo.data.wav_folder import WavFolder, sorted_classes


class LabelledAudio(DatasetMixin):
    """Crops of `audio`'s files with `label` (int32 id, or float32 multi-hot) per file."""

    def __init__(self, audio: WavFolder, label_of: dict[str, np.ndarray], classes: Sequence[str]):
        self.audio = audio
        self.classes = tuple(classes)
        self.seed = audio.seed
        # audio.files may have lost unreadable files (skip_bad): look labels up by path.
        self.labels = np.stack([label_of[f] for f in audio.files])

    sample_rate = property(lambda self: self.audio.sample_rate)
    segment_length = property(lambda self: self.audio.segment_length)
    num_classes = property(lambda self: len(self.classes))
    files = property(lambda self: self.audio.files)

    def __len__(self) -> int:
        return len(self.audio)

    def example(self, index: int, rng: np.random.Generator) -> Example:
        # The label of the file actually used (skip_bad may stand another one in).
        index, audio = self.audio.crop(index, rng)
        return {"audio": audio, "label": self.labels[index]}


def read_table(path: str, file_column: str, label_column: str, fold_column: str) -> list[dict]:
    """Rows of a CSV metadata file, checked for the columns the config names."""
    if not os.path.isfile(path):
        raise DataError(f"metadata file {path!r} does not exist; set --config.data.csv_path "
                        "(relative to data.root)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise DataError(f"metadata file {path!r} has no rows")
    needed = [c for c in (file_column, label_column, fold_column) if c]
    missing = [c for c in needed if c not in rows[0]]
    if missing:
        raise DataError(f"metadata file {path!r} has no column(s) {missing}; its columns are "
                        f"{list(rows[0])}; set --config.data.file_column / label_column / fold_column")
    return rows


def labelled_split(rows: list[dict], *, root: str, audio_dir: str, file_column: str,
                   label_column: str, fold_column: str, eval_folds: Sequence, split: str,
                   multi_label: bool, separator: str):
    """(files, {file: label}, classes) of one split; eval = rows whose fold is in eval_folds."""
    names = [_names(r[label_column], multi_label, separator) for r in rows]
    classes = list(sorted_classes(n for row_names in names for n in row_names))
    eval_folds = {str(f) for f in eval_folds}
    files, label_of = [], {}
    for row, row_names in zip(rows, names):
        in_eval = str(row[fold_column]) in eval_folds if fold_column else False
        if in_eval != (split == "eval"):
            continue
        path = os.path.join(root, audio_dir, row[file_column])
        files.append(path)
        label_of[path] = _encode(row_names, classes, multi_label)
    if not files:
        raise DataError(f"no rows of the {split} split (eval folds {sorted(eval_folds)}) in the "
                        f"metadata under {root!r}; check --config.data.eval_folds")
    return files, label_of, classes


def _names(cell: str, multi_label: bool, separator: str) -> list[str]:
    return [n.strip() for n in cell.split(separator) if n.strip()] if multi_label else [cell.strip()]


def _encode(names: list[str], classes: list[str], multi_label: bool) -> np.ndarray:
    if not multi_label:
        return np.int32(classes.index(names[0]))
    hot = np.zeros(len(classes), np.float32)
    hot[[classes.index(n) for n in names]] = 1.0
    return hot
