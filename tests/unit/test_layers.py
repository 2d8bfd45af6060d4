"""The folder tree is the architecture: imports inside core/ flow one way (README, "Layout").

model (pure data) -> trust (verification over bytes) -> store -> arch, kinds -> node | site ->
fleet, build -> demo. A lower layer never imports a higher one, and node code never imports
site code: a node runs with nothing of the console host's (no SQLite, no site, no fleet).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"

#: package -> the core packages it must never import (directly or lazily inside a function).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core.errors": ("core.",),
    "core.clock": (
        "core.model",
        "core.trust",
        "core.store",
        "core.arch",
        "core.kinds",
        "core.node",
        "core.site",
        "core.fleet",
        "core.build",
        "core.demo",
    ),
    "core.model": (
        "core.trust",
        "core.store",
        "core.arch",
        "core.kinds",
        "core.node",
        "core.site",
        "core.fleet",
        "core.build",
        "core.demo",
    ),
    "core.trust": (
        "core.store",
        "core.arch",
        "core.kinds",
        "core.node",
        "core.site",
        "core.fleet",
        "core.build",
        "core.demo",
    ),
    "core.store": ("core.arch", "core.kinds", "core.node", "core.site", "core.fleet", "core.build", "core.demo"),
    # arch reads cpuinfo with the node probe's parser: core.node.probe is a stdlib-only leaf (it is sent
    # to nodes as a script), so arch may import it, and nothing else of node/.
    "core.arch": (
        "core.kinds",
        "core.node.root",
        "core.node.env",
        "core.node.smoke",
        "core.node.hydrate",
        "core.site",
        "core.fleet",
        "core.build",
        "core.demo",
    ),
    "core.kinds": ("core.node", "core.site", "core.fleet", "core.build", "core.demo"),
    "core.node": ("core.site", "core.fleet", "core.build", "core.demo"),
    "core.site": ("core.fleet", "core.build", "core.demo"),
    "core.fleet": ("core.build", "core.demo"),
    "core.build": ("core.fleet", "core.demo"),
}


def _package(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:2])


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in the module, including lazy ones inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative: resolve against the module's package
                base = path.relative_to(CORE.parent).with_suffix("").parts[: -node.level]
                found.append((node.lineno, ".".join((*base, node.module))))
            else:
                found.append((node.lineno, node.module))
    return found


def violations() -> list[str]:
    bad = []
    for path in sorted(CORE.rglob("*.py")):
        rules = FORBIDDEN.get(_package(path), ())
        for line, name in _imports(path):
            if any(name == r.rstrip(".") or name.startswith(r if r.endswith(".") else r + ".") for r in rules):
                bad.append(f"{path.relative_to(CORE.parent)}:{line}: {_package(path)} imports {name}")
    return bad


def test_core_imports_flow_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_every_layer_exists(package: str) -> None:
    """A renamed package must not silently drop out of the contract."""
    name = package.split(".", 1)[1]
    assert (CORE / name).is_dir() or (CORE / f"{name}.py").is_file()
