"""Classifying audio files of any length with a trained classifier.

Each file is cut into consecutive windows of the model's segment length (the last one
zero-padded). Windows whose RMS level is below `min_db` dBFS (measured over the file's own
samples, not the padding) are skipped, so trailing silence does not dilute the answer and a
silent file gets no label at all rather than a confident one. The remaining windows' outputs
are pooled into one score per class:

- "mean_logits": softmax (sigmoid for multi-label models) of the mean logits;
- "mean_probs": the mean of the windows' probabilities (posterior averaging);
- "max": each class's highest probability over the windows (a short event in a long file).

Windows of many files are batched together, in batches of a fixed size so the model compiles
once per call.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import jax
import numpy as np

from audiozoo.audio.io import AudioError, check_clip, read_audio
from audiozoo.data import DataError
from audiozoo.data.wav_folder import DEFAULT_EXTENSIONS, list_audio_files
from audiozoo.files import write_text_atomic

POOLINGS = ("mean_logits", "mean_probs", "max")
DEFAULT_MIN_DB = -60.0


def collect_files(paths: Iterable[str], list_file: str | None = None,
                  extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> list[str]:
    """Audio files named by `paths` (files, or folders searched recursively) and by
    `list_file` (one path per line, relative to the list's folder), each once, in order."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += list_audio_files(path, extensions)
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"{path!r} is neither an audio file nor a folder")
    if list_file:
        found += _listed(list_file)
    if not found:
        raise DataError("no audio files to classify; name files, folders or a --list")
    return list(dict.fromkeys(found))


def _listed(list_file: str) -> list[str]:
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"file list {list_file!r} does not exist")
    base = os.path.dirname(list_file)
    with open(list_file) as f:
        names = [line.strip() for line in f if line.strip()]
    missing = [n for n in names if not os.path.isfile(os.path.join(base, n))]
    if missing:
        raise FileNotFoundError(f"{list_file!r} names {len(missing)} file(s) that do not exist "
                                f"(paths are relative to the list's folder), e.g. {missing[0]!r}")
    return [os.path.join(base, n) for n in names]


def windows(audio: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(consecutive windows [n, length] covering the audio, the last zero-padded; each
    window's RMS level in dBFS over its real samples, -inf for digital silence)."""
    count = max(1, -(-len(audio) // length))
    padded = np.zeros(count * length, np.float32)
    padded[: len(audio)] = audio
    power = np.square(padded.astype(np.float64)).reshape(count, length).sum(axis=1)
    real = np.clip(len(audio) - length * np.arange(count), 1, length)
    with np.errstate(divide="ignore"):
        levels = 10 * np.log10(power / real)
    return padded.reshape(count, length), levels


def pool(logits: np.ndarray, multi_label: bool, how: str = "mean_logits") -> np.ndarray:
    """One score per class from the logits of a file's windows [n, classes]."""
    if how not in POOLINGS:
        raise ValueError(f"pooling {how!r} is not one of {', '.join(POOLINGS)}")
    squash = jax.nn.sigmoid if multi_label else jax.nn.softmax
    if how == "mean_logits":
        return np.asarray(squash(logits.mean(axis=0)))
    probs = np.asarray(squash(logits))
    return probs.mean(axis=0) if how == "mean_probs" else probs.max(axis=0)


@dataclasses.dataclass
class FileResult:
    """A file's windows, how many were loud enough to use, its loudest window's level, and
    the pooled class scores (None when every window was below the threshold, or when the
    file could not be read: then `error` says why)."""

    path: str
    windows: int
    used: int
    peak_db: float
    scores: np.ndarray | None
    error: str | None = None


class Classifier:
    """A trained classifier applied to whole files; see the module docstring."""

    def __init__(self, task, state, label_set, *, batch_size: int = 64,
                 min_db: float = DEFAULT_MIN_DB, pooling: str = "mean_logits"):
        if batch_size < 1:
            raise ValueError(f"batch size {batch_size} must be >= 1")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
        self.task, self.state, self.labels = task, state, label_set
        self.batch_size, self.min_db, self.pooling = batch_size, min_db, pooling
        self.segment_length = task.config.data.segment_length
        self._predict = jax.jit(task.predict)

    def classify(self, paths: Sequence[str], skip_bad: bool = False) -> list[FileResult]:
        """Each file's result; files are read one at a time as their windows are queued. A
        file that cannot be read (corrupt, empty, NaN samples) stops the call, or, with
        `skip_bad`, gets a result holding the error."""
        unreadable, readable = {}, []

        def clips():
            for path in paths:
                try:
                    audio = read_audio(path, self.task.sample_rate)
                except AudioError as e:
                    if not skip_bad:
                        raise AudioError(f"{e} (--skip-bad classifies the other files and "
                                         "reports this one)") from None
                    unreadable[path] = str(e)
                    continue
                readable.append(path)  # before the yield: classify_audio reads its name
                yield audio

        results = {r.path: r for r in self.classify_audio(clips(), names=readable)}
        return [results[path] if path in results
                else FileResult(path, 0, 0, float("-inf"), None, unreadable[path])
                for path in paths]

    def classify_audio(self, clips: Iterable[np.ndarray], names: Sequence[str] | None = None
                       ) -> list[FileResult]:
        """Each waveform's result (float [time] at the model's rate, any length); `names`
        label the results (default "0", "1", ...)."""
        logits, facts, queue, owners, seen = [], [], [], [], []
        for i, audio in enumerate(clips):
            seen.append(names[i] if names is not None else str(i))
            logits.append([])
            wins, levels = windows(check_clip(audio, f"clip {seen[-1]}"), self.segment_length)
            keep = levels >= self.min_db
            facts.append((len(wins), int(keep.sum()), float(levels.max())))
            queue += list(wins[keep])
            owners += [i] * int(keep.sum())
            while len(queue) >= self.batch_size:
                self._run(queue[: self.batch_size], owners[: self.batch_size], logits)
                queue, owners = queue[self.batch_size:], owners[self.batch_size:]
        if queue:
            self._run(queue, owners, logits)
        return [FileResult(name, n, used, peak, self._pool(rows) if rows else None)
                for name, (n, used, peak), rows in zip(seen, facts, logits)]

    def _run(self, batch: list, owners: list[int], logits: list[list]) -> None:
        audio = np.zeros((self.batch_size, self.segment_length), np.float32)
        audio[: len(batch)] = np.stack(batch)
        out = np.asarray(self._predict(self.state, audio))
        for owner, row in zip(owners, out):
            logits[owner].append(row)

    def _pool(self, rows: list) -> np.ndarray:
        return pool(np.stack(rows), self.labels.multi_label, self.pooling)


def top_k(scores: np.ndarray, names: Sequence[str], k: int) -> list[tuple[str, float]]:
    return [(names[i], float(scores[i])) for i in np.argsort(-scores, kind="stable")[:k]]


def describe(result: FileResult, names: Sequence[str], k: int, min_db: float) -> str:
    """One tab-separated line: the path, then `name score` for the top k classes."""
    if result.error is not None:
        return f"{result.path}\t(unreadable: {result.error})"
    if result.scores is None:
        return (f"{result.path}\t(silent: no window reaches {min_db:g} dBFS; loudest "
                f"{result.peak_db:.1f} dBFS)")
    return "\t".join([result.path] + [f"{name} {score:.4f}" for name, score in top_k(result.scores, names, k)])


def write_results(results: list[FileResult], names: Sequence[str], path: str | Path, k: int) -> None:
    """The results as CSV (top k per file) or JSON (top k and every class's score), chosen by
    the file's suffix, written atomically."""
    path = Path(path)
    text = (_csv if results_format(path) == ".csv" else _json)(results, names, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def results_format(path: str | Path) -> str:
    """".csv" or ".json", from the suffix of a results file (checked before any work)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"--out {path}: write a .csv or a .json file")
    return suffix


def _csv(results, names, k) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    labels = [f"{what}{r}" for r in range(1, k + 1) for what in ("label", "score")]
    writer.writerow(["path", "windows", "used_windows", *labels, "error"])
    for result in results:
        ranked = top_k(result.scores, names, k) if result.scores is not None else []
        cells = [x for name, score in ranked for x in (name, f"{score:.6f}")]
        cells += [""] * (len(labels) - len(cells))  # silent or unreadable: no labels
        writer.writerow([result.path, result.windows, result.used, *cells, result.error or ""])
    return out.getvalue()


def _json(results, names, k) -> str:
    records = [{"path": r.path, "windows": r.windows, "used_windows": r.used,
                "silent": r.scores is None and r.error is None, "error": r.error,
                "top": [{"label": n, "score": s} for n, s in top_k(r.scores, names, k)]
                if r.scores is not None else [],
                "scores": dict(zip(names, map(float, r.scores))) if r.scores is not None else None}
               for r in results]
    return json.dumps(records, indent=1) + "\n"
