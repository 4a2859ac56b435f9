"""How fast GANSynth makes a 4 s note, against the WaveNet autoencoder's fast decoder.

Engel et al. 2019 (ICLR), section 4.4: GANSynth generates a whole 4 s note in one forward
pass, "about 54,000 times faster" than the NSynth WaveNet autoencoder's sample-by-sample
decoder. This script measures both on the current device in one run:

- GANSynth: the full-size "+H" generator of configs/gansynth.py (IF-Mel by default: 7
  resolutions to 128 x 1024 x 2, filters up to 256, latent 256 + 61 pitches) at its final
  stage, latent -> spectrogram -> audio (the mel pseudo-inverse, IF integration and inverse
  STFT included), one jitted call per batch of 4 s notes.
- WaveNet autoencoder: the decoder of configs/nsynth_ae.py (30 layers, residual 512, gate
  1024, skip 256, 256 mu-law classes, conditioned on a 125 x 16 encoding) run by
  `audiozoo.generation.Generator` (ring buffers, one `lax.scan`). Every sample costs the
  same (the buffers have a fixed size), so it times --wavenet-samples steps after a
  compile-and-warm-up run of the same length and scales them to 64,000 samples (4 s), then
  adds the generator's set-up for the note (conditioning projected for every sample) once:
  making the whole note at batch 1 would take many minutes on a CPU.

Weights are random: speed does not depend on them. A figure is the best of --repeats timed
calls after one compile-and-warm-up call. Ratios are GANSynth / WaveNet at the same batch.

    python experiments/gansynth/benchmark_speed.py                 # batch 1 and 32
    python experiments/gansynth/benchmark_speed.py --batches 1 8 --wavenet-samples 500
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp

from audiozoo.benchmarking import call_seconds, device_label
from audiozoo.config import load_config
from audiozoo.tasks import build_task


CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs")
NOTE_SAMPLES = 64000  # 4 s at 16 kHz


def gansynth_note_seconds(variant: str, batch: int, repeats: int) -> float:
    """Seconds per batch of 4 s notes from the full-size generator at its last stage."""
    config = load_config(os.path.join(CONFIGS, "gansynth.py") + f":{variant}")
    task = build_task(config)
    state = task.init_state(jax.random.key(0), task.dummy_batch(1))
    state = state.replace(step=jnp.asarray(config.train.num_steps, jnp.int32))
    z = jax.random.normal(jax.random.key(1), (batch, task.model.latent_dim))
    pitches = jnp.full((batch,), 60, jnp.int32)
    audio = task.generate(state, z, pitches)
    assert audio.shape == (batch, NOTE_SAMPLES), audio.shape
    return call_seconds(lambda: task.generate(state, z, pitches), repeats)


def wavenet_note_seconds(batch: int, samples: int, repeats: int) -> float:
    """Seconds per batch of 4 s notes from the autoencoder's fast decoder: setting up the
    generator for a 4 s encoding (the conditioning projected for every sample) once, plus
    the time of `samples` steps scaled to 64,000 (every ring-buffer step costs the same)."""
    task = build_task(load_config(os.path.join(CONFIGS, "nsynth_ae.py")))
    model = task.model
    variables = task.variables(task.init_state(jax.random.key(0), task.dummy_batch(1)))
    latent = jnp.zeros((batch, NOTE_SAMPLES // model.hop_length, model.latent_channels))

    def setup():
        return task.generator(variables, latent, jax.random.key(2))

    setup_seconds = call_seconds(lambda: setup().local, repeats)
    gen = setup()
    step_seconds = call_seconds(lambda: gen.run(samples), repeats)
    return setup_seconds + step_seconds * NOTE_SAMPLES / samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="if_mel_h", help="configs/gansynth.py variant")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--wavenet-samples", type=int, default=1000,
                        help="samples the WaveNet decoder makes per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = device_label()
    rows = []
    for batch in args.batches:
        gan = gansynth_note_seconds(args.variant, batch, args.repeats)
        wavenet = wavenet_note_seconds(batch, args.wavenet_samples, args.repeats)
        rows.append((batch, gan, wavenet))
        print(f"batch {batch}: GANSynth {gan:.4f} s, WaveNet autoencoder {wavenet:.1f} s "
              "per batch of 4 s notes", file=sys.stderr, flush=True)
    print(f"\njax {jax.__version__}, {jax.devices()[0].platform}, float32; 4 s = "
          f"{NOTE_SAMPLES} samples at 16 kHz\n")
    print("| model | device | batch | dtype | 4 s notes/s | seconds per note | GANSynth / WaveNet AE |")
    print("|---|---|---|---|---|---|---|")
    for batch, gan, wavenet in rows:
        ratio = f"{wavenet / gan:,.0f}x"
        print(f"| GANSynth {args.variant} (configs/gansynth.py) | {device} | {batch} | float32 | "
              f"{batch / gan:,.2f} | {gan / batch:.4f} | {ratio} |")
        print(f"| WaveNet autoencoder decoder (configs/nsynth_ae.py), fast | {device} | {batch} | "
              f"float32 | {batch / wavenet:.5f} | {wavenet / batch:,.1f} | 1x (baseline) |")


if __name__ == "__main__":
    main()
