"""WavFolder: a dataset of fixed-length crops from a directory tree of audio files.

Layout::

    root/                      root/
      a.wav                      dog/1.wav      <- labels=True: class "dog"
      sub/b.flac                 dog/more/2.wav <- still "dog" (first-level folder)
                                 cat/3.flac

Files are found recursively (following symlinks) and sorted by path, so the same
tree gives the same indices on every host. Every file's header is checked when the
dataset is built: a corrupt, truncated, unreadable or empty file raises an AudioError
naming it (or, with ``skip_bad=True``, a warning naming it, and the file is left out), so
a bad file fails the run at start-up, not hours in. A file that passes that check but
fails to decode later (NaN samples, damaged since) raises the same way when it is read;
with ``skip_bad=True`` the next file in index order that decodes stands in for it, with a
warning the first time, so batches stay a pure function of (seed, step).

Each example is a crop of ``segment_length`` samples at ``sample_rate`` from a
uniform random offset drawn from the rng given to ``example``. Files shorter than
``segment_length`` are zero-padded: at the end (``pad_mode="end"``), or placed at a
uniform random position inside the segment drawn from the same rng (``"random"``), so
that a classifier does not learn that sounds always start at sample 0. Files are decoded whole by
``read_audio`` (resampled with soxr if their rate differs, unless ``resample=False``,
which makes a mismatch an error), so this suits clip-sized files, not hour-long ones.
Samples are returned as decoded and nothing is clipped: integer PCM lies in [-1, 1),
while float files and resampled audio may exceed full scale slightly.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Sequence

import numpy as np

from audiozoo.audio.io import AudioError, AudioInfo, audio_info, read_audio
from audiozoo.data.base import DataError, DatasetMixin, Example

DEFAULT_EXTENSIONS = (".wav", ".flac")
PAD_MODES = ("end", "random")


def list_audio_files(root: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> list[str]:
    """Audio files under ``root`` (recursive, case-insensitive extensions), sorted by path.

    Raises DataError if ``root`` does not exist or holds no matching file.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        what = "is not a directory" if os.path.exists(root) else "does not exist"
        raise DataError(f"data directory {root!r} {what}; set --config.data.root=... to a folder of audio files")
    suffixes = tuple(e.lower() for e in extensions)
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()  # walk order does not matter after the sort below, but keep it stable
        found += [os.path.join(dirpath, f) for f in filenames if f.lower().endswith(suffixes)]
    if not found:
        raise DataError(
            f"data directory {root!r} has no audio files with extensions {list(extensions)} "
            "(searched recursively); point --config.data.root at the audio, or name its "
            "extensions, e.g. --config.data.extensions=\"('.mp3', '.ogg')\""
        )
    # Sort by path components so "a/x.wav" and "a-b/x.wav" order the same on every OS.
    return sorted(found, key=lambda p: os.path.relpath(p, root).split(os.sep))


def class_of(path: str, root: str) -> str:
    """The first-level folder under ``root`` that holds ``path``; DataError if none."""
    parts = os.path.relpath(path, root).split(os.sep)
    if len(parts) < 2:
        raise DataError(
            f"{path!r} lies directly in {root!r}, but labels=True takes each file's class from "
            "its first-level subfolder (root/CLASS/.../file.wav); move it into a class folder "
            "or set --config.data.labels=False"
        )
    return parts[0]


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: "class2" before "class10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def sorted_classes(names) -> tuple[str, ...]:
    """Class names in natural order (the order class ids are given in)."""
    return tuple(sorted(set(names), key=natural_key))


def split_files(
    files: Sequence[str], root: str, eval_fraction: float, *, labels: bool = False
) -> tuple[list[str], list[str]]:
    """Splits a sorted file list into (train, eval) by taking the last ``eval_fraction``.

    With ``labels=True`` the split is taken per class (the last files of each class
    folder), because the tail of the whole sorted list would be all one class.
    A class with a single file keeps it for training.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise DataError(
            f"eval_fraction must be in (0, 1), got {eval_fraction}; set --config.data.eval_fraction "
            "or give a separate --config.data.eval_root"
        )
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(class_of(f, root) if labels else "", []).append(f)
    train, evaluation = [], []
    for group in groups.values():
        n = len(group)
        n_eval = min(n - 1, max(1, round(eval_fraction * n))) if n > 1 else 0
        train += group[: n - n_eval]
        evaluation += group[n - n_eval :]
    if not evaluation:
        raise DataError(
            f"cannot split {len(files)} file(s) under {root!r} into train and eval sets; "
            "add files or give a separate --config.data.eval_root"
        )
    return train, evaluation


def _target_length(frames: int, file_rate: int, sample_rate: int) -> int:
    """Length after resampling to ``sample_rate``, rounded as soxr rounds it."""
    return (2 * frames * sample_rate + file_rate) // (2 * file_rate)


class WavFolder(DatasetMixin):
    """Random fixed-length crops of the audio files under ``root``; see the module docstring.

    Args:
      root: folder searched recursively for files ending in one of ``extensions``.
      sample_rate: rate of the returned audio.
      segment_length: samples per example; shorter files are zero-padded.
      labels: add an int32 ``label``: the index of the file's first-level subfolder
        in ``classes`` (folder names in natural order: "2" before "10").
      skip_bad: warn about unreadable files instead of raising: leave them out at
        start-up, and stand the next good file in for one that fails to decode later.
      resample: resample files whose rate differs; False makes that an AudioError.
      extensions: file name endings to include (case-insensitive).
      files: use these files (under ``root``) instead of scanning, e.g. one side of
        ``split_files``.
      classes: class names to number labels by, so that a split or a separate eval
        folder uses the same ids as training; defaults to the folders found.
      seed: seed of the fixed rng behind ``dataset[index]``.
      pad_mode: where a short file sits in its segment: "end" (at the start, zeros
        after it) or "random" (a random position drawn from the example's rng).

    Attributes:
      files: paths of the files kept (under ``root``), in index order.
      lengths: int64 [len] each file's length in samples at ``sample_rate``.
      classes: class names in id order (label mode only; empty tuple otherwise).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        sample_rate: int,
        segment_length: int,
        labels: bool = False,
        skip_bad: bool = False,
        resample: bool = True,
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        files: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        seed: int = 0,
        pad_mode: str = "end",
    ):
        if pad_mode not in PAD_MODES:
            raise DataError(f"pad_mode={pad_mode!r} is not one of {list(PAD_MODES)}; set "
                            "--config.data.pad_mode")
        if sample_rate < 1 or segment_length < 1:
            raise DataError(
                f"sample_rate and segment_length must be positive, got {sample_rate} and {segment_length}"
            )
        self.root = os.fspath(root)
        self.sample_rate = int(sample_rate)
        self.segment_length = int(segment_length)
        self.labels = bool(labels)
        self.resample = bool(resample)
        self.skip_bad = bool(skip_bad)
        self.seed = int(seed)
        self.pad_mode = pad_mode
        # Files warned about; examples are built in several threads.
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()
        if files is None:
            files = list_audio_files(self.root, extensions)
        elif not files:
            raise DataError(f"empty file list given for data directory {self.root!r}")
        self.classes = self._init_classes(files, classes)
        self.files, self.lengths = self._check_files(files)
        if self.labels:
            self._label_ids = np.array([self.classes.index(class_of(f, self.root)) for f in self.files], np.int32)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def example(self, index: int, rng: np.random.Generator) -> Example:
        index, audio = self.crop(index, rng)
        out = {"audio": audio}
        if self.labels:
            out["label"] = self._label_ids[index]
        return out

    def crop(self, index: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """(index of the file used, a random crop of it).

        A file that fails to decode (NaN samples, truncated, unreadable: damaged after the
        start-up check) is an AudioError naming it; with skip_bad it is replaced by the next
        file in index order that decodes, with a warning the first time. The choice depends
        only on the index, the rng and the files, so the batch at a step stays a pure
        function of (seed, step) and a resumed run sees what an uninterrupted one saw.
        """
        index = self._check_index(index)
        for used in ((index + k) % len(self) for k in range(len(self))):
            # The offset comes from the recorded length so it depends only on the rng and
            # the file's header, not on decoding details.
            length = int(self.lengths[used])
            offset = int(rng.integers(max(length - self.segment_length, 0) + 1))
            # Drawn for every file (not only short ones) so the rng stream does not depend on
            # which files are short.
            place = int(rng.integers(max(self.segment_length - length, 0) + 1))
            try:
                audio = read_audio(self.files[used], self.sample_rate, resample=self.resample)
            except AudioError as e:
                self._bad_file(self.files[used], e, "using the next file in its place")
                continue
            return used, self._crop(audio, offset, place if self.pad_mode == "random" else 0)
        raise DataError(f"none of the {len(self)} audio files under {self.root!r} decodes any "
                        "more (see the warnings above); fix or replace them")

    def _bad_file(self, path: str, error: AudioError, action: str) -> None:
        """Raises `error` with the way to skip such files, or (skip_bad) warns once per file."""
        if not self.skip_bad:
            raise AudioError(f"{error} To skip bad files with a warning instead, set "
                             "--config.data.skip_bad=True.") from error
        with self._warned_lock:
            if path in self._warned:
                return
            self._warned.add(path)
        warnings.warn(f"skipping bad audio file {path!r} ({action}): {error}", stacklevel=3)

    def _crop(self, audio: np.ndarray, offset: int, place: int = 0) -> np.ndarray:
        """``segment_length`` samples from ``offset``; a short crop starts at ``place``
        (clamped so it fits) with zeros around it."""
        crop = audio[offset : offset + self.segment_length]
        if len(crop) < self.segment_length:
            before = min(place, self.segment_length - len(crop))
            crop = np.pad(crop, (before, self.segment_length - len(crop) - before))
        return crop.astype(np.float32, copy=False)

    def _init_classes(self, files: Sequence[str], classes: Sequence[str] | None) -> tuple[str, ...]:
        if not self.labels:
            return ()
        found = {class_of(f, self.root) for f in files}  # also rejects files directly in root
        if classes is None:
            return sorted_classes(found)
        classes = tuple(classes)
        unknown = sorted(found - set(classes))
        if unknown:
            raise DataError(
                f"class folders {unknown} under {self.root!r} are not among the training classes "
                f"{list(classes)}; rename them or remove them from the eval data"
            )
        return classes

    def _check_files(self, files: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Reads every header; returns the usable files and their lengths at ``sample_rate``."""
        kept, lengths = [], []
        for path in files:
            try:
                info = _checked_info(path)
            except AudioError as e:
                self._bad_file(path, e, "left out of the dataset")
                continue
            # A rate mismatch is a configuration choice, not a bad file: never skipped.
            # Checked here so it fails at start-up rather than at the file's first read.
            if info.sample_rate != self.sample_rate and not self.resample:
                raise AudioError(
                    f"audio file {path!r} has sample rate {info.sample_rate} Hz but "
                    f"{self.sample_rate} Hz is required; resample the file, or set "
                    "--config.data.resample=True."
                )
            kept.append(path)
            lengths.append(_target_length(info.frames, info.sample_rate, self.sample_rate))
        if not kept:
            raise DataError(
                f"all {len(files)} audio file(s) under {self.root!r} are unreadable and were skipped; "
                "fix or replace the files"
            )
        return kept, np.array(lengths, np.int64)


def _checked_info(path: str) -> AudioInfo:
    """audio_info, with an empty file counted as unreadable (read_audio rejects it)."""
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(f"audio file {path!r} is empty (0 frames); remove it from the dataset or re-export it.")
    return info
