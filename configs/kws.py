"""Keyword spotting on noisy, reverberant speech from unseen speakers: one recipe per family.

Twenty words in the Speech Commands layout (one folder per word, validation_list.txt and
testing_list.txt naming the held-out speakers' clips, _background_noise_/): by default the set
experiments/classifiers/make_noisy_kws.py makes here, or Speech Commands itself
(--config.data.root=/data/speech_commands_v0.02 --config.model.num_classes=35
--config.task.rir_dir='': it has no impulse responses, so synthetic rooms only). Training leaves
both lists out, whichever is data.eval_list: the validation speakers are evaluated during
training, the test speakers at the end:

    python experiments/classifiers/make_noisy_kws.py --out data/noisy_kws
    audiozoo train --config configs/kws.py:cnn --workdir runs/kws_cnn
    audiozoo evaluate --workdir runs/kws_cnn --config.data.eval_list=testing_list.txt
    audiozoo baseline --workdir runs/kws_cnn --config.data.eval_list=testing_list.txt

Variants, each sized to train in about 30 minutes on a 2-core CPU:
  cnn      ResNet-18 at a quarter of its width (16 first-stage filters) on 40-band log-mel
  sincnet  SincNet (40 sinc filters of 101 taps, two 256-unit dense layers) on the waveform
  ast      a 4-layer, 128-wide AST on 100 frames of 128-bin Kaldi fbank
  wav2vec2_classifier  a 2-layer, 64-wide wav2vec 2.0 with a classification head

Augmentation, every variant (Warden 2018, section 6; Ko et al. 2017; Park et al. 2019): clips
shifted by up to +-100 ms; 80 % of them mixed with a random crop of a _background_noise_ file
or generated white / pink / brown noise at 0-15 dB SNR; 30 % reverberated with an impulse
response from _room_impulse_responses_ (which the generated set has) or a synthetic room (RT60
0.2-0.8 s); a gain of +-6 dB; SpecAugment (two 20-frame time masks, two
frequency masks of 8 bands) on spectrogram inputs. Log-mel and fbank inputs are normalised with
statistics measured on 20 training batches when a run starts (task.stats_batches).
"""

from audiozoo.audio.frontend import default_frontend_config
from audiozoo.config import base_config

VARIANTS = ("cnn", "sincnet", "ast", "wav2vec2_classifier")
MODELS = {
    "cnn": dict(name="resnet18", num_filters=16),
    "sincnet": dict(name="sincnet", sinc_filters=40, sinc_kernel_size=101, dnn_features=(256, 256)),
    "ast": dict(name="ast", num_frames=100, hidden=128, num_layers=4, num_heads=4, mlp_dim=256),
    "wav2vec2_classifier": dict(
        name="wav2vec2_classifier", conv_dim=(64, 64, 64, 64, 64), conv_kernel=(10, 3, 3, 3, 2),
        conv_stride=(5, 2, 2, 2, 2), hidden=64, num_layers=2, num_heads=4, intermediate=128,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, classifier_proj_size=64),
}
INPUT_KIND = {"cnn": "logmel", "sincnet": "waveform", "ast": "fbank", "wav2vec2_classifier": "waveform"}
# One train step at batch 32 on the 2-core development CPU (2026-12-01): cnn 0.09 s, ast 0.41 s,
# sincnet 1.7 s, wav2vec2_classifier 1.5 s; each recipe trains for 22-28 minutes of them.
STEPS = {"cnn": 15000, "sincnet": 1000, "ast": 4000, "wav2vec2_classifier": 1100}


def get_config(variant: str = "cnn"):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    c = base_config("classify")
    c.model.update(num_classes=20, **MODELS[variant])
    kind = INPUT_KIND[variant]
    c.frontend = default_frontend_config(kind)
    if kind == "logmel":
        c.frontend.n_mels = 40
    if kind == "fbank":
        c.frontend.num_frames = 100
    c.data.update(name="wav_folder", root="data/noisy_kws", labels=True, segment_length=16000,
                  eval_list="validation_list.txt",
                  train_exclude_lists=("validation_list.txt", "testing_list.txt"))
    c.task.update(
        label_key="label", label_smoothing=0.1, time_shift=0.1,
        noise_prob=0.8, noise_dir="_background_noise_", noise_colours=("white", "pink", "brown"),
        noise_snr_db=(0.0, 15.0), rir_prob=0.3, rir_dir="_room_impulse_responses_",
        rir_rt60=(0.2, 0.8), gain_db=(-6.0, 6.0),
        spec_augment=kind != "waveform", time_masks=2, time_mask_param=20, freq_masks=2,
        freq_mask_param=8, stats_batches=20 if kind != "waveform" else 0)
    steps = STEPS[variant]
    c.optim.update(learning_rate=1e-3, schedule="cosine", warmup_steps=100)
    c.train.update(num_steps=steps, batch_size=32, log_every=50, eval_every=500,
                   num_eval_batches=7, checkpoint_every=500)
    return c
