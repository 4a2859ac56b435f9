"""Spectral distances between a reference signal and an estimate of it (vocoder evaluation).

- `log_mel_distance`: mean absolute difference of log-mel spectrograms in dB, the L1
  log-mel error that vocoders are trained and validated on (HiFi-GAN, Kong et al. 2020,
  section 2.3 "Mel-Spectrogram Loss"; the log STFT-magnitude loss of Parallel WaveGAN,
  Yamamoto et al. 2020, section 2.2, on mel bands), on a "logmel" `Frontend`'s features.
- `spectral_convergence`: || |S_ref| - |S_est| ||_F / || |S_ref| ||_F of Arik, Jun &
  Diamos 2019 ("Fast spectrogram inversion using multi-head convolutional neural
  networks", IEEE SPL), the spectral-convergence term of Parallel WaveGAN's
  multi-resolution STFT loss (Yamamoto et al. 2020, section 2.2; kan-bayashi/
  ParallelWaveGAN, parallel_wavegan/losses/stft_loss.py `SpectralConvergengeLoss`).

Both take [samples] or [batch, samples] float signals (the same layout for both), compare
the first min(len(reference), len(estimate)) samples (a vocoder and a Griffin-Lim
baseline give frames * hop samples, the source a few fewer), and return one value per
example as float64 numpy: shape [] for [samples] inputs, [batch] otherwise. They run on
the host and check their inputs: NaN or infinite samples, empty signals, different
layouts or batch sizes, and different sample rates (when given) are ValueErrors.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from audiozoo.audio import spectral
from audiozoo.audio.frontend import Frontend

__all__ = ["log_mel_distance", "spectral_convergence"]


def _check_rates(sample_rates: tuple[int, int] | None, expected: int | None = None) -> None:
    """`sample_rates` = (reference rate, estimate rate), or None when the caller vouches."""
    if sample_rates is None:
        return
    ref_rate, est_rate = sample_rates
    if ref_rate != est_rate:
        raise ValueError(f"reference at {ref_rate} Hz and estimate at {est_rate} Hz: resample "
                         f"one of them first; spectra at different rates are not comparable")
    if expected is not None and ref_rate != expected:
        raise ValueError(f"signals at {ref_rate} Hz but the frontend expects {expected} Hz: "
                         f"its mel bands would sit at the wrong frequencies")


def _as_signal(x: ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):  # jnp's knows bfloat16
        raise ValueError(f"{name} must be float audio in [-1, 1], got dtype {x.dtype}")
    x = x.astype(np.float32)  # the front ends' precision; an overflow shows up as inf
    if x.ndim not in (1, 2):
        raise ValueError(f"{name} of shape {x.shape} is not [samples] or [batch, samples]")
    if x.size == 0:
        raise ValueError(f"{name} of shape {x.shape} is empty")
    bad = ~np.isfinite(x)
    if bad.any():
        where = "" if x.ndim == 1 else f" in examples {sorted(set(np.nonzero(bad)[0].tolist()))}"
        raise ValueError(f"{name} has {int(bad.sum())} NaN or infinite samples{where}")
    return x


def _paired(reference: ArrayLike, estimate: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both signals checked and cropped to their common length."""
    ref, est = _as_signal(reference, "reference"), _as_signal(estimate, "estimate")
    if ref.shape[:-1] != est.shape[:-1]:
        raise ValueError(f"reference {ref.shape} and estimate {est.shape} differ in layout or "
                         f"batch size; pass both as [samples] or both as [batch, samples]")
    n = min(ref.shape[-1], est.shape[-1])
    return ref[..., :n], est[..., :n]


def log_mel_distance(
    reference: ArrayLike,
    estimate: ArrayLike,
    frontend: Frontend,
    *,
    sample_rates: tuple[int, int] | None = None,
) -> np.ndarray:
    """Mean over frames t and mel bands m of |L_ref[t, m] - L_est[t, m]|, in dB, per example.

    L = frontend.unnormalised(x): the log-mel features of a "logmel" Frontend before
    (x - mean) / std, so the value is in dB whatever the dataset statistics. log="db" is
    10 log10(max(mel, 1e-10)) already; log="ln" features ln(mel + 1e-10) are converted by
    10 / ln 10. num_frames is ignored (set to 0) so the whole common length counts and
    zero-padded frames cannot dilute the mean. Symmetric in its two signals; scaling one
    signal by c shifts every unfloored band by 20 log10 |c| dB (10 log10 |c| for a front
    end whose mel bands sum |X| rather than |X|^2).

    `sample_rates`: (reference rate, estimate rate) when the caller knows them; they must
    agree with each other and with frontend.sample_rate.
    """
    if frontend.kind != "logmel":
        raise ValueError(f"log_mel_distance needs a 'logmel' frontend, got {frontend.kind!r}")
    _check_rates(sample_rates, frontend.sample_rate)
    ref, est = _paired(reference, estimate)
    features = dataclasses.replace(frontend, num_frames=0).unnormalised
    # One call for both signals: one compilation and one device round trip.
    both = np.asarray(features(np.stack([ref, est])), np.float64)
    diff = np.abs(both[0] - both[1])
    if frontend.log == "ln":
        diff *= 10.0 / math.log(10.0)
    return diff.mean(axis=(-2, -1))


def spectral_convergence(
    reference: ArrayLike,
    estimate: ArrayLike,
    n_fft: int,
    hop_length: int,
    *,
    win_length: int | None = None,
    window: str = "hann",
    sample_rates: tuple[int, int] | None = None,
) -> np.ndarray:
    """|| |S_ref| - |S_est| ||_F / || |S_ref| ||_F per example, the Frobenius norms over
    frames and bins of `spectral.stft` magnitudes (centred, reflect-padded, periodic
    `window`; ParallelWaveGAN's torch.stft has the same conventions).

    0 for identical magnitudes (so for x and -x too), 1 for a silent estimate, |1 - c| for
    an estimate c * reference. Not symmetric: the reference's energy normalises. NaN for a
    silent reference, where the ratio is undefined (ParallelWaveGAN divides by zero there
    as well); average with np.nanmean or drop such examples. Magnitudes are not floored
    (ParallelWaveGAN floors them for its gradients, at |S| >= 1e-9 or |S|^2 >= 1e-7
    depending on the version, which would move a silent estimate's score off 1) and the
    norms are per example (its versions take them per frame or over the whole batch).

    `sample_rates`: (reference rate, estimate rate) when the caller knows them; they must
    agree.
    """
    _check_rates(sample_rates)
    ref, est = _paired(reference, estimate)
    spec = spectral.stft(np.stack([ref, est]), n_fft, hop_length, win_length, window)
    mags = np.abs(np.asarray(spec)).astype(np.float64)
    num = np.sqrt(np.sum(np.square(mags[0] - mags[1]), axis=(-2, -1)))
    den = np.sqrt(np.sum(np.square(mags[0]), axis=(-2, -1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
