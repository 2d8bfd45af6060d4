"""Declared settings: frozen dataclasses whose every field carries a type, a default and a doc line.

Both configuration files are declared this way: the site's ``console.toml`` (``core.site.config``,
one dataclass per section) and a node's ``node.toml`` (``core.node.root``). One checker validates
a file once, when it is loaded, so no caller re-checks types: a key nobody declared, a value of the
wrong type or out of range is refused with one ``BadInput`` line (exit code 2) that names the file,
the section and the key. The same declarations render the README's configuration tables
(``markdown_rows``), which ``tests/unit/test_config.py`` keeps in step.

Declare a field with ``setting(default, doc, ge=..., gt=..., le=..., shown=...)``. Supported
types: ``str``, ``int``, ``float`` (an integer is accepted; NaN and infinities are not), ``bool``,
``list[X]``, ``dict[str, X]``, ``Any`` and unions of them (``str | list[str]``; ``None`` as a
default means "not set", since TOML has no null).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from core.errors import BadInput

T = TypeVar("T")


def setting(
    default: Any,
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    shown: str | None = None,
) -> Any:
    """A dataclass field with its documentation and bounds.

    ``doc``: what the setting does (one sentence, README table). ``ge``/``gt``/``le``: inclusive
    lower, exclusive lower and inclusive upper bound of a number. ``shown``: the default as the
    README states it, when the literal value says less (``0`` meaning "the CPU count").
    """
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "shown": shown}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """``cls``'s field types, evaluated once per class (each evaluation compiles every annotation)."""
    return typing.get_type_hints(cls)


def describe(hint: Any) -> str:
    """A type as an error message or the README names it ("a whole number", "a list of strings")."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args if a is not type(None))
    if origin is list:
        return "a list of " + _plural(args[0])
    if origin is dict:
        return "a table" if args[1] is Any else "a table of " + _plural(args[1])
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}.get(hint, "a value")


def _plural(hint: Any) -> str:
    if hint is Any:
        return "values"
    text = describe(hint)
    return {
        "a string": "strings",
        "a whole number": "whole numbers",
        "a number": "numbers",
        "a table": "tables",
        "true or false": "booleans",
    }.get(text, text)


def fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as tomllib returns it) is of type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and fits(v, args[1]) for k, v in value.items())
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, hint)


def check_value(cls: type, key: str, value: Any, where: str) -> Any:
    """``value`` if it fits the field ``key`` of ``cls``; else BadInput ``"<where> <key> must be ..."``."""
    f = {f.name: f for f in dataclasses.fields(cls)}[key]
    hint = _hints(cls)[key]
    if not fits(value, hint):
        raise BadInput(f"{where}{key} must be {describe(hint)}, not {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ge, gt, le = f.metadata.get("ge"), f.metadata.get("gt"), f.metadata.get("le")
        if ge is not None and value < ge:
            raise BadInput(f"{where}{key} must be at least {ge}, not {value!r}")
        if gt is not None and value <= gt:
            raise BadInput(f"{where}{key} must be more than {gt}, not {value!r}")
        if le is not None and value > le:
            raise BadInput(f"{where}{key} must be at most {le}, not {value!r}")
    return value


def parse(cls: type[T], table: Mapping[str, Any], where: str) -> T:
    """An instance of the settings dataclass ``cls`` from one TOML table, defaults filled in.

    ``where`` prefixes every error (``"/site/console.toml: [fleet] "``): a key ``cls`` does not
    declare is refused (naming the known ones), so a typo never silently falls back to a default.
    """
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in table:
        if key not in known:
            raise BadInput(f"{where}unknown key {key!r} (known: {', '.join(known)})")
    values = {key: check_value(cls, key, copy.deepcopy(value), where) for key, value in table.items()}
    return cls(**values)


def to_table(settings: Any) -> dict[str, Any]:
    """The settings as a TOML table (every declared key, in declaration order)."""
    return dataclasses.asdict(settings)


def default_text(f: dataclasses.Field) -> str:
    """A field's default as the README shows it: ``shown``, else the TOML literal (empty: "empty")."""
    if f.metadata.get("shown"):
        return str(f.metadata["shown"])
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if value is None or value in ("", [], {}):
        return "empty"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, dict):
        return ", ".join(f"`{k} = {v}`" for k, v in value.items())
    return f"`{value}`"


def markdown_rows(cls: type, section: str | None = None) -> list[str]:
    """One README table row per field of ``cls``: ``| [section] | key | default | meaning |``
    (without the section column when ``section`` is None)."""
    rows = []
    for f in dataclasses.fields(cls):
        cells = [f"`{f.name}`", default_text(f), str(f.metadata["doc"])]
        if section is not None:
            cells.insert(0, f"`[{section}]`")
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return rows
