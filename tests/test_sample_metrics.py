"""GANSynth's sample metrics against their definitions on cases with known answers."""

import numpy as np
import pytest

from audiozoo import sample_metrics as sm


def test_inception_score_extremes():
    confident_and_diverse = np.eye(10)
    assert sm.inception_score(confident_and_diverse) == pytest.approx(10.0, rel=1e-6)
    collapsed = np.tile(np.eye(10)[3], (10, 1))
    assert sm.inception_score(collapsed) == pytest.approx(1.0, rel=1e-6)
    uniform = np.full((5, 4), 0.25)
    assert sm.inception_score(uniform) == pytest.approx(1.0, rel=1e-6)


def test_inception_score_by_hand():
    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    marginal = probs.mean(0)
    kl = (probs * np.log(probs / marginal)).sum(1).mean()
    assert sm.inception_score(probs) == pytest.approx(np.exp(kl))


def test_pitch_accuracy_allows_one_class_either_way():
    probs = np.eye(6)[[0, 2, 4, 5]]
    assert sm.pitch_accuracy(probs, [1, 2, 2, 5]) == pytest.approx(0.75)
    assert sm.pitch_accuracy(probs, [1, 2, 2, 5], tolerance=0) == pytest.approx(0.5)


def test_pitch_entropy_in_nats():
    assert sm.pitch_entropy(np.full((3, 8), 1 / 8)) == pytest.approx(np.log(8))
    assert sm.pitch_entropy(np.eye(4)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    b = 2.0 * rng.standard_normal((20000, 3)) + np.array([1.0, 0.0, 0.0])
    # Means differ by 1; covariances I and 4I: 1 + 3 (1 + 4 - 2 * 2) = 4.
    assert sm.frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    assert sm.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_a_direct_matrix_square_root():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((60, 4)) @ rng.standard_normal((4, 4))
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eig(ca @ cb)
    root = (vectors * np.sqrt(values.astype(complex))) @ np.linalg.inv(vectors)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * root.real)
    assert sm.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    points = np.concatenate([c + 0.1 * rng.standard_normal((30, 2)) for c in centres])
    found = sm.kmeans(points, 3, seed=1)
    assert np.allclose(np.sort(found, axis=0), np.sort(centres, axis=0), atol=0.1)


def test_ndb_counts_bins_a_generator_misses():
    rng = np.random.default_rng(0)
    centres = rng.uniform(-50, 50, (10, 2))
    train = np.concatenate([c + rng.standard_normal((100, 2)) for c in centres])
    same = np.concatenate([c + rng.standard_normal((100, 2)) for c in centres])
    # A generator that drops three of the modes.
    partial = np.concatenate([c + rng.standard_normal((140, 2)) for c in centres[:7]])
    assert sm.ndb(train, same, k=10)["ndb"] == 0
    result = sm.ndb(train, partial, k=10)
    assert result["ndb"] >= 3 and result["ndb_over_k"] == result["ndb"] / 10


def test_bad_inputs():
    with pytest.raises(ValueError, match="sum to 1"):
        sm.inception_score(np.ones((2, 3)))
    with pytest.raises(ValueError, match="same dim"):
        sm.frechet_distance(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="k=5 bins"):
        sm.kmeans(np.zeros((3, 2)), 5)
