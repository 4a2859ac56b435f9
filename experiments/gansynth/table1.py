"""GANSynth at the size this project's 2-core CPU trains in about an hour, for a Table 1 on
the soundfont-rendered NSynth release (make_soundfont_nsynth.py; the real release reads the
same way with --config.data.root).

    audiozoo train --config experiments/gansynth/table1.py:if_mel --workdir runs/t1_if_mel \
        --config.data.root=/tmp/soundfont_nsynth

The recipe of configs/gansynth.py (WGAN-GP 10, drift 0.001, auxiliary pitch loss 10, Adam
8e-4 with b1 0 and b2 0.99 for both networks, restarts per phase, one G then one D step) on
the GANSynth subset (acoustic, MIDI 24-84, 61 pitches), scaled down: the first 4,096 samples
(0.256 s) of each note at nfft 512 (hop 128: 32 x 256 x 2 spectrograms, first block 2 x 16
as +H's, 5 resolutions), filters min(512 / 2^b, 32), latent 32, batch 16, 12,000 images per
stable and per transition phase (9 phases, 6,750 steps), and a generator EMA of 0.99 (a
100-step horizon, under a tenth of a phase, as the paper's 0.999 is about 1% of its
100,000-step phases). Variants: the representation (phase, if, if_mel).
"""

from audiozoo.config import base_config

VARIANTS = ("phase", "if", "if_mel")
PHASE_IMAGES = 12_000


def get_config(representation: str = "if_mel"):
    if representation not in VARIANTS:
        raise ValueError(f"unknown variant {representation!r}; valid: {', '.join(VARIANTS)}")
    c = base_config("gansynth")
    c.model.update(resolutions=5, start_shape=(2, 16), latent_dim=32, num_pitches=61, channels=2,
                   fmap_base=512, fmap_max=32, kernel_size=3)
    c.task.update(representation=representation, nfft=512, stable_images=PHASE_IMAGES,
                  transition_images=PHASE_IMAGES, ema_decay=0.99, num_samples=4)
    c.data.update(name="nsynth", root="", segment_length=4096, pitch_range=(24, 84),
                  sources=("acoustic",), crop="start")
    c.optim.update(name="adam", learning_rate=8e-4, b1=0.0, b2=0.99, eps=1e-8, grad_clip_norm=0.0)
    c.train.update(num_steps=9 * PHASE_IMAGES // 16, batch_size=16, log_every=50,
                   eval_every=750, num_eval_batches=4, checkpoint_every=250,
                   sample_every=0)
    # The critic's Wasserstein estimate (the logged "loss") legitimately moves by orders of
    # magnitude between phases; NaN/Inf steps still stop the run.
    c.train.max_loss_ratio = 0.0
    return c
