"""Classifier front ends: waveform -> the features a model's `input_kind` asks for.

A `Frontend` is a frozen (hashable) dataclass, so it can be a static argument of `jax.jit`
and be called inside a jitted train step; the feature computation stays on the device.
Kinds:

- "waveform": identity (SincNet, wav2vec 2.0 take raw audio in [-1, 1]).
- "logmel": `spectral.log_mel_spectrogram` with a periodic Hann window (of |X|^power, power
  2 by default, 1 for r9y9's vocoder features), then (x - mean) / std. Defaults follow the 16 kHz CNN14 of PANNs (Kong et al. 2020, its
  sampling-rate study; released as Cnn14_16k):
  n_fft 512 (32 ms), hop 160 (10 ms), 64 Slaney mel bands over 50-8000 Hz,
  10 log10(max(x, 1e-10)).
- "fbank": AST's input (Gong et al. 2021, section 2.1): the waveform's mean is removed,
  then Kaldi fbank with 128 bins, 25 ms Hanning frames every 10 ms, dither 0, on audio in
  [-1, 1], optionally zero-padded or cropped to `num_frames` frames (AST pads before it
  normalises), then (x - mean) / (2 std) with the AudioSet statistics -4.2677393 /
  4.5689974 (AST divides by twice the std: its inputs have mean 0 and std 0.5).
- "logmag": the input of GANSynth's evaluation pitch classifier (Engel et al. 2019, section
  4.2; magenta's nsynth/utils.py `specgram` with mask, log_mag, mag_only, as
  gansynth/lib/eval/pitch_classifier_utils.py calls it): the centred, reflect-padded STFT
  (periodic Hann, n_fft 1024, hop 256), power |X|^2 in dB relative to the example's maximum
  (librosa.power_to_db with ref=max, amin 1e-13) floored at top_db = 120 below it, then
  /120 + 1, so every value lies in [0, 1] (1 at the loudest bin). The Nyquist bin is
  dropped (n_fft / 2 bins) and the frames are zero-padded or cropped to `num_frames`.
  Layout: [frames, bins] like every other kind here. The reference's "512 x 256 x 1" image
  is librosa's [bins, frames] of a 4 s note (513 bins cropped to 512, 251 frames padded to
  256), i.e. this kind's [256, 512] transposed; `models.pitch_classifier` transposes back.

mean = 0 and std = 1 switch normalisation off for every kind (for fbank too, where the
formula alone would halve the features), so statistics measured with those settings are
of the raw features; `audiozoo.audio.stats.FeatureStats` computes a dataset's own values,
which then go into `mean` / `std` as they are (fbank's factor 2 is applied here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from jax.typing import ArrayLike

from audiozoo.audio import spectral

__all__ = ["FRONTEND_KINDS", "Frontend", "default_frontend_config"]

FRONTEND_KINDS = ("waveform", "logmel", "fbank", "logmag")

# AudioSet statistics of AST's normalised fbank (its dataloader and the HF feature extractor).
AST_FBANK_MEAN = -4.2677393
AST_FBANK_STD = 4.5689974
# librosa.power_to_db's floor as magenta's nsynth `specgram` sets it.
LOGMAG_AMIN = 1e-13


def _check_kind(kind: str) -> None:
    if kind not in FRONTEND_KINDS:
        raise ValueError(f"unknown frontend kind {kind!r}; valid kinds: "
                         f"{', '.join(FRONTEND_KINDS)}")


def default_frontend_config(kind: str) -> ml_collections.ConfigDict:
    """Every Frontend field, with defaults suited to `kind` (see the module docstring).

    All kinds carry all fields so that `--config.frontend.<field>=...` overrides exist
    whatever the kind; fields a kind does not use are ignored by it.
    """
    _check_kind(kind)
    c = ml_collections.ConfigDict()
    c.kind = kind
    c.sample_rate = 16000
    # logmel
    c.n_fft = 512
    c.hop_length = 160
    c.n_mels = 64
    c.f_min = 50.0
    c.f_max = 8000.0  # <= 0 means sample_rate / 2
    c.mel_scale = "slaney"
    c.mel_norm = "slaney"  # or "none"
    c.log = "db"
    c.power = 2.0  # mel of |X|^power: 2 (power, PANNs) or 1 (magnitude, r9y9's vocoder)
    # fbank
    c.num_mel_bins = 128
    c.frame_length_ms = 25.0
    c.frame_shift_ms = 10.0
    c.window = "hanning"
    # logmag: dB range kept below each example's maximum
    c.top_db = 120.0
    # logmel, fbank and logmag: crop or zero-pad to this many frames (0 keeps the natural count)
    c.num_frames = 0
    if kind == "logmag":  # the reference's 4 s notes: 251 frames padded to 256
        c.n_fft, c.hop_length, c.num_frames = 1024, 256, 256
    c.mean = AST_FBANK_MEAN if kind == "fbank" else 0.0
    c.std = AST_FBANK_STD if kind == "fbank" else 1.0
    return c


@dataclasses.dataclass(frozen=True)
class Frontend:
    """Waveform [batch, samples] -> model input; see the module docstring for the kinds."""

    kind: str = "logmel"
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 8000.0
    mel_scale: str = "slaney"
    mel_norm: str = "slaney"
    log: str = "db"
    power: float = 2.0
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    window: str = "hanning"
    top_db: float = 120.0
    num_frames: int = 0
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if self.std <= 0:
            raise ValueError(f"frontend std={self.std} must be > 0 (std=1 means no scaling)")
        if self.num_frames < 0:
            raise ValueError(f"frontend num_frames={self.num_frames} must be >= 0 (0 keeps all)")
        if self.kind == "waveform" and (self.mean != 0.0 or self.std != 1.0):
            raise ValueError(f"a 'waveform' frontend passes audio through unchanged, but got "
                             f"mean={self.mean}, std={self.std}; set mean=0.0 and std=1.0")
        if self.kind == "logmel":
            for name, value, valid in [("mel_scale", self.mel_scale, spectral.MEL_SCALES),
                                       ("mel_norm", self.mel_norm, ("slaney", "none")),
                                       ("log", self.log, spectral.LOG_KINDS)]:
                if value not in valid:
                    raise ValueError(f"frontend {name}={value!r}; valid: {', '.join(valid)}")
        if self.kind == "logmel" and self.power not in (1.0, 2.0):
            raise ValueError(f"frontend power={self.power} must be 1.0 (magnitude) or 2.0 (power)")
        if self.kind == "logmag" and self.top_db <= 0:
            raise ValueError(f"frontend top_db={self.top_db} must be > 0 (dB kept below the max)")
        if self.kind == "fbank" and self.window not in spectral.KALDI_WINDOWS:
            raise ValueError(f"frontend window={self.window!r} is not a Kaldi window; valid: "
                             f"{', '.join(spectral.KALDI_WINDOWS)}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | ml_collections.ConfigDict) -> Frontend:
        """Builds from a config section; missing fields take `default_frontend_config(kind)`."""
        cfg = dict(cfg.to_dict() if isinstance(cfg, ml_collections.ConfigDict) else cfg)
        if "kind" not in cfg:
            raise ValueError(f"frontend config has no 'kind'; valid kinds: "
                             f"{', '.join(FRONTEND_KINDS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - fields)
        if unknown:
            raise ValueError(f"unknown frontend config keys {unknown}; valid keys: "
                             f"{', '.join(sorted(fields))}")
        values = default_frontend_config(cfg["kind"]).to_dict()
        values.update(cfg)
        return cls(**values)

    @property
    def num_bins(self) -> int | None:
        """Feature size per frame (None for raw waveforms)."""
        return {"waveform": None, "logmel": self.n_mels, "fbank": self.num_mel_bins,
                "logmag": self.n_fft // 2}[self.kind]

    def output_shape(self, num_samples: int, batch: int = 1) -> tuple[int, ...]:
        """Shape of `self(waveform)` for a [batch, num_samples] waveform (nothing computed)."""
        out = jax.eval_shape(self, jax.ShapeDtypeStruct((batch, num_samples), jnp.float32))
        return tuple(out.shape)

    def __call__(self, waveform: ArrayLike) -> jnp.ndarray:
        feats = self.unnormalised(waveform)
        if self.kind == "waveform" or (self.mean == 0.0 and self.std == 1.0):
            return feats
        scale = 2.0 * self.std if self.kind == "fbank" else self.std
        return (feats - self.mean) / scale

    def unnormalised(self, waveform: ArrayLike) -> jnp.ndarray:
        """The features before (x - mean) / std: what dataset statistics are computed on."""
        x = jnp.asarray(waveform)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"frontend expects float audio in [-1, 1], got dtype {x.dtype}")
        if self.kind == "waveform":
            return x
        compute = {"logmel": self._logmel, "fbank": self._fbank, "logmag": self._logmag}
        return self._fit_frames(compute[self.kind](x))

    def _logmel(self, x: jnp.ndarray) -> jnp.ndarray:
        return spectral.log_mel_spectrogram(
            x, sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
            n_mels=self.n_mels, f_min=self.f_min,
            f_max=self.f_max if self.f_max > 0 else None, scale=self.mel_scale,
            norm=None if self.mel_norm == "none" else self.mel_norm, power=self.power,
            log=self.log)

    def _fbank(self, x: jnp.ndarray) -> jnp.ndarray:
        # AST removes the clip's mean first; Kaldi's per-frame DC removal makes this a
        # no-op up to rounding, but it keeps the float32 arithmetic the same as AST's.
        x = x - jnp.mean(x, axis=-1, keepdims=True)
        return spectral.kaldi_fbank(
            x, sample_rate=self.sample_rate, num_mel_bins=self.num_mel_bins,
            frame_length_ms=self.frame_length_ms, frame_shift_ms=self.frame_shift_ms,
            window=self.window, dither=0.0, use_energy=False, htk_compat=True)

    def _logmag(self, x: jnp.ndarray) -> jnp.ndarray:
        spec = spectral.stft(x, self.n_fft, self.hop_length)  # centred, reflect: librosa's
        return _db_to_unit(jnp.square(jnp.abs(spec)), self.top_db)[..., :-1]  # no Nyquist

    def _fit_frames(self, feats: jnp.ndarray) -> jnp.ndarray:
        """Crops or zero-pads the frame axis (-2) to num_frames (0: unchanged)."""
        target, frames = self.num_frames, feats.shape[-2]
        if target == 0 or target == frames:
            return feats
        if frames > target:
            return feats[..., :target, :]
        pad = [(0, 0)] * (feats.ndim - 2) + [(0, target - frames), (0, 0)]
        return jnp.pad(feats, pad)


def _db_to_unit(power: jnp.ndarray, top_db: float) -> jnp.ndarray:
    """power_to_db(power, ref=max, amin=1e-13, top_db) / top_db + 1 over each example's
    [frames, bins]; the maximum is taken over all bins, Nyquist included, as the reference
    crops only afterwards."""
    db = 10.0 * jnp.log10(jnp.maximum(power, LOGMAG_AMIN))
    db = db - jnp.max(db, axis=(-2, -1), keepdims=True)
    return jnp.maximum(db, -top_db) / top_db + 1.0
