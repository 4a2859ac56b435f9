"""Folders of augmentation audio (background noise, room impulse responses), read once.

`read_clips` returns every audio file under a folder as float32 mono at the training rate
(resampled with soxr when a file's rate differs), longest first cut to `max_seconds`. Every
problem is an error that names the config key the folder came from, the file, and the fix:
a missing or empty folder, an unreadable or silent file. `audiozoo.audio.wave_augment` turns
the clips into the fixed arrays the train step indexes.
"""

from __future__ import annotations

import os

import numpy as np

from audiozoo.audio.io import AudioError, read_audio
from audiozoo.data.base import DataError
from audiozoo.data.wav_folder import DEFAULT_EXTENSIONS, list_audio_files


def read_clips(folder: str, sample_rate: int, *, key: str, max_seconds: float) -> list[np.ndarray]:
    """The audio files under `folder` (recursively, sorted by path), each at most
    `max_seconds` long; `key` (e.g. "task.noise_dir") is the config field that named it."""
    if not os.path.isdir(folder):
        what = "is not a directory" if os.path.exists(folder) else "does not exist"
        raise DataError(f"{key}={folder!r} {what}; set --config.{key} to a folder of audio "
                        "files, or to '' to use none")
    try:
        files = list_audio_files(folder, DEFAULT_EXTENSIONS)
    except DataError:
        raise DataError(f"{key}={folder!r} holds no {'/'.join(DEFAULT_EXTENSIONS)} files; put "
                        f"audio in it, or set --config.{key}='' to use none") from None
    return [_read(path, sample_rate, key, int(max_seconds * sample_rate)) for path in files]


def _read(path: str, sample_rate: int, key: str, max_samples: int) -> np.ndarray:
    try:
        audio = read_audio(path, sample_rate)
    except AudioError as e:
        raise DataError(f"{e} (a file of --config.{key}; fix it or move it out of the folder)") from None
    audio = audio[:max_samples]
    if not np.any(audio):
        raise DataError(f"audio file {path!r} of --config.{key} is silent (all zeros); "
                        "remove it from the folder")
    return audio
