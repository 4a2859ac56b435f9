"""A GANSynth small enough to train on one CPU, on the built-in synthetic notes.

    audiozoo train --config configs/gansynth_tiny.py --workdir runs/gansynth_tiny
    audiozoo train --config configs/gansynth_tiny.py:phase --workdir runs/gansynth_tiny_phase

Everything of the paper's recipe (configs/gansynth.py) except the size and the schedule: the
first 4,096 samples (0.256 s) of each note at nfft 512 (hop 128: 32 x 256 x 2 spectrograms),
the +H first block (2 x 16) and 5 resolutions, filters min(512 / 2^b, 32), latent 32, batch
16, MIDI 48-72, 8,000 images per stable and per transition phase (9 phases, 4,500 steps), and
a generator EMA of 0.99. Shorter phases left the generator unable to follow the critic, and
the paper's 0.999 EMA averages over more steps than such a phase has
(experiments/gansynth/README.md). Variants: the representation (phase, if, if_mel). Any
NSynth-format release trains with --config.data.name=nsynth --config.data.root=DIR.
"""

from audiozoo.config import base_config

VARIANTS = ("phase", "if", "if_mel")
PHASE_IMAGES = 8000


def get_config(representation: str = "if_mel"):
    if representation not in VARIANTS:
        raise ValueError(f"unknown variant {representation!r}; valid: {', '.join(VARIANTS)}")
    c = base_config("gansynth")
    c.model.update(resolutions=5, start_shape=(2, 16), latent_dim=32, num_pitches=61, channels=2,
                   fmap_base=512, fmap_max=32, kernel_size=3)
    c.task.update(representation=representation, nfft=512, stable_images=PHASE_IMAGES,
                  transition_images=PHASE_IMAGES, num_samples=4)
    c.data.update(name="synthetic_nsynth", segment_length=4096, pitch_range=(48, 72),
                  sources=("acoustic",), crop="start", num_train=2048, num_eval=128)
    c.optim.update(name="adam", learning_rate=8e-4, b1=0.0, b2=0.99, eps=1e-8, grad_clip_norm=0.0)
    c.train.update(num_steps=9 * PHASE_IMAGES // 16, batch_size=16, log_every=50, eval_every=500,
                   num_eval_batches=2, checkpoint_every=250, ema_decay=0.99)
    # The critic's Wasserstein estimate (the logged "loss") legitimately moves by orders of
    # magnitude between phases; NaN/Inf steps still stop the run.
    c.train.max_loss_ratio = 0.0
    return c
