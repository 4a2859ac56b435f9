"""16-bit WaveNet with a discretized mixture-of-logistics output (r9y9 wavenet_vocoder MoL).

r9y9/wavenet_vocoder hparams.py defaults: 24 layers in 4 stacks (dilations 1..32), kernel 3,
residual 128, gate 256, skip 128, 10 logistic components, log-scale floor -16, 65536 linear
classes. Receptive field 1 + 2 * 4 * 63 = 505 samples (32 ms at 16 kHz). r9y9 conditions on
mel spectrograms at 22.05 kHz; here it is conditioned on the synthetic note family.

    audiozoo train --config configs/wavenet_mol.py --workdir runs/wavenet_mol
"""

from audiozoo.config import base_config


def get_config():
    c = base_config()
    c.model.update(dict(
        num_layers=24, num_stacks=4, kernel_size=3, residual_channels=128, gate_channels=256,
        skip_channels=128, num_classes=65536, output="mol", num_mixtures=10,
        num_global_ids=5, global_channels=16,
    ))
    c.task.global_cond = "family"
    c.data.segment_length = 8192
    c.optim.learning_rate = 1e-3
    c.train.num_steps = 200_000
    c.train.batch_size = 8
    c.train.log_every = 100
    c.train.eval_every = 5000
    c.train.checkpoint_every = 5000
    return c
