"""Issue 18 item 2: a channel is created explicitly; an unknown channel name is bad input that
lists the known ones (a typo such as ``--channel prodution`` never creates a channel)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from helpers import init_site, make_tree, run_console, run_json


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, str, str]:
    s = init_site(tmp_path / "site")
    ids = []
    for v in ("a", "b"):
        tree = make_tree(tmp_path / v, {"lib/x.py": v})
        ids.append(run_json(s, "publish", "--name", "app", "--label", v, "--image", f"x86_64={tree}")["release_id"])
    return s, ids[0], ids[1]


def audit(site: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(site / "state.db") as db:
        return db.execute("select verb, target, outcome from audit order by id").fetchall()


def test_promote_to_a_channel_the_site_does_not_have_is_bad_input(site):
    s, a, _ = site
    proc = run_console(s, "promote", a, "--channel", "production", "--json", check=2)
    msg = (
        "unknown channel 'production' (the site has no channels yet); to create it: "
        f"'console promote {a[7:19]} --channel production --create' or 'console channels create production {a[7:19]}'"
    )
    assert json.loads(proc.stdout) == {"error": msg, "exit_code": 2}
    assert proc.stderr == f"console: {msg}\n"
    assert not (s / "store" / "channels" / "production.json").exists()
    assert audit(s)[-1] == ("promote", "production", f"error: {msg}")


def test_a_typo_lists_the_known_channels_and_creates_nothing(site):
    s, a, b = site
    assert run_json(s, "promote", a, "--channel", "production", "--create")["version"] == 1
    assert run_json(s, "promote", a, "--channel", "testing", "--create")["version"] == 1
    proc = run_console(s, "promote", b, "--channel", "prodution", check=2)
    assert proc.stdout == ""
    assert proc.stderr == (
        "console: unknown channel 'prodution' (known: production, testing); to create it: "
        f"'console promote {b[7:19]} --channel prodution --create' or 'console channels create prodution {b[7:19]}'\n"
    )
    assert [c["channel"] for c in run_json(s, "channels")] == ["production", "testing"]
    assert not (s / "store" / "channels" / "prodution").exists()


def test_create_on_an_existing_channel_is_an_ordinary_promote(site):
    s, a, b = site
    run_json(s, "promote", a, "--channel", "production", "--create")
    doc = run_json(s, "promote", b, "--channel", "production", "--create")
    assert doc == {"channel": "production", "version": 2, "release": b, "previous": a, "action": "promote"}
    assert run_json(s, "promote", a, "--channel", "production")["version"] == 3


def test_channels_create(site):
    s, a, b = site
    doc = run_json(s, "channels", "create", "canary", a[7:15], "--reason", "first canary")
    assert doc == {"channel": "canary", "version": 1, "release": a, "previous": None, "action": "promote"}
    hist = run_json(s, "history", "--channel", "canary")
    assert [(h["version"], h["reason"]) for h in hist] == [(1, "first canary")]
    assert audit(s)[-1] == ("channels create", "canary", "ok")
    proc = run_console(s, "channels", "create", "canary", b, "--json", check=2)
    msg = f"channel 'canary' exists (version 1, {a[7:19]}); use 'console promote {b[7:19]} --channel canary'"
    assert json.loads(proc.stdout) == {"error": msg, "exit_code": 2}
    text = run_console(s, "channels", "create", "edge", b, check=0).stdout
    assert text.startswith(f"edge: created at {b[7:19]} (version 1; expires ")


def test_rollback_and_history_of_an_unknown_channel_name_the_known_ones(site):
    s, a, _ = site
    run_json(s, "promote", a, "--channel", "production", "--create")
    proc = run_console(s, "rollback", "--channel", "prodution", check=2)
    assert proc.stderr == "console: unknown channel 'prodution' (known: production)\n"
    proc = run_console(s, "history", "--channel", "prodution", check=2)
    assert proc.stderr == "console: unknown channel 'prodution' (known: production)\n"
