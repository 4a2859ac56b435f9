"""Tests for audiozoo.audio.mulaw (WaveNet section 2.2 companding and quantisation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.audio import (
    linear_dequantize,
    linear_quantize,
    mu_law_decode,
    mu_law_dequantize,
    mu_law_encode,
    mu_law_quantize,
)


def test_encode_known_values():
    np.testing.assert_allclose(mu_law_encode(jnp.array([-1.0, 0.0, 1.0])), [-1, 0, 1], atol=1e-7)
    # f(x) = ln(1 + 255 x) / ln(256)
    np.testing.assert_allclose(mu_law_encode(0.1), np.log1p(25.5) / np.log(256), rtol=1e-6)


def test_encode_decode_inverse():
    x = jnp.linspace(-1.0, 1.0, 10001)
    np.testing.assert_allclose(mu_law_decode(mu_law_encode(x)), x, atol=1e-6)
    y = jnp.linspace(-1.0, 1.0, 10001)
    np.testing.assert_allclose(mu_law_encode(mu_law_decode(y)), y, atol=1e-6)


def test_encode_strictly_monotone_and_odd():
    x = jnp.linspace(-1.0, 1.0, 4001)
    y = np.asarray(mu_law_encode(x))
    assert np.all(np.diff(y) > 0)
    np.testing.assert_allclose(mu_law_encode(-x), -y, atol=1e-7)


def test_quantize_of_dequantize_is_identity_for_all_classes():
    q = jnp.arange(256)
    x = mu_law_dequantize(q)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(mu_law_quantize(x), q)
    assert np.all(np.diff(np.asarray(x)) > 0)


def test_dequantize_of_quantize_within_companded_bin():
    x = jnp.linspace(-1.0, 1.0, 20001)
    q = mu_law_quantize(x)
    assert q.dtype == jnp.int32
    assert int(q.min()) == 0 and int(q.max()) == 255
    x_hat = mu_law_dequantize(q)
    # Each class covers a companded interval of width 2/255 around its centre, so the
    # error is at most half the width of the bin in the linear domain around x.
    half = 1.0 / 255
    y = mu_law_encode(x)
    bound = jnp.maximum(
        jnp.abs(mu_law_decode(jnp.clip(y + half, -1, 1)) - x),
        jnp.abs(mu_law_decode(jnp.clip(y - half, -1, 1)) - x),
    )
    assert np.all(np.asarray(jnp.abs(x_hat - x)) <= np.asarray(bound) + 1e-6)
    # Small amplitudes are resolved far better than a uniform 8-bit codec would.
    small = jnp.abs(x) < 0.01
    assert float(jnp.max(jnp.where(small, jnp.abs(x_hat - x), 0))) < 1e-3


def test_quantize_monotone_and_clips_out_of_range():
    x = jnp.linspace(-2.0, 2.0, 8001)
    q = np.asarray(mu_law_quantize(x))
    assert np.all(np.diff(q) >= 0)
    assert q[0] == 0 and q[-1] == 255
    assert int(mu_law_quantize(0.0)) in (127, 128)


def test_other_class_counts():
    for n in (16, 1024):
        q = jnp.arange(n)
        np.testing.assert_array_equal(mu_law_quantize(mu_law_dequantize(q, n), n), q)


def test_jit_and_any_shape():
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 3, 50), minval=-1, maxval=1)
    q = jax.jit(mu_law_quantize)(x)
    assert q.shape == x.shape
    np.testing.assert_array_equal(q, mu_law_quantize(x))
    x_hat = jax.jit(mu_law_dequantize, static_argnames="num_classes")(q, num_classes=256)
    assert x_hat.shape == x.shape and x_hat.dtype == jnp.float32
    assert jax.jit(mu_law_encode)(x).shape == x.shape
    assert jax.jit(mu_law_decode)(x).shape == x.shape


def test_encode_has_finite_gradient():
    g = jax.grad(lambda x: jnp.sum(mu_law_encode(x)))(jnp.array([-0.5, 0.0, 0.5]))
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("num_classes", [256, 65536])
def test_linear_round_trip(num_classes):
    q = jnp.arange(num_classes)
    x = linear_dequantize(q, num_classes)
    assert float(x[0]) == -1.0 and float(x[-1]) == 1.0
    np.testing.assert_array_equal(linear_quantize(x, num_classes), q)
    # Evenly spaced up to float32 resolution near +-1 (~6e-8).
    np.testing.assert_allclose(jnp.diff(x), 2.0 / (num_classes - 1), atol=2e-7)


def test_linear_quantize_error_and_clipping():
    x = jnp.linspace(-1.0, 1.0, 100001)
    q = linear_quantize(x)
    assert q.dtype == jnp.int32
    err = jnp.abs(linear_dequantize(q) - x)
    assert float(err.max()) <= 1.0 / 65535 + 1e-6
    np.testing.assert_array_equal(linear_quantize(jnp.array([-3.0, 3.0])), [0, 65535])
    assert jax.jit(linear_quantize)(x.reshape(1, -1, 1)).shape == (1, 100001, 1)
