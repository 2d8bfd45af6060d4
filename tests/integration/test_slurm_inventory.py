"""``console nodes --refresh-from slurm`` (core.fleet.slurm.inventory) against a real Slurm.

The cluster of tests/fixtures/slurm.py: node1 (feature x86_64_v3) and node2 (feature haswell)
report a haswell CPU to a probe, node3 (zen3) a zen3. Slurm 22.05 has no ``scontrol --json``: the
inventory comes from ``sinfo --json``, and from plain ``sinfo`` where the JSON serializer is missing
(a PATH whose ``sinfo`` refuses ``--json``, as a Slurm built without it does). Features are changed
with scontrol as an admin would.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from core.fleet.slurm import SlurmOptions, inventory

from fixtures.slurm import FEATURES, SlurmCluster
from helpers import init_site, run_console


def db_rows(site: Path, sql: str) -> list[dict]:
    conn = sqlite3.connect(str(site / "state.db"))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_site(tmp_path_factory.mktemp("slurminv") / "site")


def nodes_json(slurm: SlurmCluster, site: Path, *args: str) -> tuple[int, dict, str]:
    proc = run_console(site, "nodes", *args, "--json", env=slurm.env)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def by_name(doc: dict) -> dict[str, dict]:
    return {n["name"]: n for n in doc["nodes"]}


def test_refresh_stores_names_state_features_cpus_memory(slurm: SlurmCluster, site: Path) -> None:
    slurm.drain("node2", "bad dimm")
    try:
        code, doc, err = nodes_json(slurm, site, "--refresh-from", "slurm")
    finally:
        slurm.resume("node2")
    assert code == 0, err
    assert doc["refreshed"] == {"source": "sinfo --json", "nodes": "node[1-3]", "count": 3}
    rows = {
        r["name"]: r
        for r in db_rows(
            site,
            "select name, arch, slurm_state, slurm_features, slurm_partitions, slurm_reason, slurm_cpus,"
            " slurm_memory, slurm_seen from nodes",
        )
    }
    assert set(rows) == {"node1", "node2", "node3"}
    assert {n: json.loads(r["slurm_features"]) for n, r in rows.items()} == {n: [f] for n, f in FEATURES.items()}
    assert json.loads(rows["node3"]["slurm_partitions"]) == ["debug", "zen"]
    assert all(r["slurm_cpus"] == 1 and r["slurm_memory"] == 500 * 1024 * 1024 for r in rows.values())
    assert rows["node1"]["slurm_state"] == "idle"
    assert "drain" in rows["node2"]["slurm_state"] and rows["node2"]["slurm_reason"] == "bad dimm"
    assert all(r["slurm_seen"] and r["arch"] is None for r in rows.values())  # never probed: nothing measured
    # Claimed architecture from the features; nothing measured yet, so no finding.
    nodes = by_name(doc)
    assert {n: v["claimed_arch"] for n, v in nodes.items()} == {n: [f] for n, f in FEATURES.items()}
    assert doc["summary"]["arch_mismatches"] == [] and doc["summary"]["problems"] == 0
    audit = db_rows(site, "select verb, target, outcome from audit where verb = 'nodes refresh'")
    assert audit[-1] == {"verb": "nodes refresh", "target": "slurm", "outcome": "ok"}
    # The text view shows Slurm's state and features.
    text = run_console(site, "nodes", env=slurm.env, check=0).stdout
    assert "SLURM" in text and "FEATURES" in text and "x86_64_v3" in text


def test_feature_that_is_not_the_measured_cpu_is_a_finding(slurm: SlurmCluster, site: Path) -> None:
    proc = run_console(site, "fleet", "check", "node[1-3]", "--via", "slurm", "--json", env=slurm.env)
    assert proc.returncode == 0, proc.stderr
    code, doc, err = nodes_json(slurm, site, "--refresh-from", "slurm")
    assert code == 0, err
    # As configured: x86_64_v3 on haswell holds (a level the CPU meets), haswell on haswell, zen3 on zen3.
    assert {n: (v["arch"], v["arch_mismatch"]) for n, v in by_name(doc).items()} == {
        "node1": ("haswell", []),
        "node2": ("haswell", []),
        "node3": ("zen3", []),
    }
    assert doc["summary"]["problems"] == 0
    slurm.set_features("node2", "zen3")
    slurm.set_features("node3", "zen2")
    try:
        code, doc, err = nodes_json(slurm, site, "--refresh-from", "slurm")
        text = run_console(site, "nodes", env=slurm.env, check=0).stdout
    finally:
        slurm.set_features("node2", FEATURES["node2"])
        slurm.set_features("node3", FEATURES["node3"])
    assert code == 0, err
    nodes = by_name(doc)
    assert nodes["node2"]["claimed_arch"] == ["zen3"] and nodes["node2"]["arch"] == "haswell"
    assert "cannot run zen3" in nodes["node2"]["arch_mismatch"][0]
    # zen3 can run zen2 code, but the feature names another CPU than the one measured: still a finding.
    assert nodes["node3"]["arch_mismatch"] == ["feature zen2, but the CPU is zen3"]
    assert nodes["node1"]["arch_mismatch"] == []
    mism = doc["summary"]["arch_mismatches"]
    assert [(m["node"], m["claimed"], m["arch"]) for m in mism] == [
        ("node2", ["zen3"], "haswell"),
        ("node3", ["zen2"], "zen3"),
    ]
    assert doc["summary"]["problems"] == 2
    assert "node2: feature zen3, but the CPU is haswell" in text and "haswell !" in text
    # Refreshing again once the features are right clears the findings.
    code, doc, _ = nodes_json(slurm, site, "--refresh-from", "slurm")
    assert doc["summary"]["arch_mismatches"] == [] and doc["summary"]["problems"] == 0


def test_plain_sinfo_where_slurm_has_no_json(slurm: SlurmCluster, tmp_path: Path) -> None:
    real = shutil.which("sinfo")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sinfo"  # a Slurm without the JSON serializer: sinfo refuses --json
    fake.write_text(
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = --json ] && {{ echo "sinfo: unrecognized option --json" >&2; exit 1; }}; done\n'
        f'exec {real} "$@"\n'
    )
    fake.chmod(0o755)
    env = {**slurm.env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    found, source = asyncio.run(inventory(SlurmOptions(env=env)))
    assert source == "sinfo"
    assert {n: (i.features, i.cpus, i.memory) for n, i in found.items()} == {
        n: ((f,), 1, 500 * 1024 * 1024) for n, f in FEATURES.items()
    }
    assert sorted(found["node3"].partitions) == ["debug", "zen"]
    found, source = asyncio.run(inventory(SlurmOptions(env=env, partition="zen")))
    assert sorted(found) == ["node3"]


def test_no_controller_is_one_line_and_nothing_recorded(slurm: SlurmCluster, tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    conf = tmp_path / "slurm.conf"
    conf.write_text(slurm.conf.read_text().replace("SlurmctldPort=", "SlurmctldPort=1#"))
    proc = run_console(site, "nodes", "--refresh-from", "slurm", env={"SLURM_CONF": str(conf)})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "cannot read Slurm's node list" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert db_rows(site, "select name from nodes") == []
    audit = db_rows(site, "select outcome from audit where verb = 'nodes refresh'")
    assert audit and audit[-1]["outcome"].startswith("error:")
