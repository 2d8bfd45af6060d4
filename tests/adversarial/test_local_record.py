"""The store is the truth; ``state.db`` is the local record (issue 12 item 10, and a dropped table, item 11).

A promote whose pointer swap succeeded but whose database write then met a locked ``state.db``
printed a traceback and exit 1, the pointer live, no audit row, no event. Now: the verb reports
what happened (exit 0, the new version on stdout, one warning line on stderr), the record is
deferred to ``state.pending.jsonl``, and the next command (any verb) catches the database up from
the store. A failed operation meeting a locked database still gets its audit row, later. A table
dropped from ``state.db`` is recreated at open with one warning line, and the store-backed ones are
rebuilt from the store.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.trust.signing import parse_envelope

from helpers import init_site, make_tree, run_console, run_json, set_config

CHANNEL = "production"
_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Another process holding ``BEGIN EXCLUSIVE`` on ``db`` until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, str, str]:
    s = init_site(tmp_path / "site")
    set_config(s, "site", "busy_timeout_s", 0.3)
    ids = []
    for v in ("one", "two"):
        tree = make_tree(tmp_path / v, {f"{v}.txt": v})
        ids.append(run_json(s, "publish", "--name", "demo", "--image", f"x86_64={tree}")["release_id"])  # type: ignore[index]
    run_json(s, "promote", ids[0], "--channel", CHANNEL, "--create")
    return s, ids[0], ids[1]


def _rows(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def _pointer(site: Path) -> dict:
    env = parse_envelope((site / "store" / "channels" / f"{CHANNEL}.json").read_bytes())
    return json.loads(env.payload)


def test_promote_into_a_locked_database_reports_what_happened_and_catches_up(site):
    s, _r1, r2 = site
    db = s / "state.db"
    with exclusive_lock(db):
        proc = run_console(s, "promote", r2, "--channel", CHANNEL, "--create", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["version"] == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("console: warning: ") and "locked" in lines[0]
        assert f"{CHANNEL} version 2 is live in the store but the local record is behind" in lines[0]
        pointer = _pointer(s)
        assert (pointer["version"], pointer["release"]) == (2, r2)
        # Nothing of it reached the database yet (reads work while another process writes).
        assert _rows(db, "select version from channel_events where channel = ?", CHANNEL) == [(1,)]
        assert _rows(db, "select version from channel_marks where channel = ?", CHANNEL) == [(1,)]
        assert _rows(db, "select count(*) from audit where verb = 'promote'") == [(1,)]
        assert (s / "state.pending.jsonl").exists()

        # A failed operation meeting the lock: its audit row is deferred too, not lost.
        bad = run_console(s, "promote", "ffff", "--channel", CHANNEL, "--create")
        assert bad.returncode == 2
        assert [ln for ln in bad.stderr.splitlines() if not ln.startswith("console: warning:")] == [
            bad.stderr.splitlines()[-1]
        ]
    # Any verb afterwards catches the record up from the store and the pending file.
    run_console(s, "releases", check=0)
    assert _rows(db, "select version, release from channel_events where channel = ? order by version", CHANNEL) == [
        (1, _rows(db, "select release from channel_events where version = 1")[0][0]),
        (2, r2),
    ]
    assert _rows(db, "select version from channel_marks where channel = ?", CHANNEL) == [(2,)]
    audit = _rows(db, "select verb, target, outcome, detail from audit where verb = 'promote' order by id")
    assert len(audit) == 3
    assert audit[1][:3] == ("promote", CHANNEL, "ok") and "locked" in json.loads(audit[1][3])["deferred"]
    assert json.loads(audit[1][3])["version"] == 2
    assert audit[2][2].startswith("error: ") and "deferred" in json.loads(audit[2][3])
    assert not (s / "state.pending.jsonl").exists()
    assert run_json(s, "promote", r2, "--channel", CHANNEL, "--create")["action"] == "none"  # type: ignore[index]


def test_refresh_and_channels_under_a_lock_never_trace(site):
    s, _r1, _r2 = site
    with exclusive_lock(s / "state.db"):
        proc = run_console(s, "refresh", "--channel", CHANNEL, "--json")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert json.loads(proc.stdout)[0]["version"] == 2
        assert len(proc.stderr.strip().splitlines()) == 1
        proc = run_console(s, "channels")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    run_console(s, "channels", check=0)
    assert _rows(s / "state.db", "select version from channel_marks") == [(2,)]


@pytest.mark.parametrize("table", ["releases", "channel_marks", "channel_events", "audit", "nodes", "builds"])
def test_dropped_table_is_recreated_with_one_line(site, table):
    s, r1, r2 = site
    db = s / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"drop table {table}")
    proc = run_console(s, "releases", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(db) in lines[0] and table in lines[0] and "recreated" in lines[0]
    assert {r["id"] for r in json.loads(proc.stdout)} == {r1, r2}
    assert _rows(db, "select count(*) from sqlite_master where type = 'table' and name = ?", table) == [(1,)]
    if table in ("channel_marks", "channel_events"):  # rebuilt from the store
        assert _rows(db, "select version from channel_marks") == [(1,)]
        assert _rows(db, "select version from channel_events") == [(1,)]
    run_json(s, "promote", r2, "--channel", CHANNEL, "--create")
    assert run_console(s, "channels").stderr == ""


def test_table_dropped_while_running_is_one_line_exit_2(site):
    """A table gone after open (another process dropped it): one line naming state.db and the recovery."""
    s, _r1, _r2 = site
    code = f"""
import sqlite3, sys
from core.site.site import Site
site = Site({str(s)!r})
sqlite3.connect({str(s / "state.db")!r}).execute("drop table nodes")
from console.cli import report
from console.context import Context
import argparse
try:
    site.state.nodes.rows()
except Exception as exc:
    print(type(exc).__mro__[1].__name__, exc.exit_code, exc, sep="|")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    kind, exit_code, message = out.strip().split("|")
    assert (kind, exit_code) == ("StateDamaged", "2")
    assert "state.db is damaged: table nodes is missing" in message and "run the command again" in message


def test_the_table_list_checked_at_open_is_what_the_migrations_make():
    import sqlite_utils

    from core.site.db.schema import MIGRATIONS, TABLES

    db = sqlite_utils.Database(memory=True)
    for m in MIGRATIONS:
        m(db)
    assert set(db.table_names()) == TABLES
