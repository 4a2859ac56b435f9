"""Tests for audiozoo.audio.augment: SpecAugment masking and mixup."""

import jax
import numpy as np
import pytest

from audiozoo.audio import mixup, spec_augment

MASK = -1234.5  # a value the test spectrograms never contain


def _spec(batch=128, frames=30, bins=12, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, (batch, frames, bins)).astype(np.float32)


def _runs(flags):
    """(start, length) of each run of True in a 1-d bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts, ends - starts))


def test_single_masks_are_contiguous_bounded_and_leave_the_rest_alone():
    spec = _spec()
    out = np.asarray(spec_augment(jax.random.key(1), spec, num_time_masks=1, time_mask_param=8,
                                  num_freq_masks=1, freq_mask_param=5, mask_value=MASK))
    masked = out == MASK
    np.testing.assert_array_equal(out[~masked], spec[~masked])  # untouched elsewhere
    for example in masked:
        time = example.all(axis=1)  # a masked time step is masked across every bin
        freq = example.all(axis=0)
        # every masked element lies in a masked column or row
        np.testing.assert_array_equal(example, time[:, None] | freq[None, :])
        time_runs, freq_runs = _runs(time), _runs(freq)
        assert len(time_runs) <= 1 and all(w <= 8 for _, w in time_runs)
        assert len(freq_runs) <= 1 and all(w <= 5 for _, w in freq_runs)


def test_mask_counts_and_width_distribution():
    spec = _spec()
    out = np.asarray(spec_augment(jax.random.key(2), spec, num_time_masks=2, time_mask_param=6,
                                  num_freq_masks=3, freq_mask_param=2, mask_value=MASK))
    masked = out == MASK
    time_masked = masked.all(axis=2).sum(axis=1)
    freq_masked = masked.all(axis=1).sum(axis=1)
    assert time_masked.max() <= 2 * 6 and freq_masked.max() <= 3 * 2
    # Widths are uniform in {0..param}: mean of a single width is param / 2, so two
    # (possibly overlapping) masks cover a bit under 6 frames on average.
    assert 4.5 < time_masked.mean() <= 6.0
    assert (time_masked <= 2).any() and (time_masked > 6).any()


def test_masks_differ_per_example_and_are_deterministic():
    spec = _spec()
    a = np.asarray(spec_augment(jax.random.key(3), spec, mask_value=MASK))
    b = np.asarray(spec_augment(jax.random.key(3), spec, mask_value=MASK))
    c = np.asarray(spec_augment(jax.random.key(4), spec, mask_value=MASK))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    patterns = {(a[i] == MASK).tobytes() for i in range(len(a))}
    assert len(patterns) > len(a) // 2


def test_masks_stay_inside_small_inputs_and_jit():
    # param larger than the axis: the width is capped at the axis size.
    spec = _spec(batch=4, frames=5, bins=3)
    f = jax.jit(lambda k, s: spec_augment(k, s, time_mask_param=40, freq_mask_param=15))
    out = f(jax.random.key(0), spec)
    assert out.shape == spec.shape and out.dtype == spec.dtype
    untouched = spec_augment(jax.random.key(0), spec, num_time_masks=0, num_freq_masks=0)
    np.testing.assert_array_equal(untouched, spec)
    with pytest.raises(ValueError, match="batch, frames, bins"):
        spec_augment(jax.random.key(0), spec[0])


def _mix(seed=1, batch=512, alpha=0.2):
    """Labels are the identity, so each mixed label row reveals lam and the partner."""
    x = np.random.default_rng(seed).normal(size=(batch, 4, 3)).astype(np.float32)
    labels = np.eye(batch, dtype=np.float32)
    mx, my = mixup(jax.random.key(seed), x, labels, alpha=alpha)
    return x, labels, np.asarray(mx), np.asarray(my)


def test_mixup_is_a_convex_combination_of_pairs():
    x, labels, mx, my = _mix()
    assert mx.shape == x.shape and my.shape == labels.shape
    np.testing.assert_allclose(my.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(my >= 0) and np.all(my <= 1)
    lam = np.diag(my)
    mixed = lam < 1.0  # lam == 1 (in float32) leaves the example as it was
    partner = np.argmax(my - np.diag(lam), axis=1)  # the other nonzero entry of the row
    assert np.all((my > 0).sum(axis=1) <= 2)
    assert len(set(partner[mixed])) == mixed.sum()  # partners come from a permutation
    partner = np.where(mixed, partner, np.arange(len(lam)))
    expected = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[partner]
    np.testing.assert_allclose(mx, expected, atol=1e-5)


def test_mixup_lambda_distribution_and_determinism():
    _, _, mx, my = _mix()
    _, _, mx2, my2 = _mix()
    np.testing.assert_array_equal(mx, mx2)
    np.testing.assert_array_equal(my, my2)
    assert not np.array_equal(mx, _mix(seed=2)[2])
    lam = np.diag(my)
    # Beta(0.2, 0.2) is U-shaped with mean 1/2 (fixed points of the permutation read 1).
    assert abs(lam.mean() - 0.5) < 0.06
    assert np.mean((lam < 0.1) | (lam > 0.9)) > 0.5
    with pytest.raises(ValueError, match="alpha"):
        mixup(jax.random.key(0), mx, my, alpha=0.0)
