"""Command-line flags and help made from config dataclasses: one flag per field, its help the field's docstring,
choices from `Literal` types (the nerfstudio/tyro style, on argparse)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from functools import lru_cache
from typing import Any, Literal, TypeVar, get_args, get_origin

T = TypeVar("T")


@lru_cache(maxsize=None)
def field_docstrings(cls: type) -> dict[str, str]:
    """Field name -> the string literal written under it in the class body (and its dataclass bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _unwrap_optional(kind: Any) -> tuple[Any, bool]:
    if get_origin(kind) in (typing.Union, types.UnionType):
        members = [a for a in get_args(kind) if a is not type(None)]
        if len(members) == 1:
            return members[0], len(members) < len(get_args(kind))
    return kind, False


def describe_type(kind: Any) -> str:
    """A short name of a field's type for help texts (choices spelled out)."""
    kind, optional = _unwrap_optional(kind)
    if get_origin(kind) is Literal:
        text = "{" + ",".join(str(a) for a in get_args(kind)) + "}"
    else:
        text = getattr(kind, "__name__", str(kind).replace("typing.", ""))
    return text + (" or null" if optional else "")


def _parse_as(kind: Any):
    base, _ = _unwrap_optional(kind)
    return base if base in (int, float, str) else str


def add_dataclass_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                            skip: tuple[str, ...] = ()) -> None:
    """One `--<field>` flag per field of the flat dataclass `cls` (nested dataclasses are skipped): booleans as
    `--x/--no-x`, `Literal` fields with choices, `X | None` fields accept `none`."""
    docs, hints = field_docstrings(cls), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if f.name in skip or dataclasses.is_dataclass(kind):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{docs.get(f.name, '')} (default: {default})".strip().replace("%", "%%")  # argparse formats help
        base, optional = _unwrap_optional(kind)
        if base is bool:
            parser.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif get_origin(base) is Literal:
            parser.add_argument(f"--{f.name}", choices=list(get_args(base)), default=default, help=help_text)
        else:
            convert = _parse_as(kind)
            if optional:
                help_text += "; 'none' for none"
            parser.add_argument(f"--{f.name}", type=(lambda v, c=convert: None if v.lower() in ("none", "null") else c(v))
                                if optional else convert, default=default, metavar=convert.__name__.upper(), help=help_text)


def dataclass_from_arguments(cls: type[T], args: argparse.Namespace) -> T:
    """The dataclass `cls` filled from the flags `add_dataclass_arguments` added (other fields keep defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in vars(args).items() if name in names})


def config_help(cls: type, prefix: str = "") -> list[str]:
    """Lines `key: type = default  docstring` for every field of a (nested) config dataclass, for --help."""
    docs, hints = field_docstrings(cls), typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(kind):
            if docs.get(f.name):
                lines.append(f"{key}.*  {docs[f.name]}")
            lines += config_help(kind, key + ".")
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")  # type: ignore[misc]
        line = f"{key}: {describe_type(kind)} = {default!r}"
        lines.append(f"{line}  {docs[f.name]}" if docs.get(f.name) else line)
    return lines


def config_epilog(cls: type, title: str) -> str:
    """A --help epilog listing the config's keys, wrapped."""
    wrapped = [textwrap.fill(line, 118, subsequent_indent="      ") for line in config_help(cls)]
    return title + "\n  " + "\n  ".join(wrapped)
