"""Classification through the generic trainer: learning, evaluation verbs, metrics, errors."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from audiozoo import evaluation
from audiozoo.cli import main
from audiozoo.config import ConfigError, load_config
from audiozoo.tasks import build_task
from audiozoo.train.loop import train

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "classify_tiny.py")
TESTS = os.path.dirname(__file__)


def _config(model, **train):
    config = load_config(f"{CONFIG}:{model}")
    config.train.update(train)
    return config


def _eval_accuracy(workdir):
    records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
    return [r["accuracy"] for r in records if r["split"] == "eval"][-1]


# Light models run by default; every variant runs with -m slow.
FAST = ["ast"]
SLOW = ["sincnet", "resnet18", "alexnet", "vgg11", "vgg16", "inception_v1", "resnet50", "densenet121", "squeezenet1_1",
        "cnn14", "wav2vec2_classifier"]


@pytest.mark.parametrize("model", FAST + [pytest.param(m, marks=pytest.mark.slow) for m in SLOW])
def test_tiny_config_learns_well_above_chance(model, tmp_path):
    config = _config(model, num_steps=100, eval_every=100, checkpoint_every=100, log_every=20)
    train(config, tmp_path)
    assert _eval_accuracy(tmp_path) > 0.5  # chance is 0.2


def _tiny_workdir(tmp_path):
    workdir = tmp_path / "run"
    args = ["train", "--config", f"{CONFIG}:resnet18", "--workdir", str(workdir),
            "--config.train.num_steps=2", "--config.train.eval_every=0",
            "--config.train.checkpoint_every=2", "--config.data.num_train=32",
            "--config.data.num_eval=20"]
    assert main(args) == 0
    return workdir


@pytest.mark.integration
def test_evaluate_and_classify_verbs_and_a_bad_file(tmp_path, capsys):
    workdir = _tiny_workdir(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", "--workdir", str(workdir), "--batch", "8"]) == 0
    out = capsys.readouterr().out
    assert "eval: 20 examples, accuracy" in out and "mAP" in out
    assert (workdir / "confusion.png").stat().st_size > 1000
    wav = tmp_path / "note.wav"
    sf.write(wav, 0.3 * np.sin(np.arange(20000) * 0.1), 16000)  # 1.25 s: three windows
    assert main(["classify", str(wav), "--workdir", str(workdir), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1  # one line per file: path, then "name score" for the top 3
    path, *ranked = lines[0].split("\t")
    assert path == str(wav) and len(ranked) == 3
    names = {"sine", "square", "saw", "pluck", "bell"}
    assert all(item.split(" ")[0] in names for item in ranked)
    scores = [float(item.split(" ")[1]) for item in ranked]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    (tmp_path / "bad.wav").write_bytes(os.urandom(300))
    assert main(["classify", str(tmp_path / "bad.wav"), "--workdir", str(workdir)]) == 2
    assert "bad.wav" in capsys.readouterr().err


def test_stats_verb(tmp_path, capsys):
    out = tmp_path / "stats.json"
    assert main(["stats", "--config", f"{CONFIG}:resnet18", "--out", str(out), "--batches", "2",
                 "--config.data.num_train=32"]) == 0
    stats = json.loads(out.read_text())
    assert stats["count"] > 0 and np.isfinite(stats["mean"])
    assert "--config.frontend.mean=" in capsys.readouterr().out


def test_frontend_must_match_the_model():
    config = _config("resnet18")
    config.frontend.update(kind="waveform", mean=0.0, std=1.0)
    with pytest.raises(ConfigError, match="reads 'logmel' input.*frontend.kind=logmel"):
        build_task(config)


@pytest.mark.slow
def test_batch_norm_statistics_are_synchronised_over_8_devices(tmp_path):
    code = f"""
        import jax, numpy as np
        from audiozoo.config import load_config
        from audiozoo.train.loop import train
        config = load_config({CONFIG!r} + ":resnet18")
        config.train.update(num_steps=2, eval_every=0, checkpoint_every=2, batch_size=8)
        config.data.num_train = 32
        state = train(config, {str(tmp_path)!r} + "/d{{n}}")
        leaves = [np.asarray(x) for x in jax.tree.leaves((state.params, state.extra))]
        np.savez({str(tmp_path)!r} + "/d{{n}}.npz", *leaves)
    """
    for n in (1, 8):
        env = dict(os.environ, PYTHONPATH=TESTS, JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(code.format(n=n))], env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    one, eight = np.load(tmp_path / "d1.npz"), np.load(tmp_path / "d8.npz")
    for key in one.files:  # params and batch_stats alike
        np.testing.assert_allclose(one[key], eight[key], rtol=2e-4, atol=2e-5)


def test_average_precision_and_confusion_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    relevant = np.array([1, 0, 1, 0])
    # Relevant items at ranks 1 and 3: precision 1/1 and 2/3.
    assert evaluation.average_precision(scores, relevant) == pytest.approx((1 + 2 / 3) / 2)
    counts = evaluation.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    logits = np.array([[2.0, -1.0], [-1.0, 3.0], [0.5, 0.2]])
    report = evaluation.classification_report(logits, np.array([0, 1, 1]), multi_label=False)
    assert report["accuracy"] == pytest.approx(2 / 3)


def test_graft_takes_matching_leaves_only():
    from audiozoo.tasks.classify import graft

    params = {"encoder": {"w": np.zeros((2, 3), np.float32)}, "head": {"w": np.zeros((3, 5), np.float32)}}
    loaded = {"encoder": {"w": np.ones((2, 3))}, "head": {"w": np.ones((3, 7))}}
    grafted, taken = graft(params, loaded)
    assert taken == 1
    np.testing.assert_array_equal(grafted["encoder"]["w"], 1.0)
    np.testing.assert_array_equal(grafted["head"]["w"], 0.0)
    # A bare backbone fits a model that wraps it in a submodule.
    wrapped, taken = graft({"backbone": {"encoder": {"w": np.zeros((2, 3), np.float32)}}}, loaded)
    assert taken == 1 and wrapped["backbone"]["encoder"]["w"].sum() == 6


def test_fine_tuning_starts_from_a_hugging_face_ast(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    hf_config = transformers.ASTConfig(hidden_size=96, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=192, max_length=48, num_mel_bins=128,
                                       num_labels=7)
    transformers.ASTForAudioClassification(hf_config).eval().save_pretrained(tmp_path / "hf")
    config = _config("ast", num_steps=1, eval_every=0, checkpoint_every=1)
    config.task.init_from_hf = str(tmp_path / "hf")
    from audiozoo.models.ast import from_hf
    from audiozoo.train.loop import Trainer

    state, _ = Trainer(config, tmp_path / "run").initial_state()
    _, hf = from_hf(tmp_path / "hf")
    from flax import traverse_util
    ours = traverse_util.flatten_dict(state.params)
    theirs = traverse_util.flatten_dict(hf["params"])
    same = [k for k in ours if k in theirs and theirs[k].shape == ours[k].shape]
    assert len(same) == len(ours) - 2  # all but the 5-way head's kernel and bias
    for k in same:
        np.testing.assert_allclose(np.asarray(ours[k]), np.asarray(theirs[k]), atol=1e-6)
