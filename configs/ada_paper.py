"""Autoregressive discrete autoencoders at the scale of Dieleman et al. 2018 (arXiv 1806.10474).

Two levels on 16 kHz audio. Level 1 (``level1``): a 30-layer dilated encoder (128 channels)
pooling every 8 samples into one of 2048 argmax-autoencoder codes, and a WaveNet decoder of
20 layers (2 stacks of 1..512, kernel 2, residual 128, gate 256, skip 256; receptive field
2047 samples). Level 2 (``level2``): the same shapes over the level-1 codes with a hop of 8
codes (64 samples per level-2 code); its decoder's 2047-code receptive field spans 16376
samples (1.0 s). The paper's exact hop sizes, codebook sizes and decoder widths were not
checked against the paper: every size here is unverified, chosen at the paper's scale. No
table is reproduced (the paper's 413 h piano corpus is not here); the synthetic notes stand
in unless --config.data.name=wav_folder --config.data.root=DIR is given.

    audiozoo train --config configs/ada_paper.py:level1 --workdir runs/ada1
    audiozoo train --config configs/ada_paper.py:level2 --workdir runs/ada2 \\
        --config.task.lower_workdir=runs/ada1
"""

from audiozoo.config import base_config

VARIANTS = ("level1", "level2")
DECODER = dict(decoder_layers=20, decoder_stacks=2, kernel_size=2, residual_channels=128,
               gate_channels=256, skip_channels=256, upsample="repeat")
ENCODER = dict(encoder_layers=30, encoder_stacks=3, encoder_kernel=3, encoder_channels=128)


def get_config(level: str = "level1"):
    if level not in VARIANTS:
        raise ValueError(f"unknown variant {level!r}; valid: {', '.join(VARIANTS)}")
    c = base_config("autoencoder")
    first = level == "level1"
    c.model.update(dict(
        num_classes=256 if first else 2048, encoder_input="scalar" if first else "one_hot",
        hop_length=8, bottleneck="argmax", num_codes=2048, **ENCODER, **DECODER))
    c.data.name = "synthetic_nsynth"
    c.data.segment_length = 8192 if first else 65536
    c.optim.update(learning_rate=2e-4, schedule="cosine", warmup_steps=1000)
    c.train.update(num_steps=200_000, batch_size=32, log_every=100, eval_every=5000,
                   checkpoint_every=5000)
    return c
