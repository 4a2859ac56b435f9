"""Tests for audiozoo.nn.mixture_logistics (PixelCNN++ section 2.1)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.audio import linear_dequantize, linear_quantize
from audiozoo.nn import mixture_logistics as mol
from audiozoo.nn.mixture_logistics import mol_num_params

# Jitted once per shape: op-by-op dispatch of the ~30 elementwise ops is what makes
# eager tests slow, not the maths.
discretized_mix_logistic_nll = jax.jit(
    mol.discretized_mix_logistic_nll, static_argnames=("num_classes", "log_scale_min")
)
sample_discretized_mix_logistic = jax.jit(
    mol.sample_discretized_mix_logistic, static_argnames=("log_scale_min",)
)


def _params(logits, means, log_scales):
    return jnp.concatenate(
        [jnp.asarray(logits, jnp.float32), jnp.asarray(means, jnp.float32),
         jnp.asarray(log_scales, jnp.float32)],
        axis=-1,
    )


@partial(jax.jit, static_argnums=(1, 2))
def _random_params(key, shape, k):
    a, b, c = jax.random.split(key, 3)
    logits = jax.random.normal(a, shape + (k,)) * 2.0
    means = jax.random.uniform(b, shape + (k,), minval=-1.2, maxval=1.2)
    log_scales = jax.random.uniform(c, shape + (k,), minval=-7.0, maxval=0.0)
    return _params(logits, means, log_scales)


def test_num_params():
    assert mol_num_params(10) == 30
    assert mol_num_params(1) == 3


@pytest.mark.parametrize("k,shape", [(1, (7,)), (3, (2, 5)), (10, (4, 3, 2))])
def test_probabilities_sum_to_one(k, shape):
    num_classes = 256
    params = _random_params(jax.random.PRNGKey(k), shape, k)
    centres = linear_dequantize(jnp.arange(num_classes), num_classes)
    # Broadcast every bin centre against every parameter vector.
    nll = jax.vmap(
        lambda x: discretized_mix_logistic_nll(params, jnp.full(shape, x), num_classes=num_classes)
    )(centres)
    assert nll.shape == (num_classes,) + shape
    total = jnp.exp(-nll).sum(axis=0)
    np.testing.assert_allclose(total, 1.0, atol=1e-4)


def test_edge_bins_take_the_tails():
    # A component centred far outside [-1, 1] puts (almost) all mass in the edge bin.
    params = _params([[0.0]], [[3.0]], [[-2.0]])
    nll = discretized_mix_logistic_nll(params, jnp.array([1.0]), num_classes=256)
    assert float(nll[0]) < 1e-6
    # 16-bit: the bin next to the edge is an ordinary interior bin (not an edge bin).
    x = linear_dequantize(jnp.array([65534]), 65536)
    p = jnp.exp(-discretized_mix_logistic_nll(params, x))
    assert float(p[0]) < 1e-3


def test_matches_direct_formula_for_single_logistic():
    mean, log_scale, n = 0.1, -3.0, 256
    params = _params([[0.0]], [[mean]], [[log_scale]])
    x = linear_dequantize(jnp.array([140]), n)
    w = 1.0 / (n - 1)
    s = np.exp(log_scale)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    expected = -np.log(sig((float(x[0]) + w - mean) / s) - sig((float(x[0]) - w - mean) / s))
    got = discretized_mix_logistic_nll(params, x, num_classes=n)
    np.testing.assert_allclose(got, [expected], rtol=1e-5)


def test_tiny_probability_branch_is_finite_and_sensible():
    # A bin ~40 scales away from the mean: sigmoid differences underflow to 0.
    params = _params([[0.0]], [[-0.5]], [[-6.0]])
    x = jnp.array([0.5])
    nll = discretized_mix_logistic_nll(params, x, num_classes=256)
    s = np.exp(-6.0)
    z = 1.0 / s
    log_pdf = z - np.log(s) - 2 * np.log1p(np.exp(z))  # logistic log density at x
    np.testing.assert_allclose(nll, [-(log_pdf + np.log(2 / 255))], rtol=1e-4)


def test_log_scale_floor():
    base = _params([[0.0]], [[0.0]], [[-16.0]])
    lower = _params([[0.0]], [[0.0]], [[-40.0]])
    x = jnp.array([0.01])
    np.testing.assert_allclose(
        discretized_mix_logistic_nll(base, x), discretized_mix_logistic_nll(lower, x)
    )


def test_gradient_is_finite():
    params = _random_params(jax.random.PRNGKey(3), (64,), 10)
    # Targets including both edges and values far from every mean.
    q = np.random.default_rng(4).integers(0, 65536, 64)
    q[:2] = [0, 65535]
    x = 2.0 * q.astype(np.float32) / 65535 - 1.0
    loss_and_grad = jax.jit(
        jax.value_and_grad(lambda p, x: mol.discretized_mix_logistic_nll(p, x).mean())
    )
    loss, grad = loss_and_grad(params, x)
    assert np.isfinite(float(loss))
    assert np.all(np.isfinite(np.asarray(grad)))
    # Extreme params (tiny scales, huge logits, targets far from every mean) keep the
    # gradient finite too.
    extreme = np.concatenate(
        [np.full((64, 2), 50.0), np.full((64, 2), -0.9), np.full((64, 2), -30.0)], axis=-1
    )
    loss, grad = loss_and_grad(jnp.asarray(extreme, jnp.float32), x)
    assert np.isfinite(float(loss))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_nll_jits_and_rejects_bad_param_count():
    params = _random_params(jax.random.PRNGKey(0), (2, 8), 4)
    x = jnp.zeros((2, 8))
    np.testing.assert_allclose(
        discretized_mix_logistic_nll(params, x),
        mol.discretized_mix_logistic_nll(params, x),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="3 \\* num_mixtures"):
        mol.discretized_mix_logistic_nll(jnp.zeros((2, 7)), jnp.zeros(2))


def test_sharp_dominant_component_samples_at_its_mean():
    params = _params([[10.0, -10.0]], [[0.3, -0.7]], [[-10.0, 0.0]])
    params = jnp.broadcast_to(params, (500, 6))
    x = sample_discretized_mix_logistic(jax.random.PRNGKey(0), params)
    assert x.shape == (500,)
    np.testing.assert_allclose(x, 0.3, atol=1e-3)


def test_temperature_zero_is_deterministic_mode():
    params = _random_params(jax.random.PRNGKey(1), (3, 4), 5)
    a = sample_discretized_mix_logistic(jax.random.PRNGKey(0), params, temperature=0.0)
    b = sample_discretized_mix_logistic(jax.random.PRNGKey(99), params, temperature=0.0)
    np.testing.assert_array_equal(a, b)
    logits, means, _ = np.split(np.asarray(params), 3, axis=-1)
    best = np.take_along_axis(means, np.argmax(logits, -1)[..., None], -1)[..., 0]
    np.testing.assert_allclose(a, np.clip(best, -1, 1))


def test_two_component_histogram_matches_weights():
    weights = np.array([0.3, 0.7])
    params = _params([np.log(weights)], [[-0.5, 0.5]], [[-5.0, -5.0]])
    n = 4000
    x = sample_discretized_mix_logistic(jax.random.PRNGKey(7), jnp.broadcast_to(params, (n, 6)))
    x = np.asarray(x)
    assert np.all((x >= -1) & (x <= 1))
    frac_low = np.mean(x < 0)
    assert abs(frac_low - 0.3) < 0.03
    # Samples cluster within a few scales of the component means.
    assert np.mean(np.abs(np.abs(x) - 0.5) < 0.05) > 0.99


def test_sampling_jits_with_traced_temperature_and_clips():
    params = _params([[0.0]], [[0.99]], [[-1.0]])
    params = jnp.broadcast_to(params, (1000, 3))
    sample = sample_discretized_mix_logistic
    x = sample(jax.random.PRNGKey(0), params, temperature=jnp.float32(1.0))
    assert float(x.max()) == 1.0 and float(x.min()) >= -1.0
    # Lower temperature narrows the spread around the mean.
    cold = sample(jax.random.PRNGKey(0), params, temperature=jnp.float32(0.1))
    assert float(jnp.std(cold)) < float(jnp.std(x))
    with pytest.raises(ValueError, match="temperature"):
        mol.sample_discretized_mix_logistic(jax.random.PRNGKey(0), params, temperature=-1.0)


def test_sample_then_quantize_is_likely_under_the_model():
    # Samples from the model should score better than uniform noise under the same model.
    params = _random_params(jax.random.PRNGKey(5), (2000,), 3)
    x = linear_dequantize(linear_quantize(sample_discretized_mix_logistic(jax.random.PRNGKey(6), params)))
    u = linear_dequantize(jax.random.randint(jax.random.PRNGKey(8), (2000,), 0, 65536))
    assert float(discretized_mix_logistic_nll(params, x).mean()) < float(
        discretized_mix_logistic_nll(params, u).mean()
    )
