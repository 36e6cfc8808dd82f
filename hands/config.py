"""Typed configs: dataclasses loaded from YAML with `key=value` overrides (omegaconf); unknown keys are errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hands.io.atomic import atomic_path

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


def check_fields(config, *, at_least: dict[str, float] | None = None, finite: tuple[str, ...] = (),
                 multiple_of: dict[str, int] | None = None, at_most: dict[str, float] | None = None) -> None:
    """Range checks of a config dataclass's fields, for its `__post_init__` (so that every CLI and loader that
    builds the config gets them): `at_least` {field: minimum}, `at_most` {field: maximum}, `finite` fields (not
    NaN or infinite), `multiple_of` {field: n}. ValueError names the field and the value."""
    for name, minimum in (at_least or {}).items():
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= minimum):
            raise ValueError(f"{name}: must be at least {minimum}, got {value!r}")
    for name, maximum in (at_most or {}).items():
        value = getattr(config, name)
        if not (math.isfinite(value) and value <= maximum):
            raise ValueError(f"{name}: must be at most {maximum}, got {value!r}")
    for name in finite:
        if not math.isfinite(getattr(config, name)):
            raise ValueError(f"{name}: must be a finite number, got {getattr(config, name)!r}")
    for name, step in (multiple_of or {}).items():
        if getattr(config, name) % step:
            raise ValueError(f"{name}: must be a multiple of {step}, got {getattr(config, name)!r}")


def read_yaml(path: str | Path) -> DictConfig:
    """A YAML config file as a mapping; a missing file, bad YAML, a `!!python` tag or a top-level list is a
    ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{line} ({problem})") from None
    except (UnicodeDecodeError, OmegaConfBaseException, ValueError) as error:
        raise ConfigError(f"{path}: not a readable YAML config ({str(error).splitlines()[0]})") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{path}: expected a mapping of keys at the top, got a {type(loaded).__name__}")
    return loaded


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """The dataclass `schema` with defaults, then the YAML file at `path`, then `key=value` overrides applied."""
    config = OmegaConf.structured(schema)
    sources = []
    if path is not None:
        sources.append((str(path), lambda: read_yaml(path)))
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
    try:
        return OmegaConf.to_object(config)
    except ValueError as error:  # a range check of a config's __post_init__
        raise ConfigError(f"{sources[-1][0] if sources else schema.__name__}: {error}") from None


def save_config(config, path: str | Path, overwrite: bool = False) -> Path:
    """Write a config dataclass as YAML (atomically; refuses to replace a file unless `overwrite`)."""
    with atomic_path(path, overwrite) as tmp:
        OmegaConf.save(OmegaConf.structured(config), tmp)
    return Path(path)
