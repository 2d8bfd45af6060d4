"""The installed ``console`` command (``bin/console``): with an agent running it hands a headless
command line to the agent from ``python -S`` (the entry point never runs); otherwise, or when the
agent does not take the line, it runs the ``depot-console`` entry point, with the same output and
exit codes either way. Also checked on a real wheel installed into a virtual environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from fixtures.agent import ENTRY_POINT, Agent, install_commands
from helpers import REPO

#: An entry point that only says it ran: a call that gives anything else never reached it.
NOT_HERE = "#!{python}\nimport sys\nsys.stderr.write('entry point ran\\n')\nsys.exit(99)\n"


def lines_to_compare(site: Path, agent: Agent) -> list[list[str]]:
    doc = json.loads(agent.run("--headless", "--site", str(site), "releases", "--json", agent=False).stdout)
    first, second = doc[0]["id"][:12], doc[1]["id"][:12]
    return [
        ["--headless", "--site", str(site), *line]
        for line in (
            ["releases", "--json"],
            ["show", first],
            ["diff", first, second, "--json"],
            ["show", "feedface"],  # unknown: one line on stderr, exit 2
            ["shw"],  # usage error
        )
    ] + [["--version"]]


def test_with_an_agent_the_command_never_runs_the_entry_point(agent: Agent, demo_site: Path, tmp_path: Path) -> None:
    command = install_commands(tmp_path / "bin")
    (tmp_path / "bin" / "depot-console").write_text(NOT_HERE.format(python=sys.executable))
    lines = lines_to_compare(demo_site, agent)
    for argv in lines:
        here, there = agent.run(*argv, agent=False), agent.run(*argv, via=[str(command)])
        assert (there.returncode, there.stdout, there.stderr) == (here.returncode, here.stdout, here.stderr), argv
    assert agent.served() == len(lines)
    # The agent's own controls are not handed to it: the entry point runs them.
    status = agent.run("agent", "status", via=[str(command)])
    assert (status.returncode, status.stderr) == (99, "entry point ran\n")
    off = agent.run("--headless", "--site", str(demo_site), "releases", via=[str(command)], agent=False)
    assert (off.returncode, off.stderr) == (99, "entry point ran\n")
    assert agent.served() == len(lines)


def test_without_an_agent_the_command_runs_the_entry_point(tmp_path: Path, demo_site: Path) -> None:
    idle = Agent(tmp_path)  # its directory holds no socket: no agent was started
    command = install_commands(tmp_path / "bin")
    lines = lines_to_compare(demo_site, idle)
    for argv in lines:
        here, there = idle.run(*argv, agent=False), idle.run(*argv, via=[str(command)])
        assert (there.returncode, there.stdout, there.stderr) == (here.returncode, here.stdout, here.stderr), argv
    assert list(idle.runtime.iterdir()) == []
    status = idle.run("agent", "status", "--json", via=[str(command)])
    assert status.returncode == 1 and json.loads(status.stdout)["running"] is False


def test_an_entry_point_that_is_not_a_python_script_is_run_as_it_is(
    agent: Agent, demo_site: Path, tmp_path: Path
) -> None:
    command = install_commands(tmp_path / "bin")
    # pip writes a /bin/sh wrapper instead of a shebang line when the interpreter's path is too long.
    (tmp_path / "bin" / "depot-console").write_text('#!/bin/sh\necho "wrapper: $*" >&2\nexit 7\n')
    ran = agent.run("--headless", "--site", str(demo_site), "releases", via=[str(command)])
    assert (ran.returncode, ran.stderr) == (7, f"wrapper: --headless --site {demo_site} releases\n")
    assert agent.served() == 0


def test_a_wheel_installed_into_a_venv_hands_verbs_to_its_agent(tmp_path: Path, demo_site: Path) -> None:
    source, wheels, venv = tmp_path / "source", tmp_path / "wheels", tmp_path / "venv"
    source.mkdir()
    for part in ("pyproject.toml", "README.md"):  # a copy: setuptools writes build/ into the tree
        shutil.copy2(REPO / part, source / part)
    for part in ("bin", "core", "console"):
        shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv], check=True)
    (wheel,) = wheels.glob("depot_console-*.whl")
    subprocess.run([*pip, "--python", venv / "bin" / "python", "install", "--no-deps", wheel], check=True)
    command = venv / "bin" / "console"
    assert command.read_bytes() == (REPO / "bin" / "console").read_bytes() and command.stat().st_mode & 0o111
    assert (venv / "bin" / "depot-console").read_text().startswith(f"#!{venv}/bin/python")

    installed = Agent(tmp_path)
    installed.env.pop("PYTHONPATH")  # the venv's own copy of the console, not this checkout's
    via = [str(command)]
    try:
        started = installed.run("agent", "start", "--json", via=via)
        assert started.returncode == 0 and json.loads(started.stdout)["started_now"] is True, started.stderr
        where = installed.run(
            "-c", "import console; print(console.__file__)", via=[str(venv / "bin" / "python")], cwd=tmp_path
        )
        assert where.stdout.startswith(f"{venv}/lib/"), where.stdout
        argv = ["--headless", "--site", str(demo_site), "releases", "--json"]
        expected = installed.run(*argv, agent=False, via=via)
        assert expected.returncode == 0 and json.loads(expected.stdout)
        entry = venv / "bin" / "depot-console"
        real = entry.read_text()
        entry.write_text(NOT_HERE.format(python=venv / "bin" / "python"))
        try:
            there = installed.run(*argv, via=via)
        finally:
            entry.write_text(real)
        assert (there.returncode, there.stdout, there.stderr) == (0, expected.stdout, "")
        assert json.loads(installed.run("agent", "status", "--json", via=via).stdout)["verbs_served"] == 1
    finally:
        installed.run("agent", "stop", via=via)
        installed.wait_for(lambda s: not s["running"])
    assert ENTRY_POINT.splitlines()[2:] == real.splitlines()[2:]  # the entry point the fixture imitates
