"""What every builder is: source spec + target micro-architecture -> depot directory (DESIGN §1, §3).

A builder turns one source spec (a Julia project, a pip requirements file, a site script) into one
image directory per target arch. It validates the spec before anything runs (`Builder.validate_source`,
`BadInput` with one line), then builds one target at a time into a fresh directory through a
`core.build.run.Runner`, and returns a `BuildOutput` that the publish step turns into the release
manifest's ``builder``, ``source.packages``, ``images.<arch>.cpu_target`` and ``smoke`` fields.

Builders are found by name in a registry. The built-in ones register themselves; a site can add its
own in config as ``name = "module:ClassName"`` (`load_site_builders`).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from core.build.run import Runner
from core.errors import BadInput

DEFAULT_SMOKE_TIMEOUT_S = 600


@dataclass(frozen=True)
class BuildTarget:
    """One image to build: archspec micro-architecture name, output directory, scratch directory."""

    arch: str
    out_dir: Path
    work_dir: Path


@dataclass
class BuildOutput:
    """What a build of one target produced, besides the files in ``out_dir``.

    ``builder`` becomes the manifest's ``builder`` field; its ``kind`` ("julia", "python", "command")
    also tells the node how to make the depot's environment. ``packages`` is
    ``[{"name", "uuid", "version"}]``; ``smoke`` is ``{"command": [...], "timeout_s": N}``;
    ``cpu_target`` is the image's ``cpu_target`` in the manifest.
    """

    builder: dict[str, Any]
    packages: list[dict[str, str]]
    smoke: dict[str, Any]
    cpu_target: str

    @property
    def kind(self) -> str:
        return str(self.builder["kind"])


class Builder(ABC):
    """Base class of builders; subclasses set ``name`` and ``options`` and implement the two steps."""

    name: ClassVar[str] = ""
    # Accepted options and their types; anything else is refused by `check_options`.
    options: ClassVar[dict[str, type | tuple[type, ...]]] = {}
    # Options every builder accepts: an explicit smoke test.
    common_options: ClassVar[dict[str, type | tuple[type, ...]]] = {"smoke_command": list, "smoke_timeout_s": int}

    def check_options(self, options: dict[str, Any]) -> None:
        """BadInput on an unknown option or one of the wrong type."""
        known = {**self.common_options, **self.options}
        for key, value in options.items():
            if key not in known:
                raise BadInput(f"{self.name} builder: unknown option {key!r} (known: {', '.join(sorted(known))})")
            expected = known[key]
            if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
                names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
                raise BadInput(f"{self.name} builder: option {key!r} must be {names}")
        cmd = options.get("smoke_command")
        if cmd is not None and (not cmd or not all(isinstance(a, str) for a in cmd)):
            raise BadInput(f"{self.name} builder: smoke_command must be a non-empty list of strings")

    def smoke(self, default: list[str], options: dict[str, Any]) -> dict[str, Any]:
        """The release's smoke entry: the option's command if given, else ``default``."""
        return {
            "command": list(options.get("smoke_command") or default),
            "timeout_s": int(options.get("smoke_timeout_s", DEFAULT_SMOKE_TIMEOUT_S)),
        }

    @abstractmethod
    def validate_source(self, source: Path, options: dict[str, Any]) -> None:
        """Refuse a bad spec or bad options with BadInput, before anything runs."""

    @abstractmethod
    def build(self, source: Path, target: BuildTarget, runner: Runner, options: dict[str, Any]) -> BuildOutput:
        """Build ``source`` for ``target.arch`` into ``target.out_dir`` (fresh or empty)."""

    def source_files(self, source: Path, options: dict[str, Any]) -> dict[str, Path]:
        """Files of the spec to record in the manifest's ``source.files`` (name -> path)."""
        return {source.name: source} if source.is_file() else {}


def prepare_out_dir(target: BuildTarget) -> None:
    """Create ``out_dir`` and ``work_dir``; refuse an ``out_dir`` that already has content."""
    out = Path(target.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"build output {out} exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    Path(target.work_dir).mkdir(parents=True, exist_ok=True)


# --- registry ------------------------------------------------------------------------------------

_REGISTRY: dict[str, type[Builder]] = {}


def register(builder_cls: type[Builder], name: str | None = None) -> type[Builder]:
    """Register a builder class under ``name`` (default: its ``name``); usable as a decorator."""
    key = name or builder_cls.name
    if not key:
        raise BadInput(f"builder class {builder_cls.__name__} has no name")
    _REGISTRY[key] = builder_cls
    return builder_cls


def known_builders() -> list[str]:
    return sorted(_REGISTRY)


def get_builder(name: str) -> Builder:
    """A fresh instance of the builder called ``name``; BadInput listing the known names otherwise."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise BadInput(f"unknown builder {name!r} (known: {', '.join(known_builders())})") from None
    builder = cls()
    builder.name = name  # type: ignore[misc]  # a site may register a class under another name
    return builder


def load_site_builders(specs: dict[str, str]) -> None:
    """Register a site's own builders from config: ``{"name": "module:ClassName"}``."""
    for name, spec in specs.items():
        module_name, sep, class_name = str(spec).partition(":")
        if not sep or not module_name or not class_name:
            raise BadInput(f"builder {name!r}: {spec!r} is not 'module:ClassName'")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BadInput(f"builder {name!r}: cannot import {module_name}: {exc}") from None
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Builder)):
            raise BadInput(f"builder {name!r}: {spec} is not a Builder subclass")
        register(cls, name)
