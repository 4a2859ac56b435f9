"""wav2vec 2.0 BASE pretraining on a folder of 16 kHz speech (LibriSpeech-style), after
Baevski et al. 2020 (arXiv 2006.11477), section 4.2.

    audiozoo train --config configs/wav2vec2_base_pretrain.py --workdir runs/w2v_base \\
        --config.data.root=/data/LibriSpeech/train-960

Which numbers come from where:
- The paper (sections 2, 3 and 4.2): BASE 12 x 768, FFN 3072, group-norm feature encoder
  (12 attention heads, as in fairseq's and Hugging Face's released BASE checkpoints; the
  paper's text gives 8, unverified here); quantiser G = 2 x V = 320; Gumbel temperature
  2 -> 0.5 by 0.999995 per update; K = 100 distractors; kappa = 0.1; diversity weight
  alpha = 0.1; masking p = 0.065, M = 10, which is mask_time_prob = p * M = 0.65 in HF's /
  fairseq's terms (they count spans as mask_prob * frames / M): about 49% of the frames
  masked, as the paper reports.
- The paper's section 4.2 (unverified here): crops of 250k samples (15.6 s); 400k updates;
  Adam with the learning rate warmed up over the first 8% of updates (32k) to 5e-4 and then
  decayed linearly; dropout 0.1 in the Transformer, after the feature encoder and before the
  quantiser; LayerDrop 0.05; codevectors of d / G = 128 (codevector_dim 256); feature-encoder
  gradients scaled by 0.1 with an L2 penalty on its output.
- fairseq's wav2vec2_base_librispeech config (unverified here): feature-penalty weight 10,
  Adam betas (0.9, 0.98), eps 1e-6, weight decay 0.01, no dropout inside the FFN, at least
  2 masked spans.
- Ours: the paper batches ~1.4M samples per GPU on 64 V100s (1.6 h of
  audio per update); 384 crops of 250k samples (1.67 h) is the nearest batch that splits
  evenly over 64 devices. Files shorter than a crop are zero-padded (fairseq crops batches to
  the shortest file instead).

Paper results (fine-tuned, not reproducible with this pretraining alone): LibriSpeech
test-clean / test-other WER 1.8 / 3.3 for LARGE pretrained on LV-60k with all 960 h of labels,
4.8 / 8.2 with 10 minutes of labels.
"""

import ml_collections

from audiozoo.config import base_config


def get_config():
    c = base_config()
    c.model = ml_collections.ConfigDict(dict(
        name="wav2vec2", dtype="float32",
        conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=False, feat_extract_norm="group",
        hidden=768, num_layers=12, num_heads=12, intermediate=3072,
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, do_stable_layer_norm=False,
        hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, feat_proj_dropout=0.1,
        layerdrop=0.05, mask_time_prob=0.65, mask_time_length=10, mask_time_min_masks=2,
        feature_grad_mult=0.1,
    ))
    c.task = ml_collections.ConfigDict(dict(
        name="wav2vec2_pretrain",
        num_codevector_groups=2, num_codevectors_per_group=320, codevector_dim=256,
        proj_codevector_dim=256, feat_quantizer_dropout=0.1,
        num_negatives=100, contrastive_logits_temperature=0.1, diversity_loss_weight=0.1,
        feature_penalty_weight=10.0,
        max_gumbel_temperature=2.0, min_gumbel_temperature=0.5, gumbel_temperature_decay=0.999995,
    ))
    c.data.name = "wav_folder"
    c.data.sample_rate = 16000
    c.data.segment_length = 250_000
    c.data.eval_fraction = 0.01
    c.optim.update(dict(name="adamw", learning_rate=5e-4, schedule="linear", warmup_steps=32_000,
                        b1=0.9, b2=0.98, eps=1e-6, weight_decay=0.01))
    c.train.update(dict(num_steps=400_000, batch_size=384, log_every=100, eval_every=10_000,
                        num_eval_batches=8, checkpoint_every=5_000))
    return c
