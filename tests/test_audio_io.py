"""Tests for audiozoo.audio.io: reading, writing, resampling and streaming."""

import dataclasses
import os
import wave

import numpy as np
import pytest
import soundfile as sf

from audiozoo.audio import (
    AudioError,
    AudioInfo,
    AudioStreamWriter,
    audio_info,
    read_audio,
    write_audio,
)


def _sine(freq, rate, seconds, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


def _no_temp_files(directory):
    return [p for p in os.listdir(directory) if p.endswith(".tmp")] == []


@pytest.mark.parametrize("name,subtype", [("a.wav", "PCM_16"), ("a.flac", "PCM_16")])
def test_int16_round_trip(tmp_path, name, subtype):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 4000).astype(np.float32)
    x[:2] = [-1.0, 1.0]  # full scale must survive too
    path = tmp_path / name
    write_audio(path, x, 16000, subtype=subtype)
    y = read_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    # Rounding to the int16 grid plus libsndfile's 32767 write / 32768 read scaling.
    assert np.max(np.abs(y - x)) <= 1.5 / 32768
    assert sf.info(str(path)).subtype == "PCM_16"


def test_float_wav_round_trip_is_exact(tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, 1000).astype(np.float32)
    path = tmp_path / "f.wav"
    write_audio(path, x, 22050, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(path), x)


def test_int24_and_float64_files_read_as_float32(tmp_path):
    x = _sine(440, 8000, 0.1)
    sf.write(str(tmp_path / "i24.wav"), x, 8000, subtype="PCM_24")
    sf.write(str(tmp_path / "f64.wav"), x.astype(np.float64), 8000, subtype="DOUBLE")
    for name in ("i24.wav", "f64.wav"):
        y = read_audio(tmp_path / name)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, x, atol=2 ** -22)


def test_audio_info(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(str(path), np.zeros((8000, 2), np.float32), 16000)
    info = audio_info(path)
    assert info == AudioInfo(sample_rate=16000, frames=8000, channels=2, duration=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.frames = 1


def test_stereo_to_mono_and_multichannel(tmp_path):
    left = np.full(100, 0.5, np.float32)
    right = np.full(100, -0.25, np.float32)
    path = tmp_path / "st.wav"
    sf.write(str(path), np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    mono = read_audio(path)
    assert mono.shape == (100,)
    np.testing.assert_allclose(mono, 0.125)
    both = read_audio(path, mono=False)
    assert both.shape == (100, 2)
    np.testing.assert_allclose(both[:, 1], -0.25)
    # A mono file with mono=False still has a channel axis.
    sf.write(str(tmp_path / "m.wav"), left, 8000)
    assert read_audio(tmp_path / "m.wav", mono=False).shape == (100, 1)


def test_resample_8k_to_16k_keeps_length_and_frequency(tmp_path):
    path = tmp_path / "s8k.wav"
    sf.write(str(path), _sine(440, 8000, 1.0), 8000)
    y = read_audio(path, 16000)
    assert y.dtype == np.float32
    assert y.shape == (16000,)
    assert abs(_peak_hz(y, 16000) - 440) <= 1.0
    # Amplitude is preserved away from the edges.
    assert abs(np.max(np.abs(y[1000:-1000])) - 0.5) < 0.01


def test_resample_stereo_keeps_channels(tmp_path):
    path = tmp_path / "st.wav"
    sf.write(str(path), np.stack([_sine(300, 8000, 0.5)] * 2, axis=1), 8000)
    assert read_audio(path, 16000, mono=False).shape == (8000, 2)


def test_same_rate_is_untouched(tmp_path):
    path = tmp_path / "s.wav"
    x = _sine(440, 16000, 0.1)
    sf.write(str(path), x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(path, 16000, resample=False), x)


def test_rate_mismatch_without_resample_raises(tmp_path):
    path = tmp_path / "voice_8k.wav"
    sf.write(str(path), _sine(440, 8000, 0.1), 8000)
    with pytest.raises(AudioError) as err:
        read_audio(path, 16000, resample=False)
    msg = str(err.value)
    assert "voice_8k.wav" in msg and "8000" in msg and "16000" in msg
    assert "--config.data.resample=True" in msg


def test_missing_file_raises(tmp_path):
    path = tmp_path / "nothere.wav"
    for fn in (read_audio, audio_info):
        with pytest.raises(AudioError, match="nothere.wav.*does not exist"):
            fn(path)


def test_corrupt_file_raises_naming_it(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    for fn in (read_audio, audio_info):
        with pytest.raises(AudioError, match="x.wav") as err:
            fn(path)
        assert "corrupt" in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("subtype,cut", [("PCM_16", 701), ("FLOAT", 40)])
def test_truncated_wav_raises_naming_it(tmp_path, subtype, cut):
    path = tmp_path / "cut.wav"
    sf.write(str(path), np.full(1000, 0.1, np.float32), 16000, subtype=subtype)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])  # the header still promises all 1000 frames
    for fn in (read_audio, audio_info):
        with pytest.raises(AudioError, match=r"cut\.wav.* is truncated: its header promises "
                           r"\d+ bytes of samples but the file holds only \d+"):
            fn(path)
    path.write_bytes(data)  # whole again: fine
    assert len(read_audio(path)) == audio_info(path).frames == 1000


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, np.float32), 8000)
    with pytest.raises(AudioError, match="empty.wav.*empty"):
        read_audio(path)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.array([0.0, np.nan, 0.1], np.float32), "NaN"),
        (np.array([0.0, np.inf], np.float32), "NaN/Inf"),
        (np.array([0.0, 1.5, -0.2], np.float32), "peaks at 1.5.*clip=True.*normalise"),
        (np.zeros(10, np.int16), "dtype"),
        (np.zeros((2, 3, 4), np.float32), "shape"),
    ],
)
def test_write_refuses_bad_audio_and_leaves_nothing(tmp_path, bad, match):
    path = tmp_path / "sub" / "out.wav"
    with pytest.raises(AudioError, match=match) as err:
        write_audio(path, bad, 16000)
    assert "out.wav" in str(err.value)
    assert not path.exists()
    if path.parent.exists():
        assert os.listdir(path.parent) == []


def test_write_clip_true_clips(tmp_path):
    path = tmp_path / "c.wav"
    write_audio(path, np.array([2.0, -3.0, 0.5], np.float32), 8000, subtype="FLOAT", clip=True)
    np.testing.assert_array_equal(read_audio(path), [1.0, -1.0, 0.5])


def test_write_accepts_jax_and_stereo_and_makes_dirs(tmp_path):
    import jax.numpy as jnp

    path = tmp_path / "a" / "b" / "st.flac"
    x = jnp.stack([jnp.linspace(-1, 1, 50), jnp.zeros(50)], axis=1)
    write_audio(path, x, 16000)
    assert read_audio(path, mono=False).shape == (50, 2)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert _no_temp_files(path.parent)


def test_write_overwrites_atomically(tmp_path):
    path = tmp_path / "o.wav"
    write_audio(path, np.zeros(10, np.float32), 8000)
    write_audio(path, np.full(20, 0.5, np.float32), 8000)
    assert read_audio(path).shape == (20,)
    assert _no_temp_files(tmp_path)


def test_write_failure_midway_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "keep.wav"
    write_audio(path, np.zeros(10, np.float32), 8000)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sf, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        write_audio(path, np.full(20, 0.5, np.float32), 8000)
    monkeypatch.undo()
    assert read_audio(path).shape == (10,)
    assert _no_temp_files(tmp_path)


def test_write_unknown_extension_or_subtype(tmp_path):
    with pytest.raises(AudioError, match=r"out\.mp4.*unknown extension"):
        write_audio(tmp_path / "out.mp4", np.zeros(4, np.float32), 8000)
    with pytest.raises(AudioError, match="FLOAT.*FLAC"):
        write_audio(tmp_path / "out.flac", np.zeros(4, np.float32), 8000, subtype="FLOAT")
    assert os.listdir(tmp_path) == []


def test_stream_writer_writes_all_chunks(tmp_path):
    path = tmp_path / "stream.wav"
    chunks = [_sine(440, 8000, 0.1), _sine(880, 8000, 0.05)]
    with AudioStreamWriter(path, 8000) as w:
        for c in chunks:
            w.write(c)
    assert w.frames_written == 1200
    np.testing.assert_allclose(read_audio(path), np.concatenate(chunks), atol=1.5 / 32768)


def test_stream_writer_interrupt_leaves_valid_wav(tmp_path):
    path = tmp_path / "gen.wav"
    a, b = np.full(300, 0.25, np.float32), np.full(200, -0.5, np.float32)
    with pytest.raises(KeyboardInterrupt):
        with AudioStreamWriter(path, 16000) as w:
            w.write(a)
            w.write(b)
            raise KeyboardInterrupt
    y = read_audio(path)
    np.testing.assert_allclose(y, np.concatenate([a, b]), atol=1.5 / 32768)


def test_stream_writer_header_valid_before_close(tmp_path):
    # Simulates a hard kill: the file is read while the writer is still open. Python's
    # wave module trusts the header's sizes, so this checks the header really is synced.
    path = tmp_path / "live.wav"
    w = AudioStreamWriter(path, 16000, channels=2)
    w.open()
    try:
        w.write(np.zeros((100, 2), np.float32))
        w.write(np.full((50, 2), 0.5, np.float32))
        with wave.open(str(path)) as r:
            assert r.getnframes() == 150 and r.getnchannels() == 2
        assert audio_info(path).frames == 150
    finally:
        w.close()


def test_stream_writer_checks_chunks(tmp_path):
    path = tmp_path / "chk.wav"
    with AudioStreamWriter(path, 8000) as w:
        w.write(np.zeros(10, np.float32))
        with pytest.raises(AudioError, match="chk.wav.*NaN"):
            w.write(np.array([np.nan], np.float32))
        with pytest.raises(AudioError, match="chk.wav.*peaks at 2"):
            w.write(np.array([2.0], np.float32))
        with pytest.raises(AudioError, match="channel"):
            w.write(np.zeros((5, 2), np.float32))
    # Refused chunks were not written.
    assert audio_info(path).frames == 10
    with pytest.raises(AudioError, match="not open"):
        w.write(np.zeros(4, np.float32))


def test_read_refuses_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.zeros(100, np.float32)
    data[50] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav.*NaN or Inf"):
        read_audio(path)


@pytest.mark.parametrize("clip, message", [
    (np.zeros((2, 100), np.float32), r"must be float samples \[time\].*float32\[2, 100\]"),
    (np.zeros(100, np.int16), r"must be float samples \[time\].*int16\[100\]"),
    (np.zeros(0, np.float32), "is empty"),
    (np.array([0.1, np.nan, np.inf], np.float32), "holds 2 NaN/Inf sample"),
])
def test_in_memory_clips_are_checked_before_a_model_hears_them(clip, message):
    """What `audiozoo.load(...)` verbs take: NaN would be heard as silence or garbage."""
    from audiozoo.audio.io import check_clip

    with pytest.raises(AudioError, match=f"clip 3 {message}"):
        check_clip(clip, "clip 3")
    assert check_clip(np.ones(4, np.float64), "x").dtype == np.float32
