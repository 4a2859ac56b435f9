"""Tiny autoregressive discrete autoencoders (Dieleman et al. 2018, arXiv 1806.10474) on the
synthetic NSynth-like notes: one CPU, minutes. Variants pick the bottleneck:

* ``vq``: VQ-VAE, 64 codes of width 16, commitment 0.25, codebook learnt by gradient;
* ``vq_ema``: the same with EMA codebook updates (decay 0.99) and dead-code restarts;
* ``argmax``: the argmax autoencoder, 64 codes (ReLU -> normalise -> one-hot);
* ``level2``: a second level on a trained level-1 model's codes (argmax bottleneck,
  32 codes, hop 4 level-1 codes = 256 samples): pass the level-1 workdir.
* ``prior``: an autoregressive WaveNet over the top level's codes (pass the top level's
  workdir, e.g. level 2's): `audiozoo generate` then makes audio from nothing, top-down.

Level 1: a 6-layer encoder (32 channels) pooling every 64 samples (250 codes/s at 16 kHz),
a 10-layer decoder (2 stacks of 1..16, kernel 3, residual 32; receptive field 125 samples).
Results and the VQ vs argmax comparison: experiments/ada/README.md.

    audiozoo train --config configs/ada_tiny.py:argmax --workdir runs/ada_argmax
    audiozoo train --config configs/ada_tiny.py:level2 --workdir runs/ada_level2 \\
        --config.task.lower_workdir=runs/ada_argmax
    audiozoo encode --workdir runs/ada_level2 note.wav --out codes.npy
    audiozoo decode --workdir runs/ada_level2 codes.npy --out note_resynth.wav
    audiozoo train --config configs/ada_tiny.py:prior --workdir runs/ada_prior \
        --config.task.lower_workdir=runs/ada_level2
    audiozoo generate --workdir runs/ada_prior --seconds 4 --out music.wav
"""

from audiozoo.config import base_config

VARIANTS = ("vq", "vq_ema", "argmax", "level2", "prior")
LEVEL1 = dict(
    num_classes=256, encoder_input="scalar", encoder_layers=6, encoder_stacks=2,
    encoder_kernel=3, encoder_channels=32, latent_channels=16, hop_length=64, num_codes=64,
    decoder_layers=10, decoder_stacks=2, kernel_size=3, residual_channels=32, gate_channels=64,
    skip_channels=64, upsample="repeat",
)
BOTTLENECK = {
    "vq": dict(bottleneck="vq"),
    "vq_ema": dict(bottleneck="vq", vq_ema=True, dead_code_threshold=0.5),
    "argmax": dict(bottleneck="argmax"),
}
# Level 2 models the 64 level-1 codes: 6 decoder layers (1, 2, 4 twice; receptive field 29
# codes = 1856 samples), pooling 4 codes into one of 32.
LEVEL2 = dict(
    num_classes=64, encoder_input="one_hot", encoder_layers=4, encoder_stacks=2,
    encoder_kernel=3, encoder_channels=32, hop_length=4, bottleneck="argmax", num_codes=32,
    decoder_layers=6, decoder_stacks=2, kernel_size=3, residual_channels=32, gate_channels=64,
    skip_channels=64, upsample="repeat",
)

# The prior over level 2's 32 codes (one per 256 samples): 2 stacks of dilations 1..8,
# kernel 3: a receptive field of 61 codes = 15,616 samples (~1 s at 16 kHz); crops of 128 codes.
PRIOR = dict(
    num_layers=8, num_stacks=2, kernel_size=3, residual_channels=32, gate_channels=64,
    skip_channels=64, num_classes=32,
)


def get_config(variant: str = "argmax"):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if variant == "prior":
        return prior_config()
    c = base_config("autoencoder")
    c.model.update(LEVEL2 if variant == "level2" else dict(LEVEL1, **BOTTLENECK[variant]))
    c.data.name = "synthetic_nsynth"
    c.data.segment_length = 4096 if variant == "level2" else 1024
    c.data.num_train = 2048
    c.optim.update(learning_rate=2e-3, schedule="cosine", warmup_steps=50)
    c.train.update(num_steps=600, batch_size=16, log_every=25, eval_every=200,
                   checkpoint_every=200)
    return c


def prior_config():
    c = base_config("prior")
    c.model.update(PRIOR)
    c.data.name = "synthetic_nsynth"
    c.data.segment_length = 128 * 256
    c.data.num_train = 2048
    c.optim.update(learning_rate=2e-3, schedule="cosine", warmup_steps=50)
    c.train.update(num_steps=600, batch_size=16, log_every=25, eval_every=200,
                   checkpoint_every=200)
    return c
