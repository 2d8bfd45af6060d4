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
from pathlib import Path

from fixtures.agent import LAUNCH, Agent
from helpers import REPO


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
