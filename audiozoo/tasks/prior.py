"""Objective adapter for an autoregressive prior over the top level of a stacked ADA.

Dieleman, van den Oord & Simonyan 2018, "The challenge of realistic music generation:
modelling raw audio at scale" (arXiv 1806.10474), sections 3 and 4: the codes of the top
autoencoder level are modelled by an autoregressive WaveNet (the prior), and music is made
from nothing by ancestral sampling, top-down: the prior samples top-level codes, each
level's decoder turns the codes above it into the codes below it, and level 1's decoder turns
its codes into audio, every model through the ring-buffer generator.

The prior trains through the generic trainer on codes computed by the frozen levels below
(`task.lower_workdir` names the trained top level, as a stacked level names the one below
it), inside the jitted step. It is the WaveNet task with the stack's codes in place of mu-law
samples: logits[:, t] predicts code t + 1, and only codes whose whole receptive field lies in
the crop are scored. `--prime FILE.wav` continues a recording at the top level: its top codes
are the prime of the prior, and the output is the stack's decoding of prime and continuation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo.config import ConfigError
from audiozoo.tasks.autoencoder import (AutoencoderTask, load_discrete_autoencoder,
                                        receptive_field_row)
from audiozoo.tasks.wavenet import WaveNetTask


class PriorTask(WaveNetTask):
    verbs = ("generate",)

    def __init__(self, config):
        if not config.task.lower_workdir:
            raise ConfigError("the prior models the codes of a trained discrete autoencoder: "
                              "name its workdir with --config.task.lower_workdir=DIR")
        self.top, self.top_variables = load_discrete_autoencoder(config.task.lower_workdir)
        super().__init__(config)

    @property
    def hop_to_audio(self) -> int:
        """Audio samples per top-level code."""
        return self.top.frame_length

    def _check_config(self):
        net, segment = self.model, self.config.data.segment_length
        rules = [
            (segment % self.hop_to_audio == 0, f"data.segment_length={segment} must be a "
             f"multiple of {self.hop_to_audio} (audio samples per top-level code)"),
            (segment // self.hop_to_audio > net.receptive_field, f"data.segment_length="
             f"{segment} gives {segment // self.hop_to_audio} top-level codes; it must give more "
             f"than the prior's receptive field, {net.receptive_field} codes"),
            (net.num_classes == self.top.model.num_codes, f"model.num_classes="
             f"{net.num_classes} must equal the top level's codebook size "
             f"{self.top.model.num_codes}"),
            (net.output == "softmax", "model.output must be 'softmax' (codes are categories)"),
            (not net.uses_global and not net.uses_local, "the prior takes no conditioning: set "
             "model.num_global_ids=0, model.global_channels=0, model.local_channels=0"),
            (self.config.task.input_noise == 0, "task.input_noise must be 0 (codes, not audio)"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(f"prior over {self.config.task.lower_workdir}: {message}")

    # ---- codes ------------------------------------------------------------------------
    def quantize(self, audio):
        """Audio [batch, time] (or [time]) -> the top level's codes [batch, time / hop] (or
        [time / hop]); a prime whose length is not whole codes loses its first samples."""
        audio = jnp.asarray(audio)
        audio = audio[..., audio.shape[-1] % self.hop_to_audio:]
        if audio.ndim == 1:
            return self.top.latent_codes(self.top_variables, audio[None])[0]
        return self.top.latent_codes(self.top_variables, audio)

    def dequantize(self, codes):
        raise TypeError("prior codes are not samples: decode them with `audio_stream`")

    def loss(self, params, extra, batch, rng, train):
        loss, (metrics, extra) = super().loss(params, extra, batch, rng, train)
        metrics = dict(metrics, bits_per_code=metrics.pop("bits_per_sample"))
        return loss, (metrics, extra)

    # ---- generation from nothing --------------------------------------------------------
    def audio_stream(self, params, rng, num_samples: int, *, batch_size: int = 1,
                     prime_audio=None, global_cond=None, local_cond=None, **sampling):
        """(generator of audio codes, codes -> audio, head, samples to keep) for num_samples
        new samples: the prior's top-level codes (continuing prime_audio's, if given) are
        sampled whole, then decoded top-down. The audio generator covers the prime's decoding
        and the new samples in whole top-level codes; keep the first `samples to keep`."""
        if global_cond is not None or local_cond is not None:
            raise ValueError("the prior takes no conditioning (it models the top-level codes alone)")
        code_rng, audio_rng = jax.random.split(rng)
        count = math.ceil(num_samples / self.hop_to_audio)
        if prime_audio is not None and np.shape(prime_audio)[-1] < self.hop_to_audio:
            raise ValueError(
                f"the prime is {np.shape(prime_audio)[-1]} samples, shorter than one top-level "
                f"code of this stack ({self.hop_to_audio} samples, "
                f"{self.hop_to_audio / self.sample_rate:.3f} s): give a longer prime")
        # The prime goes through the whole stack's encoders once, for the prior and the output.
        prime = None if prime_audio is None else self.quantize(prime_audio)
        gen = self.generator(params, code_rng, count, batch_size=batch_size, prime_codes=prime,
                             **sampling)
        codes = gen.run(count)
        primed = 0
        if prime is not None:
            prime = jnp.atleast_2d(prime)
            codes = jnp.concatenate([jnp.broadcast_to(prime, (batch_size, prime.shape[1])), codes], 1)
            primed = prime.shape[1] * self.hop_to_audio
        latent = self.top.latent(self.top_variables, codes=codes)
        audio_gen, to_audio = self.top.decoding(self.top_variables, latent, audio_rng, **sampling)
        return audio_gen, to_audio, None, primed + num_samples

    def generate(self, params, rng, num_samples: int, **kwargs) -> np.ndarray:
        """Audio float32 [batch, samples] from nothing (after a prime's decoding, if given)."""
        gen, to_audio, _, keep = self.audio_stream(params, rng, num_samples, **kwargs)
        return to_audio(gen.run(gen.num_steps))[:, :keep]

    def samples(self, state, rng):
        num, seconds = self.config.task.num_samples, self.config.task.sample_seconds
        if num <= 0 or seconds <= 0:
            return {}
        audio = self.generate(state.params, rng, int(seconds * self.sample_rate), batch_size=num)
        return {f"{i}_prior": clip for i, clip in enumerate(audio)}

    def stack_receptive_fields(self) -> list[dict]:
        """The levels' receptive fields (bottom up, as `AutoencoderTask` reports them) and,
        last, the prior's: what the whole stack hears of the past when it makes music."""
        rf = self.model.receptive_field
        return self.top.stack_receptive_fields() + [receptive_field_row(
            "prior", rf, self.hop_to_audio, self.hop_to_audio, self.sample_rate)]

    # receptive_field.json, as the autoencoder levels write it (from stack_receptive_fields).
    workdir_files = AutoencoderTask.workdir_files
