"""Fast autoregressive generation with per-layer ring buffers.

Paine et al. 2016, "Fast Wavenet Generation Algorithm" (arXiv 1611.09482), section 3: a
dilated layer with kernel k and dilation d needs, besides its present input, only its inputs
d, 2d, ..., (k - 1) d samples ago. Each layer keeps exactly those (k - 1) * d past inputs in a
fixed-size ring buffer written at t mod size, so one sample costs O(layers) instead of
O(receptive field), and no shape grows with t.

One step is a pure function of (parameters, state, input code, conditioning at t). A clip is
one `lax.scan` of steps inside one `jit`. The layers are unrolled inside the step, and their
parameters are rearranged once per clip (`WaveNet.fast_params`): every layer's past taps are
one batched matmul at the start of the step, then each layer is one matmul for its present
tap and one for its residual, and all skip projections are one matmul at the end; the global
conditioning is folded into the layer biases up front. The gate (`gated_activation`), the
input embedding and the output stack are the model's own functions. An input layer that is
itself a causal conv over the last few sample values (`WaveNet.input_kernel` > 1, the NSynth
decoder's kernel-3 start conv) keeps those values in the state too and runs on that window.

Randomness is keyed by the absolute input position (fold_in(rng, t)), so a clip made in
chunks equals the clip made in one go with the same key.

Mixed precision: the ring buffers, the rearranged parameters and every step's arithmetic are
in the net's `dtype` (the full pass's computation dtype); the logits come out in float32
from the model's own output layer (`LogitsDense`), and are sampled from in float32. Ring
buffers of a 2-byte float dtype are stored as its bit patterns in uint16 (`_storage_dtype`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo.generation.inputs import (check_lengths, conditioning, prime_codes, prime_tail,
                                       sampling_spec)
from audiozoo.generation.sampling import Sampling, choose
from audiozoo.nn.gated import gated_activation


class State(NamedTuple):
    """The generator's memory: every layer's ring buffer of its past inputs, packed into one
    array [sum of (k - 1) * d, batch, residual] (layer l owns rows offset_l ...
    offset_l + (k - 1) d_l, and its row t mod (k - 1) d_l holds its input at t); the past taps
    the next step needs, gathered [layers, batch, (k - 1) * residual] (oldest first); and the
    input position t of the next step.

    Each layer's present input is written in place (one small update per layer), then every
    layer's next taps are read by one gather, and every layer's past taps enter the next step
    through one batched matmul: together with per-layer weight arrays (see
    `WaveNet.fast_params`) 1.6x the samples per second of a tuple of per-layer buffers with
    per-layer reads (experiments/benchmark/README.md). A single scatter for the writes was
    slower: XLA:CPU rewrote the whole buffer. The taps are gathered right after the write, one
    step early: reading and rewriting one slot in the same step makes XLA copy the whole
    buffer every step (measured: 30x slower at batch 256 on CPU), while write-then-read
    updates in place.

    `inputs` holds the input values of the last input_kernel - 1 positions, oldest first
    [batch, input_kernel - 1, 1] (zeros before t = 0, as the full pass pads): the window of a
    causal input conv, empty for the usual per-sample input layer.
    """

    buffer: jax.Array
    taps: jax.Array
    t: jax.Array
    inputs: jax.Array


class _Rings(NamedTuple):
    """Where each layer's ring lives in the packed buffer (static, from the net's shape)."""

    offsets: np.ndarray  # [layers]
    sizes: np.ndarray    # [layers], (k - 1) * d
    lags: np.ndarray     # [layers, k - 1]: how far back each past tap looks, oldest first


def _rings(net) -> _Rings:
    dilations = np.asarray(net.layer_dilations, np.int64)
    sizes = (net.kernel_size - 1) * dilations
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    lags = dilations[:, None] * np.arange(net.kernel_size - 1, 0, -1)[None, :]
    return _Rings(offsets, sizes, lags)


def init_state(net, variables, batch_size: int = 1, dtype=None) -> State:
    """Empty buffers: the zeros the full forward pass pads the past with; in the net's
    computation dtype unless `dtype` says otherwise."""
    del variables  # sizes come from the module's static structure
    check_lengths(1, batch_size)
    dtype = net.dtype if dtype is None else dtype
    width = (batch_size, net.residual_channels)
    rings = _rings(net)
    taps = (len(rings.sizes), batch_size, rings.lags.shape[1] * net.residual_channels)
    # float32 values, as the full pass hands them to the input conv (which casts to dtype).
    inputs = jnp.zeros((batch_size, net.input_kernel - 1, 1), jnp.float32)
    buffer = jnp.zeros((int(rings.sizes.sum()), *width), _storage_dtype(dtype))
    return State(buffer, jnp.zeros(taps, dtype), jnp.zeros((), jnp.int32), inputs)


def _storage_dtype(dtype) -> jnp.dtype:
    """The ring buffer's element type for values of `dtype`: a 2-byte float (bfloat16,
    float16) is kept as its bit pattern in uint16, the same size. XLA:CPU has no bfloat16
    dynamic-update-slice: it converted the whole buffer to float32 and back around every
    layer's write, which made bfloat16 generation 18x slower than float32; an integer buffer
    is updated in place on every backend."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize == 2:
        return jnp.dtype(jnp.uint16)
    return dtype


def _stored(values, storage: jnp.dtype):
    return values if values.dtype == storage else jax.lax.bitcast_convert_type(values, storage)


def state_bytes(state: State) -> int:
    return sum(a.size * a.dtype.itemsize for a in (state.buffer, state.taps, state.inputs))


@functools.partial(jax.jit, static_argnames=("net",))
def fast_params(net, variables, global_vector=None):
    """`WaveNet.fast_params` cast once to the net's dtype, with the global conditioning folded
    into the layer biases ([layers, batch or 1, gate]); under "model", the variables of the
    input and output layers, which the step runs through the model's own methods."""
    packed = jax.tree.map(lambda p: p.astype(net.dtype),
                          net.apply(variables, method=net.fast_params))
    bias = packed["bias"][:, None, :]
    if global_vector is not None:
        # A per-row bias, the same at every step.
        bias = bias + jnp.einsum("bd,ldg->lbg", global_vector.astype(net.dtype),
                                 packed.pop("global"))
    ends = {name: variables["params"][name] for name in _END_LAYERS if name in variables["params"]}
    return dict(packed, bias=bias, model={"params": ends})


_END_LAYERS = ("input_proj", "output_hidden", "output_cond", "output_logits")


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


def _embed(net, params, state: State, code):
    """The input layer's output [batch, residual] for this step's codes, and the state with
    this step's input value remembered when the input layer is a causal conv."""
    if net.input_kernel == 1:
        return net.apply(params["model"], code[:, None], method=net.embed_codes)[:, 0], state
    values = net.apply(params["model"], code[:, None], method=net.input_values)
    window = jnp.concatenate([state.inputs, values], axis=1)  # the conv's taps, oldest first
    x = net.apply(params["model"], window, method=net.embed_values)[:, -1]
    return x, state._replace(inputs=window[:, 1:])


def _step(net, params, state: State, code, local_t):
    x, state = _embed(net, params, state, code)
    layers = len(params["present"])
    # Every layer's share of the past is known before the step: one batched matmul.
    h_past = jnp.einsum("lbk,lkg->lbg", state.taps, params["past"]) + params["bias"]
    if local_t is not None:
        local = local_t.astype(x.dtype) @ params["local"]  # one matmul for every layer
        h_past = h_past + jnp.moveaxis(local.reshape(x.shape[0], layers, -1), 1, 0)
    inputs, gated = [], []
    for layer in range(layers):
        inputs.append(x)
        z = gated_activation(x @ params["present"][layer] + h_past[layer])
        gated.append(z)
        if layer < layers - 1:
            x = x + z @ params["res_kernel"][layer] + params["res_bias"][layer]
    # skip_start's 1x1 reads the embedded input (inputs[0]); its kernel heads skip_kernel.
    skip_in = [inputs[0], *gated] if net.skip_start else gated
    skip = jnp.concatenate(skip_in, axis=-1) @ params["skip_kernel"] + params["skip_bias"]
    logits = net.apply(params["model"], skip, local_t, method=net.output_stack)
    return logits, _remember(net, state, jnp.stack(inputs))


def _remember(net, state: State, inputs):
    """Writes every layer's present input [layers, batch, residual] into its ring, then
    gathers the taps of the next step (zeros before t = 0: those slots are still empty)."""
    rings = _rings(net)
    if not rings.lags.size:  # kernel size 1 keeps no past
        return state._replace(t=state.t + 1)
    t, buffer = state.t, state.buffer
    inputs = _stored(inputs.astype(state.taps.dtype), buffer.dtype)
    for layer, (offset, size) in enumerate(zip(rings.offsets, rings.sizes)):
        buffer = jax.lax.dynamic_update_index_in_dim(buffer, inputs[layer],
                                                     offset + t % int(size), 0)
    rows = rings.offsets[:, None] + (t + 1 - rings.lags) % rings.sizes[:, None]
    taps = _stored(_flat_taps(buffer[rows]), state.taps.dtype)  # bits back to the float type
    return state._replace(buffer=buffer, taps=taps, t=t + 1)


def _flat_taps(taps):
    """[layers, k - 1, batch, residual] -> [layers, batch, (k - 1) * residual], the layout of
    `WaveNet.fast_params`'s past kernels [layers, (k - 1) * residual, gate]."""
    layers, taps_per_layer, batch, width = taps.shape
    return jnp.moveaxis(taps, 1, 2).reshape(layers, batch, taps_per_layer * width)
