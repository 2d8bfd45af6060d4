"""The console agent (``console agent start``): command lines handed to a resident, pre-imported
console run with the caller's descriptors, directory, environment and signals, and give exactly
what running them in a new interpreter gives; the agent steps aside when its code changes, never
serves another user's directory, and stops when idle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO

LAUNCH = [sys.executable, "-m", "console"]  # the entry point a script calls (``console.launch``)


class Agent:
    """One private agent: its runtime directory and the environment that reaches it."""

    def __init__(self, tmp: Path) -> None:
        self.runtime = tmp / "run"
        self.runtime.mkdir(mode=0o700)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(self.runtime), PYTHONPATH=str(REPO))
        self.env.pop("DEPOT_CONSOLE_AGENT", None)

    def run(self, *args: str, agent: bool = True, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
        env = dict(self.env, **({} if agent else {"DEPOT_CONSOLE_AGENT": "off"}), **kw.pop("env", {}))
        return subprocess.run([*LAUNCH, *args], capture_output=True, text=True, env=env, cwd=cwd, **kw)

    def status(self) -> dict:
        return json.loads(self.run("agent", "status", "--json").stdout)

    def wait_for(self, predicate, deadline_s: float = 20.0) -> dict:
        end = time.monotonic() + deadline_s
        while True:
            st = self.status()
            if predicate(st) or time.monotonic() > end:
                return st
            time.sleep(0.05)  # polling the agent's status, with a deadline


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = Agent(tmp_path)
    started = a.run("agent", "start", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["started_now"] is True
    yield a
    st = a.status()
    a.run("agent", "stop")
    if st.get("pid"):
        a.wait_for(lambda s: not s["running"])
        with_pid_gone(st["pid"])


def with_pid_gone(pid: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)  # polling for the agent's exit, with a deadline
    os.kill(pid, signal.SIGKILL)


def release_ids(agent: Agent, site: Path) -> list[str]:
    doc = json.loads(agent.run("--headless", "--site", str(site), "releases", "--json", agent=False).stdout)
    return [r["id"] for r in doc]


def test_verbs_through_the_agent_give_what_a_new_interpreter_gives(agent: Agent, demo_site: Path) -> None:
    first, second = release_ids(agent, demo_site)[:2]
    lines = [
        ["releases", "--json"],
        ["releases"],
        ["show", first[:12], "--json"],
        ["diff", first[:12], second[:12], "--json"],
        ["channels"],
        ["show", "feedface"],  # unknown: one line on stderr, exit 2
        ["show", "../x"],  # malformed
        ["shw"],  # usage error
        ["show", "--help"],
    ]
    for line in lines:
        argv = ["--headless", "--site", str(demo_site), *line]
        here, there = agent.run(*argv, agent=False), agent.run(*argv)
        assert (there.returncode, there.stdout, there.stderr) == (here.returncode, here.stdout, here.stderr), line
    assert agent.run("--headless", "--site", str(demo_site), "show", "feedface").stderr.count("\n") == 1
    assert agent.status()["verbs_served"] == len(lines) + 1  # every call above ran in the agent


def test_the_callers_directory_environment_and_descriptors_reach_the_verb(
    agent: Agent, demo_site: Path, tmp_path: Path
) -> None:
    here = agent.run("--headless", "releases", "--json", agent=False, env={"DEPOT_CONSOLE_SITE": str(demo_site)})
    by_env = agent.run("--headless", "releases", "--json", env={"DEPOT_CONSOLE_SITE": str(demo_site)})
    by_cwd = agent.run("--headless", "--site", "site", "releases", "--json", cwd=demo_site.parent)
    assert here.returncode == 0 and json.loads(here.stdout)
    assert by_env.stdout == by_cwd.stdout == here.stdout
    now = agent.run(
        "--headless",
        "--site",
        "site",
        "releases",
        cwd=demo_site.parent,
        env={"DEPOT_CONSOLE_NOW": "2027-01-01T00:00:00Z"},
    )
    assert "month" in now.stdout  # the caller's clock, not the agent's
    with open(tmp_path / "out.json", "wb") as out, open(os.devnull, "rb") as nothing:
        to_file = subprocess.run(
            [*LAUNCH, "--headless", "--site", str(demo_site), "releases", "--json"],
            env=agent.env,
            stdin=nothing,
            stdout=out,
        )
    assert to_file.returncode == 0 and (tmp_path / "out.json").read_text() == here.stdout
    assert agent.status()["verbs_served"] == 4


def test_a_signal_to_the_caller_reaches_the_verb(agent: Agent, demo_site: Path, tmp_path: Path) -> None:
    mute = socket.socket()  # accepts connections (the kernel does) and never answers them
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    url = f"http://127.0.0.1:{mute.getsockname()[1]}/"
    argv = ["--headless", "--site", str(demo_site), "node", "hydrate", "--root", str(tmp_path / "node")]
    proc = subprocess.Popen(
        [*LAUNCH, *argv, "--store", url, "--channel", "production", "--no-progress"],
        env=agent.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        st = agent.wait_for(lambda s: s["verbs_running"] == 1)
        assert st["verbs_running"] == 1, st
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        mute.close()
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "console: interrupted"
    assert agent.wait_for(lambda s: s["verbs_running"] == 0)["verbs_running"] == 0


def test_changed_code_makes_the_agent_step_aside(agent: Agent, demo_site: Path) -> None:
    argv = ["--headless", "--site", str(demo_site), "releases", "--json"]
    expected = agent.run(*argv, agent=False).stdout
    module = REPO / "console" / "agent" / "__init__.py"
    before = module.stat()
    try:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        after = agent.run(*argv)
    finally:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert after.returncode == 0 and after.stdout == expected  # run by the caller itself
    st = agent.wait_for(lambda s: not s["running"])
    assert not st["running"] and not Path(st["socket"]).exists()


def test_the_agent_never_uses_a_directory_others_can_reach(tmp_path: Path, demo_site: Path) -> None:
    a = Agent(tmp_path)
    (a.runtime / "depot-console").mkdir(mode=0o755)
    os.chmod(a.runtime / "depot-console", 0o755)
    started = a.run("agent", "start")
    assert started.returncode == 2
    assert started.stderr == (
        f"console: not starting the agent: {a.runtime}/depot-console is open to other users (mode 0755; needs 0700)\n"
    )
    assert a.run("--headless", "--site", str(demo_site), "releases").returncode == 0
    assert list((a.runtime / "depot-console").iterdir()) == []


def test_an_idle_agent_stops_and_a_second_start_finds_the_first(tmp_path: Path) -> None:
    a = Agent(tmp_path)
    assert a.run("agent", "start", "--idle-timeout", "60").returncode == 0
    again = json.loads(a.run("agent", "start", "--json").stdout)
    assert again["running"] and again["started_now"] is False
    a.run("agent", "stop")
    assert a.wait_for(lambda s: not s["running"])["running"] is False
    assert a.run("agent", "start", "--idle-timeout", "0.3").returncode == 0
    st = a.wait_for(lambda s: not s["running"])
    assert st["running"] is False
    assert a.run("agent", "status").returncode == 1
