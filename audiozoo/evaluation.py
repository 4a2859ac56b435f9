"""Classifier evaluation: accuracy, mean average precision, confusion matrix and its plot.

Evaluation walks a dataset in index order with each example's fixed crop (`dataset[i]`), so
two evaluations of the same checkpoint agree exactly.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from audiozoo.train.metrics import save_figure


def predict_dataset(task, state, dataset, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, classes], labels [N] or multi-hot [N, classes]) over the whole dataset."""
    predict = jax.jit(task.predict)
    logits, labels = [], []
    for start in range(0, len(dataset), batch_size):
        examples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        audio = np.stack([e["audio"] for e in examples])
        logits.append(np.asarray(predict(state, audio)))
        labels.append(np.stack([e[task.label_key] for e in examples]))
    return np.concatenate(logits), np.concatenate(labels)


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


def classification_report(logits: np.ndarray, labels: np.ndarray, multi_label: bool) -> dict:
    if multi_label:
        return {"mAP": mean_average_precision(logits, labels),
                "accuracy": float(np.mean((logits > 0) == (labels > 0.5)))}
    num_classes = logits.shape[1]
    predictions = logits.argmax(-1)
    onehot = np.eye(num_classes)[labels]
    return {"accuracy": float(np.mean(predictions == labels)),
            "mAP": mean_average_precision(logits, onehot),
            "confusion": confusion_matrix(labels, predictions, num_classes)}


def plot_confusion(counts: np.ndarray, names: list[str], path: str | Path) -> None:
    """Row-normalised confusion matrix as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(names) <= 20:
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    save_figure(fig, path)
