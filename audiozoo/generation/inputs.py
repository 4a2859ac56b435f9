"""Checking and preparing what a generator is given: lengths, conditioning, a prime.

Conventions shared by the fast and the naive generators: the input at position t predicts
the sample at t + 1, and conditioning is aligned with the input position, as in training.
Without a prime the first input is the code of silence (``prime = [silence]``), so a clip
of n new samples reads n input positions; with a prime of P codes it reads P - 1 + n.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from audiozoo.generation.sampling import Sampling, silence_code


def check_lengths(num_steps: int, batch_size: int) -> None:
    if int(num_steps) < 1:
        raise ValueError(f"num_steps={num_steps} must be >= 1 (the number of samples to generate)")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")


def sampling_spec(net, *, method: str = "random", temperature: float = 1.0, top_p: float = 0.9,
                  voicing_threshold: float = 0.5, voiced_temperature: float = 0.5) -> Sampling:
    spec = Sampling(method, float(temperature), float(top_p), float(voicing_threshold),
                    float(voiced_temperature))
    spec.check(net)
    return spec


def prime_codes(net, prime, batch_size: int):
    """int32 [batch, P >= 1]: the given prime, or one silence code per row."""
    if prime is None:
        return jnp.full((batch_size, 1), silence_code(net), jnp.int32)
    prime = np.asarray(prime)
    if prime.ndim == 1:
        prime = np.broadcast_to(prime, (batch_size, prime.shape[0]))
    if prime.ndim != 2 or prime.shape[0] != batch_size or prime.shape[1] < 1:
        raise ValueError(
            f"prime must be codes [time] or [{batch_size}, time] with time >= 1, got shape "
            f"{list(prime.shape)}"
        )
    if not np.issubdtype(prime.dtype, np.integer):
        raise ValueError(f"prime must hold integer codes (quantise the audio first), got {prime.dtype}")
    if prime.min() < 0 or prime.max() >= net.num_classes:
        raise ValueError(
            f"prime codes must lie in [0, {net.num_classes}), got [{prime.min()}, {prime.max()}]"
        )
    return jnp.asarray(prime, jnp.int32)


def prime_tail(net, prime):
    """(the last receptive_field codes of prime, how many earlier codes were dropped).

    The ring buffers after a prime hold layer inputs that depend only on its last
    receptive_field - 1 inputs (plus the final code, the next input), so stepping through
    anything earlier is wasted work and memory; a long prime costs what a short one does.
    """
    if prime is None:
        return None, 0
    prime = np.asarray(prime)
    if prime.ndim not in (1, 2):
        return prime, 0  # prime_codes names the shape it wants
    skipped = max(0, prime.shape[-1] - net.receptive_field)
    return prime[..., skipped:], skipped


def conditioning(net, variables, batch_size: int, positions: int, global_cond, local_cond):
    """The global vector [batch, dim] and the local features upsampled once, up front, to
    [batch, positions, ch] (each None when the model has no such conditioning)."""
    g = net.apply(variables, global_cond, batch_size, method=net.global_vector)
    c = net.apply(variables, local_cond, batch_size, positions, method=net.upsample_local)
    return g, c
