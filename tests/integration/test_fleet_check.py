"""``console fleet check`` and ``console nodes`` (core.fleet.check, core.site.inventory) against a real sshd.

The loopback sshd of tests/fixtures/sshd.py gives one alias per outcome: plain nodes, a node
reporting a zen3 cpuinfo, a dead address, a node that blocks past the deadline, a changed host
key, a refused key, a node without python3. Remote work (``--smoke``/``--hydrate``) runs a
stand-in remote console written by the test (it answers per node from ``$SSH_CONNECTION``), and,
end to end, the real ``console node`` verbs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from core.arch import classify_cpuinfo, cpuinfo_from_probe
from core.errors import BadInput, NotFound
from core.fleet.check import CheckOptions, NodeCheck, check_fleet, flag_mismatches, summarize
from core.node.probe import read_cpuinfo
from core.site.inventory import (
    ChannelTarget,
    arch_summary,
    classify_probe,
    fingerprint_mismatches,
    flags_digest,
    images_for,
)

from fixtures.sshd import PLAIN_ARCH, SshdServer, ssh_client_pids
from helpers import REPO, init_site, make_tree, run_console, set_config

CPUINFO = Path(__file__).parents[1] / "fixtures" / "cpuinfo"
DEADLINE = 6.0  # what slownode always runs into; generous for nodes that answer on a loaded box
EXPECTED = {
    "node01": "ok",
    "node02": "ok",
    "node03": "ok",
    "node04": "ok",
    "node05": "ok",
    "zen3node": "ok",
    "deadnode": "unreachable",
    "slownode": "timeout",
    "badkeynode": "host-key-mismatch",
    "nopynode": "no-python",
    "refusednode": "auth-refused",
}


def probe_of(fixture: str, machine: str = "x86_64") -> dict:
    return {
        "machine": machine,
        "cpus": 8,
        "memory": 1 << 30,
        "os": {"pretty_name": "Linux"},
        "cpuinfo": read_cpuinfo(str(CPUINFO / f"{fixture}.txt")),
        "channels": {},
    }


def db_rows(site: Path, sql: str, params: tuple = ()) -> list[dict]:
    conn = sqlite3.connect(str(site / "state.db"))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


# ---- classification (pure) ----


@pytest.mark.parametrize("fixture", sorted(p.stem for p in CPUINFO.glob("*.txt")))
def test_probe_classification_matches_cpuinfo_classification(fixture: str) -> None:
    text = (CPUINFO / f"{fixture}.txt").read_text()
    # The machine field is what the console host would say, not the node: it must not matter.
    assert classify_probe(probe_of(fixture, machine="x86_64")).arch == classify_cpuinfo(text)


def test_aarch64_probe_is_classified_from_implementer_and_features() -> None:
    info = cpuinfo_from_probe(probe_of("neoverse_v1_graviton3"))
    assert (info.family, info.vendor, info.cpu_part) == ("aarch64", "ARM", "0xd40")
    assert classify_probe(probe_of("neoverse_v1_graviton3")).arch == "neoverse_v1"
    assert classify_probe(probe_of("neoverse_n1_graviton2")).arch == "neoverse_n1"
    bare = {"machine": "aarch64", "cpuinfo": {"vendor": "", "flags": [], "implementer": "", "features": []}}
    assert classify_probe(bare).arch == "aarch64"


def test_unclassifiable_probe_has_no_arch_and_says_why() -> None:
    c = classify_probe({"machine": "riscv64", "cpuinfo": {"vendor": "", "flags": [], "features": []}})
    assert c.arch is None
    assert c.problem == "cannot classify riscv64 CPU: no x86_64 or aarch64 cpuinfo fields"
    assert images_for(None, [ChannelTarget("production", "sha256:r", ("x86_64",))], c.problem) == {
        "production": {"release": "sha256:r", "image": None, "reason": c.problem}
    }


def test_flags_digest_ignores_order_and_duplicates() -> None:
    assert flags_digest(["b", "a", "a"]) == flags_digest(["a", "b"]) != flags_digest(["a"])


def test_images_and_arch_summary_with_no_fit_reasons() -> None:
    targets = [
        ChannelTarget("production", "sha256:p", ("x86_64", "zen3")),
        ChannelTarget("testing", "sha256:t", ("zen4",)),
    ]
    rows = [
        {"name": "a1", "arch": "zen3"},
        {"name": "a2", "arch": "zen3"},
        {"name": "h1", "arch": "haswell"},
        {"name": "x", "arch": None},
    ]
    summary = arch_summary(rows, targets)
    assert summary["arches"] == [
        {"arch": "zen3", "count": 2, "images": {"production": "zen3", "testing": None}},
        {"arch": "haswell", "count": 1, "images": {"production": "x86_64", "testing": None}},
        {"arch": "unknown", "count": 1, "images": {"production": None, "testing": None}},
    ]
    assert summary["no_fit"] == [
        {
            "node": "a1",
            "arch": "zen3",
            "channel": "testing",
            "reason": "zen3 cannot run zen4: missing avx512_bf16, avx512_bitalg, avx512_vbmi2, avx512_vnni and 10 more",
        },
        {
            "node": "a2",
            "arch": "zen3",
            "channel": "testing",
            "reason": "zen3 cannot run zen4: missing avx512_bf16, avx512_bitalg, avx512_vbmi2, avx512_vnni and 10 more",
        },
        {
            "node": "h1",
            "arch": "haswell",
            "channel": "testing",
            "reason": "haswell cannot run zen4: other vendor: AuthenticAMD image, GenuineIntel CPU",
        },
    ]


# ---- fingerprint comparison (pure) ----


def smoke(node: str, fp, image: str = "x86_64_v3", release: str = "sha256:r1") -> dict:
    return {"node": node, "release": release, "image": image, "fingerprint": fp}


def test_fingerprint_majority_flags_the_odd_node_with_its_modules() -> None:
    good = {"Foo": "sha256:1", "Bar": "sha256:2", "Baz": "sha256:3"}
    odd = {"Foo": "sha256:1", "Bar": "sha256:X", "Qux": "sha256:4"}
    found = fingerprint_mismatches([smoke("n1", good), smoke("n2", good), smoke("n3", odd), smoke("n4", good)])
    assert [m.to_json() for m in found] == [
        {
            "node": "n3",
            "release": "sha256:r1",
            "image": "x86_64_v3",
            "modules": ["Bar", "Baz", "Qux"],
            "majority": 3,
            "group": 4,
            "detail": "fingerprint differs from 3 of 4 nodes running x86_64_v3 in: Bar, Baz, Qux",
        }
    ]


def smoke_fp(modules: list[list]) -> dict:
    """A fingerprint as core.node.smoke makes it (modules, count, digest of the module list)."""
    from core.model.digest import canonical_json, digest_bytes

    modules = sorted(modules)
    return {"modules": modules, "count": len(modules), "digest": digest_bytes(canonical_json(modules))}


def test_fingerprint_in_core_smoke_shape_names_modules() -> None:
    good = smoke_fp([["pkg", "sha256:1"], ["dep", "sha256:2"], ["json", None]])
    julia_good = smoke_fp([["Foo", "uuid-f", "sha256:a"], ["Bar", "uuid-b", "sha256:b"]])
    julia_odd = smoke_fp([["Foo", "uuid-f", "sha256:a"], ["Bar", "uuid-b", "sha256:OTHER"]])
    found = fingerprint_mismatches(
        [
            smoke("p1", good),
            smoke("p2", dict(good)),
            smoke("p3", smoke_fp([["pkg", "sha256:1"], ["dep", "sha256:9"]])),
            smoke("j1", julia_good, image="zen3"),
            smoke("j2", julia_good, image="zen3"),
            smoke("j3", julia_odd, image="zen3"),
        ]
    )
    assert [(m.node, m.modules, m.majority, m.group) for m in found] == [
        ("j3", ("Bar",), 2, 3),
        ("p3", ("dep", "json"), 2, 3),
    ]


def test_fingerprints_compare_only_within_release_and_image() -> None:
    a, b = {"M": "1"}, {"M": "2"}
    found = fingerprint_mismatches(
        [
            smoke("n1", a),
            smoke("n2", a),  # x86_64_v3 group agrees
            smoke("z1", b, image="zen3"),
            smoke("z2", b, image="zen3"),  # zen3 group agrees on another value
            smoke("o1", b, release="sha256:r0"),  # alone in its release: nothing to compare
            smoke("nofp", None),
            smoke("empty", {}),  # no fingerprint: left out
        ]
    )
    assert found == []


def test_fingerprint_tie_flags_every_node_without_majority() -> None:
    found = fingerprint_mismatches([smoke("n2", {"M": "2"}), smoke("n1", {"M": "1"})])
    assert [(m.node, m.modules, m.majority) for m in found] == [("n1", (), 0), ("n2", ("M",), 0)]
    assert found[1].detail == "no majority fingerprint among the 2 nodes running x86_64_v3 in: M"


def test_string_fingerprints_compare_whole() -> None:
    found = fingerprint_mismatches([smoke("a", "sha256:1"), smoke("b", "sha256:1"), smoke("c", "sha256:2")])
    assert [(m.node, m.modules, m.detail) for m in found] == [
        ("c", (), "fingerprint differs from 2 of 3 nodes running x86_64_v3")
    ]


def test_flag_mismatches_changes_status_of_ok_nodes_only() -> None:
    def check(node: str, fp, status: str = "ok") -> NodeCheck:
        return NodeCheck(node, status, "", smoke={"ok": True, "release": "r", "image": "x", "fingerprint": fp})

    checks = [
        check("a", {"M": "1"}),
        check("b", {"M": "1"}),
        check("c", {"M": "2"}),
        check("d", {"M": "3"}, status="remote-failed"),
    ]
    assert [c.node for c in flag_mismatches(checks)] == ["c"]
    assert [(c.status, c.mismatch) for c in checks] == [
        ("ok", None),
        ("ok", None),
        ("fingerprint-mismatch", ["M"]),
        ("remote-failed", None),
    ]
    assert summarize(checks)["counts"] == {"ok": 2, "remote-failed": 1, "fingerprint-mismatch": 1}
    assert summarize(checks)["nodesets"]["ok"] == "a,b"


def test_options_are_checked_before_any_ssh() -> None:
    with pytest.raises(BadInput, match=r"^--smoke and --hydrate need --channel C$"):
        CheckOptions(smoke=True).validate()
    with pytest.raises(BadInput, match=r"^fanout must be at least 1, not 0$"):
        CheckOptions(fanout=0).validate()
    with pytest.raises(NotFound, match=r"^channel production has no current release$"):
        asyncio.run(check_fleet(["node01"], CheckOptions(smoke=True, channel="production"), []))


# ---- against the real sshd: probe and inventory ----


def publish_and_promote(site: Path, tmp: Path, images: dict[str, str], channel: str, smoke: str | None = None) -> str:
    args = []
    for arch, rel in images.items():
        make_tree(tmp / f"img-{arch}", {rel: f"# {arch}\n"})
        args += ["--image", f"{arch}={tmp / f'img-{arch}'}"]
    doc = json.loads(
        run_console(
            site, "publish", "--name", "pkg", *args, *(["--smoke", smoke] if smoke else []), "--json", check=0
        ).stdout
    )
    run_console(site, "promote", doc["release_id"], "--channel", channel, "--create", check=0)
    return doc["release_id"]


@pytest.fixture(scope="module")
def checked(sshd: SshdServer, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    """One site, two channels, [fleet] ssh_config and groups, one human-mode fleet check of every alias."""
    tmp = tmp_path_factory.mktemp("fleetcheck")
    site = init_site(tmp / "site")
    set_config(site, "fleet", "ssh_config", sshd.config_path)
    set_config(site, "fleet", "groups", {"plain": "node[01-05]", "odd": "deadnode,slownode"})
    prod = publish_and_promote(site, tmp, {"x86_64": "lib/a.py", "zen3": "lib/a.py"}, "production")
    arm = publish_and_promote(site, tmp / "arm", {"neoverse_v1": "lib/a.py"}, "arm")
    human = run_console(
        site,
        "fleet",
        "check",
        "@plain,zen3node,@odd,badkeynode,nopynode,refusednode",
        "--timeout",
        str(DEADLINE),
        "--connect-timeout",
        "5",
    )
    return {"site": site, "tmp": tmp, "human": human, "prod": prod, "arm": arm}


def test_fleet_check_streams_lines_and_summarizes_with_folded_sets(checked: dict) -> None:
    proc = checked["human"]
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    per_node = {line.split()[0]: line.split()[1] for line in lines[: len(EXPECTED)]}
    assert per_node == EXPECTED
    assert lines[len(EXPECTED) - 1].split()[:2] == ["slownode", "timeout"]  # the last to finish
    summary = lines[len(EXPECTED) :]
    assert summary[0].startswith(
        "11 nodes (badkeynode,deadnode,node[01-05],nopynode,refusednode,slownode,zen3node) in "
    )
    assert summary[0].endswith(
        ", 7 of 11 answered: 6 ok, 1 unreachable, 1 auth-refused, 1 host-key-mismatch, 1 timeout, 1 no-python"
    )
    assert summary[1:7] == [
        "  ok: node[01-05],zen3node",
        "  unreachable: deadnode",
        "  auth-refused: refusednode",
        "  host-key-mismatch: badkeynode",
        "  timeout: slownode",
        "  no-python: nopynode",
    ]
    host = PLAIN_ARCH
    arches = sorted(["zen3 1", f"{host} 5"], key=lambda s: (-int(s.split()[1]), s))
    assert summary[7:] == ["arch: " + ", ".join(arches)]
    zen3_line = next(line for line in lines if line.startswith("zen3node"))
    assert zen3_line.split()[2:] == ["zen3", "arm=none,", "production=zen3"]


def test_fleet_check_records_nodes_and_one_audit_row(checked: dict) -> None:
    site, prod = checked["site"], checked["prod"]
    rows = {r["name"]: r for r in db_rows(site, "select * from nodes")}
    assert {n: r["status"] for n, r in rows.items()} == EXPECTED
    zen3 = rows["zen3node"]
    assert (zen3["arch"], zen3["vendor"], zen3["cpus"]) == ("zen3", "AuthenticAMD", os.cpu_count())
    assert zen3["flags_digest"] == flags_digest(
        read_cpuinfo(str(Path(__file__).parents[1] / "fixtures" / "sshd_cpuinfo_zen3.txt"))["flags"]
    )
    assert json.loads(zen3["images"])["production"] == {
        "release": prod,
        "image": "zen3",
        "reason": "zen3 runs zen3: exact match",
    }
    assert json.loads(zen3["images"])["arm"]["image"] is None
    assert json.loads(zen3["probe"])["cpuinfo"]["model_name"] == "AMD EPYC 7763 64-Core Processor"
    assert json.loads(zen3["channels"]) == {} and zen3["last_seen"].endswith("Z") and zen3["memory"] > 0
    host = PLAIN_ARCH
    assert {rows[f"node0{i}"]["arch"] for i in range(1, 6)} == {host}
    dead = rows["deadnode"]
    assert (dead["arch"], dead["probe"], dead["last_seen"]) == (None, None, None)
    assert dead["detail"].endswith("Connection refused")
    assert rows["slownode"]["detail"] == f"no answer within the {DEADLINE:g}s deadline; ssh killed"
    audit = db_rows(site, "select * from audit where verb = 'fleet check'")
    assert [(a["target"], a["outcome"]) for a in audit] == [
        ("badkeynode,deadnode,node[01-05],nopynode,refusednode,slownode,zen3node", "failed: 5 of 11 nodes")
    ]
    assert json.loads(audit[0]["detail"])["counts"]["ok"] == 6


def test_nodes_view_and_arch_summary(checked: dict) -> None:
    site = checked["site"]
    host = PLAIN_ARCH
    doc = json.loads(run_console(site, "nodes", "--json", check=0).stdout)
    assert [n["name"] for n in doc["nodes"]] == sorted(EXPECTED)
    assert {g["arch"]: (g["count"], g["images"]) for g in doc["summary"]["arches"]} == {
        host: (5, {"arm": None, "production": "x86_64"}),
        "zen3": (1, {"arm": None, "production": "zen3"}),
        "unknown": (5, {"arm": None, "production": None}),
    }
    no_fit = {(f["node"], f["channel"]) for f in doc["summary"]["no_fit"]}
    assert no_fit == {(n, "arm") for n in ["node01", "node02", "node03", "node04", "node05", "zen3node"]}
    assert all(
        f["reason"].endswith("cannot run neoverse_v1: other family: aarch64 image, x86_64 CPU")
        for f in doc["summary"]["no_fit"]
    )

    text = run_console(site, "nodes", check=0).stdout.splitlines()
    assert text[0].split() == ["NODE", "ARCH", "CPUS", "MEM", "IMAGE:arm", "IMAGE:production", "STATUS", "LAST", "SEEN"]
    assert f"  node[01-05] ({host}) arm: {host} cannot run neoverse_v1: other family: aarch64 image, x86_64 CPU" in text
    assert "  zen3node (zen3) arm: zen3 cannot run neoverse_v1: other family: aarch64 image, x86_64 CPU" in text
    zen3 = next(line for line in text if line.startswith("zen3node"))
    assert zen3.split()[:2] == ["zen3node", "zen3"] and zen3.split()[5:8] == ["-", "zen3", "ok"]

    only = json.loads(run_console(site, "nodes", "--arch", "zen3", "--json", check=0).stdout)
    assert [n["name"] for n in only["nodes"]] == ["zen3node"]


def test_fleet_check_json_document_and_all_ok_exit_zero(checked: dict) -> None:
    site = checked["site"]
    proc = run_console(site, "fleet", "check", "@plain", "--json", "--fanout", "2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["nodeset"] == "node[01-05]"
    assert doc["summary"] == {
        "total": 5,
        "answered": 5,
        "failed": 0,
        "counts": {"ok": 5},
        "nodesets": {"ok": "node[01-05]"},
        "arches": {PLAIN_ARCH: 5},
    }
    node = doc["nodes"][0]
    assert (node["name"], node["status"], node["stage"]) == ("node01", "ok", "probe")
    assert node["images"]["production"]["image"] == "x86_64"
    assert set(node) >= {"name", "status", "detail", "arch", "cpus", "memory", "os", "flags_digest", "images"}
    assert sorted(c["channel"] for c in doc["channels"]) == ["arm", "production"]


def test_fleet_check_bad_input(checked: dict) -> None:
    site = checked["site"]
    proc = run_console(site, "fleet", "check", "@nosuch")
    assert (proc.returncode, proc.stderr) == (2, "console: unknown node group @nosuch in '@nosuch'\n")
    proc = run_console(site, "fleet", "check", "node01", "--smoke")
    assert (proc.returncode, proc.stderr) == (2, "console: --smoke and --hydrate need --channel C\n")
    proc = run_console(site, "fleet", "check", "node01", "--smoke", "--channel", "nochan")
    assert (proc.returncode, proc.stderr) == (2, "console: channel nochan has no current release\n")
    proc = run_console(site, "fleet", "check", "node01", "--ssh-config", "/nonexistent/cfg")
    assert (proc.returncode, proc.stderr) == (2, "console: ssh config /nonexistent/cfg does not exist\n")


def test_fleet_check_is_cancellable_without_orphans(sshd: SshdServer) -> None:  # noqa: F811
    async def scenario() -> list[NodeCheck]:
        started: list[str] = []
        ready = asyncio.Event()
        streamed: list[NodeCheck] = []

        def on_start(node: str) -> None:
            started.append(node)
            if len(started) == 3:
                ready.set()

        opts = CheckOptions(ssh_config=sshd.config_path, timeout=3600, fanout=8)
        task = asyncio.create_task(
            check_fleet(["slownode", "slownode", "slownode"], opts, [], on_start=on_start, on_result=streamed.append)
        )
        await ready.wait()
        assert len(ssh_client_pids(sshd.config_path)) == 3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return streamed

    assert asyncio.run(scenario()) == []
    assert ssh_client_pids(sshd.config_path) == []


# ---- remote work with a stand-in remote console ----

STANDIN = r'''#!{python}
"""Stand-in for the console on a node: answers ``node smoke|hydrate … --json`` per node address."""
import json, os, sys

addr = os.environ.get("SSH_CONNECTION", "").split()[2]
argv = sys.argv[1:]
with open({log!r}, "a") as fh:
    fh.write(addr + " " + json.dumps(argv) + "\n")
verb = argv[1]
if verb == "hydrate":
    channel = argv[argv.index("--channel") + 1]
    print(json.dumps({{"release": "sha256:" + "ab" * 32, "image": "x86_64", "channel": channel}}))
    sys.exit(0)
if addr == "127.0.0.5":
    print(json.dumps({{"node": "n5", "release": "sha256:r", "image": "x86_64", "ok": False, "wall_s": 0.5,
                      "baseline_s": None, "reduction": None, "exit_code": 3, "output_tail": "ImportError: pkg\n",
                      "rejected_caches": [], "fingerprint": None, "problem": "exit code 3"}}))
    sys.exit(1)
if addr == "127.0.0.4":
    print("this is not json")
    sys.exit(0)
mods = [["dep", "sha256:other" if addr == "127.0.0.3" else "sha256:2"], ["pkg", "sha256:1"]]
fp = {{"modules": mods, "count": 2, "digest": "sha256:" + ("b" if addr == "127.0.0.3" else "a") * 64}}
image = "zen3" if addr == "127.0.0.6" else "x86_64"
print(json.dumps({{"node": addr, "release": "sha256:r", "image": image, "ok": True, "wall_s": 0.25,
                  "baseline_s": 1.0, "reduction": 0.75, "exit_code": 0, "output_tail": "",
                  "rejected_caches": [], "fingerprint": fp}}))
'''


def test_smoke_and_hydrate_with_standin_remote_console(checked: dict, sshd: SshdServer) -> None:  # noqa: F811
    site, tmp = checked["site"], checked["tmp"]
    script, log = tmp / "standin-console", tmp / "standin.log"
    script.write_text(STANDIN.format(python=sys.executable, log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    set_config(site, "node", "remote_console", str(script))
    try:
        proc = run_console(
            site,
            "fleet",
            "check",
            "node[01-05],zen3node",
            "--smoke",
            "--hydrate",
            "--channel",
            "production",
            "--root",
            "/srv/depot",
            "--trust",
            "/etc/depot/trust.json",
            "--json",
        )
    finally:
        set_config(site, "node", "remote_console", "console")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    by = {n["name"]: n for n in doc["nodes"]}
    assert {n: v["status"] for n, v in by.items()} == {
        "node01": "ok",
        "node02": "ok",
        "node03": "fingerprint-mismatch",
        "node04": "bad-output",
        "node05": "remote-failed",
        "zen3node": "ok",
    }
    assert by["node03"]["mismatch"] == ["dep"]
    assert by["node03"]["detail"] == "fingerprint differs from 2 of 3 nodes running x86_64 in: dep"
    assert by["node04"]["detail"] == "node smoke: output is not one JSON document"
    assert by["node05"]["detail"] == "smoke failed: exit code 3; ImportError: pkg"
    assert by["node01"]["detail"] == "smoke ok 0.25s (cold 1.00s, 75% faster warm)"
    assert by["node01"]["stage"] == "smoke" and by["node01"]["hydrate"]["image"] == "x86_64"
    assert doc["summary"]["nodesets"] == {
        "ok": "node[01-02],zen3node",
        "bad-output": "node04",
        "remote-failed": "node05",
        "fingerprint-mismatch": "node03",
    }
    calls = [
        json.loads(line.split(" ", 1)[1]) for line in log.read_text().splitlines() if line.startswith("127.0.0.1 ")
    ]
    assert calls == [
        [
            "node",
            "hydrate",
            "--store",
            str(site / "store"),
            "--channel",
            "production",
            "--root",
            "/srv/depot",
            "--trust",
            "/etc/depot/trust.json",
            "--json",
        ],
        ["node", "smoke", "--channel", "production", "--root", "/srv/depot", "--json"],
    ]
    runs = db_rows(
        site, "select node, ok, image, wall_s, reduction, fingerprint, exit_code from smoke_runs order by node"
    )
    assert [(r["node"], r["ok"], r["image"]) for r in runs] == [
        ("node01", 1, "x86_64"),
        ("node02", 1, "x86_64"),
        ("node03", 1, "x86_64"),
        ("node04", 0, "x86_64"),
        ("node05", 0, "x86_64"),
        ("zen3node", 1, "zen3"),
    ]
    assert json.loads(runs[2]["fingerprint"])["modules"] == [["dep", "sha256:other"], ["pkg", "sha256:1"]]
    assert (runs[0]["wall_s"], runs[0]["reduction"], runs[4]["exit_code"]) == (0.25, 0.75, 3)
    node03 = db_rows(site, "select status, detail from nodes where name = 'node03'")[0]
    assert node03 == {"status": "fingerprint-mismatch", "detail": by["node03"]["detail"]}


def test_remote_console_missing_is_remote_failed(checked: dict) -> None:
    site = checked["site"]
    set_config(site, "node", "remote_console", "/nonexistent/console")
    try:
        doc = json.loads(
            run_console(
                site, "fleet", "check", "node01", "--smoke", "--channel", "production", "--json", check=1
            ).stdout
        )
    finally:
        set_config(site, "node", "remote_console", "console")
    [node] = doc["nodes"]
    assert (node["status"], node["stage"]) == ("remote-failed", "smoke")
    assert node["detail"].startswith("node smoke: remote console not found (")


# ---- end to end with the real node verbs ----


def test_smoke_end_to_end_with_the_node_console(checked: dict, sshd: SshdServer) -> None:  # noqa: F811
    """Publish a tiny Python depot, promote it, hydrate it on two nodes and smoke-test it there."""
    site, tmp = checked["site"], checked["tmp"] / "e2e"
    tmp.mkdir()
    wrapper = tmp / "remote-console"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m console.cli "$@"\n')
    wrapper.chmod(0o755)
    trust = tmp / "trust.json"
    trust.write_text(run_console(site, "keys", "export", check=0).stdout)
    make_tree(tmp / "depot", {"lib/python/pkg/__init__.py": "VALUE = 42\n"})
    published = json.loads(
        run_console(
            site,
            "publish",
            "--name",
            "pkg",
            "--image",
            f"x86_64={tmp / 'depot'}",
            "--smoke",
            "python3 -c 'import pkg'",
            "--json",
            check=0,
        ).stdout
    )
    run_console(site, "promote", published["release_id"], "--channel", "e2e", "--create", check=0)
    set_config(site, "node", "remote_console", str(wrapper))
    try:
        proc = run_console(
            site,
            "fleet",
            "check",
            "node[01-03]",
            "--hydrate",
            "--smoke",
            "--baseline",
            "--channel",
            "e2e",
            "--root",
            str(tmp / "noderoot"),
            "--trust",
            str(trust),
            "--json",
        )
    finally:
        set_config(site, "node", "remote_console", "console")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, (doc, proc.stderr)
    assert [(n["name"], n["status"]) for n in doc["nodes"]] == [("node01", "ok"), ("node02", "ok"), ("node03", "ok")]
    for n in doc["nodes"]:
        assert n["smoke"]["ok"] is True and n["smoke"]["release"] == published["release_id"]
        assert n["smoke"]["image"] == "x86_64" and n["smoke"]["baseline_s"] is not None
        assert n["detail"].startswith("smoke ok ") and n["hydrate"] is not None
    fingerprints = {json.dumps(n["smoke"]["fingerprint"], sort_keys=True) for n in doc["nodes"]}
    assert len(fingerprints) == 1 and '"pkg"' in next(iter(fingerprints))
    runs = db_rows(site, "select node, ok, release from smoke_runs where release = ?", (published["release_id"],))
    assert sorted((r["node"], r["ok"]) for r in runs) == [("node01", 1), ("node02", 1), ("node03", 1)]
    assert os.path.islink(tmp / "noderoot" / "current" / "e2e")


# ---- issue 18 item 16: nodes that never answered, and --timeout on the node ----


def _config_with_ghost(sshd: SshdServer, tmp: Path) -> Path:
    """The fixture's client config plus ``ghostnode``: a loopback address nothing listens on."""
    cfg = tmp / "ssh_config_ghost"
    cfg.write_text("Host ghostnode\n    HostName 127.0.0.12\n\n" + Path(sshd.config_path).read_text())
    return cfg


def test_fleet_check_of_unreachable_nodes_says_none_answered(sshd: SshdServer, tmp_path: Path) -> None:  # noqa: F811
    site = init_site(tmp_path / "site")
    cfg = _config_with_ghost(sshd, tmp_path)
    proc = run_console(site, "fleet", "check", "deadnode,ghostnode", "--ssh-config", str(cfg), "--connect-timeout", "5")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted(line.split()[:2] for line in lines[:2]) == [["deadnode", "unreachable"], ["ghostnode", "unreachable"]]
    assert re.fullmatch(r"2 nodes \(deadnode,ghostnode\) in \d+\.\ds, 0 of 2 answered: 2 unreachable", lines[2])
    assert lines[3:] == ["  unreachable: deadnode,ghostnode"]
    doc = json.loads(
        run_console(site, "fleet", "check", "deadnode,ghostnode", "--ssh-config", str(cfg), "--json", check=1).stdout
    )
    assert (doc["summary"]["total"], doc["summary"]["answered"], doc["summary"]["counts"]) == (2, 0, {"unreachable": 2})


SLEEPER = """#!{python}
import os, time
with open({pidfile!r}, "w") as fh:
    fh.write(str(os.getpid()))
time.sleep(300)
"""


def _gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for its parent has ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _wait_gone(pid: int, limit_s: float) -> bool:
    """Wait (bounded) for a process that is not our child to end: its pidfd turns readable when it
    exits, so there is nothing to sleep between looks."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        select.select([fd], [], [], limit_s)
    finally:
        os.close(fd)
    return _gone(pid)


def test_timeout_ends_the_remote_command_too(sshd: SshdServer, tmp_path: Path) -> None:  # noqa: F811
    """The smoke 'console' on the node writes its pid and sleeps: past --timeout the check reports
    timeout, and the sleeper on the node dies with it (run there under ``timeout``)."""
    site = init_site(tmp_path / "site")
    set_config(site, "fleet", "ssh_config", sshd.config_path)
    publish_and_promote(site, tmp_path, {"x86_64": "lib/a.py"}, "production")
    pidfile = tmp_path / "sleeper.pid"
    script = tmp_path / "sleeper-console"
    script.write_text(SLEEPER.format(python=sys.executable, pidfile=str(pidfile)))
    script.chmod(0o755)
    set_config(site, "node", "remote_console", str(script))
    proc = run_console(
        site, "fleet", "check", "node01", "--smoke", "--channel", "production", "--timeout", "3", "--json"
    )
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr
    [node] = doc["nodes"]
    assert (node["status"], node["stage"]) == ("timeout", "smoke")
    assert node["detail"] == "node smoke: no answer within the 3s deadline; ssh killed"
    pid = int(pidfile.read_text())  # the sleeper did start on the node
    try:
        assert _wait_gone(pid, 30), f"the remote sleeper {pid} outlived the check's --timeout"
    finally:
        if not _gone(pid):
            os.kill(pid, 9)


# ---- issue 18 item 5: after a hydrate the inventory shows what the node reports then ----


def test_hydrate_records_the_release_the_node_reports_after_it(sshd: SshdServer, tmp_path: Path) -> None:  # noqa: F811
    """Hydrate R1 with the real node console, then promote R2 and hydrate again: each time the
    inventory (``nodes --json``) says the node runs the release it was just hydrated with."""
    site = init_site(tmp_path / "site")
    set_config(site, "fleet", "ssh_config", sshd.config_path)
    wrapper = tmp_path / "remote-console"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m console.cli "$@"\n')
    wrapper.chmod(0o755)
    set_config(site, "node", "remote_console", str(wrapper))
    trust = tmp_path / "trust.json"
    trust.write_text(run_console(site, "keys", "export", check=0).stdout)
    root = tmp_path / "noderoot"
    hydrate = ["fleet", "check", "node01", "--hydrate", "--channel", "stable", "--root", str(root)]
    hydrate += ["--trust", str(trust), "--json"]

    def reported() -> tuple[str, dict]:
        [row] = json.loads(run_console(site, "nodes", "--json", check=0).stdout)["nodes"]
        return row["status"], {ch: v["release"] for ch, v in row["channels"].items()}

    first = publish_and_promote(site, tmp_path / "r1", {"x86_64": "lib/a.py"}, "stable")
    doc = json.loads(run_console(site, *hydrate, check=0).stdout)
    assert doc["nodes"][0]["hydrate"]["release"] == first
    assert reported() == ("ok", {"stable": first})

    second = publish_and_promote(site, tmp_path / "r2", {"x86_64": "lib/b.py"}, "stable")
    doc = json.loads(run_console(site, *hydrate, check=0).stdout)
    [node] = doc["nodes"]
    assert (node["status"], node["stage"], node["hydrate"]["release"]) == ("ok", "hydrate", second)
    assert node["channels"]["stable"]["release"] == second  # the fleet check's own document agrees
    assert reported() == ("ok", {"stable": second})
    probe = json.loads(db_rows(site, "select probe from nodes where name = 'node01'")[0]["probe"])
    assert probe["channels"]["stable"]["release"] == second
