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

Two ways of cutting f(x) into classes are here, picked by name with `mu_law_codec`:
"round" (`mu_law_quantize`: f(x) mapped onto [0, num_classes - 1] and rounded) and
"magenta", the NSynth WaveNet autoencoder's (magenta models/nsynth/utils.py `mu_law` and
`inv_mu_law`): class floor(f(x) * half) + half with half = num_classes / 2, decoded at
sign(y) ((1 + mu)^|y| - 1) / mu for y = (class - half + 0.5) / half, except that the class
of zero decodes to exactly 0. The two differ by half a class on every sample, so a model
trained with one reads the other's codes shifted; a checkpoint trained by magenta needs its
codec.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "linear_dequantize",
    "linear_quantize",
    "magenta_mu_law_dequantize",
    "magenta_mu_law_quantize",
    "mu_law_codec",
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


def magenta_mu_law_quantize(x: ArrayLike, num_classes: int = 256) -> jnp.ndarray:
    """Audio in [-1, 1] -> int32 classes floor(f(x) * half) + half (half = num_classes / 2,
    mu = num_classes - 1), as magenta's nsynth `mu_law` plus the + 128 of its loss labels.

    Inputs outside [-1, 1] are clipped, and exactly +1.0 (floor gives class num_classes, which
    magenta's 256-way softmax does not have; no 16-bit sample reaches it) goes to the top class.
    """
    x = jnp.clip(_as_float(x), -1.0, 1.0)
    half, mu = num_classes // 2, num_classes - 1
    # magenta's own expression (log, not log1p), so floor() cuts where magenta's does.
    companded = jnp.sign(x) * jnp.log(1 + mu * jnp.abs(x)) / np.log(1 + mu)
    codes = jnp.floor(companded * half).astype(jnp.int32) + half
    return jnp.minimum(codes, num_classes - 1)


def magenta_mu_law_dequantize(q: ArrayLike, num_classes: int = 256) -> jnp.ndarray:
    """Classes -> audio as magenta's nsynth `inv_mu_law` decodes class - half: companded value
    (class - half + 0.5) / half, and exactly 0 for the class of zero."""
    half = num_classes // 2
    signed = _as_float(q) - half
    audio = mu_law_decode((signed + 0.5) / half, num_classes - 1)
    return jnp.where(signed == 0, 0.0, audio)


MU_LAW_CODECS = {
    "round": (mu_law_quantize, mu_law_dequantize),
    "magenta": (magenta_mu_law_quantize, magenta_mu_law_dequantize),
}


def mu_law_codec(name: str):
    """(quantize, dequantize) of the named mu-law codec ("round" or "magenta")."""
    if name not in MU_LAW_CODECS:
        raise ValueError(f"mu-law codec {name!r} is not one of {', '.join(MU_LAW_CODECS)}")
    return MU_LAW_CODECS[name]


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
