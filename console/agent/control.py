"""``console agent start|stop|status``: run the agent in the background, ask it how it is, stop it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from console.agent import client
from console.agent.address import private_dir_problem, runtime_dir, socket_path
from console.agent.server import DEFAULT_IDLE_S, lock_path, log_path

__all__ = ["DEFAULT_IDLE_S", "Status", "start", "status", "stop"]
from core.errors import BadInput, DepotError

#: How long ``start`` waits for the agent to answer (it imports the console first: about a second).
START_TIMEOUT_S = 30.0
#: How long ``stop`` waits for an agent with no running verb to exit.
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Status:
    """What a running agent says of itself (``running=False``: none answers)."""

    running: bool
    socket: str
    pid: int | None = None
    served: int = 0
    busy: int = 0
    started: float | None = None

    def to_json(self) -> dict:
        return {
            "running": self.running,
            "socket": self.socket,
            "pid": self.pid,
            "verbs_served": self.served,
            "verbs_running": self.busy,
            "started": self.started,
        }


def _ask(kind: str) -> Status:
    path = socket_path()
    sock = client.connect()
    if sock is None:
        return Status(False, path)
    try:
        client.send(sock, client.encode([kind]))
        line = client.Replies(sock).next()
    finally:
        sock.close()
    if line is None or not line.startswith(b"O"):
        return Status(False, path)
    pid, served, busy, started = line[1:].split()
    return Status(True, path, int(pid), int(served), int(busy), float(started))


def status() -> Status:
    return _ask("ping")


def _holds_lock() -> bool:
    """Whether an agent process still holds the install's lock (it does until it exits)."""
    try:
        fd = os.open(lock_path(), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def start(idle_timeout_s: float = DEFAULT_IDLE_S) -> tuple[Status, bool]:
    """Start the agent unless one answers; (its status, whether this call started it).

    Raises ``BadInput`` (with the agent's own reason) if it could not start."""
    now = status()
    if now.running:
        return now, False
    directory = runtime_dir()
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create the agent's directory {directory}: {exc.strerror}") from None
    problem = private_dir_problem(directory)
    if problem:
        raise BadInput(f"not starting the agent: {problem}")
    log = open(log_path(), "ab")  # noqa: SIM115 (the agent keeps it as its stderr)
    with log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console.agent.server", "--idle-timeout", str(idle_timeout_s)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        now = status()
        if now.running:
            return now, True
        code = proc.poll()
        if code is not None:
            raise BadInput(f"the agent did not start: {_last_log_line() or f'exit code {code}'}")
        time.sleep(0.02)  # polling for the socket to answer, with a deadline
    proc.terminate()
    raise DepotError(f"the agent did not answer within {START_TIMEOUT_S:.0f} s (log: {log_path()})")


def _last_log_line() -> str:
    try:
        with open(log_path(), "rb") as f:
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].split(": ", 1)[-1] if lines else ""


def stop() -> Status:
    """Ask the agent to stop; wait for it to exit when no verb of it is running. Its last status."""
    last = _ask("stop")
    if last.running and last.busy == 0:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _holds_lock() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the process to exit, with a deadline
    return last
