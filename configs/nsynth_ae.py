"""The NSynth WaveNet autoencoder at paper scale (Engel et al. 2017, arXiv 1704.01279, sec. 3.1).

Encoder: 30 non-causal layers (dilation 2^(i mod 10), kernel 3, 128 channels), 1x1 to 16
channels, average pooling over 512 samples (a 4 s note -> 125 x 16). Decoder: 30 layers in 3
stacks of dilations 1..512, kernel 3, residual 512 (gate 1024), skip 256, 256 mu-law classes,
conditioned on the encoding (repeated to the audio rate, a 1x1 into every layer and the
output stack); receptive field 6139 samples (the reference code's kernel-3 start conv adds 2:
~6141 in magenta's nsynth/wavenet/h512_bo16.py). Training: random 6144-sample crops of NSynth
notes, Adam lr 2e-4 with a step schedule (the paper's 200k iterations; the decay points are a
guess, not the paper's or h512_bo16.py's: x0.5 at 120k, 160k, 180k). Batch 32 here; the
paper's batch size is unverified. No paper table is reproduced (the data is not on this
machine); without --config.data.root the synthetic NSynth-like notes are used.

    audiozoo train --config configs/nsynth_ae.py --workdir runs/nsynth_ae \\
        --config.data.name=nsynth --config.data.root=/data/nsynth
    audiozoo encode --workdir runs/nsynth_ae note.wav --out note.npy
    audiozoo decode --workdir runs/nsynth_ae note.npy --out resynth.wav
    audiozoo interpolate --workdir runs/nsynth_ae a.wav b.wav --weights 0.5 --out mix.wav
"""

from audiozoo.config import base_config


def get_config():
    c = base_config("autoencoder")
    c.model.update(dict(
        num_classes=256, encoder_input="scalar", encoder_layers=30, encoder_stacks=3,
        encoder_kernel=3, encoder_channels=128, latent_channels=16, hop_length=512,
        bottleneck="none", decoder_layers=30, decoder_stacks=3, kernel_size=3,
        residual_channels=512, gate_channels=1024, skip_channels=256, upsample="repeat",
    ))
    c.data.name = "synthetic_nsynth"
    c.data.segment_length = 6144
    c.data.pitch_range = (24, 84)
    c.optim.update(learning_rate=2e-4, schedule="step", decay_boundaries=(120_000, 160_000, 180_000),
                   decay_factor=0.5)
    c.train.update(num_steps=200_000, batch_size=32, log_every=100, eval_every=5000,
                   checkpoint_every=5000)
    return c
