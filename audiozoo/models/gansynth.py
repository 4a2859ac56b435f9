"""GANSynth's progressive generator and discriminator over spectrogram "images".

Engel et al. 2019, "GANSynth: Adversarial Neural Audio Synthesis" (ICLR), section 3 and
appendix B (the progressive GAN of Karras et al. 2018 on [time, frequency, 2] spectrograms,
conditioned on a one-hot pitch, with an auxiliary pitch classifier in the discriminator), as
magenta's models/gansynth/lib/networks.py builds it:

- Generator: z (256, N(0, I)) joined with the pitch one-hot (61 pitches, MIDI 24-84) ->
  pixel norm -> as a 1 x 1 map zero-padded to (2h - 1) x (2w - 1) -> VALID (h, w) conv ->
  3 x 3 conv; then per block a nearest x2 upsample and two 3 x 3 convs. Every conv is an
  equalised-lr conv + bias -> LeakyReLU 0.2 -> pixel norm. Each block's to_rgb (1 x 1 conv to
  2 channels, tanh) is upscaled to the final size, and the output is their sum weighted by
  `generator_alpha` (the fade-in).
- Discriminator: mirrored, always fed the full-resolution image; block b reads it avg-pooled
  through its from_rgb (1 x 1 conv, LeakyReLU), blocks run 3 x 3 conv nf(b), 3 x 3 conv
  nf(b - 1), 2 x 2 average pool, and `discriminator_alpha` fades each from_rgb input in. The
  last block appends the minibatch standard deviation, runs a 3 x 3 conv and a VALID (h, w)
  conv, and two equalised dense heads give the real/fake logit and 61 pitch logits.
- Filters nf(b) = min(fmap_base / 2^b, fmap_max): 256 for blocks 1-4, then 128, 64, 32.

Both networks take `num_blocks` (static): the blocks a training stage has grown so far, up to
`resolutions`; outputs and inputs are always at the final size, as in magenta, so one
parameter tree (created with every block) serves every stage. Start shapes: (2, 16) with 7
resolutions gives 128 x 1024 ("+H", nfft 2048); (4, 8) gives 256 x 512 (nfft 1024).

Mixed precision: `dtype` is the computation dtype of every layer; the parameters stay float32.
Both networks return float32 (images to de-normalise and invert, logits for the losses), and
the pixel norm's and minibatch stddev's statistics are float32 whatever `dtype` is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.nn.progressive import (
    EqualizedConv,
    EqualizedDense,
    discriminator_alpha,
    downscale,
    generator_alpha,
    minibatch_stddev,
    pixel_norm,
    upscale,
)

LEAKY_SLOPE = 0.2
MIN_PITCH, MAX_PITCH = 24, 84  # MIDI range of the GANSynth subset: 61 pitches


def num_filters(block: int, fmap_base: int, fmap_max: int) -> int:
    return int(min(fmap_base / 2.0**block, fmap_max))


def final_shape(start_shape, resolutions: int, channels: int) -> tuple[int, int, int]:
    """[height (time), width (frequency), channels] after resolutions - 1 doublings."""
    scale = 2 ** (resolutions - 1)
    return start_shape[0] * scale, start_shape[1] * scale, channels


class _Shape(nn.Module):
    """Shared fields and checks of the two networks."""

    resolutions: int = 7
    start_shape: Sequence[int] = (2, 16)
    num_pitches: int = MAX_PITCH - MIN_PITCH + 1
    channels: int = 2
    fmap_base: int = 4096
    fmap_max: int = 256
    kernel_size: int = 3
    dtype: Any = jnp.float32  # computation; the parameters stay float32

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return final_shape(self.start_shape, self.resolutions, self.channels)

    def nf(self, block: int) -> int:
        return num_filters(block, self.fmap_base, self.fmap_max)

    def _active(self, num_blocks: int | None) -> int:
        num_blocks = self.resolutions if num_blocks is None else num_blocks
        if not 1 <= num_blocks <= self.resolutions:
            raise ValueError(f"num_blocks={num_blocks} must be in 1..{self.resolutions}")
        return num_blocks

    def _conv(self, features, kernel=None, padding="SAME", name=None):
        kernel = kernel or (self.kernel_size, self.kernel_size)
        return EqualizedConv(features, tuple(kernel), padding, slope=0.0, dtype=self.dtype,
                             name=name)


class Generator(_Shape):
    """(z [batch, latent], pitch ids [batch] in 0..num_pitches-1, progress) -> spectrogram
    images [batch, *output_shape] in [-1, 1] (the normalised representation)."""

    latent_dim: int = 256

    @nn.compact
    def __call__(self, z: jax.Array, pitch: jax.Array, progress: jax.Array,
                 num_blocks: int | None = None) -> jax.Array:
        active = self._active(num_blocks)
        x = jnp.concatenate([z, jax.nn.one_hot(pitch, self.num_pitches, dtype=z.dtype)], -1)
        x = pixel_norm(x.astype(self.dtype))[:, None, None, :]
        h, w = self.start_shape
        # A 1 x 1 map padded so that a VALID (h, w) conv gives exactly h x w.
        x = jnp.pad(x, [(0, 0), (h - 1, h - 1), (w - 1, w - 1), (0, 0)])
        x = self._layer(x, self.nf(1), (h, w), "VALID", "block_1_conv0")
        x = self._layer(x, self.nf(1), name="block_1_conv1")
        output = self._to_rgb(x, 1, progress)
        for block in range(2, active + 1):
            x = upscale(x, 2)
            x = self._layer(x, self.nf(block), name=f"block_{block}_conv0")
            x = self._layer(x, self.nf(block), name=f"block_{block}_conv1")
            output = output + self._to_rgb(x, block, progress)
        return output.astype(jnp.float32)

    def _layer(self, x, features, kernel=None, padding="SAME", name=None):
        y = self._conv(features, kernel, padding, name)(x)
        return pixel_norm(nn.leaky_relu(y, LEAKY_SLOPE))

    def _to_rgb(self, x, block, progress):
        """This block's weighted share of the output, in float32 (the fade-in sum and the
        output images are float32 whatever the computation dtype)."""
        rgb = EqualizedConv(self.channels, (1, 1), slope=1.0, dtype=self.dtype,
                            name=f"block_{block}_to_rgb")(x)
        rgb = upscale(jnp.tanh(rgb).astype(jnp.float32), 2 ** (self.resolutions - block))
        return generator_alpha(block, progress) * rgb


class Discriminator(_Shape):
    """(images [batch, *output_shape], progress) -> (real/fake logits [batch], pitch logits
    [batch, num_pitches])."""

    @nn.compact
    def __call__(self, x: jax.Array, progress: jax.Array,
                 num_blocks: int | None = None) -> tuple[jax.Array, jax.Array]:
        active = self._active(num_blocks)
        if tuple(x.shape[1:]) != self.output_shape:
            raise ValueError(f"discriminator input {tuple(x.shape)}: expected "
                             f"[batch, {', '.join(map(str, self.output_shape))}]")
        x = x.astype(self.dtype)
        y = self._from_rgb(x, active)
        for block in range(active, 1, -1):
            y = self._layer(y, self.nf(block), name=f"block_{block}_conv0")
            y = downscale(self._layer(y, self.nf(block - 1), name=f"block_{block}_conv1"), 2)
            # The fade-in weight in dtype, so the blend does not promote y to float32.
            alpha = jnp.asarray(discriminator_alpha(block - 1, progress), self.dtype)
            y = alpha * self._from_rgb(x, block - 1) + (1.0 - alpha) * y
        y = minibatch_stddev(y)
        y = self._layer(y, self.nf(1), name="block_1_conv0")
        y = self._layer(y, self.nf(0), self.start_shape, "VALID", "block_1_conv1")
        logit = EqualizedDense(1, dtype=self.dtype, name="logits")(y)[:, 0]
        pitch_logits = EqualizedDense(self.num_pitches, dtype=self.dtype, name="pitch_logits")(y)
        # float32 logits: they feed the losses (Wasserstein, drift, pitch cross-entropy).
        return logit.astype(jnp.float32), pitch_logits.astype(jnp.float32)

    def _layer(self, x, features, kernel=None, padding="SAME", name=None):
        return nn.leaky_relu(self._conv(features, kernel, padding, name)(x), LEAKY_SLOPE)

    def _from_rgb(self, x, block):
        x = downscale(x, 2 ** (self.resolutions - block))
        return self._layer(x, self.nf(block), (1, 1), name=f"block_{block}_from_rgb")


class GANSynth(_Shape):
    """The generator and discriminator as one module, so a config names one model and its
    parameters are one tree {"generator": ..., "discriminator": ...}; call `generate` or
    `discriminate` through `apply(..., method=...)`, or `__call__` (both, for `init`)."""

    latent_dim: int = 256

    def setup(self):
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(_Shape)
                  if f.name not in ("parent", "name")}
        shared["start_shape"] = tuple(self.start_shape)
        self.generator = Generator(latent_dim=self.latent_dim, **shared)
        self.discriminator = Discriminator(**shared)

    def __call__(self, z, pitch, progress, num_blocks=None):
        images = self.generate(z, pitch, progress, num_blocks)
        return images, self.discriminate(images, progress, num_blocks)

    def generate(self, z, pitch, progress, num_blocks=None):
        return self.generator(z, pitch, progress, num_blocks)

    def discriminate(self, images, progress, num_blocks=None):
        return self.discriminator(images, progress, num_blocks)
