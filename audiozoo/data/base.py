"""The dataset protocol shared by every audiozoo dataset, and its error type.

A dataset is a sized, indexable collection of examples. Each example is a flat
``dict[str, np.ndarray]`` whose keys, shapes and dtypes are fixed for a given
dataset, so a batch is just the examples stacked along a new leading axis:

* audio is float32 ``[segment_length]`` in [-1, 1] at ``sample_rate``;
* integer labels (pitch, class id, ...) are int32 scalars.

``example(index, rng)`` takes the randomness explicitly (crop offsets, augmentation)
so the loader can make every batch a pure function of (seed, epoch, index);
``dataset[index]`` uses a fixed rng derived from the dataset's seed for a stable
default when you just want to look at an example.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

Example = dict[str, np.ndarray]


class DataError(ValueError):
    """Bad data configuration or data on disk; the message names the path/key and the fix."""


# Where a note dataset takes a segment shorter than its notes: at a random offset, or at the
# onset (what a note generator such as GANSynth must learn).
CROPS = ("random", "start")


def check_crop(crop: str) -> str:
    if crop not in CROPS:
        raise DataError(f"crop={crop!r} is not one of {CROPS}; set --config.data.crop")
    return crop


@runtime_checkable
class Dataset(Protocol):
    """What the loader and the trainer rely on."""

    sample_rate: int
    segment_length: int

    def __len__(self) -> int: ...

    def example(self, index: int, rng: np.random.Generator) -> Example: ...

    def __getitem__(self, index: int) -> Example: ...


class DatasetMixin:
    """Gives ``__getitem__`` and index checking to a class implementing ``example``."""

    seed: int = 0

    def __getitem__(self, index: int) -> Example:
        index = self._check_index(index)
        return self.example(index, np.random.default_rng([self.seed, index]))

    def _check_index(self, index: int) -> int:
        """Returns ``index`` as a non-negative int, or raises IndexError (ends iteration)."""
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {n}")
        return index
