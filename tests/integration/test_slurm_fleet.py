"""``console fleet check --via slurm`` (core.fleet.slurm) against a real Slurm: munged, slurmctld, three slurmd.

The cluster of tests/fixtures/slurm.py: node1 and node2 report a haswell CPU, node3 a zen3 (through
Slurm's TaskProlog); faults (a slow python3, no python3) and drained nodes are made on the cluster,
never by hooks in the code under test. The console reaches Slurm as an operator's shell would:
``SLURM_CONF`` in its environment.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from core.fleet.check import CheckOptions, NodeCheck, check_fleet
from core.fleet.slurm import SlurmOptions

from fixtures.slurm import SlurmCluster
from helpers import REPO, init_site, make_tree, run_console, set_config

DEADLINE = 4.0  # per node; what a slow node always runs into


def db_rows(site: Path, sql: str, params: tuple = ()) -> list[dict]:
    conn = sqlite3.connect(str(site / "state.db"))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_site(tmp_path_factory.mktemp("slurmsite") / "site")


def check(slurm: SlurmCluster, site: Path, *args: str) -> tuple[int, dict, str]:
    proc = run_console(site, "fleet", "check", *args, "--via", "slurm", "--json", env=slurm.env)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def statuses(doc: dict) -> dict[str, str]:
    return {n["name"]: n["status"] for n in doc["nodes"]}


def test_probe_over_three_slurm_nodes_classifies_each_and_records_them(slurm: SlurmCluster, site: Path) -> None:
    code, doc, err = check(slurm, site, "node[1-3]")
    assert code == 0, (doc, err)
    assert doc["transport"] == "slurm"
    assert statuses(doc) == {"node1": "ok", "node2": "ok", "node3": "ok"}
    assert {n["name"]: n["arch"] for n in doc["nodes"]} == {"node1": "haswell", "node2": "haswell", "node3": "zen3"}
    rows = db_rows(site, "select name, arch, status from nodes where name like 'node_' order by name")
    assert [(r["name"], r["arch"], r["status"]) for r in rows] == [
        ("node1", "haswell", "ok"),
        ("node2", "haswell", "ok"),
        ("node3", "zen3", "ok"),
    ]
    audit = db_rows(site, "select verb, target, outcome from audit where verb = 'fleet check'")
    assert audit[-1]["target"] == "node[1-3]" and audit[-1]["outcome"] == "ok"
    slurm.wait_no_jobs()


def test_drained_node_gets_its_own_status_and_the_others_run(slurm: SlurmCluster, site: Path) -> None:
    slurm.drain("node2", "disk swap")
    try:
        code, doc, err = check(slurm, site, "node[1-3]")
    finally:
        slurm.resume("node2")
    assert code == 1, (doc, err)
    assert statuses(doc) == {"node1": "ok", "node2": "drained", "node3": "ok"}
    node2 = next(n for n in doc["nodes"] if n["name"] == "node2")
    assert "disk swap" in node2["detail"]
    assert doc["summary"]["nodesets"]["drained"] == "node2"


def test_per_node_timeout_and_no_python_leave_the_others_ok(slurm: SlurmCluster, site: Path) -> None:
    slurm.fault("node3", "slow")
    slurm.fault("node1", "nopython")
    try:
        code, doc, err = check(slurm, site, "node[1-3]", "--timeout", str(DEADLINE))
    finally:
        slurm.fault("node3", None)
        slurm.fault("node1", None)
    assert code == 1, (doc, err)
    assert statuses(doc) == {"node1": "no-python", "node2": "ok", "node3": "timeout"}, doc["nodes"]
    slurm.wait_no_jobs()
    end = time.monotonic() + 30
    while slurm.slow_pids() and time.monotonic() < end:
        time.sleep(0.1)
    assert slurm.slow_pids() == []


def test_partition_and_feature_choose_nodes_or_refuse(slurm: SlurmCluster, site: Path) -> None:
    # A node set beyond the partition: the nodes outside it say so, the one inside runs.
    code, doc, _ = check(slurm, site, "node[1-3]", "--partition", "zen")
    assert code == 1
    assert statuses(doc) == {"node1": "not-in-partition", "node2": "not-in-partition", "node3": "ok"}
    # No node set: Slurm picks the nodes of the partition / with the feature.
    code, doc, err = check(slurm, site, "--partition", "zen")
    assert code == 0, (doc, err)
    assert statuses(doc) == {"node3": "ok"}
    code, doc, err = check(slurm, site, "--feature", "haswell")
    assert code == 0, (doc, err)
    assert statuses(doc) == {"node2": "ok"}
    # A constraint no node meets: Slurm refuses the step, every node says so.
    code, doc, _ = check(slurm, site, "node[1-2]", "--feature", "nosuchfeature")
    assert code == 1
    assert statuses(doc) == {"node1": "job-refused", "node2": "job-refused"}
    assert "feature" in doc["nodes"][0]["detail"].lower()
    # Unknown node names are reported as such; no NODESET and no selection is bad input (exit 2).
    code, doc, _ = check(slurm, site, "node[3-4]")
    assert statuses(doc) == {"node3": "ok", "node4": "not-in-partition"}
    proc = run_console(site, "fleet", "check", "--via", "slurm", env=slurm.env)
    assert proc.returncode == 2 and "--partition" in proc.stderr and "Traceback" not in proc.stderr


def test_transport_from_config(slurm: SlurmCluster, site: Path) -> None:
    set_config(site, "fleet", "transport", "slurm")
    try:
        proc = run_console(site, "fleet", "check", "node1", "--json", env=slurm.env)
    finally:
        set_config(site, "fleet", "transport", "ssh")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["transport"] == "slurm"


def test_cancel_scancels_the_job_and_leaves_no_process(slurm: SlurmCluster) -> None:
    for n in slurm.nodes:
        slurm.fault(n, "slow")

    async def scenario() -> list[NodeCheck]:
        started: list[str] = []
        ready = asyncio.Event()
        streamed: list[NodeCheck] = []

        def on_start(node: str) -> None:
            started.append(node)
            if len(started) == 3:
                ready.set()

        opts = CheckOptions(timeout=3600, transport="slurm", slurm=SlurmOptions(env=slurm.env))
        task = asyncio.create_task(
            check_fleet(list(slurm.nodes), opts, [], on_start=on_start, on_result=streamed.append)
        )
        async with asyncio.timeout(60):
            await ready.wait()
        assert len(slurm.jobs()) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return streamed

    try:
        assert asyncio.run(scenario()) == []
    finally:
        for n in slurm.nodes:
            slurm.fault(n, None)
    slurm.wait_no_jobs()
    end = time.monotonic() + 30
    while slurm.slow_pids() and time.monotonic() < end:
        time.sleep(0.1)
    assert slurm.slow_pids() == []
    slurm.wait_for("idle")


def test_hydrate_and_smoke_through_srun_with_the_node_console(slurm: SlurmCluster, site: Path, tmp_path: Path) -> None:
    """Publish a tiny Python depot, promote it, hydrate and smoke-test it on the three Slurm nodes."""
    wrapper = tmp_path / "remote-console"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m console.cli "$@"\n')
    wrapper.chmod(0o755)
    trust = tmp_path / "trust.json"
    trust.write_text(run_console(site, "keys", "export", check=0).stdout)
    make_tree(tmp_path / "depot", {"lib/python/pkg/__init__.py": "VALUE = 42\n"})
    published = json.loads(
        run_console(
            site,
            "publish",
            "--name",
            "pkg",
            "--image",
            f"x86_64={tmp_path / 'depot'}",
            "--smoke",
            "python3 -c 'import pkg'",
            "--json",
            check=0,
        ).stdout
    )
    run_console(site, "promote", published["release_id"], "--channel", "e2e", "--create", check=0)
    set_config(site, "node", "remote_console", str(wrapper))
    try:
        code, doc, err = check(
            slurm,
            site,
            "node[1-3]",
            "--hydrate",
            "--smoke",
            "--channel",
            "e2e",
            "--root",
            str(tmp_path / "noderoot"),
            "--trust",
            str(trust),
        )
    finally:
        set_config(site, "node", "remote_console", "console")
    assert code == 0, (doc, err)
    assert statuses(doc) == {"node1": "ok", "node2": "ok", "node3": "ok"}
    for n in doc["nodes"]:
        assert n["stage"] == "smoke" and n["smoke"]["ok"] is True
        assert n["smoke"]["release"] == published["release_id"] and n["hydrate"] is not None
        assert n["detail"].startswith("smoke ok ")
    runs = db_rows(site, "select node, ok from smoke_runs where release = ?", (published["release_id"],))
    assert sorted((r["node"], r["ok"]) for r in runs) == [("node1", 1), ("node2", 1), ("node3", 1)]
