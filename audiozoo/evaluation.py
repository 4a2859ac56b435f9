"""Classifier evaluation: accuracy, mAP, per-class precision / recall / F1, the confusion
matrix, a per-file record of every prediction, a JSON report and a PNG of the matrix.

Evaluation walks a dataset in index order with each example's fixed crop (`dataset[i]`), so
two evaluations of the same checkpoint agree exactly. Classes are numbered as the model's
label set numbers them (WORKDIR/labels.json, the order the training data defined); data with
its own class list (another folder, a subset of the classes) is mapped onto that set by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from audiozoo.data import DataError, label_names
from audiozoo.files import write_text_atomic


def predict_dataset(task, state, dataset, batch_size: int = 32,
                    label_key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, classes], labels [N] or multi-hot [N, classes]) over the whole dataset.
    Every batch is padded to `batch_size` so the model compiles once."""
    predict = jax.jit(task.predict)
    key = label_key or task.label_key
    logits, labels = [], []
    for start in range(0, len(dataset), batch_size):
        examples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        audio = _pad_rows(np.stack([e["audio"] for e in examples]), batch_size)
        logits.append(np.asarray(predict(state, audio))[: len(examples)])
        labels.append(np.stack([e[key] for e in examples]))
    return np.concatenate(logits), np.concatenate(labels)


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    return np.pad(x, [(0, rows - len(x))] + [(0, 0)] * (x.ndim - 1)) if len(x) < rows else x


def data_label_key(dataset, preferred: str) -> str:
    """The example key holding the labels: the model's own key when the data has it, else
    "label" (a folder of class subfolders evaluated against a model trained on other data)."""
    example = dataset[0]
    for key in (preferred, "label"):
        if key in example:
            return key
    raise DataError(f"the evaluation data has no {preferred!r} or 'label' labels (its examples "
                    f"hold {sorted(example)}); point it at a folder of class subfolders")


def align_labels(labels: np.ndarray, data_names, model_names, multi_label: bool) -> np.ndarray:
    """Labels numbered by the data's class list -> numbered by the model's, matched by name.
    A data class the model does not know is an error; a model class missing from the data
    is fine. Data without class names is taken to number classes as the model does."""
    if data_names is None or tuple(data_names) == tuple(model_names):
        return labels
    unknown = [n for n in data_names if n not in model_names]
    if unknown:
        raise DataError(f"the evaluation data has classes {unknown} that the model was not "
                        f"trained on (its classes: {list(model_names)}); remove or rename them")
    index = np.array([list(model_names).index(n) for n in data_names])
    if not multi_label:
        return index[labels]
    aligned = np.zeros((len(labels), len(model_names)), labels.dtype)
    aligned[:, index] = labels
    return aligned


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Area under the precision-recall step curve for one class (the AudioSet mAP definition:
    mean of the precision at each relevant item, ranked by score)."""
    if relevant.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order] > 0
    precision_at_k = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at_k[hits].mean())


def mean_average_precision(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean over the classes that have at least one positive example."""
    ap = [average_precision(logits[:, c], targets[:, c]) for c in range(logits.shape[1])]
    return float(np.nanmean(ap))


def precision_recall_f1(true_pos, predicted, support) -> dict[str, np.ndarray]:
    """Per-class precision, recall and F1 from counts; 0 where a denominator is 0 (the
    scikit-learn convention)."""
    true_pos, predicted, support = (np.asarray(x, np.float64) for x in (true_pos, predicted, support))
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1}


def classification_report(logits: np.ndarray, labels: np.ndarray, multi_label: bool) -> dict:
    """accuracy, mAP, per-class precision/recall/F1/support, their macro average (over the
    classes present in the labels or the predictions) and micro average, and for single-label
    data the confusion matrix."""
    num_classes = logits.shape[1]
    if multi_label:
        truth, chosen = labels > 0.5, logits > 0
        report = {"mAP": mean_average_precision(logits, labels),
                  "accuracy": float(np.mean(chosen == truth))}
    else:
        predictions = logits.argmax(-1)
        truth, chosen = np.eye(num_classes, dtype=bool)[labels], np.eye(num_classes, dtype=bool)[predictions]
        report = {"accuracy": float(np.mean(predictions == labels)),
                  "mAP": mean_average_precision(logits, truth),
                  "confusion": confusion_matrix(labels, predictions, num_classes)}
    true_pos = (truth & chosen).sum(0)
    predicted, support = chosen.sum(0), truth.sum(0)
    report["per_class"] = dict(precision_recall_f1(true_pos, predicted, support), support=support)
    present = (support > 0) | (predicted > 0)
    report["macro"] = {k: float(v[present].mean()) if present.any() else 0.0
                       for k, v in report["per_class"].items() if k != "support"}
    micro = precision_recall_f1(true_pos.sum(), predicted.sum(), support.sum())
    report["micro"] = {k: float(v) for k, v in micro.items()}
    return report


def file_records(logits, labels, names, paths, multi_label: bool) -> list[dict]:
    """One record per example: path, true class(es), predicted class(es) and score."""
    names = list(names)
    if multi_label:
        probs = np.asarray(jax.nn.sigmoid(logits))
        return [{"path": path, "true": [names[c] for c in np.flatnonzero(label > 0.5)],
                 "predicted": [names[c] for c in np.flatnonzero(prob > 0.5)],
                 "score": float(prob.max())} for path, label, prob in zip(paths, labels, probs)]
    probs = np.asarray(jax.nn.softmax(logits))
    best = probs.argmax(-1)
    return [{"path": path, "true": names[int(label)], "predicted": names[int(b)],
             "score": float(prob[b]), "correct": bool(label == b)}
            for path, label, prob, b in zip(paths, labels, probs, best)]


def evaluate(task, state, dataset, label_set, *, batch_size: int = 32, model: str = "",
             data: str = "") -> dict:
    """The JSON-ready evaluation report of a classifier on every example of `dataset`."""
    key = data_label_key(dataset, label_set.label_key)
    logits, labels = predict_dataset(task, state, dataset, batch_size, key)
    return report_of(logits, labels, dataset, key, label_set, model=model, data=data)


def report_of(logits, labels, dataset, key: str, label_set, *, model: str = "",
              data: str = "") -> dict:
    """The JSON-ready report of `logits` [N, classes] against `dataset`'s labels under `key`
    (numbered by the dataset's class list), whatever made the logits."""
    labels = align_labels(labels, label_names(dataset, key), label_set.classes, label_set.multi_label)
    numbers = classification_report(logits, labels, label_set.multi_label)
    names = list(label_set.classes)
    paths = getattr(dataset, "files", None) or [f"#{i}" for i in range(len(dataset))]
    per_class = numbers["per_class"]
    report = {
        "model": model, "data": data, "examples": len(dataset), "classes": names,
        "accuracy": numbers["accuracy"], "mAP": numbers["mAP"],
        "macro": numbers["macro"], "micro": numbers["micro"],
        "per_class": [{"class": name, **{k: v[i].item() for k, v in per_class.items()}}
                      for i, name in enumerate(names)],
    }
    if "confusion" in numbers:
        report["confusion"] = {"rows": "true", "columns": "predicted",
                               "counts": numbers["confusion"].tolist()}
    report["files"] = file_records(logits, labels, names, paths, label_set.multi_label)
    return report


def write_report(report: dict, path: str | Path) -> None:
    """The report as JSON, written atomically (NaN, e.g. mAP without positives, as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(_finite(report), indent=1) + "\n")


def _finite(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def report_title(report: dict) -> str:
    return (f"{report['model']}, {report['data']}: accuracy {report['accuracy']:.1%} "
            f"({report['examples']} clips)")
