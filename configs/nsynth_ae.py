"""The NSynth WaveNet autoencoder at paper scale (Engel et al. 2017, arXiv 1704.01279, sec. 3.1).

Encoder: 30 non-causal layers (dilation 2^(i mod 10), kernel 3, 128 channels), 1x1 to 16
channels, average pooling over 512 samples (a 4 s note -> 125 x 16). Decoder: 30 layers in 3
stacks of dilations 1..512, kernel 3, residual 512 (gate 1024), skip 256, 256 mu-law classes,
conditioned on the encoding (repeated to the audio rate, a 1x1 into every layer and the
output stack), the skip sum starting from a 1x1 of the decoder's input (`skip_start`);
receptive field 6139 samples (the reference code's kernel-3 start conv adds 2: ~6141 in
magenta's nsynth/wavenet/h512_bo16.py). The exact h512_bo16 graph (that start conv over scalar
inputs, magenta's mu-law and framing) is the config `audiozoo import magenta-nsynth` writes
for magenta's published checkpoint (audiozoo.magenta.nsynth.nsynth_config).

Training follows magenta's reference code: random 6144-sample crops of NSynth notes
(`Config.get_batch`), Adam (eps 1e-8, no gradient clipping) for 200k steps of batch 32
(nsynth/wavenet/train.py: 32 synchronous replicas with a total batch of 32, one update per
global step), and the piecewise-constant learning rate of `Config.learning_rate_schedule` in
h512_bo16.py, copied exactly below (not scaled by the number of replicas). Its last two drops,
at 210k and 240k, lie past `Config.num_iters` = 200k and are kept only to match the table.
train.py also keeps an exponential moving average of the weights (decay 0.9999,
num_updates=global_step): so does this config (train.ema_decay with train.ema_warmup), and
evaluation, samples and the encode/decode verbs use the average. (magenta's fastgen.py
restores its checkpoints with a plain tf.train.Saver, i.e. the raw weights;
--config.train.ema_decay=0 trains without the average.) No paper table is reproduced (the
data is not on this machine); without --config.data.root the synthetic NSynth-like notes are
used.

    audiozoo train --config configs/nsynth_ae.py --workdir runs/nsynth_ae \\
        --config.data.name=nsynth --config.data.root=/data/nsynth
    audiozoo encode --workdir runs/nsynth_ae note.wav --out note.npy
    audiozoo decode --workdir runs/nsynth_ae note.npy --out resynth.wav
    audiozoo interpolate --workdir runs/nsynth_ae a.wav b.wav --weights 0.5 --out mix.wav
"""

from audiozoo.config import base_config

# magenta/models/nsynth/wavenet/h512_bo16.py, Config.__init__, `learning_rate_schedule`:
# {0: 2e-4, 90000: 4e-4 / 3, 120000: 6e-5, 150000: 4e-5, 180000: 2e-5, 210000: 6e-6,
#  240000: 2e-6}; train.py uses the rate of the largest key <= global_step.
LEARNING_RATE = 2e-4
LR_BOUNDARIES = (90_000, 120_000, 150_000, 180_000, 210_000, 240_000)
LR_VALUES = (4e-4 / 3, 6e-5, 4e-5, 2e-5, 6e-6, 2e-6)


def get_config():
    c = base_config("autoencoder")
    c.model.update(dict(
        num_classes=256, encoder_input="scalar", encoder_layers=30, encoder_stacks=3,
        encoder_kernel=3, encoder_channels=128, latent_channels=16, hop_length=512,
        bottleneck="none", decoder_layers=30, decoder_stacks=3, kernel_size=3,
        residual_channels=512, gate_channels=1024, skip_channels=256, upsample="repeat",
        skip_start=True,
    ))
    c.data.name = "synthetic_nsynth"
    c.data.segment_length = 6144
    c.data.pitch_range = (24, 84)
    # train.py: tf.train.AdamOptimizer(lr, epsilon=1e-8), gradients applied unclipped.
    c.optim.update(name="adam", learning_rate=LEARNING_RATE, schedule="piecewise",
                   warmup_steps=0, eps=1e-8, grad_clip_norm=0.0, lr_boundaries=LR_BOUNDARIES,
                   lr_values=LR_VALUES)
    c.train.update(num_steps=200_000, batch_size=32, log_every=100, eval_every=5000,
                   checkpoint_every=5000, ema_decay=0.9999, ema_warmup=True)
    return c
