"""Discretized mixture of logistics (Salimans et al. 2017, PixelCNN++, section 2.1).

Instead of a 65536-way softmax, a 16-bit WaveNet predicts a mixture of K logistic
distributions over a continuous value and puts on each quantisation bin the mass that
the mixture's CDF gives the bin's interval:

    P(x) = sum_k pi_k [sigma((x + w/2 - mu_k) / s_k) - sigma((x - w/2 - mu_k) / s_k)],

with bin width w = 2 / (num_classes - 1). The edge bins absorb the tails: the bin at -1
integrates from -inf and the bin at +1 up to +inf, so the probabilities of all bins sum
to one. This is the output layer used for 16-bit WaveNet vocoders (e.g. r9y9's
wavenet_vocoder: 10 components, log-scale floor -16).

Parameters live on the last axis as [logit_probs (K) | means (K) | log_scales (K)].
Targets are bin centres in [-1, 1] (`audiozoo.audio.mulaw.linear_dequantize`). The likelihood
and the sampler compute in float32 (or wider) whatever the parameters' dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    "discretized_mix_logistic_nll",
    "mol_num_params",
    "sample_discretized_mix_logistic",
    "split_mol_params",
]

# Below this bin mass, sigma(plus) - sigma(min) has lost most of its float32 digits to
# cancellation; PixelCNN++ switches to the density at the bin centre times the width.
_TINY_PROB = 1e-5


def mol_num_params(num_mixtures: int) -> int:
    """Number of output channels for a K-component mixture: K logits, K means, K scales."""
    return 3 * num_mixtures


def split_mol_params(
    params: jnp.ndarray, log_scale_min: float = -16.0
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(mixture logits, means, floored log scales), each [..., K]."""
    size = params.shape[-1]
    if size % 3:
        raise ValueError(
            f"mixture-of-logistics params have {size} channels on the last axis; "
            "expected 3 * num_mixtures (see mol_num_params)."
        )
    logits, means, log_scales = jnp.split(params, 3, axis=-1)
    # The floor keeps 1/s finite; -16 lets a component be far narrower than a 16-bit bin.
    return logits, means, jnp.maximum(log_scales, log_scale_min)


def discretized_mix_logistic_nll(
    params: ArrayLike,
    x: ArrayLike,
    *,
    num_classes: int = 65536,
    log_scale_min: float = -16.0,
) -> jnp.ndarray:
    """Negative log-likelihood (nats) of bin centres `x` under the mixture.

    Args:
      params: [..., 3K] mixture parameters.
      x: [...] targets in [-1, 1], bin centres of a `num_classes`-level uniform codec.
      num_classes: number of quantisation levels (65536 for 16-bit audio).
      log_scale_min: lower clamp of the log scales.

    Returns:
      [...] per-element NLL, shape params.shape[:-1].
    """
    params = _at_least_float32(params)
    logits, means, log_scales = split_mol_params(params, log_scale_min)
    x = jnp.asarray(x, params.dtype)[..., None]
    half_width = 1.0 / (num_classes - 1)

    centred = x - means
    inv_scale = jnp.exp(-log_scales)
    plus_in = inv_scale * (centred + half_width)
    min_in = inv_scale * (centred - half_width)
    mid_in = inv_scale * centred

    # log sigma(a) = a - softplus(a) and log(1 - sigma(a)) = -softplus(a), both stable.
    log_cdf_plus = plus_in - jax.nn.softplus(plus_in)  # edge bin at -1: P(X < x + w/2)
    log_one_minus_cdf_min = -jax.nn.softplus(min_in)  # edge bin at +1: P(X > x - w/2)
    cdf_delta = jax.nn.sigmoid(plus_in) - jax.nn.sigmoid(min_in)
    # log pdf at the bin centre + log(bin width); used when cdf_delta is tiny.
    log_pdf_mid = mid_in - log_scales - 2.0 * jax.nn.softplus(mid_in)
    log_tiny = log_pdf_mid + jnp.log(2.0 * half_width)
    # The max() keeps log() and its gradient finite on the branch that where() drops.
    log_delta = jnp.log(jnp.maximum(cdf_delta, 1e-12))

    interior = jnp.where(cdf_delta > _TINY_PROB, log_delta, log_tiny)
    # Edges are tested at half a bin, so this is right for any num_classes (a fixed
    # +-0.999 threshold would treat ~30 bins of a 16-bit codec as edge bins).
    log_probs = jnp.where(
        x < -1.0 + half_width,
        log_cdf_plus,
        jnp.where(x > 1.0 - half_width, log_one_minus_cdf_min, interior),
    )
    log_probs = log_probs + jax.nn.log_softmax(logits, axis=-1)
    return -jax.nn.logsumexp(log_probs, axis=-1)


def sample_discretized_mix_logistic(
    rng: jax.Array,
    params: ArrayLike,
    *,
    log_scale_min: float = -16.0,
    temperature: float = 1.0,
) -> jnp.ndarray:
    """Draws one value in [-1, 1] per mixture, shape params.shape[:-1].

    A component is picked with the Gumbel-max trick on logits / temperature, then the
    chosen logistic is sampled by inverse CDF, mean + temperature * s * log(u / (1 - u)).
    temperature == 0 is deterministic: the most probable component's mean.

    argmax(logits / T + g) == argmax(logits + T g) for T > 0, and the latter is plain
    argmax(logits) at T = 0; so one formula covers both cases and `temperature` may be
    a traced value under jit.
    """
    if isinstance(temperature, (int, float)) and temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    params = _at_least_float32(params)
    logits, means, log_scales = split_mol_params(params, log_scale_min)
    temperature = jnp.asarray(temperature, params.dtype)
    pick_rng, value_rng = jax.random.split(rng)

    gumbel = jax.random.gumbel(pick_rng, logits.shape, params.dtype)
    component = jnp.argmax(logits + temperature * gumbel, axis=-1)
    mean = _take_last(means, component)
    log_scale = _take_last(log_scales, component)

    # Keep u away from 0 and 1 so the logistic quantile stays finite.
    eps = 1e-5
    u = jax.random.uniform(value_rng, mean.shape, params.dtype, eps, 1.0 - eps)
    noise = jnp.log(u) - jnp.log1p(-u)
    value = mean + temperature * jnp.exp(log_scale) * noise
    return jnp.clip(value, -1.0, 1.0)


def _at_least_float32(params: ArrayLike) -> jnp.ndarray:
    """params in float32 (or wider): a bin of a 16-bit codec is 3e-5 wide, far below the
    bfloat16 spacing of a mean near 1 (2^-8), and the tiny-mass branch needs float32."""
    params = jnp.asarray(params)
    return params.astype(jnp.promote_types(params.dtype, jnp.float32))


def _take_last(values: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
    """values[..., index[...]] along the last axis."""
    return jnp.take_along_axis(values, index[..., None], axis=-1)[..., 0]
