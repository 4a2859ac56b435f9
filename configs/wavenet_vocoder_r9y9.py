"""r9y9/wavenet_vocoder's published mixture-of-logistics mel vocoder recipe, at full scale.

egs/mol/conf/mol_wavenet.json (the LJSpeech / CMU ARCTIC recipe of r9y9's README):
22,050 Hz audio; 80 mel bands of |STFT| (magnitude) over 125-7600 Hz, n_fft 1024, hop 256,
logged (audio.py `logmelspectrogram`: log10 of the mel magnitude floored at 1e-10) and
normalised; 24 layers in 4 stacks, kernel 3, residual 128, gate 256, skip 128; a 10-component
discretized mixture of logistics over 16-bit samples (log-scale floor -16); conditioning
upsampled x 4 x 4 x 4 x 4; Adam lr 1e-3 halved every 200k steps, no gradient clipping,
batch 8 of 10,240-sample crops, 1M steps, weights EMA 0.9999.

Differences from the reference, all in the front and back ends of the network: r9y9 applies
a 70 Hz high-pass, pre-emphasis 0.85 and a 0.55 gain to the audio, normalises each mel band
by its own mean and variance (preprocess_normalize.py), and upsamples with a kernel-5 conv
over frames followed by nearest-neighbour stretches and 2D convs (ConvInUpsampleNetwork);
here the audio is used as it is, the features are normalised by one mean and std
(`audiozoo stats`), the log is 10 log10 (a scale the normalisation absorbs), and the
upsampler is the transposed-conv stack of the WaveNet paper.

    audiozoo stats --config configs/wavenet_vocoder_r9y9.py --out stats.json \\
        --config.data.name=wav_folder --config.data.root=/data/LJSpeech-1.1/wavs
    audiozoo train --config configs/wavenet_vocoder_r9y9.py --workdir runs/r9y9_mol \\
        --config.data.name=wav_folder --config.data.root=/data/LJSpeech-1.1/wavs \\
        --config.frontend.mean=M --config.frontend.std=S
    audiozoo vocode sentence.wav --workdir runs/r9y9_mol --out vocoded.wav
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config

SAMPLE_RATE = 22050
HOP = 256
NUM_MELS = 80


def get_config():
    c = base_config("vocoder")
    c.model.update(dict(
        num_layers=24, num_stacks=4, kernel_size=3, residual_channels=128, gate_channels=256,
        skip_channels=128, num_classes=65536, output="mol", num_mixtures=10,
        local_channels=NUM_MELS, upsample_scales=(4, 4, 4, 4), upsample="transposed",
    ))
    c.frontend = default_frontend_config("logmel")
    c.frontend.update(sample_rate=SAMPLE_RATE, n_fft=1024, hop_length=HOP, n_mels=NUM_MELS,
                      f_min=125.0, f_max=7600.0, power=1.0)
    # Measured on the built-in notes (`audiozoo stats ... --batches 20`); for real speech,
    # measure it on the training data as the docstring shows.
    c.frontend.update(mean=-35.81, std=22.45)
    c.data.update(sample_rate=SAMPLE_RATE, segment_length=40 * HOP)  # max_time_steps 10240
    c.optim.update(name="adam", learning_rate=1e-3, eps=1e-8, schedule="step",
                   decay_boundaries=(200_000, 400_000, 600_000, 800_000), decay_factor=0.5,
                   grad_clip_norm=0.0)
    c.train.update(num_steps=1_000_000, batch_size=8, log_every=100, eval_every=10_000,
                   checkpoint_every=10_000, ema_decay=0.9999)
    return c
