"""The method registry: what each method gives the shared trainer and the CLI, named by import path so that
nothing is imported until a method is used.

A method is one package and one `MethodSpec`. Built-in methods are listed here; others register with
`register_method` (in code) or through the `hands.methods` entry-point group of an installed package (its
object is a `MethodSpec`). `hands train` reads `method:` from the run's config and needs nothing else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

ENTRY_POINT_GROUP = "hands.methods"


@dataclass(frozen=True)
class MethodSpec:
    """One method. Each `str` field is an import path `package.module:attribute`; objects work too."""

    name: str
    """The method's name in configs (`method: <name>`) and its config section."""
    summary: str
    """One line for help texts."""
    train_config: str | type
    """Dataclass of the method's training section; needs `seed`, `batch_size` and `num_workers` fields
    (`accumulate`, when present, is the gradient accumulation)."""
    module: str | Callable[[Any], Any]
    """config -> LightningModule with `datasets()` returning the training set or (training, validation) sets."""
    callbacks: str | Callable[[Any, Any], list] | None = None
    """(config, run folder) -> extra Lightning callbacks (checkpointing is the trainer's)."""
    export: str | Callable[[Any, Any, Any], Any] | None = None
    """(module, run folder, trainer) -> what to save after training (rank 0 only), e.g. a ControlNet folder."""
    predictor: str | None = None
    """What the trained result is used through (a `HandPredictor` class, a sampler or a creation function)."""


def load_object(reference: str | Any) -> Any:
    """The object an import path `package.module:attribute[.attribute]` names (objects are returned as they are)."""
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    value = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        value = getattr(value, part)
    return value


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    """Add a method; a name already taken is an error unless `replace`."""
    if spec.name in _METHODS and not replace:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    if not spec.name.isidentifier() or spec.name in ("method", "trainer"):
        raise ValueError(f"method names must be identifiers other than 'method' and 'trainer', got {spec.name!r}")
    _METHODS[spec.name] = spec
    return spec


def unregister_method(name: str) -> None:
    _METHODS.pop(name, None)


def _load_entry_points() -> None:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _METHODS:
            register_method(entry.load())


def method_names() -> list[str]:
    """Every registered method, built-in ones first."""
    _load_entry_points()
    return list(_METHODS)


def get_method(name: str) -> MethodSpec:
    """The spec of a method; an unknown name is an error listing the known ones."""
    if name not in _METHODS:
        _load_entry_points()
    if name not in _METHODS:
        raise ValueError(f"method: unknown method {name!r}; registered: {', '.join(_METHODS)}")
    return _METHODS[name]


register_method(MethodSpec(
    "acr", "ACR: attention-collaboration regression of zero, one or two hands to MANO (CVPR'23)",
    train_config="hands.acr.training:ACRTrainConfig", module="hands.acr.training:ACRModule",
    predictor="hands.acr.predictor:ACRPredictor"))
register_method(MethodSpec(
    "attentionhand", "AttentionHand: text- and mesh-conditioned hand image generation (ECCV'24)",
    train_config="hands.attentionhand.training:AttentionHandTrainConfig",
    module="hands.attentionhand.training:AttentionHandModule",
    callbacks="hands.attentionhand.training:training_callbacks", export="hands.attentionhand.training:export_trained",
    predictor="hands.attentionhand.pipeline:sample_images"))
register_method(MethodSpec(
    "ohta", "OHTA: prior learning for one-shot hand avatars (CVPR'24)",
    train_config="hands.ohta.prior:PriorTrainConfig", module="hands.ohta.prior:OHTAPriorModule",
    export="hands.ohta.prior:export_trained", predictor="hands.ohta.creation:create_avatar"))
