"""A classifier on a folder of class subfolders, as a user runs it: train, evaluate on other
data, classify folders of files; label sets, data checks, reports, silence, time shift."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
import soundfile as sf

from audiozoo import evaluation, inference, plots
from audiozoo.audio.augment import time_shift
from audiozoo.cli import main
from audiozoo.config import ConfigError, load_config
from audiozoo.data import WavFolder, make_dataset
from audiozoo.tasks import build_task

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "classify_tiny.py")
RATE = 16000
# Natural order c1, c2, c10 (alphabetical order would put c10 second).
PITCHES = {"c1": 300.0, "c2": 600.0, "c10": 1200.0}


def _tone(path, freq, seconds=0.25, lead=0.0, tail=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(RATE * seconds)) / RATE
    audio = np.concatenate([np.zeros(int(RATE * lead)), 0.3 * np.sin(2 * np.pi * freq * t),
                            np.zeros(int(RATE * tail))])
    sf.write(path, audio, RATE)
    return path


def _folders(root, per_class=3, classes=PITCHES):
    for name in classes:
        for k in range(per_class):
            _tone(root / name / f"{k}.wav", PITCHES.get(name, 2000.0) * (1 + 0.02 * k))
    return root


def _train_args(workdir, root, *extra):
    return ["train", "--config", f"{CONFIG}:ast", "--workdir", str(workdir),
            "--config.data.name=wav_folder", "--config.data.labels=True",
            f"--config.data.root={root}", "--config.train.num_steps=2",
            "--config.train.batch_size=4", "--config.train.eval_every=0",
            "--config.train.checkpoint_every=2", "--config.train.log_every=1", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(workdir, train folder, test folder) of a 3-class AST trained for two steps."""
    base = tmp_path_factory.mktemp("digits")
    train, test = _folders(base / "train"), _folders(base / "test", per_class=1)
    assert main(_train_args(base / "run", train, "--config.model.num_classes=3",
                            f"--config.data.eval_root={test}")) == 0
    return base / "run", train, test


# ---- 1. num_classes against the data ---------------------------------------------------
def test_class_count_mismatch_stops_before_the_first_step(tmp_path, capsys):
    root = _folders(tmp_path / "data")
    assert main(_train_args(tmp_path / "run", root)) == 2  # the config says 5 classes
    err = capsys.readouterr().err
    assert "3 classes (c1, c2, c10)" in err and "--config.model.num_classes=3" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_synthetic_family_subset_must_match_num_classes():
    config = load_config(f"{CONFIG}:ast")
    config.data.families = ("sine", "bell")
    task = build_task(config)
    with pytest.raises(ConfigError, match="2 classes \\(sine, bell\\).*num_classes=2"):
        task.check_data(make_dataset(config.data, "train"))


def test_unlabelled_folder_is_refused_with_the_fix(tmp_path, capsys):
    root = _folders(tmp_path / "data")
    args = [a for a in _train_args(tmp_path / "run", root) if "labels=True" not in a]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no 'label' label" in err and "--config.data.labels=True" in err


# ---- 2. the label set lives in the workdir ---------------------------------------------
def test_label_set_is_written_in_natural_order(trained):
    workdir, _, _ = trained
    saved = json.loads((workdir / "labels.json").read_text())
    assert saved == {"classes": ["c1", "c2", "c10"], "label_key": "label", "multi_label": False}


def test_classify_names_come_from_the_workdir_not_the_data_folder(trained, tmp_path, capsys):
    workdir, train, _ = trained
    moved = tmp_path / "moved"
    shutil.copytree(train, moved)
    config = json.loads((workdir / "config.json").read_text())
    # The data folder changes after training: the saved names must not follow it.
    config["data"]["root"] = str(moved)
    (workdir / "config.json").write_text(json.dumps(config))
    try:
        os.rename(moved / "c1", moved / "aaa")
        _folders(moved, classes={"b0": 1})
        wav = _tone(tmp_path / "x.wav", 600.0)
        assert main(["classify", str(wav), "--workdir", str(workdir), "--top", "3"]) == 0
        ranked = capsys.readouterr().out.strip().split("\t")[1:]
        assert sorted(item.split(" ")[0] for item in ranked) == ["c1", "c10", "c2"]
    finally:
        config["data"]["root"] = str(train)
        (workdir / "config.json").write_text(json.dumps(config))


def test_workdir_without_labels_json_falls_back_with_a_warning(trained, tmp_path, capsys):
    workdir, _, _ = trained
    old = tmp_path / "old"
    shutil.copytree(workdir, old)
    (old / "labels.json").unlink()
    wav = _tone(tmp_path / "x.wav", 600.0)
    with pytest.warns(UserWarning, match="labels.json does not exist"):
        assert main(["classify", str(wav), "--workdir", str(old), "--top", "3"]) == 0
    ranked = capsys.readouterr().out.strip().split("\t")[1:]
    assert sorted(item.split(" ")[0] for item in ranked) == ["c1", "c10", "c2"]
    from audiozoo.tasks.classify import load_label_set
    from audiozoo.checkpoint import load_workdir_config

    with pytest.warns(UserWarning):
        labels = load_label_set(old, load_workdir_config(old), 3)
    # Such runs numbered folder classes alphabetically, and the fallback keeps that order.
    assert labels.classes == ("c1", "c10", "c2")


def test_resume_with_a_changed_label_set_is_refused(tmp_path, capsys):
    root = _folders(tmp_path / "data")
    assert main(_train_args(tmp_path / "run", root, "--config.model.num_classes=3")) == 0
    os.rename(root / "c10", root / "c3")  # same count, different classes
    args = _train_args(tmp_path / "run", root, "--config.model.num_classes=3",
                       "--config.train.num_steps=4")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "labels.json" in err and "c3" in err and "new --workdir" in err


# ---- 4. evaluate on other data -----------------------------------------------------------
def test_evaluate_on_another_folder_maps_classes_by_name(trained, tmp_path, capsys):
    workdir, _, _ = trained
    other = _folders(tmp_path / "other", per_class=2, classes={"c10": 0, "c2": 0})
    report_path = tmp_path / "out" / "other.json"
    assert main(["evaluate", "--workdir", str(workdir), "--data", str(other),
                 "--confusion", str(tmp_path / "out" / "other.png")]) == 0
    report = json.loads(report_path.read_text())
    assert report["classes"] == ["c1", "c2", "c10"] and report["examples"] == 4
    support = {row["class"]: row["support"] for row in report["per_class"]}
    assert support == {"c1": 0, "c2": 2, "c10": 2}
    assert {r["true"] for r in report["files"]} == {"c2", "c10"}
    _tone(other / "c7" / "0.wav", 900.0)
    assert main(["evaluate", "--workdir", str(workdir), "--data", str(other)]) == 2
    assert "['c7']" in capsys.readouterr().err


def test_evaluate_takes_data_overrides_and_refuses_model_ones(trained, tmp_path, capsys):
    workdir, train, test = trained
    assert main(["evaluate", "--workdir", str(workdir), f"--config.data.eval_root={train}",
                 "--report", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["examples"] == 9  # the train folder
    for key in ("model.num_classes=5", "frontend.mean=0.0", "data.segment_length=100"):
        assert main(["evaluate", "--workdir", str(workdir), f"--config.{key}"]) == 2
        assert f"--config.{key.split('=')[0]}" in capsys.readouterr().err


# ---- 5. the evaluation report -------------------------------------------------------------
def test_evaluate_writes_a_full_report_beside_the_png(trained, capsys):
    workdir, _, test = trained
    assert main(["evaluate", "--workdir", str(workdir)]) == 0  # eval split = the test folder
    assert (workdir / "confusion.png").stat().st_size > 1000
    report = json.loads((workdir / "confusion.json").read_text())
    assert report["model"] == "ast" and report["data"] == "eval" and report["examples"] == 3
    assert [row["class"] for row in report["per_class"]] == ["c1", "c2", "c10"]
    assert set(report["per_class"][0]) == {"class", "precision", "recall", "f1", "support"}
    assert set(report["macro"]) == set(report["micro"]) == {"precision", "recall", "f1"}
    counts = np.array(report["confusion"]["counts"])
    assert counts.shape == (3, 3) and counts.sum() == 3
    assert report["micro"]["recall"] == pytest.approx(report["accuracy"])
    files = report["files"]
    assert sorted(os.path.relpath(r["path"], test) for r in files) == ["c1/0.wav", "c10/0.wav", "c2/0.wav"]
    assert all(r["correct"] == (r["true"] == r["predicted"]) and 0 < r["score"] <= 1 for r in files)
    assert sum(r["correct"] for r in files) / 3 == pytest.approx(report["accuracy"])


def test_precision_recall_f1_by_hand():
    logits = np.eye(3)[[0, 0, 1, 2, 2]] * 5.0  # predictions 0 0 1 2 2
    report = evaluation.classification_report(logits, np.array([0, 1, 1, 2, 0]), multi_label=False)
    per = report["per_class"]
    np.testing.assert_allclose(per["precision"], [1 / 2, 1, 1 / 2])
    np.testing.assert_allclose(per["recall"], [1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(per["f1"], [1 / 2, 2 / 3, 2 / 3])
    np.testing.assert_array_equal(per["support"], [2, 2, 1])
    assert report["macro"]["f1"] == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)
    assert report["micro"]["f1"] == pytest.approx(report["accuracy"]) == pytest.approx(3 / 5)


def test_confusion_png_has_a_title_and_a_colour_bar(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path: figures.append(fig))
    plots.plot_confusion(np.array([[2, 1], [0, 3]]), ["a", "b"], tmp_path / "c.png",
                              title="ast, eval: accuracy 83.3% (6 clips)")
    (fig,) = figures
    assert len(fig.axes) == 2  # the matrix and its colour bar
    assert fig.axes[0].get_title() == "ast, eval: accuracy 83.3% (6 clips)"


def test_training_eval_records_say_how_many_examples_they_cover(tmp_path):
    root = _folders(tmp_path / "data", per_class=5)
    assert main(_train_args(tmp_path / "run", root, "--config.model.num_classes=3",
                            "--config.train.eval_every=2", "--config.train.num_eval_batches=1",
                            "--config.data.eval_fraction=0.4")) == 0
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["examples"] for r in records if r["split"] == "eval"] == [4]


# ---- 6. classify many files -----------------------------------------------------------------
def test_classify_folders_files_and_lists_in_one_call(trained, tmp_path, capsys):
    workdir, _, test = trained
    extra = _tone(tmp_path / "extra.wav", 300.0, seconds=1.2)
    (tmp_path / "list.txt").write_text("extra.wav\n")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(RATE), RATE)
    out = tmp_path / "pred.csv"
    assert main(["classify", str(test), str(silent), "--list", str(tmp_path / "list.txt"),
                 "--workdir", str(workdir), "--top", "2", "--out", str(out), "--batch", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    assert lines[3].startswith(f"{silent}\t(silent")
    rows = out.read_text().strip().splitlines()
    assert rows[0] == "path,windows,used_windows,label1,score1,label2,score2,error"
    assert len(rows) == 6 and rows[4].startswith(f"{silent},2,0")
    assert rows[5].startswith(f"{extra},3,3,")
    assert main(["classify", str(extra), "--workdir", str(workdir), "--out", str(tmp_path / "p.json"),
                 "--pooling", "max"]) == 0
    (record,) = json.loads((tmp_path / "p.json").read_text())
    assert record["used_windows"] == 3 and not record["silent"]
    assert set(record["scores"]) == {"c1", "c2", "c10"} and len(record["top"]) == 3


def test_skip_bad_reports_unreadable_files_and_classifies_the_rest(trained, tmp_path, capsys):
    """One corrupt file stops a folder's classification, naming it and --skip-bad; with
    --skip-bad each unreadable file gets a line and a CSV / JSON record with its error, and
    the readable ones their labels, in the order given."""
    workdir, _, _ = trained
    folder = tmp_path / "mixed"
    _tone(folder / "a.wav", 300.0)
    (folder / "b.wav").write_bytes(b"RIFF" + os.urandom(64))
    sf.write(folder / "c.wav", np.zeros(0), RATE)
    _tone(folder / "d.wav", 1200.0)
    args = ["classify", str(folder), "--workdir", str(workdir), "--top", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "b.wav" in err and "--skip-bad" in err
    assert main([*args, "--skip-bad", "--out", str(tmp_path / "p.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(folder / f"{n}.wav") for n in "abcd"]
    assert "(unreadable: cannot read" in lines[1] and "is empty" in lines[2]
    assert all(line.split("\t")[1].split(" ")[0] in PITCHES for line in (lines[0], lines[3]))
    rows = (tmp_path / "p.csv").read_text().strip().splitlines()
    assert rows[2].startswith(f"{folder / 'b.wav'},0,0,,,") and "cannot read" in rows[2]
    assert rows[1].endswith(",") and rows[1].split(",")[3] in PITCHES
    assert main([*args, "--skip-bad", "--out", str(tmp_path / "p.json")]) == 0
    records = json.loads((tmp_path / "p.json").read_text())
    assert [r["error"] is not None for r in records] == [False, True, True, False]
    assert not any(r["silent"] for r in records) and records[1]["scores"] is None


def test_classify_flags_are_checked_before_any_file_is_classified(trained, tmp_path, capsys):
    """A --top below 1, an --out that is not .csv/.json or a --confusion that is not .png stops
    before any file is read (no result lines); a --top above the class count shows every
    class once."""
    workdir, _, test = trained
    for verb, flags, message in (
            ("classify", ["--top", "0"], "--top=0 must be >= 1"),
            ("classify", ["--out", str(tmp_path / "p.txt")], "write a .csv or a .json"),
            ("evaluate", ["--confusion", str(tmp_path / "c.txt")], "name a .png file")):
        files = [str(test)] if verb == "classify" else []
        assert main([verb, *files, "--workdir", str(workdir), *flags]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == ""
    out = tmp_path / "p.csv"
    assert main(["classify", str(test), "--workdir", str(workdir), "--top", "9",
                 "--out", str(out)]) == 0
    assert len(capsys.readouterr().out.splitlines()[0].split("\t")) == 1 + 3
    assert out.read_text().splitlines()[0].endswith("label3,score3,error")


def test_trailing_silence_is_skipped_and_does_not_change_the_answer(trained, tmp_path):
    workdir, _, _ = trained
    from audiozoo.tasks.classify import load_label_set
    from audiozoo.tasks import restore_latest

    config, task, state = restore_latest(workdir)
    classifier = inference.Classifier(task, state, load_label_set(workdir, config, 3))
    clean = _tone(tmp_path / "clean.wav", 600.0, seconds=0.5)
    padded = _tone(tmp_path / "padded.wav", 600.0, seconds=0.5, tail=1.5)
    a, b = classifier.classify([str(clean), str(padded)])
    assert (a.windows, a.used, b.windows, b.used) == (1, 1, 4, 1)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_load_classifies_arrays_as_the_cli_classifies_files(trained, tmp_path):
    import audiozoo as az

    workdir, _, _ = trained
    run = az.load(workdir)
    assert run.labels.classes == ("c1", "c2", "c10") and "classify" in run.verbs
    path = _tone(tmp_path / "tone.wav", 600.0, seconds=1.2)
    audio, _ = sf.read(path, dtype="float32")
    (from_array,) = run.classify([audio])
    (from_file,) = run.classifier().classify([str(path)])
    assert from_array.windows == from_file.windows == 3
    np.testing.assert_allclose(from_array.scores, from_file.scores, rtol=1e-5)
    with pytest.raises(ValueError, match="verbs are: evaluate, classify"):
        run.generate(seconds=1.0)


def test_window_levels_and_pooling_by_hand():
    audio = np.concatenate([np.full(100, 0.5), np.zeros(100), np.full(50, 0.1)]).astype(np.float32)
    wins, levels = inference.windows(audio, 100)
    assert wins.shape == (3, 100) and not wins[2, 50:].any()
    # Levels are over each window's real samples: the short last window is not diluted.
    np.testing.assert_allclose(levels[[0, 2]], [20 * np.log10(0.5), 20 * np.log10(0.1)], rtol=1e-6)
    assert levels[1] == -np.inf
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    np.testing.assert_allclose(inference.pool(logits, False, "mean_probs"), [0.4, 0.15, 0.45])
    np.testing.assert_allclose(inference.pool(logits, False, "max"), [0.7, 0.2, 0.8])
    mean_logits = np.exp(logits.mean(0)) / np.exp(logits.mean(0)).sum()
    np.testing.assert_allclose(inference.pool(logits, False, "mean_logits"), mean_logits, rtol=1e-6)


# ---- 7. stats ----------------------------------------------------------------------------------
def test_stats_gives_no_normalisation_flag_for_a_waveform_front_end(tmp_path, capsys):
    assert main(["stats", "--config", f"{CONFIG}:sincnet", "--out", str(tmp_path / "s.json"),
                 "--batches", "1", "--config.data.num_train=32"]) == 0
    out = capsys.readouterr().out
    assert "--config.frontend.mean=" not in out and "no --config.frontend.mean/std flag applies" in out


# ---- 8. random placement and time shift -------------------------------------------------------
def test_short_clips_are_placed_at_random_deterministically(tmp_path):
    _tone(tmp_path / "a" / "x.wav", 500.0, seconds=0.1)
    ds = WavFolder(tmp_path, sample_rate=RATE, segment_length=8000, labels=True, pad_mode="random")
    starts = set()
    for k in range(6):
        audio = ds.example(0, np.random.default_rng(k))["audio"]
        nonzero = np.flatnonzero(audio)
        assert nonzero[-1] - nonzero[0] < 1600 and audio.shape == (8000,)
        starts.add(int(nonzero[0]))
    assert len(starts) > 3 and max(starts) > 1000
    np.testing.assert_array_equal(ds[0]["audio"], ds[0]["audio"])  # the eval crop is fixed
    with pytest.raises(ValueError, match="pad_mode"):
        WavFolder(tmp_path, sample_rate=RATE, segment_length=8000, pad_mode="middle")


def test_classifier_configs_place_short_clips_at_random(tmp_path):
    _folders(tmp_path)
    config = load_config(f"{CONFIG}:ast")
    config.data.update(name="wav_folder", labels=True, root=str(tmp_path))
    assert config.data.pad_mode == "random" and make_dataset(config.data, "train").pad_mode == "random"


def test_time_shift_moves_each_clip_within_bounds_and_zero_fills():
    audio = jax.numpy.tile(jax.numpy.arange(1.0, 101.0), (16, 1))
    shifted = np.asarray(time_shift(jax.random.key(0), audio, 10))
    shifts = set()
    for row in shifted:
        kept = row[row > 0]
        shift = int(np.flatnonzero(row == kept[0])[0]) - int(kept[0] - 1)
        np.testing.assert_array_equal(np.diff(kept), 1.0)  # contiguous, not wrapped around
        assert abs(shift) <= 10 and len(kept) == 100 - abs(shift)
        shifts.add(shift)
    assert len(shifts) > 4
    np.testing.assert_array_equal(shifted, time_shift(jax.random.key(0), audio, 10))
    assert (np.asarray(time_shift(jax.random.key(0), audio, 0)) == np.asarray(audio)).all()


def test_time_shift_runs_inside_the_train_step(tmp_path):
    root = _folders(tmp_path / "data")
    assert main(_train_args(tmp_path / "run", root, "--config.model.num_classes=3",
                            "--config.task.time_shift=0.05")) == 0
    config = load_config(f"{CONFIG}:ast")
    config.task.time_shift = 0.05
    assert build_task(config).max_shift == 800
