"""GANSynth through the generic trainer: the progressive schedule, the losses, one G step then
one D step, EMA, optimiser restarts, resume exactness, 8 devices, NaN handling, bad configs."""

import functools
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.config import ConfigError, load_config
from audiozoo.tasks import build_task
from audiozoo.train.loop import Trainer, TrainingDivergedError, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")


def micro_config(num_steps=12, representation="if_mel"):
    """Two resolutions of a 16 x 32 -> 32 x 64 spectrogram of 1024-sample notes."""
    c = load_config(os.path.join(REPO, "configs", "gansynth_tiny.py") + f":{representation}")
    c.model.update(resolutions=2, start_shape=(16, 32), fmap_base=32, fmap_max=8, latent_dim=8)
    c.data.update(segment_length=1024, num_train=64, num_eval=16)
    c.task.update(nfft=128, stable_images=32, transition_images=32, num_samples=0)
    c.train.update(num_steps=num_steps, batch_size=8, log_every=2, eval_every=0,
                   checkpoint_every=4)
    return c


def _state_and_batch(config):
    task = build_task(config)
    trainer_batch = task.dummy_batch(8)
    batch = dict(trainer_batch, audio=0.3 * jnp.sin(jnp.arange(1024) * 0.2)[None].repeat(8, 0),
                 pitch=jnp.arange(8, dtype=jnp.int32) + 50)
    state = task.init_train_state(jax.random.key(0), batch)
    return task, state, batch


def _train_step(task, state, batch, rng):
    """task.train_step compiled for the state's stage, with the EMA, as the trainer runs it."""
    step = jax.jit(functools.partial(task.averaged_train_step,
                                     variant=task.step_variant(int(state.step))))
    return step(state, batch, rng)


def test_schedule_alternates_stable_and_transition_phases():
    c = micro_config()
    c.model.resolutions = 3
    c.model.start_shape = (8, 16)
    task = build_task(c)
    # 32 images = 4 steps of 8 per phase.
    table = [tuple(float(v) for v in task.schedule(step)) for step in (0, 3, 4, 6, 8, 12, 16, 40)]
    assert table == [(0, 0, 1), (0, 0, 1), (0, 1, 2), (0.5, 1, 2), (1, 2, 2), (1, 3, 3),
                     (2, 4, 3), (2, 4, 3)]
    # The host-side stage the trainer compiles each step for is the schedule's block count.
    assert [task.step_variant(step) for step in (0, 3, 4, 6, 8, 12, 16, 40)] == [
        int(row[2]) for row in table]
    with pytest.raises(ValueError, match="step_variant"):
        task.train_step(None, None, None)


@pytest.mark.slow
def test_one_generator_step_then_one_critic_step_with_ema_and_fresh_optimisers():
    config = micro_config()
    task, state, batch = _state_and_batch(config)
    rng = jax.random.key(3)
    new, metrics = _train_step(task, state, batch, rng)
    g_rng, d_rng = jax.random.split(rng)
    # The generator's loss is the one against the critic before this step ...
    g_loss, _ = task.generator_loss(state.params["generator"], state.params["discriminator"],
                                    g_rng, 0.0, 1, 8)
    np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-4)
    # ... and the critic's is against the generator after it.
    from audiozoo.nn.progressive import blend_resolutions
    real = blend_resolutions(task.to_spectrogram(batch["audio"]), 0.0, 1, 2)
    d_loss, _ = task.discriminator_loss(state.params["discriminator"], new.params["generator"],
                                        real, batch["pitch"] - 24, d_rng, 0.0, 1)
    np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-4)
    # The EMA (train.ema_decay) of the generator after its step.
    decay = config.train.ema_decay
    for ema, old, g in zip(jax.tree.leaves(new.ema), jax.tree.leaves(state.ema),
                           jax.tree.leaves(new.params["generator"])):
        np.testing.assert_allclose(ema, decay * old + (1 - decay) * g, rtol=1e-5, atol=1e-7)
    assert int(new.step) == 1 and float(metrics["finite"]) == 1.0
    # Adam's step counters restart when a phase starts (step 4: the first transition step).
    counts = lambda s: {int(x) for x in jax.tree.leaves(s.opt_state)  # noqa: E731
                        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.integer)}
    state4 = new.replace(step=jnp.asarray(4, jnp.int32))
    assert counts(state4) == {1}
    after = _train_step(task, _train_step(task, state4, batch, rng)[0], batch, rng)[0]
    assert counts(after) == {2}  # fresh at step 4, then one more step


@pytest.mark.slow
def test_gradient_penalty_matches_finite_differences():
    config = micro_config()
    task, state, batch = _state_and_batch(config)
    d_params = state.params["discriminator"]
    rng = jax.random.key(5)
    real = task.to_spectrogram(batch["audio"])[:2]
    fake = real + 0.5
    penalty = task.gradient_penalty(d_params, real, fake, rng, 1.0, 2)
    eps = jax.random.uniform(rng, (2, 1, 1, 1))
    mixed = np.asarray(eps * real + (1 - eps) * fake, np.float64)

    def critic(x):
        return np.asarray(task.discriminate(d_params, jnp.asarray(x, jnp.float32), 1.0, 2)[0],
                          np.float64)

    # Central differences of each example's critic value, one input coordinate at a time; the
    # minibatch-stddev channel couples examples, so each example is perturbed alone.
    h, norms = 1e-2, []
    flat = mixed.reshape(2, -1)
    for i in range(2):
        grads = np.empty(flat.shape[1])
        for chunk in np.array_split(np.arange(flat.shape[1]), 16):
            plus = np.repeat(flat[None], len(chunk), 0)
            minus = plus.copy()
            plus[np.arange(len(chunk)), i, chunk] += h
            minus[np.arange(len(chunk)), i, chunk] -= h
            values = jax.vmap(lambda x: task.discriminate(d_params, x, 1.0, 2)[0].sum())(
                jnp.asarray(np.concatenate([plus, minus]).reshape(-1, *mixed.shape), jnp.float32))
            values = np.asarray(values, np.float64)
            grads[chunk] = (values[:len(chunk)] - values[len(chunk):]) / (2 * h)
        norms.append(np.linalg.norm(grads))
    expected = np.mean((np.array(norms) - 1.0) ** 2)
    assert critic(mixed).shape == (2,)
    np.testing.assert_allclose(float(penalty), expected, rtol=2e-2)


def _params(state):
    return [np.asarray(x) for x in jax.tree.leaves((state.params, state.opt_state, state.extra))]


@pytest.mark.slow
def test_resume_mid_transition_equals_an_uninterrupted_run(tmp_path):
    uninterrupted = _params(train(micro_config(12), tmp_path / "a"))
    train(micro_config(6), tmp_path / "b")  # stops mid-transition (phase 1: steps 4..7)
    resumed = _params(train(micro_config(12), tmp_path / "b"))
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_array_equal(a, b)
    records = [json.loads(line) for line in open(tmp_path / "b" / "metrics.jsonl")]
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10, 12]
    assert json.loads((tmp_path / "b" / "pitches.json").read_text())["pitch_counts"]


@pytest.mark.slow
def test_data_parallel_on_8_devices_equals_one_device(tmp_path):
    code = textwrap.dedent(f"""
        import sys, jax, numpy as np
        sys.path.insert(0, {TESTS!r})
        from test_gansynth_task import micro_config, _params
        from audiozoo.train.loop import train
        assert jax.device_count() == int(sys.argv[1])
        np.savez({str(tmp_path)!r} + f"/d{{sys.argv[1]}}.npz",
                 *_params(train(micro_config(6), {str(tmp_path)!r} + f"/w{{sys.argv[1]}}")))
    """)
    for n in (1, 8):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
                   JAX_PLATFORMS="cpu")
        result = subprocess.run([sys.executable, "-c", code, str(n)], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    one, eight = np.load(tmp_path / "d1.npz"), np.load(tmp_path / "d8.npz")
    for key in one.files:
        np.testing.assert_allclose(one[key], eight[key], rtol=2e-4, atol=2e-5)


@pytest.mark.slow
def test_a_nan_step_is_not_applied_and_stops_the_run(tmp_path):
    task, state, batch = _state_and_batch(micro_config())
    bad = dict(batch, audio=batch["audio"].at[0, 5].set(jnp.nan))
    new, metrics = _train_step(task, state, bad, jax.random.key(0))
    assert float(metrics["finite"]) == 0.0
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)
    trainer = Trainer(micro_config(4), tmp_path)
    step_fn = trainer.step_fn

    def nan_audio_step(kind, step):
        fn = step_fn(kind, step)
        return lambda s, b, r: fn(s, dict(b, audio=b["audio"] * jnp.nan), r)

    trainer.step_fn = nan_audio_step
    with pytest.raises(TrainingDivergedError, match="NaN/Inf at step 1"):
        trainer.run()


@pytest.mark.slow
def test_samples_are_notes_of_the_drawn_pitches(tmp_path):
    config = micro_config(2)
    config.task.num_samples = 2
    train(config, tmp_path)
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert len(names) == 2 and all("_pitch" in n for n in names)
    import soundfile as sf
    audio, rate = sf.read(tmp_path / "samples" / names[0])
    assert rate == 16000 and audio.shape == (1024,)


def test_bad_configs_are_refused():
    config = micro_config()
    config.task.representation = "magnitude"
    with pytest.raises(ConfigError, match="task.representation='magnitude' is not one of"):
        build_task(config)
    config = micro_config()
    config.task.nfft = 256
    with pytest.raises(ConfigError, match="adjust model.start_shape"):
        build_task(config)
    config = micro_config()
    config.data.pitch_range = (20, 30)
    with pytest.raises(ConfigError, match=r"pitches \[20, 21"):
        Trainer(config, "/tmp/unused-gansynth-workdir")


@pytest.mark.slow
def test_cli_generates_pitch_sweeps_and_interpolations(tmp_path, capsys):
    from audiozoo.cli import main
    import soundfile as sf

    workdir = tmp_path / "run"
    micro = ["--config.model.resolutions=2", "--config.model.start_shape=(16, 32)",
             "--config.model.fmap_base=32", "--config.model.fmap_max=8",
             "--config.model.latent_dim=8", "--config.data.segment_length=1024",
             "--config.data.num_train=64", "--config.data.num_eval=16", "--config.task.nfft=128",
             "--config.task.stable_images=32", "--config.task.transition_images=32",
             "--config.task.num_samples=0", "--config.train.num_steps=2",
             "--config.train.batch_size=8", "--config.train.eval_every=0"]
    assert main(["train", "--config", "configs/gansynth_tiny.py", "--workdir", str(workdir),
                 *micro]) == 0
    out = tmp_path / "note.wav"
    assert main(["generate", "--workdir", str(workdir), "--pitch", "60", "--pitch", "67",
                 "--batch", "2", "--out", str(out)]) == 0
    files = sorted(p.name for p in tmp_path.glob("note_*.wav"))
    assert files == ["note_0_60.wav", "note_0_67.wav", "note_1_60.wav", "note_1_67.wav"]
    audio, rate = sf.read(tmp_path / "note_0_60.wav")
    assert rate == 16000 and audio.shape == (1024,) and np.abs(audio).max() <= 1.0
    assert main(["interpolate", "--workdir", str(workdir), "--pitch", "60", "--weights", "0",
                 "0.5", "1", "--out", str(tmp_path / "mix.wav")]) == 0
    mix0, _ = sf.read(tmp_path / "mix_0.wav")
    np.testing.assert_allclose(mix0, audio, atol=1e-4)  # weight 0: the seed's first timbre
    # A MIDI file played note by note: one WAV, the notes at their times, mix peak 0.5.
    from audiozoo.audio.midi import Note, notes_to_midi
    song = tmp_path / "song.mid"
    song.write_bytes(notes_to_midi([Note(60, 100, 0.0, 0.05), Note(64, 80, 0.05, 0.1),
                                    Note(67, 127, 0.1, 0.2)]))
    for timbre in ("0", "0.05"):
        assert main(["generate", "--workdir", str(workdir), "--midi", str(song),
                     "--seconds-per-timbre", timbre, "--out", str(tmp_path / "song.wav")]) == 0
        played, rate = sf.read(tmp_path / "song.wav")
        assert rate == 16000 and len(played) == 1600 + 1600 + 4800 + 16000
        assert np.abs(played).max() == pytest.approx(0.5, abs=1e-3)
        assert np.abs(played[:1024]).max() > 0 and np.abs(played[1600:2624]).max() > 0
    (tmp_path / "high.mid").write_bytes(notes_to_midi([Note(90, 100, 0.0, 0.1)]))
    (tmp_path / "junk.mid").write_bytes(b"not midi")
    capsys.readouterr()
    base = ["generate", "--workdir", str(workdir), "--out", str(tmp_path / "x.wav")]
    for extra, message in ((["--midi", str(tmp_path / "high.mid")], "pitches [90], outside the 24..84"),
                           (["--midi", str(tmp_path / "junk.mid")], "not a readable Standard MIDI"),
                           (["--midi", str(song), "--pitch", "60"], "leave out --pitch")):
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err
    for extra, message in ((["--pitch", "90"], "this model makes MIDI pitches 24..84"),
                           ([], "give their MIDI pitches with --pitch"),
                           (["--pitch", "60", "--seconds", "1"], "--seconds does not apply"),
                           (["--pitch", "60", "--prime", "a.wav"], "--prime apply to WaveNet")):
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err
    assert main(["interpolate", "a.wav", "b.wav", "--workdir", str(workdir),
                 "--out", str(tmp_path / "x.wav")]) == 2
    assert "no audio files" in capsys.readouterr().err
    assert main(["encode", "a.wav", "--workdir", str(workdir), "--out", str(tmp_path / "x.npy")]) == 2
    assert "its verbs are: `audiozoo generate`, `audiozoo interpolate`" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
