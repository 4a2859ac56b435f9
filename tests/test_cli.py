"""The `audiozoo` command line: train with overrides, generate, and clear failures."""

import numpy as np
import soundfile as sf

from audiozoo.cli import main

TINY = [
    "--config.train.num_steps=2", "--config.train.batch_size=4", "--config.train.log_every=1",
    "--config.train.checkpoint_every=2", "--config.train.eval_every=0",
    "--config.data.num_train=16", "--config.data.segment_length=200",
    "--config.model.num_layers=2", "--config.model.residual_channels=4",
    "--config.model.gate_channels=8", "--config.model.skip_channels=4",
    "--config.task.num_samples=0",
]


def test_train_then_generate(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert main(["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(workdir)] + TINY) == 0
    assert (workdir / "checkpoints").is_dir() and (workdir / "config.json").exists()
    out = tmp_path / "gen.wav"
    assert main(["generate", "--workdir", str(workdir), "--seconds", "0.01", "--out", str(out),
                 "--batch", "2", "--global-id", "3"]) == 0
    for name in ("gen_0.wav", "gen_1.wav"):
        audio, rate = sf.read(tmp_path / name)
        assert rate == 16000 and audio.shape == (160,)
    assert "wrote" in capsys.readouterr().out


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    args = ["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(tmp_path)]
    assert main(args + ["--config.train.nm_steps=3"]) == 2
    assert "valid keys there" in capsys.readouterr().err
    assert main(args + ["--config.model.name=resnet"]) == 2
    assert "wavenet" in capsys.readouterr().err.split("valid names:")[1]
    assert main(["generate", "--workdir", str(tmp_path / "none"), "--seconds", "1",
                 "--out", str(tmp_path / "x.wav")]) == 2
    assert "audiozoo train" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_generate_rejects_bad_arguments(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert main(["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(workdir)] + TINY) == 0
    base = ["generate", "--workdir", str(workdir), "--out", str(tmp_path / "x.wav")]
    assert main(base + ["--seconds", "0.01", "--global-id", "9"]) == 2
    assert "outside the model's ids 0..4" in capsys.readouterr().err
    assert main(base + ["--seconds", "-1"]) == 2
    assert "must be > 0" in capsys.readouterr().err
    assert main(base + ["--seconds", "0.01", "--method", "beam"]) == 2
    assert "not one of" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_generate_continues_a_prime_with_each_sampling_mode(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert main(["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(workdir)] + TINY) == 0
    prime = tmp_path / "prime.wav"
    sf.write(prime, 0.3 * np.sin(np.arange(80) / 5.0), 16000)
    for method in ("greedy", "mode", "top_p", "argmax"):
        out = tmp_path / f"{method}.wav"
        assert main(["generate", "--workdir", str(workdir), "--seconds", "0.005", "--out", str(out),
                     "--prime", str(prime), "--method", method, "--chunk-seconds", "0.002",
                     "--global-id", "1"]) == 0
        audio, _ = sf.read(out)
        assert audio.shape == (80 + 80,)
        # The file starts with the prime as the model heard it (mu-law quantised).
        np.testing.assert_allclose(audio[:80], 0.3 * np.sin(np.arange(80) / 5.0), atol=0.02)
    base = ["generate", "--workdir", str(workdir), "--seconds", "0.01", "--out", str(tmp_path / "y.wav")]
    np.save(tmp_path / "feat.npy", np.zeros((4, 2), np.float32))
    assert main(base + ["--local-cond", str(tmp_path / "feat.npy")]) == 2
    assert "no local conditioning" in capsys.readouterr().err
    assert main(base + ["--prime", str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav" in capsys.readouterr().err
    assert not (tmp_path / "y.wav").exists()
