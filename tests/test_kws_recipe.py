"""The keyword-spotting recipe (configs/kws.py): Speech Commands layout with held-out speakers,
augmented batches that survive a resume, automatic normalisation, and a short run that beats
the in-project baseline on a small noisy set; the script that makes the noisy speech set."""

import importlib.util
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from audiozoo import evaluation
from audiozoo.baseline import run_baseline
from audiozoo.cli import main
from audiozoo.config import load_config
from audiozoo.data import make_dataset
from audiozoo.tasks import restore_latest
from audiozoo.train.loop import Trainer, train
from helpers import run_interrupted_at

REPO = Path(__file__).resolve().parents[1]
RATE, CLIP = 16000, 8000
CLASSES = ("fall_high", "fall_low", "rise_high", "rise_low")
VARIANT_RESUME = "ast"  # the quickest recipe to compile, with normalisation statistics


def _chirp(rng, rising: bool, band: tuple[float, float], seconds: float) -> np.ndarray:
    """A chirp sweeping the band up or down: rise and fall have the same frames, in reverse
    order, so mean and std of log-mel frames cannot tell them apart."""
    t = np.arange(int(seconds * RATE)) / RATE
    low, high = band
    start, end = (low, high) if rising else (high, low)
    phase = 2 * np.pi * (start * t + (end - start) * t**2 / (2 * seconds))
    return np.sin(phase) * np.hanning(len(t))


def _chirp_set(root: Path, speakers: int = 8, takes: int = 6) -> Path:
    """Four chirp "words" by `speakers` "speakers" (each its own chirp length and bands), in
    white noise at 5-15 dB SNR; the last speaker is the test set, the one before it validation."""
    import soundfile as sf

    lists = {"validation": [], "testing": []}
    for s in range(speakers):
        rng = np.random.default_rng(s)
        seconds, shift = rng.uniform(0.15, 0.3), rng.uniform(0.9, 1.1)
        for name in CLASSES:
            band = (1500 * shift, 3000 * shift) if name.endswith("high") else (300 * shift, 900 * shift)
            for take in range(takes):
                clip = np.zeros(CLIP)
                chirp = _chirp(rng, name.startswith("rise"), band, seconds)
                at = rng.integers(CLIP - len(chirp))
                clip[at:at + len(chirp)] = 0.3 * chirp
                noise = rng.normal(size=CLIP)
                snr = rng.uniform(5, 15)
                clip += noise * np.sqrt(np.mean(clip**2) / (np.mean(noise**2) * 10 ** (snr / 10)))
                path = f"{name}/spk{s}_nohash_{take}.wav"
                (root / name).mkdir(parents=True, exist_ok=True)
                sf.write(root / path, clip.astype(np.float32), RATE)
                split = {speakers - 1: "testing", speakers - 2: "validation"}.get(s)
                if split:
                    lists[split].append(path)
    for split, names in lists.items():
        (root / f"{split}_list.txt").write_text("\n".join(names) + "\n")
    rng = np.random.default_rng(100)
    for folder, name, audio in [("_background_noise_", "hum.wav", np.sin(np.arange(RATE) * 0.02)),
                                ("_background_noise_", "white.wav", rng.uniform(-0.5, 0.5, RATE // 4)),
                                ("_room_impulse_responses_", "room.wav",
                                 np.r_[1.0, 0.3 * rng.normal(size=1600) * np.exp(-np.arange(1600) / 300)])]:
        (root / folder).mkdir(exist_ok=True)
        sf.write(root / folder / name, (audio / np.max(np.abs(audio)) * 0.5).astype(np.float32), RATE)
    return root


@pytest.fixture(scope="module")
def chirps(tmp_path_factory):
    return _chirp_set(tmp_path_factory.mktemp("chirps"))


def _recipe(root, variant="cnn", **train):
    config = load_config(f"{REPO}/configs/kws.py:{variant}")
    config.data.update(root=str(root), segment_length=CLIP)
    config.model.num_classes = len(CLASSES)
    config.task.stats_batches = 2 if config.task.stats_batches else 0
    config.optim.warmup_steps = 5
    config.train.update(dict(batch_size=16, eval_every=0, log_every=10, **train))
    return config


def test_splits_keep_both_lists_out_of_training(chirps):
    config = _recipe(chirps)
    train_files = set(make_dataset(config.data, "train").files)
    validation = make_dataset(config.data, "eval")
    config.data.eval_list = "testing_list.txt"
    test = make_dataset(config.data, "eval")
    assert len(validation) == len(test) == 24 and len(train_files) == 6 * 24
    assert not train_files & (set(validation.files) | set(test.files))
    assert all("spk7" in f for f in test.files) and all("spk6" in f for f in validation.files)


@pytest.mark.slow
def test_augmented_training_resumes_exactly_and_reuses_its_statistics(chirps, tmp_path):
    config = _recipe(chirps, VARIANT_RESUME, num_steps=4, checkpoint_every=2)
    uninterrupted = train(config, tmp_path / "a")
    trainer = Trainer(_recipe(chirps, VARIANT_RESUME, num_steps=4, checkpoint_every=2), tmp_path / "b")
    run_interrupted_at(trainer, 3)
    stats = (tmp_path / "b" / "feature_stats.json").read_text()
    resumed = train(_recipe(chirps, VARIANT_RESUME, num_steps=4, checkpoint_every=2), tmp_path / "b")
    for a, b in zip(jax.tree.leaves(uninterrupted.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "b" / "feature_stats.json").read_text() == stats
    saved = json.loads((tmp_path / "b" / "config.json").read_text())["frontend"]
    assert saved["mean"] == pytest.approx(json.loads(stats)["mean"]) and saved["std"] > 1.0
    # `audiozoo stats` measures the same batches.
    assert main(["stats", "--config", f"{REPO}/configs/kws.py:{VARIANT_RESUME}", "--out", str(tmp_path / "s.json"),
                 "--batches", "2", f"--config.data.root={chirps}", f"--config.data.segment_length={CLIP}",
                 "--config.train.batch_size=16"]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["mean"] == pytest.approx(saved["mean"])


@pytest.mark.slow
def test_a_short_recipe_run_beats_the_baseline_on_held_out_speakers(chirps, tmp_path):
    config = _recipe(chirps, num_steps=80, checkpoint_every=80)
    config.data.eval_list = "testing_list.txt"
    train(config, tmp_path)
    _, task, state = restore_latest(tmp_path)
    test = make_dataset(config.data, "eval")
    labels = task.label_set(make_dataset(config.data, "train"))
    model = evaluation.evaluate(task, state, test, labels)["accuracy"]
    baseline = run_baseline(config)["accuracy"]
    # Rise and fall share their frame statistics: the baseline tells only the band apart.
    assert baseline < 0.75 and model > baseline + 0.15, (model, baseline)


@pytest.mark.slow
def test_baseline_verb_reads_a_trained_workdir(chirps, tmp_path, capsys):
    config = _recipe(chirps, num_steps=1, checkpoint_every=1)
    train(config, tmp_path)
    capsys.readouterr()
    assert main(["baseline", "--workdir", str(tmp_path), "--config.data.eval_list=testing_list.txt"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("eval: 24 examples, accuracy ") and "logistic regression" in out
    report = json.loads((tmp_path / "baseline.json").read_text())
    assert report["examples"] == 24 and len(report["files"]) == 24 and "confusion" in report


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_noisy_kws", REPO / "experiments" / "classifiers" / "make_noisy_kws.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not all(shutil.which(p) for p in ("espeak-ng", "sox", "fluidsynth")),
                    reason="needs espeak-ng, sox and fluidsynth")
def test_noisy_speech_set_has_the_layout_and_held_out_speakers(tmp_path):
    script = _script()
    manifest = script.make(tmp_path, 0, {"train": 1, "validation": 1, "test": 1}, ("yes", "no"))
    config = load_config(f"{REPO}/configs/kws.py:cnn")
    config.data.root = str(tmp_path)
    train_set, validation = make_dataset(config.data, "train"), make_dataset(config.data, "eval")
    assert train_set.classes == ("no", "yes") and len(train_set) == 2 * 40 and len(validation) == 2 * 5
    speaker = {sid: info["split"] for sid, info in manifest["speakers"].items()}
    assert {speaker[Path(f).name.split("_")[0]] for f in train_set.files} == {"train"}
    tested = (tmp_path / "testing_list.txt").read_text().split()
    assert len(tested) == 2 * 6 and {speaker[Path(f).name.split("_")[0]] for f in tested} == {"test"}
    test_voices = {(manifest["speakers"][Path(f).name.split("_")[0]]["accent"],
                    manifest["speakers"][Path(f).name.split("_")[0]]["voice"]) for f in tested}
    heard = script.speakers()["train"]
    assert "en-gb-scotland" in {a for a, _ in test_voices} - {a for a, _ in heard}  # an unheard accent
    assert "f4" in {v for _, v in test_voices} - {v for _, v in heard}  # and an unheard voice
    clip = train_set[0]["audio"]
    assert clip.shape == (16000,) and 0 < np.max(np.abs(clip)) < 1
    assert len(list((tmp_path / "_background_noise_").glob("*.wav"))) == 15
    assert len(list((tmp_path / "_room_impulse_responses_").glob("*.wav"))) == 40
