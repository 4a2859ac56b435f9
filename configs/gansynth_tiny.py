"""A GANSynth small enough to train on one CPU in minutes, on the built-in synthetic notes.

    audiozoo train --config configs/gansynth_tiny.py --workdir runs/gansynth_tiny
    audiozoo train --config configs/gansynth_tiny.py:phase --workdir runs/gansynth_tiny_phase

Everything of the paper's recipe (configs/gansynth.py) except the size: 0.5 s notes at 16 kHz,
nfft 256 (128 x 128 x 2 spectrograms), 6 resolutions from 4 x 4, filters min(128 / 2^b, 32),
and phases of 4,000 images. Variants: the representation (phase, if, if_mel). Any
NSynth-format release trains with --config.data.name=nsynth --config.data.root=DIR.
"""

from audiozoo.config import base_config

VARIANTS = ("phase", "if", "if_mel")


def get_config(representation: str = "if_mel"):
    if representation not in VARIANTS:
        raise ValueError(f"unknown variant {representation!r}; valid: {', '.join(VARIANTS)}")
    c = base_config("gansynth")
    c.model.update(resolutions=6, start_shape=(4, 4), latent_dim=64, num_pitches=61, channels=2,
                   fmap_base=128, fmap_max=32, kernel_size=3)
    c.task.update(representation=representation, nfft=256, stable_images=4000,
                  transition_images=4000, num_samples=4)
    c.data.update(name="synthetic_nsynth", segment_length=8192, pitch_range=(48, 72),
                  sources=("acoustic",), crop="start", num_train=2048, num_eval=128)
    c.optim.update(name="adam", learning_rate=8e-4, b1=0.0, b2=0.99, eps=1e-8, grad_clip_norm=0.0)
    c.train.update(num_steps=11 * 4000 // 16, batch_size=16, log_every=25, eval_every=250,
                   num_eval_batches=2, checkpoint_every=250)
    return c
