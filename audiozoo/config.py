"""Experiment configs: `get_config()` files and `--config.path.to.field=value` overrides.

A config file is a Python file with a `get_config()` returning an `ml_collections.ConfigDict`
(the flax examples / big_vision convention). Overrides keep the field's type: a string on the
command line is parsed as a Python literal and then cast to the type the config already has.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
from pathlib import Path
from typing import Iterable

import ml_collections

OVERRIDE_PREFIX = "--config."


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which and why."""


def load_config(path: str | Path) -> ml_collections.ConfigDict:
    """Loads `FILE.py` (get_config()) or `FILE.py:ARG` (get_config(ARG), for config files
    that hold several variants, big_vision style)."""
    path, arg = _split_config_arg(str(path))
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (see configs/ for the shipped ones)")
    spec = importlib.util.spec_from_file_location(f"audiozoo_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path} defines no get_config()")
    if arg is not None and not inspect.signature(module.get_config).parameters:
        raise ConfigError(f"config file {path} has no variants (its get_config() takes no "
                          f"argument): drop ':{arg}'")
    config = module.get_config() if arg is None else module.get_config(arg)
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return config


def _split_config_arg(text: str) -> tuple[Path, str | None]:
    if ":" in text and text.rsplit(":", 1)[0].endswith(".py"):
        path, arg = text.rsplit(":", 1)
        return Path(path), arg
    return Path(text), None


def split_overrides(argv: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Separates `--config.a.b=v` (or `--config.a.b v`) from the other arguments."""
    rest, overrides = [], []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith(OVERRIDE_PREFIX):
            key = arg[len(OVERRIDE_PREFIX):]
            if "=" in key:
                key, value = key.split("=", 1)
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise ConfigError(f"override {arg} has no value: write {arg}=VALUE")
            overrides.append((key, value))
        else:
            rest.append(arg)
        i += 1
    return rest, overrides


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[tuple[str, str]],
                    settable: dict[str, dict] | None = None):
    """Sets each dotted key to its parsed value; unknown keys raise a ConfigError listing the
    valid ones at that level. `settable` {section: {field: default}} names fields a section
    may take though the config does not list them (a model's other constructor fields),
    each parsed against its default."""
    settable = settable or {}
    for key, text in overrides:
        parent, leaf = _resolve_parent(config, key, settable)
        current = parent[leaf] if leaf in parent else settable[key.split(".")[0]][leaf]
        value = _parse_value(text, current, key)
        try:
            parent[leaf] = value
        except TypeError as e:
            raise ConfigError(f"--config.{key}={text}: {e}") from None
    return config


def _resolve_parent(config, key: str, settable: dict[str, dict]):
    parts = key.split(".")
    if len(parts) == 2 and parts[1] in settable.get(parts[0], {}) and parts[0] in config:
        return config[parts[0]], parts[1]
    node = config
    for depth, part in enumerate(parts):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            where = ".".join(parts[:depth]) or "the top level"
            valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            if depth == 1:
                valid = sorted(set(valid) | set(settable.get(parts[0], {})))
            raise ConfigError(
                f"config key {key!r} does not exist: no {part!r} in {where}; valid keys there: "
                f"{', '.join(valid) or '(none: it is a value, not a section)'}"
            )
        if depth == len(parts) - 1:
            return node, part
        node = node[part]
    raise AssertionError("unreachable")


def _parse_value(text: str, current, key: str):
    if isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if isinstance(current, (int, float, bool, tuple, list)):
            raise ConfigError(
                f"--config.{key}={text}: expected a value of type {type(current).__name__}, like {current!r}"
            ) from None
        return text
    if isinstance(current, bool) and not isinstance(value, bool):
        raise ConfigError(f"--config.{key}={text}: expected True or False")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def to_json(config: ml_collections.ConfigDict) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, default=list)


def from_json(text: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(text))


# Default `task` section of each task (see audiozoo.tasks).
TASK_DEFAULTS = {
    "wavenet": {"global_cond": "", "input_noise": 0.0, "num_samples": 2, "sample_seconds": 0.5},
    # vocoder: the samples are copy synthesis of the first eval clips (sample_seconds each).
    "vocoder": {"global_cond": "", "input_noise": 0.0, "num_samples": 2, "sample_seconds": 0.5},
    # label_key "": the data's own label ("label" for wav_folder/csv, "family" for the
    # synthetic notes); time_shift: max random shift of each training clip, in seconds.
    # Waveform augmentation (audiozoo.audio.wave_augment), off unless a probability is > 0:
    # noise_prob of the clips get noise from noise_dir's files or generated noise_colours
    # ("white", "pink", "brown") at an SNR uniform in noise_snr_db; rir_prob of them are
    # reverberated with rir_dir's impulse responses or synthetic rooms (RT60 uniform in
    # rir_rt60 seconds, direct-to-reverberant ratio in rir_drr_db; rir_rt60=() for none);
    # gain_db: a gain range in dB. A relative noise_dir / rir_dir lies under data.root.
    # stats_batches > 0: frontend.mean/std measured on that many training batches when a
    # run starts (saved as WORKDIR/feature_stats.json, reused on resume).
    "classify": {"label_key": "", "multi_label": False, "label_smoothing": 0.0,
                 "mixup_alpha": 0.0, "spec_augment": False, "time_masks": 2,
                 "time_mask_param": 40, "freq_masks": 2, "freq_mask_param": 15,
                 "time_shift": 0.0, "init_from_hf": "", "init_from_imagenet": "",
                 "noise_prob": 0.0, "noise_dir": "", "noise_colours": (),
                 "noise_snr_db": (0.0, 15.0), "rir_prob": 0.0, "rir_dir": "",
                 "rir_rt60": (0.2, 0.8), "rir_drr_db": (0.0, 10.0), "gain_db": (0.0, 0.0),
                 "stats_batches": 0},
    # lower_workdir: a trained discrete autoencoder whose codes this level models (stacking).
    # mu_law: "round" (audiozoo's) or "magenta" (floor(128 f(x)), as magenta's NSynth reads
    # audio); partial_frame: a clip's last partial hop is zero-"pad"ded or, as magenta's
    # fastgen.encode does, "trim"med before encoding.
    "autoencoder": {"lower_workdir": "", "num_samples": 2, "mu_law": "round", "partial_frame": "pad"},
    # prior: a WaveNet over the codes of the trained discrete autoencoder in lower_workdir
    # (the top of a stack); samples: sample_seconds of audio generated from nothing.
    "prior": {"lower_workdir": "", "global_cond": "", "input_noise": 0.0, "num_samples": 2,
              "sample_seconds": 1.0},
    # GANSynth (magenta configs/mel_prog_hires.py): images = notes seen; weights of the losses.
    "gansynth": {"representation": "if_mel", "nfft": 2048, "pitch_key": "pitch",
                 "stable_images": 800_000, "transition_images": 800_000, "gp_weight": 10.0,
                 "drift_weight": 0.001, "ac_weight": 10.0, "num_samples": 2},
}


def base_config(task: str = "wavenet") -> ml_collections.ConfigDict:
    """The sections every runnable config has, with `task`'s default task section; config
    files fill in `model` and adjust."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    model = {"wavenet": "wavenet", "vocoder": "wavenet", "prior": "wavenet",
             "autoencoder": "wavenet_autoencoder", "gansynth": "gansynth"}.get(task, "")
    # dtype: the computation dtype ("float32" or "bfloat16"); parameters stay float32.
    c.model = ml_collections.ConfigDict({"name": model, "dtype": "float32"})
    c.task = ml_collections.ConfigDict({"name": task, **TASK_DEFAULTS.get(task, {})})
    c.data = ml_collections.ConfigDict({
        "name": "synthetic", "sample_rate": 16000, "segment_length": 4096, "seed": 0,
        # synthetic and nsynth notes: a shorter segment at a "random" offset or the "start"
        "crop": "random",
        # synthetic
        "num_train": 4096, "num_eval": 256, "pitch_range": (36, 84),
        "families": ("sine", "square", "saw", "pluck", "bell"),
        # wav_folder (and csv)
        "root": "", "eval_root": "", "eval_fraction": 0.1, "eval_list": "", "labels": False,
        "skip_bad": False, "resample": True,
        # the files a folder is searched for (any format libsndfile reads: ".mp3", ".ogg", ...)
        "extensions": (".wav", ".flac"),
        # file lists (relative to root) whose files are kept out of the train split
        "train_exclude_lists": (),
        # Where a file shorter than the segment sits; classifiers must not learn that sounds
        # start at sample 0, so they place short clips at random.
        "pad_mode": "random" if task == "classify" else "end",
        # csv (ESC-50 layout)
        "csv_path": "meta/esc50.csv", "audio_dir": "audio", "file_column": "filename",
        "label_column": "category", "fold_column": "fold", "eval_folds": (5,),
        "multi_label": False, "label_separator": ";",
    })
    c.optim = ml_collections.ConfigDict({
        "name": "adam", "learning_rate": 1e-3, "schedule": "constant", "warmup_steps": 0,
        "decay_boundaries": (), "decay_factor": 0.5, "b1": 0.9, "b2": 0.999, "eps": 1e-8,
        "weight_decay": 0.0, "momentum": 0.0, "grad_clip_norm": 1.0,
        # schedule "piecewise": learning_rate from step 0, lr_values[i] from lr_boundaries[i] on.
        "lr_boundaries": (), "lr_values": (),
    })
    c.train = ml_collections.ConfigDict({
        "num_steps": 1000, "batch_size": 8, "log_every": 50, "eval_every": 500,
        "num_eval_batches": 4, "checkpoint_every": 500, "keep_checkpoints": 3,
        "sample_every": 0,  # 0: samples only at the end of training
        # Stop when a step's loss exceeds this many times the running median (0: never).
        "max_loss_ratio": 100.0,
        # TensorBoard event files in WORKDIR/tensorboard beside metrics.jsonl (False: none).
        "tensorboard": True,
        # Exponential moving average of the parameters, used for evaluation, samples and
        # inference (0: none); ema_warmup: decay min(d, (1 + step) / (10 + step)) as TF's
        # EMA with num_updates. GANSynth averages its generator with 0.999 (magenta).
        "ema_decay": 0.999 if task == "gansynth" else 0.0, "ema_warmup": False,
    })
    return c
