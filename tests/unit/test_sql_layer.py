"""SQL runs in one place: ``core/site/db/`` (README, "Layout"; issue 11).

Every other module of ``core/`` and ``console/`` asks a table class of ``core.site.db`` by name.
This test parses each module and fails on any of: an import of ``sqlite3`` / ``sqlite_utils``; a
call of ``.execute`` / ``.executemany`` / ``.executescript`` / ``.query`` (Textual's DOM query is
``query_one``/``query_children``, never bare ``query`` in this code base); reaching the raw
connection as ``….state.db``; a string that reads as SQL (``select … from``, ``insert into``,
``update … set``, ``delete from``, ``create table``/``index``, ``pragma``). Docstrings are prose
and are not scanned; comments are not in the syntax tree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("core", "console")
DATA_LAYER = ROOT / "core" / "site" / "db"

SQL_MODULES = ("sqlite3", "sqlite_utils", "apsw")
SQL_CALLS = frozenset({"execute", "executemany", "executescript", "query"})
SQL_TEXT = re.compile(
    r"""\bselect\s+(?:distinct\s+)?[\w*(),.\s|']+?\s+from\s+\w
      | \binsert\s+(?:or\s+\w+\s+)?into\s+\w
      | \bupdate\s+\w+\s+set\s+\w
      | \bdelete\s+from\s+\w
      | \bcreate\s+(?:unique\s+)?(?:table|index|view|trigger)\b
      | \bdrop\s+(?:table|index|view)\b
      | \bpragma\s+\w+
      | \bbegin\s+(?:immediate|exclusive|deferred)\b""",
    re.IGNORECASE | re.VERBOSE,
)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the Constant nodes that are docstrings (module, class, function)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def sql_violations(source: str, where: str) -> list[str]:
    """Every use of SQL in ``source`` (a module's text), one line each, ``where:line: what``."""
    tree = ast.parse(source, where)
    docs = _docstrings(tree)
    bad = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            bad += [f"{where}:{line}: imports {a.name}" for a in node.names if a.name.split(".")[0] in SQL_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in SQL_MODULES:
            bad.append(f"{where}:{line}: imports from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
            bad.append(f"{where}:{line}: calls .{node.func.attr}()")
        elif isinstance(node, ast.Attribute) and node.attr == "db":
            owner = node.value
            if (isinstance(owner, ast.Attribute) and owner.attr == "state") or (
                isinstance(owner, ast.Name) and owner.id == "state"
            ):
                bad.append(f"{where}:{line}: reaches the raw connection (state.db)")
        elif isinstance(node, ast.JoinedStr):  # an f-string: its text with each {…} read as a name
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
            if m := SQL_TEXT.search(text):
                bad.append(f"{where}:{line}: SQL text {m.group(0)!r}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if m := SQL_TEXT.search(node.value):
                bad.append(f"{where}:{line}: SQL text {m.group(0)!r}")
    return bad


def _modules() -> list[Path]:
    files = [p for top in SCANNED for p in sorted((ROOT / top).rglob("*.py"))]
    return [p for p in files if DATA_LAYER not in p.parents]


def violations() -> list[str]:
    bad = []
    for path in _modules():
        bad += sql_violations(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    return bad


def test_sql_runs_only_in_the_data_layer() -> None:
    assert violations() == []


def test_the_data_layer_exists_and_is_scanned_around() -> None:
    """The rule must not pass vacuously: the data layer holds the SQL, and the scan sees modules."""
    assert (DATA_LAYER / "__init__.py").is_file()
    inside = "".join(p.read_text("utf-8") for p in DATA_LAYER.rglob("*.py"))
    assert "import sqlite_utils" in inside and "select " in inside
    assert len(_modules()) > 50


@pytest.mark.parametrize(
    "planted",
    [
        "import sqlite3\n",
        "from sqlite_utils import Database\n",
        "def f(site):\n    return site.state.db['nodes'].count\n",
        "def f(conn):\n    return conn.execute('pragma user_version')\n",
        "def f(db):\n    return list(db.query('x'))\n",
        "SQL = 'select name, arch from nodes where arch = ?'\n",
        'SQL = f"select count(*) from {table} where x = ?"\n',
        "SQL = 'INSERT INTO audit(time) VALUES (?)'\n",
        "SQL = 'insert or ignore into channel_events(channel) values (?)'\n",
        "SQL = 'update builds set status = ? where id = ?'\n",
        "SQL = 'DELETE FROM releases WHERE id = ?'\n",
        "SQL = 'CREATE TABLE t (x)'\n",
    ],
)
def test_a_planted_violation_is_found(planted: str) -> None:
    assert sql_violations(planted, "planted.py")


@pytest.mark.parametrize(
    "prose",
    [
        '"""Select a channel, then update its pointer; delete the build dir from disk."""\n',
        "MSG = 'select a channel with a current release'\n",
        "MSG = 'DELETE a derived file on the primary'\n",
        "MSG = 'update the index after the release'\n",
        "def f(screen):\n    return screen.query_one('#status')\n",
    ],
)
def test_prose_is_not_sql(prose: str) -> None:
    assert sql_violations(prose, "prose.py") == []
