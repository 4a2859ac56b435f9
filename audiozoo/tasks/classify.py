"""Objective adapter for audio classification: any classifier in the registry, any front end.

The task runs the front end (waveform, log-mel or Kaldi fbank, `audiozoo.audio.frontend`) inside
the jitted step, so features never leave the device; in training it applies SpecAugment
(Park et al. 2019) to spectrogram inputs and mixup (Zhang et al. 2018) when configured.
Single-label data is trained with softmax cross-entropy (optional label smoothing), multi-label
data (multi-hot labels, e.g. AudioSet-style tables) with per-class sigmoid cross-entropy.
Batch-norm statistics are the explicit `batch_stats` collection in `TrainState.extra`; since
the step is one jit over the global batch, they are computed over all devices.

The label set (class names in id order, the label key, single/multi-label) is part of the
trained model: the task checks it against the training data before the first step and has the
trainer write it to WORKDIR/labels.json, where `evaluate` and `classify` read it.

Training clips can be corrupted before the front end (`audiozoo.audio.wave_augment`): time
shift, room reverberation, background noise at a random SNR and gain, each on when its task.*
field says so. Noise and impulse-response folders are read once, when training starts. With
task.stats_batches > 0 the front end's mean / std are measured on the training data when a run
starts (what `audiozoo stats` prints), kept in WORKDIR/feature_stats.json for resumed runs and
written into the run's config.json, so inference normalises alike.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from audiozoo.audio.augment import mixup, spec_augment
from audiozoo.audio.frontend import Frontend
from audiozoo.audio.stats import FeatureStats
from audiozoo.audio.wave_augment import NOISE_COLOURS, WaveAugment, noise_bank, rir_bank
from audiozoo.config import ConfigError
from audiozoo.data import BatchLoader, class_names, label_names
from audiozoo.data.clip_bank import read_clips
from audiozoo.models import MODELS, build_model
from audiozoo.tasks.base import SupervisedTask, float32

LABELS_FILE = "labels.json"
STATS_FILE = "feature_stats.json"
# Longest noise file and impulse response kept (Speech Commands' background files are ~60 s;
# a room's tail is ~60 dB down well within 2 s) and the most augmentation audio held in
# memory: the banks are compiled into the train step.
NOISE_MAX_SECONDS, RIR_MAX_SECONDS, BANK_MAX_BYTES = 60.0, 2.0, 256 * 2**20
# The example key holding each dataset's class label when task.label_key is "".
DEFAULT_LABEL_KEYS = {"synthetic": "family", "synthetic_nsynth": "instrument_family",
                      "nsynth": "instrument_family"}


def resolve_label_key(config) -> str:
    """task.label_key, or when it is empty the data's own label key ("label" for wav_folder
    and csv data, "family" for the synthetic notes)."""
    key = config.task.get("label_key", "")
    return key or DEFAULT_LABEL_KEYS.get(config.data.name, "label")


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """What a classifier's outputs mean: class names in id order."""

    classes: tuple[str, ...]
    label_key: str
    multi_label: bool

    def to_json(self) -> str:
        return json.dumps({"classes": list(self.classes), "label_key": self.label_key,
                           "multi_label": self.multi_label}, indent=1) + "\n"

    @classmethod
    def read(cls, path: Path) -> LabelSet:
        try:
            data = json.loads(path.read_text())
            return cls(tuple(data["classes"]), data["label_key"], bool(data["multi_label"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path} is not a label set written by `audiozoo train` "
                              f"(needs classes, label_key, multi_label): {e!r}") from None


def load_label_set(workdir, config, num_classes: int) -> LabelSet:
    """The label set a workdir's model was trained with (WORKDIR/labels.json). Workdirs made
    before labels.json existed fall back, with a warning, to the class names the config's data
    gives now."""
    path = Path(workdir) / LABELS_FILE
    if path.exists():
        labels = LabelSet.read(path)
    else:
        key = resolve_label_key(config)
        warnings.warn(f"{path} does not exist (the run predates saved label sets): class names "
                      f"are rebuilt from config.data as it is now, which is right only if its "
                      f"classes have not changed since training", stacklevel=2)
        names = class_names(config.data, key)
        # Folder and table classes were numbered in alphabetical order then.
        names = (sorted(names) if key == "label" else names) if names else None
        names = names or [str(i) for i in range(num_classes)]
        labels = LabelSet(tuple(names), key, bool(config.task.multi_label))
    if len(labels.classes) != num_classes:
        raise ConfigError(f"{path} names {len(labels.classes)} classes but the model in {workdir} "
                          f"has {num_classes} outputs; the workdir is inconsistent")
    return labels


def hf_loader(model_name: str):
    """The `from_hf` of the module that defines `model_name` (AST, wav2vec 2.0)."""
    module = importlib.import_module(f"audiozoo.models.{MODELS[model_name].split(':')[0]}")
    if not hasattr(module, "from_hf"):
        raise ConfigError(f"task.init_from_hf is set but model {model_name} has no Hugging Face import")
    return module.from_hf


def graft(params, loaded) -> tuple[dict, int]:
    """(params with matching leaves replaced by `loaded`'s, how many were replaced). A path
    matches as it is or with its first component dropped, so a bare backbone checkpoint fits
    a model that wraps the backbone in a submodule."""
    flat = traverse_util.flatten_dict(params)
    source = traverse_util.flatten_dict(loaded)
    taken = 0
    for key, value in flat.items():
        for candidate in (key, key[1:]):
            if candidate in source and source[candidate].shape == value.shape:
                flat[key] = jnp.asarray(source[candidate], value.dtype)
                taken += 1
                break
    return traverse_util.unflatten_dict(flat), taken


class ClassifyTask(SupervisedTask):
    verbs = ("evaluate", "classify")

    def __init__(self, config):
        super().__init__(config)
        self.model = build_model(config.model)
        self.frontend = Frontend.from_config(config.frontend)
        self.label_key = resolve_label_key(config)
        self.multi_label = bool(config.task.multi_label)
        self.max_shift = int(round(self.config.task.time_shift * config.data.sample_rate))
        self.stats: FeatureStats | None = None  # measured when training starts (stats_batches)
        self._check_config()

    def _check_config(self):
        kind = type(self.model).input_kind
        if self.frontend.kind != kind:
            raise ConfigError(f"model {self.config.model.name} reads {kind!r} input but "
                              f"frontend.kind={self.frontend.kind!r}; set --config.frontend.kind={kind}")
        if self.frontend.sample_rate != self.config.data.sample_rate:
            raise ConfigError(f"frontend.sample_rate={self.frontend.sample_rate} differs from "
                              f"data.sample_rate={self.config.data.sample_rate}; make them equal")

        if self.max_shift < 0:
            raise ConfigError(f"task.time_shift={self.config.task.time_shift} must be >= 0 seconds")
        self._check_augment_config()
        batches = self.config.task.stats_batches
        if not isinstance(batches, int) or batches < 0:
            raise ConfigError(f"task.stats_batches={batches!r} must be an integer >= 0 (0: use "
                              f"frontend.mean/std as given)")
        if batches and self.frontend.kind == "waveform":
            raise ConfigError("task.stats_batches > 0 but a 'waveform' front end takes no mean/std; "
                              "set --config.task.stats_batches=0")

    def _check_augment_config(self):
        """ConfigError naming the first waveform-augmentation field no run can use."""
        for key in ("noise_prob", "rir_prob"):
            if not 0.0 <= self.config.task[key] <= 1.0:
                raise ConfigError(f"task.{key}={self.config.task[key]!r} must be a probability in "
                                  f"[0, 1] (0 turns it off); set --config.task.{key}")
        rt60 = tuple(self.config.task.rir_rt60)
        for key in ("noise_snr_db", "rir_drr_db", "gain_db") + (("rir_rt60",) if rt60 else ()):
            value = tuple(self.config.task[key])
            if len(value) != 2 or value[0] > value[1]:
                raise ConfigError(f"task.{key}={value!r} must be a range (low, high) with low <= "
                                  f"high; set --config.task.{key}")
        if rt60 and rt60[0] <= 0:
            raise ConfigError(f"task.rir_rt60={rt60!r}: reverberation times must be > 0 seconds "
                              "(rir_rt60=() turns synthetic rooms off)")
        unknown = sorted(set(self.config.task.noise_colours) - set(NOISE_COLOURS))
        if unknown:
            raise ConfigError(f"task.noise_colours has unknown colours {unknown}; valid: "
                              f"{', '.join(NOISE_COLOURS)}")
        if self.config.task.noise_prob > 0 and not (self.config.task.noise_dir or self.config.task.noise_colours):
            raise ConfigError("task.noise_prob > 0 but there is no noise to add: set "
                              "--config.task.noise_dir=FOLDER and/or "
                              "--config.task.noise_colours=\"('white', 'pink', 'brown')\"")
        if self.config.task.rir_prob > 0 and not (self.config.task.rir_dir or rt60):
            raise ConfigError("task.rir_prob > 0 but there are no rooms: set "
                              "--config.task.rir_dir=FOLDER and/or a --config.task.rir_rt60 range")

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    # ---- data --------------------------------------------------------------------
    def check_data(self, dataset):
        """The data must carry the label key, in the task's single/multi-label form, with as
        many classes as the model has outputs."""
        example = dataset[0]
        if self.label_key not in example:
            hint = ("; for a folder of class subfolders set --config.data.labels=True"
                    if self.config.data.name == "wav_folder" else "")
            raise ConfigError(f"the {self.config.data.name} data has no {self.label_key!r} label "
                              f"(its examples hold {sorted(example)}); set --config.task.label_key "
                              f"to one of those{hint}")
        vector = np.ndim(example[self.label_key]) == 1
        if vector != self.multi_label:
            raise ConfigError(f"task.multi_label={self.multi_label} but the data's labels are "
                              f"{'multi-hot vectors' if vector else 'class ids'}; set "
                              f"--config.task.multi_label={vector}")
        names = label_names(dataset, self.label_key)
        count = len(example[self.label_key]) if vector else (len(names) if names else None)
        if count is not None and count != self.num_classes:
            shown = f" ({', '.join(names[:12])}{', ...' if len(names) > 12 else ''})" if names else ""
            raise ConfigError(f"the training data has {count} classes{shown} but "
                              f"model.num_classes={self.num_classes}; set "
                              f"--config.model.num_classes={count}")

    def label_set(self, dataset) -> LabelSet:
        names = label_names(dataset, self.label_key) or [str(i) for i in range(self.num_classes)]
        return LabelSet(tuple(names), self.label_key, self.multi_label)

    def workdir_files(self, dataset):
        files = {LABELS_FILE: self.label_set(dataset).to_json()}
        if self.stats is not None:
            files[STATS_FILE] = self.stats.to_json()
        return files

    # ---- training set-up ---------------------------------------------------------------
    def prepare_training(self, dataset, workdir):
        """Reads the augmentation folders, so a bad one fails before the first step, and
        with task.stats_batches > 0 sets the front end's mean / std from the training data
        (or, resuming, from WORKDIR/feature_stats.json)."""
        self.wave_augment  # noqa: B018 - built for its checks
        if self.config.task.stats_batches:
            path = Path(workdir) / STATS_FILE
            self.stats = (FeatureStats.load(path) if path.exists()
                          else feature_stats(self.config, dataset, self.config.task.stats_batches))
            # The run's config (saved as config.json) carries them, so inference agrees.
            self.config.frontend.update(mean=float(self.stats.mean), std=float(self.stats.std))
            self.frontend = Frontend.from_config(self.config.frontend)

    @functools.cached_property
    def wave_augment(self) -> WaveAugment:
        """The training clips' waveform augmentation (reads the noise and RIR folders)."""
        rate, task = self.config.data.sample_rate, self.config.task
        noise = rirs = None
        if task.noise_prob > 0 and task.noise_dir:
            clips = read_clips(self._folder("noise_dir"), rate, key="task.noise_dir",
                               max_seconds=NOISE_MAX_SECONDS)
            noise = noise_bank(clips, self.config.data.segment_length)
        if task.rir_prob > 0 and task.rir_dir:
            clips = read_clips(self._folder("rir_dir"), rate, key="task.rir_dir",
                               max_seconds=RIR_MAX_SECONDS)
            rirs = rir_bank(clips, round(RIR_MAX_SECONDS * rate))
        held = (noise.audio.nbytes if noise else 0) + (rirs.nbytes if rirs is not None else 0)
        if held > BANK_MAX_BYTES:
            raise ConfigError(f"the noise and RIR folders hold {held / 2**20:.0f} MB of audio at "
                              f"{rate} Hz, over the {BANK_MAX_BYTES // 2**20} MB kept in memory; "
                              "use fewer or shorter files")
        return WaveAugment(
            sample_rate=rate, max_shift=self.max_shift, noise_prob=task.noise_prob,
            noise_snr_db=tuple(task.noise_snr_db), noise_colours=tuple(task.noise_colours),
            noise_files=noise, rir_prob=task.rir_prob, rir_rt60=tuple(task.rir_rt60),
            rir_drr_db=tuple(task.rir_drr_db), rir_files=rirs, gain_db=tuple(task.gain_db))

    def _folder(self, key: str) -> str:
        """task.KEY as a path; a relative one lies under data.root (Speech Commands keeps
        _background_noise_ there)."""
        path, root = self.config.task[key], self.config.data.get("root", "")
        return os.path.join(root, path) if root and not os.path.isabs(path) else path

    def dummy_batch(self, batch_size):
        audio = jnp.zeros((batch_size, self.config.data.segment_length), jnp.float32)
        if self.multi_label:
            return {"audio": audio, self.label_key: jnp.zeros((batch_size, self.num_classes))}
        return {"audio": audio, self.label_key: jnp.zeros((batch_size,), jnp.int32)}

    # ---- model calls -------------------------------------------------------------
    def init_variables(self, rng, batch):
        params_rng, dropout_rng = jax.random.split(rng)
        x = self.frontend(batch["audio"])
        return self.model.init({"params": params_rng, "dropout": dropout_rng}, x, train=False)

    def logits(self, params, extra, x, *, train: bool, rng=None):
        """(float32 logits, updated extra collections); batch norm updates its statistics in
        training. The model computes in model.dtype; losses, metrics and predictions read
        float32."""
        variables = {"params": params, **extra}
        if not train:
            return float32(self.model.apply(variables, x, train=False)), extra
        rngs = {"dropout": rng}
        if not extra:
            return float32(self.model.apply(variables, x, train=True, rngs=rngs)), extra
        logits, updated = self.model.apply(variables, x, train=True, rngs=rngs, mutable=list(extra))
        return float32(logits), dict(updated)

    def predict(self, state, audio):
        """Eval-mode logits [batch, classes] for waveforms [batch, samples]."""
        return self.logits(state.params, state.extra, self.frontend(audio), train=False)[0]

    def features(self, state, audio):
        """Eval-mode penultimate embeddings [batch, dim] for waveforms [batch, samples]."""
        variables = {"params": state.params, **state.extra}
        return float32(self.model.apply(variables, self.frontend(audio), method="features"))

    def load_pretrained(self, state):
        """Grafts pretrained weights into the fresh parameters: a Hugging Face checkpoint of
        the model (task.init_from_hf) or, for AST, an ImageNet DeiT / ViT adapted as in
        section 2.2 of the AST paper (task.init_from_imagenet). Every parameter whose path and
        shape match is taken from it; the rest (e.g. a classifier head for another label set)
        keeps its fresh initialisation."""
        task = self.config.task
        # .get: configs written before the field existed have no init_from_imagenet.
        hf_path, imagenet_path = task.init_from_hf, task.get("init_from_imagenet", "")
        if hf_path and imagenet_path:
            raise ConfigError(f"task.init_from_hf={hf_path} and task.init_from_imagenet="
                              f"{imagenet_path} are both set; a run starts from one checkpoint")
        if imagenet_path:
            key, path, loaded = "init_from_imagenet", imagenet_path, self._imagenet(imagenet_path)
        elif hf_path:
            key, path = "init_from_hf", hf_path
            _, loaded = hf_loader(self.config.model.name)(hf_path)
        else:
            return state
        params, taken = graft(state.params, loaded["params"])
        if not taken:
            raise ConfigError(f"no parameter of the checkpoint in {path} matches model "
                              f"{self.config.model.name}; is task.{key} the right checkpoint?")
        return state.replace(params=params, opt_state=self.tx.init(params))

    def _imagenet(self, path: str) -> dict:
        """AST's parameters but the head from the image checkpoint at `path`."""
        if self.config.model.name != "ast":
            raise ConfigError(f"task.init_from_imagenet is set but model {self.config.model.name} "
                              f"is not AST; only AST starts from an ImageNet DeiT / ViT")
        from audiozoo.models.hf_checkpoint import CheckpointFormatError
        from audiozoo.models.imagenet_vit import from_imagenet

        try:
            return from_imagenet(path, self.model)
        except CheckpointFormatError as e:
            raise ConfigError(f"task.init_from_imagenet: {e}") from None

    # ---- objective ---------------------------------------------------------------
    def targets(self, labels):
        if self.multi_label:
            return labels.astype(jnp.float32)
        return jax.nn.one_hot(labels, self.num_classes)

    def augment(self, rng, x, targets):
        task = self.config.task
        mask_rng, mix_rng = jax.random.split(rng)
        if task.spec_augment and self.frontend.kind != "waveform":
            x = spec_augment(mask_rng, x, num_time_masks=task.time_masks,
                             time_mask_param=task.time_mask_param, num_freq_masks=task.freq_masks,
                             freq_mask_param=task.freq_mask_param)
        if task.mixup_alpha > 0:
            x, targets = mixup(mix_rng, x, targets, alpha=task.mixup_alpha)
        return x, targets

    def loss(self, params, extra, batch, rng, train):
        aug_rng, dropout_rng = jax.random.split(rng)
        audio = batch["audio"]
        if train and self.wave_augment.active:
            audio = self.wave_augment(aug_rng, audio)
        x = self.frontend(audio)
        targets = self.targets(batch[self.label_key])
        if train:
            x, targets = self.augment(aug_rng, x, targets)
        logits, extra = self.logits(params, extra, x, train=train, rng=dropout_rng)
        if self.multi_label:
            loss = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))
            hits = (logits > 0) == (batch[self.label_key] > 0.5)
        else:
            smoothing = self.config.task.label_smoothing
            loss = jnp.mean(optax.softmax_cross_entropy(logits, optax.smooth_labels(targets, smoothing)))
            hits = jnp.argmax(logits, -1) == batch[self.label_key]
        return loss, ({"loss": loss, "accuracy": jnp.mean(hits)}, extra)


def feature_stats(config, dataset, batches: int) -> FeatureStats:
    """Statistics of `config`'s raw (unnormalised) front-end features over the first `batches`
    training batches of `dataset`, in the trainer's batch order (what `audiozoo stats` and
    task.stats_batches measure)."""
    # mean 0, std 1: a waveform front end refuses others, and the raw features ignore them.
    frontend = Frontend.from_config({**config.frontend.to_dict(), "mean": 0.0, "std": 1.0})
    loader = BatchLoader(dataset, seed=config.data.seed, global_batch_size=config.train.batch_size,
                         what="the train split")
    features = jax.jit(frontend.unnormalised)
    stats = FeatureStats()
    for step in range(min(batches, int(loader.steps_per_epoch))):
        stats.update(features(loader.host_batch(step)["audio"]))
    return stats
