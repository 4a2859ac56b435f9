"""The ibab/tensorflow-wavenet default model, unconditional, 16 kHz, mu-law 256.

ibab/tensorflow-wavenet wavenet_params.json: kernel 2, dilations 1..512 repeated 5 times,
residual 32, dilation 32 (our gate_channels counts filter + gate, so 64), skip 512, 256
classes. Receptive field 1 + 5 * 1023 = 5116 samples (320 ms); ibab reports 5117 because it
adds an initial causal conv of width 2 where we use a 1x1 input projection. ibab trains with
batch 1 on 100000-sample pieces, Adam lr 1e-3.

    audiozoo train --config configs/wavenet_ibab.py --workdir runs/wavenet_ibab
"""

from audiozoo.config import base_config


def get_config():
    c = base_config()
    c.model.update(dict(
        num_layers=50, num_stacks=5, kernel_size=2, residual_channels=32, gate_channels=64,
        skip_channels=512, num_classes=256, output="softmax",
    ))
    c.data.segment_length = 100_000
    c.optim.learning_rate = 1e-3
    c.train.num_steps = 100_000
    c.train.batch_size = 1
    c.train.log_every = 100
    c.train.eval_every = 5000
    c.train.checkpoint_every = 5000
    return c
