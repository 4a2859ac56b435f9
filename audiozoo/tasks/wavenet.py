"""Objective adapter for WaveNet: next-sample likelihood on raw audio.

WaveNet (van den Oord et al. 2016), section 2.2: the audio is mu-law companded to 256 classes
and the model is trained with the cross-entropy of the next sample; with the mixture-of-
logistics head the targets are 16-bit linear classes and the loss is the discretized logistic
mixture likelihood. Small Gaussian noise on the input waveform against divergence, a training
trick of WaveNet reimplementations rather than of the paper (source unverified here), is
`task.input_noise` (off by default). Only positions whose whole receptive field lies inside
the training crop are scored, so zero padding never stands in for real history.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audiozoo import generation
from audiozoo.audio.mulaw import (linear_dequantize, linear_quantize, mu_law_dequantize,
                                  mu_law_quantize)
from audiozoo.config import ConfigError
from audiozoo.data import label_names
from audiozoo.models import build_model
from audiozoo.nn.mixture_logistics import discretized_mix_logistic_nll
from audiozoo.tasks.base import SupervisedTask


class WaveNetTask(SupervisedTask):
    verbs = ("generate",)
    # Local conditioning needs features computed from the audio: the vocoder task has them.
    conditions_locally = False

    def __init__(self, config):
        super().__init__(config)
        self.model = build_model(config.model)
        self.global_key = config.task.global_cond
        self._check_config()

    def _check_config(self):
        net, data = self.model, self.config.data
        if data.segment_length <= net.receptive_field:
            raise ConfigError(
                f"data.segment_length={data.segment_length} must exceed the model's receptive "
                f"field ({net.receptive_field} samples) so some positions are scored"
            )
        if (net.num_global_ids < 1) if self.global_key else net.uses_global:
            raise ConfigError(
                f"task.global_cond={self.global_key!r} and model.num_global_ids="
                f"{net.num_global_ids} / model.global_channels={net.global_channels} disagree: "
                "set task.global_cond and model.num_global_ids (e.g. 'family' and the number of "
                "families), or neither (task.global_cond='', model.num_global_ids=0, "
                "model.global_channels=0)"
            )
        if net.uses_local != self.conditions_locally:
            raise ConfigError(
                f"model.local_channels={net.local_channels} with task.name="
                f"{self.config.task.name!r}: the 'wavenet' task has no local features (set "
                "model.local_channels=0); the 'vocoder' task conditions on log-mel frames "
                "(set model.local_channels to frontend.n_mels)")

    def check_data(self, dataset):
        """A globally conditioned model needs its ids in the data, no more of them than the
        model has (an id past the table would be clamped to its last row, silently)."""
        if not self.global_key:
            return
        example = dataset[0]
        if self.global_key not in example:
            hint = (" (a folder of speaker or instrument subfolders: --config.data.labels=True "
                    "--config.task.global_cond=label)" if self.config.data.name == "wav_folder"
                    else "")
            raise ConfigError(
                f"task.global_cond={self.global_key!r}, but the {self.config.data.name} data has "
                f"no such key (its examples hold {sorted(example)}): train unconditioned with "
                "--config.task.global_cond='' --config.model.num_global_ids=0 "
                "--config.model.global_channels=0, or name a key "
                f"of the data{hint}")
        names = label_names(dataset, self.global_key)
        if names and len(names) > self.model.num_global_ids:
            raise ConfigError(
                f"the training data has {len(names)} {self.global_key!r} ids but "
                f"model.num_global_ids={self.model.num_global_ids}; set "
                f"--config.model.num_global_ids={len(names)}")

    # ---- codes ----------------------------------------------------------------------
    def quantize(self, audio):
        if self.model.output == "softmax":
            return mu_law_quantize(audio, self.model.num_classes)
        return linear_quantize(audio, self.model.num_classes)

    def dequantize(self, codes):
        if self.model.output == "softmax":
            return mu_law_dequantize(codes, self.model.num_classes)
        return linear_dequantize(codes, self.model.num_classes)

    def global_cond(self, batch):
        return batch[self.global_key] if self.global_key else None

    def local_cond(self, batch):
        """Frame-rate features [batch, frames, ch] of a batch (None: not locally conditioned)."""
        return None

    def global_ids(self, global_id: int | None, batch_size: int):
        """Conditioning ids [batch_size] for generation: `global_id` (default 0) for every
        clip of a globally conditioned model, None for an unconditioned one."""
        net = self.model
        if not net.uses_global:
            if global_id is not None:
                raise ValueError(f"a global id ({global_id}) was given, but this {self.config.model.name} "
                                 "model is not globally conditioned")
            return None
        global_id = global_id or 0
        if not 0 <= global_id < net.num_global_ids:
            raise ValueError(f"global id {global_id} is outside the model's ids 0..{net.num_global_ids - 1}")
        return jnp.full((batch_size,), global_id, jnp.int32)

    def as_heard(self, audio) -> np.ndarray:
        """Audio as the model hears it (quantised and back): what a primed clip starts with."""
        return np.asarray(self.dequantize(self.quantize(jnp.asarray(audio))), np.float32)

    def dummy_batch(self, batch_size):
        batch = {"audio": jnp.zeros((batch_size, self.config.data.segment_length), jnp.float32)}
        if self.global_key:
            batch[self.global_key] = jnp.zeros((batch_size,), jnp.int32)
        return batch

    # ---- training -------------------------------------------------------------------
    def init_variables(self, rng, batch):
        codes = self.quantize(batch["audio"])[:, :-1]
        return self.model.init(rng, codes, global_cond=self.global_cond(batch),
                               local_cond=self.local_cond(batch))

    def loss(self, params, extra, batch, rng, train):
        audio = batch["audio"]
        inputs = audio
        if train and self.config.task.input_noise > 0:
            noise = self.config.task.input_noise * jax.random.normal(rng, audio.shape)
            inputs = jnp.clip(audio + noise, -1.0, 1.0)
        inputs = self.quantize(inputs)[:, :-1]
        targets = self.quantize(audio)[:, 1:]
        logits = self.model.apply({"params": params, **extra}, inputs,
                                  global_cond=self.global_cond(batch),
                                  local_cond=self.local_cond(batch))
        offset = self.model.receptive_field - 1
        # The likelihoods in float32 whatever model.dtype (WaveNet's logits already are).
        logits, targets = logits[:, offset:].astype(jnp.float32), targets[:, offset:]
        nll, metrics = self._nll(logits, targets)
        loss = jnp.mean(nll)
        metrics = dict(metrics, loss=loss, bits_per_sample=loss / math.log(2.0))
        return loss, (metrics, extra)

    def _nll(self, logits, targets):
        if self.model.output == "softmax":
            nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
            accuracy = jnp.mean(jnp.argmax(logits, -1) == targets)
            return nll, {"accuracy": accuracy}
        nll = discretized_mix_logistic_nll(logits, linear_dequantize(targets, self.model.num_classes),
                                           num_classes=self.model.num_classes)
        return nll, {}

    # ---- sampling -------------------------------------------------------------------
    def generator(self, params, rng, num_samples: int, *, batch_size: int = 1, global_cond=None,
                  local_cond=None, prime_audio=None, prime_codes=None,
                  **sampling) -> generation.Generator:
        """A fast (ring-buffer) generator of num_samples codes, optionally continuing
        prime_audio (float [time] or [batch, time]) or, for a caller that has quantized it
        already, its codes `prime_codes`."""
        if prime_codes is None and prime_audio is not None:
            prime_codes = self.quantize(jnp.asarray(prime_audio))
        return generation.Generator(self.model, {"params": params}, rng, num_samples,
                                    batch_size=batch_size, global_cond=global_cond,
                                    local_cond=local_cond, prime=prime_codes, **sampling)

    def audio_stream(self, params, rng, num_samples: int, *, batch_size: int = 1,
                     prime_audio=None, **kwargs):
        """(generator, codes -> audio, head, samples to keep) to stream num_samples new
        samples after `head`, the prime [time] as the model heard it (None without one);
        keep: None (all). Keywords as for `generator`."""
        gen = self.generator(params, rng, num_samples, batch_size=batch_size,
                             prime_audio=prime_audio, **kwargs)
        head = None
        if prime_audio is not None:
            head = np.broadcast_to(self.as_heard(prime_audio), (batch_size, len(prime_audio)))
        return gen, lambda codes: np.asarray(self.dequantize(codes), np.float32), head, None

    def generate(self, params, rng, num_samples: int, **kwargs) -> np.ndarray:
        """Audio float32 [batch, num_samples] in [-1, 1] (keywords as for `generator`)."""
        codes = self.generator(params, rng, num_samples, **kwargs).run(num_samples)
        return np.asarray(self.dequantize(codes), np.float32)

    def samples(self, state, rng):
        num = self.config.task.num_samples
        seconds = self.config.task.sample_seconds
        if num <= 0 or seconds <= 0:
            return {}
        ids = None
        if self.global_key:
            ids = jnp.arange(num, dtype=jnp.int32) % self.model.num_global_ids
        audio = self.generate(state.params, rng, int(seconds * self.sample_rate), batch_size=num,
                              global_cond=ids)
        names = [f"{self.global_key}{int(i)}" if ids is not None else f"clip{i}"
                 for i in (ids if ids is not None else range(num))]
        return {f"{j}_{name}": clip for j, (name, clip) in enumerate(zip(names, audio))}
