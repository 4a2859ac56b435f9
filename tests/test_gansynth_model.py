"""Progressive-GAN blocks and GANSynth's generator and discriminator: the formulas of the
reference implementation, shapes at every stage, and a continuous fade-in."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.models import build_model
from audiozoo.models.gansynth import Discriminator, GANSynth, Generator, num_filters
from audiozoo.nn import progressive as pg
from helpers import random_variables

TINY = dict(resolutions=3, start_shape=(2, 4), fmap_base=64, fmap_max=16, latent_dim=8,
            num_pitches=5)


def test_equalized_conv_scales_an_n01_kernel_by_he_at_run_time():
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 7))
    for slope, gain in ((0.0, 2.0), (1.0, 1.0)):
        conv = pg.EqualizedConv(3, (3, 3), slope=slope)
        variables = conv.init(jax.random.key(1), x)
        kernel = variables["params"]["kernel"]
        assert kernel.shape == (3, 3, 7, 3) and 0.8 < float(jnp.std(kernel)) < 1.2
        assert pg.he_scale(63, slope) == pytest.approx(np.sqrt(gain / 63))
        expected = jax.lax.conv_general_dilated(x, kernel * np.sqrt(gain / 63), (1, 1), "SAME",
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
        np.testing.assert_allclose(conv.apply(variables, x), expected, rtol=1e-5, atol=1e-5)


def test_equalized_dense_flattens_and_uses_gain_one():
    x = jax.random.normal(jax.random.key(0), (4, 2, 3, 5))
    dense = pg.EqualizedDense(7)
    variables = dense.init(jax.random.key(1), x)
    kernel = variables["params"]["kernel"]
    np.testing.assert_allclose(dense.apply(variables, x), x.reshape(4, 30) @ kernel / np.sqrt(30),
                               rtol=1e-5, atol=1e-5)


def test_pixel_norm_gives_unit_mean_square_per_position():
    x = 3.0 * jax.random.normal(jax.random.key(0), (2, 4, 5, 16)) + 1.0
    ms = np.mean(np.square(pg.pixel_norm(x)), axis=-1)
    np.testing.assert_allclose(ms, 1.0, rtol=1e-5)


def test_minibatch_stddev_is_one_scalar_channel_of_the_mean_feature_std():
    x = np.random.default_rng(0).standard_normal((6, 2, 3, 4)).astype(np.float32)
    out = np.asarray(pg.minibatch_stddev(x))
    expected = np.mean(np.sqrt(np.var(x, axis=0) + 1e-6))
    assert out.shape == (6, 2, 3, 5)
    np.testing.assert_allclose(out[..., :4], x)
    np.testing.assert_allclose(out[..., 4], expected, rtol=1e-6)


def test_upscale_and_downscale():
    x = jnp.arange(2 * 2 * 3 * 1, dtype=jnp.float32).reshape(2, 2, 3, 1)
    up = pg.upscale(x, 2)
    assert up.shape == (2, 4, 6, 1)
    np.testing.assert_array_equal(up[:, ::2, ::2], x)
    np.testing.assert_array_equal(up[:, 1::2, 1::2], x)
    np.testing.assert_array_equal(pg.downscale(up, 2), x)
    np.testing.assert_allclose(pg.downscale(x[:, :, :2], 2)[0, 0, 0, 0], np.mean([0, 1, 3, 4]))


@pytest.mark.parametrize("progress", [0.0, 0.3, 1.0, 1.5, 2.0, 2.99, 3.0])
def test_generator_alphas_sum_to_one(progress):
    alphas = [float(pg.generator_alpha(b, progress)) for b in range(1, 5)]
    assert sum(alphas) == pytest.approx(1.0) and min(alphas) >= 0


def test_progress_follows_the_image_counter():
    stable, transition, blocks = 100, 50, 3
    values = [float(pg.progress_at(n, stable, transition, blocks))
              for n in (0, 99, 100, 125, 150, 249, 250, 275, 399, 10_000)]
    assert values == pytest.approx([0, 0, 0, 0.5, 1, 1, 1, 1.5, 2, 2], abs=1e-6)


def test_discriminator_alpha():
    assert [float(pg.discriminator_alpha(3, p)) for p in (1.0, 2.0, 2.25, 3.0, 4.0)] == \
        pytest.approx([1, 1, 0.75, 0, 0])


def test_num_filters_follow_the_reference():
    assert [num_filters(b, 4096, 256) for b in range(0, 8)] == [256, 256, 256, 256, 256, 128, 64, 32]


def _tiny_inputs(batch=3):
    z = jax.random.normal(jax.random.key(0), (batch, TINY["latent_dim"]))
    return z, jnp.arange(batch) % TINY["num_pitches"]


@pytest.mark.parametrize("num_blocks", [1, 2, 3])
def test_generator_and_discriminator_shapes_at_every_stage(num_blocks):
    model = GANSynth(**TINY)
    z, pitch = _tiny_inputs()
    variables = random_variables(model, z, pitch, 0.0, seed=1)
    # Jitted: one compile per network instead of one per operation (faster tests).
    generate = jax.jit(lambda v, z, p, progress: model.apply(v, z, p, progress, num_blocks,
                                                             method="generate"))
    images = generate(variables, z, pitch, float(num_blocks - 1))
    assert images.shape == (3, 8, 16, 2) == (3, *model.output_shape)
    assert float(jnp.max(jnp.abs(images))) <= 1.0
    discriminate = jax.jit(lambda v, x, progress: model.apply(v, x, progress, num_blocks,
                                                              method="discriminate"))
    logit, pitch_logits = discriminate(variables, images, float(num_blocks - 1))
    assert logit.shape == (3,) and pitch_logits.shape == (3, 5)


@pytest.mark.parametrize("stage", [0, 1])
def test_fade_in_starts_where_the_previous_stage_ends(stage):
    """At the first step of a transition (progress = stage, one more block grown), both
    networks compute exactly what the previous stage computed: the new block's weight is 0."""
    model = GANSynth(**TINY)
    z, pitch = _tiny_inputs()
    variables = random_variables(model, z, pitch, 0.0, seed=1)
    # Jitted (one compile per network and block count, not one per operation).
    apply = jax.jit(model.apply, static_argnames=("num_blocks", "method"))
    old = apply(variables, z, pitch, float(stage), num_blocks=stage + 1, method="generate")
    new = apply(variables, z, pitch, float(stage), num_blocks=stage + 2, method="generate")
    np.testing.assert_allclose(new, old, atol=1e-6)
    # Slightly into the transition, the new block starts to show.
    later = apply(variables, z, pitch, stage + 0.1, num_blocks=stage + 2, method="generate")
    assert float(jnp.max(jnp.abs(later - old))) > 1e-4
    images = jax.random.uniform(jax.random.key(2), (3, *model.output_shape), minval=-1, maxval=1)
    d_old = apply(variables, images, float(stage), num_blocks=stage + 1, method="discriminate")
    d_new = apply(variables, images, float(stage), num_blocks=stage + 2, method="discriminate")
    for a, b in zip(d_old, d_new):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_generator_stage_output_is_the_lower_resolution_upscaled():
    """In a stable stage the output has the stage's resolution, upscaled (nearest)."""
    model = GANSynth(**TINY)
    z, pitch = _tiny_inputs()
    variables = random_variables(model, z, pitch, 0.0, seed=1)
    images = jax.jit(lambda v: model.apply(v, z, pitch, 0.0, 1, method="generate"))(variables)
    np.testing.assert_allclose(images, pg.upscale(pg.downscale(images, 4), 4), atol=1e-6)


def test_full_size_plus_h_networks():
    model = build_model({"name": "gansynth"})
    z, pitch = jnp.zeros((2, 256)), jnp.array([0, 60])
    shapes = jax.eval_shape(model.init, jax.random.key(0), z, pitch, 6.0)
    assert model.output_shape == (128, 1024, 2)
    params = shapes["params"]
    assert params["generator"]["block_1_conv0"]["kernel"].shape == (2, 16, 256 + 61, 256)
    assert params["generator"]["block_7_to_rgb"]["kernel"].shape == (1, 1, 32, 2)
    assert params["discriminator"]["block_1_conv1"]["kernel"].shape == (2, 16, 256, 256)
    assert params["discriminator"]["pitch_logits"]["kernel"].shape == (256, 61)
    out = jax.eval_shape(lambda v: model.apply(v, z, pitch, 6.0), shapes)
    assert out[0].shape == (2, 128, 1024, 2) and out[1][1].shape == (2, 61)


def test_bad_inputs_are_refused():
    model = GANSynth(**TINY)
    z, pitch = _tiny_inputs()
    # Shapes only: the checks run while tracing, before anything would be computed.
    variables = jax.eval_shape(model.init, jax.random.key(1), z, pitch, 0.0)
    with pytest.raises(ValueError, match="num_blocks=4 must be in 1..3"):
        jax.eval_shape(lambda v: model.apply(v, z, pitch, 0.0, 4, method="generate"), variables)
    with pytest.raises(ValueError, match=r"expected \[batch, 8, 16, 2\]"):
        jax.eval_shape(lambda v: model.apply(v, jnp.zeros((3, 16, 8, 2)), 0.0,
                                             method="discriminate"), variables)
    assert Generator(**TINY).output_shape == Discriminator(**{k: v for k, v in TINY.items()
                                                             if k != "latent_dim"}).output_shape
