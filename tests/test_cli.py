"""The `audiozoo` command line: train with overrides, generate, and clear failures."""

import numpy as np
import pytest
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
    # An output of the wrong kind is named before the workdir is even read.
    assert main(["encode", "a.wav", "--workdir", str(tmp_path / "none"), "--out",
                 str(tmp_path / "a.txt")]) == 2
    assert "name a .npy file" in capsys.readouterr().err
    # Multi-host flags without --distributed would be ignored: refused instead.
    assert main(args + ["--coordinator", "host0:1234", "--process-id", "0"]) == 2
    assert "--coordinator, --process-id apply to multi-host runs only: add --distributed" in \
        capsys.readouterr().err


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


@pytest.mark.integration
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


def _train_tiny(workdir, config, *overrides):
    steps = ["--config.train.num_steps=1", "--config.train.eval_every=0",
             "--config.train.checkpoint_every=1", "--config.train.batch_size=4"]
    assert main(["train", "--config", config, "--workdir", str(workdir), *steps, *overrides]) == 0


@pytest.mark.slow
def test_generate_on_a_classifier_or_autoencoder_names_the_verbs_to_use(tmp_path, capsys):
    _train_tiny(tmp_path / "cls", "configs/classify_tiny.py:sincnet", "--config.data.num_train=8",
                "--config.data.num_eval=4")
    _train_tiny(tmp_path / "ae", "configs/nsynth_ae_tiny.py", "--config.data.num_train=8",
                "--config.task.num_samples=0", "--config.model.encoder_layers=2",
                "--config.model.decoder_layers=2", "--config.data.segment_length=256")
    capsys.readouterr()
    for name, verbs in (("cls", "`audiozoo evaluate`, `audiozoo classify`"),
                        ("ae", "`audiozoo encode`, `audiozoo decode`, `audiozoo interpolate`")):
        out = tmp_path / f"{name}.wav"
        assert main(["generate", "--workdir", str(tmp_path / name), "--seconds", "0.01",
                     "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "`audiozoo generate` does not apply to the" in err and f"verbs are: {verbs}" in err
        assert not out.exists()


def test_generate_names_the_flag_of_a_non_finite_or_empty_request(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert main(["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(workdir)] + TINY) == 0
    base = ["generate", "--workdir", str(workdir), "--out", str(tmp_path / "x.wav")]
    for extra, message in (
            (["--seconds", "inf"], "--seconds=inf must be > 0 and finite"),
            (["--seconds", "nan"], "--seconds=nan must be > 0 and finite"),
            (["--seconds", "1e-6"], "--seconds=1e-06 is less than one sample at 16000 Hz"),
            (["--seconds", "0.01", "--chunk-seconds", "inf"], "--chunk-seconds=inf must be > 0"),
            (["--seconds", "0.01", "--chunk-seconds", "nan"], "--chunk-seconds=nan must be > 0"),
            (["--seconds", "0.01", "--batch", "0"], "--batch=0 must be >= 1"),
            (["--seconds", "0.01", "--temperature", "nan"], "--temperature=nan must be >= 0"),
            (["--seconds", "0.01", "--top-p", "nan"], "--top-p=nan must be in (0, 1]")):
        capsys.readouterr()
        assert main(base + extra) == 2, extra
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_train_refuses_a_negative_step_count_before_any_work(tmp_path, capsys):
    workdir = tmp_path / "run"
    args = ["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(workdir)] + TINY
    assert main(args + ["--config.train.num_steps=-5"]) == 2
    captured = capsys.readouterr()
    assert "train.num_steps=-5 must be an integer >= 1" in captured.err
    assert "trained" not in captured.out and not workdir.exists()
    assert main(args + ["--config.train.batch_size=0"]) == 2
    assert "train.batch_size=0 must be an integer >= 1" in capsys.readouterr().err


def test_train_that_diverges_exits_2_saying_what_is_kept(tmp_path, capsys):
    args = ["train", "--config", "configs/wavenet_tiny.py", "--workdir", str(tmp_path / "a")] + TINY
    # Adam at lr 1e6: step 2's loss is finite but astronomically high, before any checkpoint.
    assert main(args + ["--config.optim.learning_rate=1e6", "--config.optim.warmup_steps=0"]) == 2
    captured = capsys.readouterr()
    assert "loss exploded at step 2" in captured.err and "no checkpoint was saved" in captured.err
    assert "trained" not in captured.out
    args[4] = str(tmp_path / "b")
    # An infinite rate (NaN at step 1; test_train has the NaN guard) is refused up front.
    assert main(args + ["--config.optim.learning_rate=1e400"]) == 2
    assert "optim.learning_rate=inf must be > 0 and finite" in capsys.readouterr().err
    assert not (tmp_path / "b" / "checkpoints").exists()


def test_train_with_skip_bad_trains_through_a_wav_that_turns_out_to_be_nan(tmp_path, capsys):
    root = tmp_path / "wavs"
    root.mkdir()
    for i in range(8):
        sf.write(root / f"note{i}.wav", 0.3 * np.sin(np.arange(1600) * (0.05 + 0.01 * i)), 16000)
    # Its header is fine, so the start-up check passes; its samples are NaN.
    sf.write(root / "a_nan.wav", np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    args = ["train", "--config", "configs/wavenet_tiny.py"] + TINY + [
        "--config.data.name=wav_folder", f"--config.data.root={root}",
        "--config.model.num_global_ids=0", "--config.model.global_channels=0",
        "--config.task.global_cond="]  # 8 train files, batch 4, 2 steps: every file is read
    assert main(args + ["--workdir", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert "a_nan.wav" in err and "NaN" in err and "--config.data.skip_bad=True" in err
    with pytest.warns(UserWarning, match=r"skipping bad audio file .*a_nan\.wav"):
        assert main(args + ["--workdir", str(tmp_path / "lenient"), "--config.data.skip_bad=True"]) == 0
    assert "trained" in capsys.readouterr().out
