"""Progressive-GAN building blocks, as GANSynth uses them.

Karras et al. 2018, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation" (ICLR), section 2 (growing with a smooth fade-in), 3 (minibatch standard deviation)
and 4.1-4.2 (equalised learning rate, pixel-wise feature normalisation); in the form of
magenta's models/gansynth/lib/layers.py and networks.py, which GANSynth (Engel et al. 2019)
trains:

- Equalised learning rate: weights are drawn from N(0, 1) and multiplied at run time by the
  He constant sqrt(2 / ((1 + s^2) fan_in)), fan_in = kh * kw * cin; magenta uses s = 0 for the
  hidden convolutions (although they are followed by a LeakyReLU 0.2) and s = 1 for to_rgb and
  the dense logit layers. Biases start at 0.
- Pixel norm: x / sqrt(mean over channels of x^2 + 1e-8), per position.
- Minibatch standard deviation: ONE scalar, the mean over every feature of
  sqrt(variance over the batch + 1e-6) (biased variance, no groups), appended as a channel.
- Resolution changes: nearest-neighbour x2 upsampling and 2 x 2 average pooling.
- Progress p (0 at the first stable stage, +1 per resolution) drives the fade-in: the
  generator sums every block's upscaled RGB output with weight max(0, min(p - (b - 2), b - p))
  (the weights of all blocks sum to 1); the discriminator mixes block b's from_rgb input with
  the next block's output with weight clip(b - p, 0, 1); real images are blended the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from audiozoo.nn.convolution import conv_general_dilated

PIXEL_NORM_EPS = 1e-8
STDDEV_EPS = 1e-6


def he_scale(fan_in: int, slope: float) -> float:
    """The equalised-learning-rate multiplier sqrt(2 / ((1 + slope^2) fan_in))."""
    return float(np.sqrt(2.0 / ((1.0 + slope**2) * fan_in)))


class EqualizedConv(nn.Module):
    """2-D convolution over NHWC with run-time He scaling of an N(0, 1) kernel, plus a bias."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    padding: str = "SAME"
    slope: float = 0.0  # the He initialiser slope: 0 for hidden layers, 1 for to_rgb
    dtype: Any = jnp.float32  # computation; the parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        kernel = self.param("kernel", nn.initializers.normal(1.0), (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        scale = he_scale(kh * kw * x.shape[-1], self.slope)
        y = conv_general_dilated(
            x.astype(self.dtype), (kernel * scale).astype(self.dtype), window_strides=(1, 1),
            padding=self.padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias.astype(self.dtype)


class EqualizedDense(nn.Module):
    """Dense layer over the flattened input with run-time He scaling (slope 1, as magenta's
    custom_dense), plus a bias."""

    features: int
    slope: float = 1.0
    dtype: Any = jnp.float32  # computation; the parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        kernel = self.param("kernel", nn.initializers.normal(1.0), (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        scale = he_scale(x.shape[-1], self.slope)
        return x.astype(self.dtype) @ (kernel * scale).astype(self.dtype) + bias.astype(self.dtype)


def pixel_norm(x: jax.Array, eps: float = PIXEL_NORM_EPS) -> jax.Array:
    """Each position's feature vector scaled to unit mean square over the channels (the
    mean square in float32, the result in x's dtype)."""
    mean_square = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(mean_square + eps).astype(x.dtype)


def minibatch_stddev(x: jax.Array) -> jax.Array:
    """x [batch, ..., channels] with one more channel holding the batch's mean feature
    standard deviation (computed in float32 over the whole, possibly sharded, batch)."""
    std = jnp.sqrt(jnp.var(x.astype(jnp.float32), axis=0) + STDDEV_EPS)
    channel = jnp.broadcast_to(jnp.mean(std).astype(x.dtype), x.shape[:-1] + (1,))
    return jnp.concatenate([x, channel], axis=-1)


def upscale(x: jax.Array, factor: int) -> jax.Array:
    """Nearest-neighbour upsampling of NHWC by `factor` along H and W."""
    if factor == 1:
        return x
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downscale(x: jax.Array, factor: int) -> jax.Array:
    """Average pooling of NHWC over factor x factor blocks."""
    if factor == 1:
        return x
    b, h, w, c = x.shape
    return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def generator_alpha(block: int, progress: jax.Array) -> jax.Array:
    """Weight of block `block`'s (1-based) output in the generator's sum at `progress`."""
    return jnp.maximum(0.0, jnp.minimum(progress - (block - 2), block - progress))


def discriminator_alpha(block: int, progress: jax.Array) -> jax.Array:
    """Weight of block `block`'s from_rgb input against the higher block's output."""
    return jnp.clip(block - progress, 0.0, 1.0)


def blend_resolutions(x: jax.Array, progress: jax.Array, num_blocks: int,
                      resolutions: int | None = None) -> jax.Array:
    """Full-resolution images as a network of `num_blocks` grown blocks (of `resolutions`,
    default num_blocks) sees them at `progress`: each block's resolution (avg-pooled down,
    nearest up) weighted by generator_alpha, so real images fade between resolutions exactly
    as generated ones do."""
    resolutions = resolutions or num_blocks
    out = jnp.zeros_like(x)
    for block in range(1, num_blocks + 1):
        factor = 2 ** (resolutions - block)
        out = out + generator_alpha(block, progress) * upscale(downscale(x, factor), factor)
    return out


def progress_at(images_seen: jax.Array, stable_images: int, transition_images: int,
                num_blocks: int) -> jax.Array:
    """Training progress from the image counter: p during stable stage p, p + fraction in the
    transition to p + 1, capped at num_blocks - 1 (magenta's compute_progress)."""
    total = num_blocks * stable_images + (num_blocks - 1) * transition_images
    seen = jnp.minimum(images_seen, total - 1)
    stage = stable_images + transition_images
    fraction = jnp.maximum(0.0, (seen % stage - stable_images) / max(transition_images, 1))
    return (seen // stage).astype(jnp.float32) + fraction.astype(jnp.float32)
