"""SincNet: a speaker classifier on raw waveform whose first layer is a learned sinc filterbank.

Ravanelli & Bengio 2018, "Speaker Recognition from Raw Waveform with SincNet", arXiv
1808.00158. Section 2 (the sinc band-pass layer, `audiozoo.nn.sinc`) and the setup of
section 4 (the architecture): 200 ms chunks at 16 kHz -> layer norm -> 80 sinc filters of 251
taps -> |.| -> max-pool 3 -> layer norm -> LeakyReLU(0.2) -> 2 x (60 filters of 5 taps ->
max-pool 3 -> layer norm -> LeakyReLU) -> layer norm -> 3 x (dense 2048 -> batch norm ->
LeakyReLU) -> softmax classifier. RMSprop lr 1e-3; TIMIT sentence-level speaker error 0.85%,
LibriSpeech 0.96%.

Details follow the authors' released TIMIT recipe (cfg/SincNet_TIMIT.cfg, dnn_models.py):
- their layer norm is gamma * (x - mean) / (std + 1e-6) + beta with the unbiased std, and in
  the conv stack it normalises each channel over time with gamma, beta of shape [time,
  channels]: the model is tied to the chunk length it was initialised with;
- |.| follows the sinc layer only, and all three conv layers end in LeakyReLU(0.2);
- dense layers keep their bias even before batch norm; dense weights start uniform in
  +-sqrt(0.01 / (fan_in + fan_out)) with zero bias, conv layers keep PyTorch's Conv1d default;
- the conv output is flattened channel-major ([batch, channels, time]) so weights port as is.
Unused modules that the reference builds but never calls (a batch norm per conv layer, a layer
norm per dense layer) are left out, so parameter counts are those of the computation.
Batch norm uses flax momentum 0.9 (the reference: PyTorch momentum 0.05, i.e. flax 0.95).
`features` is the last hidden layer's output, the paper's d-vector for speaker verification.
`filter_responses` gives the learned filters' magnitude responses (the paper's section 5.1
filter analysis); `audiozoo.plots.plot_filter_responses` draws them.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from audiozoo.nn.convolution import Conv
from audiozoo.nn.dense import Dense
from audiozoo.nn.pooling import window_max
from audiozoo.nn.sinc import SincConv, sinc_filters

# Dense init of the reference: U(+-sqrt(0.01 / (fan_in + fan_out))) = variance scaling over
# fan_avg = (fan_in + fan_out) / 2 with scale s: limit sqrt(3 s / fan_avg) -> s = 0.01 / 6.
_dense_init = nn.initializers.variance_scaling(0.01 / 6, "fan_avg", "uniform")
# PyTorch Conv1d default: kernel and bias U(+-1 / sqrt(fan_in)).
_conv_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def _uniform_bias(fan_in: int):
    limit = 1 / math.sqrt(fan_in)
    return lambda rng, shape, dtype=jnp.float32: jax.random.uniform(rng, shape, dtype,
                                                                    -limit, limit)


class StdLayerNorm(nn.Module):
    """The reference's layer norm: gamma * (x - mean) / (std + epsilon) + beta, unbiased std
    over `axis`, and per-element gamma, beta over all non-batch axes. Computed in float32,
    returned in `dtype`."""

    axis: int = -1
    epsilon: float = 1e-6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = x.shape[1:]
        if self.has_variable("params", "scale"):
            expected = self.get_variable("params", "scale").shape
            if expected != shape:
                raise ValueError(
                    f"{self.name}: input shape {shape} per example, but the model was "
                    f"initialised for {expected}; SincNet's layer norms are tied to the chunk "
                    "length used at init (200 ms = 3200 samples at 16 kHz in the paper)"
                )
        scale = self.param("scale", nn.initializers.ones, shape)
        bias = self.param("bias", nn.initializers.zeros, shape)
        x = x.astype(jnp.float32)
        mean = x.mean(self.axis, keepdims=True)
        std = jnp.std(x, axis=self.axis, ddof=1, keepdims=True)
        return (scale * (x - mean) / (std + self.epsilon) + bias).astype(self.dtype)


class SincNet(nn.Module):
    """SincNet speaker classifier (see the module docstring): x [batch, samples] in [-1, 1]."""

    input_kind: ClassVar[str] = "waveform"

    num_classes: int = 462
    sample_rate: int = 16000
    sinc_filters: int = 80
    sinc_kernel_size: int = 251
    min_low_hz: float = 50.0
    min_band_hz: float = 50.0
    conv_features: Sequence[int] = (60, 60)
    conv_kernel_sizes: Sequence[int] = (5, 5)
    # One per conv layer, the sinc layer first.
    pool_sizes: Sequence[int] = (3, 3, 3)
    dnn_features: Sequence[int] = (2048, 2048, 2048)
    negative_slope: float = 0.2
    conv_dropout: float = 0.0
    dnn_dropout: float = 0.0
    input_layer_norm: bool = True
    dnn_input_layer_norm: bool = True
    layer_norm_epsilon: float = 1e-6
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32

    def setup(self):
        self._check_fields()
        eps, dtype = self.layer_norm_epsilon, self.dtype
        self.input_norm = StdLayerNorm(-1, eps, dtype) if self.input_layer_norm else None
        self.sinc = SincConv(self.sinc_filters, self.sinc_kernel_size, self.sample_rate,
                             self.min_low_hz, self.min_band_hz, dtype)
        in_channels = (self.sinc_filters, *self.conv_features[:-1])
        self.convs = [
            Conv(f, (k,), padding="VALID", kernel_init=_conv_init,
                 bias_init=_uniform_bias(c * k), dtype=dtype)
            for f, k, c in zip(self.conv_features, self.conv_kernel_sizes, in_channels)
        ]
        # Normalise each channel over time, as the reference does ([batch, time, channels]).
        self.conv_norms = [StdLayerNorm(1, eps, dtype) for _ in self.pool_sizes]
        self.conv_drop = nn.Dropout(self.conv_dropout)
        self.dnn_input_norm = StdLayerNorm(-1, eps, dtype) if self.dnn_input_layer_norm else None
        self.dense = [Dense(f, kernel_init=_dense_init, dtype=dtype) for f in self.dnn_features]
        self.batch_norms = [nn.BatchNorm(momentum=0.9, epsilon=1e-5, dtype=dtype)
                            for _ in self.dnn_features]
        self.dnn_drop = nn.Dropout(self.dnn_dropout)
        self.classifier = Dense(self.num_classes, kernel_init=_dense_init, dtype=dtype)

    def _check_fields(self):
        if len(self.conv_features) != len(self.conv_kernel_sizes):
            raise ValueError(f"conv_features={tuple(self.conv_features)} and conv_kernel_sizes="
                             f"{tuple(self.conv_kernel_sizes)} must have the same length")
        if len(self.pool_sizes) != len(self.conv_features) + 1:
            raise ValueError(f"pool_sizes={tuple(self.pool_sizes)} needs one entry per conv "
                             f"layer including the sinc layer: {len(self.conv_features) + 1}")
        if min((*self.pool_sizes, *self.conv_kernel_sizes), default=1) < 1:
            raise ValueError("pool_sizes and conv_kernel_sizes must all be >= 1")

    def conv_output_lengths(self, num_samples: int) -> tuple[int, ...]:
        """Time steps after each conv + pool layer (valid convs, non-overlapping floor pools)."""
        lengths, length = [], num_samples
        for k, p in zip((self.sinc_kernel_size, *self.conv_kernel_sizes), self.pool_sizes):
            length = (length - k + 1) // p
            lengths.append(length)
        return tuple(lengths)

    def _check_input(self, x):
        if x.ndim != 2:
            raise ValueError(f"SincNet takes waveforms [batch, samples], got shape {x.shape}")
        lengths = self.conv_output_lengths(x.shape[1])
        if min(lengths) < 2:
            raise ValueError(
                f"{x.shape[1]} samples are too short for SincNet's conv stack (time steps per "
                f"layer {lengths}; each needs >= 2 for its layer norm); the paper uses 200 ms "
                f"= {self.sample_rate // 5} samples"
            )

    def _act(self, x):
        return nn.leaky_relu(x, self.negative_slope)

    def cnn(self, x, train: bool = False):
        """[batch, samples] -> flattened conv features [batch, channels * time]."""
        x = jnp.asarray(x, jnp.float32)
        self._check_input(x)
        # The input norm reads the float32 waveform; everything after it runs in self.dtype.
        if self.input_norm is not None:
            x = self.input_norm(x)
        x = x.astype(self.dtype)
        # |.| after the sinc layer only: a band-pass output oscillates around zero, so the
        # pool then keeps its envelope.
        layers = [lambda h: jnp.abs(self.sinc(h)), *self.convs]
        for layer, norm, pool in zip(layers, self.conv_norms, self.pool_sizes):
            x = window_max(layer(x), (pool,), (pool,))
            x = self._act(norm(x))
            x = self.conv_drop(x, deterministic=not train)
        # Channel-major, like PyTorch's [batch, channels, time].view(batch, -1).
        return jnp.swapaxes(x, 1, 2).reshape(x.shape[0], -1)

    def features(self, x, train: bool = False):
        """The last hidden layer's output (the d-vector), [batch, dnn_features[-1]]."""
        x = self.cnn(x, train)
        if self.dnn_input_norm is not None:
            x = self.dnn_input_norm(x)
        for dense, bn in zip(self.dense, self.batch_norms):
            x = self._act(bn(dense(x), use_running_average=not train))
            x = self.dnn_drop(x, deterministic=not train)
        return x

    def __call__(self, x, train: bool = False):
        """Waveforms [batch, samples] -> speaker logits [batch, num_classes] (in `dtype`)."""
        return self.classifier(self.features(x, train))


# The paper's two speaker-id corpora (section 4): TIMIT 462 speakers, LibriSpeech 2484.
SincNetTIMIT = functools.partial(SincNet, num_classes=462)
SincNetLibriSpeech = functools.partial(SincNet, num_classes=2484)


def filter_responses(low_hz_, band_hz_, *, kernel_size: int = 251, sample_rate: float = 16000,
                     min_low_hz: float = 50.0, min_band_hz: float = 50.0, n_fft: int = 4096):
    """(freqs [n_fft // 2 + 1] Hz, magnitudes [num_filters, n_fft // 2 + 1], low, high)."""
    kernel, (low, high) = sinc_filters(low_hz_, band_hz_, kernel_size, sample_rate=sample_rate,
                                       min_low_hz=min_low_hz, min_band_hz=min_band_hz)
    taps = np.asarray(kernel[:, 0, :], np.float64).T
    mags = np.abs(np.fft.rfft(taps, n=max(n_fft, kernel_size), axis=-1))
    freqs = np.fft.rfftfreq(max(n_fft, kernel_size), 1 / sample_rate)
    return freqs, mags, np.asarray(low), np.asarray(high)
