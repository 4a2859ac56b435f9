"""Importing magenta's published checkpoints (audiozoo.magenta): NSynth's WaveNet autoencoder
and GANSynth. Checkpoints are written here by TensorFlow with magenta's variable names and
shapes and random values; the imported models are compared with magenta's graphs written
again in TensorFlow ops (tests/magenta_reference.py). Skipped without TensorFlow (the
`magenta` extra)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from audiozoo.magenta import gansynth as mg
from audiozoo.magenta import nsynth as mn
from audiozoo.magenta.checkpoint import check_tree
from audiozoo.models.hf_checkpoint import CheckpointFormatError
from audiozoo.tasks import build_task

tf = pytest.importorskip("tensorflow")
ref = pytest.importorskip("magenta_reference")

# h512_bo16's graph at a test size (the hop stays 512: 4 s -> 125 frames, 40,000 -> 78).
SMALL = mn.NSynthShape(layers=4, stages=2, width=8, skip_width=6, ae_layers=4, ae_stages=2,
                       ae_width=8)
# GANSynth's released hparams at a test size: 3 resolutions of 2 x 16 up to 8 x 64 (nfft 128).
SMALL_FLAGS = {"data_type": "mel", "start_height": 2, "start_width": 16, "num_resolutions": 3,
               "fmap_base": 64, "fmap_max": 16, "latent_vector_size": 8, "audio_length": 256,
               "batch_size_schedule": [8], "stable_stage_num_images": 800,
               "transition_stage_num_images": 800, "total_num_images": 4000}
# magenta's configs/mel_prog_hires.py: the hparams of the released checkpoints.
RELEASED_FLAGS = {"data_type": "mel", "start_height": 2, "start_width": 16,
                  "num_resolutions": 7, "fmap_base": 4096, "fmap_max": 256,
                  "latent_vector_size": 256, "kernel_size": 3, "batch_size_schedule": [8]}


def nsynth_checkpoint(path, shape=SMALL, seed=0, edit=None):
    """A checkpoint as train.py leaves it: the model, EMA shadows, Adam slots, counters."""
    weights = ref.random_weights(mn.variable_shapes(shape), seed)
    arrays = dict(weights)
    arrays |= {f"{k}/ExponentialMovingAverage": v + 0.01 for k, v in weights.items()}
    arrays |= {"dilatedconv_1/W/Adam": weights["dilatedconv_1/W"], "beta1_power": np.float32(0.9),
               "global_step": np.int64(200000)}
    if edit:
        edit(arrays)
    return ref.write_checkpoint(path / "model.ckpt", arrays, global_step=200000), weights


@pytest.fixture(scope="module")
def nsynth_import(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsynth")
    prefix, weights = nsynth_checkpoint(root)
    workdir = mn.import_nsynth(prefix, root / "run", shape=SMALL)
    return prefix, weights, workdir


# ---- NSynth -------------------------------------------------------------------------------

def test_h512_bo16_table_is_the_published_model():
    table = mn.variable_shapes()
    assert len(table) == 374  # (1 + 30 + 30 + 1 + 1 + 1 + 4 * 30 + 3) layers x (W, biases)
    assert table["ae_startconv/W"] == (1, 3, 1, 128) and table["ae_bottleneck/W"] == (1, 1, 128, 16)
    assert table["startconv/W"] == (1, 3, 1, 512) and table["skip_start/W"] == (1, 1, 512, 256)
    assert table["dilatedconv_30/W"] == (1, 3, 512, 1024) and table["cond_map_30/W"] == (1, 1, 16, 1024)
    assert table["res_30/W"] == (1, 1, 512, 512) and table["skip_30/W"] == (1, 1, 512, 256)
    assert table["cond_map_out1/W"] == (1, 1, 16, 256) and table["logits/W"] == (1, 1, 256, 256)
    # Every variable but the dead res_30 is in the audiozoo model, the conditioning biases
    # folded into the biases beside them.
    task = build_task(mn.nsynth_config())
    abstract = jax.eval_shape(task.init_train_state, jax.random.key(0), task.dummy_batch(1))
    folded = sum(table[f"cond_map_{i}/biases"][0] for i in range(1, 31)) + 256
    dead = 512 * 512 + 512
    total = sum(int(np.prod(s)) for s in table.values())
    assert sum(x.size for x in jax.tree.leaves(abstract.params)) == total - folded - dead
    params = mn.to_params(lambda name: np.zeros(table[name], np.float32))
    check_tree(params, abstract.params, "parameter")


def test_full_size_encodings_are_125_by_16_for_4_s_and_78_by_16_for_40000_samples():
    task = build_task(mn.nsynth_config())
    model = task.model
    params = jax.eval_shape(task.init_train_state, jax.random.key(0), task.dummy_batch(1)).params
    for samples, frames in ((64000, 125), (40000, 78)):
        clip = task.whole_frames(np.zeros(samples, np.float32))
        out = jax.eval_shape(lambda p, c: model.apply({"params": p}, c, method=model.encode),
                             params, task.codes_of(clip))
        assert out.shape == (1, frames, 16)
    assert model.receptive_field == 6141  # ~6141 samples (Engel et al. 2017)


def test_imported_encoder_and_decoder_equal_magentas_graph(nsynth_import):
    _, weights, workdir = nsynth_import
    import audiozoo

    run = audiozoo.load(workdir)
    task, variables = run.task, run.variables
    wav = np.random.default_rng(1).uniform(-0.9, 0.9, (2, 1024)).astype(np.float32)
    tf_w = {k: tf.constant(v) for k, v in weights.items()}
    codes = task.codes_of(jnp.asarray(wav))
    np.testing.assert_array_equal(codes, ref.mu_law(wav).numpy().astype(np.int32) + 128)
    want_encoding = ref.nsynth_encode(tf.constant(wav), tf_w, SMALL).numpy()
    encoding, _ = task.encode(variables, wav)
    np.testing.assert_allclose(encoding, want_encoding, atol=1e-4)
    want_logits = ref.nsynth_decode(tf.constant(wav), tf.constant(want_encoding), tf_w, SMALL)
    logits, _ = task.model.apply(variables, codes)
    np.testing.assert_allclose(logits, want_logits.numpy(), atol=1e-4)
    # The ring-buffer generator's steps give the same logits.
    from audiozoo import generation

    net = task.model.decoder_net
    shifted = jnp.pad(codes[:, :-1], ((0, 0), (1, 0)), constant_values=128)
    stepped = generation.teacher_force(net, {"params": variables["params"]["decoder"]}, shifted,
                                       local_cond=encoding)
    np.testing.assert_allclose(stepped, want_logits.numpy(), atol=1e-4)


def test_imported_workdir_records_its_source_and_takes_the_raw_weights(nsynth_import):
    prefix, weights, workdir = nsynth_import
    note = json.loads((workdir / "magenta_import.json").read_text())
    assert note["source"] == prefix and note["weights"] == "raw" and note["global_step"] == 200000
    # Left: the EMA shadows, one Adam slot, beta1_power and global_step: training state.
    assert note["training_variables_not_imported"] == len(weights) + 3
    config = json.loads((workdir / "config.json").read_text())
    assert config["task"]["mu_law"] == "magenta" and config["task"]["partial_frame"] == "trim"
    assert (workdir / "receptive_field.json").is_file()


def test_ema_import_takes_the_moving_averages(tmp_path, nsynth_import):
    prefix, weights, workdir = nsynth_import
    import audiozoo

    ema_dir = mn.import_nsynth(prefix, tmp_path / "ema", ema=True, shape=SMALL)
    raw = audiozoo.load(workdir).variables["params"]["encoder"]["start"]["kernel"]
    averaged = audiozoo.load(ema_dir).variables["params"]["encoder"]["start"]["kernel"]
    np.testing.assert_allclose(averaged - raw, 0.01, atol=1e-6)


def test_the_tutorial_verbs_run_on_an_imported_checkpoint(tmp_path, nsynth_import, capsys):
    """encode a 4 s note (125 x 16) and 40,000 samples (78 x 16), save, decode, mix."""
    from audiozoo.cli import main

    _, _, workdir = nsynth_import
    rng = np.random.default_rng(2)
    for name, samples in (("a.wav", 64000), ("b.wav", 40000), ("c.wav", 2048)):
        sf.write(tmp_path / name, 0.3 * rng.uniform(-1, 1, samples), 16000, subtype="PCM_16")
    w = ["--workdir", str(workdir)]
    assert main(["encode", str(tmp_path / "a.wav"), *w, "--out", str(tmp_path / "a.npy")]) == 0
    assert main(["encode", str(tmp_path / "b.wav"), *w, "--out", str(tmp_path / "b.npy")]) == 0
    assert np.load(tmp_path / "a.npy").shape == (125, 16)
    assert np.load(tmp_path / "b.npy").shape == (78, 16)
    assert main(["decode", str(tmp_path / "b.npy"), *w, "--out", str(tmp_path / "b_re.wav")]) == 0
    assert sf.info(tmp_path / "b_re.wav").frames == 78 * 512
    # Mixing covers the shorter clip's whole frames (c: 4).
    assert main(["interpolate", str(tmp_path / "a.wav"), str(tmp_path / "c.wav"), *w,
                 "--weights", "0.5", "--out", str(tmp_path / "mix.wav")]) == 0
    assert sf.info(tmp_path / "mix.wav").frames == 4 * 512


def test_cli_import_writes_a_workdir_and_never_overwrites_one(tmp_path, nsynth_import, capsys):
    from audiozoo.cli import main

    prefix, _, workdir = nsynth_import
    # The CLI imports the full-size model: this small checkpoint is refused by name.
    assert main(["import", "magenta-nsynth", prefix, "--workdir", str(tmp_path / "w")]) == 2
    assert "ae_bottleneck/W (1, 1, 8, 16) (expected (1, 1, 128, 16))" in capsys.readouterr().err
    assert not (tmp_path / "w" / "config.json").exists()
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        mn.import_nsynth(prefix, workdir, shape=SMALL)


def _rename(old, new):
    return lambda arrays: arrays.__setitem__(new, arrays.pop(old))


@pytest.mark.parametrize("edit, named", [
    (_rename("dilatedconv_2/W", "dilated_conv_2/W"), "missing: dilatedconv_2/W"),
    (lambda a: a.__setitem__("cond_map_3/W", np.zeros((1, 1, 16, 8), np.float32)),
     "wrong shape: cond_map_3/W (1, 1, 16, 8) (expected (1, 1, 16, 16))"),
    (lambda a: a.__setitem__("skip_5/W", np.zeros((1, 1, 8, 6), np.float32)),
     "not in the model: skip_5/W"),
])
def test_a_renamed_misshaped_or_extra_variable_is_refused_by_name(tmp_path, edit, named):
    prefix, _ = nsynth_checkpoint(tmp_path, edit=edit)
    with pytest.raises(CheckpointFormatError, match=named.replace("(", r"\(").replace(")", r"\)")):
        mn.import_nsynth(prefix, tmp_path / "run", shape=SMALL)
    assert not (tmp_path / "run").exists()


# ---- GANSynth -----------------------------------------------------------------------------

def gansynth_checkpoint(root, flags=SMALL_FLAGS, edit=None):
    """A released-style folder: experiment.json and the final stage's checkpoint with the
    raw networks, the generator's EMA, Adam slots under the train ops' scope and counters."""
    full = {**mg.DEFAULT_FLAGS, **flags}
    weights = ref.random_weights(mg.variable_shapes(full), seed=3)
    arrays = dict(weights)
    arrays |= {f"{k}/ExponentialMovingAverage": 0.9 * v for k, v in weights.items()
               if k.startswith("Generator/")}
    first = next(iter(weights))
    arrays |= {f"progressive_gan_train_ops/{first}/Adam": weights[first],
               "progressive_gan_train_ops/beta1_power": np.float32(0.0),
               "Variable": np.float32(1234.0)}
    if edit:
        edit(arrays)
    stage = root / f"stage_{2 * full['num_resolutions'] - 2:05d}"
    stage.mkdir(parents=True)
    (root / "stage_00000").mkdir()
    (root / "experiment.json").write_text(json.dumps(flags))
    ref.write_checkpoint(stage / "model.ckpt", arrays, global_step=4000)
    return {k: v for k, v in arrays.items() if k.endswith("ExponentialMovingAverage")}, full


@pytest.fixture(scope="module")
def gansynth_import(tmp_path_factory):
    root = tmp_path_factory.mktemp("gansynth")
    ema, flags = gansynth_checkpoint(root / "acoustic_only")
    return ema, flags, mg.import_gansynth(root / "acoustic_only", root / "run")


def test_released_gansynth_table_fits_the_paper_generator():
    flags = {**mg.DEFAULT_FLAGS, **RELEASED_FLAGS}
    table = mg.variable_shapes(flags)
    g = "Generator/progressive_gan_generator/progressive_gan_block_{}/"
    d = "Discriminator/progressive_gan_discriminator/progressive_gan_block_{}/"
    assert table[g.format(1) + "conv0/conv2d/kernel"] == (2, 16, 256 + 61, 256)
    assert table[g.format(7) + "conv1/conv2d/kernel"] == (3, 3, 32, 32)
    assert table[g.format(7) + "to_rgb/conv2d/kernel"] == (1, 1, 32, 2)
    assert table[d.format(1) + "conv0/conv2d/kernel"] == (3, 3, 257, 256)
    assert table[d.format(1) + "conv1/conv2d/kernel"] == (2, 16, 256, 256)
    assert table[d.format(1) + "logits/dense/kernel"] == (256, 1)
    assert table[mg.PITCH_HEAD + "/dense/kernel"] == (256, 61)
    config = mg.gansynth_config(flags)
    assert config.task.representation == "if_mel" and config.task.nfft == 2048
    task = build_task(config)
    abstract = jax.eval_shape(task.init_train_state, jax.random.key(0), task.dummy_batch(1))
    for net in ("generator", "discriminator"):
        params = mg.to_params(lambda name: np.zeros(table[name], np.float32), flags, net)
        check_tree(params, abstract.params[net], net)


@pytest.mark.parametrize("progress, blocks", [(0.0, 1), (2.0, 3)], ids=["first", "last"])
def test_imported_generator_equals_magentas_graph(gansynth_import, progress, blocks):
    ema, flags, workdir = gansynth_import
    import audiozoo

    run = audiozoo.load(workdir)  # the EMA generator, as magenta samples with
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 8)).astype(np.float32)
    pitch = np.array([0, 30, 60])
    w = {k.removesuffix("/ExponentialMovingAverage"): tf.constant(v) for k, v in ema.items()}
    want = ref.gansynth_generate(tf.constant(z), tf.one_hot(pitch, 61), progress, blocks, w, flags,
                                 prefix=lambda scope: mg.GENERATOR + scope)
    got = run.task.generate_images(run.state.params["generator"], z, pitch, progress, blocks)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


def test_imported_gansynth_workdir_generates_notes(gansynth_import, tmp_path, capsys):
    from audiozoo.cli import main

    _, _, workdir = gansynth_import
    w = ["--workdir", str(workdir)]
    assert main(["generate", *w, "--pitch", "60", "--pitch", "64",
                 "--out", str(tmp_path / "note.wav")]) == 0
    assert sf.info(tmp_path / "note_60.wav").frames == 256
    assert main(["interpolate", *w, "--pitch", "60", "--weights", "0", "1",
                 "--out", str(tmp_path / "mix.wav")]) == 0
    pitches = json.loads((workdir / "pitches.json").read_text())["pitch_counts"]
    assert pitches["24"] == 551 and pitches["84"] == 977 and len(pitches) == 61


def test_a_renamed_gansynth_variable_is_refused_by_name(tmp_path):
    name = "Generator/progressive_gan_generator/progressive_gan_block_2/conv1/conv2d/kernel"
    gansynth_checkpoint(tmp_path / "ckpt", edit=_rename(name, name.replace("conv1", "conv_1")))
    with pytest.raises(CheckpointFormatError, match=f"missing: {name}"):
        mg.import_gansynth(tmp_path / "ckpt", tmp_path / "run")


def test_unsupported_gansynth_hparams_are_refused_by_name(tmp_path):
    gansynth_checkpoint(tmp_path / "ckpt", flags={**SMALL_FLAGS, "simple_arch": True})
    with pytest.raises(ValueError, match="simple_arch=True"):
        mg.import_gansynth(tmp_path / "ckpt", tmp_path / "run")
