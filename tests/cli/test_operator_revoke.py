"""Issue 18 item 3: revoking the key that signed the current pointers (and releases) says what it
would break and offers to re-sign (``--resign``); ``--force`` revokes anyway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import init_site, make_tree, run_console, run_json


@pytest.fixture
def rotated(tmp_path: Path) -> tuple[Path, str, str, list[str]]:
    """A site whose releases and two channels are signed by the first key; a second key signs now."""
    s = init_site(tmp_path / "site")
    ids = []
    for v in ("a", "b"):
        tree = make_tree(tmp_path / v, {"lib/x.py": v})
        ids.append(run_json(s, "publish", "--name", "app", "--label", v, "--image", f"x86_64={tree}")["release_id"])
    run_json(s, "promote", ids[0], "--channel", "production", "--create")
    run_json(s, "promote", ids[1], "--channel", "testing", "--create")
    old = run_json(s, "keys", "list")[0]["id"]
    new = run_json(s, "keys", "generate")["id"]
    return s, old, new, ids


def test_revoke_that_would_break_channels_and_releases_refuses_and_says_what(rotated):
    s, old, new, ids = rotated
    proc = run_console(s, "keys", "revoke", old[7:19], "--json", check=2)
    first, second = sorted(ids)
    msg = (
        f"revoking key {old[:23]} would leave channel(s) production, testing and 2 release(s) "
        f"({first[7:19]}, {second[7:19]}) without enough trusted signatures (exit 4 for this console "
        f"and the nodes): pass --resign to re-sign them with the signing key {new[:23]} first, "
        "or --force to revoke anyway"
    )
    assert json.loads(proc.stdout) == {"error": msg, "exit_code": 2}
    assert proc.stderr == f"console: {msg}\n"
    assert [k["state"] for k in run_json(s, "keys", "list")] == ["trusted", "signing"]
    assert run_console(s, "verify").returncode == 0


def test_revoke_with_resign_keeps_everything_verifiable(rotated):
    s, old, new, ids = rotated
    doc = run_json(s, "keys", "revoke", old[7:19], "--resign")
    assert doc == {
        "id": old,
        "revoked": True,
        "resigned": sorted(ids),
        "refreshed": [{"channel": "production", "version": 2}, {"channel": "testing", "version": 2}],
    }
    assert [k["state"] for k in run_json(s, "keys", "list")] == ["revoked", "signing"]
    assert run_json(s, "verify", "--deep")["ok"] is True
    status = {c["channel"]: c for c in run_json(s, "channels")}
    assert {c: (r["release"], r["problem"], r["signed_by"]) for c, r in status.items()} == {
        "production": (ids[0], "", [new]),
        "testing": (ids[1], "", [new]),
    }
    audit = run_json(s, "audit")
    assert [r["verb"] for r in audit[:4]] == ["keys revoke", "refresh", "refresh", "keys resign"]


def test_revoke_text_with_resign(rotated):
    s, old, new, ids = rotated
    out = run_console(s, "keys", "revoke", old[7:19], "--resign", check=0).stdout
    assert out.splitlines() == [
        f"re-signed 2 release(s) with {new[:23]}",
        "refreshed production (version 2), testing (version 2)",
        f"revoked key {old}",
    ]


def test_revoke_force_breaks_as_told(rotated):
    s, old, _, _ = rotated
    proc = run_console(s, "keys", "revoke", old[7:19], "--force", check=0)
    assert proc.stdout == f"revoked key {old}\n"
    assert proc.stderr.startswith(f"console: warning: revoked key {old[:23]}: channel(s) production, testing ")
    assert run_console(s, "verify").returncode == 4


def test_revoke_of_a_key_nothing_depends_on_needs_no_flag(rotated):
    s, old, new, _ = rotated
    run_json(s, "keys", "revoke", old[7:19], "--resign")
    third = run_json(s, "keys", "generate")["id"]
    run_json(s, "keys", "resign", "--all")
    run_json(s, "refresh")
    assert run_json(s, "keys", "revoke", new[7:19]) == {"id": new, "revoked": True}
    assert third != new
