"""AST on Speech Commands V2, 35 words (Gong et al. 2021, Table 5: 98.1 % test accuracy,
ImageNet-pretrained).

Needs the Speech Commands v0.02 release on disk (one folder per word, _background_noise_ is
left out, testing_list.txt names the test split) and, to match the paper, the ImageNet DeiT it
starts from (section 2.2): a local copy of timm's `deit_base_distilled_patch16_384` (a
.safetensors / .npz / .pth state dict, or a Hugging Face DeiT directory such as
facebook/deit-base-distilled-patch16-384), given with --config.task.init_from_imagenet. Its 24 x
24 position grid is cut to AST's 12 x 12 (128 frames) and its RGB patch kernel summed to one
channel (audiozoo.models.imagenet_vit). Left empty, AST trains from scratch (expect less).

    audiozoo train --config configs/ast_speechcommands.py --workdir runs/ast_sc \\
        --config.data.root=/data/speech_commands_v0.02 \\
        --config.task.init_from_imagenet=/ckpt/deit_base_distilled_patch16_384.safetensors
    audiozoo evaluate --workdir runs/ast_sc

Recipe values not in the paper (1 s -> 128 frames, SpecAugment 48 / 48, mixup 0.6, lr 2.5e-4,
batch 128, 30 epochs, Speech Commands fbank statistics) follow the AST repository's recipe
(YuanGongND/ast, egs/speechcommands/run_sc.sh) and are not verified against the paper text.
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config

TRAIN_CLIPS, EPOCHS, BATCH = 95_000, 30, 128  # ~95k train+validation clips in v0.02


def get_config():
    c = base_config("classify")
    c.model.update(name="ast", num_classes=35, num_frames=128)
    c.frontend = default_frontend_config("fbank")
    c.frontend.update(num_frames=128, mean=-6.845978, std=5.5654526)
    c.task.update(label_key="label", spec_augment=True, time_masks=1, time_mask_param=48,
                  freq_masks=1, freq_mask_param=48, mixup_alpha=0.6,
                  init_from_imagenet="")  # a local DeiT checkpoint: see the docstring
    c.data.update(name="wav_folder", labels=True, eval_list="testing_list.txt",
                  segment_length=16000)
    steps_per_epoch = TRAIN_CLIPS // BATCH
    c.optim.update(name="adam", learning_rate=2.5e-4, b1=0.95, b2=0.999, grad_clip_norm=0.0)
    c.train.update(num_steps=EPOCHS * steps_per_epoch, batch_size=BATCH, log_every=50,
                   eval_every=steps_per_epoch, num_eval_batches=20, checkpoint_every=steps_per_epoch)
    return c
