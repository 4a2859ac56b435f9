"""WaveNet: shapes, causality, receptive field, conditioning, bad arguments."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.models.wavenet import WaveNet, dilation_schedule
from helpers import random_variables

SMALL = dict(residual_channels=8, gate_channels=16, skip_channels=8, num_classes=32)


def _codes(batch, time, num_classes=32, seed=0):
    return jax.random.randint(jax.random.key(seed), (batch, time), 0, num_classes)


def _init_apply(net, codes, **cond):
    variables = random_variables(net, codes, seed=1, **cond)
    return variables, jax.jit(net.apply)(variables, codes, **cond)


def _dependency(net, variables, codes, t, **cond):
    """|d logits[:, t] / d input embedding| per input position (max over batch/channels)."""
    def logits_at(x, t):
        g = net.apply(variables, cond.get("global_cond"), codes.shape[0], method=net.global_vector)
        c = net.apply(variables, cond.get("local_cond"), codes.shape[0], codes.shape[1],
                      method=net.upsample_local)
        logits = _trunk_from_embedding(net, variables, x, g, c)
        return jax.lax.dynamic_index_in_dim(logits, t, axis=1).sum()

    x = jax.jit(functools.partial(net.apply, method=net.embed_codes))(variables, codes)
    # Jitted with t an argument: one program for every t, not one per operation.
    grad = jax.jit(jax.grad(logits_at))(x, t)
    return np.asarray(jnp.abs(grad).max(axis=(0, 2)))


def _trunk_from_embedding(net, variables, x, g, c):
    def body(module, x):
        skips = 0.0
        for block in module.blocks:
            x, skip = block(x, g, c)
            skips = skips + skip
        return module.output_stack(skips)

    return net.apply(variables, x, method=body)


def test_dilation_schedule():
    assert dilation_schedule(6, 2) == (1, 2, 4, 1, 2, 4)
    with pytest.raises(ValueError, match="multiple"):
        dilation_schedule(5, 2)


def test_contract_shapes():
    net = WaveNet(num_layers=4, num_stacks=2, **SMALL)
    _, logits = _init_apply(net, _codes(3, 50))
    assert logits.shape == (3, 50, 32)


def test_mol_head_shape():
    net = WaveNet(num_layers=4, num_stacks=1, output="mol", num_mixtures=5,
                  **dict(SMALL, num_classes=65536))
    _, logits = _init_apply(net, _codes(2, 20, 65536))
    assert logits.shape == (2, 20, 15)


@pytest.mark.parametrize("kernel_size,dilations", [(2, (1, 2, 4, 8)), (3, (1, 3, 9)), (3, (1, 2, 5, 7))])
def test_causal_and_receptive_field_measured(kernel_size, dilations):
    net = WaveNet(kernel_size=kernel_size, dilations=dilations, **SMALL)
    codes = _codes(2, 64)
    variables = random_variables(net, codes)
    t = 50
    dep = _dependency(net, variables, codes, t)
    assert np.all(dep[t + 1:] == 0.0), "logits at t depend on a future input"
    seen = np.nonzero(dep)[0]
    assert seen.max() == t
    # The oldest input it sees is exactly receptive_field - 1 samples back.
    assert t - seen.min() + 1 == net.receptive_field
    assert net.receptive_field == 1 + (kernel_size - 1) * sum(dilations)


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_causal_with_global_and_local_conditioning(kernel_size):
    net = WaveNet(kernel_size=kernel_size, num_layers=6, num_stacks=2, num_global_ids=4,
                  global_channels=5, local_channels=3, upsample_scales=(2, 4), **SMALL)
    codes = _codes(2, 64)
    cond = dict(global_cond=jnp.array([0, 3]),
                local_cond=jax.random.normal(jax.random.key(2), (2, 8, 3)))
    variables, logits = _init_apply(net, codes, **cond)
    assert logits.shape == (2, 64, 32)
    for t in (0, 17, 40):
        dep = _dependency(net, variables, codes, t, **cond)
        assert np.all(dep[t + 1:] == 0.0)
        assert dep[t] > 0


def test_conditioning_changes_output():
    net = WaveNet(num_layers=4, num_stacks=1, num_global_ids=3, global_channels=4,
                  local_channels=2, upsample_scales=(4,), upsample="repeat", **SMALL)
    codes = _codes(1, 16)
    local = jnp.ones((1, 4, 2))
    variables, a = _init_apply(net, codes, global_cond=jnp.array([0]), local_cond=local)
    apply = jax.jit(net.apply)
    b = apply(variables, codes, global_cond=jnp.array([1]), local_cond=local)
    c = apply(variables, codes, global_cond=jnp.array([0]), local_cond=-local)
    assert not np.allclose(a, b) and not np.allclose(a, c)


def test_global_float_vectors():
    net = WaveNet(num_layers=2, num_stacks=1, global_channels=6, **SMALL)
    codes = _codes(2, 10)
    _, logits = _init_apply(net, codes, global_cond=jnp.ones((2, 6)))
    assert logits.shape == (2, 10, 32)


def test_transposed_upsampler_is_learned():
    net = WaveNet(num_layers=2, num_stacks=1, local_channels=3, upsample_scales=(2, 5), **SMALL)
    codes = _codes(1, 30)
    variables = jax.eval_shape(net.init, jax.random.key(0), codes, local_cond=jnp.ones((1, 3, 3)))
    assert "upsampler" in variables["params"]
    assert net.hop_length == 10


def test_bad_inputs_raise_clearly():
    net = WaveNet(num_layers=2, num_stacks=1, num_global_ids=3, global_channels=4,
                  local_channels=2, upsample_scales=(4,), **SMALL)
    codes = _codes(2, 16)
    good = dict(global_cond=jnp.array([0, 1]), local_cond=jnp.ones((2, 4, 2)))
    # Shapes only: every check runs while tracing, before anything would be computed.
    variables = jax.eval_shape(net.init, jax.random.key(0), codes, **good)

    def apply(codes, **cond):
        return jax.eval_shape(lambda v: net.apply(v, codes, **cond), variables)

    with pytest.raises(ValueError, match="pass global_cond"):
        apply(codes, local_cond=good["local_cond"])
    with pytest.raises(ValueError, match="int ids of shape"):
        apply(codes, global_cond=jnp.ones((2, 4)), local_cond=good["local_cond"])
    with pytest.raises(ValueError, match=">= 4 frames"):
        apply(codes, global_cond=good["global_cond"], local_cond=jnp.ones((2, 3, 2)))
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        apply(codes[0], **good)
    # Codes outside the table would read NaN rows: concrete ones are refused.
    with pytest.raises(ValueError, match=r"codes must be in \[0, 32\) \(num_classes\), "
                                         r"got values \d+..300"):
        apply(codes.at[0, 3].set(300), **good)
    with pytest.raises(ValueError, match="codes must be integers"):
        apply(codes.astype(jnp.float32), **good)
    with pytest.raises(ValueError, match="must be even"):
        jax.eval_shape(WaveNet(num_layers=1, num_stacks=1, residual_channels=4, gate_channels=5,
                               skip_channels=4).init, jax.random.key(0), codes)
    with pytest.raises(ValueError, match="output"):
        jax.eval_shape(WaveNet(output="gauss").init, jax.random.key(0), codes)


def test_jit_and_grad():
    net = WaveNet(num_layers=4, num_stacks=2, **SMALL)
    codes = _codes(2, 32)
    variables = random_variables(net, codes)

    @jax.jit
    def loss(params):
        logits = net.apply({"params": params}, codes[:, :-1])
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), codes[:, 1:, None], -1))

    grads = jax.grad(loss)(variables["params"])
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    assert float(loss(variables["params"])) == pytest.approx(np.log(32), rel=0.1)


def test_paper_scale_receptive_fields():
    assert WaveNet(num_layers=30, num_stacks=3).receptive_field == 1 + 3 * 1023
    assert WaveNet(num_layers=50, num_stacks=5, kernel_size=2).receptive_field == 5116
