"""Mixed precision for the generative families: WaveNet (softmax and mixture-of-logistics
heads, global + local conditioning), the WaveNet autoencoders (NSynth, VQ-VAE, argmax), GANSynth
and the fast ring-buffer generator.

Each model is initialised once in float32 and applied with the same variables in float32 and
in bfloat16 (`dtype=jnp.bfloat16`): the outputs agree within a tolerance set from bfloat16's
precision, `init` in bfloat16 still makes float32 parameters, and the jitted computation's
matmuls and convolutions take bfloat16 operands (where one must stay float32, the test says
which and why)."""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float32_matmul_shapes, heavy_op_dtypes, random_variables, tiny_config

from audiozoo import generation
from audiozoo.config import load_config
from audiozoo.models.autoencoder import WaveNetAutoencoder
from audiozoo.models.gansynth import GANSynth
from audiozoo.models.wavenet import WaveNet
from audiozoo.tasks import build_task

BF16 = jnp.bfloat16
EPS = 2.0**-8  # bfloat16's spacing just above 1: 8 significant bits, rounding error <= EPS / 2

# Tolerances on max|bf16 - f32| / max|f32|. Every layer rounds its inputs, weights, products
# and bias sums to bfloat16 (up to EPS / 2 each), and a few layers add these up to several EPS
# at the worst element. Worst measured over 8 seeds: WaveNet softmax 0.015, MoL 0.029,
# conditioned 0.012; autoencoders 0.026; GANSynth discriminator 0.033.
TOL = 12 * EPS
# bf16 teacher-forced steps against the bf16 full pass: the same arithmetic rounded in another
# order (e.g. one matmul over every layer's skip path instead of a running sum); worst 0.012.
TOL_STEPS = 6 * EPS
# GANSynth's generator: pixel norm rescales every position to unit RMS, so where a conv output
# nearly cancels, its rounding error is blown up with it, and tanh squeezes the peak that the
# error is measured against. Rounding only the float32 weights to bf16, once, already moves the
# float32 generator's output by 3% of its peak. Worst measured: 0.108 of the peak, 0.016 RMS.
TOL_GENERATOR_PEAK = 40 * EPS
TOL_GENERATOR_RMS = 8 * EPS

SMALL = dict(residual_channels=8, gate_channels=16, skip_channels=8)
WAVENETS = {
    "softmax": dict(num_layers=6, num_stacks=2, kernel_size=2, num_classes=256),
    "mol": dict(num_layers=6, num_stacks=2, kernel_size=2, output="mol", num_mixtures=3,
                num_classes=65536),
    "global_local": dict(num_layers=6, num_stacks=2, kernel_size=3, num_classes=256,
                         num_global_ids=3, global_channels=4, local_channels=3,
                         upsample_scales=(2, 4), condition_output=True),
}
AUTOENCODER = dict(encoder_layers=4, encoder_stacks=2, encoder_channels=16, latent_channels=4,
                   hop_length=8, decoder_layers=4, decoder_stacks=2, num_classes=32, num_codes=6,
                   **SMALL)
GAN = dict(resolutions=3, start_shape=(2, 4), fmap_base=64, fmap_max=16, latent_dim=8,
           num_pitches=5)


def relative_error(reference, other) -> float:
    reference, other = np.asarray(reference, np.float32), np.asarray(other, np.float32)
    return float(np.max(np.abs(other - reference)) / np.max(np.abs(reference)))


def assert_all_float32(variables):
    dtypes = {str(leaf.dtype) for leaf in jax.tree.leaves(variables)}
    assert dtypes == {"float32"}, dtypes


def assert_init_makes_float32(model, *args, **kwargs):
    """What model.init creates (its abstract value: dtypes without the compile) is float32."""
    assert_all_float32(jax.eval_shape(functools.partial(model.init, **kwargs), *args))


def assert_bf16_ops(fn, *args, expected=None):
    """Every matmul and convolution of jit(fn) takes bfloat16 operands (or `expected`)."""
    found = heavy_op_dtypes(jax.jit(fn), *args)
    assert found, "no matmul or convolution traced"
    assert found == (expected or {name: {"bfloat16"} for name in found}), found


# ---- WaveNet ------------------------------------------------------------------------------
def wavenet(case):
    net = WaveNet(**SMALL, **WAVENETS[case])
    keys = jax.random.split(jax.random.key(0), 3)
    codes = jax.random.randint(keys[0], (2, 64), 0, net.num_classes)
    cond = {}
    if net.uses_global:
        cond["global_cond"] = jnp.arange(2) % net.num_global_ids
    if net.uses_local:
        cond["local_cond"] = jax.random.normal(keys[1], (2, 64 // net.hop_length, 3))
    return net, random_variables(net, codes, **cond), codes, cond


@pytest.mark.parametrize("case", WAVENETS)
def test_wavenet_in_bfloat16_matches_float32(case):
    net, variables, codes, cond = wavenet(case)
    bf16 = net.clone(dtype=BF16)
    full, half = net.apply(variables, codes, **cond), bf16.apply(variables, codes, **cond)
    # The logits are float32 either way: they feed a softmax or a mixture likelihood.
    assert full.dtype == half.dtype == jnp.float32
    assert relative_error(full, half) <= TOL
    assert_init_makes_float32(bf16, jax.random.key(1), codes, **cond)
    assert_bf16_ops(lambda v, c: bf16.apply(v, c, **cond), variables, codes)


@pytest.mark.parametrize("case", WAVENETS)
def test_fast_generator_runs_in_the_nets_dtype(case):
    net, variables, codes, cond = wavenet(case)
    bf16 = net.clone(dtype=BF16)
    stepped = generation.teacher_force(bf16, variables, codes, **cond)
    assert stepped.dtype == jnp.float32
    assert relative_error(bf16.apply(variables, codes, **cond), stepped) <= TOL_STEPS
    assert relative_error(net.apply(variables, codes, **cond), stepped) <= TOL
    assert_bf16_ops(lambda v, c: generation.teacher_force(bf16, v, c, **cond), variables, codes)
    # Ring buffers in the net's dtype by default (the buffer as bfloat16 bit patterns in
    # uint16): half the float32 state.
    state = generation.init_state(bf16, variables, 2)
    assert (str(state.buffer.dtype), str(state.taps.dtype)) == ("uint16", "bfloat16")
    assert 2 * generation.state_bytes(state) == generation.state_bytes(
        generation.init_state(net, variables, 2))
    # Sampling draws from float32 logits and gives valid codes.
    gen = generation.Generator(bf16, variables, jax.random.key(2), 16, batch_size=2, **cond)
    sampled = np.asarray(gen.run(16))
    assert sampled.dtype == np.int32 and 0 <= sampled.min() and sampled.max() < net.num_classes
    assert (str(gen.state.buffer.dtype), str(gen.state.taps.dtype)) == ("uint16", "bfloat16")


def test_bfloat16_ring_buffer_is_written_in_place_without_a_float32_copy():
    """XLA:CPU has no bfloat16 dynamic-update-slice: a bfloat16 buffer was converted whole to
    float32 and back around every layer's write (18x slower generation than float32). Stored
    as uint16 bits, the compiled step holds no float32 array of the buffer's shape, and the
    taps read back are the bfloat16 values written."""
    net = WaveNet(**SMALL, **WAVENETS["softmax"], dtype=BF16)
    state = generation.init_state(net, None, 2)
    layers = len(net.layer_dilations)
    inputs = jax.random.normal(jax.random.key(0), (layers, 2, SMALL["residual_channels"]), BF16)
    remember = jax.jit(lambda state, inputs: generation.fast._remember(net, state, inputs))
    hlo = remember.lower(state, inputs).compile().as_text()
    buffer_shape = ",".join(map(str, state.buffer.shape))
    assert f"f32[{buffer_shape}]" not in hlo and f"bf16[{buffer_shape}]" not in hlo
    # Kernel size 2: after writing step 0, the next step's single past tap of every layer
    # (lag = its dilation) is still empty, except a dilation-1 layer's, which reads step 0.
    taps = remember(state, inputs).taps
    assert taps.dtype == BF16
    for layer, dilation in enumerate(net.layer_dilations):
        expected = inputs[layer] if dilation == 1 else jnp.zeros_like(inputs[layer])
        np.testing.assert_array_equal(taps[layer], expected)


def test_wavenet_task_trains_in_bfloat16_with_a_float32_loss():
    config = tiny_config()
    config.model.dtype = "bfloat16"
    task = build_task(config)
    batch = task.dummy_batch(4)
    batch["audio"] = 0.3 * jnp.sin(0.1 * jnp.arange(256))[None].repeat(4, 0)
    state = task.init_state(jax.random.key(0), batch)
    assert_all_float32(state.params)
    new_state, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(1))
    assert metrics["loss"].dtype == jnp.float32 and np.isfinite(float(metrics["loss"]))
    assert float(metrics["finite"]) == 1.0
    assert_all_float32(new_state.params)
    ops = heavy_op_dtypes(task.train_step, state, batch, jax.random.key(1))
    assert ops["conv_general_dilated"] == {"bfloat16"}
    # The only float32 operands are the float32 logits' cotangent in the output layer's two
    # backward products (JAX's transpose of a bf16 product accumulated into float32).
    num_classes = config.model.num_classes
    products = float32_matmul_shapes(task.train_step, state, batch, jax.random.key(1))
    assert len(products) == 2 and all(shapes[0][-1] == num_classes for shapes in products)


# ---- WaveNet autoencoders -----------------------------------------------------------------
def autoencoder(bottleneck):
    model = WaveNetAutoencoder(bottleneck=bottleneck, **AUTOENCODER)
    codes = jax.random.randint(jax.random.key(0), (2, 64), 0, model.num_classes)
    variables = model.init({"params": jax.random.key(1), "vq": jax.random.key(2)}, codes)
    return model, variables, codes


@pytest.mark.parametrize("bottleneck", ["none", "vq", "argmax"])
def test_autoencoder_in_bfloat16_matches_float32(bottleneck):
    model, variables, codes = autoencoder(bottleneck)
    bf16 = model.clone(dtype=BF16)
    (full, out), (half, half_out) = model.apply(variables, codes), bf16.apply(variables, codes)
    # Deterministic for these seeds: no latent lies so close to two codes that bf16 flips it.
    np.testing.assert_array_equal(out.codes, half_out.codes)
    assert full.dtype == half.dtype == jnp.float32 and half_out.quantized.dtype == BF16
    assert half_out.loss.dtype == jnp.float32
    assert relative_error(full, half) <= TOL
    assert_init_makes_float32(bf16, {"params": jax.random.key(1), "vq": jax.random.key(2)}, codes)
    encode = functools.partial(bf16.apply, method=bf16.encode)
    assert_bf16_ops(encode, variables, codes)
    if bottleneck == "vq":
        # Nearest-code distances stay float32 (at HIGHEST precision): a bf16 dot product could
        # pick a farther code. Everything else is bf16.
        encoded = encode(variables, codes)
        quantize = functools.partial(bf16.apply, method=bf16.quantize)
        assert heavy_op_dtypes(jax.jit(quantize), variables, encoded) == {
            "dot_general": {"float32"}}
        assert_bf16_ops(bf16.apply, variables, codes, expected={
            "conv_general_dilated": {"bfloat16"}, "dot_general": {"bfloat16", "float32"}})
    else:
        assert_bf16_ops(bf16.apply, variables, codes)


@pytest.mark.parametrize("bottleneck", ["none", "vq"])
def test_autoencoder_decode_path_runs_in_bfloat16(bottleneck):
    model, variables, codes = autoencoder(bottleneck)
    bf16 = model.clone(dtype=BF16)
    logits, out = bf16.apply(variables, codes)
    decoder, dec_vars = bf16.decoder_net, {"params": variables["params"]["decoder"]}
    assert decoder.dtype == BF16
    if bottleneck == "vq":
        latent = bf16.apply(variables, out.codes, method=bf16.latent_of_codes)
        assert latent.dtype == BF16
        np.testing.assert_array_equal(latent, out.quantized)
    inputs = jnp.pad(codes[:, :-1], ((0, 0), (1, 0)),
                     constant_values=generation.silence_code(decoder))
    stepped = generation.teacher_force(decoder, dec_vars, inputs, local_cond=out.quantized)
    assert relative_error(logits, stepped) <= TOL_STEPS
    gen = generation.Generator(decoder, dec_vars, jax.random.key(3), 64, batch_size=2,
                               local_cond=out.quantized)
    assert (str(gen.state.buffer.dtype), str(gen.state.taps.dtype)) == ("uint16", "bfloat16")
    assert gen.run(64).shape == (2, 64)
    assert_bf16_ops(lambda v, c, q: generation.teacher_force(decoder, v, c, local_cond=q),
                    dec_vars, inputs, out.quantized)


def test_autoencoder_task_loss_is_float32_in_bfloat16():
    config = load_config(str(Path(__file__).parents[1] / "configs" / "ada_tiny.py") + ":vq_ema")
    config.model.update(dict(AUTOENCODER, bottleneck="vq", vq_ema=True, dtype="bfloat16"))
    config.data.segment_length = 64
    task = build_task(config)
    batch = {"audio": 0.3 * jnp.sin(0.1 * jnp.arange(64))[None].repeat(2, 0)}
    state = task.init_state(jax.random.key(0), batch)
    assert_all_float32((state.params, state.extra))
    loss, (metrics, extra) = task.loss(state.params, state.extra, batch, jax.random.key(1), True)
    assert loss.dtype == jnp.float32 and np.isfinite(float(loss))
    assert_all_float32(extra)  # the EMA codebook statistics stay float32 too


# ---- GANSynth -----------------------------------------------------------------------------
@pytest.mark.slow
def test_gansynth_in_bfloat16_matches_float32():
    model = GANSynth(**GAN)
    z = jax.random.normal(jax.random.key(0), (4, GAN["latent_dim"]))
    pitch = jnp.arange(4) % GAN["num_pitches"]
    variables = jax.jit(model.init)(jax.random.key(1), z, pitch, 0.0)
    bf16 = model.clone(dtype=BF16)
    progress = jnp.float32(GAN["resolutions"] - 1)  # every block grown and faded in
    generate = functools.partial(bf16.apply, method="generate")
    images = jax.jit(functools.partial(model.apply, method="generate"))(variables, z, pitch,
                                                                        progress)
    half = jax.jit(generate)(variables, z, pitch, progress)
    assert half.dtype == jnp.float32  # images to de-normalise and invert, in float32
    assert relative_error(images, half) <= TOL_GENERATOR_PEAK
    rms = np.sqrt(np.mean(np.square(np.asarray(half - images))) / np.mean(np.square(images)))
    assert rms <= TOL_GENERATOR_RMS
    discriminate = functools.partial(bf16.apply, method="discriminate")
    full_discriminate = jax.jit(functools.partial(model.apply, method="discriminate"))
    for full, part in zip(full_discriminate(variables, images, progress),
                          jax.jit(discriminate)(variables, images, progress)):
        assert part.dtype == jnp.float32  # logits for the losses
        assert relative_error(full, part) <= TOL
    assert_init_makes_float32(bf16, jax.random.key(1), z, pitch, 0.0)
    assert_bf16_ops(generate, variables, z, pitch, progress)
    assert_bf16_ops(discriminate, variables, images, progress)
