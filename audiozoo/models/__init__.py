"""Model families and the registry that maps a config's `model.name` to a constructor."""

from __future__ import annotations

import dataclasses
import functools
import importlib

from audiozoo.config import ConfigError

# model.name -> "module:attribute"; modules import on first use so the CLI starts quickly.
MODELS = {
    "wavenet": "wavenet:WaveNet",
    "wavenet_autoencoder": "autoencoder:WaveNetAutoencoder",
    "alexnet": "alexnet:AlexNet",
    "vgg11": "vgg:VGG11",
    "vgg16": "vgg:VGG16",
    "inception_v1": "inception:InceptionV1",
    "resnet18": "resnet:ResNet18",
    "resnet50": "resnet:ResNet50",
    "densenet121": "densenet:DenseNet121",
    "squeezenet1_1": "squeezenet:SqueezeNet1_1",
    "cnn14": "cnn14:Cnn14",
    "sincnet": "sincnet:SincNet",
    "ast": "ast:AST",
    "wav2vec2": "wav2vec2:Wav2Vec2",
    "wav2vec2_classifier": "wav2vec2:Wav2Vec2Classifier",
    "gansynth": "gansynth:GANSynth",
    "gansynth_pitch_classifier": "pitch_classifier:PitchClassifier",
}


def model_names() -> list[str]:
    return sorted(MODELS)


def model_class(name: str):
    """The class (or `functools.partial` variant) registered under `name`."""
    if name not in MODELS:
        raise ConfigError(f"unknown model.name={name!r}; valid names: {', '.join(model_names())}")
    module, attr = MODELS[name].split(":")
    return getattr(importlib.import_module(f"audiozoo.models.{module}"), attr)


# model.dtype: the computation dtype; parameters stay float32 whatever it is. No float16: the
# trainer has no loss scaling, and float16 gradients underflow without it.
COMPUTE_DTYPES = ("float32", "bfloat16")


def compute_dtype(name: str):
    """The jnp dtype a config's `model.dtype` names."""
    if name not in COMPUTE_DTYPES:
        raise ConfigError(f"model.dtype={name!r} is not a computation dtype; valid: "
                          f"{', '.join(COMPUTE_DTYPES)}")
    import jax.numpy as jnp  # here, so that importing the registry stays cheap

    return getattr(jnp, name)


def build_model(model_config):
    """`model_config.name` picks the family; every other key is a constructor field
    (`dtype` by name: "float32" or "bfloat16")."""
    fields = dict(model_config)
    if isinstance(fields.get("dtype"), str):
        fields["dtype"] = compute_dtype(fields["dtype"])
    name = fields.pop("name", None)
    cls, valid = model_class(name), model_fields(name)
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise ConfigError(
            f"model.{unknown[0]} is not a field of {_family(cls).__name__}; valid fields: "
            f"{', '.join(sorted(valid))}"
        )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def model_fields(name: str) -> dict:
    """The constructor fields of the model registered under `name`, each with its default
    (a variant's own settings included; None where the field has no default)."""
    cls = model_class(name)
    defaults = {}
    for field in dataclasses.fields(_family(cls)):
        if field.name in ("parent", "name"):
            continue
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
        else:
            defaults[field.name] = None
    if isinstance(cls, functools.partial):
        defaults.update(cls.keywords)
    return defaults


def unlisted_fields(model_config) -> dict:
    """The fields of `model_config.name`'s model that the config section leaves at their
    defaults, with those defaults ({} without a known name): what `--config.model.FIELD` may
    set beyond the config file's keys. Only values a command line can spell (numbers,
    strings, tuples, None), not initialisers or dtypes."""
    name = model_config.get("name")
    if name not in MODELS:
        return {}
    literal = (type(None), bool, int, float, str, tuple, list)
    return {k: v for k, v in model_fields(name).items()
            if k not in model_config and isinstance(v, literal)}


def _family(cls):
    """The family class of a registered model (variants are partials: ResNet50 =
    partial(ResNet, ...))."""
    return cls.func if isinstance(cls, functools.partial) else cls
