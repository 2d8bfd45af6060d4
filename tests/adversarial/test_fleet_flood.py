"""Issue 12 item 4: a node that floods its output, and node sets too large to expand.

Per-node output is capped (``[fleet] max_output_bytes``): past the cap the node's ssh is killed and
it is ``bad-output``; other nodes are unaffected, and the console's memory stays bounded (asserted
under ``RLIMIT_AS`` in a child process). A node set spanning more than ``[fleet] max_nodes`` is
refused with one line and exit 2 before ClusterShell expands it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hostile_sshd import HostileSshd
from limits import run_console_limited

import core.fleet.nodeset as nodeset_module
from core.errors import BadInput
from core.fleet.nodeset import expand
from core.fleet.ssh import BAD_OUTPUT, OK, run_fleet

from fixtures.sshd import SshdServer, ssh_client_pids
from helpers import init_site, set_config

BAD_INPUT = 2
CHECK_FAILED = 1
HUGE = "node[1-99999999]"


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "MemoryError" not in stderr
    return lines[0]


# ---- endless output ----


@pytest.fixture(scope="module")
def fleet_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_site(tmp_path_factory.mktemp("flood") / "site")


def test_flooding_nodes_are_bad_output_others_ok_memory_bounded(fleet_site: Path, hostile_sshd: HostileSshd) -> None:
    nodes = ",".join([*hostile_sshd.good, *hostile_sshd.flood])
    proc = run_console_limited(
        fleet_site, "fleet", "check", nodes, "--ssh-config", hostile_sshd.config_path, "--timeout", "120", "--json"
    )
    assert "MemoryError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == CHECK_FAILED, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    status = {n["name"]: n["status"] for n in doc["nodes"]}
    details = {n["name"]: n["detail"] for n in doc["nodes"]}
    assert status == {**dict.fromkeys(hostile_sshd.good, OK), **dict.fromkeys(hostile_sshd.flood, BAD_OUTPUT)}, details
    for node in hostile_sshd.flood:
        assert "more than 1048576 bytes" in details[node] and "ssh killed" in details[node], details[node]
    assert "stderr" in details["flooderr"] and "stdout" in details["floodout"]
    assert doc["summary"]["counts"] == {OK: 2, BAD_OUTPUT: 3}
    assert not ssh_client_pids(hostile_sshd.config_path)  # every flooding node's ssh was killed and reaped


def test_output_cap_is_configurable_and_recorded(fleet_site: Path, hostile_sshd: HostileSshd, tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    set_config(site, "fleet", "max_output_bytes", 4096)
    proc = run_console_limited(site, "fleet", "check", "floodline", "--ssh-config", hostile_sshd.config_path)
    assert proc.returncode == CHECK_FAILED, proc.stderr
    assert "bad-output" in proc.stdout and "more than 4096 bytes on stdout" in proc.stdout
    nodes = json.loads(run_console_limited(site, "nodes", "--json").stdout)["nodes"]
    assert [(n["name"], n["status"]) for n in nodes] == [("floodline", BAD_OUTPUT)]


@pytest.mark.parametrize(("size", "status"), [(1000, OK), (1001, BAD_OUTPUT), (300_000, BAD_OUTPUT)])
def test_cap_is_exact_on_a_real_node(sshd: SshdServer, size: int, status: str) -> None:
    command = ["head", "-c", str(size), "/dev/zero"]
    [result] = asyncio.run(run_fleet(["node01"], command, None, ssh_config=sshd.config_path, max_output=1000))
    assert result.status == status, result.detail
    assert len(result.stdout) == min(size, 1000)


def test_stderr_flood_on_a_real_node(sshd: SshdServer) -> None:
    command = ["sh", "-c", "head -c 5000 /dev/zero >&2; echo done"]
    [result] = asyncio.run(run_fleet(["node02"], command, None, ssh_config=sshd.config_path, max_output=4096))
    assert (result.status, result.detail.split(" (")[0]) == (BAD_OUTPUT, "more than 4096 bytes on stderr")


# ---- node sets too large to expand ----


@pytest.mark.parametrize(
    ("pattern", "groups", "what"),
    [
        (HUGE, "", "spans 99999999 nodes"),
        ("a,rack[1-1000]-n[1-1000]", "", "spans 1000001 nodes"),
        ("login1,node[1-99999999]!node[1-99999998]", "", "spans 100000000 nodes"),
        ("@all", 'all = "n[1-99999999]"', "group @all spans 99999999 nodes"),
        ("@outer", 'outer = "@inner"\ninner = "x[1-5000000]"', "group @inner spans 5000000 nodes"),
    ],
)
def test_huge_node_set_refused_in_one_line_without_expanding(
    tmp_path: Path, pattern: str, groups: str, what: str
) -> None:
    site = init_site(tmp_path / "site")
    if groups:
        set_config(site, "fleet", "groups", dict(line.replace('"', "").split(" = ") for line in groups.splitlines()))
    proc = run_console_limited(site, "fleet", "check", pattern)
    assert proc.returncode == BAD_INPUT, proc.stderr
    line = _one_line(proc.stderr)
    assert what in line and "more than the limit of 100000 ([fleet] max_nodes)" in line, line
    assert proc.stdout == ""


def test_max_nodes_is_configurable(tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    set_config(site, "fleet", "max_nodes", 10)
    proc = run_console_limited(site, "fleet", "check", "n[1-11]", "--json")
    assert proc.returncode == BAD_INPUT
    assert "spans 11 nodes, more than the limit of 10" in _one_line(proc.stderr)


def test_expand_sizes_from_text_and_never_hands_a_huge_set_to_clustershell(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.fleet.nodeset import span

    assert span("node[001-128],gpu[01-04]") == 132
    assert span("rack[1-4]-n[1-10],x,y") == 42
    assert span("n[1-100/2]!n5") == 50
    assert span("n[1-10]&m[1-3],x") == 10  # n[1-10] is expanded, even if the result is 4
    assert span("n[1-200000]!n[1-150000]") == 200000
    assert span("@gpu,login1") == 1
    assert len(expand("n[1-100000]")) == 100000
    with pytest.raises(BadInput, match="spans 11 nodes"):
        expand("n[1-11]", max_nodes=10)
    assert expand("n[1-10]", max_nodes=10)[-1] == "n10"

    def no_expansion(*args: object, **kw: object) -> None:
        raise AssertionError("ClusterShell was asked to expand the set")

    monkeypatch.setattr(nodeset_module, "NodeSet", no_expansion)
    for pattern in (HUGE, "a[1-999999]b[1-999999]", "x,node[0-100000]"):
        with pytest.raises(BadInput, match=r"more than the limit of 100000 \(\[fleet\] max_nodes\)"):
            expand(pattern)
    with pytest.raises(BadInput, match="more than the limit"):
        nodeset_module.count(HUGE)
