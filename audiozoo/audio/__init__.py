"""Audio I/O and codecs (file reading/writing with resampling, mu-law and linear quantisation),
spectral front ends (STFT, mel, Kaldi fbank), augmentation and feature statistics."""

from audiozoo.audio.augment import mixup, spec_augment
from audiozoo.audio.frontend import FRONTEND_KINDS, Frontend, default_frontend_config
from audiozoo.audio.io import (
    AudioError,
    AudioInfo,
    AudioStreamWriter,
    audio_info,
    read_audio,
    write_audio,
)
from audiozoo.audio.mulaw import (
    linear_dequantize,
    linear_quantize,
    mu_law_decode,
    mu_law_dequantize,
    mu_law_encode,
    mu_law_quantize,
)
from audiozoo.audio.spectral import kaldi_fbank, log_mel_spectrogram, mel_filterbank, stft
from audiozoo.audio.stats import FeatureStats

__all__ = [
    "AudioError",
    "AudioInfo",
    "AudioStreamWriter",
    "FRONTEND_KINDS",
    "FeatureStats",
    "Frontend",
    "audio_info",
    "default_frontend_config",
    "kaldi_fbank",
    "linear_dequantize",
    "linear_quantize",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mixup",
    "mu_law_decode",
    "mu_law_dequantize",
    "mu_law_encode",
    "mu_law_quantize",
    "read_audio",
    "spec_augment",
    "stft",
    "write_audio",
]
