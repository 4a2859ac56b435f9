"""Autoregressive generation for WaveNet-style models.

`sample` / `Generator` (fast, per-layer ring buffers; `fast`), `sample_naive` (the
recompute-everything baseline; `naive`), the sampling modes (`sampling`) and streaming long
clips to a WAV file (`stream`). See DESIGN.md for the contract:

    state = init_state(net, variables, batch_size)
    logits_t, state = step(net, variables, state, codes_t)
    codes = sample(net, variables, rng, num_steps, batch_size=1, temperature=1.0,
                   method="random")   # also "argmax", "greedy", "mode", "top_p"
"""

from audiozoo.generation.fast import (Generator, State, init_state, sample, state_bytes, step,
                                      teacher_force, upsample_local)
from audiozoo.generation.naive import sample_naive
from audiozoo.generation.sampling import METHODS, Sampling, choose, silence_code

__all__ = [
    "METHODS",
    "Generator",
    "Sampling",
    "State",
    "choose",
    "init_state",
    "sample",
    "sample_naive",
    "silence_code",
    "state_bytes",
    "step",
    "teacher_force",
    "upsample_local",
]
