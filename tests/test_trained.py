"""audiozoo.load(workdir), the parameter EMA the trainer keeps (train.ema_decay) and the
non-finite step guard (all_finite, tree_select)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import tiny_config

import audiozoo as az
from audiozoo.checkpoint import Checkpointer, load_workdir_config
from audiozoo.config import ConfigError
from audiozoo.tasks import build_task
from audiozoo.tasks.state import ParameterEMA, all_finite, tree_select
from audiozoo.train.loop import train


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _raw_state(workdir, step):
    """The checkpointed state (raw parameters and EMA) at `step`."""
    task = build_task(load_workdir_config(workdir))
    shapes = jax.eval_shape(task.init_train_state, jax.random.key(0), task.dummy_batch(1))
    return Checkpointer(workdir).restore_state(shapes, step)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """A tiny WaveNet trained 3 steps with a 0.5 parameter EMA, a checkpoint every step."""
    workdir = tmp_path_factory.mktemp("ema") / "run"
    config = tiny_config(num_steps=3)
    config.train.update(ema_decay=0.5, checkpoint_every=1, keep_checkpoints=3)
    train(config, workdir)
    return workdir


def test_ema_follows_the_parameters_step_by_step(ema_run):
    before, after = _raw_state(ema_run, 2), _raw_state(ema_run, 3)
    for ema2, params3, ema3 in zip(_leaves(before.ema), _leaves(after.params), _leaves(after.ema)):
        np.testing.assert_allclose(ema3, 0.5 * ema2 + 0.5 * params3, rtol=1e-6, atol=1e-7)
    assert not all(np.array_equal(a, b) for a, b in zip(_leaves(after.ema), _leaves(after.params)))


def test_load_uses_the_averaged_parameters_and_generates(ema_run):
    run = az.load(ema_run)
    assert "verbs generate" in repr(run) and run.sample_rate == 16000
    for loaded, ema in zip(_leaves(run.variables["params"]), _leaves(_raw_state(ema_run, 3).ema)):
        np.testing.assert_array_equal(loaded, ema)
    audio = run.generate(seconds=0.005, batch_size=2, global_id=4, seed=1)
    assert audio.shape == (2, 80) and audio.dtype == np.float32 and np.abs(audio).max() <= 1
    np.testing.assert_array_equal(audio, run.generate(seconds=0.005, batch_size=2, global_id=4, seed=1))
    with pytest.raises(ValueError, match="outside the model's ids 0..4"):
        run.generate(seconds=0.005, global_id=5)
    with pytest.raises(ValueError, match="verbs are: generate"):
        run.encode(audio[0])
    with pytest.raises(ValueError, match="pass seconds"):
        run.generate(pitches=[60])
    # A prime that is not a clip, or holds NaN, is refused rather than heard as silence.
    with pytest.raises(ValueError, match=r"prime must be float samples \[time\]"):
        run.generate(seconds=0.005, prime=np.zeros((2, 50), np.float32))
    with pytest.raises(ValueError, match="prime holds 50 NaN/Inf sample"):
        run.generate(seconds=0.005, prime=np.full(50, np.nan, np.float32))


def test_resuming_keeps_the_ema_of_an_uninterrupted_run(ema_run, tmp_path):
    config = tiny_config(num_steps=2)
    config.train.update(ema_decay=0.5, checkpoint_every=1, keep_checkpoints=3)
    train(config, tmp_path / "run")
    config.train.num_steps = 3
    resumed = train(config, tmp_path / "run")
    for a, b in zip(_leaves(resumed.ema), _leaves(_raw_state(ema_run, 3).ema)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_switching_the_ema_off_for_a_saved_run_is_refused(ema_run, tmp_path):
    config = tiny_config(num_steps=4)
    config.train.update(checkpoint_every=1, keep_checkpoints=3)
    with pytest.raises(ConfigError, match="train.ema_decay: 0.5 -> 0.0"):
        train(config, ema_run)


def test_ema_decay_warms_up_as_tensorflow_does():
    ema = ParameterEMA(0.9999, warmup=True)
    steps = jnp.array([0, 1, 10, 1000, 10**6])
    expected = np.minimum(0.9999, (1 + np.array([0, 1, 10, 1000, 10**6])) / (10 + np.array([0, 1, 10, 1000, 10**6])))
    np.testing.assert_allclose(ema.decay_at(steps), expected, rtol=1e-6)
    assert float(ParameterEMA(0.999).decay_at(0)) == pytest.approx(0.999)
    out = ema.update({"w": jnp.ones(3)}, {"w": jnp.zeros(3)}, 0)
    np.testing.assert_allclose(out["w"], 0.1, rtol=1e-6)  # decay 1/10 at the first step


def test_a_non_finite_leaf_keeps_the_old_tree_and_the_flag_is_computed_once():
    new = {f"w{i}": jnp.full((8, 8), float(i)) for i in range(60)}
    old = jax.tree.map(jnp.zeros_like, new)

    def guarded(new, old):
        return tree_select(all_finite(new), new, old)

    assert all(np.array_equal(a, b) for a, b in zip(_leaves(guarded(new, old)), _leaves(new)))
    bad = dict(new, w7=new["w7"].at[3, 3].set(jnp.nan))
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(guarded(bad, old)), _leaves(old)))
    # One AND over the leaves, not one per leaf that reads it (a per-leaf `where` let XLA fuse
    # the 60-way AND into each leaf's select: thousands of instructions to compile).
    hlo = jax.jit(guarded).lower(new, old).compile().as_text()
    assert len(re.findall(r" and\(", hlo)) < 200


@pytest.mark.parametrize("decay", [1.0, -0.1, 2.0])
def test_bad_ema_decay_is_refused_with_the_key(decay):
    config = tiny_config()
    config.train.ema_decay = decay
    with pytest.raises(ConfigError, match="train.ema_decay"):
        build_task(config)
