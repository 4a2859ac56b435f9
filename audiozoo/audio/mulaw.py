"""Mu-law companding and quantisation (WaveNet, van den Oord et al. 2016, section 2.2).

WaveNet models 16-bit audio as a 256-way categorical by first applying the mu-law
companding transform (ITU-T G.711)

    f(x) = sign(x) * ln(1 + mu |x|) / ln(1 + mu),   -1 < x < 1,  mu = 255,

and then quantising f(x) uniformly to 256 values. Companding spends the classes where
speech and music spend their time (small amplitudes), which the paper found to
reconstruct better than uniform 8-bit quantisation.

`linear_quantize` / `linear_dequantize` are the uniform 16-bit-style codec used as the
input and target of the discretized mixture-of-logistics head
(`audiozoo.nn.mixture_logistics`): class q has centre -1 + 2 q / (num_classes - 1), so
the first and last classes sit exactly on -1 and +1 (the edge bins of PixelCNN++).

All functions are jax.numpy, jit-able and elementwise on any shape. Quantisers clip
their input to [-1, 1] first: that is part of the codec's definition (the classes only
cover [-1, 1]), not silent data loss, since `audiozoo.audio.io` refuses to write
out-of-range audio and models only see audio through these codecs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    "linear_dequantize",
    "linear_quantize",
    "mu_law_decode",
    "mu_law_dequantize",
    "mu_law_encode",
    "mu_law_quantize",
]


def _as_float(x: ArrayLike) -> jnp.ndarray:
    """Keeps floating inputs' precision; integer inputs become float32."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def mu_law_encode(x: ArrayLike, mu: float = 255) -> jnp.ndarray:
    """Companding f(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu); maps [-1, 1] onto [-1, 1]."""
    x = _as_float(x)
    mu = jnp.asarray(mu, x.dtype)
    # log1p keeps precision for the small |x| that mu-law exists to resolve.
    return jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / jnp.log1p(mu)


def mu_law_decode(y: ArrayLike, mu: float = 255) -> jnp.ndarray:
    """Inverse companding: sign(y) ((1 + mu)^|y| - 1) / mu."""
    y = _as_float(y)
    mu = jnp.asarray(mu, y.dtype)
    return jnp.sign(y) * jnp.expm1(jnp.abs(y) * jnp.log1p(mu)) / mu


def mu_law_quantize(x: ArrayLike, num_classes: int = 256) -> jnp.ndarray:
    """Audio in [-1, 1] -> int32 classes in [0, num_classes - 1] (mu = num_classes - 1).

    Inputs outside [-1, 1] are clipped: the codec has no classes beyond full scale.
    """
    x = jnp.clip(_as_float(x), -1.0, 1.0)
    mu = num_classes - 1
    y = mu_law_encode(x, mu)
    return jnp.round((y + 1.0) * 0.5 * mu).astype(jnp.int32)


def mu_law_dequantize(q: ArrayLike, num_classes: int = 256) -> jnp.ndarray:
    """Classes in [0, num_classes - 1] -> audio in [-1, 1] (the companded bin centres)."""
    mu = num_classes - 1
    y = 2.0 * _as_float(q) / mu - 1.0
    return mu_law_decode(y, mu)


def linear_quantize(x: ArrayLike, num_classes: int = 65536) -> jnp.ndarray:
    """Uniform quantisation of [-1, 1] into int32 classes with centres on -1 and +1.

    Inputs outside [-1, 1] are clipped: the codec has no classes beyond full scale.
    """
    x = jnp.clip(_as_float(x), -1.0, 1.0)
    return jnp.round((x + 1.0) * 0.5 * (num_classes - 1)).astype(jnp.int32)


def linear_dequantize(q: ArrayLike, num_classes: int = 65536) -> jnp.ndarray:
    """Class -> its centre -1 + 2 q / (num_classes - 1) in [-1, 1]."""
    return 2.0 * _as_float(q) / (num_classes - 1) - 1.0


def silence_code(num_classes: int, mu_law: bool = True) -> int:
    """The code of a zero sample under the mu-law (or, with mu_law=False, the linear)
    quantiser, as a Python int even under jit: the input autoregressive models start from."""
    quantize = mu_law_quantize if mu_law else linear_quantize
    with jax.ensure_compile_time_eval():
        return int(quantize(0.0, num_classes))
