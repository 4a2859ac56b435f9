"""Metric writers: a JSONL log in the workdir (mirrored to TensorBoard when asked), and a
loss-curve PNG drawn from it."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from audiozoo.files import write_text_atomic


class MetricWriter:
    """Appends {"step", "split", ...metrics} lines to workdir/metrics.jsonl.

    Only the main process writes, so a multi-host run has one log. `tensorboard` (an
    audiozoo.train.tensorboard.TensorBoardWriter) gets the same records and the same drops.
    """

    def __init__(self, workdir: str | Path, *, enabled: bool = True, tensorboard=None):
        self.path = Path(workdir) / "metrics.jsonl"
        self.enabled = enabled
        self.tensorboard = tensorboard

    def write(self, step: int, split: str, metrics: dict) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "split": split}
        record.update({k: _plain(v) for k, v in metrics.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            self.tensorboard.write_scalars(step, split, {k: record[k] for k in metrics})

    def drop_after(self, step: int) -> None:
        """A resumed run repeats the steps after its checkpoint: forget their old lines."""
        if self.tensorboard is not None:
            self.tensorboard.drop_after(step)
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in read_jsonl(self.path) if line["step"] <= step]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def read(self) -> list[dict]:
        return read_jsonl(self.path) if self.path.exists() else []


def _plain(value):
    value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file. A torn last line (a run killed while appending it) is
    dropped with a warning; a bad line anywhere else is an error naming the file and line."""
    lines = Path(path).read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):
                warnings.warn(f"{path}: dropping its torn last line {number} (a run stopped "
                              "while writing it)", stacklevel=2)
                break
            raise ValueError(f"{path}, line {number}, is not JSON ({e}); the file was edited "
                             "or damaged: fix or delete that line, then rerun") from None
    return records
