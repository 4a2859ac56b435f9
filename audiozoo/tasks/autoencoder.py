"""Objective adapter for WaveNet autoencoders (NSynth autoencoder, ADA levels).

The loss is the decoder's cross-entropy of every code given the previous ones and the latent
of the whole clip (Engel et al. 2017, section 3.1; Dieleman et al. 2018, section 3), plus the
bottleneck's own term (VQ codebook and commitment losses, or the argmax autoencoder's
diversity loss). `bits_per_code` is the reconstruction cross-entropy alone, in bits per
modelled code (per audio sample at level 1).

Stacking (Dieleman et al. 2018, section 3.4): with `task.lower_workdir` set, this model is a
level above a trained one: each batch's audio is turned into the lower level's codes by the
frozen lower model inside the jitted step, and this model learns those codes. Decoding runs
top-down: this level's latent -> lower codes (ring-buffer generator) -> ... -> audio.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audiozoo import generation
from audiozoo.audio.mulaw import mu_law_dequantize, mu_law_quantize
from audiozoo.config import ConfigError
from audiozoo.models import build_model
from audiozoo.nn.bottleneck import VQ_RNG, VQ_STATS
from audiozoo.tasks.base import SupervisedTask


class AutoencoderTask(SupervisedTask):
    verbs = ("encode", "decode", "interpolate")

    def __init__(self, config):
        super().__init__(config)
        self.model = build_model(config.model)
        self.lower, self.lower_variables = _load_lower(config.task.lower_workdir)
        self._check_config()

    @property
    def hop_to_audio(self) -> int:
        """Audio samples per code modelled at this level (1 at level 1)."""
        return 1 if self.lower is None else self.lower.hop_to_audio * self.lower.model.hop_length

    @property
    def level(self) -> int:
        return 1 if self.lower is None else self.lower.level + 1

    def stack_receptive_fields(self) -> list[dict]:
        """Per level, bottom up: the decoder's receptive field in its own codes and in audio
        samples. Each level sees further back than the one below it (Dieleman et al. 2018)."""
        below = [] if self.lower is None else self.lower.stack_receptive_fields()
        rf = self.model.receptive_field
        return below + [{"level": self.level, "codes": rf, "samples": rf * self.hop_to_audio,
                         "hop_samples": self.hop_to_audio * self.model.hop_length}]

    def _check_config(self):
        segment = self.config.data.segment_length
        step = self.hop_to_audio * self.model.hop_length
        if segment % step:
            raise ConfigError(f"data.segment_length={segment} must be a multiple of {step} (this "
                              f"level's hop in audio samples) so every frame is whole")
        if self.lower is not None and self.model.num_classes != self.lower.model.num_codes:
            raise ConfigError(f"model.num_classes={self.model.num_classes} must equal the lower "
                              f"level's codebook size {self.lower.model.num_codes}")
        if (self.lower is not None) != (self.model.encoder_input == "one_hot"):
            raise ConfigError(
                f"model.encoder_input={self.model.encoder_input!r} with task.lower_workdir="
                f"{self.config.task.lower_workdir!r}: a stacked level reads the codes of a trained "
                "level below ('one_hot' and --config.task.lower_workdir=DIR); level 1 reads "
                "audio ('scalar', no lower_workdir)")

    # ---- codes at this level ----------------------------------------------------------
    def codes_of(self, audio):
        """Audio [batch, time] -> the codes this level models [batch, time / hop_to_audio]."""
        if self.lower is None:
            return mu_law_quantize(audio, self.model.num_classes)
        lower_codes = self.lower.codes_of(audio)
        out = self.lower.model.apply(self.lower_variables, lower_codes,
                                     method=self.lower.model.bottleneck_out)
        return jax.lax.stop_gradient(out.codes)

    def dummy_batch(self, batch_size):
        return {"audio": jnp.zeros((batch_size, self.config.data.segment_length), jnp.float32)}

    # ---- training ---------------------------------------------------------------------
    def init_variables(self, rng, batch):
        return self.model.init({"params": rng, VQ_RNG: rng}, self.codes_of(batch["audio"]))

    def loss(self, params, extra, batch, rng, train):
        codes = self.codes_of(batch["audio"])
        mutable = [VQ_STATS] if train and VQ_STATS in extra else False
        result = self.model.apply({"params": params, **extra}, codes, train,
                                  rngs={VQ_RNG: rng}, mutable=mutable)
        (logits, out), extra = (result if mutable else (result, extra))
        logits = logits.astype(jnp.float32)  # the loss in float32 whatever model.dtype
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, codes))
        loss = ce + out.loss
        metrics = {"loss": loss, "bits_per_code": ce / math.log(2.0),
                   "accuracy": jnp.mean(jnp.argmax(logits, -1) == codes)}
        if self.model.discrete:
            metrics |= {"bottleneck_loss": out.loss, "perplexity": out.perplexity,
                        "usage": out.usage}
        return loss, (metrics, extra)

    # ---- encode / decode --------------------------------------------------------------
    def variables(self, state):
        return {"params": state.params, **state.extra}

    def encode(self, variables, audio):
        """Audio [batch, time] -> (encoder output [batch, frames, ch], codes [batch, frames]);
        the output is the latent itself for a continuous model, the pre-quantiser values for
        a discrete one (mix these to interpolate, then `latent`). The output is float32
        whatever model.dtype: it is written to .npy files and mixed."""
        codes = self.codes_of(jnp.asarray(audio))
        encoded = self.model.apply(variables, codes, method=self.model.encode)
        out = self.model.apply(variables, encoded, method=self.model.quantize)
        return encoded.astype(jnp.float32), out.codes

    def latent(self, variables, encoded=None, codes=None):
        """What the decoder is conditioned on, from encoder outputs or from discrete codes."""
        if codes is not None:
            return self.model.apply(variables, jnp.asarray(codes), method=self.model.latent_of_codes)
        return self.model.apply(variables, jnp.asarray(encoded), method=self.model.quantize).quantized

    def generator(self, variables, latent, rng, **sampling) -> generation.Generator:
        """The fast generator of this level's codes for a latent [batch, frames, ch]."""
        latent = jnp.asarray(latent)
        num_steps = latent.shape[1] * self.model.hop_length
        return generation.Generator(self.model.decoder_net, {"params": variables["params"]["decoder"]},
                                    rng, num_steps, batch_size=latent.shape[0], local_cond=latent,
                                    **sampling)

    def lower_latent(self, variables, latent, rng, **sampling):
        """Top-down one level: this level's latent -> the latent of the level below."""
        gen = self.generator(variables, latent, rng, **sampling)
        codes = gen.run(gen.num_steps)
        return self.lower.latent(self.lower_variables, codes=codes)

    def audio_latent(self, variables, latent, rng, **sampling):
        """(level-1 task, level-1 variables, level-1 latent) for a latent at this level."""
        if self.lower is None:
            return self, variables, latent
        below = self.lower_latent(variables, latent, jax.random.fold_in(rng, self.level), **sampling)
        return self.lower.audio_latent(self.lower_variables, below, rng, **sampling)

    def decode(self, variables, latent, rng, **sampling) -> np.ndarray:
        """Audio float32 [batch, frames * hop_to_audio * hop] for a latent at this level."""
        task, variables, latent = self.audio_latent(variables, latent, rng, **sampling)
        gen = task.generator(variables, latent, rng, **sampling)
        return task.to_audio(gen.run(gen.num_steps))

    def to_audio(self, codes) -> np.ndarray:
        return np.asarray(mu_law_dequantize(codes, self.model.num_classes), np.float32)

    def samples(self, state, rng):
        """Reconstructions of the first eval clips: encode, then decode with the generator."""
        num = self.config.task.num_samples
        if num <= 0:
            return {}
        from audiozoo.data import make_dataset

        dataset = make_dataset(self.config.data, "eval")
        audio = np.stack([dataset[i]["audio"] for i in range(min(num, len(dataset)))])
        variables = self.variables(state)
        encoded, _ = self.encode(variables, audio)
        decoded = self.decode(variables, self.latent(variables, encoded), rng)
        clips = {}
        for i, (orig, rec) in enumerate(zip(audio, decoded)):
            clips[f"{i}_original"], clips[f"{i}_reconstruction"] = orig, rec
        return clips


def _load_lower(workdir: str):
    """(task, variables) of the trained level below, or (None, None) at level 1."""
    if not workdir:
        return None, None
    from audiozoo.train.loop import restore_latest  # the trainer imports tasks: import late

    _, task, state = restore_latest(workdir)
    if not isinstance(task, AutoencoderTask) or not task.model.discrete:
        raise ConfigError(f"task.lower_workdir={workdir!r} holds no discrete autoencoder; a "
                          "stacked level needs a trained ADA (bottleneck 'vq' or 'argmax') below")
    return task, task.variables(state)
