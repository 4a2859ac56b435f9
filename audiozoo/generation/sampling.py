"""Turning one step's predictive distribution into the next sample.

The modes: ancestral sampling is the WaveNet paper's (van den Oord et al. 2016, arXiv
1609.03499, sections 2.1-2.2: each sample is drawn from the softmax output and fed back in);
argmax and the voicing-dependent "greedy" and "mode" strategies come from WaveNet vocoder
practice for speech synthesis, not from the paper (their primary source is unverified here):

* ``random``: ancestral sampling from softmax(logits / temperature);
* ``argmax``: the most probable class (for MoL: the most probable component's mean);
* ``greedy``: argmax in voiced regions, random in unvoiced ones;
* ``mode``: random everywhere, but from a sharpened distribution (``voiced_temperature``)
  in voiced regions;
* ``top_p``: nucleus sampling (Holtzman et al. 2020): random from the smallest set of
  classes whose probability reaches ``top_p`` (softmax head only).

Voicing is decided per sample from the predictive distribution itself: a voiced (periodic)
stretch is predictable, so the model's distribution is peaked; noise-like unvoiced stretches
give a broad one. A step counts as voiced when the entropy of its predictive distribution is
below ``voicing_threshold * log2(num_classes)`` bits, i.e. a fraction of the entropy of the
uniform distribution over the quantiser's classes (default 0.5: 4 of 8 bits for 256 mu-law
classes). For the mixture-of-logistics head the entropy is the upper bound
H(mixture weights) + sum_k w_k H(component k), each component's entropy taken on the
quantiser's bin width.

Every mode draws from the same Gumbel noise with a per-row temperature,
argmax(logits + T * gumbel), which is a sample of softmax(logits / T) for T > 0 and plain
argmax at T = 0, so modes differ only in T (and the top-p mask), never in control flow.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from audiozoo.audio import mulaw
from audiozoo.audio.mulaw import linear_quantize
from audiozoo.nn.mixture_logistics import sample_discretized_mix_logistic, split_mol_params

METHODS = ("random", "argmax", "greedy", "mode", "top_p")


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How to pick each sample; hashable, so it is a static argument of the jitted scan."""

    method: str = "random"
    temperature: float = 1.0
    top_p: float = 0.9
    voicing_threshold: float = 0.5
    voiced_temperature: float = 0.5

    def check(self, net) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not one of {METHODS}")
        if not (self.temperature >= 0 and self.voiced_temperature >= 0):  # NaN fails too
            raise ValueError(
                f"temperatures must be >= 0, got temperature={self.temperature}, "
                f"voiced_temperature={self.voiced_temperature}"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must lie in (0, 1]")
        if not 0 <= self.voicing_threshold <= 1:
            raise ValueError(f"voicing_threshold={self.voicing_threshold} must lie in [0, 1]")
        if self.method == "top_p" and net.output != "softmax":
            raise ValueError("method='top_p' needs a softmax head; for MoL use 'random' or 'mode'")


def silence_code(net) -> int:
    """The code of a zero sample under the model's quantiser (a Python int, even under jit)."""
    return mulaw.silence_code(net.num_classes, mu_law=net.output == "softmax")


def predictive_entropy_bits(net, logits):
    """Entropy in bits [batch] of one step's predictive distribution (see module docstring)."""
    if net.output == "softmax":
        return _entropy_bits(logits)
    weights, _, log_scales = split_mol_params(logits)
    bin_width = 2.0 / (net.num_classes - 1)
    # A logistic of scale s has differential entropy ln(s) + 2 nats; on bins of width w
    # that is ln(s) + 2 - ln(w), floored at 0 for scales far below one bin.
    component = jnp.maximum(log_scales + 2.0 - math.log(bin_width), 0.0) / math.log(2.0)
    return _entropy_bits(weights) + jnp.sum(jax.nn.softmax(weights) * component, axis=-1)


def voiced(net, logits, sampling: Sampling):
    """bool [batch]: whether this step's distribution is peaked enough to count as voiced."""
    threshold = sampling.voicing_threshold * math.log2(net.num_classes)
    return predictive_entropy_bits(net, logits) < threshold


def choose(net, key, logits, sampling: Sampling):
    """Next codes int32 [batch] from one step's logits [batch, output_channels], drawn in
    float32 whatever the logits' dtype."""
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    temperature = _row_temperature(net, logits, sampling)
    if net.output == "mol":
        return _choose_mol(net, key, logits, temperature)
    if sampling.method == "top_p":
        logits = nucleus(logits, sampling.top_p)
    gumbel = jax.random.gumbel(key, logits.shape, logits.dtype)
    return jnp.argmax(logits + temperature[:, None] * gumbel, axis=-1).astype(jnp.int32)


def nucleus(logits, top_p: float):
    """logits with every class outside the top-p nucleus set to -inf."""
    sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    # A class is kept when the classes more probable than it hold less than top_p.
    keep = (jnp.cumsum(probs, axis=-1) - probs) < top_p
    cutoff = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    return jnp.where(logits >= cutoff, logits, -jnp.inf)


def _row_temperature(net, logits, sampling: Sampling):
    """The temperature of each batch row for this step: where the mode's voicing rule applies."""
    batch = logits.shape[0]
    base = jnp.full((batch,), sampling.temperature, logits.dtype)
    if sampling.method == "argmax":
        return jnp.zeros_like(base)
    if sampling.method in ("greedy", "mode"):
        sharp = 0.0 if sampling.method == "greedy" else sampling.voiced_temperature
        return jnp.where(voiced(net, logits, sampling), jnp.asarray(sharp, logits.dtype), base)
    return base


def _choose_mol(net, key, logits, temperature):
    # Rows draw at their own temperature: sample each row with its scalar via vmap.
    keys = jax.random.split(key, logits.shape[0])
    draw = jax.vmap(lambda k, p, t: sample_discretized_mix_logistic(k, p, temperature=t))
    return linear_quantize(draw(keys, logits, temperature), net.num_classes)


def _entropy_bits(logits):
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1) / math.log(2.0)
