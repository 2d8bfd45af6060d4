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
    bad = [
        f"{p.relative_to(CORE.parent)}: import {n}" for p in files for n in _imports(p) if n.split(".")[0] in FORBIDDEN
    ]
    assert bad == []


def test_node_hydrate_loads_no_sqlite_no_tui_no_optional_http_parts() -> None:
    """A node command's start-up: ``console node hydrate`` imports neither the site's SQLite layer,
    nor textual/rich, nor asyncio, nor httpx's CLI or httpcore's trio backend; and hiding those
    while httpx loads does not stop anyone importing them afterwards."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import console.verbs.node_verbs, core.node.hydrate.run, core.store.http\n"
        "loaded = sorted(m for m in ('sqlite3', 'sqlite_utils', 'textual', 'rich', 'asyncio', 'trio', 'httpx._main')"
        " if m in sys.modules)\n"
        "print(','.join(loaded))\n"
        "import httpx._main\n"  # importable afterwards
        "print(httpx._main.__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CORE.parent)
    assert proc.stdout.splitlines() == ["", "httpx._main"]


# --------------------------------------------------------------------------- console/ layering

CONSOLE = CORE.parent / "console"
#: What a verb may import from console/: its inputs and outputs, the shared text, lazy imports.
VERB_MAY_IMPORT = (
    "console.context",
    "console.render",
    "console.lazy",
    "console.agent.control",
)  # the agent verbs drive it


def _console_module(path: Path) -> str:
    return ".".join(path.relative_to(CORE.parent).with_suffix("").parts).removesuffix(".__init__")


def _runtime_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) for every import that runs (at the top or lazily inside a
    function, and ``lazy_import("...")`` calls); imports under ``if TYPE_CHECKING:`` never run."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "lazy_import"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            out.append((str(node.args[0].value), []))
    return out


def console_import_graph() -> dict[str, set[str]]:
    """console module -> the console modules it imports when it runs."""
    files = {_console_module(p): p for p in sorted(CONSOLE.rglob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for target, names in _runtime_imports(path):
            for t in [target, *(f"{target}.{n}" for n in names)]:
                if t in files and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (``[a, b, …, a]``) of ``graph``, or [] when it has none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(mod: str) -> list[str]:
        state[mod] = 1
        path.append(mod)
        for dep in sorted(graph[mod]):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[mod] = 2
        return []

    for mod in sorted(graph):
        if mod not in state:
            found = visit(mod)
            if found:
                return found
    return []


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_console() -> None:
    graph = console_import_graph()
    assert "console.cli" in graph and "console.tui.app" in graph
    assert find_cycle(graph) == []


def test_verbs_import_only_context_render_lazy_and_core() -> None:
    """A verb sees ``Context``/``Output``, the shared text and core; never the CLI or the TUI."""
    bad = []
    for path in sorted((CONSOLE / "verbs").glob("*.py")):
        for target, _ in _runtime_imports(path):
            if target.split(".")[0] == "textual" or (
                target.startswith("console")
                and target not in VERB_MAY_IMPORT
                and not target.startswith("console.verbs")
            ):
                bad.append(f"{path.name}: {target}")
    assert bad == []


def test_tui_never_imports_the_cli_side_or_private_names() -> None:
    """Screens use the shared modules (render, messages, lookups, dialogs), never a verb's or
    another module's private helpers."""
    bad = []
    for path in sorted((CONSOLE / "tui").rglob("*.py")):
        for target, names in _runtime_imports(path):
            if target.startswith(("console.verbs", "console.cli")):
                bad.append(f"{path.relative_to(CONSOLE)}: {target}")
            elif target.startswith("console"):
                bad += [f"{path.relative_to(CONSOLE)}: {target}.{n}" for n in names if n.startswith("_")]
    assert bad == []
