"""Tiny WaveNet on the built-in synthetic notes: trains on one CPU in a few minutes.

Two stacks of dilations 1..32 (kernel 2, receptive field 127 samples, 7.9 ms at 16 kHz),
conditioned on the note's timbre family. No paper table; the smoke-test of the whole stack.

    audiozoo train --config configs/wavenet_tiny.py --workdir runs/wavenet_tiny
    audiozoo generate --workdir runs/wavenet_tiny --seconds 1 --out tiny.wav
"""

from audiozoo.config import base_config


def get_config():
    c = base_config()
    c.model.update(dict(
        num_layers=12, num_stacks=2, kernel_size=2, residual_channels=32, gate_channels=64,
        skip_channels=64, num_classes=256, output="softmax",
        num_global_ids=5, global_channels=16,
    ))
    c.task.global_cond = "family"
    c.data.segment_length = 1024
    c.data.num_train = 2048
    c.optim.learning_rate = 3e-3
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 50
    c.train.num_steps = 600
    c.train.batch_size = 16
    c.train.log_every = 25
    c.train.eval_every = 200
    c.train.checkpoint_every = 200
    return c
