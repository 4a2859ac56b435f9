"""Autoregressive generation for WaveNet-style models.

`sample_naive` is the reference method the Fast WaveNet paper (Paine et al. 2016) starts
from: every new sample reruns the network over its whole receptive field, O(receptive field)
work per sample. The whole clip is one `lax.scan` inside one `jit`.

The sample drawn at step t is codes[t + 1]; codes[0] is the initial code (silence unless
given). Conditioning is aligned with the input position t, as in training.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from audiozoo.audio.mulaw import linear_quantize, mu_law_quantize
from audiozoo.nn.mixture_logistics import sample_discretized_mix_logistic

METHODS = ("random", "argmax")


def silence_code(net) -> int:
    """The code of a zero sample under the model's quantiser."""
    if net.output == "softmax":
        return int(mu_law_quantize(0.0, net.num_classes))
    return int(linear_quantize(0.0, net.num_classes))


def choose(net, rng, logits, *, temperature: float = 1.0, method: str = "random"):
    """Next codes [batch] from one step's logits [batch, output_channels]."""
    if net.output == "mol":
        temp = 0.0 if method == "argmax" else temperature
        value = sample_discretized_mix_logistic(rng, logits, temperature=temp)
        return linear_quantize(value, net.num_classes)
    if method == "argmax" or temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(rng, logits / temperature, axis=-1).astype(jnp.int32)


def check_args(net, num_steps: int, batch_size: int, method: str, temperature: float) -> None:
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps} must be >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0")


def prepare_conditioning(net, variables, batch_size, num_steps, global_cond, local_cond):
    """The global vector and the local features upsampled once, up front, to num_steps."""
    g = net.apply(variables, global_cond, batch_size, method=net.global_vector)
    c = net.apply(variables, local_cond, batch_size, num_steps, method=net.upsample_local)
    return g, c


def sample_naive(net, variables, rng, num_steps: int, *, batch_size: int = 1,
                 temperature: float = 1.0, method: str = "random", global_cond=None,
                 local_cond=None, initial_code: int | None = None):
    """codes int32 [batch, num_steps], each step rerunning the net on its receptive field."""
    check_args(net, num_steps, batch_size, method, temperature)
    g, c = prepare_conditioning(net, variables, batch_size, num_steps, global_cond, local_cond)
    first = silence_code(net) if initial_code is None else initial_code
    return _sample_naive(net, variables, rng, g, c, num_steps, batch_size, temperature, method,
                         first)


@functools.partial(jax.jit, static_argnums=(0, 5, 6, 7, 8))
def _sample_naive(net, variables, rng, g, c, num_steps, batch_size, temperature, method, first):
    window = net.receptive_field
    length = max(num_steps + 1, window)
    codes = jnp.full((batch_size, length), first, jnp.int32)
    if c is not None:
        c = jnp.pad(c, ((0, 0), (0, length - c.shape[1]), (0, 0)))

    def step(codes, t):
        # Any window of receptive-field length holding position t gives the exact logits at t.
        start = jnp.maximum(0, t - window + 1)
        inputs = jax.lax.dynamic_slice_in_dim(codes, start, window, axis=1)
        local = None if c is None else jax.lax.dynamic_slice_in_dim(c, start, window, axis=1)
        logits = net.apply(variables, inputs, g, local, method=net.trunk)
        logits_t = jax.lax.dynamic_index_in_dim(logits, t - start, axis=1, keepdims=False)
        nxt = choose(net, jax.random.fold_in(rng, t), logits_t, temperature=temperature,
                     method=method)
        return jax.lax.dynamic_update_index_in_dim(codes, nxt, t + 1, axis=1), None

    codes, _ = jax.lax.scan(step, codes, jnp.arange(num_steps))
    return codes[:, 1:num_steps + 1]
