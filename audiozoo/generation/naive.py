"""Naive autoregressive generation: the baseline of the Fast WaveNet paper.

Paine et al. 2016 (arXiv 1611.09482), section 2: every new sample reruns the network over its
whole receptive field, O(receptive field) work per sample instead of the ring buffers'
O(layers). Kept as the reference the fast generator is tested and benchmarked against. The
clip is still one `lax.scan` inside one `jit`, with the same sampling and the same per-step
keys as `audiozoo.generation.fast`, so both give the same codes for the same key.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from audiozoo.generation.inputs import check_lengths, conditioning, prime_codes, sampling_spec
from audiozoo.generation.sampling import Sampling, choose


def sample_naive(net, variables, rng, num_steps: int, *, batch_size: int = 1,
                 temperature: float = 1.0, method: str = "random", global_cond=None,
                 local_cond=None, prime=None, **sampling):
    """codes int32 [batch, num_steps], each step rerunning the net on its receptive field."""
    check_lengths(num_steps, batch_size)
    spec = sampling_spec(net, method=method, temperature=temperature, **sampling)
    primed = prime_codes(net, prime, batch_size)
    positions = primed.shape[1] - 1 + num_steps
    g, c = conditioning(net, variables, batch_size, positions, global_cond, local_cond)
    return _sample_naive(net, variables, rng, g, c, primed, spec, int(num_steps))


@functools.partial(jax.jit, static_argnames=("net", "sampling", "num_steps"))
def _sample_naive(net, variables, rng, g, c, primed, sampling: Sampling, num_steps: int):
    window = net.receptive_field
    start_t = primed.shape[1] - 1
    length = max(start_t + num_steps + 1, window)
    codes = jnp.pad(primed, ((0, 0), (0, length - primed.shape[1])))
    if c is not None:
        c = jnp.pad(c, ((0, 0), (0, length - c.shape[1]), (0, 0)))

    def step(codes, t):
        # Any window of receptive-field length holding position t gives the exact logits at t.
        start = jnp.maximum(0, t - window + 1)
        inputs = jax.lax.dynamic_slice_in_dim(codes, start, window, axis=1)
        local = None if c is None else jax.lax.dynamic_slice_in_dim(c, start, window, axis=1)
        logits = net.apply(variables, inputs, g, local, method=net.trunk)
        logits_t = jax.lax.dynamic_index_in_dim(logits, t - start, axis=1, keepdims=False)
        new = choose(net, jax.random.fold_in(rng, t), logits_t, sampling)
        return jax.lax.dynamic_update_index_in_dim(codes, new, t + 1, axis=1), None

    codes, _ = jax.lax.scan(step, codes, start_t + jnp.arange(num_steps))
    return codes[:, start_t + 1:start_t + 1 + num_steps]
