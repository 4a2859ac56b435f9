"""Metrics of generated samples against real ones, as GANSynth reports them (Table 1).

Engel et al. 2019, "GANSynth" (ICLR), section 4.2, computed from a pitch classifier's outputs
and features on generated and real notes:

- Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) with p(y) the mean of
  the classifier's pitch posteriors over the samples.
- Pitch Accuracy: the fraction of notes whose most likely pitch is within one class of the
  pitch they were asked for; Pitch Entropy: the mean entropy of p(y|x), in nats.
- Frechet Inception Distance (Heusel et al. 2017) between Gaussians fitted to the classifier's
  penultimate features: ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).
- Number of Statistically-Different Bins (Richardson & Weiss 2018, "On GANs and GMMs",
  section 4): k-means on training samples gives k bins; a bin counts when the share of
  generated samples falling into it differs from the training share by a two-proportion
  z-test at significance alpha.

All functions take numpy arrays and return Python floats or ints; nothing here depends on a
model, so they serve any generator.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["frechet_distance", "inception_score", "kmeans", "ndb", "pitch_accuracy",
           "pitch_entropy"]


def _probabilities(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or np.any(probs < 0) or not np.allclose(probs.sum(-1), 1.0, atol=1e-4):
        raise ValueError(f"expected class probabilities [samples, classes] that sum to 1, got "
                         f"shape {probs.shape}")
    return probs


def inception_score(probs: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) of probabilities [samples, classes]."""
    probs = _probabilities(probs)
    marginal = probs.mean(axis=0, keepdims=True)
    kl = np.sum(probs * (np.log(probs + 1e-12) - np.log(marginal + 1e-12)), axis=1)
    return float(np.exp(kl.mean()))


def pitch_accuracy(probs: np.ndarray, target: np.ndarray, tolerance: int = 1) -> float:
    """Share of samples whose argmax class is within `tolerance` of the target class."""
    predicted = _probabilities(probs).argmax(axis=1)
    return float(np.mean(np.abs(predicted - np.asarray(target)) <= tolerance))


def pitch_entropy(probs: np.ndarray) -> float:
    """Mean entropy of the per-sample distributions, in nats."""
    probs = _probabilities(probs)
    return float(np.mean(-np.sum(probs * np.log(probs + 1e-12), axis=1)))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """FID between the Gaussians fitted to feature sets [samples, dim]."""
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"features of shapes {real.shape} and {generated.shape}: expected "
                         "[samples, dim] with the same dim")
    if min(len(real), len(generated)) < 2:
        raise ValueError("the Frechet distance needs at least 2 samples on each side")
    mu_r, mu_g = real.mean(0), generated.mean(0)
    cov_r, cov_g = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    # Tr((S_r S_g)^(1/2)) = Tr((S_r^(1/2) S_g S_r^(1/2))^(1/2)), a symmetric PSD form.
    root_r = _psd_sqrt(np.atleast_2d(cov_r))
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_r @ np.atleast_2d(cov_g) @ root_r),
                                   0.0, None)))
    return float(np.sum((mu_r - mu_g) ** 2) + np.trace(np.atleast_2d(cov_r))
                 + np.trace(np.atleast_2d(cov_g)) - 2.0 * cross)


def kmeans(points: np.ndarray, k: int, *, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Centroids [k, dim] of Lloyd's k-means with k-means++ seeding (deterministic in seed)."""
    points = np.asarray(points, np.float64).reshape(len(points), -1)
    if not 1 <= k <= len(points):
        raise ValueError(f"k={k} bins need between 1 and {len(points)} (the sample count)")
    rng = np.random.default_rng(seed)
    centroids = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        distance = np.min(_squared_distances(points, np.array(centroids)), axis=1)
        total = distance.sum()
        choice = rng.choice(len(points), p=distance / total) if total > 0 else rng.integers(len(points))
        centroids.append(points[choice])
    centroids = np.array(centroids)
    for _ in range(iterations):
        labels = _nearest(points, centroids)
        moved = np.array([points[labels == j].mean(0) if np.any(labels == j) else centroids[j]
                          for j in range(k)])
        if np.allclose(moved, centroids):
            break
        centroids = moved
    return centroids


def _squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return (np.sum(points**2, 1)[:, None] - 2 * points @ centroids.T
            + np.sum(centroids**2, 1)[None, :])


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.argmin(_squared_distances(points, centroids), axis=1)


def ndb(train: np.ndarray, generated: np.ndarray, k: int = 50, *, alpha: float = 0.05,
        seed: int = 0) -> dict:
    """Number of statistically different bins between training and generated samples (any
    shape [samples, ...], flattened): {"ndb", "ndb_over_k", "k", "different_bins"}."""
    train = np.asarray(train, np.float64).reshape(len(train), -1)
    generated = np.asarray(generated, np.float64).reshape(len(generated), -1)
    centroids = kmeans(train, k, seed=seed)
    p_train = np.bincount(_nearest(train, centroids), minlength=k) / len(train)
    p_gen = np.bincount(_nearest(generated, centroids), minlength=k) / len(generated)
    pooled = (p_train * len(train) + p_gen * len(generated)) / (len(train) + len(generated))
    se = np.sqrt(pooled * (1 - pooled) * (1 / len(train) + 1 / len(generated)))
    z = np.where(se > 0, (p_train - p_gen) / np.where(se > 0, se, 1.0), 0.0)
    critical = _normal_quantile(1 - alpha / 2)
    different = np.flatnonzero(np.abs(z) > critical)
    return {"ndb": int(len(different)), "ndb_over_k": len(different) / k, "k": k,
            "different_bins": different.tolist()}


def _normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF by bisection on erf (no scipy needed)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2
