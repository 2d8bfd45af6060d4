"""Racing channel writers on an HTTP (WebDAV) store, and ``console channels repair`` (issue 12 item 7).

nginx's WebDAV ignores ``If-Match``, so a read-compare-PUT let two writers both issue version N+1:
the current pointer held one writer's bytes, history N+1 the other's, and from then on every
promote and refresh exited 4. Here, against the real nginx fixture:

* the server really ignores conditional PUTs (the reason for the MKCOL claim);
* the wedge, built deterministically the way the race leaves it, is refused cleanly (exit 4, one
  line naming the repair verb), ``channels repair`` shows its plan without writing, and with
  ``--yes`` issues a version above every one seen; then promote, refresh and both kinds of nodes
  (each had accepted one of the two same-numbered pointers) work again;
* two consoles promoting against each other in a loop (bounded by a deadline) each either win or
  get exit 3, and never leave the channel wedged;
* a server without MKCOL gets a one-line refusal and no write.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.clock import format_time
from core.model.digest import canonical_json
from core.trust.signing import CHANNEL_TYPE, load_key, make_envelope

from fixtures.nginx import NginxServer, start_nginx
from helpers import REPO, hydrate, make_tree, run_console, run_json, trust_file

CHANNEL = "production"


def _publish(site: Path, tmp: Path, variant: str) -> str:
    tree = make_tree(tmp / f"tree-{variant}", {"bin/tool": f"#!/bin/sh\necho {variant}\n", f"{variant}.txt": variant})
    doc = run_json(site, "publish", "--name", "demo", "--image", f"x86_64={tree}", "--label", variant)
    return doc["release_id"]  # type: ignore[index]


@pytest.fixture
def two_writers(tmp_path: Path, nginx_server: NginxServer) -> tuple[Path, Path, str, str]:
    """Sites A and B (same key, separate state.db) writing one store through nginx; two releases."""
    a = tmp_path / "a"
    run_console(a, "init", "--store", nginx_server.url, check=0)
    r1 = _publish(a, tmp_path, "one")
    r2 = _publish(a, tmp_path, "two")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    return a, b, r1, r2


def _pointer(site: Path, version: int, release: str, previous: str | None) -> bytes:
    """A validly signed pointer for ``production`` version ``version`` (what the other racer issued)."""
    now = time.time()
    payload = canonical_json(
        {
            "type": "depot-channel",
            "schema": 1,
            "channel": CHANNEL,
            "version": version,
            "release": release,
            "previous": previous,
            "action": "promote",
            "reason": "the other writer",
            "actor": "b@race",
            "issued": format_time_ts(now),
            "expires": format_time_ts(now + 86400 * 30),
        }
    )
    return make_envelope(CHANNEL_TYPE, payload, [load_key(site / "keys" / "signing.pem")])


def format_time_ts(ts: float) -> str:
    from datetime import UTC, datetime

    return format_time(datetime.fromtimestamp(ts, UTC))


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_nginx_webdav_ignores_conditional_put(nginx_server: NginxServer):
    """Why the store does not rely on If-Match / If-None-Match: nginx writes regardless."""
    url = nginx_server.url + "probe.json"
    with httpx.Client() as c:
        assert c.put(url, content=b"one").status_code == 201
        c.put(url, content=b"two", headers={"If-None-Match": "*"})
        c.put(url, content=b"three", headers={"If-Match": '"no-such-etag"'})
    assert (nginx_server.root / "probe.json").read_bytes() == b"three"


def test_wedged_channel_refuses_cleanly_and_repair_unwedges_it(two_writers, nginx_server, tmp_path):
    a, b, r1, r2 = two_writers
    root = nginx_server.root
    run_json(a, "promote", r1, "--channel", CHANNEL, "--create")
    run_json(a, "promote", r2, "--channel", CHANNEL, "--create")  # A's version 2 -> current and history
    theirs = _pointer(a, 2, r1, r1)  # B's version 2, which also "won" its check
    current = root / "channels" / f"{CHANNEL}.json"
    ours = current.read_bytes()
    trust = trust_file(a)
    node_a, node_b = tmp_path / "node-a", tmp_path / "node-b"
    hydrate(node_a, nginx_server.url, trust)  # accepted A's version 2
    current.write_bytes(theirs)
    hydrate(node_b, nginx_server.url, trust)  # accepted B's version 2 while it was current
    current.write_bytes(ours)  # the race's end state: current = A's, history 2 = B's
    (root / "channels" / CHANNEL / "2.json").write_bytes(theirs)

    for site in (a, b):
        for args in (("promote", r1, "--channel", CHANNEL, "--create"), ("refresh", "--channel", CHANNEL)):
            proc = run_console(site, *args)
            assert proc.returncode == 4, (args, proc.stdout, proc.stderr)
            line = _one_line(proc.stderr)
            assert f"console channels repair {CHANNEL}" in line, line
    assert current.read_bytes() == ours

    # Dry run: the plan, nothing written.
    before = {p: p.read_bytes() for p in (root / "channels").rglob("*") if p.is_file()}
    plan = run_json(a, "channels", "repair", CHANNEL)
    assert plan["repaired"] is False and plan["version"] == 3 and plan["highest_version_seen"] == 2
    assert plan["release"] == r2 and any("two writers issued version 2" in p for p in plan["problems"])
    text = run_console(a, "channels", "repair", CHANNEL, check=0).stdout
    assert "would issue version 3" in text and "--yes" in text
    assert {p: p.read_bytes() for p in (root / "channels").rglob("*") if p.is_file()} == before

    # Repair from the other console (its own marks differ): version 3, signed, history, audit.
    done = run_json(b, "channels", "repair", CHANNEL, "--yes")
    assert done["repaired"] is True and done["version"] == 3 and done["release"] == r2
    new = current.read_bytes()
    assert (root / "channels" / CHANNEL / "3.json").read_bytes() == new
    assert json.loads(run_console(b, "verify", "--json").stdout or "{}") is not None
    with sqlite3.connect(b / "state.db") as db:
        rows = db.execute("select outcome, detail from audit where verb = 'channels repair'").fetchall()
    assert len(rows) == 1 and rows[0][0] == "ok" and json.loads(rows[0][1])["version"] == 3
    assert run_json(b, "channels", "repair", CHANNEL)["action"] == "none"  # healthy now

    # Both nodes (each holding one of the two version-2 pointers) take version 3.
    for node in (node_a, node_b):
        doc = json.loads(hydrate(node, nginx_server.url, trust).stdout)
        assert (doc["version"], doc["release"]) == (3, r2)
    # And both consoles write again.
    assert run_json(a, "promote", r1, "--channel", CHANNEL, "--create")["version"] == 4
    assert run_json(b, "refresh", "--channel", CHANNEL)[0]["version"] == 5  # type: ignore[index]


def test_repair_refuses_without_a_verifiable_release_and_accepts_one_given(two_writers, nginx_server):
    a, _b, r1, _r2 = two_writers
    run_json(a, "promote", r1, "--channel", CHANNEL, "--create")
    current = nginx_server.root / "channels" / f"{CHANNEL}.json"
    current.write_bytes(b"garbage")
    shutil.rmtree(nginx_server.root / "channels" / CHANNEL)
    proc = run_console(a, "channels", "repair", CHANNEL, "--yes")
    assert proc.returncode == 2
    assert "--release" in _one_line(proc.stderr)
    assert current.read_bytes() == b"garbage"
    done = run_json(a, "channels", "repair", CHANNEL, "--release", r1[7:15], "--yes")
    assert done["version"] == 2 and done["release"] == r1
    assert run_json(a, "channels")[0]["problem"] == ""  # type: ignore[index]


#: A writer that promotes in a tight loop through the real CLI entry point (no process start-up
#: between attempts, so two of them overlap for real), until its deadline or its round limit;
#: prints one JSON list of [exit code, stderr] per attempt.
_RACER = """
import contextlib, io, json, sys, time
from console.cli import main
site, channel, deadline, rounds, releases = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
out = []
for n in range(rounds):
    if time.time() > deadline:
        break
    err = io.StringIO()
    args = ["--headless", "--site", site, "--json"]
    args += ["refresh", "--channel", channel] if n % 3 == 2 else ["promote", releases[n % 2], "--channel", channel, "--create"]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except BaseException as exc:  # a traceback is a failure the test reports
            code = f"{type(exc).__name__}: {exc}"
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def _racer(site: Path, deadline: float, *releases: str) -> subprocess.Popen:
    import os

    return subprocess.Popen(
        [sys.executable, "-c", _RACER, str(site), CHANNEL, str(deadline), "40", *releases],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_racing_promotes_over_http_never_wedge(two_writers, nginx_server):
    a, b, r1, r2 = two_writers
    run_json(a, "promote", r1, "--channel", CHANNEL, "--create")
    deadline = time.time() + 20  # each racer stops at its round limit or this deadline
    racers = [_racer(a, deadline, r2, r1), _racer(b, deadline, r1, r2), _racer(b, deadline, r2, r1)]
    results = []
    for p in racers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results += json.loads(out)
    codes = [code for code, _ in results]
    for code, err in results:
        assert code in (0, 3), (code, err)
        if code == 3:
            _one_line(err)
    assert codes.count(0) >= 2
    # Never wedged: history and current agree, and both consoles can still write.
    root = nginx_server.root
    cur = json.loads(run_console(a, "history", "--channel", CHANNEL, "--json", check=0).stdout)
    assert all(r["problem"] == "" for r in cur), cur
    version = cur[-1]["version"]
    assert (root / "channels" / CHANNEL / f"{version}.json").read_bytes() == (
        root / "channels" / f"{CHANNEL}.json"
    ).read_bytes()
    assert [r["version"] for r in cur] == list(range(1, version + 1))
    assert run_json(a, "channels", "repair", CHANNEL)["action"] == "none"
    run_console(a, "refresh", "--channel", CHANNEL, check=0)
    run_console(b, "refresh", "--channel", CHANNEL, check=0)
    locks = root / "locks"
    assert not (locks.exists() and [p for p in locks.iterdir() if p.is_dir()])  # every claim was removed


def test_server_without_mkcol_refuses_channel_writes_in_one_line(tmp_path, monkeypatch):
    import fixtures.nginx as nginx_fixture

    shipped = nginx_fixture.nginx_config

    def without_mkcol(*args, **kwargs):
        return shipped(*args, **kwargs).replace("dav_methods PUT DELETE MKCOL;", "dav_methods PUT DELETE;")

    monkeypatch.setattr(nginx_fixture, "nginx_config", without_mkcol)
    with start_nginx(tmp_path / "nginx") as server:
        local = tmp_path / "local"  # publishes into the served directory (no HTTP write)
        run_console(local, "init", "--store", str(server.root), check=0)
        rid = _publish(local, tmp_path, "one")
        site = tmp_path / "site"
        run_console(site, "init", "--store", server.url, check=0)
        shutil.copy(local / "keys" / "signing.pem", site / "keys" / "signing.pem")
        shutil.copy(local / "console.toml", site / "console.toml")
        (site / "console.toml").write_text((site / "console.toml").read_text().replace(str(server.root), server.url))
        proc = run_console(site, "promote", rid, "--channel", CHANNEL, "--create")
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert "MKCOL" in _one_line(proc.stderr)
        assert not (server.root / "channels" / f"{CHANNEL}.json").exists()
        assert not (server.root / "channels" / CHANNEL).exists()
