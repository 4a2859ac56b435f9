"""Objective adapter for a mel-conditioned WaveNet vocoder: audio from a log-mel spectrogram.

WaveNet (van den Oord et al. 2016), section 2.5: local conditioning on a time series h_t of
lower rate, upsampled to the audio rate by a learned transposed-convolution stack; with
log-mel frames as h_t this is the neural vocoder of Tacotron 2 (Shen et al. 2018, section
2.2) and of r9y9/wavenet_vocoder (`train.py`, `audio.logmelspectrogram`), whose published
mixture-of-logistics recipe is configs/wavenet_vocoder_r9y9.py.

The features are computed from the audio itself with the log-mel front end
(`audiozoo.audio.frontend`, kind "logmel"), inside the jitted step for training crops and by
the same function for any file at inference. Alignment: a clip of T samples is zero-padded to
whole hops, F = ceil(T / hop) frames; frame f is the centred STFT frame at sample f * hop
(reflect-padded at the clip's edges) and conditions samples f * hop .. (f + 1) * hop - 1
after upsampling. Training crops are whole hops long (data.segment_length % hop == 0), so a
crop's frames are the frames of the file it came from away from the crop's edges. As in the
WaveNet task, logits[:, t] (which hears samples <= t and the frame of sample t) predicts
sample t + 1, so vocoding T samples runs T - 1 steps after a silent first sample.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from audiozoo.audio.frontend import Frontend
from audiozoo.config import ConfigError
from audiozoo.tasks.wavenet import WaveNetTask


# What `check_features` accepts as normalised features (mean ~0, std ~1 on typical audio).
MAX_NORMALISED_MEAN = 4.0
MIN_NORMALISED_STD, MAX_NORMALISED_STD = 0.05, 4.0


class VocoderTask(WaveNetTask):
    verbs = ("vocode", "evaluate")
    conditions_locally = True

    def __init__(self, config):
        self.frontend = Frontend.from_config(config.frontend)
        super().__init__(config)

    def _check_config(self):
        super()._check_config()
        net, fe, data = self.model, self.frontend, self.config.data
        rules = [
            (fe.kind == "logmel", f"frontend.kind={fe.kind!r} must be 'logmel'"),
            (fe.num_frames == 0, f"frontend.num_frames={fe.num_frames} must be 0 (every frame "
             "of the audio is used)"),
            (fe.sample_rate == data.sample_rate, f"frontend.sample_rate={fe.sample_rate} must "
             f"equal data.sample_rate={data.sample_rate}"),
            (net.local_channels == fe.n_mels, f"model.local_channels={net.local_channels} must "
             f"equal frontend.n_mels={fe.n_mels}"),
            (net.hop_length == fe.hop_length, f"the product of model.upsample_scales "
             f"{tuple(net.upsample_scales)} = {net.hop_length} must equal frontend.hop_length="
             f"{fe.hop_length} (samples per frame)"),
            (data.segment_length % fe.hop_length == 0, f"data.segment_length="
             f"{data.segment_length} must be a multiple of frontend.hop_length={fe.hop_length}"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(f"vocoder: {message}")

    # ---- features -------------------------------------------------------------------
    @property
    def hop_length(self) -> int:
        return self.frontend.hop_length

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    def features(self, audio):
        """Log-mel frames [batch, ceil(T / hop), n_mels] of audio [batch, T] (float32). A clip
        shorter than half an STFT window (too short to reflect-pad) is zero-padded to more
        than that first; its frames are then the first ceil(T / hop)."""
        audio = jnp.asarray(audio, jnp.float32)
        frames = self.num_frames(audio.shape[-1])
        length = max(frames * self.hop_length, self.frontend.n_fft // 2 + 1)
        audio = jnp.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, length - audio.shape[-1])])
        return self.frontend(audio)[..., :frames, :]

    def local_cond(self, batch):
        return self.features(batch["audio"])

    def check_features(self, features, source: str) -> np.ndarray:
        """Features made elsewhere as [batch, frames, n_mels] float32, or a ValueError naming
        `source` and what this model expects."""
        features = given = np.asarray(features)
        fe = self.frontend
        expected = (f"log-mel frames [frames, {fe.n_mels}] or [batch, frames, {fe.n_mels}] at "
                    f"{fe.sample_rate / fe.hop_length:g} frames/s (hop {fe.hop_length} at "
                    f"{fe.sample_rate} Hz), {self.normalisation}")
        if features.ndim == 2:
            features = features[None]
        if (features.ndim != 3 or features.shape[-1] != fe.n_mels or features.shape[1] == 0
                or not np.issubdtype(features.dtype, np.floating)):
            raise ValueError(f"{source} holds {given.dtype}{list(given.shape)}; this "
                             f"vocoder takes {expected}")
        if not np.all(np.isfinite(features)):
            raise ValueError(f"{source} has NaN or infinite values; this vocoder takes {expected}")
        mean, std = float(features.mean()), float(features.std())
        # Normalised features of audio like the training data have mean ~0 and std ~1;
        # raw dB values (mean tens below zero) or another scale are far off.
        if not (abs(mean) <= MAX_NORMALISED_MEAN and MIN_NORMALISED_STD <= std <= MAX_NORMALISED_STD):
            raise ValueError(f"{source} has mean {mean:.3g} and std {std:.3g}, not what normalised "
                             f"features look like; this vocoder takes {expected}")
        return features.astype(np.float32)

    def batch_inputs(self, clips=None, features=None, sources=None) -> tuple[np.ndarray, list[int]]:
        """(features [batch, frames, n_mels], samples to make per clip) for audio clips
        [time] (copy synthesis: their own frames, their own lengths) or for features
        [frames, n_mels] made elsewhere (checked, naming sources[i]; frames * hop samples)."""
        if (clips is None) == (features is None):
            raise ValueError("vocode audio clips (copy synthesis) or log-mel features, not "
                             "both and not neither")
        if clips is not None:
            clips = [np.asarray(c, np.float32) for c in clips]
            features = [np.asarray(self.features(c[None]))[0] for c in clips]
            return self.stack_features(features), [len(c) for c in clips]
        sources = sources or [f"features {i}" for i in range(len(features))]
        # A [batch, frames, n_mels] array is that many clips.
        features = [row for f, source in zip(features, sources) for row in self.check_features(f, source)]
        return self.stack_features(features), [len(f) * self.hop_length for f in features]

    def stack_features(self, features: list) -> np.ndarray:
        """Features [frames_i, n_mels] of several clips as one batch [batch, max frames,
        n_mels], zero-padded at the end: each clip is cut at its own length afterwards, and
        the vocoder is causal in the audio, so the padding changes nothing before that."""
        frames = max(f.shape[0] for f in features)
        batch = np.zeros((len(features), frames, self.frontend.n_mels), np.float32)
        for row, f in zip(batch, features):
            row[:f.shape[0]] = f
        return batch

    @property
    def normalisation(self) -> str:
        fe = self.frontend
        mel = "mel power" if fe.power == 2.0 else "mel magnitude"
        log = f"10 log10({mel})" if fe.log == "db" else f"ln({mel})"
        return f"{log}, then (x - ({fe.mean:g})) / {fe.std:g}"

    # ---- vocoding -------------------------------------------------------------------
    def vocoding(self, params, features, rng, *, num_samples: int | None = None,
                 global_cond=None, **sampling):
        """(generator of samples 1 .. T - 1, codes -> audio, sample 0) for features [batch,
        frames, n_mels]; T = num_samples (default frames * hop). Sample 0 is silence (see the
        module docstring): write it, then the generator's output."""
        features = jnp.asarray(features, jnp.float32)
        total = num_samples or features.shape[1] * self.hop_length
        if not 2 <= total <= features.shape[1] * self.hop_length:
            raise ValueError(f"{total} samples need 2..{features.shape[1] * self.hop_length} "
                             f"for {features.shape[1]} frames at hop {self.hop_length}")
        gen = self.generator(params, rng, total - 1, batch_size=features.shape[0],
                             global_cond=global_cond, local_cond=features, **sampling)
        head = np.zeros((features.shape[0], 1), np.float32)
        return gen, lambda codes: np.asarray(self.dequantize(codes), np.float32), head

    def vocode(self, params, features, rng, **kwargs) -> np.ndarray:
        """Audio float32 [batch, T] from features [batch, frames, n_mels] (see `vocoding`)."""
        gen, to_audio, head = self.vocoding(params, features, rng, **kwargs)
        return np.concatenate([head, to_audio(gen.run(gen.num_steps))], axis=1)

    def copy_synthesis(self, params, audio, rng, **kwargs) -> np.ndarray:
        """Audio [batch, T] vocoded from the features of audio [batch, T]."""
        audio = np.asarray(audio, np.float32)
        return self.vocode(params, self.features(audio), rng, num_samples=audio.shape[-1], **kwargs)

    def samples(self, state, rng):
        """Copy synthesis of the first eval clips (task.sample_seconds of each)."""
        from audiozoo.data import make_dataset

        num, seconds = self.config.task.num_samples, self.config.task.sample_seconds
        if num <= 0 or seconds <= 0:
            return {}
        dataset = make_dataset(self.config.data, "eval")
        length = max(2, min(int(seconds * self.sample_rate), self.config.data.segment_length))
        audio = np.stack([dataset[i]["audio"][:length] for i in range(min(num, len(dataset)))])
        ids = None
        if self.global_key:
            ids = jnp.asarray([dataset[i][self.global_key] for i in range(len(audio))], jnp.int32)
        vocoded = self.copy_synthesis(state.params, audio, rng, global_cond=ids)
        clips = {}
        for i, (original, output) in enumerate(zip(audio, vocoded)):
            clips[f"{i}_original"], clips[f"{i}_vocoded"] = original, output
        return clips
