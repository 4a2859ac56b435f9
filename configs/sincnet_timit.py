"""SincNet speaker identification on TIMIT (Ravanelli & Bengio 2018, Table 2: 0.85 %
sentence-level classification error rate, 462 speakers).

Needs TIMIT arranged one folder per speaker (data.root/SPEAKER/*.wav, 16 kHz) with a
testing list of held-out sentences (the paper trains on 5 sentences per speaker and tests on
3). The paper's sentence error comes from averaging the chunk posteriors of a whole sentence;
`audiozoo classify FILES --pooling mean_probs` does that per file (consecutive 200 ms windows,
their posteriors averaged), and `audiozoo evaluate` reports the chunk-level accuracy.

    audiozoo train --config configs/sincnet_timit.py --workdir runs/sincnet_timit \\
        --config.data.root=/data/timit_speakers --config.data.eval_list=test_sentences.txt

Settings from the paper (arXiv 1808.00158, section 3): 80 sinc filters of 251 taps, 60/60
convs of 5, max-pool 3, layer norm, LeakyReLU 0.2, 3 x 2048 dense with batch norm, RMSprop lr
1e-3, 200 ms chunks. Batch 128 and 360 epochs of 800 batches follow the reference code's
TIMIT cfg (unverified against the paper text).
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config


def get_config():
    c = base_config("classify")
    c.model.update(name="sincnet", num_classes=462)
    c.frontend = default_frontend_config("waveform")
    c.task.update(label_key="label")
    c.data.update(name="wav_folder", labels=True, segment_length=3200)  # 200 ms
    c.optim.update(name="rmsprop", learning_rate=1e-3, b2=0.95, eps=1e-8, grad_clip_norm=0.0)
    c.train.update(num_steps=360 * 800, batch_size=128, log_every=100, eval_every=800,
                   num_eval_batches=10, checkpoint_every=800)
    return c
