"""Every classifier on the built-in synthetic notes: which timbre family is playing?

Five classes (sine, square, saw, pluck, bell), 0.5 s crops at 16 kHz, random pitch and
velocity, so the model must hear timbre, not pitch. Chance is 20 %. The standard
architectures run unchanged (only the class count differs); the transformers and SincNet
are shrunk so that a run fits on one CPU. One variant per model:

    audiozoo train --config configs/classify_tiny.py:resnet18 --workdir runs/cls_resnet18
    audiozoo evaluate --workdir runs/cls_resnet18
    audiozoo classify some.wav --workdir runs/cls_resnet18

Variants: alexnet, vgg11, vgg16, inception_v1, resnet18, resnet50, densenet121,
squeezenet1_1, cnn14, sincnet, ast, wav2vec2_classifier.
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config

VARIANTS = ("alexnet", "vgg11", "vgg16", "inception_v1", "resnet18", "resnet50", "densenet121",
            "squeezenet1_1", "cnn14", "sincnet", "ast", "wav2vec2_classifier")
SEGMENT = 8000  # 0.5 s at 16 kHz

# Small versions of the models whose standard sizes would not train on a CPU in minutes.
SHRUNK = {
    "sincnet": dict(sinc_filters=40, dnn_features=(256, 256)),
    "ast": dict(num_frames=48, hidden=96, num_layers=2, num_heads=4, mlp_dim=192),
    "wav2vec2_classifier": dict(
        conv_dim=(64, 64, 64, 64, 64), conv_kernel=(10, 3, 3, 3, 2), conv_stride=(5, 2, 2, 2, 2),
        hidden=64, num_layers=2, num_heads=4, intermediate=128, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, classifier_proj_size=64),
}
INPUT_KIND = {"sincnet": "waveform", "ast": "fbank", "wav2vec2_classifier": "waveform"}
# VGG has no batch norm and needs a smaller step than the rest (1e-3 stalls near chance).
LEARNING_RATE = {"vgg11": 1e-4, "vgg16": 1e-4}
# Feature statistics of the synthetic notes, measured with
#   audiozoo stats --config configs/classify_tiny.py:resnet18 --out stats.json   (and :ast)
STATS = {"logmel": (-54.756447, 36.263888), "fbank": (-9.677313, 6.620284)}


def get_config(model: str = "resnet18"):
    if model not in VARIANTS:
        raise ValueError(f"unknown variant {model!r}; valid: {', '.join(VARIANTS)}")
    c = base_config("classify")
    c.model.update(name=model, num_classes=5, **SHRUNK.get(model, {}))
    kind = INPUT_KIND.get(model, "logmel")
    c.frontend = default_frontend_config(kind)
    if kind in STATS:
        c.frontend.mean, c.frontend.std = STATS[kind]
    c.task.update(spec_augment=True, time_masks=1, time_mask_param=8, freq_masks=1,
                  freq_mask_param=8)
    c.data.segment_length = SEGMENT
    c.data.num_train = 2000
    c.data.num_eval = 200
    c.optim.update(learning_rate=LEARNING_RATE.get(model, 1e-3), schedule="cosine", warmup_steps=20)
    c.train.update(num_steps=300, batch_size=16, log_every=25, eval_every=100,
                   num_eval_batches=8, checkpoint_every=100)
    return c
