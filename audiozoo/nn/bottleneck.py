"""Discrete bottlenecks for autoencoders: vector quantisation and the argmax autoencoder.

`VectorQuantizer` is the VQ-VAE bottleneck of van den Oord, Vinyals & Kavukcuoglu 2017,
"Neural Discrete Representation Learning", arXiv 1711.00937: section 3.1 (nearest-neighbour
lookup in a codebook of K vectors, straight-through gradient) and section 3.2, eq. 3 (loss
||sg[z] - e||^2 + beta ||z - sg[e]||^2); with `ema=True` the codebook is learnt by exponential
moving averages of the encoder outputs assigned to each code (appendix A.1) instead of by the
first term. Restarting dead codes on encoder outputs is a common remedy for codebook collapse
(random restarts of rarely used codes, e.g. Dhariwal et al. 2020, Jukebox,
arXiv 2005.00341); it is off by default.

`ArgmaxBottleneck` is the argmax autoencoder (AMAE) of Dieleman, van den Oord & Simonyan 2018,
"The challenge of realistic music generation: modelling raw audio at scale", arXiv 1806.10474,
section 3.2: the encoder emits K non-negative values per step (ReLU, then divided by their sum),
the code is their argmax, the decoder sees its one-hot, and gradients pass straight through to
the normalised values; a diversity loss pushes the batch-averaged normalised values towards
uniform so that all K codes get used.

Both are shared blocks for any encoder/decoder pair: the input is [..., channels], codes are
int32 [...] and the output is a `BottleneckOutput`. Batch statistics (perplexity, usage, the EMA
updates) are over everything the module sees in one call; under `jax.jit` with the batch sharded
on a data axis that is the global batch.

Collections and rngs a caller passes to `apply`:

- `VectorQuantizer(ema=False)`: none; the codebook is in "params".
- `VectorQuantizer(ema=True)`: the codebook and its EMA statistics are in the "vq_stats"
  collection, updated only with `train=True`, so training calls need `mutable=["vq_stats"]`
  (evaluation calls need nothing). With `dead_code_threshold > 0` training calls also need a
  "vq" rng (`rngs={"vq": key}`), which picks the encoder outputs that dead codes restart on.
- `ArgmaxBottleneck`: none; it has no variables.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import struct

__all__ = [
    "VQ_RNG",
    "VQ_STATS",
    "ArgmaxBottleneck",
    "BottleneckOutput",
    "VectorQuantizer",
    "code_histogram",
    "code_perplexity",
    "code_usage",
]

# The non-param collection of the EMA codebook, and the rng that dead-code restarts draw from.
VQ_STATS = "vq_stats"
VQ_RNG = "vq"


@struct.dataclass
class BottleneckOutput:
    """What a discrete bottleneck returns.

    quantized: [..., channels] what the decoder reads, in the input's dtype; its gradient
      passes straight through to the encoder output.
    codes: int32 [...] the chosen code per position.
    loss: scalar, the bottleneck's own loss term (already weighted): add it to the objective.
    perplexity: scalar, exp(entropy) of the batch's code histogram, in [1, num_codes].
    usage: scalar, fraction of the codes chosen at least once in the batch.
    """

    quantized: jax.Array
    codes: jax.Array
    loss: jax.Array
    perplexity: jax.Array
    usage: jax.Array


# ---- code statistics --------------------------------------------------------------------


def code_histogram(codes: jax.Array, num_codes: int) -> jax.Array:
    """Fraction of positions assigned to each code, [num_codes].

    codes: int [...] code indices, or float [..., num_codes] one-hots (or soft assignments,
    which then count fractionally).
    """
    if jnp.issubdtype(codes.dtype, jnp.integer):
        codes = jax.nn.one_hot(codes, num_codes, dtype=jnp.float32)
    elif codes.shape[-1] != num_codes:
        raise ValueError(f"one-hot codes have {codes.shape[-1]} entries on the last axis; "
                         f"expected num_codes={num_codes}")
    flat = codes.reshape(-1, num_codes).astype(jnp.float32)
    return jnp.mean(flat, axis=0)


def code_perplexity(codes: jax.Array, num_codes: int) -> jax.Array:
    """exp(entropy of the code histogram): num_codes for uniform use, 1 for collapse."""
    p = code_histogram(codes, num_codes)
    # xlogy(0, 0) = 0: unused codes add nothing (a plain p log p would give NaN).
    return jnp.exp(-jnp.sum(jax.scipy.special.xlogy(p, p)))


def code_usage(codes: jax.Array, num_codes: int) -> jax.Array:
    """Fraction of the num_codes codes that occur at least once."""
    return jnp.mean((code_histogram(codes, num_codes) > 0).astype(jnp.float32))


def _check_last_dim(name: str, field: str, expected: int, x: jax.Array) -> None:
    if x.ndim == 0 or x.shape[-1] != expected:
        raise ValueError(f"{name} expects inputs [..., {field}={expected}] but got shape "
                         f"{tuple(x.shape)}; make the encoder output {expected} channels "
                         f"or set {field}={x.shape[-1] if x.ndim else '?'}")


def _straight_through(forward: jax.Array, backward: jax.Array) -> jax.Array:
    """`forward` in value, the identity to `backward` in gradient.

    Same value and gradient as backward + sg(forward - backward), but forward + 0 is
    exactly `forward`, whereas z + (q - z) is q only up to rounding.
    """
    return jax.lax.stop_gradient(forward) + (backward - jax.lax.stop_gradient(backward))


# ---- VQ-VAE -----------------------------------------------------------------------------


class VectorQuantizer(nn.Module):
    """Nearest-codebook-vector quantiser with a straight-through gradient (VQ-VAE).

    Call: `vq.apply(variables, z, train=...)` with z [..., code_dim] (`train` a Python bool) ->
    `BottleneckOutput` whose quantized is the nearest code vector e_k per position, k = codes.
    loss = mean((sg(z) - e)^2) + commitment * mean((z - sg(e))^2), means over all elements;
    with `ema=True` the first term is dropped (the EMA update moves the codebook instead).

    EMA (appendix A.1 of the paper), per training call, with n_i the number of inputs assigned
    to code i in the batch and s_i their sum:
        N_i <- decay N_i + (1 - decay) n_i,    m_i <- decay m_i + (1 - decay) s_i,
        N'_i = (N_i + epsilon) / (n + K epsilon) n   with n = sum_i N_i (Laplace smoothing),
        e_i = m_i / N'_i.
    The state starts at N_i = 1, m_i = e_i(init), so e = m / N' is the initial codebook, and a
    code that is never chosen stays where it is (its N and m decay together) instead of being
    divided by ~epsilon and thrown far away.

    Dead-code restart (`dead_code_threshold > 0`, EMA only): after the update, every code with
    N'_i < dead_code_threshold moves onto an encoder output of the current batch drawn
    uniformly at random from the "vq" rng, with N_i = dead_code_threshold and
    m_i = dead_code_threshold * e_i, so it survives the next update if it then attracts at
    least the threshold's number of inputs (N estimates inputs per batch).
    """

    num_codes: int
    code_dim: int
    commitment: float = 0.25
    ema: bool = False
    decay: float = 0.99
    epsilon: float = 1e-5
    dead_code_threshold: float = 0.0
    # Variance 1 / code_dim per entry: code vectors of about unit norm, like a unit-scale input.
    codebook_init: nn.initializers.Initializer = nn.initializers.variance_scaling(
        1.0, "fan_in", "uniform", in_axis=-1, out_axis=-2)

    def setup(self):
        self._check_fields()
        shape = (self.num_codes, self.code_dim)
        if not self.ema:
            self.codebook_param = self.param("codebook", self.codebook_init, shape)
            return
        self.codebook_var = self.variable(VQ_STATS, "codebook", lambda: self.codebook_init(
            self.make_rng("params"), shape, jnp.float32))
        self.cluster_size = self.variable(VQ_STATS, "cluster_size",
                                          lambda: jnp.ones((self.num_codes,), jnp.float32))
        self.embed_sum = self.variable(VQ_STATS, "embed_sum", lambda: self.codebook_var.value)

    @property
    def codebook(self) -> jax.Array:
        """[num_codes, code_dim]: a parameter, or (ema=True) the current EMA codebook."""
        return self.codebook_var.value if self.ema else self.codebook_param

    def _check_fields(self):
        if self.num_codes < 1 or self.code_dim < 1:
            raise ValueError(f"num_codes={self.num_codes} and code_dim={self.code_dim} "
                             "must both be >= 1")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"decay={self.decay} must be in [0, 1)")
        if self.dead_code_threshold > 0 and not self.ema:
            raise ValueError(f"dead_code_threshold={self.dead_code_threshold} needs ema=True: "
                             "restarts rewrite the codebook, which only the EMA mode owns "
                             "(in the gradient mode it is a parameter)")

    def __call__(self, z: jax.Array, train: bool) -> BottleneckOutput:
        _check_last_dim("VectorQuantizer", "code_dim", self.code_dim, z)
        sg = jax.lax.stop_gradient
        codebook = self.codebook
        z32 = z.astype(jnp.float32)
        flat = sg(z32).reshape(-1, self.code_dim)
        codes = self.nearest(flat, sg(codebook))
        q = jnp.take(codebook, codes, axis=0).reshape(z.shape)

        # Losses in float32 whatever the activations' dtype: they are means of many squares.
        loss = self.commitment * jnp.mean(jnp.square(z32 - sg(q)))
        if not self.ema:
            loss = loss + jnp.mean(jnp.square(sg(z32) - q))
        elif train and not self.is_initializing():
            # Flax BatchNorm's convention: `init` creates the state but does not update it.
            self._ema_update(flat, codes)

        one_hot = jax.nn.one_hot(codes, self.num_codes, dtype=jnp.float32)
        return BottleneckOutput(
            quantized=_straight_through(q.astype(z.dtype), z),
            codes=codes.reshape(z.shape[:-1]),
            loss=loss,
            perplexity=code_perplexity(one_hot, self.num_codes),
            usage=code_usage(one_hot, self.num_codes),
        )

    @staticmethod
    def nearest(flat: jax.Array, codebook: jax.Array) -> jax.Array:
        """int32 [M] index of the closest codebook row to each row of flat [M, D]."""
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is the same for every code.
        # Full float32 matmul: TF32/bf16 passes on accelerators could pick a farther code.
        dots = jnp.matmul(flat, codebook.T, precision=jax.lax.Precision.HIGHEST)
        scores = 2.0 * dots - jnp.sum(jnp.square(codebook), axis=-1)
        return jnp.argmax(scores, axis=-1).astype(jnp.int32)

    def decode(self, codes: jax.Array) -> jax.Array:
        """Code vectors [..., code_dim] for int codes [...] (e.g. codes sampled by a prior)."""
        return jnp.take(self.codebook, codes, axis=0)

    def _ema_update(self, flat: jax.Array, codes: jax.Array) -> None:
        one_hot = jax.nn.one_hot(codes, self.num_codes, dtype=jnp.float32)
        counts = jnp.sum(one_hot, axis=0)  # n_i
        sums = jnp.matmul(one_hot.T, flat, precision=jax.lax.Precision.HIGHEST)  # s_i
        size = self.decay * self.cluster_size.value + (1.0 - self.decay) * counts
        total = self.embed_sum.value * self.decay + (1.0 - self.decay) * sums
        n = jnp.sum(size)
        smoothed = (size + self.epsilon) / (n + self.num_codes * self.epsilon) * n
        codebook = total / smoothed[:, None]
        if self.dead_code_threshold > 0:
            codebook, size, total = self._restart_dead(flat, smoothed, codebook, size, total)
        self.cluster_size.value = size
        self.embed_sum.value = total
        self.codebook_var.value = codebook

    def _restart_dead(self, flat, smoothed, codebook, size, total):
        if not self.has_rng(VQ_RNG):
            raise ValueError(f"VectorQuantizer(dead_code_threshold={self.dead_code_threshold}) "
                             f"restarts dead codes on random encoder outputs while training: "
                             f"pass rngs={{'{VQ_RNG}': key}} to apply")
        picks = jax.random.randint(self.make_rng(VQ_RNG), (self.num_codes,), 0, flat.shape[0])
        fresh = flat[picks]
        dead = (smoothed < self.dead_code_threshold)[:, None]
        threshold = jnp.float32(self.dead_code_threshold)
        codebook = jnp.where(dead, fresh, codebook)
        size = jnp.where(dead[:, 0], threshold, size)
        total = jnp.where(dead, threshold * fresh, total)
        return codebook, size, total


# ---- argmax autoencoder -----------------------------------------------------------------


class ArgmaxBottleneck(nn.Module):
    """The AMAE quantiser: ReLU -> divide by the sum -> one-hot of the argmax.

    Call: `amae.apply({}, x, train=...)` with x [..., num_codes] -> `BottleneckOutput` whose
    quantized is exactly one_hot(codes) in value, with the gradient of the normalised values
    q = relu(x) / (sum_k relu(x)_k + epsilon). Embedding the one-hot for the decoder is the
    decoder's business.

    loss = diversity_weight * ||K mean_n(q_n) - 1||^2, the paper's diversity loss over the N
    positions of the batch: 0 when the normalised values use all K codes equally on average.
    epsilon keeps the division finite where the ReLU zeroes every channel; there q = 0 and the
    code is 0 (argmax of a tie picks the first index), with no gradient through that position.
    `train` changes nothing (there is no state); it is accepted for a uniform bottleneck API.
    """

    num_codes: int
    diversity_weight: float = 1.0
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> BottleneckOutput:
        del train
        _check_last_dim("ArgmaxBottleneck", "num_codes", self.num_codes, x)
        # Normalised in float32 whatever x's dtype: bfloat16 rounding of the quotients could
        # tie distinct values and change the argmax; the one-hot is in x's dtype.
        q = self.normalise(x.astype(jnp.float32))
        codes = jnp.argmax(q, axis=-1).astype(jnp.int32)
        one_hot = jax.nn.one_hot(codes, self.num_codes, dtype=x.dtype)
        mean_q = jnp.mean(q.reshape(-1, self.num_codes), axis=0)
        diversity = jnp.sum(jnp.square(self.num_codes * mean_q - 1.0))
        return BottleneckOutput(
            quantized=_straight_through(one_hot, q.astype(x.dtype)),
            codes=codes,
            loss=self.diversity_weight * diversity,
            perplexity=code_perplexity(codes, self.num_codes),
            usage=code_usage(codes, self.num_codes),
        )

    def normalise(self, x: jax.Array) -> jax.Array:
        """relu(x) / (sum over the last axis + epsilon): non-negative, sums to ~1 per position."""
        r = jax.nn.relu(x)
        return r / (jnp.sum(r, axis=-1, keepdims=True) + self.epsilon)

    def decode(self, codes: jax.Array) -> jax.Array:
        """One-hots [..., num_codes] for int codes [...] (what __call__ gives the decoder)."""
        return jax.nn.one_hot(codes, self.num_codes)
