"""Staged rollout over the loopback sshd fleet (issue 16 part 3), with the real node console.

Six nodes (node01..05 haswell, zen3node), each with its own node root and name (the remote
console wrapper stands in for each node's own configuration: ``$DEPOT_NODE_ROOT`` and
``$DEPOT_NODE_NAME`` per ssh address). The new release's zen3 image lacks the package, so its
smoke fails on zen3node only: the rollout stops at the canary stage; ``abort`` brings every node
back on its next hydrate; nodes outside the canary never fetch the new release.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from core.site.rollout import parse_stages
from core.trust.pointers import Audience, node_bucket

from fixtures.sshd import PLAIN_NODES, SPECIAL_NODES, SshdServer
from helpers import REPO, init_site, make_tree, run_console, set_config

pytestmark = pytest.mark.integration

NODES = [*PLAIN_NODES, "zen3node"]
ADDRESS = {**PLAIN_NODES, "zen3node": SPECIAL_NODES["zen3node"]}
WRAPPER = """#!/bin/sh
addr=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
case "$addr" in
{cases}
  *) echo "unknown node address $addr" >&2; exit 97;;
esac
export DEPOT_NODE_NAME="$name" DEPOT_NODE_ROOT="{roots}/$name" XDG_CONFIG_HOME="{roots}/.config"
PYTHONPATH={repo} exec {python} -m console.cli "$@"
"""


def publish(site: Path, tmp: Path, name: str, images: dict[str, bool]) -> str:
    """A release whose image ``arch`` has the package when ``images[arch]``; smoke imports it."""
    args = []
    for arch, has_pkg in images.items():
        files = {"lib/python/pkg/__init__.py": f"NAME = {name!r}\n"} if has_pkg else {"lib/python/other.py": "\n"}
        make_tree(tmp / name / arch, files)
        args += ["--image", f"{arch}={tmp / name / arch}"]
    proc = run_console(
        site,
        "publish",
        "--name",
        "pkg",
        "--label",
        name,
        *args,
        "--smoke",
        "python3 -c 'import pkg'",
        "--json",
        check=0,
    )
    return json.loads(proc.stdout)["release_id"]


def fleet(site: Path, *extra: str) -> dict:
    proc = run_console(
        site, "fleet", "check", ",".join(NODES), "--hydrate", "--smoke", "--channel", "production", "--json", *extra
    )
    doc = json.loads(proc.stdout)
    doc["exit"] = proc.returncode
    return doc


def current_release(roots: Path, node: str) -> str:
    target = os.readlink(roots / node / "current" / "production")
    return next(part for part in Path(target).parts if len(part) == 64)


@pytest.fixture
def fleet_site(sshd: SshdServer, tmp_path: Path) -> dict:
    site = init_site(tmp_path / "site")
    roots = tmp_path / "nodes"
    roots.mkdir()
    (roots / ".config").mkdir()
    cases = "\n".join(f"  {addr}) name={node};;" for node, addr in ADDRESS.items())
    wrapper = tmp_path / "node-console"
    wrapper.write_text(WRAPPER.format(cases=cases, roots=roots, repo=REPO, python=sys.executable))
    wrapper.chmod(0o755)
    trust = tmp_path / "trust.json"
    trust.write_text(run_console(site, "keys", "export", check=0).stdout)
    set_config(site, "fleet", "ssh_config", sshd.config_path)
    set_config(site, "fleet", "trust", str(trust))
    set_config(site, "node", "remote_console", str(wrapper))
    old = publish(site, tmp_path, "old", {"x86_64": True, "zen3": True})
    new = publish(site, tmp_path, "new", {"x86_64": True, "zen3": False})
    run_console(site, "promote", old, "--channel", "production", "--create", check=0)
    doc = fleet(site)
    assert doc["exit"] == 0, doc
    assert {n["name"]: n["smoke"]["release"] for n in doc["nodes"]} == dict.fromkeys(NODES, old)
    return {"site": site, "roots": roots, "old": old, "new": new}


def test_failing_node_type_stops_at_canary_and_abort_restores_every_node(fleet_site: dict) -> None:
    site, roots, old, new = fleet_site["site"], fleet_site["roots"], fleet_site["old"], fleet_site["new"]
    started = json.loads(
        run_console(
            site, "rollout", "start", new[7:19], "--channel", "production",
            "--canary", "node01,zen3node", "--then", "50%", "--then", "100%", "--json", check=0,
        ).stdout
    )  # fmt: skip
    assert [s["name"] for s in started["stages"]] == ["canary", "50%", "100%"]
    assert started["stages"][0]["nodes"] == ["node01", "zen3node"] and started["base"] == old

    doc = fleet(site)
    assert doc["exit"] == 1
    by = {n["name"]: n for n in doc["nodes"]}
    assert {n: by[n]["smoke"]["release"] for n in NODES} == {
        **dict.fromkeys(NODES, old),
        "node01": new,
        "zen3node": new,
    }
    assert by["node01"]["status"] == "ok" and by["node01"]["smoke"]["image"] == "x86_64"
    assert by["zen3node"]["status"] == "remote-failed" and by["zen3node"]["smoke"]["image"] == "zen3"

    proc = run_console(site, "rollout", "next", "--channel", "production")
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"console: rollout of {new[7:19]} on production stays at stage canary: 2 unmet check(s): ")
    assert f"smoke-every-arch: no passing smoke of {new[7:19]} on a node of zen3 (image zen3)" in line
    assert f"no-failed-smoke: smoke of {new[7:19]} failed on zen3node" in line
    [status] = json.loads(run_console(site, "rollout", "status", "--json", check=0).stdout)
    assert (status["state"], status["stage_name"], status["stage_nodes"]) == (
        "running",
        "canary",
        ["node01", "zen3node"],
    )
    assert status["arches"]["zen3"] == {"ok": 0, "failed": 1, "wall_s": None}
    assert status["arches"]["haswell"]["ok"] == 1
    assert any(b.startswith("smoke-every-arch: ") for b in status["blocking"])
    pointer = json.loads(run_console(site, "channels", "--json", check=0).stdout)
    assert {r["channel"]: r["release"] for r in pointer} == {"production": old, "production.rollout": new}

    aborted = json.loads(run_console(site, "rollout", "abort", "--channel", "production", "--json", check=0).stdout)
    assert aborted["state"] == "aborted"
    doc = fleet(site)
    assert doc["exit"] == 0, doc
    assert {n["name"]: n["smoke"]["release"] for n in doc["nodes"]} == dict.fromkeys(NODES, old)
    assert {n: current_release(roots, n) for n in NODES} == dict.fromkeys(NODES, old[7:])
    # nodes outside the canary never saw the canary release: not fetched, not in their history
    for n in ("node02", "node03", "node04", "node05"):
        assert not (roots / n / "releases" / new[7:]).exists()
        state = json.loads((roots / n / "state.json").read_text())
        assert {h["release"] for h in state["history"]} == {old}
    canary_state = json.loads((roots / "node01" / "state.json").read_text())
    assert [h["release"] for h in canary_state["history"]] == [old, new, old]
    proc = run_console(site, "rollout", "next", "--channel", "production")
    assert (proc.returncode, proc.stderr) == (2, "console: no rollout is running on channel production\n")


def test_passing_canary_advances_and_the_last_stage_promotes_the_channel(fleet_site: dict) -> None:
    site, old = fleet_site["site"], fleet_site["old"]
    good = publish(site, fleet_site["roots"].parent, "good", {"x86_64": True, "zen3": True})
    run_console(site, "rollout", "start", good, "--channel", "production", "--canary", "node02,zen3node", check=0)
    proc = run_console(site, "rollout", "next", "--channel", "production")
    assert proc.returncode == 1 and "no passing smoke of" in proc.stderr  # no evidence yet: nothing advances
    proc = run_console(site, "rollout", "next", "--channel", "production", "--auto", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["state"], doc["stage_name"]) == ("done", "100%")
    channels = {r["channel"]: r for r in json.loads(run_console(site, "channels", "--json", check=0).stdout)}
    assert (channels["production"]["release"], channels["production"]["version"]) == (good, 2)
    assert channels["production.rollout"]["release"] == good and good != old
    doc = fleet(site)
    assert {n["name"]: n["smoke"]["release"] for n in doc["nodes"]} == dict.fromkeys(NODES, good)


def test_stage_audiences_are_nested_and_stable() -> None:
    base = "sha256:" + "0" * 64
    names = [f"n{i:04d}" for i in range(2000)]
    quarter = Audience(base, ("x",), 25.0, "production")
    half = Audience(base, ("x",), 50.0, "production")
    q = {n for n in names if quarter.includes(n)}
    h = {n for n in names if half.includes(n)}
    assert q < h and 400 < len(q) < 600 and 900 < len(h) < 1100
    assert quarter.includes("x") and node_bucket("production", "n0001") == node_bucket("production", "n0001")
    assert [s.name for s in parse_stages(["b", "a"], ["25%"])] == ["canary", "25%", "100%"]
    with pytest.raises(Exception, match="larger than the one before"):
        parse_stages(["a"], ["50%", "25%"])


def test_refresh_keeps_a_stage_pointers_audience(tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    rids = []
    for name in ("a", "b"):
        make_tree(tmp_path / name, {"lib/a.py": name})
        proc = run_console(site, "publish", "--name", "p", "--image", f"x86_64={tmp_path / name}", "--json", check=0)
        rids.append(json.loads(proc.stdout)["release_id"])
    run_console(site, "promote", rids[0], "--channel", "production", "--create", check=0)
    run_console(site, "rollout", "start", rids[1], "--channel", "production", "--canary", "n1", check=0)
    run_console(site, "refresh", "--channel", "production.rollout", check=0)
    store = site / "store" / "channels"
    from core.trust.pointers import parse_pointer_payload, pointer_envelope

    data = (store / "production.rollout.json").read_bytes()
    ptr = parse_pointer_payload(pointer_envelope(data, "x").payload, "", "x")
    assert (ptr.version, ptr.action, ptr.release) == (2, "refresh", rids[1])
    assert ptr.audience == Audience(rids[0], ("n1",), 0.0, "production")
