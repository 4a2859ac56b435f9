"""Figures: PNG plots of training runs, evaluations and learned parameters, written atomically.

Matplotlib's object-oriented API (`matplotlib.figure.Figure` + `savefig`, which uses the Agg
canvas), so drawing never selects or changes pyplot's global backend; matplotlib is imported
only when a figure is drawn, keeping it out of model imports. A figure file is written to a
temporary name and renamed (`audiozoo.files.atomic_path`): readers never see half a PNG.

- `plot_loss_curve`: train and eval loss against step (a workdir's loss.png).
- `plot_confusion`: a classifier's row-normalised confusion matrix.
- `plot_filter_responses`: SincNet's learned band-pass filters (Ravanelli & Bengio 2018,
  "Speaker Recognition from Raw Waveform with SincNet", arXiv 1808.00158, section 5.1, the
  filter analysis): magnitude responses and (low, high) cut-offs.
"""

from __future__ import annotations

import os

import numpy as np

from audiozoo.files import atomic_path


def save_png(fig, path: str | os.PathLike) -> str:
    """Writes `fig` as a 100-dpi PNG at `path` atomically; returns the path as a string."""
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def plot_loss_curve(records: list[dict], path, key: str = "loss") -> str:
    """Train and eval `key` against step, from metric records ({"split", "step", key})."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for split in sorted({r["split"] for r in records}):
        points = [(r["step"], r[key]) for r in records if r["split"] == split and r.get(key) is not None]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, label=split, marker="." if split != "train" else None)
    ax.set(xlabel="step", ylabel=key)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, path)


def plot_confusion(counts, names: list[str], path, title: str | None = None) -> str:
    """Row-normalised confusion matrix (rows: true class, in the model's class order) with a
    colour bar, and the counts in the cells when there are at most 20 classes."""
    from matplotlib.figure import Figure

    counts = np.asarray(counts)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.5, 0.35 * len(names) + 2.5)
    fig = Figure(figsize=(size + 1, size), layout="tight")
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true")
    if title:
        ax.set_title(title, fontsize=9)
    if len(names) <= 20:
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return save_png(fig, path)


def plot_filter_responses(variables, path, *, sample_rate: float = 16000,
                          max_filters: int | None = None, kernel_size: int = 251,
                          min_low_hz: float = 50.0, min_band_hz: float = 50.0,
                          show_cutoffs: bool = True) -> str:
    """Writes a PNG of the learned sinc filters' magnitude responses (dB re each filter's
    peak) and, with show_cutoffs, their (low, high) cut-offs per filter. `variables` is a
    SincNet's variables or params, or a SincConv's params. Returns the path."""
    from matplotlib.figure import Figure  # Figure + savefig uses Agg, no global backend

    from audiozoo.models.sincnet import filter_responses

    params = _find_sinc_params(variables)
    if params is None:
        raise ValueError("no sinc layer parameters (low_hz_, band_hz_) in the given variables")
    freqs, mags, low, high = filter_responses(
        params["low_hz_"], params["band_hz_"], kernel_size=kernel_size,
        sample_rate=sample_rate, min_low_hz=min_low_hz, min_band_hz=min_band_hz)
    chosen = _spread(len(low), max_filters)
    fig = Figure(figsize=(10, 7 if show_cutoffs else 4), layout="constrained")
    axes = fig.subplots(2 if show_cutoffs else 1, 1, squeeze=False)[:, 0]
    db = 20 * np.log10(np.maximum(mags, 1e-12) / mags.max(axis=1, keepdims=True))
    for i in chosen:
        axes[0].plot(freqs, db[i], linewidth=0.7)
    axes[0].set(xlabel="frequency (Hz)", ylabel="magnitude (dB re peak)", ylim=(-80, 3),
                title=f"sinc filter responses ({len(chosen)} of {len(low)})")
    if show_cutoffs:  # every filter's band: cheap to draw and shows the whole bank
        axes[1].vlines(np.arange(len(low)), low, high, linewidth=2)
        axes[1].set(xlabel="filter", ylabel="pass band (Hz)", ylim=(0, sample_rate / 2),
                    title="learned cut-offs (low, high)")
    return save_png(fig, path)


def _spread(count: int, max_filters: int | None) -> np.ndarray:
    if max_filters is None or max_filters >= count:
        return np.arange(count)
    if max_filters < 1:
        raise ValueError(f"max_filters={max_filters} must be >= 1")
    return np.unique(np.linspace(0, count - 1, max_filters).round().astype(int))


def _find_sinc_params(tree):
    """The dict holding `low_hz_` and `band_hz_` anywhere in a variables / params tree."""
    if hasattr(tree, "keys"):
        if "low_hz_" in tree and "band_hz_" in tree:
            return tree
        for value in tree.values():
            found = _find_sinc_params(value)
            if found is not None:
                return found
    return None
