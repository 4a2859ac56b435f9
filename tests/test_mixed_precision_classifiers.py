"""Mixed precision in every classifier family: with dtype=bfloat16 the parameters stay float32,
every matmul and convolution runs in bfloat16, the outputs stay within bfloat16's rounding of
the float32 ones, and the tasks' losses are float32."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.config import load_config
from audiozoo.models import model_class
from audiozoo.models.wav2vec2 import Wav2Vec2, Wav2Vec2ForPreTraining, compute_mask
from audiozoo.tasks import build_task
from helpers import float32_matmul_shapes, heavy_op_dtypes

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")

# bfloat16 keeps 8 significant bits: each rounding is off by up to 2^-8 = 0.4%, and through
# these networks the errors add up to 0.3-2.3% of the output scale (max over six inputs:
# AlexNet 2.3%, pitch classifier 1.9%, VGG 1.7%, the rest 1.4% or less). 5% leaves room for
# other inputs and backends; a missed cast is caught by the dtype checks below, a wrong one
# would be off by order 100%. SincNet gets 10%: its layer norms subtract each channel's mean
# over a few time steps from values rounded relative to their own size, which magnifies the
# rounding (0.9-3.3% measured).
TOL = 0.05
TOLERANCES = {"sincnet": 0.1}

W2V = dict(conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 5), hidden=16,
           num_layers=1, num_heads=2, intermediate=32, num_conv_pos_embeddings=8,
           num_conv_pos_embedding_groups=2)
# Registry name -> (small constructor arguments, input shape), sizes as in test_cnns.py,
# test_sincnet.py, test_ast.py and test_wav2vec2.py (Inception's widths are fixed). 96 x 96
# log-mels keep the CNNs' late maps large enough for XLA's own convolution, which compiles
# faster than the tap matmuls of audiozoo.nn.convolution.
IMAGE = (2, 96, 96)
FAMILIES = {
    "alexnet": (dict(hidden=16), IMAGE),
    "vgg11": (dict(hidden=16, batch_norm=True), IMAGE),
    "inception_v1": ({}, IMAGE),
    "resnet18": (dict(num_filters=8), IMAGE),
    "densenet121": (dict(growth_rate=4, block_config=(2, 2, 2), num_init_features=8,
                         bn_size=2), IMAGE),
    "squeezenet1_1": ({}, IMAGE),
    "cnn14": (dict(channels=(4, 4, 8, 8, 8, 8), embedding_dim=16), IMAGE),
    "sincnet": (dict(sinc_filters=8, sinc_kernel_size=31, conv_features=(6, 6),
                     dnn_features=(16, 16)), (2, 400)),
    "ast": (dict(num_frames=100, num_mel_bins=32, hidden=32, num_layers=2, num_heads=4,
                 mlp_dim=64), (2, 100, 32)),
    "wav2vec2": (W2V, (2, 1000)),
    "wav2vec2_classifier": (dict(W2V, classifier_proj_size=8), (2, 1000)),
    # 8 channels, not 4: with 4 the error reached 6% on some inputs (sums of few products).
    "gansynth_pitch_classifier": (dict(channels=(8,) * 9, hidden=16), (2, 32, 64)),
}
NAMES = sorted(FAMILIES)


def key(seed: int) -> jax.Array:
    return jax.random.key(seed, impl="rbg")  # threefry's kernels compile slowly on CPU


def _input(shape, seed: int = 0) -> jax.Array:
    """Log-mel-like N(0, 1) features, or waveforms in [-1, 1] for [batch, samples]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape) if len(shape) == 2 else rng.normal(0, 1, shape)
    return jnp.asarray(x, jnp.float32)


def _models_and_input(name: str):
    """(float32 model, bfloat16 model, input) of a family."""
    kwargs, shape = FAMILIES[name]
    extra = {} if name == "wav2vec2" else {"num_classes": 5}
    model = model_class(name)(**kwargs, **extra)
    return model, model.clone(dtype=jnp.bfloat16), _input(shape)


@functools.cache
def _family(name: str):
    """(float32 model, bfloat16 model, input, float32 variables, float32 output), initialised
    once (init_with_output: one compile for the variables and the reference output)."""
    model, half, x = _models_and_input(name)
    full, variables = jax.jit(model.init_with_output)(key(0), x)
    return model, half, x, variables, full


@functools.cache
def _shapes(name: str):
    """(float32 model, bfloat16 model, input, the variables' shapes): all the jaxpr checks
    need, without compiling an initialisation (Inception's takes 20 s)."""
    model, half, x = _models_and_input(name)
    return model, half, x, jax.eval_shape(model.init, key(0), x)


# inception_v1 (the slowest to compile) runs with -m slow; its convs are the other CNNs'.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "inception_v1"
                                  else n for n in NAMES])
def test_bfloat16_output_is_close_to_float32(name):
    _, half, x, variables, full = _family(name)
    out = jax.jit(half.apply)(variables, x)
    assert full.dtype == jnp.float32 and out.dtype == jnp.bfloat16
    error = float(jnp.max(jnp.abs(out.astype(jnp.float32) - full)))
    assert error <= TOLERANCES.get(name, TOL) * float(jnp.max(jnp.abs(full))), (name, error)


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_init_keeps_float32_variables(name):
    _, half, x = _models_and_input(name)
    shapes = jax.eval_shape(half.init, key(0), x)
    assert {leaf.dtype for leaf in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_matmuls_and_convs(name):
    model, half, x, variables = _shapes(name)
    for module, dtype in ((half, "bfloat16"), (model, "float32")):
        found = heavy_op_dtypes(jax.jit(module.apply), variables, x)
        assert found and all(dtypes == {dtype} for dtypes in found.values()), (name, found)


# ---- wav2vec 2.0 pretraining ------------------------------------------------------------
def test_wav2vec2_pretraining_keeps_only_quantiser_matmuls_in_float32():
    groups, entries = 2, 12  # G * V = 24: a width no other layer has
    model = Wav2Vec2ForPreTraining(wav2vec2=Wav2Vec2(**W2V, dtype=jnp.bfloat16),
                                   num_codevector_groups=groups, num_codevectors_per_group=entries,
                                   codevector_dim=8, proj_codevector_dim=8, dtype=jnp.bfloat16)
    x = _input((2, 1000))
    mask = compute_mask(key(1), 2, Wav2Vec2(**W2V).num_frames(1000), mask_length=2)
    variables = jax.eval_shape(model.init, key(0), x, mask)
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}

    def train_outputs(variables, x):
        return model.apply(variables, x, mask, train=True,
                           rngs={"dropout": key(2), "gumbel": key(3)})

    found = heavy_op_dtypes(train_outputs, variables, x)
    assert found == {"conv_general_dilated": {"bfloat16"}, "dot_general": {"bfloat16", "float32"}}
    # The float32 matmuls are the quantiser's: weight_proj [.., dim] @ [dim, G * V] and the
    # masked average of the code probabilities for the perplexity, [n] @ [n, G, V].
    float32 = float32_matmul_shapes(train_outputs, variables, x)
    assert float32 and all(shapes[1][-1] == groups * entries or shapes[1][-2:] == (groups, entries)
                           for shapes in float32), float32
    out = jax.eval_shape(train_outputs, variables, x)
    assert out.projected_states.dtype == out.projected_quantized_states.dtype == jnp.bfloat16
    assert out.codevector_perplexity.dtype == jnp.float32


# ---- tasks ------------------------------------------------------------------------------
def _all_float32(tree) -> bool:
    return all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(tree)
               if jnp.issubdtype(leaf.dtype, jnp.floating))


def test_classify_train_step_in_bfloat16_has_a_float32_loss():
    config = load_config(os.path.join(CONFIGS, "classify_tiny.py:resnet18"))
    config.model.dtype = "bfloat16"  # not in the base config yet
    config.model.update(num_filters=4, stage_sizes=(1, 1))  # a small ResNet compiles fast
    task = build_task(config)
    assert task.model.dtype == jnp.bfloat16
    audio = 0.3 * _input((4, config.data.segment_length))
    batch = {"audio": audio, task.label_key: jnp.array([0, 1, 2, 3], jnp.int32)}
    state = jax.jit(task.init_state)(key(0), batch)
    new_state, metrics = jax.jit(task.train_step)(state, batch, key(1))
    assert metrics["loss"].dtype == jnp.float32 and bool(jnp.isfinite(metrics["loss"]))
    assert float(metrics["finite"]) == 1.0
    assert _all_float32(new_state.params) and _all_float32(new_state.extra)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.extra["batch_stats"],
                           new_state.extra["batch_stats"])
    assert all(jax.tree.leaves(changed))
    # Predictions and embeddings (what evaluate, classify and the GAN metrics read): float32.
    assert jax.eval_shape(task.predict, new_state, audio).dtype == jnp.float32
    assert jax.eval_shape(task.features, new_state, audio).dtype == jnp.float32


def test_wav2vec2_pretraining_loss_in_bfloat16_is_float32():
    config = load_config(os.path.join(CONFIGS, "wav2vec2_tiny_pretrain.py"))
    config.model.dtype = "bfloat16"
    config.model.update(conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 5),
                        num_layers=1)
    config.data.segment_length = 1000  # 20 frames
    config.task.num_negatives = 4
    task = build_task(config)
    assert task.model.dtype == task.backbone.dtype == jnp.bfloat16
    batch = {"audio": 0.3 * _input((2, config.data.segment_length))}
    state = jax.jit(task.init_state)(key(0), batch)
    assert _all_float32(state.params)
    # The loss alone: a train step's compile takes 4x longer, and the classification step
    # above already backpropagates through bfloat16 layers.
    loss_fn = jax.jit(functools.partial(task.loss, train=True))
    _, (metrics, _) = loss_fn(state.params, state.extra, batch, key(1))
    for name in ("loss", "contrastive_loss", "diversity_loss", "accuracy"):
        assert metrics[name].dtype == jnp.float32 and bool(jnp.isfinite(metrics[name])), name
