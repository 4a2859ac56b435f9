"""The generic trainer: learning, resume after a kill, data parallelism, bad input."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
import soundfile as sf

from audiozoo.config import ConfigError, apply_overrides, load_config
from audiozoo.data import DataError
from audiozoo.checkpoint import IncompatibleCheckpointError
from audiozoo.train.loop import Trainer, TrainingDivergedError, train
from helpers import params_after, run_interrupted_at, tiny_config

TESTS = os.path.dirname(__file__)


def _run_python(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=TESTS, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_tiny_config_loss_drops_well_below_its_start(tmp_path):
    config = load_config(os.path.join(TESTS, "..", "configs", "wavenet_tiny.py"))
    config.train.update(num_steps=150, eval_every=150, checkpoint_every=150, log_every=10)
    config.task.num_samples = 0
    train(config, tmp_path)
    records = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    train_losses = [r["loss"] for r in records if r["split"] == "train"]
    eval_loss = [r["loss"] for r in records if r["split"] == "eval"][-1]
    assert train_losses[0] > 5.0  # about ln(256) = 5.55 at the start
    assert train_losses[-1] < 0.7 * train_losses[0]
    assert eval_loss < 0.7 * train_losses[0]
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_samples_are_written(tmp_path):
    config = tiny_config(num_steps=2)
    config.task.update(num_samples=2, sample_seconds=0.01)
    train(config, tmp_path)
    wavs = sorted((tmp_path / "samples").glob("*.wav"))
    assert [w.name for w in wavs] == ["step0000002_0_family0.wav", "step0000002_1_family1.wav"]
    audio, rate = sf.read(wavs[0])
    assert rate == 16000 and len(audio) == 160


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    uninterrupted = params_after(tiny_config(num_steps=6), tmp_path / "a")
    # Kill the process hard (no cleanup) right after the step-4 checkpoint is on disk.
    killed = _run_python(f"""
        import os
        from audiozoo import checkpoint
        from helpers import tiny_config, params_after
        save = checkpoint.Checkpointer.save
        def save_then_die(self, step, *a, **k):
            save(self, step, *a, **k)
            if step == 4:
                self.wait()
                os._exit(9)
        checkpoint.Checkpointer.save = save_then_die
        params_after(tiny_config(num_steps=6), {str(tmp_path / 'b')!r})
    """)
    assert killed.returncode == 9, killed.stderr
    lines = [json.loads(l) for l in open(tmp_path / "b" / "metrics.jsonl")]
    assert max(r["step"] for r in lines) == 4
    resumed = params_after(tiny_config(num_steps=6), tmp_path / "b")
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_array_equal(a, b)
    lines = [json.loads(l) for l in open(tmp_path / "b" / "metrics.jsonl")]
    assert [r["step"] for r in lines] == [2, 4, 6]


def test_ctrl_c_checkpoints_the_finished_steps(tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(num_steps=6), tmp_path)
    run_interrupted_at(trainer, 3)
    assert Trainer(tiny_config(num_steps=6), tmp_path).initial_state()[1] == 3


@pytest.mark.integration
def test_data_parallel_on_8_devices_equals_one_device(tmp_path):
    code = f"""
        import json, jax, numpy as np
        from helpers import tiny_config, params_after
        assert jax.device_count() == {{n}}
        leaves = params_after(tiny_config(num_steps=2), {str(tmp_path)!r} + '/d{{n}}')
        np.savez({str(tmp_path)!r} + '/d{{n}}.npz', *leaves)
    """
    for n in (1, 8):
        env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}", "JAX_PLATFORMS": "cpu"}
        result = _run_python(code.format(n=n), env)
        assert result.returncode == 0, result.stderr[-3000:]
    one, eight = np.load(tmp_path / "d1.npz"), np.load(tmp_path / "d8.npz")
    for key in one.files:
        np.testing.assert_allclose(one[key], eight[key], rtol=1e-4, atol=1e-5)
    losses = [[json.loads(l)["loss"] for l in open(tmp_path / f"d{n}" / "metrics.jsonl")]
              for n in (1, 8)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_hosts_equal_one_process(tmp_path):
    """Two processes (2 CPU devices each) through jax.distributed, each feeding its own half of
    every batch, end with the parameters of a single-process run."""
    port = _free_port()
    code = f"""
        import sys
        from audiozoo.train.mesh import initialize_distributed
        initialize_distributed("127.0.0.1:{port}", 2, int(sys.argv[1]))
        import jax, numpy as np
        from helpers import tiny_config, params_after
        assert jax.process_count() == 2 and jax.device_count() == 4
        leaves = params_after(tiny_config(num_steps=4), {str(tmp_path / 'multi')!r})
        if jax.process_index() == 0:
            np.savez({str(tmp_path / 'multi.npz')!r}, *leaves)
    """
    env = dict(os.environ, PYTHONPATH=TESTS, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outputs)
    single = params_after(tiny_config(num_steps=4), tmp_path / "single")
    multi = np.load(tmp_path / "multi.npz")
    for a, key in zip(single, multi.files):
        np.testing.assert_allclose(a, multi[key], rtol=1e-4, atol=1e-6)
    lines = [json.loads(l) for l in open(tmp_path / "multi" / "metrics.jsonl")]
    assert [r["step"] for r in lines] == [2, 4]  # one log, written by process 0 only


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from audiozoo.tasks.wavenet import WaveNetTask

    config = tiny_config(num_steps=4)
    train(config, tmp_path)
    good = params_after(tiny_config(num_steps=4), tmp_path)  # already done: just restores
    finite_loss = WaveNetTask.loss

    def nan_loss(self, *args, **kwargs):
        loss, aux = finite_loss(self, *args, **kwargs)
        return loss * float("nan"), aux

    monkeypatch.setattr(WaveNetTask, "loss", nan_loss)
    with pytest.raises(TrainingDivergedError, match="NaN/Inf at step 5.*newest checkpoint, step 4 in .*is kept"):
        train(tiny_config(num_steps=8), tmp_path)
    monkeypatch.undo()
    trainer = Trainer(tiny_config(num_steps=8), tmp_path)
    state, step = trainer.initial_state()
    assert step == 4
    for a, b in zip(good, jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, np.asarray(b))


@pytest.mark.slow
def test_exploding_loss_stops_before_the_stretch_is_saved(tmp_path):
    train(tiny_config(num_steps=4), tmp_path)
    good = params_after(tiny_config(num_steps=4), tmp_path)  # already done: just restores
    config = tiny_config(num_steps=12)
    config.optim.learning_rate = 1e6  # Adam: every weight moves by ~1e6, the loss stays finite
    with pytest.raises(TrainingDivergedError, match=r"loss exploded at step 6: .* over "
                       r"train.max_loss_ratio=100 x the median .*newest checkpoint, step 4 in "):
        train(config, tmp_path)
    trainer = Trainer(tiny_config(num_steps=12), tmp_path)
    state, step = trainer.initial_state()
    assert step == 4 and trainer.checkpointer.latest_step() == 4
    for a, b in zip(good, jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, np.asarray(b))
    # Turned off, the same run goes on to "train" into a loss of millions.
    config.train.max_loss_ratio = 0.0
    train(config, tmp_path)
    losses = [json.loads(l)["loss"] for l in open(tmp_path / "metrics.jsonl")]
    assert losses[1] < 6.0 and losses[-1] > 1e5


@pytest.mark.slow
def test_divergence_without_any_checkpoint_says_nothing_is_kept(tmp_path):
    for lr, match in ((float("inf"), "NaN/Inf at step 1"), (1e6, "loss exploded at step 2")):
        config = tiny_config(num_steps=6)
        config.train.checkpoint_every = 100
        config.optim.learning_rate = lr
        with pytest.raises(TrainingDivergedError, match=f"{match}.*no checkpoint was saved.*"
                           "train.checkpoint_every=100.*nothing of this run is kept"):
            train(config, tmp_path / str(lr))
        assert Trainer(tiny_config(num_steps=6), tmp_path / str(lr)).checkpointer.latest_step() is None


def test_loss_guard_trips_on_an_explosion_not_on_a_low_loss_spike():
    from audiozoo.train.loop import LossGuard

    guard = LossGuard(100.0)
    assert guard.first_exploded([5.5, 4.0, 3.0]) is None
    assert guard.first_exploded([2.0, 400.0, 1e9]) == (1, 400.0, 3.5)
    low = LossGuard(100.0)  # a loss driven near zero, then one harder batch: not divergence
    assert low.first_exploded([5.5] + [1e-4] * 50 + [0.5, 1e-4]) is None
    assert low.first_exploded([6.0]) == (0, 6.0, 1e-4)
    assert LossGuard(0.0).first_exploded([1.0, 1e30]) is None


@pytest.mark.parametrize("key,value", [("num_steps", -5), ("num_steps", 0), ("batch_size", 0),
                                       ("log_every", -1), ("keep_checkpoints", 0),
                                       ("max_loss_ratio", 0.5), ("max_loss_ratio", float("nan"))])
def test_unusable_train_settings_are_refused_before_any_work(tmp_path, key, value):
    config = tiny_config()
    config.train[key] = value
    with pytest.raises(ConfigError, match=rf"train.{key}={value!r} must be .*--config.train.{key}"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_incompatible_checkpoint_is_refused_not_overwritten(tmp_path):
    train(tiny_config(num_steps=2), tmp_path)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    config = tiny_config(num_steps=4)
    config.model.residual_channels = 12
    with pytest.raises(IncompatibleCheckpointError, match=r"model.residual_channels: 8 -> 12"):
        train(config, tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_fields_added_since_a_checkpoint_keep_it_resumable(tmp_path):
    """A checkpoint saved before a task field existed resumes while that field keeps its
    default; set to anything else, it is a difference like any other. Loading such a
    workdir's config gives the field its default."""
    from audiozoo.checkpoint import CONFIG_FILE, config_differences, load_workdir_config
    from audiozoo.config import base_config

    current = json.loads(json.dumps(base_config("classify").to_dict()))  # as config.json holds it
    saved = json.loads(json.dumps(current))
    del saved["task"]["noise_prob"], saved["task"]["noise_snr_db"]
    assert config_differences(saved, current) == []
    current["task"]["noise_prob"] = 0.8
    assert config_differences(saved, current) == ["task.noise_prob: None -> 0.8"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(saved))
    loaded = load_workdir_config(tmp_path)
    assert loaded.task.noise_prob == 0.0 and tuple(loaded.task.noise_snr_db) == (0.0, 15.0)


def test_unknown_config_key_and_model_name(tmp_path):
    config = tiny_config()
    with pytest.raises(ConfigError, match="valid keys there: .*learning_rate"):
        apply_overrides(config, [("optim.learnig_rate", "0.1")])
    config.model.name = "wavenot"
    with pytest.raises(ConfigError, match="valid names: .*wavenet"):
        train(config, tmp_path)
    config = tiny_config()
    config.model.residual_chanels = 3
    with pytest.raises(ConfigError, match="residual_chanels is not a field.*residual_channels"):
        train(config, tmp_path)


def test_batch_must_divide_over_devices(tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "device_count", lambda: 3)
    with pytest.raises(ValueError, match="multiple of the 3 devices"):
        Trainer(tiny_config(), tmp_path)


def _wav_config(root, **data):
    config = tiny_config(num_steps=2)
    config.data.update(dict(name="wav_folder", root=str(root), sample_rate=16000), **data)
    return config


def _write_wavs(root, count=10, rate=16000):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        tone = 0.3 * np.sin(np.arange(rate // 2) * 2 * np.pi * (200 + 20 * i) / rate)
        sf.write(root / f"note{i}.wav", tone, rate)


def test_trains_on_a_wav_folder(tmp_path):
    _write_wavs(tmp_path / "wavs")
    config = _wav_config(tmp_path / "wavs")
    config.model.update(num_global_ids=0, global_channels=0)
    config.task.global_cond = ""
    config.train.batch_size = 4
    train(config, tmp_path / "run")
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_global_ids_the_data_lacks_or_outnumber_the_model_stop_before_training(tmp_path):
    """A family-conditioned config on a folder without that key, or with more speaker folders
    than the model has ids (which would be clamped to its last id), says what to set."""
    _write_wavs(tmp_path / "wavs")
    with pytest.raises(ConfigError, match="no such key.*global_cond='' --config.model.num_global"
                                          "_ids=0 --config.model.global_channels=0.*labels=True"):
        Trainer(_wav_config(tmp_path / "wavs"), tmp_path / "run")
    for speaker in ("ann", "bob", "cy"):
        _write_wavs(tmp_path / "speakers" / speaker, count=4)
    config = _wav_config(tmp_path / "speakers", labels=True)
    config.task.global_cond = "label"
    config.model.num_global_ids = 2
    with pytest.raises(ConfigError, match="3 'label' ids but model.num_global_ids=2; set "
                                          "--config.model.num_global_ids=3"):
        Trainer(config, tmp_path / "run")
    config.model.update(num_global_ids=0)
    with pytest.raises(ConfigError, match="global_channels=4 disagree"):
        Trainer(config, tmp_path / "run")


@pytest.mark.integration
def test_a_small_eval_split_and_other_formats(tmp_path):
    """The eval split too small for a batch is named as such, with the way to train without
    one; a folder of another format trains once `data.extensions` names it."""
    _write_wavs(tmp_path / "wavs", count=6)
    config = _wav_config(tmp_path / "wavs")
    config.model.update(num_global_ids=0, global_channels=0)
    config.task.global_cond = ""
    config.train.update(batch_size=2, eval_every=1)
    with pytest.raises(DataError, match="the eval split has 1 example.*global_batch_size 2.*"
                                        "--config.train.eval_every=0"):
        Trainer(config, tmp_path / "run")
    for wav in (tmp_path / "wavs").glob("*.wav"):
        audio, rate = sf.read(wav)
        sf.write(wav.with_suffix(".mp3"), audio, rate)
        wav.unlink()
    config.train.eval_every = 0
    with pytest.raises(DataError, match=r"extensions \['.wav', '.flac'\].*data.extensions="):
        Trainer(config, tmp_path / "run")
    config.data.extensions = (".mp3",)
    train(config, tmp_path / "run")
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_bad_data_errors_name_the_culprit(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        Trainer(_wav_config(tmp_path / "missing"), tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        Trainer(_wav_config(tmp_path / "empty"), tmp_path / "run")
    _write_wavs(tmp_path / "slow", rate=8000)
    with pytest.raises(Exception, match=r"note0.wav.*8000"):
        Trainer(_wav_config(tmp_path / "slow", resample=False), tmp_path / "run")
    _write_wavs(tmp_path / "bad")
    (tmp_path / "bad" / "broken.wav").write_bytes(os.urandom(500))
    with pytest.raises(Exception, match="broken.wav"):
        Trainer(_wav_config(tmp_path / "bad"), tmp_path / "run")
