"""Model families and the registry that maps a config's `model.name` to a constructor."""

from __future__ import annotations

import dataclasses

from audiozoo.config import ConfigError


def _registry() -> dict:
    # Imported lazily so `import audiozoo.models` stays cheap for the CLI.
    from audiozoo.models.wavenet import WaveNet

    return {"wavenet": WaveNet}


def model_names() -> list[str]:
    return sorted(_registry())


def build_model(model_config):
    """`model_config.name` picks the family; every other key is a constructor field."""
    fields = dict(model_config)
    name = fields.pop("name", None)
    registry = _registry()
    if name not in registry:
        raise ConfigError(
            f"unknown model.name={name!r}; valid names: {', '.join(sorted(registry))}"
        )
    cls = registry[name]
    valid = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    unknown = sorted(set(fields) - valid)
    if unknown:
        raise ConfigError(
            f"model.{unknown[0]} is not a field of {cls.__name__}; valid fields: "
            f"{', '.join(sorted(valid))}"
        )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
