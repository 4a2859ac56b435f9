"""TensorBoard logs in WORKDIR/tensorboard, so `tensorboard --logdir WORKDIR` finds them.

They mirror what the trainer already writes: every scalar of metrics.jsonl (tagged
`train/loss`, `eval/accuracy`, ...), and each audio sample as an audio summary at its sample
rate with a log-magnitude spectrogram image beside it. Written with tensorboardX, which
needs no TensorFlow; metrics.jsonl stays the record the trainer itself reads back.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from audiozoo.audio.spectral import stft

DIRNAME = "tensorboard"
# Dynamic range shown in a spectrogram image, below its loudest bin.
TOP_DB = 80.0
# Seconds between background flushes: a live run shows up in TensorBoard within this long.
FLUSH_SECS = 30


class TensorBoardWriter:
    """Writes event files to workdir/tensorboard; only the main process writes.

    The event file is opened at the first write, so a Trainer that never trains leaves no
    file. A resumed run appends a new event file to the same directory (see `drop_after`).
    """

    def __init__(self, workdir: str | Path, *, enabled: bool = True):
        self.directory = Path(workdir) / DIRNAME
        self.enabled = enabled
        self._purge_step: int | None = None
        self._writer = None

    def drop_after(self, step: int) -> None:
        """A resumed run repeats the steps after its checkpoint: its event file starts with a
        marker that makes TensorBoard drop the older files' events after `step`, as
        metrics.jsonl drops their lines."""
        self._purge_step = step + 1 if step > 0 else None

    def write_scalars(self, step: int, split: str, metrics: dict) -> None:
        """One scalar per numeric metric, tagged `split/name`; lists and None are skipped."""
        if not self.enabled:
            return
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                self._summary_writer().add_scalar(f"{split}/{name}", value, int(step))

    def write_sample(self, step: int, name: str, audio, sample_rate: int) -> None:
        """A sample clip (float in [-1, 1], [samples] or [samples, channels]) as audio
        (`audio/NAME`) and as a log-magnitude spectrogram image (`spectrogram/NAME`)."""
        if not self.enabled:
            return
        audio = np.asarray(audio, np.float32)
        writer = self._summary_writer()
        writer.add_audio(f"audio/{name}", audio, int(step), sample_rate=int(sample_rate))
        image = spectrogram_image(_mono(audio), sample_rate)
        writer.add_image(f"spectrogram/{name}", image, int(step), dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file; a later write opens a new one."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _summary_writer(self):
        if self._writer is None:
            # Imported here so commands that never train do not load tensorboardX.
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(
                str(self.directory), purge_step=self._purge_step, flush_secs=FLUSH_SECS,
                filename_suffix=self._unique_suffix())
            self._purge_step = None  # only the first file after a resume drops old events
        return self._writer

    def _unique_suffix(self) -> str:
        """Event files are named by the second they are opened and written with mode "wb":
        numbering them keeps a run resumed within the same second from overwriting the last."""
        existing = len(list(self.directory.glob("events.out.tfevents.*")))
        return f".{existing:04d}"


def spectrogram_image(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """uint8 RGB [frequency, time, 3] of a mono clip's log-magnitude STFT, low frequencies
    at the bottom, the top TOP_DB decibels coloured with matplotlib's "magma" map."""
    import matplotlib

    n_fft = _fft_size(sample_rate)
    magnitude = np.abs(np.asarray(stft(audio, n_fft, n_fft // 4, pad_mode="constant")))
    decibels = 20.0 * np.log10(np.maximum(magnitude, 1e-10)).T[::-1]
    # A silent clip has no loudest bin worth scaling to: it stays dark instead.
    top = max(decibels.max(), -TOP_DB)
    level = np.clip((decibels - top) / TOP_DB + 1.0, 0.0, 1.0)
    rgba = matplotlib.colormaps["magma"](level)
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def _fft_size(sample_rate: int) -> int:
    """The power of two nearest a 32 ms window (512 at 16 kHz), a usual speech/music view."""
    return 2 ** max(6, round(math.log2(0.032 * sample_rate)))


def _mono(audio: np.ndarray) -> np.ndarray:
    return audio if audio.ndim == 1 else audio.mean(axis=-1)
