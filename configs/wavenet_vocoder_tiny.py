"""A small mel-conditioned WaveNet vocoder that trains on this CPU in minutes.

WaveNet (van den Oord et al. 2016, section 2.5) locally conditioned on 40-band log-mel frames
every 128 samples (8 ms at 16 kHz), upsampled by a transposed-conv stack (4 x 4 x 8); 256
mu-law classes; 2 stacks of dilations 1..64, kernel 3 (receptive field 509 samples). The
features come from the audio itself (task "vocoder"); normalisation from `audiozoo stats`
on the built-in notes. Any folder of recordings works the same way:

    audiozoo train --config configs/wavenet_vocoder_tiny.py --workdir runs/vocoder
    audiozoo train --config configs/wavenet_vocoder_tiny.py --workdir runs/vocoder_speech \\
        --config.data.name=wav_folder --config.data.root=/path/to/wavs
    audiozoo vocode speech.wav --workdir runs/vocoder --out speech_vocoded.wav
    audiozoo evaluate --workdir runs/vocoder --data /path/to/held_out_wavs
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config

SAMPLE_RATE = 16000
HOP = 128
NUM_MELS = 40


def get_config():
    c = base_config("vocoder")
    c.model.update(dict(
        num_layers=14, num_stacks=2, kernel_size=3, residual_channels=32, gate_channels=64,
        skip_channels=32, num_classes=256, local_channels=NUM_MELS, upsample_scales=(4, 4, 8),
        upsample="transposed",
    ))
    c.frontend = default_frontend_config("logmel")
    c.frontend.update(sample_rate=SAMPLE_RATE, n_fft=512, hop_length=HOP, n_mels=NUM_MELS,
                      f_min=50.0, f_max=8000.0)
    # `audiozoo stats --config configs/wavenet_vocoder_tiny.py --out s.json --batches 20` on
    # the built-in notes; measure your own data's the same way.
    c.frontend.update(mean=-47.52, std=36.44)
    c.data.update(sample_rate=SAMPLE_RATE, segment_length=32 * HOP)
    c.task.update(num_samples=2, sample_seconds=0.5)
    c.optim.update(learning_rate=1e-3, schedule="cosine", warmup_steps=100)
    c.train.update(num_steps=2000, batch_size=8, log_every=50, eval_every=500,
                   checkpoint_every=500)
    return c
