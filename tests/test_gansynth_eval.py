"""GANSynth evaluation: the classifier's log-magnitude front end against its definition, the
pitch classifier, its config through `audiozoo train`, and `audiozoo evaluate` on a GANSynth
workdir (IS, pitch accuracy and entropy, FID, NDB) with its argument errors."""

import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.audio.frontend import Frontend, default_frontend_config
from audiozoo.cli import main
from audiozoo.config import load_config
from audiozoo.models.pitch_classifier import PitchClassifier
from audiozoo.tasks import build_task
from audiozoo.train.loop import train
from test_gansynth_task import micro_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "gansynth_pitch_classifier.py")


def micro_classifier_config(segment_length=1024):
    """The :tiny pitch classifier cut to micro_config's 1024-sample notes."""
    c = load_config(CONFIG + ":tiny")
    c.model.update(channels=(8,) * 9, hidden=16)
    c.frontend.update(n_fft=128, hop_length=32, num_frames=32)
    c.data.update(segment_length=segment_length, num_train=64, num_eval=16)
    c.train.update(num_steps=2, batch_size=8, log_every=1, eval_every=0, checkpoint_every=2)
    return c


def _numpy_logmag(audio, n_fft, hop, num_frames, top_db=120.0):
    """librosa.stft (centred, reflect) -> power_to_db(ref=max, amin=1e-13, top_db) / top_db
    + 1 -> drop Nyquist -> [frames, bins] zero-padded to num_frames, in float64."""
    x = np.pad(audio.astype(np.float64), n_fft // 2, mode="reflect")
    frames = 1 + (len(x) - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spec = np.fft.rfft(np.stack([x[t * hop:t * hop + n_fft] for t in range(frames)]) * window)
    db = 10 * np.log10(np.maximum(np.abs(spec) ** 2, 1e-13))
    db = np.maximum(db - db.max(), -top_db)
    out = (db / top_db + 1)[:, :-1]
    return np.pad(out, ((0, num_frames - frames), (0, 0)))


def test_logmag_frontend_matches_its_definition():
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    loud = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(4000)
    noise = 0.3 * rng.standard_normal(4000)
    noise[:2000] = 0.0  # silence: 130 dB below the peak, held at the 120 dB floor
    audio = np.stack([loud, noise]).astype(np.float32)
    cfg = default_frontend_config("logmag")
    cfg.update(n_fft=256, hop_length=64, num_frames=64)
    front = Frontend.from_config(cfg)
    got = np.asarray(front(audio))
    assert got.shape == (2, 64, 128) and front.num_bins == 128
    for row, clip in zip(got, audio):
        np.testing.assert_allclose(row, _numpy_logmag(clip, 256, 64, 64), atol=2e-4)
    assert got.max(axis=(1, 2)).tolist() == [1.0, 1.0] and got.min() == 0.0
    assert np.all(got[1, 5:20] == 0.0)  # silent frames sit on the floor
    paper = Frontend.from_config({"kind": "logmag"})
    assert paper.output_shape(64000) == (1, 256, 512)
    with pytest.raises(ValueError, match="top_db=0.0 must be > 0"):
        Frontend.from_config({"kind": "logmag", "top_db": 0.0})


def test_pitch_classifier_shapes_features_and_dtype():
    model = PitchClassifier()
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((2, 256, 512)))
    params = shapes["params"]
    assert [params[f"conv{n}"]["kernel"].shape for n in ("0", "1", "7", "7_1", "8")] == [
        (5, 5, 1, 128), (4, 4, 128, 128), (4, 4, 512, 512), (4, 4, 512, 512), (512, 1024)]
    assert params["logits"]["kernel"].shape == (1024, 128) and "batch_stats" in shapes
    small = PitchClassifier(num_classes=7, channels=(4,) * 9, hidden=8, dtype=jnp.bfloat16)
    x = jax.random.uniform(jax.random.key(1), (3, 5, 6))  # far below 512 x 256: SAME keeps 1 x 1
    variables = jax.jit(small.init)(jax.random.key(0), x)
    logits = jax.jit(small.apply)(variables, x)
    features = jax.jit(lambda v, x: small.apply(v, x, method="features"))(variables, x)
    assert logits.shape == (3, 7) and logits.dtype == jnp.bfloat16  # the task casts to float32
    assert features.shape == (3, 4)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    # Training mode updates the batch statistics.
    _, updated = jax.jit(lambda v, x: small.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables, x)
    assert not np.allclose(updated["batch_stats"]["bn0"]["mean"],
                           variables["batch_stats"]["bn0"]["mean"])
    with pytest.raises(ValueError, match="channels has 2 widths"):
        PitchClassifier(channels=(4, 4)).init(jax.random.key(0), x)


def test_paper_config_builds_with_the_reference_input():
    task = build_task(load_config(CONFIG))
    assert type(task.model).__name__ == "PitchClassifier" and task.label_key == "pitch"
    assert task.frontend.output_shape(task.config.data.segment_length) == (1, 256, 512)
    optim = task.config.optim
    assert (optim.learning_rate, optim.b1, task.config.train.batch_size) == (1e-4, 0.5, 16)


MICRO_CLASSIFIER = ["--config.model.channels=(8, 8, 8, 8, 8, 8, 8, 8, 8)",
                    "--config.model.hidden=16", "--config.frontend.n_fft=128",
                    "--config.frontend.hop_length=32", "--config.frontend.num_frames=32",
                    "--config.data.segment_length=1024", "--config.data.num_train=64",
                    "--config.data.num_eval=16", "--config.train.num_steps=40",
                    "--config.train.batch_size=8", "--config.train.eval_every=40",
                    "--config.train.num_eval_batches=1", "--config.train.log_every=20",
                    "--config.train.checkpoint_every=40",
                    # enough for its batch-norm statistics, and so its outputs, to depend on
                    # the note (after 10 steps at 1e-4 every note gets the same posterior)
                    "--config.optim.learning_rate=1e-3"]


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    """A micro GANSynth and a pitch classifier for its 1024-sample notes, trained with
    `audiozoo train` from configs/gansynth_pitch_classifier.py:tiny."""
    root = tmp_path_factory.mktemp("ganeval")
    train(micro_config(4), root / "gan")
    assert main(["train", "--config", CONFIG + ":tiny", "--workdir", str(root / "cls"),
                 *MICRO_CLASSIFIER]) == 0
    return root


@pytest.mark.slow
def test_pitch_classifier_config_trains_on_pitch_labels(workdirs):
    labels = json.loads((workdirs / "cls" / "labels.json").read_text())
    assert labels["label_key"] == "pitch" and labels["classes"] == [str(i) for i in range(128)]
    records = [json.loads(line) for line in open(workdirs / "cls" / "metrics.jsonl")]
    assert [r["step"] for r in records if r["split"] == "train"] == [20, 40]
    assert [r["examples"] for r in records if r["split"] == "eval"] == [8]


@pytest.mark.slow
def test_evaluate_reports_generated_and_real_rows(workdirs, tmp_path, capsys):
    report_path = tmp_path / "out" / "eval.json"
    assert main(["evaluate", "--workdir", str(workdirs / "gan"), "--classifier",
                 str(workdirs / "cls"), "--samples", "12", "--k", "3", "--batch", "8",
                 "--report", str(report_path)]) == 0
    printed = capsys.readouterr().out
    assert "generated" in printed and "real" in printed and "NDB/k" in printed
    report = json.loads(report_path.read_text())
    assert report["k"] == 3 and report["training_notes"] == 12
    assert [p.name for p in report_path.parent.iterdir()] == ["eval.json"]  # no temporaries
    for name in ("generated", "real"):
        row = report[name]
        assert row["examples"] == 12
        # exp of a mean KL: >= 1 up to rounding
        assert np.isfinite(row["inception_score"]) and row["inception_score"] >= 1.0 - 1e-9
        assert 0.0 <= row["pitch_accuracy"] <= 1.0 and row["pitch_entropy"] >= 0.0
        assert row["fid"] >= 0.0 and 0 <= row["ndb"] <= 3
        assert row["ndb_over_k"] == row["ndb"] / 3 and len(row["different_bins"]) == row["ndb"]
        # The classifier tells these notes apart: a constant one would give IS 1 and FID 0.
        assert row["inception_score"] > 1.001 and row["fid"] > 1e-3
    # Same seed, same numbers whatever the batch; the default report goes into the GAN workdir.
    assert main(["evaluate", "--workdir", str(workdirs / "gan"), "--classifier",
                 str(workdirs / "cls"), "--samples", "12", "--k", "3", "--batch", "5"]) == 0
    again = json.loads((workdirs / "gan" / "gansynth_eval.json").read_text())
    for name in ("generated", "real"):
        for key in ("inception_score", "pitch_accuracy", "pitch_entropy", "fid", "ndb"):
            assert again[name][key] == pytest.approx(report[name][key], rel=1e-3, abs=1e-6)


@pytest.mark.slow
def test_generated_pitches_follow_the_training_counts(workdirs):
    from audiozoo import gan_evaluation
    from audiozoo.tasks import restore_latest

    _, task, state = restore_latest(workdirs / "gan")
    counts = task.load_pitch_counts(workdirs / "gan")
    classifier = gan_evaluation.PitchClassifier.restore(workdirs / "cls")
    notes = gan_evaluation._measure_generated(classifier, task, state, 40, jax.random.key(0), 16)
    assert len(notes["pitches"]) == 40 and notes["probs"].shape == (40, 128)
    trained = {24 + i for i in np.flatnonzero(counts)}
    assert set(notes["pitches"].tolist()) <= trained and len(trained) < 61
    assert notes["spectrograms"].shape == (40, 32, 32)


@pytest.mark.slow
def test_evaluate_argument_errors(workdirs, capsys):
    gan, cls = str(workdirs / "gan"), str(workdirs / "cls")
    cases = [
        (["--workdir", gan], "its metrics need a pitch classifier, `--classifier CLS_WORKDIR`"),
        (["--workdir", gan, "--classifier", gan], "not a classifier"),
        (["--workdir", cls, "--classifier", cls], "--classifier applies to GANSynth workdirs"),
        (["--workdir", gan, "--classifier", cls, "--samples", "12", "--k", "13"],
         "--k=13 NDB bins need between 1 and 12"),
        (["--workdir", gan, "--classifier", str(workdirs / "missing")], "missing"),
    ]
    for args, message in cases:
        assert main(["evaluate", *args]) == 2, args
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_classifier_for_other_notes_is_refused(workdirs):
    from audiozoo import gan_evaluation
    from audiozoo.config import ConfigError
    from audiozoo.tasks import restore_latest

    _, gan_task, _ = restore_latest(workdirs / "gan")
    for field, value, message in (("segment_length", 2048, "note length (2048 vs 1024 samples)"),
                                  ("sample_rate", 8000, "sample rate (8000 vs 16000 Hz)")):
        config = micro_classifier_config()
        config.data[field] = value
        config.frontend.sample_rate = config.data.sample_rate
        other = gan_evaluation.PitchClassifier(build_task(config), None, "CLS")
        with pytest.raises(ConfigError, match=re.escape(message)):
            other.check_fits(gan_task, "GAN")
    config = micro_classifier_config()
    config.model.num_classes = 80
    with pytest.raises(ConfigError, match="plays MIDI pitches up to 84 but the classifier in "
                       "CLS has 80 classes"):
        gan_evaluation.PitchClassifier(build_task(config), None, "CLS").check_fits(gan_task, "GAN")


@pytest.mark.slow
def test_tiny_pitch_classifier_hears_pitch(tmp_path):
    """configs/gansynth_pitch_classifier.py:tiny on the synthetic notes (25 pitches, chance
    4 %) must name most held-out notes' pitch."""
    workdir = tmp_path / "tiny"
    assert main(["train", "--config", CONFIG + ":tiny", "--workdir", str(workdir)]) == 0
    report = tmp_path / "report.json"
    assert main(["evaluate", "--workdir", str(workdir), "--report", str(report),
                 "--confusion", str(tmp_path / "c.png")]) == 0
    assert json.loads(report.read_text())["accuracy"] > 0.6


@pytest.mark.slow
def test_tiny_gansynth_makes_the_asked_for_pitch(tmp_path):
    """configs/gansynth_tiny.py trained as configured (about an hour on a shared 2-core CPU):
    its losses move, and the tiny pitch classifier names the pitch of its notes above chance
    (pitch accuracy counts a semitone either way)."""
    gan, classifier, report = tmp_path / "gan", tmp_path / "cls", tmp_path / "eval.json"
    assert main(["train", "--config", os.path.join(REPO, "configs", "gansynth_tiny.py"),
                 "--workdir", str(gan)]) == 0
    rows = [json.loads(line) for line in open(gan / "metrics.jsonl")]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert train_rows[-1]["d_ac_loss"] < train_rows[0]["d_ac_loss"] - 1.0
    assert min(r["g_ac_loss"] for r in train_rows[-10:]) < train_rows[0]["g_ac_loss"] - 1.0
    assert main(["train", "--config", CONFIG + ":tiny", "--workdir", str(classifier)]) == 0
    assert main(["evaluate", "--workdir", str(gan), "--classifier", str(classifier),
                 "--samples", "512", "--k", "10", "--report", str(report)]) == 0
    metrics = json.loads(report.read_text())
    assert metrics["real"]["pitch_accuracy"] > 0.8
    # A guess that ignores the note is right (within a semitone) at most 3 times in 25 pitches
    # drawn uniformly; the generated notes must beat that by 4 standard errors.
    chance, samples = 3 / 25, metrics["generated"]["examples"]
    assert metrics["generated"]["pitch_accuracy"] > chance + 4 * np.sqrt(chance * (1 - chance) / samples)
