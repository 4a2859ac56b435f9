"""Sinc band-pass convolution: a first layer whose filters have only two parameters each.

Ravanelli & Bengio 2018, "Speaker Recognition from Raw Waveform with SincNet", arXiv
1808.00158, section 2 (Eq. 3-7): each filter is the difference of two windowed sinc low-pass
filters, g[n] = 2 f2 sinc(2 pi f2 n) - 2 f1 sinc(2 pi f1 n), with learned cut-offs
f1 = min_low + |f1_raw| and f2 = f1 + min_band + |f2_raw - f1_raw|, a Hamming window, and
cut-offs initialised evenly on the mel scale.

The parametrisation follows the authors' `SincConv_fast` exactly, so weights port one to one:
raw parameters are stored in Hz (`low_hz_`, `band_hz_`); the initial cut-offs are mel-spaced
between 30 Hz and sample_rate / 2 - (min_low_hz + min_band_hz); the high cut-off is clipped
to [min_low_hz, sample_rate / 2]; every filter is divided by 2 * band, so its centre tap is 1;
the window is 0.54 - 0.46 cos(2 pi n / kernel_size) over n = linspace(0, kernel_size / 2 - 1,
kernel_size // 2), mirrored around the (unwindowed) centre tap.

The guarantees low >= min_low_hz, high - low >= min_band_hz and high <= sample_rate / 2 hold
while |low_hz_| <= sample_rate / 2 - min_low_hz - min_band_hz (as in the reference, the low
cut-off itself is not clipped; above that the band shrinks and at band 0 the filter is 0 / 0).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from audiozoo.audio.spectral import hz_to_mel, mel_to_hz
from audiozoo.nn.convolution import conv_general_dilated

# Lowest initial cut-off of the mel-spaced bank, in Hz (the reference's value).
INIT_LOW_HZ = 30.0


def mel_init(num_filters: int, sample_rate: float, min_low_hz: float,
             min_band_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Initial raw (low_hz_, band_hz_): num_filters + 1 mel-spaced points, their left ends and
    their differences, so the initial bands tile [30 Hz, top] edge to edge before the minimums
    are added."""
    top = sample_rate / 2 - (min_low_hz + min_band_hz)
    if num_filters < 1 or top <= INIT_LOW_HZ:
        raise ValueError(
            f"mel init needs num_filters >= 1 (got {num_filters}) and sample_rate / 2 - "
            f"(min_low_hz + min_band_hz) = {top} above {INIT_LOW_HZ} Hz"
        )
    # The reference spaces the bank on the HTK mel scale, 2595 log10(1 + f / 700).
    mels = np.linspace(hz_to_mel(INIT_LOW_HZ, "htk"), hz_to_mel(top, "htk"), num_filters + 1)
    hz = mel_to_hz(mels, "htk")
    return hz[:-1].astype(np.float32), np.diff(hz).astype(np.float32)


def half_window(kernel_size: int) -> np.ndarray:
    """The left half of the reference's Hamming window (kernel_size // 2 taps, edge first)."""
    n = np.linspace(0.0, kernel_size / 2 - 1, kernel_size // 2)
    return (0.54 - 0.46 * np.cos(2 * np.pi * n / kernel_size)).astype(np.float32)


def cutoffs(low_hz_, band_hz_, *, sample_rate: float = 16000, min_low_hz: float = 50.0,
            min_band_hz: float = 50.0) -> tuple[jax.Array, jax.Array]:
    """Effective (low, high) cut-offs in Hz from the raw parameters, each [num_filters]."""
    low = min_low_hz + jnp.abs(low_hz_)
    high = jnp.clip(low + min_band_hz + jnp.abs(band_hz_), min_low_hz, sample_rate / 2)
    return low, high


# Jitted: one compile per shape instead of one per elementwise op when called eagerly (the
# plot, tests); inside a traced model it simply inlines.
@functools.partial(jax.jit, static_argnames=("kernel_size", "sample_rate", "min_low_hz",
                                             "min_band_hz"))
def sinc_filters(low_hz_, band_hz_, kernel_size: int = 251, *, sample_rate: float = 16000,
                 min_low_hz: float = 50.0, min_band_hz: float = 50.0):
    """Band-pass kernels [kernel_size, 1, num_filters] (flax WIO layout) and (low, high) in Hz.

    The sinc difference is expanded and simplified as in the reference (no 0/0 at the centre):
    for a tap t = k / sample_rate, k != 0, 2 f2 sinc(2 pi f2 t) - 2 f1 sinc(2 pi f1 t) =
    (sin(2 pi f2 t) - sin(2 pi f1 t)) / (pi t), and the centre tap is its limit 2 (f2 - f1).
    """
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size={kernel_size} must be odd and >= 3: sinc filters are "
                         "symmetric around a centre tap")
    low, high = cutoffs(low_hz_, band_hz_, sample_rate=sample_rate, min_low_hz=min_low_hz,
                        min_band_hz=min_band_hz)
    band = high - low
    half = (kernel_size - 1) // 2
    # 2 pi t for the left half of the taps, t = -half / sr, ..., -1 / sr.
    omega_t = jnp.asarray(2 * np.pi * np.arange(-half, 0) / sample_rate, jnp.float32)
    left = (jnp.sin(high[:, None] * omega_t) - jnp.sin(low[:, None] * omega_t)) / (omega_t / 2)
    left = left * half_window(kernel_size)
    centre = 2 * band[:, None]
    taps = jnp.concatenate([left, centre, left[:, ::-1]], axis=1) / (2 * band[:, None])
    return taps.T[:, None, :], (low, high)


class SincConv(nn.Module):
    """Valid, stride-1 convolution of a mono signal [batch, time] or [batch, time, 1] with
    `out_channels` learned sinc band-pass filters -> [batch, time - kernel_size + 1, out]."""

    out_channels: int = 80
    kernel_size: int = 251
    sample_rate: int = 16000
    min_low_hz: float = 50.0
    min_band_hz: float = 50.0
    dtype: Any = jnp.float32  # of the convolution; the filters are built in float32

    def setup(self):
        low, band = mel_init(self.out_channels, self.sample_rate, self.min_low_hz,
                             self.min_band_hz)
        # The mel init is deterministic: the rng is not used.
        self.low_hz_ = self.param("low_hz_", lambda _rng: jnp.asarray(low))
        self.band_hz_ = self.param("band_hz_", lambda _rng: jnp.asarray(band))

    def filters(self):
        """([kernel_size, 1, out_channels] kernel, (low, high) cut-offs in Hz)."""
        return sinc_filters(self.low_hz_, self.band_hz_, self.kernel_size,
                            sample_rate=self.sample_rate, min_low_hz=self.min_low_hz,
                            min_band_hz=self.min_band_hz)

    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3 or x.shape[-1] != 1:
            raise ValueError(f"SincConv takes a mono signal [batch, time] or [batch, time, 1], "
                             f"got shape {x.shape}")
        if x.shape[1] < self.kernel_size:
            raise ValueError(f"input of {x.shape[1]} samples is shorter than the sinc kernel "
                             f"({self.kernel_size} taps)")
        # The taps are computed from the float32 cut-offs (sin of large phases), then rounded.
        kernel, _ = self.filters()
        return conv_general_dilated(
            x.astype(self.dtype), kernel.astype(self.dtype), window_strides=(1,), padding="VALID",
            dimension_numbers=("NWC", "WIO", "NWC"),
        )
