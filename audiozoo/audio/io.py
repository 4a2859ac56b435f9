"""Reading and writing audio files (soundfile) with resampling (soxr).

Every model in audiozoo consumes float32 waveforms in [-1, 1]; this module is the one
place where files on disk become such arrays and back. It follows the project's error
rules: bad input raises `AudioError` naming the file and the fix, nothing is clipped
silently, and finished outputs are written atomically (temp file + `os.replace`) so an
interrupted run never leaves a half-written file behind. `AudioStreamWriter` is the
exception by design: it streams long generations to disk and keeps the WAV header valid
after every chunk, so an interrupted run leaves a playable file of what was generated.

Resampling uses libsoxr's "HQ" preset (the SoX resampler; high quality, linear phase).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from audiozoo.files import atomic_path, move_into_place, temporary_name_for

__all__ = [
    "AudioError",
    "AudioInfo",
    "AudioStreamWriter",
    "audio_info",
    "read_audio",
    "write_audio",
]

# Container formats we write, keyed by file extension. Reading accepts anything
# libsndfile can decode; writing stays explicit so a typo in `--out` is caught early.
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}

# libsndfile `sf_command` code SFC_UPDATE_HEADER_NOW (sndfile.h). soundfile's cffi
# bindings do not name it, but `sf_command` takes any command number.
_SFC_UPDATE_HEADER_NOW = 0x1060

# libsndfile's frame count for a stream of unknown length (SF_COUNT_MAX).
_UNKNOWN_LENGTH = 2**62


class AudioError(ValueError):
    """Bad audio input or output; the message names the file and how to fix it."""


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file."""

    sample_rate: int
    frames: int
    channels: int
    duration: float  # seconds


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Returns sample rate, length and channel count of `path` without decoding it."""
    path = os.fspath(path)
    _check_exists(path)
    try:
        info = sf.info(path)
    except RuntimeError as e:  # soundfile.LibsndfileError and friends
        raise _unreadable(path, e) from e
    _check_wav_complete(path)
    return AudioInfo(
        sample_rate=int(info.samplerate),
        frames=int(info.frames),
        channels=int(info.channels),
        duration=float(info.frames) / float(info.samplerate),
    )


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    mono: bool = True,
    resample: bool = True,
) -> np.ndarray:
    """Reads `path` as float32 audio.

    Args:
      path: any file libsndfile decodes (WAV, FLAC, OGG, ...).
      sample_rate: the rate the caller needs; None keeps the file's rate.
      mono: average all channels into shape [samples]; otherwise [samples, channels].
      resample: if the file's rate differs from `sample_rate`, resample with soxr;
        if False, a mismatch raises AudioError instead.

    Returns:
      float32 array. Integer PCM files decode to [-1, 1). Float files are returned as
      stored and resampling may overshoot full scale by a little (Gibbs ringing); neither
      is clipped here, because clipping would change the signal silently. The
      quantisers in `audiozoo.audio.mulaw` clip by definition.
    """
    path = os.fspath(path)
    _check_exists(path)
    try:
        with sf.SoundFile(path) as f:
            promised, file_rate = f.frames, f.samplerate
            audio = f.read(dtype="float32", always_2d=True)
    except RuntimeError as e:  # soundfile.LibsndfileError and friends
        raise _unreadable(path, e) from e
    _check_wav_complete(path)
    if audio.shape[0] < promised < _UNKNOWN_LENGTH:  # a decoder that stopped early
        raise _truncated(path, f"{promised} frames", f"{audio.shape[0]}")
    if audio.shape[0] == 0:
        raise AudioError(
            f"audio file {path!r} is empty (0 frames); remove it from the dataset or "
            "re-export it."
        )
    if not np.all(np.isfinite(audio)):
        # Only float files can hold these; one NaN would poison every loss it touches.
        raise AudioError(
            f"audio file {path!r} contains NaN or Inf samples; re-export it or remove it "
            "from the dataset."
        )
    if mono:
        audio = audio.mean(axis=1)
    if sample_rate is not None and int(sample_rate) != int(file_rate):
        audio = _match_rate(path, audio, int(file_rate), int(sample_rate), resample)
    return np.ascontiguousarray(audio, dtype=np.float32)


def check_clip(audio: Any, what: str) -> np.ndarray:
    """An in-memory clip as float32 [time]: refused (AudioError naming `what`) when it is not
    one-dimensional floats, is empty, or holds NaN/Inf, which would come out as silence or
    garbage rather than an error."""
    data = np.asarray(audio)
    if data.ndim != 1 or not np.issubdtype(data.dtype, np.floating):
        raise AudioError(f"{what} must be float samples [time] in [-1, 1] at the model's rate, "
                         f"got {data.dtype}{list(data.shape)}")
    if data.size == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{what} holds {int(np.sum(~np.isfinite(data)))} NaN/Inf sample(s)")
    return data.astype(np.float32)


def _match_rate(
    path: str, audio: np.ndarray, file_rate: int, sample_rate: int, resample: bool
) -> np.ndarray:
    if not resample:
        raise AudioError(
            f"audio file {path!r} has sample rate {file_rate} Hz but {sample_rate} Hz "
            "is required; resample the file, or set --config.data.resample=True."
        )
    return soxr.resample(audio, file_rate, sample_rate, quality="HQ")


def write_audio(
    path: str | os.PathLike,
    audio: Any,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
    clip: bool = False,
) -> None:
    """Writes float audio to a .wav or .flac file atomically.

    Args:
      path: destination; the extension picks the format. Parent dirs are created.
      audio: float array (numpy or jax) of shape [samples] or [samples, channels].
      sample_rate: samples per second.
      subtype: libsndfile subtype, e.g. "PCM_16", "PCM_24", "FLOAT" (WAV only).
      clip: clip to [-1, 1] instead of refusing out-of-range values.

    Raises:
      AudioError: NaN/Inf, values outside [-1, 1] without `clip`, a bad shape, or an
        unsupported extension/subtype. Nothing is written in that case.
    """
    path = os.fspath(path)
    fmt = _format_for(path, subtype)
    _check_rate(path, sample_rate)
    data = _checked_samples(path, audio, clip=clip)
    with atomic_path(path) as tmp:
        sf.write(tmp, data, int(sample_rate), subtype=subtype, format=fmt)


class AudioStreamWriter:
    """Streams audio to disk chunk by chunk, keeping the file valid after each write.

    Usage::

        with AudioStreamWriter("out.wav", 16000) as w:
            for chunk in chunks:
                w.write(chunk)

    After every `write` the header is updated and the file flushed, so if the process
    stops (Ctrl-C, crash, kill) the file on disk is a valid WAV holding every chunk
    written so far. Each chunk gets the same NaN/Inf and range checks as `write_audio`.
    The stream starts in a temporary file beside `path` that replaces `path` once the first
    chunk is in it, so a run stopped before it has anything to show leaves an existing file
    at `path` untouched (and removes the temporary).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int,
        channels: int = 1,
        subtype: str = "PCM_16",
        *,
        clip: bool = False,
    ):
        self.path = os.fspath(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.subtype = subtype
        self.clip = clip
        self.frames_written = 0
        self._format = _format_for(self.path, subtype)
        _check_rate(self.path, sample_rate)
        if self.channels < 1:
            raise AudioError(
                f"AudioStreamWriter for {self.path!r}: channels must be >= 1, got "
                f"{channels}."
            )
        self._file: sf.SoundFile | None = None
        self._pending = None  # the temporary file until the first chunk is in it

    def __enter__(self) -> "AudioStreamWriter":
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing finalises the header on every path, including KeyboardInterrupt.
        self.close()

    def open(self) -> None:
        self._pending = temporary_name_for(self.path)
        self._file = sf.SoundFile(
            self._pending,
            mode="w",
            samplerate=self.sample_rate,
            channels=self.channels,
            subtype=self.subtype,
            format=self._format,
        )

    def write(self, chunk: Any) -> None:
        """Appends `chunk` ([samples] or [samples, channels]) and syncs the header."""
        if self._file is None or self._file.closed:
            raise AudioError(
                f"AudioStreamWriter for {self.path!r} is not open; use it as "
                "`with AudioStreamWriter(...) as w:`."
            )
        data = _checked_samples(self.path, chunk, clip=self.clip)
        data = self._with_channels(data)
        self._file.write(data)
        self.frames_written += data.shape[0]
        self._sync()
        if self._pending is not None:  # the open file keeps being written under its new name
            move_into_place(self._pending, self.path)
            self._pending = None

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self._pending is not None:  # nothing was written: leave `path` as it was
            self._pending.unlink(missing_ok=True)
            self._pending = None

    def _with_channels(self, data: np.ndarray) -> np.ndarray:
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] != self.channels:
            raise AudioError(
                f"chunk for {self.path!r} has {data.shape[1]} channel(s) but the writer "
                f"was opened with channels={self.channels}; pass matching chunks."
            )
        return data

    def _sync(self) -> None:
        # libsndfile only rewrites the WAV/AIFF size fields on close; ask for it now so
        # the file is valid for any reader if we never reach close(). Formats without a
        # size header (FLAC) ignore the command.
        lib = getattr(sf, "_snd", None)
        handle = getattr(self._file, "_file", None)
        if lib is not None and handle is not None:
            lib.sf_command(handle, _SFC_UPDATE_HEADER_NOW, sf._ffi.NULL, 0)
        self._file.flush()


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise AudioError(
            f"audio file {path!r} does not exist; check the path (relative paths are "
            f"resolved from {os.getcwd()!r})."
        )
    if os.path.isdir(path):
        raise AudioError(f"{path!r} is a directory, not an audio file; pass a file path.")


def _unreadable(path: str, error: Exception) -> AudioError:
    return AudioError(
        f"cannot read audio file {path!r}: {str(error).rstrip('.')}. The file is corrupt or not in a "
        "format libsndfile reads (WAV, FLAC, OGG, ...); re-export or remove it."
    )


def _check_wav_complete(path: str) -> None:
    """AudioError if a WAV's header promises more sample bytes than the file holds.

    libsndfile quietly shortens such a file to what is there, so a copy or an export cut
    short would otherwise pass for a complete (shorter) recording.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                held = size - pos - 8
                # 0 and 0xFFFFFFFF are "length unknown" placeholders (streamed or RF64).
                if length not in (0, 0xFFFFFFFF) and length > held:
                    raise _truncated(path, f"{length} bytes of samples", f"{held}")
                return
            pos += 8 + length + (length & 1)  # chunks are padded to even sizes


def _truncated(path: str, promised: str, held: str) -> AudioError:
    return AudioError(
        f"audio file {path!r} is truncated: its header promises {promised} but the file "
        f"holds only {held}; the copy or export was cut short. Copy or export it again, or "
        "remove it from the dataset."
    )


def _check_rate(path: str, sample_rate: int) -> None:
    if int(sample_rate) <= 0 or int(sample_rate) != sample_rate:
        raise AudioError(
            f"cannot write {path!r}: sample_rate must be a positive integer, got "
            f"{sample_rate!r}."
        )


def _format_for(path: str, subtype: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    fmt = _WRITE_FORMATS.get(ext)
    if fmt is None:
        raise AudioError(
            f"cannot write {path!r}: unknown extension {ext!r}; use one of "
            f"{sorted(_WRITE_FORMATS)}."
        )
    if not sf.check_format(fmt, subtype):
        raise AudioError(
            f"cannot write {path!r}: subtype {subtype!r} is not valid for {fmt}; "
            f"choose one of {sorted(sf.available_subtypes(fmt))}."
        )
    return fmt


def _checked_samples(path: str, audio: Any, *, clip: bool) -> np.ndarray:
    """Float32 copy of `audio` after shape, finiteness and range checks."""
    data = np.asarray(audio)
    if not np.issubdtype(data.dtype, np.floating):
        raise AudioError(
            f"audio for {path!r} has dtype {data.dtype}; pass floats in [-1, 1] "
            "(e.g. int16 / 32768)."
        )
    if data.ndim not in (1, 2):
        raise AudioError(
            f"audio for {path!r} has shape {data.shape}; expected [samples] or "
            "[samples, channels]."
        )
    data = data.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise AudioError(
            f"audio for {path!r} contains {int(np.sum(~np.isfinite(data)))} NaN/Inf "
            "value(s); the model diverged or a bug produced them. Nothing was written."
        )
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 1.0:
        if not clip:
            raise AudioError(
                f"audio for {path!r} peaks at {peak:.6g}, outside [-1, 1]; pass "
                "clip=True to clip it, or normalise it (audio / peak). Nothing was "
                "written."
            )
        data = np.clip(data, -1.0, 1.0)
    return data
