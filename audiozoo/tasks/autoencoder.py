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

Two task options make a level-1 model read audio exactly as magenta's NSynth code does
(models/nsynth/utils.py and wavenet/fastgen.py), for checkpoints imported from it:
`task.mu_law="magenta"` (its codec, `audiozoo.audio.mulaw`; default "round") and
`task.partial_frame="trim"` (a clip is cut to whole hops before encoding, as
`utils.trim_for_encoding`: 40,000 samples give 78 frames; default "pad": zero-padded to 79).
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audiozoo import generation
from audiozoo.audio.mulaw import MU_LAW_CODECS, mu_law_codec
from audiozoo.config import ConfigError
from audiozoo.models import build_model
from audiozoo.nn.bottleneck import VQ_RNG, VQ_STATS
from audiozoo.tasks import restore_latest
from audiozoo.tasks.base import SupervisedTask


# WORKDIR/receptive_field.json: the stack's receptive fields, level by level (and the prior's).
RECEPTIVE_FIELD_FILE = "receptive_field.json"
PARTIAL_FRAMES = ("pad", "trim")


def receptive_field_row(level, codes: int, samples_per_code: int, hop_samples: int,
                        sample_rate: int) -> dict:
    """One level's receptive field: in its own codes, audio samples and seconds."""
    return {"level": level, "codes": codes, "samples": codes * samples_per_code,
            "seconds": round(codes * samples_per_code / sample_rate, 4), "hop_samples": hop_samples}


class AutoencoderTask(SupervisedTask):
    verbs = ("encode", "decode", "interpolate")

    def __init__(self, config):
        super().__init__(config)
        self.model = build_model(config.model)
        self.mu_law = config.task.mu_law
        self.partial_frame = config.task.partial_frame
        self.lower, self.lower_variables = (
            load_discrete_autoencoder(config.task.lower_workdir)
            if config.task.lower_workdir else (None, None))
        self._check_config()

    @property
    def hop_to_audio(self) -> int:
        """Audio samples per code modelled at this level (1 at level 1)."""
        return 1 if self.lower is None else self.lower.hop_to_audio * self.lower.model.hop_length

    @property
    def frame_length(self) -> int:
        """Audio samples per latent frame at this level."""
        return self.hop_to_audio * self.model.hop_length

    @property
    def level(self) -> int:
        return 1 if self.lower is None else self.lower.level + 1

    def stack_receptive_fields(self) -> list[dict]:
        """Per level, bottom up: the decoder's receptive field in its own codes, in audio
        samples and in seconds, and the audio one latent frame covers. Each level sees
        further back than the one below it (Dieleman et al. 2018, section 3.4)."""
        below = [] if self.lower is None else self.lower.stack_receptive_fields()
        return below + [receptive_field_row(self.level, self.model.receptive_field,
                                            self.hop_to_audio, self.frame_length, self.sample_rate)]

    def workdir_files(self, dataset) -> dict[str, str]:
        return {RECEPTIVE_FIELD_FILE: json.dumps(self.stack_receptive_fields(), indent=1) + "\n"}

    def _check_config(self):
        if self.mu_law not in MU_LAW_CODECS:
            raise ConfigError(f"task.mu_law={self.mu_law!r} is not one of {', '.join(MU_LAW_CODECS)}")
        if self.mu_law == "magenta" and self.model.num_classes != 256:
            raise ConfigError(f"task.mu_law='magenta' is magenta's 8-bit codec: it needs "
                              f"model.num_classes=256, not {self.model.num_classes}")
        if self.partial_frame not in PARTIAL_FRAMES:
            raise ConfigError(f"task.partial_frame={self.partial_frame!r} is not one of "
                              f"{', '.join(PARTIAL_FRAMES)}")
        segment = self.config.data.segment_length
        step = self.frame_length
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
            return mu_law_codec(self.mu_law)[0](audio, self.model.num_classes)
        return self.lower.latent_codes(self.lower_variables, audio)

    def latent_codes(self, variables, audio):
        """Audio [batch, time] -> this level's bottleneck codes [batch, time / frame_length]
        (a discrete level), held fixed: what the level above, or a prior, models."""
        out = self.model.apply(variables, self.codes_of(audio), method=self.model.bottleneck_out)
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

    def decoding(self, variables, latent, rng, **sampling):
        """(generator of the audio codes, codes -> audio) for a latent at this level: the
        levels above audio are decoded top-down first; the returned generator makes the audio
        codes (run it whole, or in chunks to stream them)."""
        task, variables, latent = self.audio_latent(variables, latent, rng, **sampling)
        return task.generator(variables, latent, rng, **sampling), task.to_audio

    def decode(self, variables, latent, rng, **sampling) -> np.ndarray:
        """Audio float32 [batch, frames * hop_to_audio * hop] for a latent at this level."""
        gen, to_audio = self.decoding(variables, latent, rng, **sampling)
        return to_audio(gen.run(gen.num_steps))

    # ---- latents as files hold them ------------------------------------------------------
    def whole_frames(self, audio) -> np.ndarray:
        """Audio [time] zero-padded (or, with task.partial_frame="trim", cut) to whole latent
        frames, as a batch of one [1, time']."""
        audio = np.asarray(audio, np.float32)
        if self.partial_frame == "pad":
            return np.pad(audio, (0, -len(audio) % self.frame_length))[None]
        if len(audio) < self.frame_length:
            raise ValueError(f"a clip of {len(audio)} samples is shorter than one frame "
                             f"({self.frame_length} samples), and this model cuts clips to "
                             "whole frames (task.partial_frame='trim')")
        return audio[None, :len(audio) - len(audio) % self.frame_length]

    def file_latent(self, variables, audio) -> np.ndarray:
        """What `audiozoo encode` writes for one clip [time]: codes [frames] (int) for a
        discrete bottleneck, else embeddings [frames, latent_width] (float32)."""
        encoded, codes = self.encode(variables, self.whole_frames(audio))
        return np.asarray(codes[0] if self.model.discrete else encoded[0])

    def check_file_latent(self, latent: np.ndarray, source: str) -> np.ndarray:
        """`latent` if it is what `file_latent` makes for this model, else a ValueError
        naming `source` and what was expected."""
        discrete = np.issubdtype(latent.dtype, np.integer)
        if self.model.discrete:
            expected, ok = "int codes [frames]", latent.ndim == 1 and discrete
        else:
            expected = f"floats [frames, {self.model.latent_width}]"
            ok = latent.ndim == 2 and not discrete and latent.shape[1] == self.model.latent_width
        if not ok or latent.shape[0] == 0:
            raise ValueError(f"{source} holds {latent.dtype}{list(latent.shape)}; this model "
                             f"decodes {expected} (what `audiozoo encode` writes)")
        if discrete and (latent.min() < 0 or latent.max() >= self.model.num_codes):
            raise ValueError(f"{source} has codes outside 0..{self.model.num_codes - 1}")
        return latent

    def stack_file_latents(self, variables, latents) -> np.ndarray:
        """The decoder's latent [batch, frames, ch] for equally long `file_latent`s."""
        if len({latent.shape for latent in latents}) > 1:
            raise ValueError(f"latents of different shapes {[list(x.shape) for x in latents]} "
                             "cannot be decoded as one batch; decode them one at a time")
        if self.model.discrete:
            return self.latent(variables, codes=np.stack(latents))
        return np.stack(latents)

    def mixed_latent(self, variables, audio_a, audio_b, weights):
        """The decoder's latent [len(weights), frames, ch] for (1 - w) * A + w * B of two
        clips' encoder outputs (timbre mixing; pre-quantiser values for a discrete model),
        over the shorter clip's whole frames."""
        a, b = self.whole_frames(audio_a), self.whole_frames(audio_b)
        length = min(a.shape[1], b.shape[1])
        (enc_a, _), (enc_b, _) = (self.encode(variables, x[:, :length]) for x in (a, b))
        weights = np.asarray(weights, np.float32)[:, None, None]
        return self.latent(variables, (1.0 - weights) * np.asarray(enc_a) + weights * np.asarray(enc_b))

    def to_audio(self, codes) -> np.ndarray:
        return np.asarray(mu_law_codec(self.mu_law)[1](codes, self.model.num_classes), np.float32)

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


def load_discrete_autoencoder(workdir: str):
    """(task, variables) of the trained discrete autoencoder in `workdir` (task.lower_workdir
    of a stacked level or of a prior)."""
    _, task, state = restore_latest(workdir)
    if not isinstance(task, AutoencoderTask) or not task.model.discrete:
        raise ConfigError(f"task.lower_workdir={workdir!r} holds no discrete autoencoder; a "
                          "stacked level or a prior needs a trained ADA (bottleneck 'vq' or "
                          "'argmax') below it")
    return task, task.variables(state)
