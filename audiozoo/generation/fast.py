"""Fast autoregressive generation with per-layer ring buffers.

Paine et al. 2016, "Fast Wavenet Generation Algorithm" (arXiv 1611.09482), section 3: a
dilated layer with kernel k and dilation d needs, besides its present input, only its inputs
d, 2d, ..., (k - 1) d samples ago. Each layer keeps exactly those (k - 1) * d past inputs in a
fixed-size ring buffer written at t mod size, so one sample costs O(layers) instead of
O(receptive field), and no shape grows with t.

One step is a pure function of (parameters, state, input code, conditioning at t). A clip is
one `lax.scan` of steps inside one `jit`. The layers are unrolled inside the step, and the
parameters are rearranged once per clip (`WaveNet.fast_params`) so that each layer is one
matmul over its concatenated taps plus one for its residual, and all skip projections are
one matmul at the end; the global conditioning is folded into the layer biases up front.

Randomness is keyed by the absolute input position (fold_in(rng, t)), so a clip made in
chunks equals the clip made in one go with the same key.

Mixed precision: the ring buffers, the rearranged parameters and every step's arithmetic are
in the net's `dtype` (the full pass's computation dtype); the logits come out in float32, as
the full pass's do (`float32_logits`), and are sampled from in float32.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from audiozoo.audio.mulaw import linear_dequantize
from audiozoo.generation.inputs import (check_lengths, conditioning, prime_codes, prime_tail,
                                       sampling_spec)
from audiozoo.generation.sampling import Sampling, choose
from audiozoo.models.wavenet import float32_logits


class State(NamedTuple):
    """The generator's memory, per layer: a ring buffer [(k - 1) * d, batch, residual] of its
    past inputs (slot t mod size holds the input at t) and the oldest tap the next step
    needs [batch, residual]; plus the input position t of the next step.

    The oldest tap is read one step early because the present step overwrites its slot:
    reading and rewriting one slot in the same step makes XLA copy the whole buffer every
    step (measured: 30x slower at batch 256 on CPU), while write-then-read updates in place.
    """

    buffers: tuple[jax.Array, ...]
    oldest: tuple[jax.Array, ...]
    t: jax.Array


def init_state(net, variables, batch_size: int = 1, dtype=None) -> State:
    """Empty buffers: the zeros the full forward pass pads the past with; in the net's
    computation dtype unless `dtype` says otherwise."""
    del variables  # sizes come from the module's static structure
    check_lengths(1, batch_size)
    dtype = net.dtype if dtype is None else dtype
    width = (batch_size, net.residual_channels)
    buffers = tuple(jnp.zeros(((net.kernel_size - 1) * d, *width), dtype)
                    for d in net.layer_dilations)
    oldest = tuple(jnp.zeros(width if b.shape[0] else (0, *width), dtype) for b in buffers)
    return State(buffers, oldest, jnp.zeros((), jnp.int32))


def state_bytes(state: State) -> int:
    return sum(a.size * a.dtype.itemsize for a in (*state.buffers, *state.oldest))


def fast_params(net, variables, global_vector=None):
    """`WaveNet.fast_params` in the net's dtype, with the global conditioning folded into the
    layer biases."""
    packed = _in_dtype(net.apply(variables, method=net.fast_params), net.dtype)
    if global_vector is not None:
        # [batch, layers, gate]: a per-row bias, the same at every step.
        packed["bias"] = packed["bias"] + jnp.einsum(
            "bd,ldg->blg", global_vector.astype(net.dtype), packed.pop("global"))
    return packed


def _in_dtype(packed, dtype):
    """Every parameter cast once per clip to the computation dtype, but the logits' bias: the
    output layer adds it in float32, as the full pass's `LogitsDense` does."""
    out = packed.pop("out")
    packed = jax.tree.map(lambda p: p.astype(dtype), packed)
    return dict(packed, out={"kernel": out["kernel"].astype(dtype), "bias": out["bias"]})


def step(net, variables, state: State, codes_t, *, global_cond=None, local_t=None):
    """logits_t [batch, output_channels] for input codes_t [batch], and the next state.

    local_t: local features at this input position, already at the audio rate [batch, ch]
    (see `upsample_local`). For whole clips use `sample`, which prepares everything once.
    """
    codes_t = jnp.asarray(codes_t)
    if codes_t.ndim != 1:
        raise ValueError(f"codes_t must be int codes [batch], got shape {list(codes_t.shape)}")
    g = net.apply(variables, global_cond, codes_t.shape[0], method=net.global_vector)
    return _step(net, fast_params(net, variables, g), state, codes_t, local_t)


def upsample_local(net, variables, local_cond, batch_size: int, num_steps: int):
    """Frame-rate features -> [batch, num_steps, ch] at the audio rate, for `step`."""
    return net.apply(variables, local_cond, batch_size, num_steps, method=net.upsample_local)


def teacher_force(net, variables, codes, *, global_cond=None, local_cond=None):
    """logits [batch, time, output_channels] from stepping through given codes: equals
    `net.apply(variables, codes, ...)` up to float rounding."""
    codes = jnp.asarray(codes, jnp.int32)
    batch, time = codes.shape
    g, c = conditioning(net, variables, batch, time, global_cond, local_cond)
    logits, _ = _force(net, fast_params(net, variables, g), init_state(net, variables, batch),
                       codes, c)
    return logits


def sample(net, variables, rng, num_steps: int, *, batch_size: int = 1, temperature: float = 1.0,
           method: str = "random", global_cond=None, local_cond=None, prime=None, **sampling):
    """codes int32 [batch, num_steps]: one `lax.scan` for the whole clip.

    prime: codes [time] or [batch, time] to continue from (the buffers are filled from its
    last receptive_field codes first, so a long prime costs no more); local_cond: frame-rate features covering the prime and the new samples.
    Extra keywords (top_p, voicing_threshold, voiced_temperature) tune the sampling modes.
    """
    gen = Generator(net, variables, rng, num_steps, batch_size=batch_size,
                    temperature=temperature, method=method, global_cond=global_cond,
                    local_cond=local_cond, prime=prime, **sampling)
    return gen.run(num_steps)


class Generator:
    """A generation in progress: prepared parameters and conditioning, and the carried state.

    `run(n)` continues by n samples; successive runs equal one run of their total length.
    `chunks(n)` yields n-sample pieces, so arbitrarily long audio needs memory for one piece
    (plus the local conditioning, upsampled once for the whole clip).
    """

    def __init__(self, net, variables, rng, num_steps: int, *, batch_size: int = 1,
                 temperature: float = 1.0, method: str = "random", global_cond=None,
                 local_cond=None, prime=None, **sampling):
        check_lengths(num_steps, batch_size)
        self.net, self.rng, self.num_steps = net, rng, int(num_steps)
        self.sampling = sampling_spec(net, method=method, temperature=temperature, **sampling)
        prime, skipped = prime_tail(net, prime)
        primed = prime_codes(net, prime, batch_size)
        positions = skipped + primed.shape[1] - 1 + self.num_steps
        g, self.local = conditioning(net, variables, batch_size, positions, global_cond, local_cond)
        self.params = fast_params(net, variables, g)
        # Positions stay absolute (ring slots, per-step keys, local frames), as if the
        # skipped part of the prime had been stepped through.
        state = init_state(net, variables, batch_size)._replace(t=jnp.asarray(skipped, jnp.int32))
        if primed.shape[1] > 1:
            local = None if self.local is None else self.local[:, skipped:positions - self.num_steps]
            _, state = _force(net, self.params, state, primed[:, :-1], local)
        self.state, self.code = state, primed[:, -1]
        self.done = 0

    @property
    def state_bytes(self) -> int:
        return state_bytes(self.state)

    def run(self, n: int):
        """The next n samples, int32 [batch, n]."""
        if n < 1 or self.done + n > self.num_steps:
            raise ValueError(f"run({n}) after {self.done} of {self.num_steps} samples: "
                             f"ask for 1..{self.num_steps - self.done}")
        local = None
        if self.local is not None:
            start = int(self.state.t)
            local = jnp.swapaxes(self.local[:, start:start + n], 0, 1)
        codes, self.state, self.code = _generate(self.net, self.params, self.state, self.code,
                                                 local, self.rng, self.sampling, n)
        self.done += n
        return codes

    def chunks(self, chunk_size: int):
        """Yields int32 [batch, chunk_size] pieces (the last one shorter, which compiles
        once more) until num_steps samples are made."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size} must be >= 1")
        while self.done < self.num_steps:
            yield self.run(min(chunk_size, self.num_steps - self.done))


# ---- the jitted core -------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("net", "sampling", "num_steps"))
def _generate(net, params, state, code, local, rng, sampling: Sampling, num_steps: int):
    """num_steps samples from state; local: [num_steps, batch, ch] or None."""

    def body(carry, local_t):
        state, code = carry
        logits, next_state = _step(net, params, state, code, local_t)
        new = choose(net, jax.random.fold_in(rng, state.t), logits, sampling)
        return (next_state, new), new

    (state, code), codes = jax.lax.scan(body, (state, code), local, length=num_steps)
    return codes.T, state, code


@functools.partial(jax.jit, static_argnames=("net",))
def _force(net, params, state, codes, local):
    """Teacher-forced steps over codes [batch, time]: (logits [batch, time, out], state)."""

    def body(state, inputs):
        code, local_t = inputs
        logits, state = _step(net, params, state, code, local_t)
        return state, logits

    local = None if local is None else jnp.swapaxes(local, 0, 1)
    state, logits = jax.lax.scan(body, state, (codes.T, local))
    return jnp.swapaxes(logits, 0, 1), state


def _step(net, params, state: State, code, local_t):
    x = _embed(net, params["input"], code)
    bias, out_cond = params["bias"], None
    if local_t is not None:
        # One matmul projects this step's features for every layer (and the output stack).
        local = local_t.astype(bias.dtype) @ params["local"]
        layers, gate = bias.shape[-2:]
        bias = bias + local[:, :layers * gate].reshape(x.shape[0], layers, gate)
        if net.condition_output:
            out_cond = local[:, layers * gate:]
    half = net.gate_channels // 2
    skips, buffers, oldest = [], [], []
    for layer, (dilation, buffer) in enumerate(zip(net.layer_dilations, state.buffers)):
        taps = [x]
        if buffer.shape[0]:  # kernel size 1 keeps no past
            buffer, taps = _ring_taps(buffer, state.oldest[layer], state.t, dilation, x)
            oldest.append(_read(buffer, state.t + 1))  # x[t + 1 - size], before it is overwritten
        else:
            oldest.append(state.oldest[layer])
        buffers.append(buffer)
        h = jnp.concatenate(taps, axis=-1) @ params["taps"][layer] + bias[..., layer, :]
        z = jnp.tanh(h[:, :half]) * jax.nn.sigmoid(h[:, half:])
        skips.append(z)
        if layer < len(params["res_kernel"]):
            x = x + z @ params["res_kernel"][layer] + params["res_bias"][layer]
    skip = jnp.concatenate(skips, axis=-1) @ params["skip_kernel"] + params["skip_bias"]
    return _output(params, skip, out_cond), State(tuple(buffers), tuple(oldest), state.t + 1)


def _ring_taps(buffer, oldest, t, dilation, x):
    """Writes x at slot t, then reads the taps between the oldest and the present, oldest
    first: (updated buffer, [x[t - (k-1) d], ..., x[t - d], x[t]])."""
    kernel_size = buffer.shape[0] // dilation + 1
    buffer = jax.lax.dynamic_update_index_in_dim(buffer, x.astype(buffer.dtype),
                                                 t % buffer.shape[0], 0)
    middle = [_read(buffer, t - m * dilation) for m in range(kernel_size - 2, 0, -1)]
    return buffer, [oldest, *middle, x]


def _embed(net, input_params, code):
    if net.output == "softmax":
        return input_params["embedding"][code]
    value = linear_dequantize(code, net.num_classes)[:, None].astype(input_params["kernel"].dtype)
    return value @ input_params["kernel"] + input_params["bias"]


def _output(params, skip, out_cond):
    hidden = jax.nn.relu(skip) @ params["hidden"]["kernel"] + params["hidden"]["bias"]
    if out_cond is not None:
        hidden = hidden + out_cond
    return float32_logits(jax.nn.relu(hidden), params["out"]["kernel"], params["out"]["bias"])


def _read(buffer, position):
    """The layer input at `position` (zeros before t = 0: those slots are still empty)."""
    return jax.lax.dynamic_index_in_dim(buffer, position % buffer.shape[0], 0, keepdims=False)
