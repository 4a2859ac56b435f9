"""Spectral front ends: STFT, mel filter banks, log-mel spectrograms and Kaldi fbank.

Everything that touches a waveform is jax.numpy, jit-able and batched over any leading
axes ([..., samples] -> [..., frames, bins]); filter banks are float32 numpy constants
built once on the host.

Sources the definitions follow:
- `stft`: the centred, reflect-padded STFT of `torch.stft` / `librosa.stft` with a periodic
  window (frames = 1 + samples // hop when centred).
- `inverse_stft`: `librosa.istft`, the least-squares overlap-add of Griffin & Lim (1984,
  "Signal estimation from modified short-time Fourier transform", eq. 6).
- `mel_filterbank`: `librosa.filters.mel` (Slaney's Auditory Toolbox scale and area
  normalisation by default, or the HTK scale 2595 log10(1 + f / 700)); rows are FFT bins,
  columns mel bands, so `power @ bank` maps spectra to mel energies.
- `log_mel_spectrogram`: PANNs (Kong et al. 2020, section 3.1): mel power spectrogram,
  then 10 log10(max(x, 1e-10)) (`librosa.power_to_db` with ref 1).
- `kaldi_fbank`: Kaldi's `compute-fbank-feats` (feat/feature-window.cc, feature-fbank.cc,
  mel-computations.cc) as re-implemented by `torchaudio.compliance.kaldi.fbank`, which is
  what AST (Gong et al. 2021, section 2.1) and the Hugging Face AST feature extractor call.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "KALDI_WINDOWS",
    "hz_to_mel",
    "inverse_stft",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "kaldi_mel_scale",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "istft",
    "stft",
]

MEL_SCALES = ("slaney", "htk")
MEL_NORMS = ("slaney", None)
LOG_KINDS = ("db", "ln")
STFT_WINDOWS = ("hann", "hamming", "rectangular")
KALDI_WINDOWS = ("hanning", "hamming", "povey", "rectangular", "blackman")

# Kaldi floors log arguments at the epsilon of its BaseFloat (float32), and torchaudio keeps
# that constant whatever the input dtype; matching it matters on silent frames.
_KALDI_EPS = float(np.finfo(np.float32).eps)


# ----------------------------------------------------------------------------- STFT


def _as_float(x: ArrayLike) -> jnp.ndarray:
    """Keeps floating inputs' precision; integer inputs become float32."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _periodic_window(name: str, length: int) -> np.ndarray:
    """Periodic ("DFT-even") windows, as torch.hann_window / scipy.signal.get_window use."""
    n = np.arange(length)
    if name == "hann":
        return 0.5 - 0.5 * np.cos(2 * np.pi * n / length)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(2 * np.pi * n / length)
    if name == "rectangular":
        return np.ones(length)
    raise ValueError(f"unknown STFT window {name!r}; valid windows: {', '.join(STFT_WINDOWS)}")


def _stft_window(window: str | ArrayLike, win_length: int, n_fft: int) -> np.ndarray:
    """The analysis window of length n_fft: win_length samples centred, zeros around."""
    if isinstance(window, str):
        w = _periodic_window(window, win_length)
    else:
        w = np.asarray(window, np.float64)
        if w.shape != (win_length,):
            raise ValueError(f"window array has shape {w.shape}, expected ({win_length},)")
    left = (n_fft - win_length) // 2  # librosa.util.pad_center and torch.stft centre it
    return np.pad(w, (left, n_fft - win_length - left)).astype(np.float32)


def _frame(x: jnp.ndarray, frame_length: int, hop: int, num_frames: int) -> jnp.ndarray:
    """[..., samples] -> [..., num_frames, frame_length] by gathering (static indices)."""
    idx = hop * np.arange(num_frames)[:, None] + np.arange(frame_length)[None, :]
    return x[..., idx]


def stft(
    x: ArrayLike,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | ArrayLike = "hann",
    center: bool = True,
    pad_mode: str = "reflect",
) -> jnp.ndarray:
    """Short-time Fourier transform: [..., samples] -> complex [..., frames, n_fft // 2 + 1].

    With `center` the signal is padded by n_fft // 2 on both sides (`pad_mode` as in
    jnp.pad: "reflect" like torch.stft, "constant" like librosa >= 0.10's default), so
    frame t is centred on sample t * hop_length and there are 1 + samples // hop_length
    frames. `window` is "hann" | "hamming" | "rectangular" (periodic) or an array of
    length `win_length` (default n_fft), zero-padded to n_fft at the centre.
    """
    x = _as_float(x)
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length={win_length} must be in [1, n_fft={n_fft}]")
    n = x.shape[-1] + (2 * (n_fft // 2) if center else 0)
    if center and pad_mode == "reflect" and x.shape[-1] <= n_fft // 2:
        raise ValueError(f"reflect padding needs more than n_fft // 2 = {n_fft // 2} samples, "
                         f"got {x.shape[-1]}; use pad_mode='constant' or a longer signal")
    if n < n_fft:
        raise ValueError(f"signal of {x.shape[-1]} samples is shorter than n_fft={n_fft}")
    w = jnp.asarray(_stft_window(window, win_length, n_fft), x.dtype)
    return _stft(x, w, n_fft=n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode)


# Jitted with the configuration static: one compilation per shape instead of one per op,
# which is what eager callers (tests, notebooks, data pipelines) would otherwise pay.
@functools.partial(jax.jit, static_argnames=("n_fft", "hop_length", "center", "pad_mode"))
def _stft(x, w, *, n_fft: int, hop_length: int, center: bool, pad_mode: str) -> jnp.ndarray:
    if center:
        pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        x = jnp.pad(x, pad, mode=pad_mode)
    num_frames = 1 + (x.shape[-1] - n_fft) // hop_length
    frames = _frame(x, n_fft, hop_length, num_frames)
    return jnp.fft.rfft(frames * w, n=n_fft, axis=-1)


def istft(spec: ArrayLike, n_fft: int, hop_length: int, window: str = "hann") -> jnp.ndarray:
    """Inverse of the uncentred `stft(..., center=False)`: complex [..., frames, n_fft // 2 + 1]
    -> [..., hop_length * (frames - 1) + n_fft] by windowed overlap-add.

    The synthesis window is the analysis window divided by the sum of the squared windows
    that overlap each sample (`tf.signal.inverse_stft_window_fn`), so analysis followed by
    synthesis is the identity wherever the frames overlap completely, i.e. everywhere except
    the first and last n_fft - hop_length samples.
    """
    spec = jnp.asarray(spec)
    if spec.shape[-1] != n_fft // 2 + 1:
        raise ValueError(f"spectrogram has {spec.shape[-1]} bins; n_fft={n_fft} needs "
                         f"{n_fft // 2 + 1}")
    if n_fft % hop_length:
        raise ValueError(f"n_fft={n_fft} must be a multiple of hop_length={hop_length}")
    w = _periodic_window(window, n_fft)
    overlap = np.square(w).reshape(-1, hop_length).sum(axis=0)  # per position within a hop
    synthesis = (w / np.tile(overlap, n_fft // hop_length)).astype(np.float32)
    return _istft(spec, jnp.asarray(synthesis), n_fft=n_fft, hop_length=hop_length)


@functools.partial(jax.jit, static_argnames=("n_fft", "hop_length"))
def _istft(spec, w, *, n_fft: int, hop_length: int) -> jnp.ndarray:
    frames = jnp.fft.irfft(spec, n=n_fft, axis=-1) * w
    num_frames = frames.shape[-2]
    idx = hop_length * np.arange(num_frames)[:, None] + np.arange(n_fft)[None, :]
    out = jnp.zeros(frames.shape[:-2] + (hop_length * (num_frames - 1) + n_fft,), frames.dtype)
    return out.at[..., idx].add(frames)


def inverse_stft(
    spec: ArrayLike,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | ArrayLike = "hann",
    center: bool = True,
    length: int | None = None,
) -> jnp.ndarray:
    """Inverse of `stft` with any hop (librosa.istft): complex [..., frames, n_fft // 2 + 1]
    -> [..., length].

    Least-squares overlap-add (Griffin & Lim 1984, eq. 6): each frame's irfft times the
    analysis window is overlap-added and every sample is divided by the sum of the squared
    windows covering it, where that sum exceeds float32's smallest normal number (librosa's
    guard; elsewhere the sample is left as summed). With `center` the n_fft // 2 padded
    samples at the start are dropped. `length` crops or zero-pads the result; by default
    it is hop_length * (frames - 1) when centred (librosa's default; `stft` of
    hop_length * frames - 1 samples also has `frames` frames, so the true length is
    ambiguous) and n_fft + hop_length * (frames - 1) when not. stft then inverse_stft with
    length = the signal's length returns the signal whatever the padding mode, because the
    padding is cropped away. Unlike `istft` the hop need not divide n_fft.
    """
    spec = jnp.asarray(spec)
    if spec.ndim < 2 or spec.shape[-1] != n_fft // 2 + 1:
        raise ValueError(f"spectrogram of shape {spec.shape} is not [..., frames, "
                         f"n_fft // 2 + 1 = {n_fft // 2 + 1}]")
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length={win_length} must be in [1, n_fft={n_fft}]")
    num_frames = spec.shape[-2]
    start = n_fft // 2 if center else 0
    full = n_fft + hop_length * (num_frames - 1)
    if length is None:
        length = full - 2 * start
    w = _stft_window(window, win_length, n_fft).astype(np.float64)
    # The squared-window sum depends only on shapes: built once on the host, as a
    # reciprocal so the device multiplies.
    idx = hop_length * np.arange(num_frames)[:, None] + np.arange(n_fft)[None, :]
    wss = np.zeros(full)
    np.add.at(wss, idx, np.broadcast_to(np.square(w), idx.shape))
    inv = np.where(wss > np.finfo(np.float32).tiny, 1.0 / np.maximum(wss, 1e-300), 1.0)
    return _inverse_stft(spec, jnp.asarray(w, jnp.float32), jnp.asarray(inv, jnp.float32),
                         n_fft=n_fft, hop_length=hop_length, start=start, length=length)


@functools.partial(jax.jit, static_argnames=("n_fft", "hop_length", "start", "length"))
def _inverse_stft(spec, w, inv, *, n_fft: int, hop_length: int, start: int, length: int):
    frames = jnp.fft.irfft(spec, n=n_fft, axis=-1) * w.astype(spec.real.dtype)
    num_frames = frames.shape[-2]
    idx = hop_length * np.arange(num_frames)[:, None] + np.arange(n_fft)[None, :]
    out = jnp.zeros(frames.shape[:-2] + (inv.shape[0],), frames.dtype)
    out = out.at[..., idx].add(frames) * inv.astype(frames.dtype)
    out = out[..., start:start + length]
    pad = length - out.shape[-1]  # a `length` past the last frame: zeros, as librosa
    return jnp.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, pad)]) if pad > 0 else out


# ----------------------------------------------------------------------------- mel scale


def hz_to_mel(f: ArrayLike, scale: str = "slaney") -> np.ndarray:
    """Hz -> mel. "htk": 2595 log10(1 + f / 700). "slaney" (Auditory Toolbox, librosa's
    default): f / (200 / 3) below 1 kHz (so 1 kHz is mel 15), logarithmic above with
    27 mels per factor 6.4."""
    f = np.asarray(f, np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if scale != "slaney":
        raise ValueError(f"unknown mel scale {scale!r}; valid scales: {', '.join(MEL_SCALES)}")
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    linear = f / f_sp
    log = min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log, linear)


def mel_to_hz(m: ArrayLike, scale: str = "slaney") -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    m = np.asarray(m, np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if scale != "slaney":
        raise ValueError(f"unknown mel scale {scale!r}; valid scales: {', '.join(MEL_SCALES)}")
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    linear = f_sp * m
    log = min_log_hz * np.exp(logstep * (np.maximum(m, min_log_mel) - min_log_mel))
    return np.where(m >= min_log_mel, log, linear)


def mel_filterbank(
    sample_rate: float,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: str = "slaney",
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters, float32 [n_fft // 2 + 1, n_mels] (librosa.filters.mel(...).T).

    With n_mels + 2 frequencies f_0 .. f_{n_mels + 1} evenly spaced on the mel `scale`
    from f_min to f_max (default sample_rate / 2), band i rises linearly in Hz from f_i to
    its centre f_{i+1} and falls to f_{i+2}. norm="slaney" scales each triangle to unit area
    (2 / (f_{i+2} - f_i)) so bands keep equal energy per Hz; None keeps peak height 1.
    """
    if norm not in MEL_NORMS:
        raise ValueError(f"unknown mel norm {norm!r}; valid norms: 'slaney' or None")
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2; got f_min={f_min}, "
                         f"f_max={f_max}, sample_rate={sample_rate}")
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2),
                      scale)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]  # [n_mels + 2, bins]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype(np.float32)


def log_mel_spectrogram(
    x: ArrayLike,
    *,
    sample_rate: float,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: str = "slaney",
    norm: str | None = "slaney",
    power: float = 2.0,
    log: str = "db",
    amin: float = 1e-10,
    top_db: float | None = None,
    win_length: int | None = None,
    window: str | ArrayLike = "hann",
    pad_mode: str = "reflect",
) -> jnp.ndarray:
    """Log-mel spectrogram [..., samples] -> [..., frames, n_mels] (PANNs, section 3.1).

    log="db": 10 log10(max(mel, amin)) (PANNs; librosa.power_to_db with ref=1.0);
    log="ln": ln(mel + amin). With `top_db` the dB values are clipped to at most top_db
    below each example's maximum (over its frames and bands; librosa takes the maximum
    over the whole array it is given, which is the same for one example).
    """
    if log not in LOG_KINDS:
        raise ValueError(f"unknown log {log!r}; valid: {', '.join(LOG_KINDS)}")
    spec = stft(x, n_fft, hop_length, win_length, window, True, pad_mode)
    bank = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, scale, norm)
    return _log_mel(spec, bank, power=power, log=log, amin=amin, top_db=top_db)


@functools.partial(jax.jit, static_argnames=("power", "log", "amin", "top_db"))
def _log_mel(spec, bank, *, power: float, log: str, amin: float, top_db: float | None):
    spec = jnp.abs(spec)
    spec = spec if power == 1.0 else spec**power
    mel = jnp.matmul(spec, bank.astype(spec.dtype), precision=jax.lax.Precision.HIGHEST)
    if log == "ln":
        return jnp.log(mel + amin)
    db = 10.0 * jnp.log10(jnp.maximum(mel, amin))
    if top_db is not None:
        db = jnp.maximum(db, jnp.max(db, axis=(-2, -1), keepdims=True) - top_db)
    return db


# ----------------------------------------------------------------------------- Kaldi fbank


def _kaldi_window(name: str, length: int, blackman_coeff: float = 0.42) -> np.ndarray:
    """Kaldi's symmetric windows (feature-window.cc), a = 2 pi / (N - 1)."""
    a = 2.0 * np.pi / (length - 1)
    n = np.arange(length)
    if name == "hanning":
        return 0.5 - 0.5 * np.cos(a * n)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(a * n)
    if name == "povey":  # Kaldi's default: "like hamming but goes to zero at edges"
        return (0.5 - 0.5 * np.cos(a * n)) ** 0.85
    if name == "rectangular":
        return np.ones(length)
    if name == "blackman":
        return blackman_coeff - 0.5 * np.cos(a * n) + (0.5 - blackman_coeff) * np.cos(2 * a * n)
    raise ValueError(f"unknown Kaldi window {name!r}; valid windows: {', '.join(KALDI_WINDOWS)}")


def kaldi_mel_scale(f: ArrayLike) -> np.ndarray:
    """Kaldi's mel scale 1127 ln(1 + f / 700) (the HTK scale in natural log)."""
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)


def kaldi_mel_banks(
    num_bins: int, padded_window_size: int, sample_rate: float, low_freq: float, high_freq: float
) -> np.ndarray:
    """Kaldi's mel banks, float32 [padded_window_size // 2 + 1, num_bins].

    Unlike `mel_filterbank` the triangles are linear in mel, not Hz (mel-computations.cc),
    and the Nyquist bin gets no weight (torchaudio pads that column with zeros).
    """
    if num_bins <= 3:
        raise ValueError(f"Kaldi fbank needs more than 3 mel bins, got num_mel_bins={num_bins}")
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"bad Kaldi frequency range low_freq={low_freq}, high_freq={high_freq} "
                         f"(after high_freq <= 0 -> nyquist + high_freq) for nyquist {nyquist}")
    mel_low, mel_high = kaldi_mel_scale(low_freq), kaldi_mel_scale(high_freq)
    # num_bins + 1 steps: the outer triangles' free edges sit on low_freq and high_freq.
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + delta * np.arange(num_bins)[:, None]
    center, right = left + delta, left + 2.0 * delta
    fft_bin_width = sample_rate / padded_window_size
    mel = kaldi_mel_scale(fft_bin_width * np.arange(padded_window_size // 2))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))  # [num_bins, padded // 2]
    banks = np.pad(banks, ((0, 0), (0, 1)))  # the Nyquist bin
    return banks.T.astype(np.float32)


def _kaldi_frames(x: jnp.ndarray, size: int, shift: int, snip_edges: bool) -> jnp.ndarray:
    """[..., samples] -> [..., frames, size] as Kaldi's ExtractWindow places them."""
    n = x.shape[-1]
    if snip_edges:
        num_frames = 1 + (n - size) // shift
    else:
        # Frames centred on t * shift + shift / 2; the edges are mirrored *including* the
        # edge sample ([2, 1, 0, 0, 1, 2]), which is not jnp.pad's "reflect".
        num_frames = (n + shift // 2) // shift
        pad = size // 2 - shift // 2
        rev = jnp.flip(x, axis=-1)
        if pad > 0:
            x = jnp.concatenate([rev[..., n - pad:], x, rev], axis=-1)
        else:
            x = jnp.concatenate([x[..., -pad:], rev], axis=-1)
    return _frame(x, size, shift, num_frames)


def _log_energy(frames: jnp.ndarray, energy_floor: float) -> jnp.ndarray:
    log_energy = jnp.log(jnp.maximum(jnp.sum(frames**2, axis=-1), _KALDI_EPS))
    if energy_floor == 0.0:
        return log_energy
    return jnp.maximum(log_energy, math.log(energy_floor))


def kaldi_fbank(
    waveform: ArrayLike,
    *,
    sample_rate: float = 16000,
    num_mel_bins: int = 23,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    window: str = "povey",
    dither: float = 0.0,
    preemphasis: float = 0.97,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_energy: bool = False,
    use_log_fbank: bool = True,
    use_power: bool = True,
    snip_edges: bool = True,
    energy_floor: float = 1.0,
    raw_energy: bool = True,
    htk_compat: bool = False,
    blackman_coeff: float = 0.42,
    rng: jax.Array | None = None,
) -> jnp.ndarray:
    """Kaldi filter-bank features [..., samples] -> [..., frames, num_mel_bins (+1)].

    Per frame (torchaudio.compliance.kaldi.fbank order): Gaussian dither (needs `rng`),
    DC removal, raw log energy, pre-emphasis x[j] - p x[j-1] with x[-1] := x[0], the
    symmetric `window`, zero padding to a power of two, |rfft|^2 (or |rfft| when not
    `use_power`), Kaldi mel banks (triangles in 1127 ln(1 + f / 700)), ln with a floor at
    float32 epsilon. With `use_energy` the log energy is the first column (the last with
    `htk_compat`). Defaults are torchaudio's; VTLN warping, subtract_mean and min_duration
    are not implemented.

    Scale: the waveform is used as given. Kaldi's binaries read int16 samples (|x| up to
    32768), torchaudio and AST pass float audio in [-1, 1]; scaling x by c adds 2 ln c to
    every unfloored log-power band, so fbank statistics only transfer between the two
    conventions with that offset. AST's features (and its normalisation stats -4.27 / 4.57)
    are the [-1, 1] convention: `kaldi_fbank(x - x.mean(-1, keepdims=True),
    sample_rate=16000, num_mel_bins=128, window="hanning", dither=0.0, frame_shift_ms=10)`
    reproduces its `fbank(waveform, htk_compat=True, use_energy=False,
    window_type='hanning', num_mel_bins=128, dither=0.0, frame_shift=10)`.
    """
    x = _as_float(waveform)
    # Same float expression as torchaudio, so frame sizes agree at any sample rate.
    shift = int(sample_rate * frame_shift_ms * 0.001)
    size = int(sample_rate * frame_length_ms * 0.001)
    if size < 2 or shift < 1:
        raise ValueError(f"frame_length_ms={frame_length_ms} / frame_shift_ms={frame_shift_ms} "
                         f"give {size} / {shift} samples at {sample_rate} Hz; need >= 2 / >= 1")
    if x.shape[-1] < size:
        raise ValueError(f"waveform of {x.shape[-1]} samples is shorter than one {size}-sample "
                         f"frame ({frame_length_ms} ms at {sample_rate} Hz); pad it first")
    padded = 1 << (size - 1).bit_length() if round_to_power_of_two else size
    if padded % 2:
        raise ValueError(f"the FFT length {padded} must be even; use round_to_power_of_two=True "
                         f"or an even frame length")
    if dither != 0.0 and rng is None:
        raise ValueError(f"dither={dither} needs a PRNG key: pass rng=jax.random.key(...) "
                         f"or set dither=0.0 for deterministic features")
    win = _kaldi_window(window, size, blackman_coeff)
    banks = kaldi_mel_banks(num_mel_bins, padded, sample_rate, low_freq, high_freq)
    return _kaldi_fbank(
        x, rng if dither != 0.0 else None, win.astype(x.dtype), banks.astype(x.dtype),
        shift=shift, snip_edges=snip_edges, dither=dither, remove_dc_offset=remove_dc_offset,
        preemphasis=preemphasis, raw_energy=raw_energy, use_energy=use_energy,
        use_power=use_power, use_log_fbank=use_log_fbank, energy_floor=energy_floor,
        htk_compat=htk_compat)


@functools.partial(jax.jit, static_argnames=(
    "shift", "snip_edges", "dither", "remove_dc_offset", "preemphasis", "raw_energy",
    "use_energy", "use_power", "use_log_fbank", "energy_floor", "htk_compat"))
def _kaldi_fbank(x, rng, win, banks, *, shift: int, snip_edges: bool, dither: float,
                 remove_dc_offset: bool, preemphasis: float, raw_energy: bool, use_energy: bool,
                 use_power: bool, use_log_fbank: bool, energy_floor: float,
                 htk_compat: bool) -> jnp.ndarray:
    """The per-frame pipeline of `kaldi_fbank`; `win` and `banks` are built on the host."""
    size, padded = win.shape[0], 2 * (banks.shape[0] - 1)
    frames = _kaldi_frames(x, size, shift, snip_edges)
    if dither != 0.0:
        frames = frames + dither * jax.random.normal(rng, frames.shape, frames.dtype)
    if remove_dc_offset:
        frames = frames - jnp.mean(frames, axis=-1, keepdims=True)
    if use_energy and raw_energy:  # Kaldi's raw energy: before pre-emphasis and window
        log_energy = _log_energy(frames, energy_floor)
    if preemphasis != 0.0:
        previous = jnp.concatenate([frames[..., :1], frames[..., :-1]], axis=-1)
        frames = frames - preemphasis * previous
    frames = frames * win
    if use_energy and not raw_energy:
        log_energy = _log_energy(frames, energy_floor)  # zero padding adds no energy
    spectrum = jnp.abs(jnp.fft.rfft(frames, n=padded, axis=-1))
    if use_power:
        spectrum = spectrum**2
    mel = jnp.matmul(spectrum, banks, precision=jax.lax.Precision.HIGHEST)
    if use_log_fbank:
        mel = jnp.log(jnp.maximum(mel, _KALDI_EPS))
    if use_energy:
        energy = log_energy[..., None]
        mel = jnp.concatenate([mel, energy] if htk_compat else [energy, mel], axis=-1)
    return mel

