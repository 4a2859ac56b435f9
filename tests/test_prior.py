"""The autoregressive prior over a stacked ADA's top level: it trains on the frozen stack's
codes, and generates audio from nothing (or after a prime) top-down."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

import audiozoo as az
from audiozoo.cli import main
from audiozoo.config import ConfigError, apply_overrides, load_config
from audiozoo.train.metrics import read_jsonl
from audiozoo.tasks import build_task

ADA = "configs/ada_tiny.py"
QUIET = ["--config.train.eval_every=0", "--config.train.tensorboard=False",
         "--config.train.log_every=5"]
# A prior small enough for a test: 4 layers of dilations 1..8, kernel 3 (31 codes).
SMALL_PRIOR = ["--config.model.num_layers=4", "--config.model.num_stacks=1"]


def _train(workdir, variant, *overrides):
    assert main(["train", "--config", f"{ADA}:{variant}", "--workdir", str(workdir), *QUIET,
                 *overrides]) == 0
    return read_jsonl(workdir / "metrics.jsonl")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(level-1 argmax ADA, a prior over its 64 codes) trained briefly."""
    root = tmp_path_factory.mktemp("prior")
    _train(root / "level1", "argmax", "--config.train.num_steps=10", "--config.task.num_samples=0")
    records = _train(root / "prior", "prior", f"--config.task.lower_workdir={root / 'level1'}",
                     "--config.model.num_classes=64", "--config.data.segment_length=4096",
                     "--config.train.num_steps=40", "--config.task.num_samples=1",
                     "--config.task.sample_seconds=0.05", *SMALL_PRIOR)
    return root, records


@pytest.mark.integration
def test_a_tiny_prior_learns_the_codes_below_the_uniform_entropy(stack):
    root, records = stack
    train = [r for r in records if r["split"] == "train"]
    assert train[-1]["loss"] < train[0]["loss"]
    assert train[-1]["bits_per_code"] < math.log2(64)  # uniform over the 64 codes
    assert [p.name for p in (root / "prior" / "samples").iterdir()] == ["step0000040_0_prior.wav"]
    rows = json.loads((root / "prior" / "receptive_field.json").read_text())
    assert [r["level"] for r in rows] == [1, "prior"]
    assert rows[1] == {"level": "prior", "codes": 31, "samples": 31 * 64,
                       "seconds": 31 * 64 / 16000, "hop_samples": 64}


@pytest.mark.slow
def test_generate_from_nothing_gives_the_asked_length(stack, tmp_path):
    root, _ = stack
    out = tmp_path / "music.wav"
    assert main(["generate", "--workdir", str(root / "prior"), "--seconds", "0.03", "--batch",
                 "2", "--out", str(out)]) == 0
    for i in range(2):
        audio, rate = sf.read(tmp_path / f"music_{i}.wav")
        assert rate == 16000 and len(audio) == 480 and np.all(np.abs(audio) <= 1)
    run = az.load(root / "prior")
    audio = run.generate(seconds=0.021, batch_size=3, seed=2)
    assert audio.shape == (3, 336)
    np.testing.assert_array_equal(audio, run.generate(seconds=0.021, batch_size=3, seed=2))


@pytest.mark.slow
def test_a_prime_is_continued_at_the_top_level(stack, tmp_path):
    root, _ = stack
    prime = tmp_path / "prime.wav"
    sf.write(prime, 0.3 * np.sin(np.arange(1000) / 7.0), 16000)  # 15 whole codes + 40 samples
    out = tmp_path / "cont.wav"
    assert main(["generate", "--workdir", str(root / "prior"), "--seconds", "0.01", "--prime",
                 str(prime), "--out", str(out)]) == 0
    # The stack's decoding of the prime's 15 whole codes, then the 160 new samples.
    assert len(sf.read(out)[0]) == 15 * 64 + 160


@pytest.mark.integration
def test_a_prime_shorter_than_one_top_level_code_is_refused(stack, tmp_path, capsys):
    root, _ = stack
    prime = tmp_path / "click.wav"
    sf.write(prime, 0.3 * np.sin(np.arange(50) / 7.0), 16000)
    assert main(["generate", "--workdir", str(root / "prior"), "--seconds", "0.01", "--prime",
                 str(prime), "--out", str(tmp_path / "out.wav")]) == 2
    assert "the prime is 50 samples, shorter than one top-level code" in capsys.readouterr().err
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.integration
def test_prior_config_mismatches_name_the_keys(stack):
    root, _ = stack
    config = load_config(f"{ADA}:prior")
    apply_overrides(config, [("task.lower_workdir", str(root / "level1"))])
    with pytest.raises(ConfigError, match="model.num_classes=32 must equal the top level's codebook size 64"):
        build_task(config)
    apply_overrides(config, [("model.num_classes", "64"), ("data.segment_length", "1024")])
    with pytest.raises(ConfigError, match="gives 16 top-level codes; it must give more than"):
        build_task(config)


@pytest.mark.slow
def test_a_prior_needs_a_discrete_autoencoder_below(tmp_path):
    workdir = tmp_path / "wavenet"
    assert main(["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(workdir),
                 "--config.train.num_steps=1", *QUIET, "--config.task.num_samples=0"]) == 0
    config = load_config(f"{ADA}:prior")
    apply_overrides(config, [("task.lower_workdir", str(workdir))])
    with pytest.raises(ConfigError, match="holds no discrete autoencoder"):
        build_task(config)
