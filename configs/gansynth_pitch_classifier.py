"""The pitch classifier GANSynth's sample metrics use (Engel et al. 2019, section 4.2).

    audiozoo train --config configs/gansynth_pitch_classifier.py --workdir runs/pitch \
        --config.data.name=nsynth --config.data.root=/data/nsynth
    audiozoo train --config configs/gansynth_pitch_classifier.py:tiny --workdir runs/pitch_tiny
    audiozoo evaluate --workdir runs/gansynth_tiny --classifier runs/pitch_tiny

The network and input of magenta's GANSynth evaluation (`models/pitch_classifier.py`, the
"logmag" front end: nfft 1024, hop 256, dB relative to the note's maximum, top_db 120,
/120 + 1, 256 frames x 512 bins) trained through the classification task on the notes'
MIDI pitch (label_key "pitch", 128 classes named "0".."127"), Adam 1e-4 with b1 0.5,
batch 16. It defaults to the synthetic NSynth-like notes of the GANSynth pitch range
(24-84); `--config.data.name=nsynth --config.data.root=DIR` reads an NSynth release
(`--config.data.pitch_range="()"` keeps every pitch).

Variant `tiny`: the notes of configs/gansynth_tiny.py (0.256 s, 4,096 samples, MIDI 48-72)
at nfft 256, hop 32 (128 frames x 128 bins) and a quarter of the widths, so that it trains
on a CPU in a minute or two (optimiser as above).
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config

VARIANTS = ("paper", "tiny")


def get_config(variant: str = "paper"):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    c = base_config("classify")
    c.model.update(name="gansynth_pitch_classifier", num_classes=128)
    c.frontend = default_frontend_config("logmag")
    c.task.label_key = "pitch"
    c.data.update(name="synthetic_nsynth", segment_length=64000, pitch_range=(24, 84),
                  num_train=4096, num_eval=256)
    c.optim.update(name="adam", learning_rate=1e-4, b1=0.5, b2=0.999, grad_clip_norm=0.0)
    c.train.update(num_steps=20000, batch_size=16, log_every=50, eval_every=1000,
                   num_eval_batches=16, checkpoint_every=1000)
    if variant == "tiny":
        _tiny(c)
    return c


def _tiny(c):
    c.model.update(channels=(32, 32, 32, 64, 64, 64, 128, 128, 128), hidden=256)
    c.frontend.update(n_fft=256, hop_length=32, num_frames=128)
    c.data.update(segment_length=4096, pitch_range=(48, 72), crop="start", num_train=2048,
                  num_eval=256)
    c.train.update(num_steps=600, log_every=25, eval_every=100, num_eval_batches=16,
                   checkpoint_every=100)
