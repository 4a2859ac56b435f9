"""Spectrogram inversion: the Griffin-Lim baseline of a vocoder evaluation.

- `mel_to_linear`: mel spectrogram -> linear-frequency magnitude by non-negative least
  squares per frame, the inversion of `librosa.feature.inverse.mel_to_stft`
  (librosa/feature/inverse.py, librosa/util/_nnls.py): the same starting point, the
  clipped pseudo-inverse, then accelerated projected gradient (FISTA, Beck & Teboulle
  2009, "A fast iterative shrinkage-thresholding algorithm for linear inverse problems")
  run to convergence instead of librosa's L-BFGS-B.
- `griffin_lim`: the fast Griffin-Lim algorithm (Perraudin, Balazs & Sondergaard 2013,
  "A fast Griffin-Lim algorithm", WASPAA) as `librosa.griffinlim` implements it
  (librosa/core/spectrum.py), on `spectral.stft` / `spectral.inverse_stft`.
- `mel_to_audio`: the inverse of the "logmel" `Frontend`: un-normalise, un-log,
  `mel_to_linear`, `griffin_lim` (librosa.feature.inverse.mel_to_audio's recipe).

Everything except building the (host, numpy) pseudo-inverse and step sizes is jitted.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from audiozoo.audio import spectral
from audiozoo.audio.frontend import Frontend

__all__ = ["griffin_lim", "logmel_basis", "mel_to_audio", "mel_to_linear"]

# The log-mel constants the Frontend leaves at `log_mel_spectrogram`'s defaults; read from
# its signature so that the inverse follows if they ever change.
_LOGMEL_DEFAULTS = {name: p.default for name, p in
                    inspect.signature(spectral.log_mel_spectrogram).parameters.items()}


# ----------------------------------------------------------------------------- mel -> linear


def mel_to_linear(
    mel: ArrayLike, mel_basis: ArrayLike, *, power: float = 2.0, n_iter: int = 1000
) -> jnp.ndarray:
    """Mel spectrogram [..., frames, n_mels] -> linear magnitude [..., frames, bins].

    `mel_basis` is [bins, n_mels] as `spectral.mel_filterbank` returns it, so the forward
    model is mel = S^power @ mel_basis with S the STFT magnitude (power 2 for a mel power
    spectrogram, 1 for a magnitude one). Per frame, P = S^power solves the non-negative
    least-squares problem min_{P >= 0} ||P @ mel_basis - mel||^2, and S = P^(1 / power) is
    returned (librosa.feature.inverse.mel_to_stft).

    The problem has fewer equations (n_mels) than unknowns (bins), so its minimisers form
    a set; which one an iterative solver returns depends on where it starts and how it
    moves. Like librosa we start at max(0, mel @ pinv(mel_basis)), the clipped minimum-norm
    least-squares solution, which spreads each band's energy smoothly over its bins.
    `n_iter` FISTA steps then follow, with the per-bin step 1 / (G 1)_j from the
    row sums of G = B B^T (B = mel_basis; G >= 0 elementwise, so diag(G 1) - G is
    diagonally dominant and diag(G 1) majorises G), which converges whatever the filter
    bank's scale.

    n_iter=0 returns the clipped pseudo-inverse itself. That is also what librosa returns
    when its L-BFGS-B stops at its first iterate, which its absolute gradient tolerance
    (pgtol 1e-5 on an objective divided by the number of mel values) makes it do on audio
    at ordinary levels: on the test tones the result misses the mel bands it came from by
    4 to 12 dB on average, where the default n_iter misses them by 0.003 to 0.02 dB
    (tests/test_griffin_lim.py).
    """
    basis = np.asarray(mel_basis, np.float64)
    mel = jnp.asarray(mel)
    if basis.ndim != 2 or mel.ndim < 2 or mel.shape[-1] != basis.shape[1]:
        raise ValueError(f"mel of shape {mel.shape} does not fit a [bins, n_mels] basis of "
                         f"shape {basis.shape}: need mel [..., frames, {basis.shape[-1]}]")
    if power <= 0:
        raise ValueError(f"power={power} must be > 0 (2: power spectrogram, 1: magnitude)")
    if n_iter < 0:
        raise ValueError(f"n_iter={n_iter} must be >= 0")
    row_sums = (basis @ basis.T).sum(axis=1)
    covered = row_sums > 0
    step = np.where(covered, 1.0 / np.maximum(row_sums, 1e-300), 0.0)
    # Bins no band covers (below f_min, above f_max) have zero gradient, so they keep their
    # start value; the SVD's rounding would make that ~1e-8 instead of the exact 0.
    pinv = np.linalg.pinv(basis) * covered
    dtype = mel.dtype if jnp.issubdtype(mel.dtype, jnp.floating) else jnp.float32
    return _mel_to_linear(mel.astype(dtype), jnp.asarray(basis, dtype),
                          jnp.asarray(pinv, dtype), jnp.asarray(step, dtype),
                          power=float(power), n_iter=int(n_iter))


@functools.partial(jax.jit, static_argnames=("power", "n_iter"))
def _mel_to_linear(mel, basis, pinv, step, *, power: float, n_iter: int) -> jnp.ndarray:
    hi = jax.lax.Precision.HIGHEST  # quiet bands sit orders of magnitude below loud ones
    x0 = jnp.maximum(jnp.matmul(mel, pinv, precision=hi), 0.0)

    def fista_step(_, carry):
        x, y, t = carry
        grad = jnp.matmul(jnp.matmul(y, basis, precision=hi) - mel, basis.T, precision=hi)
        x_next = jnp.maximum(y - step * grad, 0.0)
        t_next = (1.0 + jnp.sqrt(1.0 + 4.0 * t * t)) / 2.0
        return x_next, x_next + ((t - 1.0) / t_next) * (x_next - x), t_next

    x, _, _ = jax.lax.fori_loop(0, n_iter, fista_step, (x0, x0, jnp.ones((), mel.dtype)))
    return x if power == 1.0 else x ** (1.0 / power)


# ----------------------------------------------------------------------------- Griffin-Lim


def griffin_lim(
    magnitude: ArrayLike,
    n_fft: int,
    hop_length: int,
    n_iter: int = 60,
    momentum: float = 0.99,
    *,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = True,
    pad_mode: str = "reflect",
    length: int | None = None,
) -> jnp.ndarray:
    """Fast Griffin-Lim: STFT magnitude [..., frames, n_fft // 2 + 1] -> audio [..., length].

    With X_0 = |S| (zero phase: librosa's init=None, so the result is deterministic) and
    c_{-1} = 0, each of the `n_iter` iterations projects onto consistent spectrograms,
    c_n = stft(inverse_stft(X_n)), then puts the target magnitude back on the phase of the
    extrapolated estimate:

        X_{n+1} = |S| * u / (|u| + tiny),   u = c_n - momentum / (1 + momentum) * c_{n-1}.

    This is librosa.griffinlim's form of Perraudin et al.'s t_n = c_n + alpha (c_n -
    c_{n-1}) = (1 + alpha) u: only the phase of t_n is used, so the factor is immaterial.
    momentum 0 is the original algorithm of Griffin & Lim (1984); 0.99 is librosa's
    default and the paper's recommendation. The result is inverse_stft(X_{n_iter}).

    The STFT is `spectral.stft` with `window`, `center` and `pad_mode` (reflect: the
    Frontend's analysis; librosa.griffinlim's default is "constant"). The iterations use
    inverse_stft's default length hop_length * (frames - 1) (centred), whose STFT has
    `frames` frames again; `length` applies to the final synthesis only, so a length of
    hop_length * frames (a frame-rate vocoder's output length) is possible, which librosa,
    applying `length` inside the loop too, cannot do. With length=None the result is
    librosa's.
    """
    magnitude = jnp.asarray(magnitude)
    if magnitude.ndim < 2 or magnitude.shape[-1] != n_fft // 2 + 1:
        raise ValueError(f"magnitude of shape {magnitude.shape} is not [..., frames, "
                         f"n_fft // 2 + 1 = {n_fft // 2 + 1}]")
    if n_iter < 0:
        raise ValueError(f"n_iter={n_iter} must be >= 0")
    if momentum < 0:
        raise ValueError(f"momentum={momentum} must be >= 0 (0: plain Griffin-Lim)")
    if not isinstance(window, str):
        raise ValueError(f"window must be a window name (a static jit argument), got "
                         f"{type(window).__name__}")
    if not jnp.issubdtype(magnitude.dtype, jnp.floating):
        magnitude = magnitude.astype(jnp.float32)
    return _griffin_lim(magnitude, jnp.asarray(momentum, magnitude.dtype), n_fft=n_fft,
                        hop_length=hop_length, n_iter=int(n_iter), win_length=win_length,
                        window=window, center=center, pad_mode=pad_mode, length=length)


@functools.partial(jax.jit, static_argnames=(
    "n_fft", "hop_length", "n_iter", "win_length", "window", "center", "pad_mode", "length"))
def _griffin_lim(magnitude, momentum, *, n_fft: int, hop_length: int, n_iter: int,
                 win_length: int | None, window: str, center: bool, pad_mode: str,
                 length: int | None) -> jnp.ndarray:
    analysis = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window)
    tiny = jnp.finfo(magnitude.dtype).tiny  # librosa's eps: only guards division by zero
    decay = momentum / (1.0 + momentum)

    def iteration(_, carry):
        spec, previous = carry
        rebuilt = spectral.stft(spectral.inverse_stft(spec, center=center, **analysis),
                                center=center, pad_mode=pad_mode, **analysis)
        u = rebuilt - decay * previous
        return magnitude * (u / (jnp.abs(u) + tiny)), rebuilt

    spec = magnitude.astype(jnp.result_type(magnitude.dtype, jnp.complex64))
    spec, _ = jax.lax.fori_loop(0, n_iter, iteration, (spec, jnp.zeros_like(spec)))
    return spectral.inverse_stft(spec, center=center, length=length, **analysis)


# ----------------------------------------------------------------------------- log-mel -> audio


def logmel_basis(frontend: Frontend) -> np.ndarray:
    """The mel filter bank [n_fft // 2 + 1, n_mels] of a "logmel" frontend's features."""
    return spectral.mel_filterbank(
        frontend.sample_rate, frontend.n_fft, frontend.n_mels, frontend.f_min,
        frontend.f_max if frontend.f_max > 0 else None, frontend.mel_scale,
        None if frontend.mel_norm == "none" else frontend.mel_norm)


def _logmel_power(frontend: Frontend) -> float:
    """The exponent p of the |X|^p the front end's mel bands sum."""
    return float(getattr(frontend, "power", _LOGMEL_DEFAULTS["power"]))


def _undo_log(features: jnp.ndarray, log: str) -> jnp.ndarray:
    """Inverts log_mel_spectrogram's log. dB: 10 log10(max(mel, amin)) -> mel exactly,
    except that floored values come back as amin. ln: ln(mel + amin) -> mel, >= 0."""
    amin = _LOGMEL_DEFAULTS["amin"]
    if log == "db":
        return jnp.power(10.0, features / 10.0)
    if log == "ln":
        return jnp.maximum(jnp.exp(features) - amin, 0.0)
    raise ValueError(f"unknown log {log!r}; valid: {', '.join(spectral.LOG_KINDS)}")


def mel_to_audio(
    log_mel_features: ArrayLike,
    frontend: Frontend,
    *,
    n_iter: int = 60,
    momentum: float = 0.99,
    nnls_iter: int = 1000,
) -> jnp.ndarray:
    """Inverts a "logmel" Frontend: features [..., frames, n_mels] (as `frontend(audio)`
    returns them, normalised) -> float32 audio [..., frames * hop_length].

    Each step of the front end is undone in reverse: x * std + mean (the normalisation;
    mean 0 and std 1 make it the identity, as in the front end), the log (`_undo_log`),
    the mel projection of |X|^power (`mel_to_linear` with the front end's `power`: 2, a
    power spectrogram, PANNs; 1, a magnitude one; a Frontend without that field uses
    `log_mel_spectrogram`'s default, 2), and the phase,
    which the features never had (`griffin_lim` with `n_iter`, `momentum`, and the front
    end's periodic Hann window, centring and reflect padding).

    Length: frames * hop_length samples. The centred front end gives 1 + N // hop_length
    frames for N samples, so the source had between hop_length * (frames - 1) and
    hop_length * frames - 1 samples; frames * hop_length covers any of them (1 to
    hop_length samples past its end) and is what a frame-rate vocoder that upsamples each
    frame by hop_length generates, so the baseline and the vocoder align sample for sample.
    The metrics of `spectral_distance` compare over the common length.

    The features must be the front end's own frames: frames that a num_frames > 0 front
    end zero-padded (0 dB, a loud flat spectrum once un-logged) cannot be recognised and
    are inverted like the others; crop them first.
    """
    if frontend.kind != "logmel":
        raise ValueError(f"mel_to_audio inverts a 'logmel' frontend, got kind {frontend.kind!r}")
    feats = jnp.asarray(log_mel_features, jnp.float32)
    if feats.ndim not in (2, 3) or feats.shape[-1] != frontend.n_mels or feats.shape[-2] < 1:
        raise ValueError(f"log-mel features of shape {feats.shape} are not [frames, "
                         f"{frontend.n_mels}] or [batch, frames, {frontend.n_mels}]")
    mel = _undo_log(feats * frontend.std + frontend.mean, frontend.log)
    magnitude = mel_to_linear(mel, logmel_basis(frontend), power=_logmel_power(frontend),
                              n_iter=nnls_iter)
    return griffin_lim(magnitude, frontend.n_fft, frontend.hop_length, n_iter, momentum,
                       length=feats.shape[-2] * frontend.hop_length)
