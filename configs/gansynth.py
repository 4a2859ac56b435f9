"""GANSynth at paper scale: the six variants of Table 1 (Engel et al. 2019, ICLR).

    audiozoo train --config configs/gansynth.py:if_mel_h --workdir runs/gansynth_if_mel_h \
        --config.data.name=nsynth --config.data.root=/data/nsynth

Variants: phase, if, if_mel (nfft 1024 -> 256 x 512 x 2, first block 4 x 8) and phase_h, if_h,
if_mel_h ("+H": nfft 2048 -> 128 x 1024 x 2, first block 2 x 16), each with 7 resolutions,
filters min(4096 / 2^b, 256), batch 8, 800k images per stable and per transition phase (13
phases, about 10.4M images), Adam 8e-4 (b1 0, b2 0.99) for both networks, WGAN-GP 10, drift
0.001, auxiliary pitch loss 10, generator EMA 0.999 (magenta configs/mel_prog_hires.py and
lib/model.py). The paper's best model is IF-Mel + H. Data: NSynth's acoustic notes, MIDI
24-84; the synthetic NSynth-like notes are the default so the config runs anywhere.
"""

from audiozoo.config import base_config

VARIANTS = ("phase", "if", "if_mel", "phase_h", "if_h", "if_mel_h")


def get_config(variant: str = "if_mel_h"):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    high_freq = variant.endswith("_h")
    c = base_config("gansynth")
    c.model.update(resolutions=7, start_shape=(2, 16) if high_freq else (4, 8), latent_dim=256,
                   num_pitches=61, channels=2, fmap_base=4096, fmap_max=256, kernel_size=3)
    c.task.update(representation=variant.removesuffix("_h"), nfft=2048 if high_freq else 1024)
    c.data.update(name="synthetic_nsynth", segment_length=64000, pitch_range=(24, 84),
                  sources=("acoustic",), crop="start", num_train=4096, num_eval=256)
    c.optim.update(name="adam", learning_rate=8e-4, b1=0.0, b2=0.99, eps=1e-8, grad_clip_norm=0.0)
    steps = 13 * 800_000 // 8
    c.train.update(num_steps=steps, batch_size=8, log_every=500, eval_every=20_000,
                   num_eval_batches=4, checkpoint_every=10_000, sample_every=100_000)
    return c
