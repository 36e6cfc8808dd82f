"""Typed configs: dataclasses loaded from YAML with `key=value` overrides (omegaconf); unknown keys are errors."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hands.io.atomic import atomic_path

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """The dataclass `schema` with defaults, then the YAML file at `path`, then `key=value` overrides applied."""
    config = OmegaConf.structured(schema)
    sources = []
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        sources.append((str(path), lambda: OmegaConf.load(path)))
    if overrides:
        bad = [item for item in overrides if "=" not in item]
        if bad:
            raise ConfigError(f"overrides should look like key=value, got {bad}")
        sources.append(("command line", lambda: OmegaConf.from_dotlist(list(overrides))))
    for where, read in sources:
        try:
            config = OmegaConf.merge(config, read())
        except OmegaConfBaseException as error:
            key = getattr(error, "full_key", None) or getattr(error, "key", None)
            message = str(getattr(error, "msg", error)).splitlines()[0]
            raise ConfigError(f"{where}: {message} (key '{key}')") from None
    return OmegaConf.to_object(config)


def save_config(config, path: str | Path, overwrite: bool = False) -> Path:
    """Write a config dataclass as YAML (atomically; refuses to replace a file unless `overwrite`)."""
    with atomic_path(path, overwrite) as tmp:
        OmegaConf.save(OmegaConf.structured(config), tmp)
    return Path(path)
