"""Streaming a long generation to audio files, chunk by chunk.

The generator carries its ring buffers from chunk to chunk, so memory stays bounded by one
chunk of codes whatever the length (the only per-sample array kept is the upsampled local
conditioning, if the model has one). Each chunk is appended to one file per batch row whose
WAV header is rewritten after every write: if the run stops, by Ctrl-C or otherwise, every
file is a valid clip of what was generated so far.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import numpy as np
from tqdm import tqdm

from audiozoo.audio.io import AudioStreamWriter
from audiozoo.generation.fast import Generator
from audiozoo.interrupt import stop_requested


def stream_to_files(gen: Generator, paths: Sequence[str | os.PathLike],
                    to_audio: Callable[[np.ndarray], np.ndarray], sample_rate: int, *,
                    chunk_size: int, head: np.ndarray | None = None,
                    lengths: Sequence[int] | None = None,
                    progress: bool = True) -> tuple[int, bool]:
    """Writes gen's samples for row i to paths[i]; returns (samples per file, interrupted).

    to_audio maps codes [batch, n] to float audio [batch, n]; head, audio [batch, m], is
    written first (e.g. the prime being continued). With `lengths`, file i stops at
    lengths[i] samples (rows of a batch padded to a common length), and holds
    min(lengths[i], the returned count). A KeyboardInterrupt stops the run after
    the last complete chunk instead of propagating, so the caller can report it; so does a
    Ctrl-C deferred by `audiozoo.interrupt.graceful_interrupt`.
    """
    if len(paths) != gen.code.shape[0]:
        raise ValueError(f"{len(paths)} output paths for a batch of {gen.code.shape[0]}")
    with ExitStack() as stack:
        writers = [stack.enter_context(AudioStreamWriter(p, sample_rate)) for p in paths]
        limits = [None] * len(writers) if lengths is None else list(lengths)
        written = 0

        def write(audio):
            nonlocal written
            _write_rows(writers, audio, written, limits)
            written += audio.shape[1]

        if head is not None:
            write(head)
        bar = stack.enter_context(tqdm(total=gen.num_steps, unit="sample", unit_scale=True,
                                       disable=not progress, desc="generating"))
        try:
            for codes in gen.chunks(chunk_size):
                write(to_audio(np.asarray(codes)))
                bar.update(codes.shape[1])
                if stop_requested():
                    return written, True
        except KeyboardInterrupt:
            return written, True
        return written, False


def _write_rows(writers, audio, start: int, limits) -> None:
    """Row i of audio (samples start.. of the clip) to writer i, up to limits[i] samples."""
    for writer, row, limit in zip(writers, audio, limits):
        if limit is None or start < limit:
            writer.write(row if limit is None else row[:limit - start])
