"""Channel policies (issue 16 part 1): ``[channels.<name>]``, ``policy show``, promote gated on evidence.

The evidence is what fleet checks record (``nodes`` and ``smoke_runs`` rows, written here through
the database layer as ``fleet check`` writes them) and the signed pointer history of the store.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from core.site.db import State
from tests.helpers import init_site, make_tree, run_console, run_json

T0 = "2026-11-20T12:00:00Z"
LATER = "2026-11-21T12:00:00Z"  # 24 h after T0


def publish(site: Path, tmp: Path, name: str, images: tuple[str, ...]) -> str:
    args = []
    for arch in images:
        make_tree(tmp / name / arch, {"lib/a.py": f"{name} {arch}\n"})
        args += ["--image", f"{arch}={tmp / name / arch}"]
    return run_json(site, "publish", "--name", "pkg", *args)["release_id"]


def write_policy(site: Path, channel: str, body: str) -> None:
    with (site / "console.toml").open("a") as fh:
        fh.write(f"\n[channels.{channel}]\n{body}\n")


def add_nodes(site: Path, nodes: dict[str, str]) -> None:
    state = State(site / "state.db")
    state.nodes.upsert([{"name": n, "arch": a, "status": "ok", "detail": ""} for n, a in nodes.items()])
    state.close()


def add_smoke(site: Path, runs: list[dict]) -> None:
    state = State(site / "state.db")
    base = {"ok": 1, "wall_s": 1.0, "time": T0, "detail": "ok: smoke ok", "rejected": 0, "fingerprint": None}
    state.smoke_runs.insert([{**base, **r} for r in runs])
    state.close()


def audit(site: Path, verb: str) -> list[dict]:
    with sqlite3.connect(site / "state.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("select * from audit where verb = ? order by id", [verb])]


def channel_version(site: Path, channel: str) -> int:
    rows = run_json(site, "channels")
    return next(r["version"] for r in rows if r["channel"] == channel)


FP = json.dumps({"modules": [["pkg", "sha256:1"]], "digest": "sha256:" + "a" * 64})
FP_ODD = json.dumps({"modules": [["pkg", "sha256:2"]], "digest": "sha256:" + "b" * 64})


@pytest.fixture
def gated(tmp_path: Path) -> dict:
    """production carries OLD (x86_64 only); NEW has x86_64 + zen3 images; the inventory has
    haswell (served by x86_64) and zen3 nodes; a policy requiring every check."""
    env = {"DEPOT_CONSOLE_NOW": T0}
    site = init_site(tmp_path / "site")
    old = publish(site, tmp_path, "old", ("x86_64",))
    new = publish(site, tmp_path, "new", ("x86_64", "zen3"))
    run_console(site, "promote", old, "--channel", "production", "--create", env=env, check=0)
    run_console(site, "promote", new, "--channel", "testing", "--create", env=env, check=0)
    write_policy(
        site,
        "production",
        'require = ["smoke-every-arch", "no-rejected-caches", "same-fingerprint", "startup", "soak"]\n'
        'startup_margin = 0.2\nsoak_hours = 12\noverride = ["soak", "startup"]\ncanary = "n[1-2]"',
    )
    add_nodes(site, {"n1": "haswell", "n2": "haswell", "z1": "zen3"})
    return {"site": site, "old": old, "new": new, "tmp": tmp_path}


def test_promote_refused_names_every_unmet_check_and_issues_nothing(gated: dict) -> None:
    site, old, new = gated["site"], gated["old"], gated["new"]
    add_smoke(
        site,
        [
            {"node": "n1", "release": old, "image": "x86_64", "wall_s": 1.0},
            {"node": "n1", "release": new, "image": "x86_64", "wall_s": 2.0, "fingerprint": FP},
            {"node": "n2", "release": new, "image": "x86_64", "wall_s": 2.0, "fingerprint": FP_ODD},
            {"node": "z1", "release": new, "image": "zen3", "ok": 0, "rejected": 2, "detail": "remote-failed"},
        ],
    )
    proc = run_console(site, "promote", new[7:19], "--channel", "production", env={"DEPOT_CONSOLE_NOW": T0})
    assert proc.returncode == 1, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"console: promote of {new[7:19]} onto production refused: 5 unmet check(s): ")
    for expected in (
        f"smoke-every-arch: no passing smoke of {new[7:19]} on a node of zen3 (image zen3)",
        f"no-rejected-caches: the runtime rejected cache files of {new[7:19]} on z1",
        "same-fingerprint: module fingerprints differ across nodes of one image: ",
        f"startup: start-up slower than the current release {old[7:19]} by more than 20%: haswell 2.00s vs 1.00s (+100%)",
        f"soak: {new[7:19]} has been on testing for 0.0 h of the 12 h required",
        "(--override REASON may waive: startup, soak)",
    ):
        assert expected in line, (expected, line)
    assert channel_version(site, "production") == 1
    assert not (site / "store" / "channels" / "production" / "2.json").exists()
    [row] = audit(site, "promote")[-1:]
    assert row["outcome"].startswith("error: promote of ") and "5 unmet check(s)" in row["outcome"]


def test_promote_passes_when_the_evidence_is_there(gated: dict) -> None:
    site, old, new = gated["site"], gated["old"], gated["new"]
    add_smoke(
        site,
        [
            {"node": "n1", "release": old, "image": "x86_64", "wall_s": 1.0},
            {"node": "n1", "release": new, "image": "x86_64", "wall_s": 1.1, "fingerprint": FP},
            {"node": "n2", "release": new, "image": "x86_64", "wall_s": 1.1, "fingerprint": FP},
            {"node": "z1", "release": new, "image": "zen3", "wall_s": 0.9},
        ],
    )
    check = run_console(
        site, "policy", "check", new, "--channel", "production", "--json", env={"DEPOT_CONSOLE_NOW": T0}
    )
    assert check.returncode == 1 and json.loads(check.stdout)["unmet"] == ["soak"]
    doc = run_json(site, "promote", new, "--channel", "production", env={"DEPOT_CONSOLE_NOW": LATER})
    assert (doc["version"], doc["release"], doc["action"]) == (2, new, "promote")


def test_override_is_allowed_where_the_policy_permits_audited_and_in_the_pointer(gated: dict) -> None:
    site, old, new = gated["site"], gated["old"], gated["new"]
    add_smoke(
        site,
        [
            {"node": "n1", "release": old, "image": "x86_64", "wall_s": 1.0},
            {"node": "n1", "release": new, "image": "x86_64", "wall_s": 3.0},
            {"node": "z1", "release": new, "image": "zen3", "wall_s": 1.0},
        ],
    )
    env = {"DEPOT_CONSOLE_NOW": T0}
    doc = run_json(
        site, "promote", new, "--channel", "production", "--reason", "CVE fix", "--override", "security fix", env=env
    )
    assert doc["version"] == 2
    [ptr] = [r for r in run_json(site, "history", "--channel", "production") if r["version"] == 2]
    assert ptr["reason"] == "CVE fix; override (startup, soak): security fix"
    row = audit(site, "promote")[-1]
    detail = json.loads(row["detail"])
    assert row["outcome"] == "ok"
    assert (detail["override"], detail["waived"]) == ("security fix", ["startup", "soak"])


def test_override_cannot_waive_what_the_policy_does_not_permit(gated: dict) -> None:
    site, new = gated["site"], gated["new"]
    env = {"DEPOT_CONSOLE_NOW": T0}
    proc = run_console(site, "promote", new, "--channel", "production", "--override", "trust me", env=env)
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert "2 unmet check(s): smoke-every-arch: " in line and "; soak: " in line
    assert line.endswith("(the policy of production lets --override waive none of: smoke-every-arch)"), line
    assert channel_version(site, "production") == 1


def test_policy_show_lists_checks_signers_and_canary(gated: dict) -> None:
    site = gated["site"]
    [row] = run_json(site, "policy", "show")
    assert row["channel"] == "production"
    assert row["require"] == ["smoke-every-arch", "no-rejected-caches", "same-fingerprint", "startup", "soak"]
    assert (row["startup_margin"], row["soak"], row["override"]) == (
        0.2,
        {"channel": "testing", "hours": 12},
        ["soak", "startup"],
    )
    assert (row["signatures"], len(row["signers"]), row["canary"]) == (1, 1, "n[1-2]")
    text = run_console(site, "policy", "show", check=0).stdout
    assert "requires   smoke-every-arch, no-rejected-caches, same-fingerprint, startup, soak" in text
    assert "override   soak, startup" in text and "canary     n[1-2]" in text


def test_a_channel_without_policy_promotes_and_refuses_an_override(gated: dict) -> None:
    site, new = gated["site"], gated["new"]
    proc = run_console(site, "promote", gated["old"], "--channel", "testing", "--override", "x")
    assert (proc.returncode, proc.stderr) == (2, "console: --override: channel testing has no policy to override\n")
    run_console(site, "promote", gated["old"], "--channel", "testing", check=0)
    run_console(site, "promote", new, "--channel", "testing", check=0)


def test_policy_table_is_checked_at_load(tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    write_policy(site, "production", 'require = ["smoke-every-arch", "vibes"]')
    proc = run_console(site, "policy", "show")
    assert proc.returncode == 2
    assert "[channels.production] require: unknown check(s) vibes" in proc.stderr


# -- build --promote C goes through the same gate (issue 16) ---------------------------------------
def _soak_gated(tmp_path: Path) -> tuple[Path, str, Path]:
    """production carries OLD; its policy requires a soak on testing (overridable); a command build script."""
    site = init_site(tmp_path / "site")
    old = publish(site, tmp_path, "old", ("x86_64",))
    run_console(site, "promote", old, "--channel", "production", "--create", check=0)
    write_policy(site, "production", 'require = ["soak"]\nsoak_hours = 12\noverride = ["soak"]')
    script = tmp_path / "pkg-build.sh"
    script.write_text('#!/bin/sh\necho "build $DEPOT_ARCH" > "$DEPOT_OUT/hello"\n')
    script.chmod(0o755)
    return site, old, script


def _build(site: Path, script: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_console(
        site, "build", str(script), "--builder", "command", "--arch", "x86_64", "--publish", *extra, "--quiet"
    )


def test_build_promote_is_refused_by_the_policy_the_release_stays_published(tmp_path: Path) -> None:
    site, _old, script = _soak_gated(tmp_path)
    proc = _build(site, script, "--promote", "production")
    assert proc.returncode == 1, proc.stderr
    [row] = run_json(site, "builds")
    assert row["status"] == "failed" and row["release"], row
    assert row["error"].startswith(f"published {row['release']} but: promote of {row['release'][7:19]} onto production")
    assert "1 unmet check(s): soak: " in row["error"] and "(--override REASON may waive: soak)" in row["error"]
    assert row["release"] in {r["id"] for r in run_json(site, "releases")}
    assert channel_version(site, "production") == 1


def test_build_promote_override_waives_where_permitted_and_is_audited(tmp_path: Path) -> None:
    site, _old, script = _soak_gated(tmp_path)
    proc = _build(site, script, "--promote", "production", "--override", "hotfix")
    assert proc.returncode == 0, proc.stderr
    [row] = run_json(site, "builds")
    assert row["status"] == "succeeded", row
    [ptr] = [r for r in run_json(site, "history", "--channel", "production") if r["version"] == 2]
    assert (ptr["release"], ptr["reason"]) == (row["release"], "build 1; override (soak): hotfix")
    detail = json.loads(audit(site, "promote")[-1]["detail"])
    assert (detail["override"], detail["waived"]) == ("hotfix", ["soak"])


def test_build_override_needs_a_promote_onto_a_channel_with_a_policy(tmp_path: Path) -> None:
    site, _old, script = _soak_gated(tmp_path)
    proc = _build(site, script, "--override", "x")
    assert (proc.returncode, proc.stderr) == (
        2,
        "console: --override needs --promote (it waives the channel policy's unmet checks)\n",
    )
    proc = _build(site, script, "--promote", "testing", "--override", "x")
    assert (proc.returncode, proc.stderr) == (2, "console: --override: channel testing has no policy to override\n")
    assert run_json(site, "builds") == []


# -- the last rollout stage re-runs the full policy before promoting (issue 16) ------------------
def test_last_rollout_stage_rechecks_the_full_policy_before_promoting(gated: dict) -> None:
    """The canary stage's evidence holds on its nodes (haswell), but the channel's policy wants a
    passing smoke on every micro-architecture of the inventory (zen3 has none): the last stage,
    which promotes production itself, is refused and nothing moves."""
    site, old, new = gated["site"], gated["old"], gated["new"]
    env = {"DEPOT_CONSOLE_NOW": LATER}  # soaked on testing for 24 h
    add_smoke(
        site,
        [
            {"node": "n1", "release": old, "image": "x86_64", "wall_s": 1.0},
            {"node": "n1", "release": new, "image": "x86_64", "wall_s": 1.1, "fingerprint": FP},
            {"node": "n2", "release": new, "image": "x86_64", "wall_s": 1.1, "fingerprint": FP},
        ],
    )
    run_console(site, "rollout", "start", new, "--channel", "production", "--canary", "n[1-2]", env=env, check=0)
    proc = run_console(site, "rollout", "next", "--channel", "production", env=env)
    assert proc.returncode == 1, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(
        f"console: rollout of {new[7:19]} on production stays at stage canary: the last stage promotes production, "
        "whose policy has 1 unmet check(s): smoke-every-arch: "
    ), line
    assert "zen3 (image zen3)" in line
    assert channel_version(site, "production") == 1
    [doc] = run_json(site, "rollout", "status", "--channel", "production", env=env)
    assert (doc["state"], doc["stage_name"]) == ("running", "canary")
    add_smoke(site, [{"node": "z1", "release": new, "image": "zen3", "wall_s": 0.9, "time": LATER}])
    run_console(site, "rollout", "next", "--channel", "production", env=env, check=0)
    rows = {r["channel"]: r for r in run_json(site, "channels", env=env)}
    assert (rows["production"]["release"], rows["production"]["version"]) == (new, 2)
