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

import os

from audiozoo.config import load_config

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                    "gansynth_tiny.py")
PHASE_IMAGES = 12_000


def get_config(representation: str = "if_mel"):
    """configs/gansynth_tiny.py (same networks, optimiser, EMA and loss guard) on an
    NSynth-format release, MIDI 24-84, with 12,000-image phases."""
    c = load_config(f"{TINY}:{representation}")
    c.data.update(name="nsynth", root="", pitch_range=(24, 84))
    c.task.update(stable_images=PHASE_IMAGES, transition_images=PHASE_IMAGES)
    c.train.update(num_steps=9 * PHASE_IMAGES // 16, eval_every=750, num_eval_batches=4)
    return c
