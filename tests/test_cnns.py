"""Image CNNs on log-mel spectrograms: torchvision/PANNs parameter counts, shapes down to
32 x 32 inputs, batch norm and dropout behaviour, torch-exact pooling, jit + grad."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.models import model_class
from audiozoo.models.alexnet import AlexNet
from audiozoo.models.cnn14 import Cnn14
from audiozoo.models.densenet import DenseNet
from audiozoo.models.resnet import ResNet, ResNet18
from audiozoo.models.squeezenet import SqueezeNet1_1
from audiozoo.models.vgg import VGG, VGG11
from audiozoo.nn.pooling import (adaptive_avg_pool, adaptive_bins, adaptive_max_pool, avg_pool,
                                 max_pool)
from helpers import normal

# torchvision's 3-channel count minus 2 * (stem out channels * kernel area), num_classes=1000;
# Cnn14 with AudioSet's 527 classes (PANNs reports 80.8M).
PARAM_COUNTS = {
    "alexnet": 61_100_840 - 2 * 64 * 11 * 11,
    "vgg11": 132_863_336 - 2 * 64 * 9,
    "vgg16": 138_357_544 - 2 * 64 * 9,
    "resnet18": 11_689_512 - 2 * 64 * 49,
    "resnet50": 25_557_032 - 2 * 64 * 49,
    "densenet121": 7_978_856 - 2 * 64 * 49,
    "squeezenet1_1": 1_235_496 - 2 * 64 * 9,
    "inception_v1": 6_624_904 - 2 * 64 * 49,
    "cnn14": 80_753_615,
}
FEATURE_DIMS = {"alexnet": 4096, "vgg11": 4096, "vgg16": 4096, "resnet18": 512,
                "resnet50": 2048, "densenet121": 1024, "squeezenet1_1": 512,
                "inception_v1": 1024, "cnn14": 2048}
BATCH_NORM = {"resnet18", "resnet50", "densenet121", "inception_v1", "cnn14"}
NAMES = sorted(PARAM_COUNTS)


def key(seed: int) -> jax.Array:
    # rbg keys: threefry's random-number kernels take seconds each to compile on CPU, and
    # initialising a model compiles one per parameter shape.
    return jax.random.key(seed, impl="rbg")


def _abstract_init(model, shape, **kwargs):
    """(logits, variables) as ShapeDtypeStructs: traced, never computed or allocated."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(lambda x: model.init_with_output(key(0), x, **kwargs), x)


def _num_params(variables) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("name", NAMES)
def test_param_count_matches_reference(name):
    num_classes = 527 if name == "cnn14" else 1000
    _, variables = _abstract_init(model_class(name)(num_classes=num_classes), (2, 100, 64))
    assert _num_params(variables) == PARAM_COUNTS[name]
    assert ("batch_stats" in variables) == (name in BATCH_NORM)


def test_vgg_batch_norm_variant_count():
    # torchvision vgg11_bn: 132,868,840 with 3 input channels.
    _, variables = _abstract_init(VGG11(num_classes=1000, batch_norm=True), (1, 64, 64))
    assert _num_params(variables) == 132_868_840 - 2 * 64 * 9
    assert "batch_stats" in variables


def test_inception_paper_5x5_branch_count():
    # The paper's 5 x 5 kernels instead of torchvision's 3 x 3: 16 more taps per weight.
    extra = 16 * sum(red * out for red, out in [(16, 32), (32, 96), (16, 48), (24, 64), (24, 64),
                                                (32, 64), (32, 128), (32, 128), (48, 128)])
    model = model_class("inception_v1")(num_classes=1000, branch3_kernel=5)
    _, variables = _abstract_init(model, (1, 64, 64))
    assert _num_params(variables) == PARAM_COUNTS["inception_v1"] + extra == 6_999_560


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(2, 64, 64), (2, 32, 32), (2, 100, 64)])
def test_shapes_and_no_empty_maps(name, shape):
    model = model_class(name)(num_classes=10)
    assert model.input_kind == "logmel"
    (logits, state) = _abstract_init(model, shape, capture_intermediates=True)
    assert logits.shape == (2, 10) and logits.dtype == jnp.float32
    # Every layer's output keeps every axis non-empty (a zero-sized map would average to NaN).
    for leaf in jax.tree.leaves(state["intermediates"]):
        assert all(d > 0 for d in leaf.shape), (name, leaf.shape)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    variables = {k: v for k, v in state.items() if k != "intermediates"}
    emb = jax.eval_shape(lambda v, x: model.apply(v, x, method="features"), variables, x)
    assert emb.shape == (2, FEATURE_DIMS[name])


def test_input_must_be_a_spectrogram_batch():
    with pytest.raises(ValueError, match=r"\[batch, frames, mel_bins\]"):
        _abstract_init(ResNet18(num_classes=3), (64, 64))


# Small configurations of four families, cheap enough to run for real on CPU; the two with
# dropout (vgg_bn, cnn14) also exercise the train / eval switch.
TINY = {
    "resnet": lambda: ResNet(stage_sizes=(1, 1, 1), num_filters=8, num_classes=10),
    "vgg_bn": lambda: VGG(layers=(8, "M", 16, "M"), batch_norm=True, hidden=16,
                          num_classes=10),
    "densenet": lambda: DenseNet(growth_rate=4, block_config=(1, 1, 1), num_init_features=8,
                                 bn_size=2, num_classes=10),
    "cnn14": lambda: Cnn14(channels=(4, 4, 8, 8, 8, 8), embedding_dim=16, num_classes=10),
}


@functools.cache
def _tiny(variant: str):
    """(model, input, variables), initialised once per test session."""
    model = TINY[variant]()
    x = normal((4, 48, 40), scale=3.0, shift=1.0)
    return model, x, jax.jit(model.init)(key(1), x)


def _check_train_eval(model, variables, x, has_dropout: bool):
    """Eval needs no rng and repeats exactly; train mode draws dropout from the "dropout" rng."""
    evaluate = jax.jit(model.apply)
    np.testing.assert_array_equal(evaluate(variables, x), evaluate(variables, x))
    mutable = ["batch_stats"] if "batch_stats" in variables else False
    train_step = jax.jit(lambda v, x, rng: model.apply(
        v, x, train=True, mutable=mutable, rngs={"dropout": rng}))
    first, again, other = (train_step(variables, x, key(s)) for s in (3, 3, 4))
    logits = first[0] if mutable else first
    assert logits.shape == (x.shape[0], 10) and bool(jnp.isfinite(logits).all())
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    same = np.allclose(logits, other[0] if mutable else other)
    assert same != has_dropout
    return first


@pytest.mark.parametrize("variant", sorted(TINY))
def test_batch_stats_update_only_in_train_mode(variant):
    model, x, variables = _tiny(variant)
    has_dropout = variant in ("vgg_bn", "cnn14")
    _, updates = _check_train_eval(model, variables, x, has_dropout)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                           variables["batch_stats"], updates["batch_stats"])
    assert all(jax.tree.leaves(changed))


def test_cnn14_bn0_normalises_each_mel_bin():
    variables = jax.eval_shape(TINY["cnn14"]().init, key(0), jnp.zeros((1, 40, 24)))
    assert variables["params"]["bn0"]["scale"].shape == (24,)
    assert variables["batch_stats"]["bn0"]["mean"].shape == (24,)


def test_alexnet_dropout_only_in_train_mode():
    model = AlexNet(num_classes=10, hidden=16)
    x = normal((2, 64, 64))
    _check_train_eval(model, jax.jit(model.init)(key(1), x), x, has_dropout=True)


def test_squeezenet_dropout_and_final_relu():
    model = SqueezeNet1_1(num_classes=10)
    x = normal((2, 32, 32))
    variables = jax.jit(model.init)(key(1), x)
    logits = _check_train_eval(model, variables, x, has_dropout=True)
    # The paper's ReLU before the global pool makes every class score non-negative.
    assert bool((logits >= 0).all())
    raw = jax.jit(SqueezeNet1_1(num_classes=10, final_relu=False).apply)(variables, x)
    assert bool((raw < 0).any())


def test_jit_grad_is_finite():
    model, x, variables = _tiny("resnet")
    labels = jnp.array([0, 1, 2, 3])

    @jax.jit
    def loss_and_grad(params, batch_stats):
        def loss_fn(p):
            logits, updates = model.apply({"params": p, "batch_stats": batch_stats}, x,
                                          train=True, mutable=["batch_stats"])
            logp = jax.nn.log_softmax(logits)
            return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean(), updates

        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    (loss, _), grads = loss_and_grad(variables["params"], variables["batch_stats"])
    assert bool(jnp.isfinite(loss))
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    assert any(bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_full_model_forward_is_finite(name):
    model = model_class(name)(num_classes=10)
    x = normal((2, 64, 64))
    logits, variables = jax.jit(model.init_with_output)(key(1), x)
    assert logits.shape == (2, 10) and bool(jnp.isfinite(logits).all())
    emb = model.apply(variables, x, method="features")
    assert emb.shape == (2, FEATURE_DIMS[name]) and bool(jnp.isfinite(emb).all())


# ---- pooling ---------------------------------------------------------------------------

def test_adaptive_bins_follow_torch_formula():
    assert adaptive_bins(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    assert adaptive_bins(2, 5) == [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2)]
    assert adaptive_bins(12, 6) == [(i * 2, i * 2 + 2) for i in range(6)]


def test_adaptive_pools_by_hand():
    x = jnp.arange(1 * 3 * 5 * 1, dtype=jnp.float32).reshape(1, 3, 5, 1)
    avg = adaptive_avg_pool(x, (2, 2))[0, :, :, 0]
    mx = adaptive_max_pool(x, (2, 2))[0, :, :, 0]
    # rows bins [0, 2), [1, 3); column bins [0, 3), [2, 5)
    xn = np.asarray(x[0, :, :, 0])
    for i, (r0, r1) in enumerate([(0, 2), (1, 3)]):
        for j, (c0, c1) in enumerate([(0, 3), (2, 5)]):
            np.testing.assert_allclose(avg[i, j], xn[r0:r1, c0:c1].mean(), rtol=1e-6)
            assert mx[i, j] == xn[r0:r1, c0:c1].max()
    assert adaptive_avg_pool(x, (7, 7)).shape == (1, 7, 7, 1)


def test_small_inputs_pool_to_one_position_instead_of_zero():
    x = normal((2, 1, 2, 3))
    y = max_pool(x, 3, 2)
    assert y.shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(y[:, 0, 0], x.max(axis=(1, 2)))
    z = avg_pool(x, 2)
    assert z.shape == (2, 1, 1, 3)
    np.testing.assert_allclose(z[:, 0, 0], x.mean(axis=(1, 2)), rtol=1e-6)


def _torch():
    return pytest.importorskip("torch")


def _nchw(x):
    torch = _torch()
    return torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())


def _nhwc(t):
    return t.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("size,out", [((13, 9), (6, 6)), ((4, 3), (7, 7)), ((14, 14), (7, 7)),
                                      ((1, 1), (6, 6)), ((25, 2), (3, 5))])
def test_adaptive_pools_match_torch(size, out):
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((2, *size, 3)).astype(np.float32)
    ref_avg = torch.nn.functional.adaptive_avg_pool2d(_nchw(x), out)
    ref_max = torch.nn.functional.adaptive_max_pool2d(_nchw(x), out)
    np.testing.assert_allclose(adaptive_avg_pool(jnp.asarray(x), out), _nhwc(ref_avg),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(adaptive_max_pool(jnp.asarray(x), out), _nhwc(ref_max))


@pytest.mark.parametrize("size", [(7, 8), (15, 16), (3, 5), (28, 28)])
@pytest.mark.parametrize("window,stride,padding,ceil_mode",
                         [(3, 2, 0, False), (3, 2, 0, True), (3, 2, 1, False), (3, 1, 1, True),
                          (2, 2, 0, True), (2, 2, 0, False)])
def test_max_pool_matches_torch(size, window, stride, padding, ceil_mode):
    torch = _torch()
    x = np.random.default_rng(1).standard_normal((2, *size, 4)).astype(np.float32)
    ref = torch.nn.functional.max_pool2d(_nchw(x), window, stride, padding,
                                         ceil_mode=ceil_mode)
    np.testing.assert_array_equal(max_pool(jnp.asarray(x), window, stride, padding, ceil_mode),
                                  _nhwc(ref))


@pytest.mark.parametrize("window,stride,padding,ceil_mode",
                         [(3, 2, 0, True), (3, 2, 1, False), (3, 1, 1, True), (2, 2, 0, False)])
def test_max_pool_gradient_matches_torch_with_ties(window, stride, padding, ceil_mode):
    """Integer-valued inputs make many windows hold their maximum twice: the gradient goes
    to the first in row-major order, as torch routes it, and overlapping windows add up."""
    torch = _torch()
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (2, 11, 12, 3)).astype(np.float32)
    y = max_pool(jnp.asarray(x), window, stride, padding, ceil_mode)
    cotangent = rng.standard_normal(y.shape).astype(np.float32)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(
        max_pool(x, window, stride, padding, ceil_mode) * cotangent)))(jnp.asarray(x))
    xt = _nchw(x).requires_grad_(True)
    ref = torch.nn.functional.max_pool2d(xt, window, stride, padding, ceil_mode=ceil_mode)
    ref.backward(_nchw(cotangent))
    np.testing.assert_allclose(grad, _nhwc(xt.grad), rtol=1e-6, atol=1e-6)


def test_max_pool_gradient_has_no_select_and_scatter_and_keeps_bfloat16():
    """XLA:CPU expands select-and-scatter (reduce_window's own max gradient) into index
    arrays and a scatter; `window_max` writes its gradient out tap by tap instead."""
    x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3), jnp.bfloat16)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(max_pool(x, 3, 2, 1).astype(jnp.float32))))
    assert "select_and_scatter" not in grad.lower(x).as_text()
    g = grad(x)
    assert g.dtype == jnp.bfloat16
    # The same routing as float32 on the same values: each position's gradient is the number
    # of windows it tops (a small integer, exact in bfloat16).
    counts = jax.grad(lambda x: jnp.sum(max_pool(x, 3, 2, 1)))(x.astype(jnp.float32))
    np.testing.assert_array_equal(g.astype(jnp.float32), counts)


def test_avg_pool_matches_torch():
    torch = _torch()
    x = np.random.default_rng(2).standard_normal((2, 9, 6, 4)).astype(np.float32)
    ref = torch.nn.functional.avg_pool2d(_nchw(x), 2)
    np.testing.assert_allclose(avg_pool(jnp.asarray(x), 2), _nhwc(ref), rtol=1e-5, atol=1e-6)
