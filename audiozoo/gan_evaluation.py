"""GANSynth's sample metrics (Table 1) for a trained GANSynth workdir and a pitch classifier.

Engel et al. 2019, "GANSynth" (ICLR), section 4.2, as magenta's unreleased evaluation code
computes them (gansynth/lib/eval): pitches are drawn in proportion to the training set's
pitch counts, one note is generated per pitch with the EMA generator, and a pitch classifier
(configs/gansynth_pitch_classifier.py) reads every note. From its outputs:

- Inception Score, Pitch Accuracy (argmax within one semitone of the asked-for pitch) and
  Pitch Entropy over its pitch posteriors;
- FID between its penultimate features of the generated notes and of as many real held-out
  notes (the GAN config's eval split);
- NDB/k: k-means bins (Richardson & Weiss 2018) fitted on training notes' log-spectrograms,
  and the number of bins whose share of generated notes differs by a two-proportion z-test
  at alpha 0.05.

The same numbers for the held-out real notes themselves make the "real data" row: their IS,
PA and PE against their own pitches, their FID against training notes, their NDB against
the same bins.

The log-spectrograms for NDB are the classifier's input (the "logmag" front end: dB below
each note's maximum, / 120 + 1), whatever representation the GAN was trained on, so real
and generated notes are binned alike. They are average-pooled to at most `ndb_grid` cells
(32 x 32 by default) before k-means: the reference's 256 x 512 images of 12,800 notes would
be 6.7 GB per set and k-means on 131,072 dimensions, which a host cannot afford; pooling
keeps the coarse time-frequency shape the bins are meant to capture. Which resolution the
paper binned at is not known (NDB's k = 50 is also unverified).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo import sample_metrics
from audiozoo.config import ConfigError
from audiozoo.data import make_dataset
from audiozoo.models.gansynth import MIN_PITCH

NDB_GRID = (32, 32)


@dataclasses.dataclass(frozen=True)
class PitchClassifier:
    """A trained pitch classifier: its classification task, state and workdir."""

    task: object
    state: object
    workdir: str

    @classmethod
    def restore(cls, workdir) -> PitchClassifier:
        """Restores a classifier workdir and checks that its classes are MIDI pitches."""
        from audiozoo.tasks.classify import load_label_set
        from audiozoo.tasks import restore_latest

        config, task, state = restore_latest(workdir)
        if not hasattr(task, "predict"):
            raise ConfigError(f"--classifier {workdir} holds a {config.task.name} model "
                              f"({config.model.name}), not a classifier; train one with "
                              "configs/gansynth_pitch_classifier.py")
        labels = load_label_set(workdir, config, task.num_classes)
        midi = tuple(str(i) for i in range(len(labels.classes)))
        if labels.label_key != "pitch" or labels.classes != midi:
            raise ConfigError(f"the classifier in {workdir} was trained on {labels.label_key!r} "
                              "labels; the metrics need one trained on MIDI pitch "
                              "(task.label_key=pitch, classes 0..127): see "
                              "configs/gansynth_pitch_classifier.py")
        return cls(task, state, str(workdir))

    def check_fits(self, gan_task, gan_workdir) -> None:
        """The classifier must read what the GAN makes: same rate, same note length, and a
        class for every pitch the GAN can play."""
        data, gan = self.task.config.data, gan_task.config.data
        where = f"the classifier in {self.workdir} and the GAN in {gan_workdir}"
        if data.sample_rate != gan.sample_rate:
            raise ConfigError(f"{where} disagree on the sample rate ({data.sample_rate} vs "
                              f"{gan.sample_rate} Hz); train the classifier with "
                              f"--config.data.sample_rate={gan.sample_rate}")
        if data.segment_length != gan.segment_length:
            raise ConfigError(f"{where} disagree on the note length ({data.segment_length} vs "
                              f"{gan.segment_length} samples); train the classifier with "
                              f"--config.data.segment_length={gan.segment_length} (the :tiny "
                              "variant of configs/gansynth_pitch_classifier.py fits "
                              "configs/gansynth_tiny.py)")
        top = MIN_PITCH + gan_task.model.num_pitches - 1
        if top >= self.task.num_classes:
            raise ConfigError(f"the GAN in {gan_workdir} plays MIDI pitches up to {top} but the "
                              f"classifier in {self.workdir} has {self.task.num_classes} classes")

    def measure(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """Pitch posteriors, penultimate features and pooled log-spectrograms of notes."""
        probs, features, spec = _measure(self.task, self.state, jnp.asarray(audio))
        return {"probs": np.asarray(probs, np.float64), "features": np.asarray(features),
                "spectrograms": np.asarray(spec)}


# The task is static (hashed by identity): one compilation per classifier and batch shape.
@functools.partial(jax.jit, static_argnums=0)
def _measure(task, state, audio):
    logits = task.predict(state, audio)
    return (jax.nn.softmax(logits.astype(jnp.float32), -1), task.features(state, audio),
            pool_grid(task.frontend(audio), NDB_GRID))


def pool_grid(spec: jax.Array, grid: tuple[int, int]) -> jax.Array:
    """Average-pools [batch, frames, bins] to at most grid cells (trailing remainders of
    frames or bins that do not fill a block are left out)."""
    cells = [min(n, g) for n, g in zip(spec.shape[1:], grid)]
    blocks = [n // c for n, c in zip(spec.shape[1:], cells)]
    spec = spec[:, :cells[0] * blocks[0], :cells[1] * blocks[1]]
    return spec.reshape(spec.shape[0], cells[0], blocks[0], cells[1], blocks[1]).mean((2, 4))


def evaluate_gansynth(gan_task, gan_state, classifier: PitchClassifier, *, gan_workdir,
                      num_samples: int, seed: int = 0, k: int = 50,
                      batch_size: int = 32) -> dict:
    """The report of GANSynth's metrics for generated and held-out real notes."""
    if num_samples < 2 or batch_size < 1:
        raise ValueError(f"--samples={num_samples} must be >= 2 (FID needs two notes a side) "
                         f"and --batch={batch_size} >= 1")
    gan_task.load_pitch_counts(gan_workdir)
    classifier.check_fits(gan_task, gan_workdir)
    data = gan_task.config.data
    train_set, eval_set = make_dataset(data, "train"), make_dataset(data, "eval")
    _check_counts(k, num_samples, train_set, eval_set)
    rng = np.random.default_rng(seed)
    train = _measure_real(classifier, train_set, num_samples, rng, gan_task.pitch_key, batch_size)
    real = _measure_real(classifier, eval_set, num_samples, rng, gan_task.pitch_key, batch_size)
    fake = _measure_generated(classifier, gan_task, gan_state, num_samples,
                              jax.random.key(seed), batch_size)
    return {
        "gan_workdir": str(gan_workdir), "classifier_workdir": classifier.workdir,
        "seed": seed, "k": k, "ndb_grid": list(NDB_GRID),
        "training_notes": len(train["pitches"]),
        "generated": _row(fake, real["features"], train["spectrograms"], k, seed),
        "real": _row(real, train["features"], train["spectrograms"], k, seed),
        "references": {"generated_fid": "held-out real notes (eval split)",
                       "real_fid": "training notes", "ndb": "k-means bins of the training notes"},
    }


def _check_counts(k: int, num_samples: int, train_set, eval_set) -> None:
    if k < 1 or k > min(num_samples, len(train_set)):
        raise ValueError(f"--k={k} NDB bins need between 1 and {min(num_samples, len(train_set))} "
                         f"training notes (min of --samples and the training split's "
                         f"{len(train_set)} notes)")
    if len(eval_set) < 2:
        raise ValueError(f"the eval split has {len(eval_set)} notes; FID needs at least 2")


def _measure_real(classifier, dataset, num: int, rng, pitch_key: str, batch_size: int) -> dict:
    """Measures min(num, len(dataset)) notes of dataset, picked at random without repeats."""
    indices = np.sort(rng.choice(len(dataset), min(num, len(dataset)), replace=False))
    parts, pitches = [], []
    for start in range(0, len(indices), batch_size):
        examples = [dataset[int(i)] for i in indices[start:start + batch_size]]
        audio = np.stack([e["audio"] for e in examples])
        pitches += [int(e[pitch_key]) for e in examples]
        parts.append(_padded_measure(classifier, audio, batch_size))
    return dict(_concat(parts), pitches=np.asarray(pitches))


def _measure_generated(classifier, gan_task, gan_state, num: int, key, batch_size: int) -> dict:
    """Measures num notes of the EMA generator at pitches drawn from the training counts;
    the latents are drawn at once, so the notes do not depend on batch_size."""
    z, ids = gan_task.sample_latents(key, num)
    pitches = np.asarray(ids) + MIN_PITCH
    parts = [classifier.measure(audio)
             for audio in gan_task.generate_batches(gan_state, z, pitches, batch_size)]
    return dict(_concat(parts), pitches=pitches)


def _padded_measure(classifier, audio: np.ndarray, batch_size: int) -> dict:
    """Pads a short last batch to batch_size so that one compiled program serves all."""
    count = len(audio)
    padded = np.concatenate([audio, np.zeros((batch_size - count, audio.shape[1]), audio.dtype)])
    return {k: v[:count] for k, v in classifier.measure(padded).items()}


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _row(notes: dict, fid_reference: np.ndarray, train_spectrograms: np.ndarray, k: int,
         seed: int) -> dict:
    """One row of Table 1; NDB's k-means is seeded alike for every row, so the bins agree."""
    probs, pitches = notes["probs"], notes["pitches"]
    bins = sample_metrics.ndb(train_spectrograms, notes["spectrograms"], k, seed=seed)
    return {
        "examples": len(pitches),
        "inception_score": sample_metrics.inception_score(probs),
        "pitch_accuracy": sample_metrics.pitch_accuracy(probs, pitches),
        "pitch_entropy": sample_metrics.pitch_entropy(probs),
        "fid": sample_metrics.frechet_distance(fid_reference, notes["features"]),
        **bins,
    }
