"""What every kind of depot is: the one protocol the rest of core/ talks to (README, "Layout").

A *kind* is an ecosystem whose depots the console delivers: ``julia`` (a precompiled Julia depot)
and ``python`` (a pip-installed ``lib/python`` tree). Everything that differs between them lives
behind `Kind`, so the generic mechanisms never test ``kind == "julia"``:

* trees: `Kind.detect` (is this directory a depot of this kind?) and `Kind.tree_source` (the
  lock file inside a depot tree, for a release's ``source`` section);
* build specs: `Kind.validate_spec`, `Kind.spec_files`, `Kind.spec_packages` (the lock file of the
  spec), `Kind.build_env` (the operator's environment minus what would leak into a build),
  `Kind.default_smoke` (the smoke command a build records);
* CPU targets: `Kind.build_target` (the string a build of one micro-architecture is made for and
  records as ``cpu_target``) and `Kind.image_target` (what publish records for a plain tree);
* nodes: `Kind.node_env`, the variables a node exports to use a hydrated image;
* smoke tests: `Kind.runs` (is this command this kind's interpreter?), `Kind.warm_up` and
  `Kind.cold_start` (how to run the smoke command warm with a fingerprint hook, and cold),
  `Kind.read_fingerprint`, `Kind.rejected_caches` and `Kind.is_noise` (reading the warm run).

Implementations are `core.kinds.julia.Julia` and `core.kinds.python.Python`; `core.kinds` holds
the registry (`kind_for`, `detect_kind`, `image_kinds`). This layer imports only ``core.model``,
``core.errors`` and ``core.arch``: never node, site, fleet, build or demo code.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from core.model.digest import canonical_json, digest_bytes, hash_file

Package = dict[str, str]

#: The variable a smoke test's fingerprint hook writes its module list to (a path).
FINGERPRINT_ENV = "DEPOT_SMOKE_FINGERPRINT"


def sorted_packages(packages: list[Package]) -> list[Package]:
    """Package lists are always sorted by (name, uuid, version)."""
    return sorted(packages, key=lambda p: (p["name"], p["uuid"], p["version"]))


def fingerprint_of(modules: list[list]) -> dict:
    """The smoke result's ``fingerprint``: sorted module rows, their count and one digest."""
    modules = sorted(modules, key=lambda m: [str(x) for x in m])
    return {
        "modules": modules,
        "count": len(modules),
        "digest": digest_bytes(canonical_json(modules)),
    }


def read_module_list(path: Path) -> dict | None:
    """The generic fingerprint file: a JSON list of ``[module name, sha256 of its file | null]``.

    None when the file is missing or not JSON (the program never reached its exit hook).
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return fingerprint_of([[str(n), d] for n, d in data])


def file_digest(path: str | Path) -> str | None:
    """``sha256:<hex>`` of a file's bytes, None if it cannot be read."""
    try:
        return hash_file(path)[0]
    except OSError:
        return None


@dataclass
class TreeSource:
    """A lock file found inside a depot tree: what a release's ``source`` section records.

    ``files`` maps the manifest's file name to the file to hash; ``environment`` is the
    environment's directory relative to the tree (recorded as ``builder.environment`` for a plain
    ``tree`` publish).
    """

    packages: list[Package]
    files: dict[str, Path] = field(default_factory=dict)
    environment: str = ""


class Kind(ABC):
    """One ecosystem's depots; see the module docstring. Instances are stateless singletons."""

    #: The builder kind in release manifests (``builder.kind``) and the registry key.
    name: ClassVar[str] = ""
    #: How messages name the ecosystem ("Julia rejected cache files of ...").
    label: ClassVar[str] = ""

    # --- trees -----------------------------------------------------------------------------------

    @abstractmethod
    def detect(self, tree: Path) -> bool:
        """True if the directory ``tree`` holds a depot of this kind."""

    def tree_source(self, tree: Path) -> TreeSource | None:
        """The lock file inside depot ``tree`` and its packages; None when it has none."""
        return None

    # --- build specs -----------------------------------------------------------------------------

    @abstractmethod
    def validate_spec(self, source: Path) -> None:
        """BadInput (one line) if ``source`` is not a usable spec of this kind."""

    @abstractmethod
    def spec_files(self, source: Path) -> dict[str, Path]:
        """Files of the spec recorded in the manifest's ``source.files`` (name -> path)."""

    @abstractmethod
    def spec_packages(self, source: Path) -> list[Package]:
        """The spec's lock file as a package list (``source.packages``)."""

    @abstractmethod
    def build_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (the operator's environment) without what would make a build load or write
        anything outside its fresh output directory."""

    @abstractmethod
    def default_smoke(self, names: list[str]) -> list[str]:
        """The smoke command that loads ``names`` (packages or modules) with this kind's runtime."""

    # --- CPU targets -----------------------------------------------------------------------------

    @abstractmethod
    def build_target(self, arch: str) -> str:
        """The target string an image for archspec ``arch`` is built for (its ``cpu_target``)."""

    def image_target(self, arch: str) -> str:
        """The ``cpu_target`` publish records for a plain tree of this kind ("" for none)."""
        return ""

    # --- nodes -----------------------------------------------------------------------------------

    @abstractmethod
    def node_env(self, image: Path, *, arch: str, cpu_target: str, writable: Path) -> dict[str, str]:
        """Variables a node exports to use ``image`` (insertion order is the print order).

        ``cpu_target`` is the manifest's for the image ("" if it has none); ``writable`` is this
        kind's directory in the node's writable layer (created only by a kind that uses it).
        """

    # --- smoke tests -----------------------------------------------------------------------------

    @abstractmethod
    def runs(self, cmd: list[str]) -> bool:
        """True if ``cmd[0]`` is this kind's interpreter (so interpreter flags may be added)."""

    def warm_up(self, cmd: list[str], env: dict[str, str], scratch: Path) -> list[str]:
        """Prepare the warm smoke run: may edit ``env`` in place and write hooks into ``scratch``;
        returns the command to run. The hook writes the module list to ``$DEPOT_SMOKE_FINGERPRINT``."""
        return cmd

    def cold_start(self, cmd: list[str], env: dict[str, str], scratch: Path) -> list[str]:
        """Prepare the cold baseline run (no delivered caches used): like `warm_up`."""
        return cmd

    def read_fingerprint(self, path: Path, output: str) -> dict | None:
        """The fingerprint the warm run's hook left in ``path`` (``output`` is what it printed)."""
        return read_module_list(path)

    def rejected_caches(self, output: str) -> list[dict]:
        """Caches the runtime refused in the warm run's output, as {package, uuid, cache_file}."""
        return []

    def is_noise(self, line: str) -> bool:
        """True for an output line of the runtime's own diagnostics (left out of the output tail)."""
        return False

    def __repr__(self) -> str:
        return f"<kind {self.name}>"
