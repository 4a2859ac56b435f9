"""Objective adapter for GANSynth: a progressive, pitch-conditioned WGAN-GP on spectrograms.

Engel et al. 2019, "GANSynth" (ICLR), section 3 and appendix B, trained as magenta's
models/gansynth/lib/model.py and train_util.py do:

- Real notes are turned into the configured representation inside the jitted step
  (`audiozoo.audio.specgram`, raw, un-normalised). The generator's tanh output is in the
  normalised range and is de-normalised; the discriminator normalises what it is given
  (the released normaliser, clip included). So fakes and reals meet, and the gradient-penalty
  interpolation happens, in de-normalised space.
- Losses (Gulrajani et al. 2017 WGAN-GP, Karras et al. 2018 drift, Odena et al. 2017 AC-GAN):
  L_D = E[D(fake)] - E[D(real)] + 10 E[(||grad D(x_hat)|| - 1)^2] + 0.001 E[D(real)^2]
        + 10 CE(pitch | real);  L_G = -E[D(fake)] + 10 CE(pitch | fake).
- Each iteration is one generator step and then one discriminator step, each on fresh noise
  (z ~ N(0, I), pitches drawn in proportion to the training set's pitch counts), with their
  own Adam states (lr 8e-4, b1 0, b2 0.99, eps 1e-8). An exponential moving average (0.999)
  of the generator, updated after every generator step, makes the samples.
- Progressive growing: progress comes from the image counter (step x batch); stable and
  transition phases alternate per resolution, reals are blended between resolutions like the
  generator's output, and both optimiser states restart at the start of every phase, as
  magenta builds a new graph and new optimisers per stage. The network size of each phase is
  static: `step_variant` gives the trainer the block count, and it compiles one program per
  stage (a `lax.switch` over the stages in one program ran up to 29x slower on XLA:CPU,
  experiments/gansynth/benchmark_stages.py).

The trainer is the generic one: the two parameter trees, the two optimiser states and the
generator's EMA all live in one TrainState (params = {"generator", "discriminator"},
opt_state = {"generator", "discriminator"}, ema = the generator's averaged parameters, kept
by the trainer's parameter EMA with train.ema_decay = 0.999).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audiozoo.audio import specgram
from audiozoo.config import ConfigError
from audiozoo.models import build_model
from audiozoo.models.gansynth import MIN_PITCH
from audiozoo.nn.progressive import blend_resolutions, progress_at
from audiozoo.tasks.base import Task, float32
from audiozoo.tasks.state import TrainState, all_finite, tree_select

PITCHES_FILE = "pitches.json"
NETWORKS = ("generator", "discriminator")


def _adam(optim) -> optax.GradientTransformation:
    tx = optax.adam(optim.learning_rate, b1=optim.b1, b2=optim.b2, eps=optim.eps)
    if optim.grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm), tx)
    return tx


def slerp(a: jax.Array, b: jax.Array, t) -> jax.Array:
    """Spherical interpolation between latents a and b [..., dim] at fractions t (broadcast
    against the leading axes), as GANSynth interpolates timbres (lib/generate_util.py); falls
    back to a straight line when a and b are (anti)parallel."""
    t = jnp.asarray(t, jnp.float32)[..., None]
    unit_a = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
    unit_b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
    omega = jnp.arccos(jnp.clip(jnp.sum(unit_a * unit_b, -1, keepdims=True), -1.0, 1.0))
    sin = jnp.sin(omega)
    safe = jnp.where(sin > 1e-6, sin, 1.0)
    curved = (jnp.sin((1.0 - t) * omega) * a + jnp.sin(t * omega) * b) / safe
    return jnp.where(sin > 1e-6, curved, (1.0 - t) * a + t * b)


class GANSynthTask(Task):
    verbs = ("generate", "interpolate", "evaluate")
    makes_notes = True

    def __init__(self, config):
        super().__init__(config)
        self.model = build_model(config.model)
        self.tx = _adam(config.optim)
        task = config.task
        self.representation = task.representation
        self.nfft = int(task.nfft)
        self.pitch_key = task.pitch_key
        self.pitch_counts = np.ones(self.model.num_pitches)  # set from the data by check_data
        self._check_config()

    def _check_config(self):
        if self.representation not in specgram.REPRESENTATIONS:
            raise ConfigError(f"task.representation={self.representation!r} is not one of "
                              f"{', '.join(specgram.REPRESENTATIONS)}")
        frames = specgram.num_frames_for(self.config.data.segment_length, self.nfft)
        expected = (frames, self.nfft // 2, 2)
        if tuple(self.model.output_shape) != expected:
            raise ConfigError(
                f"the model makes {list(self.model.output_shape)} images but "
                f"{self.config.data.segment_length} samples at task.nfft={self.nfft} give "
                f"{list(expected)} spectrograms; adjust model.start_shape / model.resolutions "
                "or task.nfft (+H: nfft 2048 with start_shape (2, 16); nfft 1024 with (4, 8))")
        if self.config.task.stable_images < 1 or self.config.task.transition_images < 0:
            raise ConfigError("task.stable_images must be >= 1 and task.transition_images >= 0")

    # ---- data -----------------------------------------------------------------------
    def check_data(self, dataset) -> None:
        """The pitch prior for the generator's labels comes from the training set's counts."""
        pitches = _dataset_pitches(dataset, self.pitch_key)
        outside = sorted({int(p) for p in pitches} - set(range(MIN_PITCH, MIN_PITCH + self.model.num_pitches)))
        if outside:
            raise ConfigError(f"the training data has pitches {outside[:10]} outside the model's "
                              f"MIDI {MIN_PITCH}..{MIN_PITCH + self.model.num_pitches - 1}; filter "
                              "them with --config.data.pitch_range")
        self.pitch_counts = np.bincount(np.asarray(pitches) - MIN_PITCH,
                                        minlength=self.model.num_pitches).astype(np.float64)

    def workdir_files(self, dataset) -> dict[str, str]:
        counts = {str(MIN_PITCH + i): int(c) for i, c in enumerate(self.pitch_counts) if c}
        return {PITCHES_FILE: json.dumps({"pitch_counts": counts}, indent=1) + "\n"}

    def load_pitch_counts(self, workdir) -> np.ndarray:
        """Sets (and returns) the training pitch counts a run wrote to WORKDIR/pitches.json, so
        that `sample_latents` draws pitches as the trained generator saw them."""
        path = Path(workdir) / PITCHES_FILE
        if not path.is_file():
            raise ConfigError(f"{path} does not exist: it holds the training set's pitch counts "
                              "and is written when `audiozoo train` starts; train in that workdir")
        try:
            counts = json.loads(path.read_text())["pitch_counts"]
            counts = {int(p): int(c) for p, c in counts.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"{path} is not a pitch-count file written by `audiozoo train`: "
                              f"{e!r}") from None
        if not counts or min(counts.values()) < 0:
            raise ConfigError(f"{path} holds no pitch counts (or negative ones)")
        ids = self.check_pitches(list(counts)) - MIN_PITCH
        self.pitch_counts = np.bincount(ids, weights=list(counts.values()),
                                        minlength=self.model.num_pitches)
        return self.pitch_counts

    def dummy_batch(self, batch_size):
        return {"audio": jnp.zeros((batch_size, self.config.data.segment_length), jnp.float32),
                self.pitch_key: jnp.full((batch_size,), MIN_PITCH, jnp.int32)}

    # ---- representation -------------------------------------------------------------
    def to_spectrogram(self, audio):
        """Raw (de-normalised) spectrograms of notes [batch, samples]."""
        return specgram.encode(audio, self.representation, nfft=self.nfft)

    def to_audio(self, spec):
        return specgram.decode(spec, self.representation, nfft=self.nfft,
                               audio_length=self.config.data.segment_length)

    # ---- schedule -------------------------------------------------------------------
    def schedule(self, step):
        """(progress, phase index, blocks grown) at a step: stable phase k has k + 1 blocks,
        the transition after it k + 2."""
        task, blocks = self.config.task, self.model.resolutions
        images = step * self.config.train.batch_size
        progress = progress_at(images, task.stable_images, task.transition_images, blocks)
        return progress, self._phase(images), self._blocks(images)

    def _phase(self, images):
        task, blocks = self.config.task, self.model.resolutions
        stage = task.stable_images + task.transition_images
        phase = 2 * (images // stage) + (images % stage >= task.stable_images)
        return jnp.minimum(phase, 2 * (blocks - 1))

    def _blocks(self, images):
        return jnp.minimum(self._phase(images) // 2 + 1 + self._phase(images) % 2,
                           self.model.resolutions)

    def step_variant(self, step: int) -> int:
        """The blocks grown at `step` (host-side): network sizes are static, so the trainer
        compiles one train / eval program per stage and passes this as `variant`."""
        return int(self._blocks(int(step) * self.config.train.batch_size))

    def _check_variant(self, variant):
        if variant is None or not 1 <= variant <= self.model.resolutions:
            raise ValueError(f"variant={variant!r}: pass the step's block count, "
                             "task.step_variant(step) (static, one compiled program per stage)")
        return variant

    # ---- networks -------------------------------------------------------------------
    def generate_images(self, g_params, z, pitch_ids, progress, num_blocks):
        """Raw spectrograms from the generator (its output de-normalised)."""
        images = self.model.apply({"params": {"generator": g_params}}, z, pitch_ids, progress,
                                  num_blocks, method="generate")
        return specgram.denormalize(images)

    def discriminate(self, d_params, raw, progress, num_blocks):
        """(real/fake logits, pitch logits), float32 whatever model.dtype: they feed the
        losses and the gradient penalty."""
        logits = self.model.apply({"params": {"discriminator": d_params}},
                                  specgram.normalize(raw), progress, num_blocks,
                                  method="discriminate")
        return float32(logits)

    def sample_latents(self, rng, batch_size):
        """z ~ N(0, I) and pitch ids drawn in proportion to the training set's pitch counts."""
        z_rng, p_rng = jax.random.split(rng)
        z = jax.random.normal(z_rng, (batch_size, self.model.latent_dim))
        logits = jnp.log(jnp.asarray(self.pitch_counts / self.pitch_counts.sum()))
        return z, jax.random.categorical(p_rng, logits, shape=(batch_size,))

    # ---- state ----------------------------------------------------------------------
    def init_state(self, rng, batch):
        z, pitch = self.sample_latents(rng, batch["audio"].shape[0])
        params = self.model.init(rng, z, pitch, 0.0)["params"]
        opt_state = {name: self.tx.init(params[name]) for name in NETWORKS}
        return TrainState(step=jnp.zeros((), jnp.int32), params=dict(params), opt_state=opt_state)

    # The parameter EMA (train.ema_decay, 0.999 as magenta's) averages the generator only.
    def averaged(self, params):
        return params["generator"]

    def with_averaged(self, params, averaged):
        return {**params, "generator": averaged}

    # ---- losses ---------------------------------------------------------------------
    def _ac_loss(self, pitch_logits, pitch_ids):
        return optax.softmax_cross_entropy_with_integer_labels(pitch_logits, pitch_ids).mean()

    def generator_loss(self, g_params, d_params, rng, progress, num_blocks, batch_size):
        z, pitch = self.sample_latents(rng, batch_size)
        fake = self.generate_images(g_params, z, pitch, progress, num_blocks)
        logit, pitch_logits = self.discriminate(d_params, fake, progress, num_blocks)
        ac = self._ac_loss(pitch_logits, pitch)
        loss = -logit.mean() + self.config.task.ac_weight * ac
        return loss, {"g_loss": loss, "g_ac_loss": ac}

    def discriminator_loss(self, d_params, g_params, real, real_pitch, rng, progress, num_blocks):
        task = self.config.task
        latent_rng, eps_rng = jax.random.split(rng)
        z, pitch = self.sample_latents(latent_rng, real.shape[0])
        fake = jax.lax.stop_gradient(self.generate_images(g_params, z, pitch, progress, num_blocks))
        real_logit, real_pitch_logits = self.discriminate(d_params, real, progress, num_blocks)
        fake_logit, _ = self.discriminate(d_params, fake, progress, num_blocks)
        penalty = self.gradient_penalty(d_params, real, fake, eps_rng, progress, num_blocks)
        ac = self._ac_loss(real_pitch_logits, real_pitch)
        drift = jnp.mean(jnp.square(real_logit))
        wasserstein = real_logit.mean() - fake_logit.mean()
        loss = (-wasserstein + task.gp_weight * penalty + task.drift_weight * drift
                + task.ac_weight * ac)
        accuracy = jnp.mean(jnp.argmax(real_pitch_logits, -1) == real_pitch)
        return loss, {"d_loss": loss, "wasserstein": wasserstein, "gradient_penalty": penalty,
                      "d_ac_loss": ac, "real_pitch_accuracy": accuracy}

    def gradient_penalty(self, d_params, real, fake, rng, progress, num_blocks):
        """E[(||grad_x D(x)|| - 1)^2] at x uniformly between each real and fake example."""
        eps = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1))
        mixed = eps * real + (1.0 - eps) * fake

        def critic_sum(x):
            return self.discriminate(d_params, x, progress, num_blocks)[0].sum()

        grads = jax.grad(critic_sum)(mixed)
        norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))) + 1e-12)
        return jnp.mean(jnp.square(norms - 1.0))

    # ---- steps ----------------------------------------------------------------------
    def train_step(self, state, batch, rng, variant=None):
        """One generator step then one critic step; `variant` is step_variant(state.step)."""
        blocks = self._check_variant(variant)
        progress, phase, _ = self.schedule(state.step)
        # Each phase starts with fresh optimiser states (magenta builds new ones per stage).
        starts_phase = phase != self._phase((state.step - 1) * self.config.train.batch_size)
        opt_state = tree_select(starts_phase & (state.step > 0),
                                {n: self.tx.init(state.params[n]) for n in NETWORKS},
                                state.opt_state)
        state = state.replace(opt_state=opt_state)
        new_state, metrics = self._train_branch(state, batch, rng, progress, num_blocks=blocks)
        finite = all_finite(metrics["g_loss"], metrics["d_loss"], new_state.params)
        new_state = tree_select(finite, new_state, state.replace(step=state.step))
        # The trainer's "loss" (logged, guarded against explosion): the critic's
        # Wasserstein estimate is signed, so the discriminator loss's magnitude stands in.
        metrics = dict(metrics, loss=jnp.abs(metrics["d_loss"]), progress=progress,
                       num_blocks=jnp.float32(blocks), finite=finite.astype(jnp.float32))
        return new_state, metrics

    def real_images(self, audio, progress, num_blocks):
        """Raw spectrograms of real notes, blended between resolutions as the stage sees them."""
        return blend_resolutions(self.to_spectrogram(audio), progress, num_blocks,
                                 self.model.resolutions)

    def _train_branch(self, state, batch, rng, progress, *, num_blocks):
        g_rng, d_rng = jax.random.split(rng)
        real = self.real_images(batch["audio"], progress, num_blocks)
        real_pitch = batch[self.pitch_key] - MIN_PITCH
        params, opt = dict(state.params), dict(state.opt_state)
        # One generator step against the current critic ...
        (_, g_metrics), g_grads = jax.value_and_grad(self.generator_loss, has_aux=True)(
            params["generator"], params["discriminator"], g_rng, progress, num_blocks,
            real.shape[0])
        updates, opt["generator"] = self.tx.update(g_grads, opt["generator"], params["generator"])
        params["generator"] = optax.apply_updates(params["generator"], updates)
        # ... then one critic step against the updated generator, on fresh noise.
        (_, d_metrics), d_grads = jax.value_and_grad(self.discriminator_loss, has_aux=True)(
            params["discriminator"], params["generator"], real, real_pitch, d_rng, progress,
            num_blocks)
        updates, opt["discriminator"] = self.tx.update(d_grads, opt["discriminator"],
                                                      params["discriminator"])
        params["discriminator"] = optax.apply_updates(params["discriminator"], updates)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt)
        return new_state, {**g_metrics, **d_metrics}

    def eval_step(self, state, batch, rng, variant=None):
        """The critic's view of held-out notes against the generator's fakes (the trainer
        passes `for_inference(state)`: the EMA generator), at the current stage: the losses'
        terms and the auxiliary classifier's pitch accuracy."""
        blocks = self._check_variant(variant)
        progress = self.schedule(state.step)[0]
        real = self.real_images(batch["audio"], progress, blocks)
        _, metrics = self.discriminator_loss(
            state.params["discriminator"], state.params["generator"], real,
            batch[self.pitch_key] - MIN_PITCH, rng, progress, blocks)
        return dict(metrics, loss=jnp.abs(metrics["d_loss"]))

    # ---- sampling -------------------------------------------------------------------
    def generate(self, state, z, pitches):
        """Notes [batch, samples] from latents z [batch, latent] and MIDI pitches [batch], with
        the state's generator (the EMA one in a `for_inference` state, which the trainer's
        samples and `restore_latest` give) at the state's stage. Not traceable (the stage is
        read from state.step); it compiles one program per stage and batch shape."""
        return self._generate_at(state.params["generator"], state.step, jnp.asarray(z), jnp.asarray(pitches),
                                 num_blocks=self.step_variant(int(state.step)))

    @functools.partial(jax.jit, static_argnums=0, static_argnames="num_blocks")
    def _generate_at(self, g_params, step, z, pitches, *, num_blocks):
        spec = self.generate_images(g_params, z, pitches - MIN_PITCH, self.schedule(step)[0],
                                    num_blocks)
        return self.to_audio(spec)

    def generate_batches(self, state, z, pitches, batch_size: int):
        """Yields the notes of latents z [n, latent] at MIDI pitches [n] as numpy audio, batch
        by batch in order; the last batch is padded with the last note so that one compiled
        program serves all, and only its real rows are yielded."""
        z, pitches = np.asarray(z), np.asarray(pitches)
        for start in range(0, len(z), batch_size):
            rows = np.minimum(np.arange(start, start + batch_size), len(z) - 1)
            audio = np.asarray(self.generate(state, z[rows], pitches[rows]))
            yield audio[:len(z) - start]

    def check_pitches(self, pitches, source: str = "") -> np.ndarray:
        """The pitches as int64 [n]; a ValueError naming those outside the model's range (and
        `source`, e.g. the MIDI file they came from) or an empty request."""
        pitches = np.asarray(pitches, np.int64).reshape(-1)
        top = MIN_PITCH + self.model.num_pitches - 1
        bad = sorted({int(p) for p in pitches if not MIN_PITCH <= p <= top})
        if bad and source:
            raise ValueError(f"{source} has notes at MIDI pitches {bad}, outside the "
                             f"{MIN_PITCH}..{top} this model makes; transpose it or drop them")
        if bad or not len(pitches):
            raise ValueError(f"pitches {bad or '(none)'}: this model makes MIDI pitches "
                             f"{MIN_PITCH}..{top}")
        return pitches

    def notes(self, state, pitches, rng, num_timbres: int = 1) -> np.ndarray:
        """Audio [num_timbres, len(pitches), samples]: each latent (a timbre) drawn from rng,
        played at every pitch (a pitch sweep with the timbre held)."""
        pitches = self.check_pitches(pitches)
        z = jax.random.normal(rng, (num_timbres, self.model.latent_dim))
        z = jnp.repeat(z, len(pitches), axis=0)
        audio = self.generate(state, z, jnp.tile(jnp.asarray(pitches), num_timbres))
        return np.asarray(audio).reshape(num_timbres, len(pitches), -1)

    def interpolate(self, state, pitch: int, rng, weights) -> np.ndarray:
        """Audio [len(weights), samples]: two random timbres at one pitch, spherically
        interpolated (weight 0 is the first, 1 the second)."""
        (pitch,) = self.check_pitches([pitch])
        a, b = jax.random.normal(rng, (2, self.model.latent_dim))
        z = slerp(a, b, jnp.asarray(weights))
        return np.asarray(self.generate(state, z, jnp.full((len(z),), pitch)))

    def perform(self, state, notes, rng, seconds_per_timbre: float = 0.0,
                batch_size: int = 16, source: str = "the MIDI file") -> np.ndarray:
        """A MIDI performance (`audiozoo.audio.midi.Note`s) played note by note, mixed as the
        reference does (`midi.mix_notes`). One timbre is held for the whole piece, or, with
        seconds_per_timbre > 0, random timbres every that many seconds are spherically
        interpolated by each note's start time (magenta's get_random_instruments/get_z_notes)."""
        from audiozoo.audio import midi

        if not notes:
            raise ValueError(f"{source} has no pitched notes to play")
        pitches = self.check_pitches([n.pitch for n in notes], source)
        z = self._timbres_at(np.array([n.start for n in notes]), rng, seconds_per_timbre)
        clips = list(self.generate_batches(state, z, pitches, batch_size))
        return midi.mix_notes(np.concatenate(clips), notes, self.sample_rate)

    def _timbres_at(self, times, rng, seconds_per_timbre: float):
        """Latents [len(times), latent_dim] at note start times."""
        if seconds_per_timbre <= 0:
            return jnp.repeat(jax.random.normal(rng, (1, self.model.latent_dim)), len(times), 0)
        count = max(int(times.max() / seconds_per_timbre), 1) + 1
        anchors = jax.random.normal(rng, (count, self.model.latent_dim))
        grid = np.linspace(-1e-4, times.max() + 1e-4, count)
        left = np.clip(np.searchsorted(grid, times, side="right") - 1, 0, count - 2)
        weight = (times - grid[left]) / (grid[left + 1] - grid[left])
        return slerp(anchors[left], anchors[left + 1], weight)

    def samples(self, state, rng):
        num = self.config.task.num_samples
        if num <= 0:
            return {}
        z, ids = self.sample_latents(rng, num)
        audio = np.asarray(self.generate(state, z, ids + MIN_PITCH))
        peak = np.max(np.abs(audio), axis=1, keepdims=True)
        audio = audio / np.maximum(peak, 1.0)  # a young generator can overshoot full scale
        return {f"{i}_pitch{int(p) + MIN_PITCH}": clip for i, (p, clip) in enumerate(zip(ids, audio))}


def _dataset_pitches(dataset, key: str) -> np.ndarray:
    """Every example's pitch, from the dataset's metadata when it has some (no audio made or
    read): NSynth's examples.json columns, the synthetic notes' specs."""
    if key in getattr(dataset, "metadata", {}):
        return np.asarray(dataset.metadata[key], np.int64)
    if hasattr(dataset, "note_spec") and key == "pitch":
        return np.array([dataset.note_spec(i).pitch for i in range(len(dataset))], np.int64)
    return np.array([int(dataset[i][key]) for i in range(len(dataset))], np.int64)
