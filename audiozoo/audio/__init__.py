"""Audio I/O and codecs: file reading/writing with resampling, mu-law and linear quantisation."""

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

__all__ = [
    "AudioError",
    "AudioInfo",
    "AudioStreamWriter",
    "audio_info",
    "linear_dequantize",
    "linear_quantize",
    "mu_law_decode",
    "mu_law_dequantize",
    "mu_law_encode",
    "mu_law_quantize",
    "read_audio",
    "write_audio",
]
