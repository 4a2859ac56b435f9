"""Every shipped config loads, names its launch command, and builds its model."""

from pathlib import Path

import jax
import pytest

from audiozoo.config import ConfigError, apply_overrides, load_config, split_overrides
from audiozoo.tasks import build_task

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.py"))

RECEPTIVE_FIELDS = {"wavenet_tiny": 127, "wavenet_paper": 3070, "wavenet_ibab": 5116,
                    "wavenet_nv_medium": 2047, "wavenet_mol": 505}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds(path):
    config = load_config(path)
    assert f"audiozoo train --config configs/{path.name}" in load_docstring(path)
    task = build_task(config)
    shapes = jax.eval_shape(task.init_state, jax.random.key(0), task.dummy_batch(1))
    assert jax.tree.leaves(shapes.params)
    if path.stem in RECEPTIVE_FIELDS:
        assert task.model.receptive_field == RECEPTIVE_FIELDS[path.stem]


def load_docstring(path):
    import ast

    return ast.get_docstring(ast.parse(path.read_text()))


def test_overrides_keep_types_and_reject_unknown_keys():
    config = load_config(CONFIGS[0])
    rest, overrides = split_overrides(["--workdir", "w", "--config.train.num_steps=7",
                                       "--config.optim.learning_rate", "1", "--config.task.global_cond=pitch",
                                       "--config.data.pitch_range=(40, 50)"])
    assert rest == ["--workdir", "w"]
    apply_overrides(config, overrides)
    assert config.train.num_steps == 7
    assert config.optim.learning_rate == 1.0 and isinstance(config.optim.learning_rate, float)
    assert config.task.global_cond == "pitch"
    assert tuple(config.data.pitch_range) == (40, 50)
    with pytest.raises(ConfigError, match="no 'trian' in the top level; valid keys there: .*train"):
        apply_overrides(config, [("trian.num_steps", "1")])
    with pytest.raises(ConfigError, match="expected a value of type int"):
        apply_overrides(config, [("train.num_steps", "many")])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("configs/nope.py")
