"""Shared blocks: the causal convolution, the conditioning upsampler and attention's per-head loop. (The one-sample
forms live in audiozoo.generation and are tested against the full pass in test_generation.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.nn import CausalConv1D, ConditionUpsampler
from helpers import normal, random_variables


@pytest.mark.parametrize("kernel_size,dilation", [(1, 1), (2, 1), (2, 4), (3, 3)])
def test_causal_conv_sees_only_its_history(kernel_size, dilation):
    conv = CausalConv1D(5, kernel_size, dilation)
    x = jax.random.normal(jax.random.key(0), (2, 20, 3))
    variables = conv.init(jax.random.key(1), x)
    assert conv.history == (kernel_size - 1) * dilation
    changed = conv.apply(variables, x.at[:, 10:].set(0.0))
    np.testing.assert_allclose(changed[:, :10], conv.apply(variables, x)[:, :10], atol=1e-6)


def test_upsampler_lengths():
    frames = jnp.ones((2, 7, 3))
    for method in ("transposed", "repeat"):
        up = ConditionUpsampler((2, 5), method)
        out = up.apply(up.init(jax.random.key(0), frames), frames)
        assert out.shape == (2, 70, 3)
    repeat = ConditionUpsampler((4,), "repeat")
    x = jnp.arange(3.0).reshape(1, 3, 1)
    np.testing.assert_array_equal(repeat.apply({}, x)[0, :, 0], np.repeat([0, 1, 2], 4))


def test_attention_equals_softmax_then_values():
    """Normalising the output instead of the probabilities (or not) is the same attention,
    values and gradients, padded keys and a fully padded query row (uniform weights)
    included."""
    from audiozoo.nn.transformer import attend

    def reference(q, k, v, mask):
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(q.shape[-1])
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
        return jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(scores, axis=-1), v)

    q, k, v = 3 * normal((3, 2, 2, 12, 8), seed=3)
    mask = np.ones((2, 2, 12, 12), bool)
    mask[0, :, :, 9:] = mask[1, 0, 4] = False
    # Jitted throughout: one compile per function, not one per operation.
    attend, reference = jax.jit(attend, static_argnames="normalise_output"), jax.jit(reference)
    np.testing.assert_allclose(attend(q, k, v, mask), reference(q, k, v, mask), atol=1e-5)
    np.testing.assert_allclose(attend(q, k, v, mask, normalise_output=False),
                               reference(q, k, v, mask), atol=1e-5)
    np.testing.assert_allclose(attend(q, k, v, mask)[1, 0, 4], v[1, 0].mean(0), atol=1e-5)
    loss = lambda f: lambda q, k, v: jnp.sum(jnp.sin(f(q, k, v, mask)))  # noqa: E731
    for ours, theirs in zip(jax.jit(jax.grad(loss(attend), (0, 1, 2)))(q, k, v),
                            jax.jit(jax.grad(loss(reference), (0, 1, 2)))(q, k, v)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("batch,heads,masked", [(2, 3, False), (2, 3, True), (1, 3, True)])
def test_attention_per_head_equals_all_heads_at_once(batch, heads, masked):
    """The CPU loop over heads (two at a time, or one when batch x heads is odd) is the same
    attention, values and gradients."""
    from audiozoo.nn.transformer import attend, attend_per_head, expand_mask

    q, k, v = normal((3, batch, heads, 40, 8))
    mask = expand_mask(jnp.arange(40)[None, :] < jnp.array([[31], [40]])[:batch]) if masked else None
    np.testing.assert_allclose(jax.jit(attend_per_head)(q, k, v, mask),
                               jax.jit(attend)(q, k, v, mask), atol=1e-6)
    loss = lambda f: lambda q, k, v: jnp.sum(jnp.sin(f(q, k, v, mask)))  # noqa: E731
    for ours, theirs in zip(jax.jit(jax.grad(loss(attend_per_head), (0, 1, 2)))(q, k, v),
                            jax.jit(jax.grad(loss(attend), (0, 1, 2)))(q, k, v)):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_long_sequences_take_the_per_head_path_on_cpu(monkeypatch):
    from audiozoo.nn import transformer

    layer = transformer.MultiHeadAttention(num_heads=2)
    x = normal((2, 1536, 8))  # 2 x 2 heads x 1536^2 > 2^23
    variables = random_variables(layer, x)
    assert transformer._attend_per_head((2, 2, 1024, 4), (2, 2, 2048, 4)) and not \
        transformer._attend_per_head((2, 2, 1023, 4), (2, 2, 2048, 4))
    mask = jnp.arange(1536)[None] < jnp.array([[1500], [1536]])
    looped = jax.jit(layer.apply)(variables, x, mask)
    monkeypatch.setattr(transformer, "_attend_per_head", lambda *shapes: False)
    np.testing.assert_allclose(looped, jax.jit(layer.apply)(variables, x, mask), atol=1e-5)


def test_dense_matches_flax_and_accumulates_half_precision_in_float32():
    """`audiozoo.nn.dense.Dense` has nn.Dense's parameters and values; with bfloat16 operands
    its matmul (forward and both gradients) accumulates in float32 and rounds to bfloat16, the
    form whose kernel gradient XLA:CPU keeps in the kernel's layout."""
    from flax import linen as nn
    from helpers import heavy_ops

    from audiozoo.nn.dense import Dense

    x = jax.random.normal(jax.random.key(0), (4, 6, 16))
    ours, theirs = Dense(8), nn.Dense(8)
    variables = ours.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(
        jnp.shape, theirs.init(jax.random.key(1), x))
    np.testing.assert_array_equal(ours.apply(variables, x), theirs.apply(variables, x))
    half, flax_half = ours.clone(dtype=jnp.bfloat16), theirs.clone(dtype=jnp.bfloat16)
    y = half.apply(variables, x)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_array_equal(y, flax_half.apply(variables, x))

    def loss(variables, x):
        return jnp.sum(half.apply(variables, x).astype(jnp.float32) ** 2)

    dots = heavy_ops(jax.grad(loss, (0, 1)), variables, x)
    assert len(dots) == 3  # forward, input gradient, kernel gradient
    for eqn in dots:
        assert {str(v.aval.dtype) for v in eqn.invars} == {"bfloat16"}
        assert eqn.params["preferred_element_type"] == jnp.float32
    grads = jax.grad(loss, (0, 1))(variables, x)
    assert grads[0]["params"]["kernel"].dtype == jnp.float32


def test_large_float32_dense_runs_as_a_convolution_on_cpu_with_the_same_values():
    """At least 1,024 rows through a kernel of at least 64 x 128, a float32 Dense on CPU
    computes its product as a width-1 convolution (faster there; see `cpu_dot_is_slow`) and
    its derivatives as matmuls: values, gradients and forward-mode derivatives match nn.Dense
    to float32 rounding. Smaller products stay plain dots."""
    from flax import linen as nn
    from helpers import heavy_ops

    from audiozoo.nn import dense

    def loss(layer):
        return lambda variables, x: jnp.sum(jnp.sin(layer.apply(variables, x)))

    large = jax.random.normal(jax.random.key(0), (2, 512, 64))
    ours, theirs = dense.Dense(128), nn.Dense(128)
    variables = ours.init(jax.random.key(1), large)
    primitives = [str(e.primitive) for e in heavy_ops(jax.grad(loss(ours), (0, 1)), variables,
                                                      large)]
    assert primitives == ["conv_general_dilated", "dot_general", "dot_general"]
    np.testing.assert_allclose(ours.apply(variables, large), theirs.apply(variables, large),
                               rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(jax.grad(loss(ours), (0, 1))(variables, large)),
                    jax.tree.leaves(jax.grad(loss(theirs), (0, 1))(variables, large))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    along = jax.random.normal(jax.random.key(2), large.shape)
    np.testing.assert_allclose(jax.jvp(lambda x: ours.apply(variables, x), (large,), (along,))[1],
                               jax.jvp(lambda x: theirs.apply(variables, x), (large,), (along,))[1],
                               rtol=1e-5, atol=1e-4)
    small = large[:, :511]  # 1,022 rows
    assert [str(e.primitive) for e in heavy_ops(ours.apply, variables, small)] == ["dot_general"]
    assert not dense.cpu_dot_is_slow(1024, 64, 64) and dense.cpu_dot_is_slow(1024, 64, 128)
