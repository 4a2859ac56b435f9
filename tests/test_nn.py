"""Shared blocks: the one-step forms agree with the full-sequence forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.nn import CausalConv1D, ConditionUpsampler, GatedResidualBlock


def _past_taps(x, t, kernel_size, dilation):
    """Inputs (k-1)d, ..., d samples before t (zeros before the start), oldest first."""
    idx = [t - (kernel_size - 1 - j) * dilation for j in range(kernel_size - 1)]
    taps = [x[:, i] if i >= 0 else jnp.zeros_like(x[:, 0]) for i in idx]
    return jnp.stack(taps, axis=1) if taps else jnp.zeros((x.shape[0], 0, x.shape[2]))


@pytest.mark.parametrize("kernel_size,dilation", [(1, 1), (2, 1), (2, 4), (3, 3)])
def test_causal_conv_step_matches_full(kernel_size, dilation):
    conv = CausalConv1D(5, kernel_size, dilation)
    x = jax.random.normal(jax.random.key(0), (2, 20, 3))
    variables = conv.init(jax.random.key(1), x)
    full = conv.apply(variables, x)
    assert conv.history == (kernel_size - 1) * dilation
    for t in range(20):
        y = conv.apply(variables, x[:, t], _past_taps(x, t, kernel_size, dilation), method="step")
        np.testing.assert_allclose(y, full[:, t], atol=1e-5)


def test_gated_block_step_matches_full():
    block = GatedResidualBlock(4, 8, 6, kernel_size=3, dilation=2, use_global=True, use_local=True)
    x = jax.random.normal(jax.random.key(0), (2, 12, 4))
    g = jax.random.normal(jax.random.key(1), (2, 3))
    c = jax.random.normal(jax.random.key(2), (2, 12, 5))
    variables = block.init(jax.random.key(3), x, g, c)
    res, skip = block.apply(variables, x, g, c)
    for t in range(12):
        r, s = block.apply(variables, x[:, t], _past_taps(x, t, 3, 2), g, c[:, t], method="step")
        np.testing.assert_allclose(r, res[:, t], atol=1e-5)
        np.testing.assert_allclose(s, skip[:, t], atol=1e-5)


def test_upsampler_lengths():
    frames = jnp.ones((2, 7, 3))
    for method in ("transposed", "repeat"):
        up = ConditionUpsampler((2, 5), method)
        out = up.apply(up.init(jax.random.key(0), frames), frames)
        assert out.shape == (2, 70, 3)
    repeat = ConditionUpsampler((4,), "repeat")
    x = jnp.arange(3.0).reshape(1, 3, 1)
    np.testing.assert_array_equal(repeat.apply({}, x)[0, :, 0], np.repeat([0, 1, 2], 4))
