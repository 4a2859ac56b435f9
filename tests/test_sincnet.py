"""SincNet: sinc band-pass filters (cut-off guarantees, mel init, Eq. 4, frequency responses),
the paper's network (shapes, exact parameter count), gradients, the filter plot."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.models.sincnet import SincNet, SincNetTIMIT, filter_responses
from audiozoo.audio.spectral import hz_to_mel
from audiozoo.nn.sinc import SincConv, cutoffs, mel_init, sinc_filters
from audiozoo.plots import plot_filter_responses

SR = 16000
# A small network for gradient and train/eval tests (the paper's sizes are tested below).
TINY = dict(num_classes=5, sinc_filters=8, sinc_kernel_size=31, conv_features=(6, 6),
            dnn_features=(16, 16), dnn_dropout=0.1)
TINY_SAMPLES = 400


@pytest.fixture(scope="module")
def tiny():
    """(net, variables) of the small network, initialised once (compiles are the slow part)."""
    net = SincNet(**TINY)
    return net, jax.jit(net.init)(jax.random.key(0), _waves(1, TINY_SAMPLES))


def _num_params(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _waves(batch, samples, seed=0):
    return jax.random.uniform(jax.random.key(seed), (batch, samples), minval=-1.0, maxval=1.0)


@pytest.mark.parametrize("seed", range(3))
def test_cutoffs_respect_minimums_for_any_sign(seed):
    # Raw values of both signs, up to the documented range |low_hz_| <= sr/2 - 50 - 50.
    k1, k2 = jax.random.split(jax.random.key(seed))
    low_raw = jax.random.uniform(k1, (500,), minval=-7900.0, maxval=7900.0)
    band_raw = jax.random.uniform(k2, (500,), minval=-9000.0, maxval=9000.0)
    assert (low_raw < 0).any() and (band_raw < 0).any()
    low, high = map(np.asarray, cutoffs(low_raw, band_raw, sample_rate=SR))
    assert low.min() >= 50.0
    assert (high - low).min() >= 50.0 - 1e-3  # float32 rounding of low + 50 + |b| - low
    assert high.max() <= SR / 2
    # The kernels built from the same raw values are finite.
    kernel, _ = sinc_filters(low_raw, band_raw, 251, sample_rate=SR)
    assert np.isfinite(np.asarray(kernel)).all()


def test_mel_init_matches_reference_spacing():
    low_raw, band_raw = mel_init(80, SR, 50.0, 50.0)
    edges = np.append(low_raw, low_raw[-1] + band_raw[-1]).astype(np.float64)
    # 81 points from 30 Hz to 8000 - (50 + 50) = 7900 Hz, evenly spaced in mel.
    np.testing.assert_allclose(edges[[0, -1]], [30.0, 7900.0], rtol=1e-6)
    mel_steps = np.diff(hz_to_mel(edges, "htk"))
    np.testing.assert_allclose(mel_steps, mel_steps.mean(), rtol=1e-4)
    assert (band_raw > 0).all() and (np.diff(low_raw) > 0).all()
    low, high = map(np.asarray, cutoffs(low_raw, band_raw, sample_rate=SR))
    assert (np.diff(low) > 0).all() and (np.diff(high) > 0).all()
    # Effective cut-offs: low = 50 + 30 for the first filter, the last reaches Nyquist.
    np.testing.assert_allclose([low[0], high[-1]], [80.0, SR / 2], rtol=1e-6)


def _eq4_reference(low, high, kernel_size, sr):
    """Paper Eq. 4 with the reference window and 1 / (2 band) normalisation, in float64."""
    half = (kernel_size - 1) // 2
    t = np.arange(-half, half + 1) / sr
    g = 2 * high[:, None] * np.sinc(2 * high[:, None] * t) - 2 * low[:, None] * np.sinc(
        2 * low[:, None] * t)
    n = np.linspace(0, kernel_size / 2 - 1, kernel_size // 2)
    w_half = 0.54 - 0.46 * np.cos(2 * np.pi * n / kernel_size)
    window = np.concatenate([w_half, [1.0], w_half[::-1]])  # the centre tap is not windowed
    return (g * window / (2 * (high - low))[:, None]).T


def test_kernel_is_symmetric_and_equals_eq4():
    low_raw, band_raw = mel_init(80, SR, 50.0, 50.0)
    kernel, (low, high) = sinc_filters(low_raw, band_raw, 251, sample_rate=SR)
    taps = np.asarray(kernel[:, 0, :])
    assert kernel.shape == (251, 1, 80)
    np.testing.assert_array_equal(taps, taps[::-1])  # linear phase
    np.testing.assert_allclose(taps[125], np.ones(80), rtol=1e-6)  # centre tap normalised to 1
    expected = _eq4_reference(np.asarray(low, np.float64), np.asarray(high, np.float64), 251, SR)
    np.testing.assert_allclose(taps, expected, atol=2e-4)


def _check_band_pass(freqs, mag, low, high, min_db):
    peak = freqs[mag.argmax()]
    bin_hz = freqs[1]
    assert low - bin_hz <= peak <= high + bin_hz, (peak, low, high)
    # "Far" = more than max(300 Hz, one band width) outside the band (the 251-tap Hamming
    # main lobe is about 4 * sr / 251 = 255 Hz wide).
    margin = max(300.0, high - low)
    far = (freqs < low - margin) | (freqs > high + margin)
    db = 20 * np.log10(mag[far] / mag.max())
    assert db.max() < -min_db, (low, high, db.max())


def test_initial_filters_are_band_pass():
    low_raw, band_raw = mel_init(80, SR, 50.0, 50.0)
    freqs, mags, low, high = filter_responses(low_raw, band_raw, sample_rate=SR, n_fft=8192)
    for i in range(80):  # every filter peaks in its band
        peak = freqs[mags[i].argmax()]
        assert low[i] - freqs[1] <= peak <= high[i] + freqs[1], (i, peak, low[i], high[i])
    for i in (20, 40, 60):  # mid-band filters: >= 40 dB down far outside (measured >= 50)
        _check_band_pass(freqs, mags[i], low[i], high[i], min_db=40.0)


def test_random_filters_are_band_pass():
    rng = np.random.default_rng(0)
    # Random signs; effective low 550..5050 Hz, band 250..1050 Hz.
    low_raw = rng.uniform(500, 5000, 6) * rng.choice([-1, 1], 6)
    band_raw = rng.uniform(200, 1000, 6) * rng.choice([-1, 1], 6)
    freqs, mags, low, high = filter_responses(jnp.asarray(low_raw, jnp.float32),
                                              jnp.asarray(band_raw, jnp.float32),
                                              sample_rate=SR, n_fft=8192)
    for i in range(6):
        _check_band_pass(freqs, mags[i], low[i], high[i], min_db=30.0)


def test_sinc_conv_is_a_valid_convolution():
    conv = SincConv(out_channels=4, kernel_size=21, sample_rate=SR)
    x = _waves(2, 100)
    variables = conv.init(jax.random.key(0), x)
    y = conv.apply(variables, x)
    kernel, _ = conv.apply(variables, method=conv.filters)
    assert y.shape == (2, 80, 4)
    expected = np.convolve(np.asarray(x[1]), np.asarray(kernel[:, 0, 2])[::-1], mode="valid")
    np.testing.assert_allclose(np.asarray(y[1, :, 2]), expected, rtol=1e-4, atol=1e-4)
    assert set(variables["params"]) == {"low_hz_", "band_hz_"}


def test_paper_network_shapes():
    net = SincNet(num_classes=10)
    x = _waves(2, 3200)  # 200 ms at 16 kHz
    assert net.conv_output_lengths(3200) == (983, 326, 107)
    # One compile: init runs the forward pass anyway.
    logits, variables = jax.jit(net.init_with_output)(jax.random.key(0), x)
    assert logits.shape == (2, 10) and logits.dtype == jnp.float32
    assert np.isfinite(np.asarray(logits)).all()
    feats = jax.eval_shape(lambda v: net.apply(v, x, method=net.features), variables)
    assert feats.shape == (2, 2048)
    assert SincNet.input_kind == "waveform"


def test_paper_parameter_count_timit():
    # TIMIT, 462 speakers, 3200-sample chunks. Conv lengths: (3200 - 251 + 1) // 3 = 983,
    # (983 - 5 + 1) // 3 = 326, (326 - 5 + 1) // 3 = 107; flattened 60 * 107 = 6420.
    #   input layer norm      2 * 3200                 =      6,400
    #   sinc low/band         2 * 80                   =        160
    #   layer norm 0          2 * 983 * 80             =    157,280
    #   conv 1                5 * 80 * 60 + 60         =     24,060
    #   layer norm 1          2 * 326 * 60             =     39,120
    #   conv 2                5 * 60 * 60 + 60         =     18,060
    #   layer norm 2          2 * 107 * 60             =     12,840
    #   dnn input layer norm  2 * 6420                 =     12,840
    #   dense 1 + bn          6420 * 2048 + 2048 + 2 * 2048 = 13,154,304
    #   dense 2 + bn          2048 * 2048 + 2048 + 2 * 2048 =  4,200,448
    #   dense 3 + bn          2048 * 2048 + 2048 + 2 * 2048 =  4,200,448
    #   classifier            2048 * 462 + 462         =    946,638
    #   total                                          = 22,772,598
    net = SincNetTIMIT()
    shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 3200)))
    assert _num_params(shapes["params"]) == 22_772_598
    assert _num_params(shapes["params"]["sinc"]) == 160
    assert _num_params(shapes["batch_stats"]) == 3 * 2 * 2048  # buffers, not parameters


def test_jit_grad_reaches_sinc_cutoffs_and_batch_norm_trains(tiny):
    net, variables = tiny
    x = _waves(4, TINY_SAMPLES)
    labels = jnp.arange(4) % 5

    def loss_fn(params, batch_stats):
        logits, updates = net.apply({"params": params, "batch_stats": batch_stats}, x,
                                    train=True, mutable=["batch_stats"],
                                    rngs={"dropout": jax.random.key(1)})
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, labels[:, None], 1).mean(), updates

    (loss, updates), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        variables["params"], variables["batch_stats"])
    assert np.isfinite(float(loss))
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    assert np.abs(np.asarray(grads["sinc"]["low_hz_"])).max() > 0
    assert np.abs(np.asarray(grads["sinc"]["band_hz_"])).max() > 0
    # Train mode updates the running statistics; eval mode is deterministic and uses them.
    old_mean = variables["batch_stats"]["batch_norms_0"]["mean"]
    new_mean = updates["batch_stats"]["batch_norms_0"]["mean"]
    assert not np.allclose(old_mean, new_mean)
    eval_vars = {"params": variables["params"], **updates}
    apply = jax.jit(net.apply)
    np.testing.assert_array_equal(apply(eval_vars, x), apply(eval_vars, x))


def test_bad_arguments_have_clear_errors(tiny):
    with pytest.raises(ValueError, match="odd"):
        sinc_filters(jnp.ones(2), jnp.ones(2), 250)
    net, variables = tiny
    with pytest.raises(ValueError, match="too short"):
        net.init(jax.random.key(0), jnp.zeros((1, 60)))
    with pytest.raises(ValueError, match="chunk length"):
        net.apply(variables, _waves(1, 500))
    with pytest.raises(ValueError, match="pool_sizes"):
        SincNet(pool_sizes=(3, 3)).init(jax.random.key(0), jnp.zeros((1, 3200)))


def test_plot_writes_png_atomically(tiny, tmp_path):
    _, variables = tiny
    path = tmp_path / "filters.png"
    out = plot_filter_responses(variables, path, sample_rate=SR, max_filters=4, kernel_size=31)
    assert out == str(path)
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["filters.png"]  # no temp file left behind
    assert os.stat(path).st_mode & 0o777 == 0o644
    with pytest.raises(ValueError, match="low_hz_"):
        plot_filter_responses({"params": {}}, tmp_path / "x.png")
