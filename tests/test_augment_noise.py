"""Waveform augmentation: noise at an SNR, reverberation, gain, shift, the file banks and
their errors, and the task's config checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from audiozoo.audio.wave_augment import (WaveAugment, coloured_noise, mix_at_snr, noise_bank,
                                         random_gain, reverberate, rir_bank, synthetic_rir)
from audiozoo.config import ConfigError, load_config
from audiozoo.data import DataError
from audiozoo.data.clip_bank import read_clips
from audiozoo.tasks import build_task

RATE = 16000


def _speech_like(batch=16, length=4000, seed=0):
    rng = np.random.default_rng(seed)
    envelope = np.abs(np.sin(np.linspace(0, 3 * np.pi, length)))
    return jnp.asarray(rng.normal(0, 0.1, (batch, length)) * envelope, jnp.float32)


def _snr_db(clean, mixed):
    clean, noise = np.asarray(clean, np.float64), np.asarray(mixed, np.float64) - np.asarray(clean, np.float64)
    return 10 * np.log10(np.mean(clean**2, -1) / np.mean(noise**2, -1))


def test_mix_at_snr_sets_the_asked_snr_and_leaves_silence_alone():
    clean = _speech_like()
    noise = coloured_noise(jax.random.key(1), clean.shape, 1.0)
    snr = jnp.linspace(-5.0, 20.0, 16)
    np.testing.assert_allclose(_snr_db(clean, mix_at_snr(clean, noise, snr)), snr, atol=1e-3)
    silent = jnp.zeros_like(clean)
    assert (np.asarray(mix_at_snr(silent, noise, 10.0)) == 0).all()


def test_noisy_batches_lie_in_the_snr_range_and_only_some_are_noisy():
    clean = _speech_like(batch=64)
    bank = noise_bank([np.random.default_rng(2).normal(size=9000).astype(np.float32)], 4000)
    augment = WaveAugment(RATE, noise_prob=0.5, noise_snr_db=(3.0, 12.0), noise_colours=("pink",),
                          noise_files=bank)
    out = augment(jax.random.key(0), clean)
    changed = np.any(np.asarray(out) != np.asarray(clean), axis=1)
    assert 15 < changed.sum() < 49  # about half of 64
    snr = _snr_db(np.asarray(clean)[changed], np.asarray(out)[changed])
    assert snr.min() >= 3.0 - 1e-3 and snr.max() <= 12.0 + 1e-3 and snr.std() > 1.0
    np.testing.assert_array_equal(out, augment(jax.random.key(0), clean))  # a pure function of the key
    assert not np.array_equal(out, augment(jax.random.key(1), clean))


def test_coloured_noise_has_unit_rms_and_the_asked_spectral_slope():
    noise = np.asarray(coloured_noise(jax.random.key(0), (3, 2**16), jnp.array([0.0, 1.0, 2.0])))
    np.testing.assert_allclose(np.sqrt(np.mean(noise**2, -1)), 1.0, rtol=1e-4)
    power = np.abs(np.fft.rfft(noise, axis=-1)) ** 2
    freqs = np.arange(power.shape[-1])
    band = (freqs > 100) & (freqs < 20000)
    slopes = [np.polyfit(np.log(freqs[band]), np.log(p[band]), 1)[0] for p in power]
    np.testing.assert_allclose(slopes, [0.0, -1.0, -2.0], atol=0.05)


def test_reverberation_keeps_the_length_the_onset_and_the_energy():
    audio = jnp.zeros((2, 3000)).at[:, 1000].set(1.0)
    rir = synthetic_rir(jax.random.key(0), 2, 2400, RATE, rt60=jnp.array([0.1, 0.3]), drr_db=3.0)
    np.testing.assert_allclose(np.sum(np.asarray(rir) ** 2, -1), 1.0, rtol=1e-5)
    direct = np.asarray(rir[:, 0]) ** 2
    np.testing.assert_allclose(10 * np.log10(direct / (1 - direct)), 3.0, atol=1e-3)  # the DRR asked
    wet = np.asarray(reverberate(audio, rir))
    assert wet.shape == (2, 3000)
    assert (np.abs(wet[:, :1000]) < 1e-5).all()  # nothing before the dry onset: not delayed
    np.testing.assert_allclose(wet[:, 1000:], np.asarray(rir)[:, :2000], atol=1e-5)
    # Longer RT60: more of the energy late in the tail.
    late = np.sum(np.asarray(rir)[:, 800:] ** 2, -1)
    assert late[1] > 10 * late[0]


def test_gain_and_shift_stay_in_their_bounds():
    audio = _speech_like(batch=64)
    gained = np.asarray(random_gain(jax.random.key(0), audio, (-6.0, 3.0)))
    db = 20 * np.log10(np.abs(gained[:, 100]) / np.abs(np.asarray(audio)[:, 100]))
    assert db.min() >= -6.0 - 1e-4 and db.max() <= 3.0 + 1e-4 and db.max() - db.min() > 5
    ramp = jnp.tile(jnp.arange(1.0, 1001.0), (64, 1))
    shifted = np.asarray(WaveAugment(RATE, max_shift=40)(jax.random.key(3), ramp))
    shifts = [int(row[np.flatnonzero(row)[0]] - 1) - int(np.flatnonzero(row)[0]) for row in shifted]
    assert max(abs(s) for s in shifts) <= 40 and len(set(shifts)) > 10


def test_banks_crop_inside_their_files_and_align_impulse_responses():
    short, long = np.full(300, 1.0, np.float32), np.arange(1, 5001, dtype=np.float32)
    bank = noise_bank([short, long], 1000)
    crops = np.asarray(bank.crops(jax.random.key(0), jnp.array([0, 1] * 32), 1000))
    assert (crops[::2] == 1.0).all()  # the short file repeated, never the next file's samples
    for row in crops[1::2]:
        assert row[0] >= 1 and row[-1] <= 5000 and (np.diff(row) == 1).all()
    measured = rir_bank([np.r_[np.zeros(50), 2.0, np.full(5000, 0.1)]], max_taps=800)
    assert measured.shape == (1, 800) and np.argmax(np.abs(measured[0])) == 0
    np.testing.assert_allclose(np.sum(measured**2), 1.0, rtol=1e-5)


def test_augmentation_folders_are_checked_and_resampled(tmp_path):
    with pytest.raises(DataError, match="task.noise_dir=.*does not exist"):
        read_clips(str(tmp_path / "none"), RATE, key="task.noise_dir", max_seconds=1.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .wav/.flac files.*task.noise_dir"):
        read_clips(str(tmp_path / "empty"), RATE, key="task.noise_dir", max_seconds=1.0)
    folder = tmp_path / "noise"
    folder.mkdir()
    sf.write(folder / "a.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 22050), 22050)  # 1 s
    [clip] = read_clips(str(folder), RATE, key="task.noise_dir", max_seconds=0.5)
    assert len(clip) == 8000  # resampled to 16 kHz, cut to max_seconds
    (folder / "b.wav").write_bytes(b"RIFF not audio")
    with pytest.raises(DataError, match="b.wav.*task.noise_dir"):
        read_clips(str(folder), RATE, key="task.noise_dir", max_seconds=1.0)
    (folder / "b.wav").unlink()
    sf.write(folder / "c.wav", np.zeros(100), RATE)
    with pytest.raises(DataError, match="c.wav.*silent"):
        read_clips(str(folder), RATE, key="task.rir_dir", max_seconds=1.0)


@pytest.mark.parametrize("key, value, match", [
    ("noise_prob", 1.5, "noise_prob=1.5 must be a probability"),
    ("noise_snr_db", (10.0, 0.0), "noise_snr_db=.*low <= high"),
    ("noise_colours", ("violet",), "unknown colours \\['violet'\\]"),
    ("rir_rt60", (0.0, 0.5), "must be > 0 seconds"),
    ("stats_batches", -1, "stats_batches=-1"),
])
def test_bad_augmentation_settings_name_the_key(key, value, match):
    config = load_config("configs/classify_tiny.py:ast")
    config.task[key] = value
    with pytest.raises(ConfigError, match=match):
        build_task(config)


def test_augmentation_without_a_source_says_how_to_give_one():
    config = load_config("configs/classify_tiny.py:ast")
    config.task.noise_prob = 0.5
    with pytest.raises(ConfigError, match="noise_dir=FOLDER"):
        build_task(config)
    config.task.update(noise_prob=0.0, rir_prob=0.5, rir_rt60=())
    with pytest.raises(ConfigError, match="rir_dir=FOLDER"):
        build_task(config)
    config = load_config("configs/classify_tiny.py:sincnet")
    config.task.stats_batches = 4
    with pytest.raises(ConfigError, match="waveform.*stats_batches=0"):
        build_task(config)
