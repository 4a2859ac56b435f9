"""The README's Python examples and command recipes run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert capsys.readouterr().out.strip() == "2047"
    assert len(namespace["jax"].tree.leaves(namespace["grads"])) > 0
    # The generation example continues in the same namespace.
    exec(compile(blocks[1], "README.md", "exec"), namespace)
    assert namespace["codes"].shape == (4, 16000)
    assert namespace["logits_t"].shape == (1, 256)


def _readme_commands(marker: str) -> list[list[str]]:
    """The `audiozoo ...` commands of the README's bash block that contains `marker`."""
    import shlex

    blocks = [b for b in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S) if marker in b]
    assert len(blocks) == 1, f"one README bash block must contain {marker!r}"
    lines = blocks[0].replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("audiozoo ")]


@pytest.mark.integration
def test_readme_classifier_recipe_runs(tmp_path, monkeypatch, capsys):
    """Train on a folder, evaluate on the test folder, classify a folder: the README's
    commands as written, on tiny folders of tones (ten classes, as the README says), with
    only the length of training cut down."""
    import json

    import numpy as np
    import soundfile as sf

    from audiozoo.cli import main

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    rate, t = 16000, np.arange(4000) / 16000
    for i, word in enumerate(words):
        for split, count in (("train", 2), ("test", 1), ("new", 1)):
            for k in range(count):
                folder = tmp_path / "digits" / split / (word if split != "new" else "")
                folder.mkdir(parents=True, exist_ok=True)
                name = f"{k}.wav" if split != "new" else f"{word}.wav"
                sf.write(folder / name, 0.3 * np.sin(2 * np.pi * 200 * (i + 1) * t), rate)
    (tmp_path / "configs").symlink_to(README.parent / "configs")  # the README runs from the repo
    monkeypatch.chdir(tmp_path)
    commands = _readme_commands("--config.data.eval_root=digits/test")
    assert [c[0] for c in commands] == ["train", "evaluate", "classify"]
    short = ["--config.train.num_steps=2", "--config.train.batch_size=4",
             "--config.train.eval_every=0", "--config.train.checkpoint_every=2"]
    assert main(commands[0] + short) == 0
    labels = json.loads((tmp_path / "runs/digits/labels.json").read_text())
    assert labels["classes"] == sorted(words) and labels["label_key"] == "label"
    assert main(commands[1]) == 0
    report = json.loads((tmp_path / "runs/digits/test.json").read_text())
    assert report["examples"] == 10 and (tmp_path / "runs/digits/test.png").exists()
    assert main(commands[2]) == 0
    rows = (tmp_path / "runs/digits/new.csv").read_text().strip().splitlines()
    assert len(rows) == 11 and all(row.split(",")[3] in words for row in rows[1:])


@pytest.mark.integration
def test_readme_gansynth_commands_run(tmp_path, monkeypatch):
    """The GANSynth section's three commands as written, with a network cut down to seconds."""
    import soundfile as sf

    from audiozoo.cli import main

    micro = ["--config.model.resolutions=2", "--config.model.start_shape=(16, 32)",
             "--config.model.fmap_base=32", "--config.model.fmap_max=8",
             "--config.model.latent_dim=8", "--config.data.segment_length=1024",
             "--config.data.num_train=32", "--config.task.nfft=128",
             "--config.task.num_samples=0", "--config.train.num_steps=1",
             "--config.train.batch_size=8", "--config.train.eval_every=0"]
    repo = README.parent
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(repo / "configs")
    commands = _readme_commands("gansynth_tiny.py --workdir")
    assert [c[0] for c in commands] == ["train", "generate", "interpolate"]
    for command in commands:
        assert main(command + (micro if command[0] == "train" else [])) == 0, command
    for name in ("note_60.wav", "note_67.wav", "mix_0.wav", "mix_1.wav", "mix_2.wav"):
        assert sf.info(tmp_path / name).frames == 1024
