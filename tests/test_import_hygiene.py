"""core/ is the library: it never imports the face (textual, console/), so scripts and nodes can use it."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
FORBIDDEN = ("textual", "console")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_core_never_imports_the_face() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert files, "core/ has no modules?"
    bad = [f"{p.relative_to(CORE.parent)}: import {n}" for p in files for n in _imports(p)
           if n.split(".")[0] in FORBIDDEN]
    assert bad == []
