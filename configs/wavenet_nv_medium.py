"""nv-wavenet's "medium" model: 20 layers, residual 64, skip 128, kernel 2, max dilation 512.

Two stacks of 1..512 (NVIDIA/nv-wavenet README: dilation doubles up to maxDilation, then
resets to 1), receptive field 1 + 2 * 1023 = 2047 samples (128 ms at
16 kHz). This is also the configuration of the fast-generation speed goals. Conditioned on
the synthetic note family by default.

    audiozoo train --config configs/wavenet_nv_medium.py --workdir runs/wavenet_nv_medium
"""

from audiozoo.config import base_config


def get_config():
    c = base_config()
    c.model.update(dict(
        num_layers=20, num_stacks=2, kernel_size=2, residual_channels=64, gate_channels=128,
        skip_channels=128, num_classes=256, output="softmax",
        num_global_ids=5, global_channels=16,
    ))
    c.task.global_cond = "family"
    c.data.segment_length = 8192
    c.train.num_steps = 200_000
    c.train.batch_size = 8
    c.train.log_every = 100
    c.train.eval_every = 5000
    c.train.checkpoint_every = 5000
    return c
