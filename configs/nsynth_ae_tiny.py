"""A tiny NSynth WaveNet autoencoder on the synthetic NSynth-like notes: one CPU, minutes.

The paper's architecture (configs/nsynth_ae.py) shrunk: a 6-layer encoder (2 stacks of
dilations 1..4, 32 channels) pooling 16 channels every 128 samples, and a 10-layer decoder
(2 stacks of 1..16, kernel 3, residual 32, gate 64, skip 64; receptive field 125 samples)
conditioned on the encoding in every layer and the output stack, its skip sum starting from a
1x1 of its input (`skip_start`, as in magenta's nsynth/wavenet/h512_bo16.py). Crops of 1024
samples. Not the paper's schedule: magenta's piecewise rates (configs/nsynth_ae.py) stay at
2e-4 for the first 90k steps, far too slow for a 600-step run, so Adam 2e-3 with warm-up and
cosine decay. Results: experiments/nsynth/README.md.

    audiozoo train --config configs/nsynth_ae_tiny.py --workdir runs/nsynth_ae_tiny
    audiozoo encode --workdir runs/nsynth_ae_tiny note.wav --out note.npy
    audiozoo decode --workdir runs/nsynth_ae_tiny note.npy --out resynth.wav
"""

from audiozoo.config import base_config


def get_config():
    c = base_config("autoencoder")
    c.model.update(dict(
        num_classes=256, encoder_input="scalar", encoder_layers=6, encoder_stacks=2,
        encoder_kernel=3, encoder_channels=32, latent_channels=16, hop_length=128,
        bottleneck="none", decoder_layers=10, decoder_stacks=2, kernel_size=3,
        residual_channels=32, gate_channels=64, skip_channels=64, upsample="repeat",
        skip_start=True,
    ))
    c.data.name = "synthetic_nsynth"
    c.data.segment_length = 1024
    c.data.num_train = 2048
    c.optim.update(learning_rate=2e-3, schedule="cosine", warmup_steps=50)
    c.train.update(num_steps=600, batch_size=16, log_every=25, eval_every=200,
                   checkpoint_every=200)
    return c
