"""Evaluating a mel vocoder on held-out audio, against Griffin-Lim from the same features.

For each clip, its log-mel frames (the vocoder's own front end) are turned back into audio
twice: by the trained WaveNet vocoder (copy synthesis through the ring-buffer generator) and
by Griffin-Lim (Griffin & Lim 1984; the fast variant of Perraudin et al. 2013, as librosa's
`feature.inverse.mel_to_audio` does it: `audiozoo.audio.griffin_lim.mel_to_audio`). Both are
scored against the original over the clip's length with

- log-mel distance: the mean absolute difference of the log-mel features in dB
  (`audiozoo.audio.spectral_distance.log_mel_distance`, with the vocoder's front end), and
- spectral convergence: || |S| - |S^| ||_F / || |S| ||_F of the STFT magnitudes (Arik et
  al. 2019; `spectral_distance.spectral_convergence`, with the front end's n_fft and hop),
- the log-mel distance again at a resolution neither method was given (`fine_frontend`: 4x
  the FFT, 2x the hop, 2x the mel bands). Griffin-Lim fits its phase to exactly the frames
  it inverts, so at their own resolution it scores close to 0 by construction; at another
  one, its phase errors show (on held-out instruments its distance rose from about 1 dB to
  about 5, experiments/wavenet/README.md), as multi-resolution STFT losses (Yamamoto et al.
  2020, section 2.2) are meant to catch.

Lower is better for both. The report holds every clip's scores and the means.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from audiozoo.audio import griffin_lim, spectral_distance
from audiozoo.audio.io import write_audio

METHODS = ("wavenet", "griffin_lim")


def evaluate_vocoder(task, state, clips, names, *, batch_size: int = 8, seed: int = 0,
                     griffin_lim_iters: int = 60, audio_dir: str | Path | None = None,
                     **sampling) -> dict:
    """The report of `task` (a VocoderTask) with `state` on clips (float audio [time] at
    the task's rate, named by `names`); with `audio_dir`, the two reconstructions of each
    clip are written there as NAME_wavenet.wav and NAME_griffin_lim.wav."""
    if not clips:
        raise ValueError("no clips to evaluate the vocoder on")
    rows, seconds = [], {method: 0.0 for method in METHODS}
    for start in range(0, len(clips), batch_size):
        batch = [np.asarray(c, np.float32) for c in clips[start:start + batch_size]]
        outputs = _reconstruct(task, state, batch, jax.random.key(seed + start),
                               griffin_lim_iters, seconds, sampling)
        for i, clip in enumerate(batch):
            name = names[start + i]
            rows.append({"name": name, "seconds": len(clip) / task.sample_rate,
                         **{method: _scores(task, clip, outputs[method][i]) for method in METHODS}})
            if audio_dir is not None:
                for method in METHODS:
                    write_audio(Path(audio_dir) / f"{_stem(name)}_{method}.wav",
                                outputs[method][i], task.sample_rate)
    return {"clips": len(rows), "audio_seconds": sum(r["seconds"] for r in rows),
            "mean": {method: _mean(rows, method) for method in METHODS},
            "compute_seconds": seconds, "per_clip": rows}


def _reconstruct(task, state, batch, rng, griffin_lim_iters, seconds, sampling) -> dict:
    """{"wavenet": [audio], "griffin_lim": [audio]} for a batch of clips, each as long as
    its clip; adds each method's wall time to `seconds`."""
    features, lengths = task.batch_inputs(clips=batch)
    started = time.perf_counter()
    vocoded = task.vocode(state.params, features, rng, num_samples=max(lengths), **sampling)
    seconds["wavenet"] += time.perf_counter() - started
    started = time.perf_counter()
    inverted = np.asarray(griffin_lim.mel_to_audio(features, task.frontend, n_iter=griffin_lim_iters))
    seconds["griffin_lim"] += time.perf_counter() - started
    return {"wavenet": [row[:n] for row, n in zip(vocoded, lengths)],
            "griffin_lim": [row[:n] for row, n in zip(inverted, lengths)]}


def fine_frontend(frontend):
    """The vocoder's front end at 4x the FFT size, 2x the hop and 2x the mel bands."""
    return dataclasses.replace(frontend, n_fft=4 * frontend.n_fft, hop_length=2 * frontend.hop_length,
                               n_mels=2 * frontend.n_mels)


def _scores(task, reference: np.ndarray, estimate: np.ndarray) -> dict:
    fe, fine = task.frontend, fine_frontend(task.frontend)
    distance = spectral_distance.log_mel_distance
    # A clip shorter than half the finer FFT has no finer frames: NaN, left out of the mean.
    long_enough = min(len(reference), len(estimate)) > fine.n_fft // 2
    return {"log_mel_distance_db": float(distance(reference, estimate, fe)),
            "spectral_convergence": float(spectral_distance.spectral_convergence(
                reference, estimate, fe.n_fft, fe.hop_length)),
            "fine_log_mel_distance_db": float(distance(reference, estimate, fine))
            if long_enough else float("nan")}


def _mean(rows: list[dict], method: str) -> dict:
    keys = rows[0][method].keys()
    # A silent reference has no spectral convergence (NaN): averaged over the others.
    return {key: float(np.nanmean([r[method][key] for r in rows])) for key in keys}


def _stem(name: str) -> str:
    return Path(name).with_suffix("").as_posix().replace("/", "_")


def format_table(report: dict) -> str:
    """The means as a small text table, one row per method."""
    lines = [f"{'':12} {'log-mel dist (dB)':>18} {'spectral conv.':>15} "
             f"{'finer log-mel (dB)':>19} {'compute (s)':>12}"]
    for method in METHODS:
        mean = report["mean"][method]
        lines.append(f"{method:12} {mean['log_mel_distance_db']:18.3f} "
                     f"{mean['spectral_convergence']:15.4f} {mean['fine_log_mel_distance_db']:19.3f} "
                     f"{report['compute_seconds'][method]:12.1f}")
    return "\n".join(lines)
