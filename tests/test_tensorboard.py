"""TensorBoard logs: the trainer's event files in WORKDIR/tensorboard mirror metrics.jsonl and
hold each audio sample with its spectrogram; resuming appends; the flag turns them off."""

import json
import struct

import numpy as np
from tensorboardX.crc32c import crc32c
from tensorboardX.proto import event_pb2

from audiozoo.config import apply_overrides
from audiozoo.train.loop import Trainer, train
from audiozoo.train.tensorboard import spectrogram_image
from helpers import run_interrupted_at, tiny_config


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path):
    """The payloads of a TFRecord file: [length u64][crc u32][data][crc u32] each."""
    blob, offset = path.read_bytes(), 0
    while offset < len(blob):
        (length,) = struct.unpack_from("<Q", blob, offset)
        (length_crc,) = struct.unpack_from("<I", blob, offset + 8)
        assert length_crc == _masked_crc(blob[offset:offset + 8])
        data = blob[offset + 12:offset + 12 + length]
        (data_crc,) = struct.unpack_from("<I", blob, offset + 12 + length)
        assert data_crc == _masked_crc(data)
        yield data
        offset += 16 + length


def _events(workdir):
    """Every event of every file, in the order TensorBoard reads them (files by name)."""
    files = sorted((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert files, "no event file was written"
    return [event_pb2.Event.FromString(r) for f in files for r in _records(f)]


def _scalars(events) -> dict[tuple[str, int], float]:
    """{(tag, step): value}, honouring the resume marker as TensorBoard does: a session START
    at step S drops the events read before it at steps >= S."""
    found = {}
    for event in events:
        if event.HasField("session_log") and event.session_log.status == event.session_log.START:
            found = {k: v for k, v in found.items() if k[1] < event.step}
        for value in event.summary.value:
            if value.HasField("simple_value"):
                found[value.tag, event.step] = value.simple_value
    return found


def _values(events, kind: str) -> dict[str, tuple[int, object]]:
    """{tag: (step, the audio or image proto)} of the summaries of one kind."""
    return {v.tag: (e.step, getattr(v, kind)) for e in events for v in e.summary.value
            if v.HasField(kind)}


def _metrics_as_scalars(workdir) -> dict[tuple[str, int], float]:
    """metrics.jsonl's numbers as TensorBoard stores them (float32)."""
    found = {}
    for record in map(json.loads, open(workdir / "metrics.jsonl")):
        for key, value in record.items():
            if key not in ("step", "split"):
                found[f"{record['split']}/{key}", record["step"]] = float(np.float32(value))
    return found


def test_event_file_mirrors_metrics_and_holds_samples(tmp_path):
    config = tiny_config(num_steps=2)
    config.train.eval_every = 2
    config.task.update(num_samples=2, sample_seconds=0.01)
    train(config, tmp_path)
    events = _events(tmp_path)
    scalars = _scalars(events)
    assert {"train/loss", "eval/loss", "eval/examples"} <= {tag for tag, _ in scalars}
    assert scalars == _metrics_as_scalars(tmp_path)
    audio = _values(events, "audio")
    assert sorted(audio) == ["audio/0_family0", "audio/1_family1"]
    step, clip = audio["audio/0_family0"]
    assert (step, clip.sample_rate, clip.length_frames) == (2, 16000, 160)
    images = _values(events, "image")
    assert sorted(images) == ["spectrogram/0_family0", "spectrogram/1_family1"]
    step, image = images["spectrogram/0_family0"]
    assert (step, image.height, image.colorspace) == (2, 257, 3)  # n_fft 512 at 16 kHz
    assert image.encoded_image_string.startswith(b"\x89PNG")


def test_resumed_run_appends_to_the_same_directory(tmp_path):
    train(tiny_config(num_steps=2), tmp_path)
    train(tiny_config(num_steps=4), tmp_path)
    files = sorted((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 2
    resumed = [event_pb2.Event.FromString(r) for r in _records(files[1])]
    starts = [e.step for e in resumed if e.HasField("session_log")]
    assert starts == [3]  # TensorBoard drops older events from the first repeated step on
    scalars = _scalars(_events(tmp_path))
    assert sorted(step for tag, step in scalars if tag == "train/loss") == [2, 4]
    assert scalars == _metrics_as_scalars(tmp_path)


def test_ctrl_c_closes_the_event_file(tmp_path):
    trainer = Trainer(tiny_config(num_steps=6), tmp_path)
    run_interrupted_at(trainer, 3)
    assert trainer.tensorboard._writer is None  # closed, so every event is on disk
    assert _scalars(_events(tmp_path)) == _metrics_as_scalars(tmp_path)


def test_flag_off_writes_no_tensorboard_directory(tmp_path):
    config = apply_overrides(tiny_config(num_steps=2), [("train.tensorboard", "False")])
    train(config, tmp_path)
    assert (tmp_path / "metrics.jsonl").exists()
    assert not (tmp_path / "tensorboard").exists()


def test_spectrogram_image_is_brightest_at_the_tone():
    rate, hz = 16000, 1000
    tone = np.sin(2 * np.pi * hz * np.arange(rate // 4) / rate).astype(np.float32)
    image = spectrogram_image(tone, rate)
    assert image.dtype == np.uint8 and image.shape[1:] == (1 + len(tone) // 128, 3)
    brightest_row = int(np.argmax(image.astype(int).sum(axis=(1, 2))))
    bin_width = rate / 512
    assert abs((image.shape[0] - 1 - brightest_row) * bin_width - hz) <= bin_width
    assert spectrogram_image(np.zeros(rate, np.float32), rate).max() < 16  # silence is dark
