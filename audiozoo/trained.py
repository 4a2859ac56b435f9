"""A trained workdir in Python, in one line: `audiozoo.load(workdir)`.

    import audiozoo as az

    run = az.load("runs/tiny")                 # the latest checkpoint of `audiozoo train`
    run.config, run.model, run.variables       # the flax module and its variables
    audio = run.generate(seconds=1.0)          # WaveNet: float32 [batch, samples]
    notes = run.generate(pitches=[60, 64])     # GANSynth: [batch, pitches, samples]
    latent = run.encode(audio[0])              # autoencoders: what `audiozoo encode` writes
    audio = run.decode([latent])               # ... and back, with the fast generator
    results = run.classify([clip])             # classifiers: pooled class scores per clip
    [speech] = run.vocode([recording])         # vocoders: copy synthesis from its log-mel

Each verb is the task's own method (the CLI's verbs call the same ones); a verb that does not
apply to the workdir's model raises a ValueError naming the ones that do.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from audiozoo.audio.io import check_clip
from audiozoo.tasks import restore_latest


def load(workdir: str | Path) -> "Trained":
    """The model, variables, config and verbs of a trained workdir's latest checkpoint."""
    return Trained(workdir, *restore_latest(workdir))


class Trained:
    """A restored workdir: `config`, `task`, `state`, and the verbs its task supports."""

    def __init__(self, workdir, config, task, state):
        self.workdir, self.config, self.task, self.state = Path(workdir), config, task, state

    def __repr__(self) -> str:
        return (f"Trained({str(self.workdir)!r}: {self.config.model.name}, task "
                f"{self.config.task.name}, verbs {', '.join(self.verbs) or 'none'})")

    @property
    def model(self):
        return self.task.model

    @functools.cached_property
    def variables(self) -> dict:
        """{"params": ..., and any other collection} as `model.apply` takes them."""
        return self.task.variables(self.state)

    @property
    def sample_rate(self) -> int:
        return self.task.sample_rate

    @property
    def verbs(self) -> tuple[str, ...]:
        return self.task.verbs

    def require(self, verb: str) -> None:
        """A ValueError naming the verbs that apply when `verb` does not fit this model."""
        if verb not in self.verbs:
            raise ValueError(f"`{verb}` does not apply to the {self.config.task.name} model "
                             f"({self.config.model.name}) in {self.workdir}; its verbs are: "
                             f"{', '.join(self.verbs) or 'none'}")

    # ---- generative models ---------------------------------------------------------------
    def generate(self, seconds: float | None = None, *, pitches=None, batch_size: int = 1,
                 seed: int = 0, global_id: int | None = None, local_cond=None, prime=None,
                 **sampling) -> np.ndarray:
        """WaveNet: `seconds` of audio float32 [batch_size, samples], optionally conditioned
        on `global_id` / `local_cond` or continuing `prime` (audio [time] at the model's rate;
        the returned clips hold only the new samples); `sampling`: temperature, method, top_p.
        GANSynth: one note per pitch for each of batch_size timbres, [batch_size,
        len(pitches), samples]."""
        self.require("generate")
        rng = jax.random.key(seed)
        if self.task.makes_notes:
            if pitches is None or seconds is not None:
                raise ValueError("GANSynth makes notes of the trained length: pass pitches=[...]")
            return self.task.notes(self.state, pitches, rng, batch_size)
        if seconds is None or pitches is not None:
            raise ValueError("WaveNet generates audio of a length: pass seconds=...")
        num_samples = int(seconds * self.sample_rate)
        if num_samples < 1:
            raise ValueError(f"seconds={seconds} is less than one sample at {self.sample_rate} Hz")
        if prime is not None:
            prime = check_clip(prime, "prime")
        return self.task.generate(
            self.state.params, rng, num_samples, batch_size=batch_size,
            global_cond=self.task.global_ids(global_id, batch_size), local_cond=local_cond,
            prime_audio=prime, **sampling)

    def encode(self, audio) -> np.ndarray:
        """Autoencoders: codes [frames] (discrete bottleneck) or embeddings [frames, ch] of
        one clip [time] at the model's rate, zero-padded to whole frames."""
        self.require("encode")
        return self.task.file_latent(self.variables, check_clip(audio, "audio"))

    def decode(self, latents, *, seed: int = 0, **sampling) -> np.ndarray:
        """Autoencoders: audio float32 [len(latents), samples] for equally long latents as
        `encode` returns them; `sampling`: temperature, method."""
        self.require("decode")
        if not len(latents):
            raise ValueError("decode takes a list of latents (what encode returns); got none")
        latents = [self.task.check_file_latent(np.asarray(x), f"latent {i}")
                   for i, x in enumerate(latents)]
        latent = self.task.stack_file_latents(self.variables, latents)
        return self.task.decode(self.variables, latent, jax.random.key(seed), **sampling)

    def interpolate(self, a=None, b=None, weights=(0.5,), *, pitch: int | None = None,
                    seed: int = 0, **sampling) -> np.ndarray:
        """Autoencoders: clips decoded from (1 - w) * A + w * B of two clips' latents, one
        per weight, [len(weights), samples]. GANSynth: two random timbres (from `seed`)
        spherically interpolated at `pitch`, [len(weights), samples]."""
        self.require("interpolate")
        rng = jax.random.key(seed)
        if self.task.makes_notes:
            if pitch is None or a is not None or b is not None:
                raise ValueError("GANSynth interpolates two random timbres at one pitch: "
                                 "pass pitch=... and weights, no audio")
            return self.task.interpolate(self.state, pitch, rng, weights)
        if a is None or b is None or pitch is not None:
            raise ValueError("autoencoders interpolate two clips: pass a, b (audio) and weights")
        latent = self.task.mixed_latent(self.variables, check_clip(a, "a"), check_clip(b, "b"),
                                        weights)
        return self.task.decode(self.variables, latent, rng, **sampling)

    def vocode(self, clips=None, *, features=None, seed: int = 0, global_id: int | None = None,
               **sampling) -> list[np.ndarray]:
        """Vocoders: audio float32 [time] for each clip (copy synthesis from its own log-mel
        frames, same length) or for each features array [frames, n_mels] made elsewhere
        (frames * hop samples); `sampling`: temperature, method. One batch for all."""
        self.require("vocode")
        if clips is not None:
            clips = [check_clip(clip, f"clip {i}") for i, clip in enumerate(clips)]
        batch, lengths = self.task.batch_inputs(clips, features)
        audio = self.task.vocode(self.state.params, batch, jax.random.key(seed),
                                 num_samples=max(lengths),
                                 global_cond=self.task.global_ids(global_id, len(batch)),
                                 **sampling)
        return [row[:length] for row, length in zip(audio, lengths)]

    # ---- classifiers ---------------------------------------------------------------------
    @functools.cached_property
    def labels(self):
        """The classifier's LabelSet (class names in output order, multi-label or not)."""
        from audiozoo.tasks.classify import load_label_set

        self.require("classify")
        return load_label_set(self.workdir, self.config, self.task.num_classes)

    def classifier(self, **options):
        """An `audiozoo.inference.Classifier` (batch_size, min_db, pooling) for many files."""
        from audiozoo.inference import Classifier

        self.require("classify")
        return Classifier(self.task, self.state, self.labels, **options)

    def classify(self, clips, **options) -> list:
        """Classifiers: one result per clip (float [time] at the model's rate, any length):
        windows of the trained length, quiet ones skipped, their outputs pooled into
        `scores` [classes] in `labels.classes` order (None when every window is quiet)."""
        return self.classifier(**options).classify_audio(clips)
