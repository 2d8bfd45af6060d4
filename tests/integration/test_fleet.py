"""core.node.probe and core.fleet.ssh against a real sshd on loopback (tests/fixtures/sshd.py).

Every fleet outcome is produced by a real fault: a closed address, a wrong host key, an
unauthorized key, a server-side ForceCommand that blocks or hides python3.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import core.node.probe
from core.errors import BadInput
from core.fleet.ssh import NodeResult, apply_parser, classify, probe_nodes, remote_command_line, run_fleet, ssh_argv
from core.node.probe import PROBE_SCHEMA, parse_probe_output, probe_source, read_cpuinfo, run_probe

from fixtures.sshd import PLAIN_CPUINFO, ZEN3_CPUINFO, SshdServer, ssh_client_pids

ZEN3_FLAGS = sorted(
    set(
        next(line for line in ZEN3_CPUINFO.read_text().splitlines() if line.startswith("flags"))
        .split(":", 1)[1]
        .split()
    )
)
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
# Generous for nodes that answer (a loaded 2-core CI box), and what slownode always runs into.
DEADLINE = 6.0


# ---- the probe itself (local) ----


def test_probe_source_is_stdlib_only_and_old_python_syntax() -> None:
    source = probe_source()
    assert source == Path(core.node.probe.__file__).read_bytes()
    tree = ast.parse(source, feature_version=(3, 6))
    top_imports = {
        alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    }
    top_imports |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert top_imports <= set(sys.stdlib_module_names)


def test_probe_script_from_stdin_with_cpuinfo_override_and_channels(tmp_path: Path) -> None:
    release_hex = "ab" * 32
    (tmp_path / "releases" / release_hex / "zen3").mkdir(parents=True)
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "production").symlink_to(f"../releases/{release_hex}/zen3")
    (tmp_path / "current" / "broken").symlink_to("../elsewhere")
    (tmp_path / "current" / "README").write_text("not a channel")
    env = {**os.environ, "DEPOT_PROBE_CPUINFO": str(ZEN3_CPUINFO)}
    # -I: no project on sys.path, exactly like a bare node.
    done = subprocess.run(
        [sys.executable, "-I", "-", "--root", str(tmp_path)],
        input=probe_source(),
        capture_output=True,
        env=env,
        cwd="/",
        check=True,
    )
    data = parse_probe_output(done.stdout)
    assert done.stdout.count(b"\n") == 1
    assert data["schema"] == PROBE_SCHEMA
    assert data["cpuinfo"] == {
        "vendor": "AuthenticAMD",
        "model_name": "AMD EPYC 7763 64-Core Processor",
        "family": "25",
        "model": "1",
        "flags": ZEN3_FLAGS,
        "implementer": "",
        "part": "",
        "features": [],
    }
    assert data["channels"] == {
        "production": {
            "release": f"sha256:{release_hex}",
            "arch": "zen3",
            "target": f"../releases/{release_hex}/zen3",
            "exists": True,
        },
        "broken": {"release": None, "arch": None, "target": "../elsewhere", "exists": False},
    }
    assert data["cpus"] == os.cpu_count()
    assert data["memory"] > 0
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))


def test_probe_reads_aarch64_fields(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve atomics fp\n"
        "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\n"
        "CPU part\t: 0xd40\nCPU revision\t: 1\n\nprocessor\t: 1\nFeatures\t: other\n"
    )
    assert read_cpuinfo(str(cpuinfo)) == {
        "vendor": "",
        "model_name": "",
        "family": "",
        "model": "",
        "flags": [],
        "implementer": "0x41",
        "part": "0xd40",
        "features": ["asimd", "atomics", "fp", "sve"],
    }


def test_run_probe_locally_without_root() -> None:
    data = run_probe()
    assert data["channels"] == {}
    assert parse_probe_output(json.dumps(data).encode()) == data


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (b"", "bad probe output: empty"),
        (b"hello\n", "bad probe output: not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b"[1, 2]\n", "bad probe output: not a JSON object"),
        (b'{"schema": "depot-probe/1"}\n{}\n', "bad probe output: more than one line"),
        (b'{"schema": "other/9"}', "bad probe output: unknown schema 'other/9'"),
        (b"\xff\xfe", "bad probe output: not UTF-8"),
    ],
)
def test_parse_probe_output_refuses_garbage(stdout: bytes, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_probe_output(stdout)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("hostname"), "bad probe output: fields differ (missing ['hostname'], unexpected [])"),
        (lambda d: d.update(extra=1), "bad probe output: fields differ (missing [], unexpected ['extra'])"),
        (lambda d: d.update(cpus="2"), "bad probe output: cpus is not a non-negative integer"),
        (lambda d: d.update(memory=True), "bad probe output: memory is not a non-negative integer"),
        (lambda d: d["cpuinfo"].update(flags="avx2"), "bad probe output: cpuinfo.flags is not a list of strings"),
        (lambda d: d["cpuinfo"].update(vendor=None), "bad probe output: cpuinfo.vendor missing or not a string"),
        (lambda d: d["os"].pop("kernel"), "bad probe output: os.kernel missing or not a string"),
        (lambda d: d.update(channels={"p": {"release": 1}}), "bad probe output: channels.p has the wrong fields"),
    ],
)
def test_parse_probe_output_is_strict_about_shape(mutate, message: str) -> None:
    data = run_probe()
    mutate(data)
    with pytest.raises(BadInput) as caught:
        parse_probe_output(json.dumps(data).encode())
    assert str(caught.value) == message


# ---- classification and command lines (no network) ----


@pytest.mark.parametrize(
    ("code", "stderr", "status", "detail"),
    [
        (0, "", "ok", "exit 0"),
        (
            255,
            "ssh: connect to host h port 22: Connection refused\r\n",
            "unreachable",
            "ssh: connect to host h port 22: Connection refused",
        ),
        (
            255,
            "ssh: Could not resolve hostname nx: Name or service not known\r\n",
            "unreachable",
            "ssh: Could not resolve hostname nx: Name or service not known",
        ),
        (255, "root@h: Permission denied (publickey).\r\n", "auth-refused", "root@h: Permission denied (publickey)."),
        (
            255,
            "@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nHost key verification failed.\r\n",
            "host-key-mismatch",
            "host key does not match known_hosts (remote host identification has changed)",
        ),
        (127, "bash: line 1: python3: command not found\n", "no-python", "bash: line 1: python3: command not found"),
        (2, "sh: 1: python3: not found\n", "no-python", "sh: 1: python3: not found"),
        (3, "boom\nlast words\n", "remote-failed", "exit 3: last words"),
        (1, "", "remote-failed", "exit 1"),
    ],
)
def test_classify(code: int, stderr: str, status: str, detail: str) -> None:
    assert classify(code, stderr) == (status, detail)


def test_ssh_argv_adds_only_batchmode_and_connect_timeout() -> None:
    assert ssh_argv("n1", ["python3", "-", "--root", "/a b"], connect_timeout=2.5, ssh_config="/c") == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=3",
        "-F",
        "/c",
        "--",
        "n1",
        "python3 - --root '/a b'",
    ]
    assert ssh_argv("n1", ["true"]) == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "--", "n1", "true"]
    with pytest.raises(BadInput, match=r"^bad node name '-oProxyCommand=x'$"):
        ssh_argv("-oProxyCommand=x", ["true"])


def test_remote_deadline_runs_the_command_under_timeout_on_the_node(tmp_path: Path) -> None:
    """Killing ssh does not end the remote command: run_fleet has the node end it at the deadline.
    The login shell sees one simple command (``sh -c SCRIPT sh WORDS``: csh and fish run it too);
    a node whose ``timeout`` refuses ``-k`` (old busybox) runs the words as they are."""
    line = ssh_argv("n1", ["python3", "-", "--root", "/a b"], remote_deadline=2.5)[-1]
    assert shlex.split(line)[:2] == ["/bin/sh", "-c"]
    assert shlex.split(line)[3:] == ["sh", "python3", "-", "--root", "/a b"]
    assert "timeout -k 2 3 " in shlex.split(line)[2]
    words = ["printf", "%s|", "a b", "$HOME", "'q'"]
    ran = subprocess.run(["sh", "-c", remote_command_line(words, 5)], capture_output=True, text=True)
    assert (ran.returncode, ran.stdout) == (0, "a b|$HOME|'q'|")
    old = tmp_path / "bin"
    old.mkdir()
    (old / "timeout").write_text("#!/bin/sh\necho 'timeout: unrecognized option -k' >&2\nexit 1\n")
    (old / "timeout").chmod(0o755)
    env = dict(os.environ, PATH=f"{old}:{os.environ['PATH']}")
    ran = subprocess.run(["sh", "-c", remote_command_line(words, 5)], capture_output=True, text=True, env=env)
    assert (ran.returncode, ran.stdout) == (0, "a b|$HOME|'q'|")


async def test_run_fleet_refuses_bad_arguments() -> None:
    with pytest.raises(BadInput, match="^fanout must be at least 1, not 0$"):
        await run_fleet(["n"], ["true"], None, fanout=0)
    with pytest.raises(BadInput, match="^empty remote command$"):
        await run_fleet(["n"], [], None)


# ---- against the real sshd ----


async def test_probe_every_alias_streams_exact_statuses(sshd: SshdServer) -> None:
    streamed: list[NodeResult] = []
    results = await probe_nodes(
        list(EXPECTED), ssh_config=sshd.config_path, deadline=DEADLINE, connect_timeout=5, on_result=streamed.append
    )
    assert [r.node for r in results] == list(EXPECTED)
    assert {r.node: r.status for r in results} == EXPECTED, {r.node: r.detail for r in results}
    # One callback per node, each with the final (parsed) result object.
    assert sorted(r.node for r in streamed) == sorted(EXPECTED)
    assert all(any(s is r for s in streamed) for r in results)
    # slownode is the last to finish: it waits for the deadline.
    assert streamed[-1].node == "slownode"

    by_node = {r.node: r for r in results}
    for name in sshd.plain_nodes:
        data = by_node[name].data
        assert data["schema"] == PROBE_SCHEMA and data["channels"] == {}
        assert data["cpuinfo"] == read_cpuinfo(str(PLAIN_CPUINFO))
        assert by_node[name].exit_code == 0
    zen3 = by_node["zen3node"].data["cpuinfo"]
    assert zen3["vendor"] == "AuthenticAMD"
    assert zen3["model_name"] == "AMD EPYC 7763 64-Core Processor"
    assert zen3["flags"] == ZEN3_FLAGS
    assert {"avx2", "vaes", "vpclmulqdq", "pku"} <= set(zen3["flags"]) and "avx512f" not in zen3["flags"]

    assert by_node["deadnode"].exit_code == 255
    assert by_node["deadnode"].detail.endswith(f"port {sshd.port}: Connection refused")
    assert by_node["slownode"].exit_code is None
    assert by_node["slownode"].detail == f"no answer within the {DEADLINE:g}s deadline; ssh killed"
    assert by_node["badkeynode"].exit_code == 255
    assert "Host key verification failed." in by_node["badkeynode"].stderr_tail
    assert by_node["refusednode"].detail.endswith("Permission denied (publickey).")
    assert by_node["nopynode"].exit_code == 127
    assert by_node["nopynode"].detail.endswith("python3: not found")
    assert all(r.data is None for r in results if r.status != "ok")
    assert ssh_client_pids(sshd.config_path) == []


async def test_probe_reports_node_channels_over_ssh(sshd: SshdServer, tmp_path: Path) -> None:
    release_hex = "cd" * 32
    (tmp_path / "releases" / release_hex / "x86_64_v3").mkdir(parents=True)
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "production").symlink_to(f"../releases/{release_hex}/x86_64_v3")
    [result] = await probe_nodes(["node02"], root=str(tmp_path), ssh_config=sshd.config_path)
    assert result.status == "ok", result.detail
    assert result.data["channels"] == {
        "production": {
            "release": f"sha256:{release_hex}",
            "arch": "x86_64_v3",
            "target": f"../releases/{release_hex}/x86_64_v3",
            "exists": True,
        }
    }


async def test_fanout_two_completes_every_node(sshd: SshdServer) -> None:
    running = 0
    peak = 0

    def started(node: str) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)

    def finished(result: NodeResult) -> None:
        nonlocal running
        running -= 1

    nodes = sshd.plain_nodes + ["zen3node"]
    results = await probe_nodes(nodes, fanout=2, ssh_config=sshd.config_path, on_start=started, on_result=finished)
    assert [(r.node, r.status) for r in results] == [(n, "ok") for n in nodes]
    assert 1 <= peak <= 2


async def test_remote_argv_exit_codes_and_bad_output(sshd: SshdServer) -> None:
    [echo] = await run_fleet(["node03"], ["printf", "%s|", "a b", "c;d", "$HOME"], None, ssh_config=sshd.config_path)
    assert (echo.status, echo.stdout) == ("ok", b"a b|c;d|$HOME|")
    [failed] = await run_fleet(["node03"], ["sh", "-c", "echo oops >&2; exit 3"], None, ssh_config=sshd.config_path)
    assert (failed.status, failed.exit_code, failed.detail) == ("remote-failed", 3, "exit 3: oops")
    [piped] = await run_fleet(["node04"], ["cat"], b"x" * 300_000, ssh_config=sshd.config_path)
    assert (piped.status, len(piped.stdout)) == ("ok", 300_000)
    [garbage] = await run_fleet(["node05"], ["echo", "not json"], None, ssh_config=sshd.config_path)
    apply_parser(garbage, parse_probe_output)
    assert (garbage.status, garbage.data) == ("bad-output", None)
    assert garbage.detail == "bad probe output: not JSON (Expecting value: line 1 column 1 (char 0))"


async def test_cancellation_kills_every_ssh(sshd: SshdServer) -> None:
    nodes = ["slownode", "slownode", "slownode"]
    all_started = asyncio.Event()
    started: list[str] = []

    def on_start(node: str) -> None:
        started.append(node)
        if len(started) == len(nodes):
            all_started.set()

    task = asyncio.create_task(
        run_fleet(nodes, ["true"], b"", ssh_config=sshd.config_path, deadline=3600, on_start=on_start)
    )
    await all_started.wait()
    until = asyncio.get_running_loop().time() + 10  # each ssh seen by /proc once it runs: poll, bounded
    while len(ssh_client_pids(sshd.config_path)) < 3 and asyncio.get_running_loop().time() < until:
        await asyncio.sleep(0.05)
    assert len(ssh_client_pids(sshd.config_path)) == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ssh_client_pids(sshd.config_path) == []
