"""The command line under faults a user meets: Ctrl-C at any moment, two runs on one workdir,
read-only folders, a torn metrics log, outputs interrupted before their first chunk."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from audiozoo.cli import main
from audiozoo.files import WorkdirLock, atomic_path, remove_stale_temporaries, write_text_atomic
from audiozoo.generation.stream import stream_to_files

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "wavenet_tiny.py")
TINY = [
    "--config.train.batch_size=4", "--config.train.log_every=1",
    "--config.train.checkpoint_every=2", "--config.train.eval_every=0",
    "--config.data.num_train=16", "--config.data.segment_length=200",
    "--config.model.num_layers=2", "--config.model.residual_channels=4",
    "--config.model.gate_channels=8", "--config.model.skip_channels=4",
    "--config.task.num_samples=0",
]


def _train(workdir, steps=2, *extra):
    return main(["train", "--config", CONFIG, "--workdir", str(workdir),
                 f"--config.train.num_steps={steps}", *TINY, *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("trained") / "run"
    assert _train(workdir) == 0
    return workdir


def _cli(*args) -> subprocess.Popen:
    """`audiozoo ARGS` as a user runs it (the console path), in its own process."""
    return subprocess.Popen([sys.executable, "-m", "audiozoo.cli", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_when(proc: subprocess.Popen, marker: str, presses: int = 1, timeout=240.0) -> str:
    """Sends Ctrl-C (SIGINT) `presses` times once `marker` shows on stderr; returns stderr."""
    seen, start = "", time.monotonic()
    while marker not in seen:
        char = proc.stderr.read(1)
        assert char and time.monotonic() - start < timeout, f"no {marker!r} in: {seen[-2000:]}"
        seen += char
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    _, rest = proc.communicate(timeout=timeout)
    return seen + rest


# ---- item 9: Ctrl-C at any moment ends cleanly, with a true message ------------------------
@pytest.mark.integration
def test_ctrl_c_while_the_first_step_compiles_exits_cleanly_and_saves_it(tmp_path):
    """The progress bar appears just before the train step is compiled: Ctrl-C then used to
    segfault after claiming that finished steps were saved."""
    workdir = tmp_path / "run"
    proc = _cli("train", "--config", CONFIG, "--workdir", str(workdir),
                "--config.train.num_steps=500", *TINY)
    stderr = _interrupt_when(proc, "0/500")
    assert proc.returncode == 130, stderr[-3000:]
    assert "stopping after the current training step" in stderr
    # Whether the first step had finished depends on timing; the message must say which.
    saved = re.search(r"interrupted at step (\d+); the checkpoint of step (\d+)", stderr)
    if saved:
        assert saved[1] == saved[2] == "1"
        assert [r["step"] for r in _records(workdir)] == [1]
    else:
        assert "interrupted at step 0, before any checkpoint was written; nothing was saved" in stderr
        assert not (workdir / "metrics.jsonl").exists()
    assert "checkpointed" not in stderr and "Traceback" not in stderr
    assert _train(workdir, 3) == 0
    assert [r["step"] for r in _records(workdir)] == [1, 2, 3]


def _records(workdir):
    return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


def test_two_ctrl_c_during_start_up_quit_at_once_and_say_nothing_was_saved(tmp_path):
    proc = _cli("train", "--config", CONFIG, "--workdir", str(tmp_path / "run"),
                "--config.train.num_steps=500", *TINY)
    while not (tmp_path / "run" / ".lock").exists():  # the run has started
        assert proc.poll() is None
        time.sleep(0.01)
    stderr = _interrupt_when(proc, "", presses=2)
    assert proc.returncode == 130, stderr[-3000:]
    assert "nothing was saved" in stderr or "interrupted; the files" in stderr, stderr[-3000:]
    assert "checkpointed" not in stderr


def test_ctrl_c_during_generate_keeps_whole_chunks(trained, tmp_path):
    out = tmp_path / "long.wav"
    proc = _cli("generate", "--workdir", str(trained), "--seconds", "60", "--out", str(out),
                "--chunk-seconds", "0.5")
    stderr = _interrupt_when(proc, "generating")
    assert proc.returncode == 130, stderr[-3000:]
    assert "the files hold every chunk made so far" in stderr
    info = sf.info(out)
    assert info.frames > 0 and info.frames % 8000 == 0 and info.frames < 60 * 16000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---- item 10: an interrupted output never destroys the file it replaces ---------------------
def test_interrupted_stream_before_its_first_chunk_keeps_the_old_file(tmp_path):
    from audiozoo import generation
    from audiozoo.models.wavenet import WaveNet
    import jax
    import jax.numpy as jnp

    net = WaveNet(num_layers=2, num_stacks=1, kernel_size=2, residual_channels=4,
                  gate_channels=8, skip_channels=4, num_classes=16)
    variables = net.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    old = tmp_path / "song.wav"
    sf.write(old, np.full(48000, 0.25), 16000)

    def interrupted(codes):
        raise KeyboardInterrupt

    gen = generation.Generator(net, variables, jax.random.key(1), 100)
    written, stopped = stream_to_files(gen, [old], interrupted, 16000, chunk_size=50,
                                       progress=False)
    assert (written, stopped) == (0, True)
    audio, _ = sf.read(old)
    np.testing.assert_allclose(audio, 0.25, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


def test_generate_into_an_existing_file_replaces_it_once_audio_exists(trained, tmp_path):
    out = tmp_path / "x.wav"
    sf.write(out, np.zeros(100), 16000)
    assert main(["generate", "--workdir", str(trained), "--seconds", "0.02", "--out", str(out)]) == 0
    assert sf.info(out).frames == 320
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not the temporary's private mode


def test_stale_temporaries_are_removed_by_the_next_run(tmp_path):
    workdir = tmp_path / "run"
    assert _train(workdir) == 0
    stale = [workdir / "samples" / ".step0000002_sample0.wav.k3j2l1.tmp",
             workdir / ".metrics.jsonl.abcdef.tmp"]
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"RIFF")
    keep = workdir / "samples" / "notes.tmp.txt"
    keep.write_text("mine")
    assert _train(workdir, 4) == 0
    assert not any(p.exists() for p in stale) and keep.exists()


def test_atomic_path_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "a.json"
    write_text_atomic(path, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.json"]
    (tmp_path / ".b.wav.x1y2.tmp").write_text("")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".b.wav.x1y2.tmp"]


# ---- item 11: one training run per workdir ------------------------------------------------
def test_a_second_run_on_a_busy_workdir_is_refused_naming_the_holder(tmp_path, capsys):
    workdir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from audiozoo.files import WorkdirLock\n"
         f"with WorkdirLock({str(workdir)!r}):\n    print('locked', flush=True); time.sleep(120)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _train(workdir) == 2
        err = capsys.readouterr().err
        assert f"PID and host: {holder.pid} on" in err and "another --workdir" in err
        assert not (workdir / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder died without unlocking: its lock file is stale, and the next run takes it.
    assert (workdir / ".lock").read_text().startswith(str(holder.pid))
    assert _train(workdir) == 0


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with WorkdirLock(tmp_path):
        pass
    with WorkdirLock(tmp_path):  # would raise if still held
        pass


# ---- item 12: read-only folders get a message naming the path ------------------------------
def _read_only_copy(src, dst):
    """A copy nobody may write: owned by another user and mode a-w, so that even root (whose
    subprocesses drop CAP_DAC_OVERRIDE below) is refused."""
    shutil.copytree(src, dst)
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            os.chown(os.path.join(root, name), 65534, 65534)
            os.chmod(os.path.join(root, name), 0o555 if name in dirs else 0o444)
    os.chown(dst, 65534, 65534)
    os.chmod(dst, 0o555)


def _unprivileged(*args) -> subprocess.CompletedProcess:
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: root writes anywhere")
        prefix = ["setpriv", "--inh-caps=-all",
                  "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    return subprocess.run([*prefix, sys.executable, "-m", "audiozoo.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_read_only_workdir_gets_clear_errors(trained, tmp_path):
    readonly = tmp_path / "ro"
    _read_only_copy(trained, readonly)
    try:
        result = _unprivileged("train", "--config", CONFIG, "--workdir", str(readonly),
                               "--config.train.num_steps=4", *TINY)
        assert result.returncode == 2, result.stderr[-3000:]
        assert f"cannot write {readonly}/.lock: Permission denied" in result.stderr
        assert "Traceback" not in result.stderr
        result = _unprivileged("train", "--config", CONFIG, "--workdir", str(readonly / "new"),
                               "--config.train.num_steps=4", *TINY)
        assert result.returncode == 2 and f"cannot write {readonly}/new" in result.stderr
        result = _unprivileged("generate", "--workdir", str(readonly), "--seconds", "0.01",
                               "--out", str(readonly / "x.wav"))
        assert result.returncode == 2, result.stderr[-3000:]
        assert f"cannot write {readonly}/x.wav: Permission denied" in result.stderr
        assert "System error" not in result.stderr
    finally:
        shutil.rmtree(readonly, ignore_errors=True)


@pytest.mark.integration
def test_evaluate_in_a_read_only_classifier_workdir_names_the_path(tmp_path):
    from test_classify_workflow import _folders, _train_args

    data = _folders(tmp_path / "data")
    assert main(_train_args(tmp_path / "run", data, "--config.model.num_classes=3")) == 0
    readonly = tmp_path / "ro"
    _read_only_copy(tmp_path / "run", readonly)
    try:
        result = _unprivileged("evaluate", "--workdir", str(readonly), "--data", str(data))
        assert result.returncode == 2, result.stderr[-3000:]
        assert "accuracy" in result.stdout  # the results are shown before the write fails
        assert f"cannot write {readonly}/confusion.png: Permission denied" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        shutil.rmtree(readonly, ignore_errors=True)


# ---- item 13: a torn last line of metrics.jsonl -------------------------------------------
def test_a_torn_metrics_line_is_dropped_on_resume(tmp_path):
    workdir = tmp_path / "run"
    assert _train(workdir) == 0
    with open(workdir / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "split": "tr')  # a kill in the middle of a write
    with pytest.warns(UserWarning, match="torn last line"):
        assert _train(workdir, 4) == 0
    steps = [json.loads(line)["step"] for line in open(workdir / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4]


def test_a_damaged_metrics_line_elsewhere_names_the_file_and_line(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert _train(workdir) == 0
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    (workdir / "metrics.jsonl").write_text("\n".join(["{oops", *lines]) + "\n")
    assert _train(workdir, 4) == 2
    assert f"{workdir / 'metrics.jsonl'}, line 1, is not JSON" in capsys.readouterr().err
