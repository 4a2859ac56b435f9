"""Running feature statistics for input normalisation (the `mean` / `std` of a Frontend).

AST normalises its fbank with one mean and std over every value of the training set; the
same statistics for another dataset or front end come from streaming the features through
`FeatureStats` batch by batch (chunks can be merged, e.g. one accumulator per host).
Count, sum and sum of squares are kept in float64, so the order of the chunks changes the
result only by float64 rounding. With `per_bin=True` the statistics are per entry of the
last axis (per mel band) instead of one scalar.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from jax.typing import ArrayLike

from audiozoo.files import write_text_atomic

__all__ = ["FeatureStats", "normalisation_advice"]


class FeatureStats:
    """Accumulates count, sum and sum of squares of feature values."""

    def __init__(self, per_bin: bool = False):
        self.per_bin = per_bin
        self.count = 0
        self.sum: np.ndarray | float = 0.0
        self.sum_sq: np.ndarray | float = 0.0

    def update(self, features: ArrayLike) -> FeatureStats:
        """Adds every value of `features` ([..., bins] when per_bin); returns self."""
        x = np.asarray(features, np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("features contain NaN or Inf; fix the input before computing "
                             "statistics")
        if self.per_bin:
            if x.ndim == 0:
                raise ValueError("per_bin statistics need features with a last (bin) axis")
            x = x.reshape(-1, x.shape[-1])
            self._check_bins(x.shape[-1])
            self.count += x.shape[0]
            self.sum = self.sum + x.sum(axis=0)
            self.sum_sq = self.sum_sq + np.square(x).sum(axis=0)
        else:
            self.count += x.size
            self.sum = self.sum + float(x.sum())
            self.sum_sq = self.sum_sq + float(np.square(x).sum())
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Adds another accumulator's values (e.g. another host's); returns self."""
        if other.per_bin != self.per_bin:
            raise ValueError("cannot merge per_bin and scalar FeatureStats")
        if other.count:
            if self.per_bin:
                self._check_bins(np.shape(other.sum)[-1])
            self.count += other.count
            self.sum = self.sum + other.sum
            self.sum_sq = self.sum_sq + other.sum_sq
        return self

    @property
    def mean(self) -> np.ndarray | float:
        self._check_nonempty()
        return self.sum / self.count

    @property
    def std(self) -> np.ndarray | float:
        """Population standard deviation (numpy's default, ddof=0)."""
        mean = self.mean
        # E[x^2] - E[x]^2 can dip below zero by rounding when the variance is ~0.
        return np.sqrt(np.maximum(self.sum_sq / self.count - np.square(mean), 0.0))

    def to_dict(self) -> dict:
        plain = (lambda v: np.asarray(v).tolist())
        out = {"per_bin": self.per_bin, "count": self.count, "sum": plain(self.sum),
               "sum_sq": plain(self.sum_sq)}
        if self.count:
            out.update(mean=plain(self.mean), std=plain(self.std))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """Writes JSON atomically: readers see the old file or the new one, never half."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"feature statistics file {path} does not exist "
                                    f"(compute it with `audiozoo stats`)")
        try:
            data = json.loads(path.read_text())
            stats = cls(per_bin=bool(data["per_bin"]))
            stats.count = int(data["count"])
            convert = (lambda v: np.asarray(v, np.float64)) if stats.per_bin else float
            stats.sum, stats.sum_sq = convert(data["sum"]), convert(data["sum_sq"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a FeatureStats JSON file "
                             f"(needs per_bin, count, sum, sum_sq): {e!r}") from None
        return stats

    def _check_bins(self, bins: int) -> None:
        if np.ndim(self.sum) and np.shape(self.sum)[-1] != bins:
            raise ValueError(f"features have {bins} bins but the statistics so far have "
                             f"{np.shape(self.sum)[-1]}")

    def _check_nonempty(self) -> None:
        if not self.count:
            raise ValueError("FeatureStats is empty: call update() with some features first")

    def __repr__(self) -> str:
        if not self.count:
            return f"FeatureStats(per_bin={self.per_bin}, count=0)"
        return (f"FeatureStats(per_bin={self.per_bin}, count={self.count}, mean={self.mean}, "
                f"std={self.std})")


def normalisation_advice(kind: str, stats: FeatureStats) -> str:
    """What to train with, given statistics of a front end's raw features: the override
    flags for log-mel and fbank; for a waveform front end, which takes no mean/std (it passes
    audio through unchanged, and the trainer refuses other values), that none applies."""
    measured = f"mean {stats.mean:.6f} std {stats.std:.6f} over {stats.count} values"
    if kind == "waveform":
        return (f"{measured} (raw waveform); a 'waveform' front end is not normalised, so no "
                "--config.frontend.mean/std flag applies")
    return (f"{measured}; train with --config.frontend.mean={stats.mean:.6f} "
            f"--config.frontend.std={stats.std:.6f}")
