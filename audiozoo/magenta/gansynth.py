"""magenta's released GANSynth checkpoints (`acoustic_only`, `all_instruments`) as audiozoo
workdirs.

Engel et al. 2019, "GANSynth: Adversarial Neural Audio Synthesis" (ICLR), as magenta's
models/gansynth builds and saves it:

- A checkpoint directory holds `experiment.json` (the run's hyperparameters, written by
  gansynth_train.py; absent keys take lib/model.py `set_flags`' defaults, as
  `Model.load_from_path` does) and one `stage_NNNNN` folder per training stage; the last
  stage's newest checkpoint is the model (`load_from_path`). A finished run's last stage is
  number 2 * num_resolutions - 2, with every block grown.
- Variables (lib/networks.py, lib/layers.py, lib/network_functions.py; tfgan's `Generator` and
  `Discriminator` scopes): `custom_conv2d` keeps `<scope>/conv2d/kernel` [kh, kw, in, out]
  (drawn N(0, 1), scaled at run time by the He constant: equalised learning rate) and
  `<scope>/bias`; `custom_dense` keeps `<scope>/dense/kernel` [in, out] and `<scope>/bias`.
  Generator block 1: `conv0` (start_height x start_width, VALID, from latent + pitch one-hot)
  and `conv1`; blocks b > 1: `conv0`, `conv1` after a x2 upscale; every block its `to_rgb`.
  Discriminator: every block's `from_rgb`; blocks b > 1: `conv0`, `conv1`; block 1: `conv0`
  (after the minibatch-stddev channel), `conv1` (VALID) and `logits`; the pitch head
  `discriminator_cond/classification_logits`. Filters nf(b) = min(fmap_base / 2^b, fmap_max).
- Samples use the generator's exponential moving average (lib/model.py: decay 0.999,
  `make_var_scope_custom_getter_for_ema`): `<variable>/ExponentialMovingAverage`.
- The pitch one-hot has one entry per pitch of the training set's pitch counts
  (lib/datasets.py `NSynthTfdsDataset.get_pitch_counts`: MIDI 24-84), in sorted order.

audiozoo's `GANSynth` is that network (audiozoo.models.gansynth), so the weights map one to
one: the workdir holds the raw generator and discriminator as its parameters and the
generator's averages as the parameter EMA, which generation uses (`Task.for_inference`). Its
step is the first of the last stage, where progress is num_resolutions - 1 as magenta's
capped `compute_progress` gives for the finished run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from audiozoo.audio import specgram
from audiozoo.config import base_config
from audiozoo.magenta.checkpoint import EMA_SUFFIX, TFCheckpoint, check_variables, write_workdir
from audiozoo.models.gansynth import MAX_PITCH, MIN_PITCH
from audiozoo.tasks import build_task

EXPERIMENT_FILE = "experiment.json"
GENERATOR = "Generator/progressive_gan_generator/"
DISCRIMINATOR = "Discriminator/progressive_gan_discriminator/"
PITCH_HEAD = "Discriminator/discriminator_cond/classification_logits"
OPTIMIZER_SCOPES = ("progressive_gan_train_ops",)  # lib/train_util.py define_train_ops
CHANNELS = 2  # log-magnitude and phase (or IF)

# lib/model.py `set_flags`: the values a key missing from experiment.json takes.
DEFAULT_FLAGS = {
    "dataset_name": "nsynth_tfds", "data_type": "mel", "audio_length": 64000,
    "sample_rate": 16000, "data_normalizer": "specgrams_prespecified_normalizer",
    "mag_normalizer_a": 0.0661371661726, "mag_normalizer_b": 0.113718730221,
    "p_normalizer_a": 0.8, "p_normalizer_b": 0.0, "gradient_penalty_target": 1.0,
    "gradient_penalty_weight": 10.0, "real_score_penalty_weight": 0.001,
    "generator_ac_loss_weight": 1.0, "discriminator_ac_loss_weight": 1.0,
    "generator_learning_rate": 0.0004, "discriminator_learning_rate": 0.0004,
    "adam_beta1": 0.0, "adam_beta2": 0.99, "batch_size_schedule": [16, 8],
    "stable_stage_num_images": 32, "transition_stage_num_images": 32,
    "total_num_images": 320, "train_progressive": True, "g_fn": "specgram",
    "d_fn": "specgram", "latent_vector_size": 256, "kernel_size": 3, "start_height": 4,
    "start_width": 8, "scale_mode": "ALL", "scale_base": 2, "num_resolutions": 7,
    "simple_arch": False, "to_rgb_activation": "tanh", "fmap_base": 512, "fmap_decay": 1.0,
    "fmap_max": 128,
}
# lib/data_helpers.py registry: data_type -> the representation its helper inverts.
REPRESENTATIONS = {"mel": "if_mel", "linear": "if", "phase": "phase"}
# lib/datasets.py NSynthTfdsDataset.get_pitch_counts (the GANSynth subset's training notes):
# the generator's pitch prior, and its one-hot order.
PITCH_COUNTS = {
    24: 551, 25: 545, 26: 561, 27: 550, 28: 549, 29: 578, 30: 547, 31: 628, 32: 626, 33: 630,
    34: 670, 35: 668, 36: 751, 37: 768, 38: 788, 39: 801, 40: 821, 41: 871, 42: 873, 43: 860,
    44: 873, 45: 844, 46: 883, 47: 865, 48: 1058, 49: 1036, 50: 1094, 51: 1065, 52: 1186,
    53: 1200, 54: 1187, 55: 1346, 56: 1273, 57: 1320, 58: 1263, 59: 1283, 60: 1349, 61: 1285,
    62: 1281, 63: 1332, 64: 1286, 65: 1301, 66: 1220, 67: 1300, 68: 1209, 69: 1257, 70: 1288,
    71: 1223, 72: 1258, 73: 1183, 74: 1178, 75: 1125, 76: 1171, 77: 1089, 78: 1024, 79: 1081,
    80: 966, 81: 1043, 82: 991, 83: 959, 84: 977,
}
# What audiozoo's network and task implement; any other value is refused by name.
REQUIRED_FLAGS = {"scale_mode": "ALL", "scale_base": 2, "simple_arch": False,
                  "fmap_decay": 1.0, "to_rgb_activation": "tanh", "g_fn": "specgram",
                  "d_fn": "specgram", "dataset_name": "nsynth_tfds",
                  "data_normalizer": "specgrams_prespecified_normalizer",
                  "mag_normalizer_a": specgram.MAG_SCALE, "mag_normalizer_b": specgram.MAG_SHIFT,
                  "p_normalizer_a": specgram.PHASE_SCALE, "p_normalizer_b": 0.0}


# ---- hyperparameters ------------------------------------------------------------------------

def read_flags(ckpt_dir: str | Path) -> dict:
    """experiment.json over set_flags' defaults, checked against what audiozoo implements."""
    path = Path(ckpt_dir) / EXPERIMENT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass the unzipped checkpoint folder "
                                "(it holds experiment.json and stage_NNNNN folders)")
    try:
        flags = {**DEFAULT_FLAGS, **json.loads(path.read_text())}
    except ValueError as e:
        raise ValueError(f"{path} is not JSON: {e}") from None
    for key, value in REQUIRED_FLAGS.items():
        if not _same(flags[key], value):
            raise ValueError(f"{path}: {key}={flags[key]!r}; audiozoo's GANSynth implements "
                             f"{key}={value!r} only")
    if flags["data_type"] not in REPRESENTATIONS:
        raise ValueError(f"{path}: data_type={flags['data_type']!r}; audiozoo reads "
                         f"{', '.join(REPRESENTATIONS)}")
    return flags


def _same(a, b) -> bool:
    if isinstance(b, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def num_filters(flags: dict, block: int) -> int:
    """lib/networks.py num_filters with experiment.json's fmap_base / fmap_max."""
    return int(min(flags["fmap_base"] / 2.0 ** block, flags["fmap_max"]))


def final_shape(flags: dict) -> tuple[int, int]:
    scale = flags["scale_base"] ** (flags["num_resolutions"] - 1)
    return flags["start_height"] * scale, flags["start_width"] * scale


def gansynth_config(flags: dict):
    """The workdir's config: the network, representation and schedule of experiment.json."""
    frames, bins = final_shape(flags)
    nfft = 2 * bins  # specgrams_helper drops the DC bin: nfft / 2 bins remain
    if specgram.num_frames_for(flags["audio_length"], nfft) != frames:
        raise ValueError(f"experiment.json: audio_length={flags['audio_length']} does not give "
                         f"{frames} frames at nfft {nfft} ({frames} x {bins} images)")
    batch = int(flags["batch_size_schedule"][-1])
    c = base_config("gansynth")
    c.model.update(resolutions=flags["num_resolutions"],
                   start_shape=(flags["start_height"], flags["start_width"]),
                   latent_dim=flags["latent_vector_size"], num_pitches=len(PITCH_COUNTS),
                   channels=CHANNELS, fmap_base=flags["fmap_base"], fmap_max=flags["fmap_max"],
                   kernel_size=flags["kernel_size"])
    c.task.update(representation=REPRESENTATIONS[flags["data_type"]], nfft=nfft,
                  stable_images=flags["stable_stage_num_images"],
                  transition_images=flags["transition_stage_num_images"],
                  gp_weight=flags["gradient_penalty_weight"],
                  drift_weight=flags["real_score_penalty_weight"],
                  ac_weight=flags["generator_ac_loss_weight"])
    c.data.update(name="synthetic_nsynth", sample_rate=flags["sample_rate"],
                  segment_length=flags["audio_length"], pitch_range=(MIN_PITCH, MAX_PITCH),
                  sources=("acoustic",), crop="start")
    c.optim.update(name="adam", learning_rate=flags["generator_learning_rate"],
                   b1=flags["adam_beta1"], b2=flags["adam_beta2"], eps=1e-8, grad_clip_norm=0.0)
    c.train.update(num_steps=max(1, flags["total_num_images"] // batch), batch_size=batch,
                   ema_decay=0.999)
    return c


# ---- the checkpoint's variables -------------------------------------------------------------

def _conv(scope: str, kernel, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    return {f"{scope}/conv2d/kernel": (*kernel, cin, cout), f"{scope}/bias": (cout,)}


def _dense(scope: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    return {f"{scope}/dense/kernel": (cin, cout), f"{scope}/bias": (cout,)}


def layer_scopes(flags: dict) -> dict[tuple[str, str], str]:
    """{(network, audiozoo layer): magenta variable scope} of every layer."""
    scopes = {}
    for b in range(1, flags["num_resolutions"] + 1):
        block = f"progressive_gan_block_{b}/"
        for layer in ("conv0", "conv1", "to_rgb"):
            scopes["generator", f"block_{b}_{layer}"] = GENERATOR + block + layer
        for layer in ("conv0", "conv1", "from_rgb"):
            scopes["discriminator", f"block_{b}_{layer}"] = DISCRIMINATOR + block + layer
    scopes["discriminator", "logits"] = DISCRIMINATOR + "progressive_gan_block_1/logits"
    scopes["discriminator", "pitch_logits"] = PITCH_HEAD
    return scopes


def variable_shapes(flags: dict) -> dict[str, tuple[int, ...]]:
    """{variable name: shape} of the raw generator and discriminator (networks.py)."""
    nf, k = (lambda b: num_filters(flags, b)), (flags["kernel_size"],) * 2
    start, top = (flags["start_height"], flags["start_width"]), flags["num_resolutions"]
    pitches, g, d = len(PITCH_COUNTS), GENERATOR, DISCRIMINATOR
    block = "progressive_gan_block_{}/".format
    table = _conv(g + block(1) + "conv0", start, flags["latent_vector_size"] + pitches, nf(1))
    table |= _conv(g + block(1) + "conv1", k, nf(1), nf(1))
    for b in range(2, top + 1):
        table |= _conv(g + block(b) + "conv0", k, nf(b - 1), nf(b))
        table |= _conv(g + block(b) + "conv1", k, nf(b), nf(b))
        table |= _conv(d + block(b) + "conv0", k, nf(b), nf(b))
        table |= _conv(d + block(b) + "conv1", k, nf(b), nf(b - 1))
    for b in range(1, top + 1):
        table |= _conv(g + block(b) + "to_rgb", (1, 1), nf(b), CHANNELS)
        table |= _conv(d + block(b) + "from_rgb", (1, 1), CHANNELS, nf(b))
    table |= _conv(d + block(1) + "conv0", k, nf(1) + 1, nf(1))  # + the minibatch stddev
    table |= _conv(d + block(1) + "conv1", start, nf(1), nf(0))
    table |= _dense(d + block(1) + "logits", nf(0), 1) | _dense(PITCH_HEAD, nf(0), pitches)
    return table


def is_model_variable(name: str) -> bool:
    return name.split("/")[0] in ("Generator", "Discriminator")


def to_params(read, flags: dict, network: str) -> dict:
    """One network's audiozoo parameters from `read(variable name)`: kernels and biases as
    they are (the He scale is applied at run time by both)."""
    params = {}
    for (net, layer), scope in layer_scopes(flags).items():
        if net == network:
            kind = "dense" if layer.endswith("logits") else "conv2d"
            params[layer] = {"kernel": read(f"{scope}/{kind}/kernel"), "bias": read(f"{scope}/bias")}
    return params


# ---- the import -----------------------------------------------------------------------------

def last_stage(ckpt_dir: Path, flags: dict) -> Path:
    """The final stage's folder (a finished run: every block grown)."""
    stages = sorted(p for p in ckpt_dir.glob("stage_*") if p.is_dir())
    final = 2 * flags["num_resolutions"] - 2
    if not stages:
        raise FileNotFoundError(f"{ckpt_dir} has no stage_NNNNN folders holding checkpoints")
    if stages[-1].name != f"stage_{final:05d}":
        raise ValueError(f"{ckpt_dir}: the last stage is {stages[-1].name}, but a finished run "
                         f"of {flags['num_resolutions']} resolutions ends at stage_{final:05d}; "
                         "audiozoo imports finished runs (every block grown)")
    return stages[-1]


def final_step(config) -> int:
    """The first step of the last stage, where progress is resolutions - 1."""
    task, blocks = config.task, config.model.resolutions
    images = (blocks - 1) * (task.stable_images + task.transition_images)
    return -(-images // config.train.batch_size)


def import_gansynth(ckpt_dir: str | Path, workdir: str | Path) -> Path:
    """Reads a GANSynth checkpoint folder as magenta releases it (acoustic_only/,
    all_instruments/: experiment.json and stage_NNNNN/), checks its variables, and writes a
    workdir that `audiozoo generate --pitch`, `interpolate --pitch` and `audiozoo.load` use."""
    ckpt_dir = Path(ckpt_dir)
    flags = read_flags(ckpt_dir)
    ckpt = TFCheckpoint(last_stage(ckpt_dir, flags))
    raw = variable_shapes(flags)
    averaged = {name + f"/{EMA_SUFFIX}": shape for name, shape in raw.items()
                if name.startswith("Generator/")}
    left = check_variables(ckpt, raw | averaged, is_model_variable, OPTIMIZER_SCOPES)
    params = {net: to_params(ckpt.read, flags, net) for net in ("generator", "discriminator")}
    ema = to_params(lambda name: ckpt.read(f"{name}/{EMA_SUFFIX}"), flags, "generator")
    config = gansynth_config(flags)
    task = build_task(config)
    task.pitch_counts = np.array([PITCH_COUNTS[p] for p in sorted(PITCH_COUNTS)], np.float64)
    note = {"source": ckpt.prefix, "model": "magenta gansynth", "weights":
            "raw generator and discriminator; generator EMA (used for generation)",
            "global_step": ckpt.global_step, "training_variables_not_imported": len(left)}
    return write_workdir(workdir, task, params, ema=ema, step=final_step(config), note=note)
