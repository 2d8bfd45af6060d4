"""Issue 18 item 10: a CLI publish audits the release id as its target (as the demo does), and the
audit log reads headless: ``console audit [--since WHEN] [--verb VERB] [--json]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import make_tree, run_console, run_json


def at(when: str) -> dict[str, str]:
    return {"DEPOT_CONSOLE_NOW": when, "DEPOT_ACTOR": "ops@console"}


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, str]:
    s = tmp_path / "site"
    run_console(s, "init", check=0, env=at("2026-03-01T10:00:00Z"))
    tree = make_tree(tmp_path / "t", {"a.py": "a"})
    rid = run_json(
        s, "publish", "--name", "app", "--label", "1", "--image", f"x86_64={tree}", env=at("2026-03-01T11:00:00Z")
    )["release_id"]
    run_json(s, "promote", rid, "--channel", "production", "--create", "--reason", "go", env=at("2026-03-02T09:00:00Z"))
    run_console(s, "promote", rid, "--channel", "prodution", check=2, env=at("2026-03-02T09:30:00Z"))
    return s, rid


def test_publish_audits_the_release_id(site):
    s, rid = site
    rows = run_json(s, "audit", "--verb", "publish")
    assert [(r["verb"], r["target"], r["outcome"]) for r in rows] == [("publish", rid, "ok")]
    assert rows[0]["detail"]["name"] == "app" and rows[0]["detail"]["release"] == rid


def test_audit_json_newest_first(site):
    s, rid = site
    rows = run_json(s, "audit")
    assert [(r["time"], r["actor"], r["verb"], r["target"]) for r in rows] == [
        ("2026-03-02T09:30:00Z", "ops@console", "promote", "prodution"),
        ("2026-03-02T09:00:00Z", "ops@console", "promote", "production"),
        ("2026-03-01T11:00:00Z", "ops@console", "publish", rid),
        ("2026-03-01T10:00:00Z", "ops@console", "init", str(s)),
    ]
    assert rows[0]["outcome"].startswith("error: unknown channel 'prodution' (known: production)")
    assert set(rows[0]) == {"id", "time", "actor", "verb", "target", "outcome", "detail"}


def test_audit_since_and_verb(site):
    s, rid = site
    since = run_json(s, "audit", "--since", "2026-03-02T00:00:00Z")
    assert [r["time"] for r in since] == ["2026-03-02T09:30:00Z", "2026-03-02T09:00:00Z"]
    day = run_json(s, "audit", "--since", "2026-03-02")
    assert day == since
    ago = run_json(s, "audit", "--since", "45m", env=at("2026-03-02T10:00:00Z"))
    assert [r["time"] for r in ago] == ["2026-03-02T09:30:00Z"]
    assert run_json(s, "audit", "--since", "1d", env=at("2026-03-03T08:00:00Z")) == day
    assert [r["verb"] for r in run_json(s, "audit", "--verb", "promote")] == ["promote", "promote"]
    assert run_json(s, "audit", "--verb", "gc") == []


def test_audit_text(site):
    s, rid = site
    text = run_console(s, "audit", "--verb", "publish", check=0).stdout
    assert text.splitlines() == [
        "TIME                  ACTOR        VERB     TARGET" + " " * (len(rid) - 6 + 2) + "OUTCOME",
        f"2026-03-01T11:00:00Z  ops@console  publish  {rid}  ok",
    ]
    assert run_console(s, "audit", "--verb", "gc", check=0).stdout == "no audit rows\n"


def test_audit_bad_since(site):
    s, _ = site
    proc = run_console(s, "audit", "--since", "yesterday", "--json", check=2)
    msg = "--since 'yesterday': give a time (2026-03-01, 2026-03-01T10:00:00Z) or an age (30m, 2h, 7d)"
    assert json.loads(proc.stdout) == {"error": msg, "exit_code": 2}
