"""Discrete bottlenecks: VQ-VAE lookup, losses and gradients, EMA codebook, dead-code restart,
the argmax autoencoder, and the shared code statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.nn.bottleneck import (
    VQ_RNG,
    VQ_STATS,
    ArgmaxBottleneck,
    VectorQuantizer,
    code_histogram,
    code_perplexity,
    code_usage,
)


def _z(shape=(2, 6, 4), seed=0):
    return jax.random.normal(jax.random.key(seed), shape)


def _ema_apply(vq, variables, z, seed=3, train=True):
    return vq.apply(variables, z, train=train, mutable=[VQ_STATS], rngs={VQ_RNG: jax.random.key(seed)})


# ---- VectorQuantizer --------------------------------------------------------------------


@pytest.mark.parametrize("ema", [False, True])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_vq_shapes_and_dtypes(ema, dtype):
    vq = VectorQuantizer(num_codes=8, code_dim=4, ema=ema)
    z = _z().astype(dtype)
    variables = vq.init(jax.random.key(1), z, train=False)
    collection = VQ_STATS if ema else "params"
    assert variables[collection]["codebook"].shape == (8, 4)
    out = vq.apply(variables, z, train=False)
    assert out.quantized.shape == z.shape and out.quantized.dtype == dtype
    assert out.codes.shape == (2, 6) and out.codes.dtype == jnp.int32
    for scalar in (out.loss, out.perplexity, out.usage):
        assert scalar.shape == () and scalar.dtype == jnp.float32


@pytest.mark.parametrize("ema", [False, True])
def test_vq_picks_nearest_code(ema):
    vq = VectorQuantizer(num_codes=16, code_dim=4, ema=ema)
    z = _z((3, 10, 4))
    variables = vq.init(jax.random.key(1), z, train=False)
    out = vq.apply(variables, z, train=False)
    codebook = np.asarray(variables[VQ_STATS if ema else "params"]["codebook"])
    dist = ((np.asarray(z)[..., None, :] - codebook) ** 2).sum(-1)
    np.testing.assert_array_equal(out.codes, dist.argmin(-1))
    # The forward value is exactly the code vector, not z + (q - z) with its rounding.
    np.testing.assert_array_equal(out.quantized, codebook[np.asarray(out.codes)])
    np.testing.assert_array_equal(vq.apply(variables, out.codes, method="decode"), out.quantized)


@pytest.mark.parametrize("ema", [False, True])
def test_vq_straight_through_gradient(ema):
    """d/dz [sum(w * quantized) + loss] = w (straight through) + 2 beta (z - q) / numel."""
    beta = 0.25
    vq = VectorQuantizer(num_codes=8, code_dim=4, commitment=beta, ema=ema)
    z = _z()
    variables = vq.init(jax.random.key(1), z, train=False)
    w = jax.random.normal(jax.random.key(2), z.shape)

    def objective(z):
        out = vq.apply(variables, z, train=False)
        return jnp.sum(w * out.quantized) + out.loss, out.quantized

    grad, q = jax.grad(objective, has_aux=True)(z)
    expected = w + 2.0 * beta * (z - q) / z.size
    assert np.abs(grad).min() > 0
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7)


def test_vq_codebook_gets_gradient_from_codebook_loss_only():
    beta = 0.25
    vq = VectorQuantizer(num_codes=8, code_dim=4, commitment=beta)
    z = _z()
    params = vq.init(jax.random.key(1), z, train=False)["params"]
    w = jax.random.normal(jax.random.key(2), z.shape)

    def loss_of(params, with_decoder):
        out = vq.apply({"params": params}, z, train=True)
        return out.loss + (jnp.sum(w * out.quantized) if with_decoder else 0.0), out.codes

    grad, codes = jax.grad(loss_of, has_aux=True)(params, False)
    codebook = np.asarray(params["codebook"])
    flat_z, flat_codes = np.asarray(z).reshape(-1, 4), np.asarray(codes).reshape(-1)
    # d/de_k mean((sg(z) - e)^2) = 2 sum_{j: code j = k} (e_k - z_j) / numel.
    expected = np.zeros_like(codebook)
    np.add.at(expected, flat_codes, 2.0 * (codebook[flat_codes] - flat_z) / z.size)
    np.testing.assert_allclose(grad["codebook"], expected, rtol=1e-5, atol=1e-7)
    assert np.abs(grad["codebook"][np.unique(flat_codes)]).sum(-1).min() > 0
    # The decoder's gradient goes to the encoder only, never to the codebook.
    with_decoder, _ = jax.grad(loss_of, has_aux=True)(params, True)
    np.testing.assert_allclose(with_decoder["codebook"], grad["codebook"], rtol=1e-6)


def _numpy_ema(size, total, z, codes, num_codes, decay, eps):
    counts = np.bincount(codes, minlength=num_codes).astype(np.float64)
    sums = np.zeros_like(total)
    np.add.at(sums, codes, z)
    size = decay * size + (1 - decay) * counts
    total = decay * total + (1 - decay) * sums
    n = size.sum()
    smoothed = (size + eps) / (n + num_codes * eps) * n
    return size, total, total / smoothed[:, None], smoothed


def test_ema_update_matches_formula():
    k, d, decay, eps = 6, 3, 0.9, 1e-3
    vq = VectorQuantizer(num_codes=k, code_dim=d, ema=True, decay=decay, epsilon=eps)
    z = _z((2, 5, d))
    variables = vq.init(jax.random.key(1), z, train=True)
    stats = variables[VQ_STATS]
    # `init` creates the state without updating it: N = 1, m = e, so m / N is the codebook.
    np.testing.assert_array_equal(stats["cluster_size"], np.ones(k))
    np.testing.assert_array_equal(stats["embed_sum"], stats["codebook"])
    # Start from an arbitrary state so every term of the formula matters.
    rng = np.random.default_rng(0)
    stats = {"codebook": stats["codebook"],
             "cluster_size": jnp.asarray(rng.uniform(0.5, 3.0, k), jnp.float32),
             "embed_sum": jnp.asarray(rng.normal(size=(k, d)), jnp.float32)}
    out, updated = _ema_apply(vq, {VQ_STATS: stats}, z)
    codes = np.asarray(out.codes).reshape(-1)
    dist = ((np.asarray(z).reshape(-1, 1, d) - np.asarray(stats["codebook"])) ** 2).sum(-1)
    np.testing.assert_array_equal(codes, dist.argmin(-1))  # assigned with the old codebook
    size, total, codebook, _ = _numpy_ema(np.asarray(stats["cluster_size"], np.float64),
                                          np.asarray(stats["embed_sum"], np.float64),
                                          np.asarray(z).reshape(-1, d), codes, k, decay, eps)
    new = updated[VQ_STATS]
    np.testing.assert_allclose(new["cluster_size"], size, rtol=1e-6)
    np.testing.assert_allclose(new["embed_sum"], total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["codebook"], codebook, rtol=1e-5, atol=1e-6)


def test_ema_loss_is_commitment_only():
    vq = VectorQuantizer(num_codes=8, code_dim=4, commitment=0.5, ema=True)
    z = _z()
    variables = vq.init(jax.random.key(1), z, train=False)
    out = vq.apply(variables, z, train=False)
    q = np.asarray(out.quantized)
    np.testing.assert_allclose(out.loss, 0.5 * np.mean((np.asarray(z) - q) ** 2), rtol=1e-6)
    assert "params" not in variables


def test_ema_not_updated_in_eval():
    vq = VectorQuantizer(num_codes=8, code_dim=4, ema=True, dead_code_threshold=2.0)
    z = _z()
    variables = vq.init(jax.random.key(1), z, train=False)
    _, updated = vq.apply(variables, z, train=False, mutable=[VQ_STATS])
    jax.tree.map(np.testing.assert_array_equal, dict(updated), dict(variables))
    _, trained = _ema_apply(vq, variables, z)
    assert not np.allclose(trained[VQ_STATS]["cluster_size"], variables[VQ_STATS]["cluster_size"])


def test_dead_code_restart_moves_unused_code_onto_batch_vector():
    k, d = 4, 2
    vq = VectorQuantizer(num_codes=k, code_dim=d, ema=True, dead_code_threshold=1.0)
    # Codes 0-2 sit on three clusters of the batch; code 3 is far away and never chosen.
    codebook = jnp.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [100.0, 100.0]])
    centres = np.repeat(np.asarray(codebook[:3]), 4, axis=0)
    z = jnp.asarray(centres + 0.1 * np.random.default_rng(0).normal(size=centres.shape),
                    jnp.float32)[None]
    stats = {"codebook": codebook, "cluster_size": jnp.ones(k), "embed_sum": codebook}
    out, updated = _ema_apply(vq, {VQ_STATS: stats}, z)
    assert set(np.asarray(out.codes).ravel()) == {0, 1, 2}
    new = updated[VQ_STATS]
    restarted = np.asarray(new["codebook"][3])
    assert np.any(np.all(np.asarray(z[0]) == restarted, axis=-1)), "not one of the batch vectors"
    np.testing.assert_allclose(new["cluster_size"][3], 1.0)
    np.testing.assert_allclose(new["embed_sum"][3], restarted)
    # Live codes follow the plain EMA update (they got 4 inputs each: N = 0.99 + 0.04 > 1).
    _, _, expected, _ = _numpy_ema(np.ones(k), np.asarray(codebook, np.float64),
                                   np.asarray(z[0], np.float64), np.asarray(out.codes[0]),
                                   k, 0.99, 1e-5)
    np.testing.assert_allclose(new["codebook"][:3], expected[:3], rtol=1e-5)
    # The restart is a pure function of the rng: the same key gives the same codebook.
    again = _ema_apply(vq, {VQ_STATS: stats}, z)[1][VQ_STATS]["codebook"]
    np.testing.assert_array_equal(again, new["codebook"])


def test_dead_code_restart_needs_rng_and_ema():
    vq = VectorQuantizer(num_codes=4, code_dim=2, ema=True, dead_code_threshold=1.0)
    z = _z((1, 3, 2))
    variables = vq.init(jax.random.key(1), z, train=True)  # init itself needs no "vq" rng
    with pytest.raises(ValueError, match="rngs"):
        vq.apply(variables, z, train=True, mutable=[VQ_STATS])
    vq.apply(variables, z, train=False)  # evaluation needs no rng either
    with pytest.raises(ValueError, match="ema=True"):
        VectorQuantizer(num_codes=4, code_dim=2, dead_code_threshold=1.0).init(
            jax.random.key(1), z, train=False)


def test_bad_shapes_name_the_expected_dim():
    z = _z((2, 3, 5))
    with pytest.raises(ValueError, match=r"code_dim=4.*\(2, 3, 5\)"):
        VectorQuantizer(num_codes=8, code_dim=4).init(jax.random.key(0), z, train=False)
    with pytest.raises(ValueError, match=r"num_codes=8.*\(2, 3, 5\)"):
        ArgmaxBottleneck(num_codes=8).init(jax.random.key(0), z)


def test_ema_training_step_under_jit():
    vq = VectorQuantizer(num_codes=8, code_dim=4, ema=True, dead_code_threshold=0.995)
    z = _z()
    variables = vq.init(jax.random.key(1), z, train=False)
    step = jax.jit(lambda v, z, key: vq.apply(v, z, train=True, mutable=[VQ_STATS],
                                              rngs={VQ_RNG: key}))
    (out, updated), (eager_out, eager) = step(variables, z, jax.random.key(3)), _ema_apply(
        vq, variables, z)
    np.testing.assert_array_equal(out.codes, eager_out.codes)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 dict(updated), dict(eager))
    for _ in range(3):  # repeated steps stay finite
        out, updated = step({**variables, **updated}, z, jax.random.key(4))
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(dict(updated)))


# ---- ArgmaxBottleneck -------------------------------------------------------------------


def test_argmax_is_exactly_one_hot_with_straight_through_gradient():
    k = 6
    amae = ArgmaxBottleneck(num_codes=k, diversity_weight=0.0)
    x = _z((2, 7, k))
    out = amae.apply({}, x, train=True)
    np.testing.assert_array_equal(out.codes, np.argmax(np.maximum(np.asarray(x), 0), -1))
    np.testing.assert_array_equal(out.quantized, jax.nn.one_hot(out.codes, k))
    np.testing.assert_array_equal(amae.apply({}, out.codes, method="decode"), out.quantized)
    assert out.codes.dtype == jnp.int32 and float(out.loss) == 0.0

    w = jax.random.normal(jax.random.key(5), x.shape)
    grad = jax.grad(lambda x: jnp.sum(w * amae.apply({}, x).quantized))(x)
    # The gradient is that of the normalised values relu(x) / sum relu(x).
    _, vjp = jax.vjp(lambda x: amae.apply({}, x, method="normalise"), x)
    np.testing.assert_allclose(grad, vjp(w)[0], rtol=1e-6)
    assert np.abs(grad).sum() > 0


def test_argmax_diversity_loss():
    k = 4
    amae = ArgmaxBottleneck(num_codes=k, diversity_weight=2.0)
    # Each position puts all its mass on a different code: the batch average is uniform.
    uniform = jnp.eye(k)[None]
    np.testing.assert_allclose(amae.apply({}, uniform).loss, 0.0, atol=1e-6)
    x = jnp.abs(_z((3, 5, k))) + 0.1
    q = np.asarray(x) / (np.asarray(x).sum(-1, keepdims=True) + 1e-5)
    expected = 2.0 * np.sum((k * q.reshape(-1, k).mean(0) - 1.0) ** 2)
    np.testing.assert_allclose(amae.apply({}, x).loss, expected, rtol=1e-5)
    # Encoder outputs that the ReLU zeroes everywhere give code 0 and stay finite.
    dead = amae.apply({}, -jnp.ones((1, 2, k)))
    np.testing.assert_array_equal(dead.codes, 0)
    assert np.isfinite(dead.loss)


def test_argmax_under_jit():
    amae = ArgmaxBottleneck(num_codes=5)
    x = _z((2, 3, 5))
    jitted = jax.jit(lambda x: amae.apply({}, x, train=True))(x)
    eager = amae.apply({}, x, train=True)
    np.testing.assert_array_equal(jitted.quantized, eager.quantized)
    np.testing.assert_allclose(jitted.loss, eager.loss, rtol=1e-6)


# ---- code statistics --------------------------------------------------------------------


def test_perplexity_and_usage():
    k = 8
    uniform = jnp.tile(jnp.arange(k, dtype=jnp.int32), 3)
    np.testing.assert_allclose(code_perplexity(uniform, k), k, rtol=1e-6)
    np.testing.assert_allclose(code_usage(uniform, k), 1.0)
    collapsed = jnp.full((4, 5), 3, jnp.int32)
    np.testing.assert_allclose(code_perplexity(collapsed, k), 1.0)
    np.testing.assert_allclose(code_usage(collapsed, k), 1 / k)
    # One-hot input gives the same statistics as the indices.
    codes = jnp.array([[0, 1, 1, 5]], jnp.int32)
    one_hot = jax.nn.one_hot(codes, k)
    np.testing.assert_allclose(code_histogram(one_hot, k), code_histogram(codes, k))
    np.testing.assert_allclose(code_perplexity(one_hot, k), np.exp(1.5 * np.log(2)), rtol=1e-6)
    np.testing.assert_allclose(code_usage(one_hot, k), 3 / k)
    with pytest.raises(ValueError, match="num_codes=8"):
        code_histogram(jnp.ones((2, 3)), k)


def test_bottleneck_reports_batch_statistics():
    k = 4
    amae = ArgmaxBottleneck(num_codes=k)
    out = amae.apply({}, jnp.eye(k)[None])
    np.testing.assert_allclose(out.perplexity, k, rtol=1e-6)
    np.testing.assert_allclose(out.usage, 1.0)
    vq = VectorQuantizer(num_codes=k, code_dim=2)
    variables = {"params": {"codebook": jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0],
                                                   [1.0, 1.0]])}}
    out = vq.apply(variables, jnp.zeros((2, 3, 2)) + 0.1, train=False)
    np.testing.assert_allclose(out.perplexity, 1.0)
    np.testing.assert_allclose(out.usage, 0.25)
