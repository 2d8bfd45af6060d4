"""core/ is the library: it never imports the face (textual, console/), so scripts and nodes can use it."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
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


def test_node_hydrate_loads_no_sqlite_no_tui_no_optional_http_parts() -> None:
    """A node command's start-up: ``console node hydrate`` imports neither the site's SQLite layer,
    nor textual/rich, nor asyncio, nor httpx's CLI or httpcore's trio backend; and hiding those
    while httpx loads does not stop anyone importing them afterwards."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import console.verbs.node_verbs, core.node.hydrate, core.store.http\n"
        "loaded = sorted(m for m in ('sqlite3', 'sqlite_utils', 'textual', 'rich', 'asyncio', 'trio', 'httpx._main')"
        " if m in sys.modules)\n"
        "print(','.join(loaded))\n"
        "import httpx._main\n"  # importable afterwards
        "print(httpx._main.__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=CORE.parent)
    assert proc.stdout.splitlines() == ["", "httpx._main"]
