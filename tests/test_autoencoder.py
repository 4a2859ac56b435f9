"""WaveNet autoencoders: encoder shapes, a causal decoder that sees the whole encoding, fast
decoding equal to the full pass, gradients through the bottlenecks, training through the
generic trainer (NSynth AE, ADA, a stacked level) and the encode/decode/interpolate verbs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from audiozoo import generation
from audiozoo.cli import main
from audiozoo.config import ConfigError, apply_overrides, load_config
from audiozoo.models.autoencoder import WaveNetAutoencoder
from audiozoo.tasks import build_task

SMALL = dict(encoder_layers=4, encoder_stacks=2, encoder_channels=16, latent_channels=4,
             hop_length=8, decoder_layers=4, decoder_stacks=2, residual_channels=8,
             gate_channels=16, skip_channels=8, num_classes=32)


def build(seed=0, time=64, **fields):
    model = WaveNetAutoencoder(**(SMALL | fields))
    codes = jax.random.randint(jax.random.key(seed), (2, time), 0, model.num_classes)
    variables = model.init({"params": jax.random.key(seed + 1), "vq": jax.random.key(2)}, codes)
    return model, variables, codes


def test_paper_encoder_turns_a_4_second_note_into_125_by_16():
    model = WaveNetAutoencoder()  # the paper's sizes
    note = jnp.zeros((1, 64000), jnp.int32)
    encoded = jax.eval_shape(
        lambda: model.init_with_output(jax.random.key(0), note, method=model.encode)[0])
    assert encoded.shape == (1, 125, 16)
    assert model.receptive_field == 1 + 2 * 3 * 1023
    tiny, variables, codes = build()
    assert tiny.apply(variables, codes, method=tiny.encode).shape == (2, 8, 4)
    # A length that is not a whole number of frames gets a last, zero-padded frame.
    assert tiny.apply(variables, codes[:, :60], method=tiny.encode).shape == (2, 8, 4)


def test_decoder_is_causal_in_audio_but_sees_the_whole_encoding():
    model, variables, codes = build()
    t = 20
    later = codes.at[:, t:].set((codes[:, t:] + 7) % model.num_classes)
    latent = model.apply(variables, codes, method=model.bottleneck_out).quantized
    decoder, dec_vars = model.decoder_net, {"params": variables["params"]["decoder"]}

    def decode(c):  # the decoder alone, on a fixed latent, with the model's right shift
        inputs = jnp.pad(c[:, :-1], ((0, 0), (1, 0)), constant_values=generation.silence_code(decoder))
        return decoder.apply(dec_vars, inputs, local_cond=latent)

    # Changing codes from t on leaves every prediction of codes[:, :t + 1] unchanged.
    np.testing.assert_array_equal(decode(codes)[:, :t + 1], decode(later)[:, :t + 1])
    assert not np.allclose(decode(codes)[:, t + 1:], decode(later)[:, t + 1:])
    # Through the (non-causal) encoder, predictions before t in t's frame (16..23) hear the
    # future; frames whose encoder window ends before t do not.
    full, _ = model.apply(variables, codes)
    full_later, _ = model.apply(variables, later)
    assert not np.allclose(full[:, 16:t], full_later[:, 16:t])
    np.testing.assert_array_equal(full[:, :8], full_later[:, :8])


@pytest.mark.parametrize("bottleneck", ["none", "vq", "argmax"])
def test_fast_decoding_equals_the_full_forward_pass(bottleneck):
    model, variables, codes = build(bottleneck=bottleneck, num_codes=6)
    logits, out = model.apply(variables, codes)
    decoder = model.decoder_net
    inputs = jnp.pad(codes[:, :-1], ((0, 0), (1, 0)), constant_values=generation.silence_code(decoder))
    stepped = generation.teacher_force(decoder, {"params": variables["params"]["decoder"]},
                                       inputs, local_cond=out.quantized)
    assert float(jnp.max(jnp.abs(stepped - logits))) <= 1e-4
    # And argmax decoding with the ring buffers equals the naive decoder's.
    args = dict(batch_size=2, method="argmax", local_cond=out.quantized)
    dec_vars = {"params": variables["params"]["decoder"]}
    np.testing.assert_array_equal(
        generation.sample(decoder, dec_vars, jax.random.key(0), 64, **args),
        generation.sample_naive(decoder, dec_vars, jax.random.key(0), 64, **args))


@pytest.mark.parametrize("bottleneck", ["vq", "argmax"])
def test_bottleneck_gradients_reach_the_encoder(bottleneck):
    model, variables, codes = build(bottleneck=bottleneck, num_codes=6)

    def reconstruction(params):
        logits, _ = model.apply({**variables, "params": params}, codes)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), codes[..., None], -1))

    grads = jax.grad(reconstruction)(variables["params"])
    encoder_norm = optax_norm(grads["encoder"])
    assert encoder_norm > 0 and np.isfinite(encoder_norm)
    out = model.apply(variables, codes, method=model.bottleneck_out)
    if bottleneck == "argmax":
        np.testing.assert_array_equal(out.quantized.sum(-1), 1.0)
        assert set(np.unique(out.quantized).tolist()) <= {0.0, 1.0}


def optax_norm(tree):
    return float(jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))))


def test_discrete_latents_come_back_from_their_codes():
    model, variables, codes = build(bottleneck="vq", num_codes=6)
    out = model.apply(variables, codes, method=model.bottleneck_out)
    np.testing.assert_allclose(model.apply(variables, out.codes, method=model.latent_of_codes),
                               out.quantized, atol=1e-6)
    with pytest.raises(ValueError, match="continuous latent"):
        plain, plain_vars, _ = build()
        plain.apply(plain_vars, out.codes, method=plain.latent_of_codes)


# ---- training through the generic trainer ---------------------------------------------
FAST = ["--config.train.num_steps=60", "--config.train.log_every=10",
        "--config.train.eval_every=0", "--config.train.checkpoint_every=60",
        "--config.task.num_samples=1", "--config.data.num_train=64",
        "--config.optim.warmup_steps=5", "--config.optim.schedule=constant",
        "--config.optim.learning_rate=4e-3"]


def train(tmp_path, config, name, extra=()):
    workdir = tmp_path / name
    assert main(["train", "--config", config, "--workdir", str(workdir), *FAST, *extra]) == 0
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    return workdir, [r for r in records if r["split"] == "train"]


@pytest.mark.parametrize("config, extra", [
    pytest.param("configs/nsynth_ae_tiny.py", [], marks=pytest.mark.slow),
    pytest.param("configs/ada_tiny.py:argmax", ["--config.model.decoder_layers=6"],
                 marks=pytest.mark.slow),
    pytest.param("configs/ada_tiny.py:vq_ema", ["--config.model.decoder_layers=6"],
                 marks=pytest.mark.slow),
])
def test_tiny_autoencoders_reduce_reconstruction_loss(tmp_path, config, extra):
    _, train_records = train(tmp_path, config, "run", extra)
    first, last = train_records[0]["bits_per_code"], train_records[-1]["bits_per_code"]
    assert last < 0.85 * first
    if "ada" in config:
        assert 1.0 <= train_records[-1]["perplexity"] <= 64
    assert (tmp_path / "run" / "samples").is_dir()


@pytest.fixture(scope="module")
def level1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ada")
    workdir, _ = train(tmp, "configs/ada_tiny.py:argmax", "level1",
                       ["--config.train.num_steps=10", "--config.task.num_samples=0"])
    return workdir


@pytest.mark.slow
def test_a_stacked_level_trains_on_level1_codes_and_decodes_top_down(tmp_path, level1):
    workdir, records = train(tmp_path, "configs/ada_tiny.py:level2", "level2",
                             [f"--config.task.lower_workdir={level1}",
                              "--config.train.num_steps=30", "--config.task.num_samples=0"])
    assert records[-1]["bits_per_code"] < records[0]["bits_per_code"]
    config = load_config("configs/ada_tiny.py:level2")
    apply_overrides(config, [("task.lower_workdir", str(level1))])
    task = build_task(config)
    fields = task.stack_receptive_fields()
    assert [f["level"] for f in fields] == [1, 2]
    assert fields[1]["samples"] == task.model.receptive_field * 64 > fields[0]["samples"]
    # encode -> level-2 codes -> level-1 codes -> audio, through the CLI.
    note = 0.5 * np.sin(np.arange(4096) / 9.0)
    sf.write(tmp_path / "note.wav", note, 16000)
    assert main(["encode", str(tmp_path / "note.wav"), "--workdir", str(workdir),
                 "--out", str(tmp_path / "codes.npy")]) == 0
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (16,) and codes.dtype == np.int32
    assert main(["decode", str(tmp_path / "codes.npy"), "--workdir", str(workdir),
                 "--out", str(tmp_path / "out.wav")]) == 0
    assert sf.read(tmp_path / "out.wav")[0].shape == (4096,)


@pytest.mark.slow
def test_stacking_refuses_a_mismatched_lower_level(tmp_path, level1):
    config = load_config("configs/ada_tiny.py:level2")
    with pytest.raises(ConfigError, match="lower_workdir"):
        build_task(config)  # no lower level given
    apply_overrides(config, [("task.lower_workdir", str(level1)), ("model.num_classes", "32")])
    with pytest.raises(ConfigError, match="codebook size 64"):
        build_task(config)


@pytest.mark.integration
def test_encode_decode_interpolate_verbs(tmp_path, capsys):
    workdir, _ = train(tmp_path, "configs/nsynth_ae_tiny.py", "ae",
                       ["--config.train.num_steps=2", "--config.task.num_samples=0"])
    for i, freq in enumerate((5.0, 11.0)):
        sf.write(tmp_path / f"n{i}.wav", 0.4 * np.sin(np.arange(1000) / freq), 16000)
    files = [str(tmp_path / "n0.wav"), str(tmp_path / "n1.wav")]
    assert main(["encode", *files, "--workdir", str(workdir), "--out", str(tmp_path / "e.npy")]) == 0
    embedding = np.load(tmp_path / "e_0.npy")
    assert embedding.shape == (8, 16) and embedding.dtype == np.float32  # 1000 -> 8 frames of 128
    assert main(["decode", str(tmp_path / "e_0.npy"), str(tmp_path / "e_1.npy"), "--workdir",
                 str(workdir), "--out", str(tmp_path / "d.wav"), "--method", "argmax"]) == 0
    assert sf.read(tmp_path / "d_1.wav")[0].shape == (1024,)
    assert main(["interpolate", *files, "--workdir", str(workdir), "--weights", "0", "0.5",
                 "--out", str(tmp_path / "mix.wav"), "--method", "argmax"]) == 0
    # Weight 0 is the first sound's own latent: it decodes exactly like decoding A.
    np.testing.assert_array_equal(sf.read(tmp_path / "mix_0.wav")[0], sf.read(tmp_path / "d_0.wav")[0])
    assert sf.read(tmp_path / "mix_1.wav")[0].shape == (1024,)
    # Bad latents are refused with the culprit named, and nothing is written.
    np.save(tmp_path / "bad.npy", np.zeros((8, 3), np.float32))
    assert main(["decode", str(tmp_path / "bad.npy"), "--workdir", str(workdir),
                 "--out", str(tmp_path / "bad.wav")]) == 2
    assert "bad.npy" in capsys.readouterr().err and not (tmp_path / "bad.wav").exists()
    wavenet_dir = tmp_path / "wn"
    assert main(["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(wavenet_dir),
                 "--config.train.num_steps=1", "--config.train.eval_every=0",
                 "--config.task.num_samples=0", "--config.data.segment_length=200",
                 "--config.model.num_layers=2"]) == 0
    assert main(["encode", files[0], "--workdir", str(wavenet_dir), "--out", str(tmp_path / "x.npy")]) == 2
    assert "`audiozoo encode` does not apply to the wavenet model" in capsys.readouterr().err


@pytest.mark.slow
def test_vq_ema_autoencoder_on_8_devices_equals_one_device(tmp_path):
    """The EMA codebook statistics see the global batch, so sharding changes nothing."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "ada_tiny.py"
    code = textwrap.dedent(f"""
        import jax, numpy as np
        from audiozoo.config import apply_overrides, load_config
        from audiozoo.train.loop import train
        assert jax.device_count() == {{n}}
        c = load_config("{config}:vq_ema")
        apply_overrides(c, [("train.num_steps", "3"), ("train.batch_size", "8"),
                            ("train.eval_every", "0"), ("task.num_samples", "0"),
                            ("data.segment_length", "256"), ("data.num_train", "32"),
                            ("model.decoder_layers", "2"), ("model.encoder_layers", "2")])
        state = train(c, "{tmp_path}/d{{n}}")
        np.savez("{tmp_path}/d{{n}}.npz", *jax.tree.leaves((state.params, state.extra)))
    """)
    for n in (1, 8):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
                   JAX_PLATFORMS="cpu")
        result = subprocess.run([sys.executable, "-c", code.format(n=n)], env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    one, eight = np.load(tmp_path / "d1.npz"), np.load(tmp_path / "d8.npz")
    assert len(one.files) > 10
    for key in one.files:
        np.testing.assert_allclose(one[key], eight[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_resumed_vq_ema_run_equals_an_uninterrupted_one(tmp_path):
    """The EMA codebook statistics are checkpointed with the parameters."""
    from audiozoo.train.loop import train as train_config

    def config(steps):
        c = load_config("configs/ada_tiny.py:vq_ema")
        apply_overrides(c, [("train.num_steps", str(steps)), ("train.batch_size", "4"),
                            ("train.eval_every", "0"), ("train.checkpoint_every", "2"),
                            ("task.num_samples", "0"), ("data.segment_length", "256"),
                            ("data.num_train", "16"), ("model.decoder_layers", "2"),
                            ("model.encoder_layers", "2")])
        return c

    train_config(config(2), tmp_path / "resumed")
    resumed = train_config(config(4), tmp_path / "resumed")
    straight = train_config(config(4), tmp_path / "straight")
    for a, b in zip(jax.tree.leaves((resumed.params, resumed.extra)),
                    jax.tree.leaves((straight.params, straight.extra))):
        np.testing.assert_array_equal(a, b)
    assert "vq_stats" in resumed.extra
