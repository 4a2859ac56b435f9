"""Every shipped config loads, names its launch command, and builds its model."""

from pathlib import Path

import jax
import pytest

from audiozoo.config import ConfigError, apply_overrides, load_config, split_overrides
from audiozoo.tasks import build_task

CONFIG_FILES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.py"))


def _specs():
    """Every config file, and every variant of files that define VARIANTS (FILE.py:VARIANT)."""
    import ast

    for path in CONFIG_FILES:
        tree = ast.parse(path.read_text())
        variants = [node.value for node in tree.body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], "id", "") == "VARIANTS"]
        if variants:
            yield from (f"{path}:{v}" for v in ast.literal_eval(variants[0]))
        else:
            yield str(path)


CONFIGS = list(_specs())

RECEPTIVE_FIELDS = {"wavenet_tiny": 127, "wavenet_paper": 3070, "wavenet_ibab": 5116,
                    "wavenet_nv_medium": 2047, "wavenet_mol": 505, "nsynth_ae": 6139,
                    "nsynth_ae_tiny": 125, "ada_tiny": 125, "ada_paper": 2047}


@pytest.mark.parametrize("spec", CONFIGS, ids=lambda s: Path(s).name)
def test_config_builds(spec):
    config = load_config(spec)
    path = Path(spec.split(":")[0])
    assert f"audiozoo train --config configs/{path.name}" in load_docstring(path)
    if config.task.name == "prior" or (config.task.name == "autoencoder"
                                       and config.model.encoder_input == "one_hot"):
        # A stacked level or a prior needs a trained level below; without one it says how to give it.
        with pytest.raises(ConfigError, match="lower_workdir"):
            build_task(config)
        return
    task = build_task(config)
    shapes = jax.eval_shape(task.init_state, jax.random.key(0), task.dummy_batch(1))
    assert jax.tree.leaves(shapes.params)
    if path.stem in RECEPTIVE_FIELDS:
        assert task.model.receptive_field == RECEPTIVE_FIELDS[path.stem]


def load_docstring(path):
    import ast

    return ast.get_docstring(ast.parse(path.read_text()))


def test_overrides_keep_types_and_reject_unknown_keys():
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "wavenet_tiny.py")
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
    with pytest.raises(ConfigError, match="wavenet_tiny.py has no variants .*drop ':x'"):
        load_config(f"{CONFIG_FILES[0].parent}/wavenet_tiny.py:x")


@pytest.mark.integration
def test_any_model_field_is_an_override_though_the_config_leaves_it_out(tmp_path, capsys):
    """`audiozoo train --config.model.FIELD=...` reaches every constructor field of the model
    that model.name picks (parsed against the field's default); a misspelt one lists them;
    initialisers and other values no command line can spell stay out."""
    from audiozoo.cli import main
    from audiozoo.models import build_model, unlisted_fields

    config = load_config(f"{CONFIG_FILES[0].parent}/classify_tiny.py:ast")
    assert "distillation_token" not in config.model
    settable = {"model": unlisted_fields(config.model)}
    apply_overrides(config, [("model.distillation_token", "False"), ("model.patch_size", "8")],
                    settable)
    model = build_model(config.model)
    assert model.distillation_token is False and model.patch_size == 8
    with pytest.raises(ConfigError, match="no 'distilation_token' in model; valid keys there: "
                                          ".*distillation_token.*patch_size"):
        apply_overrides(config, [("model.distilation_token", "False")], settable)
    with pytest.raises(ConfigError, match="expected True or False"):
        apply_overrides(config, [("model.distillation_token", "0")], settable)
    with pytest.raises(ConfigError, match="no 'distillation_token' in model"):
        apply_overrides(load_config(f"{CONFIG_FILES[0].parent}/classify_tiny.py:ast"),
                        [("model.distillation_token", "False")])  # nothing settable given
    resnet = load_config(f"{CONFIG_FILES[0].parent}/classify_tiny.py:resnet18")
    assert "kernel_init" not in unlisted_fields(resnet.model)
    # From the command line: the field reaches the run's config.json.
    workdir = tmp_path / "run"
    assert main(["train", "--config", f"{CONFIG_FILES[0].parent}/classify_tiny.py:ast",
                 "--workdir", str(workdir), "--config.model.distillation_token=False",
                 "--config.train.num_steps=1", "--config.train.batch_size=2",
                 "--config.train.eval_every=0", "--config.train.tensorboard=False"]) == 0
    assert '"distillation_token": false' in (workdir / "config.json").read_text()


def test_every_config_key_the_docs_and_messages_name_exists():
    """Each `--config.KEY` that README files, config docstrings or the library's messages tell
    a user to type is a key of a shipped config, or a field of one's model, and a tuple value
    there is quoted for the shell."""
    import re

    from audiozoo.models import unlisted_fields

    root = Path(__file__).resolve().parents[1]
    sources = [root / "README.md", *root.glob("experiments/**/README.md"), *CONFIG_FILES,
               *root.glob("audiozoo/**/*.py")]
    named = {key: path for path in sources
             for key in re.findall(r"--config\.([a-z0-9_]+(?:\.[a-z0-9_]+)*)", path.read_text())}
    placeholders = {"path.to.field", "a.b", "data.a"}
    configs = [load_config(spec) for spec in CONFIGS]

    def exists(config, key):
        parts = key.split(".")
        if parts[0] == "model" and len(parts) == 2 and parts[1] in unlisted_fields(config.model):
            return True
        for part in parts:
            if not hasattr(config, "keys") or part not in config:
                return False
            config = config[part]
        return True

    missing = {key: str(path.relative_to(root)) for key, path in named.items()
               if key not in placeholders and not any(exists(c, key) for c in configs)}
    assert not missing
    # A tuple value has to be quoted: `--config.data.eval_folds=(5,)` is a shell syntax error.
    unquoted = {str(path.relative_to(root)): found for path in sources
                if (found := re.findall(r"--config\.[a-z0-9_.]+=[(\[]", path.read_text()))}
    assert not unquoted


def test_linear_schedule_warms_up_then_decays_to_zero():
    from audiozoo.config import base_config
    from audiozoo.tasks.optim import make_schedule

    optim = base_config().optim
    optim.update(schedule="linear", learning_rate=1.0, warmup_steps=10)
    schedule = make_schedule(optim, num_steps=110)
    assert [float(schedule(s)) for s in (0, 5, 10, 60, 110)] == pytest.approx([0, 0.5, 1, 0.5, 0])


@pytest.mark.parametrize("key, value, message", [
    ("learning_rate", -1.0, r"optim.learning_rate=-1.0 must be > 0"),
    ("learning_rate", float("inf"), r"optim.learning_rate=inf must be > 0 and finite"),
    ("learning_rate", 1e39, r"optim.learning_rate=1e\+39 must be > 0 and finite"),  # inf in float32
    ("b2", 1.0, r"optim.b2=1.0 must be in \[0, 1\).*set --config.optim.b2"),
    ("momentum", -0.5, "optim.momentum=-0.5 must be >= 0; set --config.optim.momentum"),
    ("warmup_steps", -5, "optim.warmup_steps=-5 must be >= 0"),
    ("eps", 0.0, "optim.eps=0.0 must be > 0"),
    ("weight_decay", -0.1, "must be >= 0; set --config.optim.weight_decay"),
])
def test_optimiser_values_no_optimiser_can_use_are_refused_by_key(key, value, message):
    """A negative rate would climb the loss and b2 = 1 never forgets: refused before any work."""
    from audiozoo.config import base_config
    from audiozoo.tasks.optim import make_optimizer

    optim = base_config().optim
    make_optimizer(optim, 10)
    optim[key] = value
    with pytest.raises(ConfigError, match=message):
        make_optimizer(optim, 10)


def test_piecewise_schedule_boundaries_are_global_steps_after_warm_up():
    """optim.learning_rate until the first boundary (after the warm-up), then each of
    optim.lr_values from its boundary on; configs without the piecewise keys still load."""
    from audiozoo.config import base_config
    from audiozoo.tasks.optim import make_schedule

    optim = base_config().optim
    assert optim.lr_boundaries == () and make_schedule(optim, 10)(3) == optim.learning_rate
    optim.update(schedule="piecewise", learning_rate=1.0, warmup_steps=10)
    optim.lr_boundaries, optim.lr_values = (20, 30), (0.5, 0.125)
    schedule = make_schedule(optim, num_steps=40)
    assert [float(schedule(s)) for s in (0, 5, 10, 19, 20, 29, 30, 39)] == pytest.approx(
        [0, 0.5, 1, 1, 0.5, 0.5, 0.125, 0.125])


def test_model_dtype_is_a_config_key_with_a_clear_error():
    """Every config has model.dtype; a name that is not a computation dtype is refused with the
    valid ones, and bfloat16 reaches every layer while the parameters stay float32."""
    import jax.numpy as jnp

    from audiozoo.models import build_model

    config = load_config(f"{CONFIG_FILES[0].parent}/classify_tiny.py:resnet18")
    assert config.model.dtype == "float32"
    apply_overrides(config, [("model.dtype", "bfloat16")])
    model = build_model(config.model)
    assert model.dtype == jnp.bfloat16
    for bad in ("float16", "bf16"):
        apply_overrides(config, [("model.dtype", bad)])
        with pytest.raises(ConfigError, match=f"model.dtype='{bad}'.*float32, bfloat16"):
            build_model(config.model)
