"""Fast (ring-buffer) generation: teacher forcing equals the full pass, fast equals naive,
chunked equals one-shot, priming, sampling modes, streaming to files and bad arguments."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from audiozoo import generation
from audiozoo.generation.sampling import Sampling, choose, nucleus, predictive_entropy_bits
from audiozoo.generation.stream import stream_to_files
from audiozoo.models.wavenet import WaveNet
from helpers import random_variables

SMALL = dict(residual_channels=8, gate_channels=16, skip_channels=8)
BATCH = 3

CASES = {
    "k2_powers_of_two": dict(kernel_size=2, dilations=(1, 2, 4, 8, 1, 2)),
    "k3_non_powers": dict(kernel_size=3, dilations=(1, 3, 5, 1, 6)),
    "k2_global_ids": dict(kernel_size=2, dilations=(1, 2, 4), num_global_ids=3,
                          global_channels=4),
    "k3_global_vector_local_transposed": dict(
        kernel_size=3, dilations=(1, 2, 3), global_channels=5, local_channels=4,
        upsample_scales=(2, 3)),
    "k2_local_repeat_output_cond": dict(kernel_size=2, dilations=(2, 7, 1), local_channels=3,
                                        upsample_scales=(5,), upsample="repeat",
                                        condition_output=True),
    "mol_k3": dict(kernel_size=3, dilations=(1, 2, 4), output="mol", num_mixtures=3,
                   num_classes=1024),
    "single_layer_k1": dict(kernel_size=1, dilations=(1,)),
    # The NSynth decoder of magenta's h512_bo16.py: the skip sum starts from a 1x1 of the input.
    "k3_local_repeat_output_cond_skip_start": dict(
        kernel_size=3, dilations=(1, 2, 4), local_channels=3, upsample_scales=(4,),
        upsample="repeat", condition_output=True, skip_start=True),
    # ... exactly: each sample read as a value through a causal kernel-3 start conv.
    "nsynth_magenta_decoder": dict(
        kernel_size=3, dilations=(1, 2, 4), local_channels=3, upsample_scales=(4,),
        upsample="repeat", condition_output=True, skip_start=True, scalar_input=True,
        input_kernel=3),
    "mol_k2_input_conv": dict(kernel_size=2, dilations=(1, 2), output="mol", num_mixtures=2,
                              num_classes=1024, input_kernel=2),
}


def make(case, time=40, seed=0):
    """A net, random variables (no bias trivially zero), codes and conditioning."""
    kwargs = dict(CASES[case])
    net = WaveNet(num_classes=kwargs.pop("num_classes", 32), **SMALL, **kwargs)
    rng = np.random.default_rng(seed)
    codes = jnp.asarray(rng.integers(0, net.num_classes, (BATCH, time)), jnp.int32)
    cond = {}
    if net.num_global_ids:
        cond["global_cond"] = jnp.arange(BATCH) % net.num_global_ids
    elif net.global_channels:
        cond["global_cond"] = jnp.asarray(rng.normal(size=(BATCH, net.global_channels)),
                                          jnp.float32)
    if net.uses_local:
        frames = -(-time // net.hop_length) + 1
        cond["local_cond"] = jnp.asarray(rng.normal(size=(BATCH, frames, net.local_channels)),
                                         jnp.float32)
    return net, random_variables(net, codes, seed=seed, **cond), codes, cond


def full_pass(net, variables, codes, cond):
    return jax.jit(net.apply)(variables, codes, **cond)


@pytest.mark.parametrize("case", CASES)
def test_teacher_forced_steps_reproduce_the_full_forward_pass(case):
    net, variables, codes, cond = make(case)
    full = full_pass(net, variables, codes, cond)
    stepped = generation.teacher_force(net, variables, codes, **cond)
    assert stepped.shape == full.shape
    assert float(jnp.max(jnp.abs(stepped - full))) <= 1e-4


def test_public_step_matches_the_full_pass_one_sample_at_a_time():
    net, variables, codes, cond = make("k3_global_vector_local_transposed", time=12)
    full = full_pass(net, variables, codes, cond)
    local = generation.upsample_local(net, variables, cond["local_cond"], BATCH, 12)
    state = generation.init_state(net, variables, BATCH)
    for t in range(12):
        logits, state = generation.step(net, variables, state, codes[:, t],
                                        global_cond=cond["global_cond"], local_t=local[:, t])
        np.testing.assert_allclose(logits, full[:, t], atol=1e-4)


def test_ring_buffers_hold_exactly_what_each_layer_needs_and_never_grow():
    net, variables, codes, _ = make("k3_non_powers")
    state = generation.init_state(net, variables, BATCH)
    history = sum((net.kernel_size - 1) * d for d in net.layer_dilations)
    width = (BATCH, net.residual_channels)
    assert state.buffer.shape == (history, *width)
    # Plus the next step's past taps, gathered one step early.
    assert state.taps.shape == (len(net.layer_dilations), BATCH,
                                (net.kernel_size - 1) * net.residual_channels)
    entries = history + len(net.layer_dilations) * (net.kernel_size - 1)
    assert generation.state_bytes(state) == 4 * BATCH * net.residual_channels * entries
    for t in range(3):
        _, new = generation.step(net, variables, state, codes[:, t])
        assert jax.tree.map(jnp.shape, new) == jax.tree.map(jnp.shape, state)
        state = new
    assert int(state.t) == 3


def test_each_ring_holds_its_layers_inputs_at_t_mod_its_size():
    """The packed buffer's layout, read back against the full pass's layer inputs."""
    net, variables, codes, _ = make("k3_non_powers", time=12)
    state = generation.init_state(net, variables, BATCH)
    for t in range(12):
        _, state = generation.step(net, variables, state, codes[:, t])
    _, captured = net.apply(variables, codes, capture_intermediates=True,
                            mutable="intermediates")
    # Layer 0 reads the embedded codes, each later layer the residual output of the one before.
    x = net.apply(variables, codes, method=net.embed_codes)
    offset = 0
    for layer, dilation in enumerate(net.layer_dilations):
        if layer:
            x = captured["intermediates"][f"blocks_{layer - 1}"]["__call__"][0][0]
        size = (net.kernel_size - 1) * dilation
        for t in range(12 - size, 12):
            np.testing.assert_allclose(state.buffer[offset + t % size], x[:, t], atol=1e-5)
        offset += size

@pytest.mark.parametrize("case", ["k2_powers_of_two", "k3_non_powers", "k2_global_ids",
                                  "k3_global_vector_local_transposed", "mol_k3",
                                  "nsynth_magenta_decoder"])
@pytest.mark.parametrize("method", ["argmax", "random"])
def test_fast_sampling_equals_naive_sampling(case, method):
    net, variables, _, cond = make(case, time=30)
    fast = generation.sample(net, variables, jax.random.key(7), 30, batch_size=BATCH,
                             method=method, **cond)
    naive = generation.sample_naive(net, variables, jax.random.key(7), 30, batch_size=BATCH,
                                    method=method, **cond)
    assert fast.shape == (BATCH, 30) and fast.dtype == jnp.int32
    np.testing.assert_array_equal(fast, naive)


def test_chunked_generation_equals_one_shot_with_the_same_key():
    net, variables, codes, cond = make("k3_global_vector_local_transposed", time=60)
    prime = codes[:, :10]
    args = dict(batch_size=BATCH, method="mode", prime=prime, **cond)
    one_shot = generation.sample(net, variables, jax.random.key(3), 50, **args)
    gen = generation.Generator(net, variables, jax.random.key(3), 50, **args)
    pieces = list(gen.chunks(16))
    assert [p.shape[1] for p in pieces] == [16, 16, 16, 2]
    np.testing.assert_array_equal(jnp.concatenate(pieces, axis=1), one_shot)


def test_priming_fills_the_buffers_from_the_prefix():
    net, variables, codes, cond = make("k2_powers_of_two", time=25)
    fast = generation.sample(net, variables, jax.random.key(1), 15, batch_size=BATCH,
                             method="argmax", prime=codes)
    naive = generation.sample_naive(net, variables, jax.random.key(1), 15, batch_size=BATCH,
                                    method="argmax", prime=codes)
    np.testing.assert_array_equal(fast, naive)
    # The first new sample is the argmax of the full pass's prediction after the prefix.
    full = full_pass(net, variables, codes, {})
    np.testing.assert_array_equal(fast[:, 0], jnp.argmax(full[:, -1], axis=-1))
    # A 1-D prime is shared by every row.
    shared = generation.sample(net, variables, jax.random.key(1), 5, batch_size=2,
                               method="argmax", prime=codes[0])
    np.testing.assert_array_equal(shared[0], shared[1])


def test_generator_refuses_to_run_past_its_length():
    net, variables, _, _ = make("k2_powers_of_two")
    gen = generation.Generator(net, variables, jax.random.key(0), 5)
    gen.run(4)
    with pytest.raises(ValueError, match="ask for 1..1"):
        gen.run(2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_steps=-3), "num_steps=-3 must be >= 1"),
    (dict(num_steps=0), "num_steps=0 must be >= 1"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(method="beam"), "not one of"),
    (dict(temperature=-1.0), "temperatures must be >= 0"),
    (dict(temperature=float("nan")), "temperatures must be >= 0, got temperature=nan"),
    (dict(top_p=1.5), r"top_p=1.5 must lie in \(0, 1\]"),
    (dict(prime=np.array([[1, 2, 3]] * 2)), r"prime must be codes \[time\] or \[3, time\]"),
    (dict(prime=np.array([1, 99])), r"prime codes must lie in \[0, 32\)"),
    (dict(prime=np.array([0.5, 0.1])), "integer codes"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    net, variables, _, _ = make("k2_powers_of_two")
    args = dict(num_steps=10, batch_size=BATCH) | kwargs
    with pytest.raises(ValueError, match=match):
        generation.sample(net, variables, jax.random.key(0), args.pop("num_steps"), **args)


def test_conditioning_of_the_wrong_length_or_shape_is_refused():
    net, variables, _, cond = make("k3_global_vector_local_transposed", time=30)
    local, glob = cond["local_cond"], cond["global_cond"]
    args = dict(batch_size=BATCH, global_cond=glob)
    with pytest.raises(ValueError, match=r">= 17 frames"):  # 100 samples at hop 6
        generation.sample(net, variables, jax.random.key(0), 100, local_cond=local, **args)
    with pytest.raises(ValueError, match="local_cond must be"):
        generation.sample(net, variables, jax.random.key(0), 10, local_cond=local[..., :2], **args)
    with pytest.raises(ValueError, match="pass local_cond"):
        generation.sample(net, variables, jax.random.key(0), 10, **args)
    with pytest.raises(ValueError, match=r"global_cond must be \[3, 5\]"):
        generation.sample(net, variables, jax.random.key(0), 10, batch_size=BATCH,
                          global_cond=glob[:2], local_cond=local)
    plain, plain_vars, _, _ = make("k2_powers_of_two")
    with pytest.raises(ValueError, match="no local conditioning"):
        generation.sample(plain, plain_vars, jax.random.key(0), 10, local_cond=local)
    with pytest.raises(ValueError, match="top_p' needs a softmax head"):
        mol, mol_vars, _, _ = make("mol_k3")
        generation.sample(mol, mol_vars, jax.random.key(0), 10, method="top_p")


# ---- sampling modes -------------------------------------------------------------------
NET256 = WaveNet(num_layers=1, num_stacks=1, num_classes=256, **SMALL)


def draws(logits, sampling, n=400):
    keys = jax.random.split(jax.random.key(0), n)
    return np.asarray(jax.vmap(lambda k: choose(NET256, k, logits, sampling))(keys))


def test_entropy_of_the_predictive_distribution():
    uniform = jnp.zeros((1, 256))
    peaked = jnp.zeros((1, 256)).at[0, 100].set(50.0)
    np.testing.assert_allclose(predictive_entropy_bits(NET256, uniform), [8.0], atol=1e-5)
    assert float(predictive_entropy_bits(NET256, peaked)[0]) < 1e-3


def test_greedy_is_argmax_when_voiced_and_random_when_unvoiced():
    # Row 0: peaked around class 100 (about 2 bits: voiced). Row 1: flat (8 bits: unvoiced).
    voiced_row = -0.5 * ((jnp.arange(256) - 100.0) / 1.0) ** 2
    logits = jnp.stack([voiced_row, jnp.zeros(256)])
    out = draws(logits, Sampling("greedy"))
    assert (out[:, 0] == 100).all()
    assert len(set(out[:, 1])) > 100
    assert len(set(draws(logits, Sampling("random"))[:, 0])) > 1


def test_mode_sharpens_only_voiced_steps():
    voiced_row = -0.5 * ((jnp.arange(256) - 100.0) / 1.5) ** 2
    logits = voiced_row[None]
    plain = draws(logits, Sampling("random"), n=2000)[:, 0]
    sharp = draws(logits, Sampling("mode", voiced_temperature=0.5), n=2000)[:, 0]
    # Temperature 0.5 on a Gaussian-shaped logit halves its variance.
    assert np.var(sharp) < 0.7 * np.var(plain)
    assert np.var(sharp) > 0.2 * np.var(plain)


def test_top_p_keeps_only_the_nucleus():
    probs = jnp.array([0.5, 0.3, 0.15, 0.05] + [0.0] * 252) + 1e-9
    logits = jnp.log(probs)[None]
    kept = np.isfinite(np.asarray(nucleus(logits, 0.7)))[0]
    assert kept[:2].all() and not kept[2:].any()
    out = draws(logits, Sampling("top_p", top_p=0.7), n=1000)[:, 0]
    assert set(out) == {0, 1}
    assert abs(np.mean(out == 0) - 0.5 / 0.8) < 0.05


def test_mol_entropy_tracks_the_component_scale():
    net = WaveNet(num_layers=1, num_stacks=1, output="mol", num_mixtures=2, num_classes=65536,
                  **SMALL)
    narrow = jnp.array([[0.0, -30.0, 0.1, 0.0, -9.0, -9.0]])
    wide = narrow.at[0, 4:].set(-1.0)
    assert float(predictive_entropy_bits(net, narrow)[0]) < 8.0
    assert float(predictive_entropy_bits(net, wide)[0]) > 8.0
    sampling = Sampling("greedy")
    out = generation.sampling.voiced(net, jnp.concatenate([narrow, wide]), sampling)
    assert out.tolist() == [True, False]
    assert math.isclose(sampling.voicing_threshold * math.log2(65536), 8.0)


# ---- streaming ------------------------------------------------------------------------
def test_streaming_to_files_matches_one_shot_and_survives_ctrl_c(tmp_path):
    net, variables, _, _ = make("k2_powers_of_two")
    to_audio = lambda codes: (codes.astype(np.float32) - 16) / 32  # noqa: E731
    one_shot = to_audio(np.asarray(generation.sample(net, variables, jax.random.key(4), 50,
                                                     batch_size=2)))
    gen = generation.Generator(net, variables, jax.random.key(4), 50, batch_size=2)
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    written, interrupted = stream_to_files(gen, paths, to_audio, 16000, chunk_size=20,
                                           head=np.zeros((2, 5)), progress=False)
    assert (written, interrupted) == (55, False)
    for path, row in zip(paths, one_shot):
        audio, _ = sf.read(path, dtype="float32")
        np.testing.assert_allclose(audio[5:], row, atol=1 / 32768)

    calls = []

    def interrupt_on_second_chunk(codes):
        calls.append(codes.shape)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return to_audio(codes)

    gen = generation.Generator(net, variables, jax.random.key(4), 50, batch_size=2)
    written, interrupted = stream_to_files(gen, paths, interrupt_on_second_chunk, 16000,
                                           chunk_size=20, progress=False)
    assert (written, interrupted) == (20, True)
    audio, rate = sf.read(paths[1], dtype="float32")  # a valid file of the finished chunk
    assert rate == 16000
    np.testing.assert_allclose(audio, one_shot[1, :20], atol=1 / 32768)


@pytest.mark.parametrize("case", ["k3_non_powers", "k3_global_vector_local_transposed",
                                  "nsynth_magenta_decoder"])
def test_a_long_prime_is_stepped_through_only_for_its_last_receptive_field(case, monkeypatch):
    from audiozoo.generation import fast

    net, variables, codes, cond = make(case, time=60)
    assert net.receptive_field < 40  # so most of the prime is beyond it
    forced = []
    force = fast._force
    monkeypatch.setattr(fast, "_force", lambda *a: forced.append(a[3].shape) or force(*a))
    prime, args = codes[:, :40], dict(batch_size=BATCH, method="random", **cond)
    gen = generation.Generator(net, variables, jax.random.key(5), 20, prime=prime, **args)
    assert forced == [(BATCH, net.receptive_field - 1)] and int(gen.state.t) == 39
    # The same codes as the naive sampler, which reruns every window over the whole prime
    # (random sampling: the per-step keys and the local frames follow absolute positions).
    naive = generation.sample_naive(net, variables, jax.random.key(5), 20, prime=prime, **args)
    np.testing.assert_array_equal(gen.run(20), naive)
    # Only the prime's last receptive field matters: the rest can be anything.
    other = prime.at[:, :40 - net.receptive_field].set(0)
    gen = generation.Generator(net, variables, jax.random.key(5), 20, prime=other, **args)
    np.testing.assert_array_equal(gen.run(20), naive)
