"""The launcher's side: hand one command line to the agent, or report that it cannot be handed.

Builtins only (``_socket``, ``_signal``): this runs before the console is imported, and what it
imports is what a call through the agent pays. The request is one message: ``MAGIC``, a 4-byte
length, then NUL-separated fields (``run``, working directory, umask, argument count, the
arguments, then ``NAME=value`` environment entries; none of them can hold a NUL), with the
caller's descriptors 0, 1 and 2 attached (``SCM_RIGHTS``). The agent answers lines: ``P<pid>``
once the verb runs in that process, ``X<code>`` when it has ended (negative: killed by that
signal), or ``S`` when it declines (it is stopping, or its code changed on disk).
"""

from __future__ import annotations

import _signal
import _socket
import os
import sys

from console.agent.address import MAGIC, private_dir_problem, runtime_dir, socket_path

#: Signals the caller receives (Ctrl-C at a terminal, a scheduler's TERM) passed on to the verb.
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
#: Exit code when the agent disappears while a verb runs: its outcome is unknown (DESIGN §8: 1).
LOST = 1


def connect(path: str | None = None) -> _socket.socket | None:
    """A connection to this user's agent (checked to be run by this user), or None."""
    if path is None:
        directory = runtime_dir()
        if private_dir_problem(directory) is not None:
            return None
        path = socket_path(directory)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    except OSError:
        sock.close()
        return None
    if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
        sock.close()
        return None
    return sock


def encode(fields: list[str]) -> bytes:
    payload = b"\0".join(f.encode("utf-8", "surrogateescape") for f in fields)
    return MAGIC + len(payload).to_bytes(4, "big") + payload


def send(sock: _socket.socket, message: bytes, fds: list[int] | None = None) -> None:
    ancillary = []
    if fds:
        raw = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, raw)]
    sent = sock.sendmsg([message], ancillary)
    while sent < len(message):
        sent += sock.send(message[sent:])


class Replies:
    """The agent's answer lines, one at a time (None at end of stream)."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def next(self) -> bytes | None:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


def run(argv: list[str], argv0: str = "console") -> int | None:
    """Run ``argv`` in the agent; the verb's exit code, or None if no agent took it (the caller
    then runs it itself: nothing has started)."""
    sock = connect()
    if sock is None:
        return None
    try:
        try:
            cwd = os.getcwd()
        except OSError:
            return None
        mask = os.umask(0)
        os.umask(mask)
        env = [f"{k}={v}" for k, v in os.environ.items()]
        send(sock, encode(["run", cwd, str(mask), str(len(argv) + 1), argv0, *argv, *env]), [0, 1, 2])
        replies = Replies(sock)
        first = replies.next()
        if first is None or not first.startswith(b"P"):
            return None
        pid = int(first[1:])
        previous = {}
        for name in FORWARDED:
            signum = getattr(_signal, name)
            previous[signum] = _signal.signal(signum, lambda s, _f: _pass_on(pid, s))
        try:
            last = replies.next()
        finally:
            for signum, handler in previous.items():
                _signal.signal(signum, handler)
        if last is None or not last.startswith(b"X"):
            os.write(2, b"console: the agent stopped while it ran this command; its outcome is unknown\n")
            return LOST
        code = int(last[1:])
        return 128 - code if code < 0 else code
    except OSError:
        return None
    finally:
        sock.close()


def _pass_on(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass
