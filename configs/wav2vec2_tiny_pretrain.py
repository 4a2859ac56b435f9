"""Tiny wav2vec 2.0 pretraining on the built-in synthetic notes: trains on one CPU in under a
minute (300 steps in 22 s on a 2-core machine).

The BASE feature encoder's kernels and strides (one frame per 20 ms: 1 s crops -> 49 frames)
with 32 channels, a 2-layer, 64-wide post-LN Transformer (positional conv kernel 32, 4 groups)
and a 2 x 16-entry quantiser. Masking (p = 0.065, M = 10, i.e.
mask_time_prob = p * M = 0.65 in HF's terms, at least 2 spans), distractor
sampling, the losses (kappa = 0.1, alpha = 0.1) and the temperature range (2 -> 0.5) are the
paper's (Baevski et al. 2020, sections 3-4). Changed for a short CPU run: the temperature
anneals by 0.98 per update instead of 0.999995 (the contrastive loss only leaves chance level
once codes stop being Gumbel noise), and 20 distractors stand in for 100 because a 1 s crop has
only ~20 masked frames to draw them from. No paper table; the smoke test of the pretraining
stack: the contrastive loss falls from ln(21) = 3.04 (chance) to about 2.4 in 300 steps
(eval accuracy ~0.3 against 1 / 21 by chance).

    audiozoo train --config configs/wav2vec2_tiny_pretrain.py --workdir runs/w2v_tiny
"""

import ml_collections

from audiozoo.config import base_config


def get_config():
    c = base_config()
    c.model = ml_collections.ConfigDict(dict(
        name="wav2vec2", dtype="float32",
        conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=False, feat_extract_norm="group",
        hidden=64, num_layers=2, num_heads=4, intermediate=128,
        num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=4, do_stable_layer_norm=False,
        hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, feat_proj_dropout=0.1,
        layerdrop=0.0, mask_time_prob=0.65, mask_time_length=10, mask_time_min_masks=2,
        feature_grad_mult=1.0,
    ))
    c.task = ml_collections.ConfigDict(dict(
        name="wav2vec2_pretrain",
        num_codevector_groups=2, num_codevectors_per_group=16, codevector_dim=64,
        proj_codevector_dim=64, feat_quantizer_dropout=0.1,
        num_negatives=20, contrastive_logits_temperature=0.1, diversity_loss_weight=0.1,
        feature_penalty_weight=0.0,
        max_gumbel_temperature=2.0, min_gumbel_temperature=0.5, gumbel_temperature_decay=0.98,
    ))
    c.data.segment_length = 16000
    c.data.num_train = 512
    c.optim.learning_rate = 5e-3
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 20
    c.train.num_steps = 300
    c.train.batch_size = 8
    c.train.log_every = 20
    c.train.eval_every = 100
    c.train.checkpoint_every = 100
    return c
