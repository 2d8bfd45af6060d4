"""The agent: import the console once, then run each command line in a ``fork`` of itself.

    python -m console.agent.server [--idle-timeout S]      (started by ``console agent start``)

One process per user and install (``address``), holding ``agent-<key>.lock`` for its lifetime so
two can never serve one socket. It stays single-threaded (``fork`` copies only the calling
thread), accepts connections only from its own user (``SO_PEERCRED``), and per request:

1. declines (``S``) if a module it imported has changed on disk since it started (an upgrade, an
   edit): the caller runs the command line itself and the agent stops, so the next start serves
   the new code;
2. forks; the child takes the caller's descriptors, directory, environment, umask and arguments,
   runs ``console.cli.main`` and exits with its code; the parent answers ``P<pid>``;
3. when the child ends (a ``pidfd`` becomes readable) answers ``X<code>``; if the caller hangs up
   first, the child gets ``SIGTERM``, as a command line's process would from a closed terminal.

It stops after ``--idle-timeout`` seconds with no verb running and no request, on ``SIGTERM``, or on
a ``stop`` request: it stops listening at once (callers fall back to running verbs themselves) and
exits once its running verbs have ended.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import importlib
import io
import os
import selectors
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from console.agent.address import MAGIC, install_key, private_dir_problem, runtime_dir, socket_path

if TYPE_CHECKING:
    from console.cli import ArgumentParser

DEFAULT_IDLE_S = 1800
#: Largest request accepted (arguments plus environment).
MAX_REQUEST = 4 << 20
#: How long a connected caller may take to send its request.
REQUEST_TIMEOUT_S = 5.0
#: What the agent imports before serving: what the headless verbs import, lazily or not.
PRELOAD = (
    "console.cli",
    "console.verbs",
    "core.site.site",
    "core.site.diff",
    "core.site.catalogue",
    "core.site.channels",
    "core.site.verify",
    "core.site.publish",
    "core.node.env",
    "core.node.hydrate",
    "core.node.smoke",
    "core.node.probe",
    "core.store.http",
    "core.trust.signing",
    "core.fleet.check",
    "archspec.cpu",
    "httpx",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
)


def lock_path() -> str:
    return os.path.join(runtime_dir(), f"agent-{install_key()}.lock")


def log_path() -> str:
    return os.path.join(runtime_dir(), f"agent-{install_key()}.log")


def preload() -> ArgumentParser:
    """Import what verbs need; the whole parser, built once (which imports every verb group)."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from console.cli import build_parser
    from core.site.db.lazydb import import_sqlite_utils

    import_sqlite_utils()
    return build_parser()


def warm_up(parser: ArgumentParser) -> None:
    """Run a few verbs on a throw-away site (and home), output discarded, so that what a first
    call initializes lazily (annotations evaluated, patterns compiled, the signing library's
    tables) is in the memory every fork starts from, not redone by each."""
    from console.cli import main

    saved_env, saved_streams = dict(os.environ), (sys.stdout, sys.stderr)
    with tempfile.TemporaryDirectory(prefix="depot-agent-warm-") as tmp:
        os.environ.update(HOME=tmp, XDG_DATA_HOME=tmp, XDG_CONFIG_HOME=tmp, DEPOT_CONSOLE_SITE=f"{tmp}/site")
        sys.stdout = sys.stderr = io.StringIO()
        try:
            for argv in (["init"], ["releases"], ["channels"], ["show", "0000"], ["diff", "0000", "1111"]):
                with contextlib.suppress(Exception, SystemExit):
                    main(["--headless", "--site", f"{tmp}/site", *argv, "--json"], parser)
        finally:
            sys.stdout, sys.stderr = saved_streams
            os.environ.clear()
            os.environ.update(saved_env)


def code_stamp() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every imported module file of this install (``console``, ``core``)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    roots = tuple(os.path.join(here, p) + os.sep for p in ("console", "core"))
    stamp = {}
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None)
        if isinstance(path, str) and path.startswith(roots):
            with contextlib.suppress(OSError):
                st = os.stat(path)
                stamp[path] = (st.st_mtime_ns, st.st_size)
    return stamp


def stamp_changed(stamp: dict[str, tuple[int, int]]) -> bool:
    for path, seen in stamp.items():
        try:
            st = os.stat(path)
        except OSError:
            return True
        if (st.st_mtime_ns, st.st_size) != seen:
            return True
    return False


def decode(payload: bytes) -> list[str]:
    return [f.decode("utf-8", "surrogateescape") for f in payload.split(b"\0")]


def read_request(conn: socket.socket) -> tuple[list[str], list[int]]:
    """The request's fields and the descriptors that came with it (closed here if it is bad)."""
    conn.settimeout(REQUEST_TIMEOUT_S)
    fds: list[int] = []
    try:
        data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        while len(data) < 8 or len(data) < 8 + int.from_bytes(data[4:8], "big"):
            if not data.startswith(MAGIC[: len(data)]) or len(data) > MAX_REQUEST + 8:
                raise ValueError("not a request")
            chunk = conn.recv(65536)
            if not chunk:
                raise ValueError("request cut short")
            data += chunk
        if not data.startswith(MAGIC) or len(data) != 8 + int.from_bytes(data[4:8], "big"):
            raise ValueError("not a request")
        return decode(data[8:]), fds
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise
    finally:
        conn.settimeout(None)


@dataclass
class Running:
    """A verb in a child process: its caller's connection and its pidfd."""

    pid: int
    conn: socket.socket
    pidfd: int
    hung_up: bool = False


@dataclass
class Agent:
    """The serving loop's state."""

    idle_s: float
    listener: socket.socket
    path: str
    stamp: dict[str, tuple[int, int]]
    started: float = field(default_factory=time.time)
    served: int = 0
    running: dict[int, Running] = field(default_factory=dict)
    stopping: bool = False
    last_activity: float = field(default_factory=time.monotonic)
    listener_inode: int = 0
    parser: ArgumentParser | None = None

    def status_line(self) -> bytes:
        return f"O{os.getpid()} {self.served} {len(self.running)} {self.started:.3f}\n".encode()

    def stop_listening(self, sel: selectors.BaseSelector) -> None:
        if self.stopping:
            return
        self.stopping = True
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(self.listener)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.listener_inode:
                os.unlink(self.path)
        self.listener.close()


def child(fields: list[str], fds: list[int], keep_closed: list[int], parser: ArgumentParser) -> None:
    """In the fork: become the caller's command line, run it, exit with its code (never returns)."""
    code = 1
    try:
        for fd in keep_closed:
            with contextlib.suppress(OSError):
                os.close(fd)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        cwd, mask, argc = fields[1], int(fields[2]), int(fields[3])
        argv, env = fields[4 : 4 + argc], fields[4 + argc :]
        os.chdir(cwd)
        os.umask(mask)
        os.environ.clear()
        os.environ.update(kv.split("=", 1) for kv in env if "=" in kv)
        time.tzset()
        encoding = os.environ.get("PYTHONIOENCODING", "utf-8").split(":")[0] or "utf-8"
        sys.stdin = open(0, encoding=encoding, errors="surrogateescape", closefd=False)  # noqa: SIM115
        sys.stdout = open(
            1, "w", encoding=encoding, errors="surrogateescape", closefd=False, buffering=1 if os.isatty(1) else -1
        )  # noqa: SIM115
        sys.stderr = open(2, "w", encoding=encoding, errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        sys.argv = argv
        from console.cli import main

        try:
            code = main(argv[1:], parser)
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                sys.stderr.write(f"{exc.code}\n")
                code = 1
        except BaseException:  # what an uncaught exception does to a command line: traceback, 1
            traceback.print_exc()
            code = 1
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    except BaseException:  # the fork could not become the command line: say why on its stderr
        with contextlib.suppress(Exception):
            os.write(2, f"console: agent: {traceback.format_exc()}".encode())
    finally:
        os._exit(code & 0xFF)


def serve(agent: Agent) -> None:
    sel = selectors.DefaultSelector()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda _s, _f: None)  # the wakeup byte says it; handled below
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    sel.register(agent.listener, selectors.EVENT_READ, "listen")
    gc.freeze()  # children share the imported modules' pages instead of copying them on first gc
    while True:
        if agent.stopping and not agent.running:
            return
        timeout = None
        if agent.idle_s > 0 and not agent.running and not agent.stopping:
            timeout = max(0.0, agent.last_activity + agent.idle_s - time.monotonic())
            if timeout == 0.0:
                log("idle: stopping")
                agent.stop_listening(sel)
                continue
        for key, _mask in sel.select(timeout):
            what = key.data
            if what == "wake":
                signals = wake_r.recv(64)
                if any(s in signals for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)):
                    log("signalled: stopping")
                    agent.stop_listening(sel)
            elif what == "listen":
                accept(agent, sel, [wake_r.fileno(), wake_w.fileno(), sel_fd(sel)])
            elif isinstance(what, tuple) and what[0] == "ended":
                ended(agent, sel, what[1])
            elif isinstance(what, tuple) and what[0] == "caller":
                hung_up(agent, sel, what[1])


def sel_fd(sel: selectors.BaseSelector) -> int:
    fileno = getattr(sel, "fileno", None)
    return fileno() if fileno is not None else -1


def accept(agent: Agent, sel: selectors.BaseSelector, own_fds: list[int]) -> None:
    try:
        conn, _ = agent.listener.accept()
    except OSError:
        return
    cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
        conn.close()
        return
    try:
        fields, fds = read_request(conn)
    except (OSError, ValueError):
        conn.close()
        return
    kind = fields[0] if fields else ""
    try:
        if kind == "ping":
            conn.sendall(agent.status_line())
        elif kind == "stop":
            conn.sendall(agent.status_line())
            log("asked to stop")
            agent.stop_listening(sel)
        elif kind == "run" and len(fds) == 3 and len(fields) >= 4 and not agent.stopping:
            if stamp_changed(agent.stamp):
                conn.sendall(b"S\n")
                log("code changed on disk: stopping")
                agent.stop_listening(sel)
            else:
                agent.last_activity = time.monotonic()
                start(agent, sel, conn, fields, fds, own_fds)
                return
        else:
            conn.sendall(b"S\n")
    except OSError:
        pass
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    conn.close()


def start(
    agent: Agent, sel: selectors.BaseSelector, conn: socket.socket, fields: list[str], fds: list[int], own: list[int]
) -> None:
    held = [*own, agent.listener.fileno(), conn.fileno()]
    held += [fd for r in agent.running.values() for fd in (r.conn.fileno(), r.pidfd)]
    pid = os.fork()
    if pid == 0:
        assert agent.parser is not None
        child(fields, fds, held, agent.parser)
    agent.served += 1
    pidfd = os.pidfd_open(pid)
    agent.running[pid] = Running(pid, conn, pidfd)
    sel.register(pidfd, selectors.EVENT_READ, ("ended", pid))
    try:
        conn.sendall(f"P{pid}\n".encode())
        sel.register(conn, selectors.EVENT_READ, ("caller", pid))
    except OSError:
        hang_up_child(agent.running[pid])


def hang_up_child(run: Running) -> None:
    if not run.hung_up:
        run.hung_up = True
        with contextlib.suppress(OSError):
            os.kill(run.pid, signal.SIGTERM)


def hung_up(agent: Agent, sel: selectors.BaseSelector, pid: int) -> None:
    """The caller's connection is readable: it has gone (it sends nothing after its request)."""
    run = agent.running.get(pid)
    if run is None:
        return
    with contextlib.suppress(KeyError, ValueError):
        sel.unregister(run.conn)
    hang_up_child(run)


def ended(agent: Agent, sel: selectors.BaseSelector, pid: int) -> None:
    run = agent.running.pop(pid)
    sel.unregister(run.pidfd)
    with contextlib.suppress(KeyError, ValueError):
        sel.unregister(run.conn)
    _, status = os.waitpid(pid, 0)
    os.close(run.pidfd)
    with contextlib.suppress(OSError):
        run.conn.sendall(f"X{os.waitstatus_to_exitcode(status)}\n".encode())
    run.conn.close()
    agent.last_activity = time.monotonic()


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} agent[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m console.agent.server")
    ap.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_S, metavar="S")
    args = ap.parse_args(argv)
    directory = runtime_dir()
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    problem = private_dir_problem(directory)
    if problem:
        log(f"not starting: {problem}")
        return 2
    lock = os.open(lock_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("not starting: an agent is already running")
        return 3
    parser = preload()
    warm_up(parser)
    if threading.active_count() != 1:
        log("not starting: preloading started threads (fork would lose them)")
        return 1
    path = socket_path(directory)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a dead agent's socket: the lock says no agent holds it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    agent = Agent(args.idle_timeout, listener, path, code_stamp(), parser=parser)
    agent.listener_inode = os.stat(path).st_ino
    log(f"serving on {path} ({len(agent.stamp)} modules of this install preloaded)")
    try:
        serve(agent)
    finally:
        if not agent.stopping:
            with contextlib.suppress(OSError):
                os.unlink(path)
        log(f"stopped after {agent.served} verbs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
