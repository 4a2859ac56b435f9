"""AST fine-tuned on ESC-50 (Gong et al. 2021, Table 4: 95.6 % accuracy, AudioSet-pretrained,
5-fold cross-validation).

Needs the ESC-50 release on disk (meta/esc50.csv + audio/, 44.1 kHz, resampled to 16 kHz on
read) and, to match the paper, an AudioSet-pretrained AST checkpoint in Hugging Face layout
(config.json + model.safetensors, e.g. a local copy of MIT/ast-finetuned-audioset-10-10-0.4593).
One fold per run; the paper's number is the mean over eval folds 1..5:

    audiozoo train --config configs/ast_esc50.py --workdir runs/ast_esc50_f5 \\
        --config.data.root=/data/ESC-50 --config.task.init_from_hf=/ckpt/ast-audioset \\
        --config.data.eval_folds="(5,)"
    audiozoo evaluate --workdir runs/ast_esc50_f5

The paper's ImageNet-only variant (AST-S in Table 4) starts from the ImageNet DeiT instead
(section 2.2; timm's `deit_base_distilled_patch16_384`, see configs/ast_speechcommands.py) with
the recipe's lr 1e-4 and position embeddings for the 512-frame clips (12 x 50, stretched from
DeiT's 24 x 24):

    audiozoo train --config configs/ast_esc50.py --workdir runs/ast_esc50_imagenet_f5 \\
        --config.data.root=/data/ESC-50 --config.data.eval_folds="(5,)" \\
        --config.task.init_from_imagenet=/ckpt/deit_base_distilled_patch16_384.safetensors \\
        --config.model.num_frames=512 --config.optim.learning_rate=1e-4

Recipe values not in the paper (5 s clips -> 512 frames, SpecAugment 24 freq / 96 time,
lr 1e-5, batch 48, 25 epochs, ESC-50 fbank statistics) follow the AST repository's ESC-50
recipe (YuanGongND/ast, egs/esc50/run_esc.sh) and are not verified against the paper text.
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config

CLIPS, EVAL_FOLD_CLIPS, EPOCHS, BATCH = 2000, 400, 25, 48


def get_config():
    c = base_config("classify")
    # Position embeddings stay at the AudioSet checkpoint's 1024 frames; 512-frame inputs use
    # the time-interpolated ones.
    c.model.update(name="ast", num_classes=50, num_frames=1024)
    c.frontend = default_frontend_config("fbank")
    c.frontend.update(num_frames=512, mean=-6.6268077, std=5.358466)
    c.task.update(label_key="label", spec_augment=True, time_masks=1, time_mask_param=96,
                  freq_masks=1, freq_mask_param=24,
                  init_from_imagenet="")  # the ImageNet-only variant: see the docstring
    c.data.update(name="csv", segment_length=5 * 16000, eval_folds=(5,))
    steps_per_epoch = (CLIPS - EVAL_FOLD_CLIPS) // BATCH
    c.optim.update(name="adam", learning_rate=1e-5, b1=0.95, b2=0.999, grad_clip_norm=0.0)
    c.train.update(num_steps=EPOCHS * steps_per_epoch, batch_size=BATCH, log_every=20,
                   eval_every=steps_per_epoch, num_eval_batches=EVAL_FOLD_CLIPS // BATCH,
                   checkpoint_every=steps_per_epoch)
    return c
