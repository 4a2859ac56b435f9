"""The NSynth autoencoder recipe against magenta's reference code.

magenta/models/nsynth/wavenet/h512_bo16.py: `Config.learning_rate_schedule` (the rate of the
largest key <= global_step, as nsynth/wavenet/train.py applies it) and the decoder's
`skip_start` 1x1, from the start conv's output into the skip sum.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.config import ConfigError, base_config, load_config
from audiozoo.models.autoencoder import WaveNetAutoencoder
from audiozoo.tasks.optim import make_optimizer, make_schedule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# h512_bo16.py, Config.__init__, written out as there.
MAGENTA_SCHEDULE = {0: 2e-4, 90000: 4e-4 / 3, 120000: 6e-5, 150000: 4e-5, 180000: 2e-5,
                    210000: 6e-6, 240000: 2e-6}


def magenta_rate(step: int) -> np.float32:
    """train.py: lr starts at schedule[0]; each key <= global_step replaces it (tf.constant:
    float32)."""
    return np.float32(MAGENTA_SCHEDULE[max(k for k in MAGENTA_SCHEDULE if k <= step)])


def test_nsynth_ae_schedule_is_magentas_exactly_at_and_around_every_boundary():
    config = load_config(CONFIGS / "nsynth_ae.py")
    schedule = make_schedule(config.optim, config.train.num_steps)
    steps = [0, 1, config.train.num_steps - 1, config.train.num_steps, 10**6]
    for boundary in list(MAGENTA_SCHEDULE)[1:]:
        steps += [boundary - 1, boundary, boundary + 1]
    got = {s: np.float32(schedule(jnp.int32(s))) for s in sorted(steps)}
    assert got == {s: magenta_rate(s) for s in sorted(steps)}
    assert got[89_999] == np.float32(2e-4) and got[90_000] == np.float32(4e-4 / 3)
    # Inside the jitted update too (the optimiser's step count is int32).
    assert np.float32(jax.jit(schedule)(jnp.int32(179_999))) == np.float32(4e-5)


def test_nsynth_ae_optimiser_matches_magentas_train_py():
    """Adam, eps 1e-8, no clipping, 200k updates of a total batch of 32."""
    config = load_config(CONFIGS / "nsynth_ae.py")
    optim = config.optim
    assert (optim.name, optim.eps, optim.b1, optim.b2) == ("adam", 1e-8, 0.9, 0.999)
    assert optim.grad_clip_norm == 0 and optim.warmup_steps == 0
    assert (config.train.num_steps, config.train.batch_size) == (200_000, 32)
    assert config.model.skip_start is True


def test_the_kth_update_uses_the_rate_of_global_step_k():
    """optax counts updates from 0 like magenta's global_step: a parameter with gradient 1
    under SGD moves by exactly the scheduled rate at each step."""
    optim = base_config().optim
    optim.update(name="sgd", schedule="piecewise", learning_rate=1.0, grad_clip_norm=0.0)
    optim.lr_boundaries, optim.lr_values = (2, 3), (0.5, 0.25)
    tx = make_optimizer(optim, num_steps=5)
    params = jnp.zeros(())
    state = tx.init(params)
    moves = []
    for _ in range(4):
        updates, state = tx.update(jnp.ones(()), state, params)
        moves.append(-float(updates))
    assert moves == [1.0, 1.0, 0.5, 0.25]


def piecewise(**fields):
    optim = base_config().optim
    optim.update(schedule="piecewise", learning_rate=1e-3)
    for key, value in fields.items():
        optim[key] = value
    return optim


@pytest.mark.parametrize("fields, match", [
    (dict(), "has no optim.lr_boundaries"),
    (dict(lr_boundaries=(10, 20), lr_values=(1e-4,)), "1 rates for 2 optim.lr_boundaries"),
    (dict(lr_boundaries=(20, 10), lr_values=(1e-4, 1e-5)), "must be strictly increasing"),
    (dict(lr_boundaries=(10, 10), lr_values=(1e-4, 1e-5)), "must be strictly increasing"),
    (dict(lr_boundaries=(10.5,), lr_values=(1e-4,)), "whole steps"),
    (dict(lr_boundaries=(10,), lr_values=(0.0,)), "must all be > 0"),
    (dict(lr_boundaries=(10,), lr_values=(-1e-4,)), "must all be > 0"),
    (dict(lr_boundaries=(0,), lr_values=(1e-4,)), "must come after step 0"),
    (dict(lr_boundaries=(5,), lr_values=(1e-4,), warmup_steps=5), "warmup_steps=5"),
])
def test_bad_piecewise_schedules_are_refused_with_the_key_and_the_fix(fields, match):
    with pytest.raises(ConfigError, match=match) as error:
        make_optimizer(piecewise(**fields), num_steps=100)
    assert "optim.lr_boundaries" in str(error.value)


SMALL = dict(encoder_layers=2, encoder_stacks=1, encoder_channels=8, latent_channels=4,
             hop_length=8, decoder_layers=3, decoder_stacks=1, residual_channels=8,
             gate_channels=16, skip_channels=6, num_classes=32)


def autoencoder(skip_start: bool):
    """A small model and random parameters (numpy, from the shapes: compiling a flax init
    costs seconds), biases included, so no term is trivially zero."""
    model = WaveNetAutoencoder(**SMALL, skip_start=skip_start)
    codes = jnp.asarray(np.random.default_rng(0).integers(0, model.num_classes, (2, 32)))
    shapes = jax.eval_shape(model.init, jax.random.key(1), codes)
    rng = np.random.default_rng(1)
    variables = jax.tree.map(lambda s: jnp.asarray(0.3 * rng.normal(size=s.shape), s.dtype),
                             shapes)
    return model, variables, codes


def with_start(variables, proj):
    decoder = {**variables["params"]["decoder"], "skip_start_proj": proj}
    return {"params": {**variables["params"], "decoder": decoder}}


def test_skip_start_is_a_biased_1x1_from_the_embedded_input_into_the_skip_sum():
    off, off_vars, codes = autoencoder(False)
    on, on_vars, _ = autoencoder(True)
    assert "skip_start_proj" not in off_vars["params"]["decoder"]
    proj = on_vars["params"]["decoder"].pop("skip_start_proj")
    # h512_bo16.py: masked.conv1d(l, num_filters=skip_width, filter_length=1), l being the
    # start conv's [time, width] output; conv1d has a bias.
    assert jax.tree.map(jnp.shape, proj) == {"kernel": (8, 6), "bias": (6,)}
    # Everything else is shared: a zero start projection is exactly skip_start=False...
    assert jax.tree.map(jnp.shape, on_vars) == jax.tree.map(jnp.shape, off_vars)
    without = off.apply(on_vars, codes)[0]
    zero = jax.tree.map(jnp.zeros_like, proj)
    np.testing.assert_array_equal(on.apply(with_start(on_vars, zero), codes)[0], without)
    # ...and a non-zero one changes the output.
    assert not np.allclose(on.apply(with_start(on_vars, proj), codes)[0], without)
    # It reads only the present input: the receptive field is unchanged.
    assert on.receptive_field == off.receptive_field
