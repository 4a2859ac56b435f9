"""WaveNet with the paper's example dilation schedule: 3 stacks of 1, 2, ..., 512.

van den Oord et al. 2016 (arXiv 1609.03499), section 2.1: kernel 2, receptive field
1 + 3 * 1023 = 3070 samples (192 ms at 16 kHz). The paper gives no channel widths; these are
the nv-wavenet "medium" widths with a wider skip path. Reproduces no table (the paper's
Table 1 is a MOS study on proprietary speech).

    audiozoo train --config configs/wavenet_paper.py --workdir runs/wavenet_paper
"""

from audiozoo.config import base_config


def get_config():
    c = base_config()
    c.model.update(dict(
        num_layers=30, num_stacks=3, kernel_size=2, residual_channels=64, gate_channels=128,
        skip_channels=256, num_classes=256, output="softmax",
        num_global_ids=5, global_channels=16,
    ))
    c.task.global_cond = "family"
    c.task.input_noise = 1e-3
    c.data.segment_length = 8192
    c.optim.learning_rate = 1e-3
    c.train.num_steps = 200_000
    c.train.batch_size = 8
    c.train.log_every = 100
    c.train.eval_every = 5000
    c.train.checkpoint_every = 5000
    c.train.sample_every = 20_000
    return c
