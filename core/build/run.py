"""Run the subprocesses of a build: logged, each in its own process group, cancellable.

Every command a builder runs goes through one `Runner`. The runner

- starts each command in a new session (``start_new_session=True``), so the command and everything it
  spawns (julia's precompile workers, a compiler under pip) share one process group, the group id
  being the command's pid; Ctrl-C in the operator's terminal does not reach it, and one ``killpg``
  reaches all of it;
- gives each command a scrubbed environment (``core.environ.child_env``: no key passphrase or other
  console secret, whatever ``env`` the builder passed);
- appends the command line and its merged stdout/stderr to one log file, a line at a time and flushed,
  each line prefixed with the target arch (``[x86_64_v3] …``), so ``builds log ID --follow`` can tail
  the file while the build runs (several targets may build in parallel threads into the same log);
- raises `CheckFailed` ("julia exited 1 for x86_64_v3 (see log)") when a command fails;
- when the command's main process exits, kills whatever it left running in its group, so a build never
  leaves stray processes behind;
- on `Runner.cancel()` (from any thread) sends SIGTERM to every live group, then SIGKILL to those still
  alive after ``grace_s``; the interrupted and all later `run` calls raise `BuildCancelled`.

Cancelling from another process (``console builds cancel ID``)
---------------------------------------------------------------
The build worker (the process that owns the Runner) is started by the jobs code with
``start_new_session=True``, so its own pgid equals its pid; the jobs code stores that pgid. The worker
calls `Runner.install_sigterm_handler()` once (main thread), and passes ``pgid_file=`` so the runner
keeps the list of its live child groups on disk. ``builds cancel`` then calls `terminate_build(pgid,
pgid_file)`: SIGTERM to the worker's group, whose handler cancels the runner (the worker then records
"cancelled" and exits by itself); if the worker group is still alive after the grace period (a wedged
or SIGKILLed worker), SIGKILL goes to the worker group and to every group listed in the pgid file.
So the whole build, worker and every descendant, is reachable from the one stored pgid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from core.durable import atomic_write, create_private, ensure_dir
from core.environ import child_env
from core.errors import CheckFailed, DepotError

DEFAULT_GRACE_S = 10.0
_POLL_S = 0.02


class BuildCancelled(DepotError):
    """The build was cancelled by the operator (exit 1)."""

    exit_code = 1


def group_alive(pgid: int) -> bool:
    """True while some process of group ``pgid`` is still running (zombies count as dead).

    Zombies are skipped because an orphaned, killed grandchild stays a zombie until init reaps it,
    which some container inits do late; it runs nothing and holds nothing but its pid.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _wait_groups_dead(pgids: Sequence[int], deadline: float) -> list[int]:
    """Poll until every group in ``pgids`` is dead or ``deadline`` passes; return the live ones."""
    alive = list(pgids)
    while alive:
        alive = [g for g in alive if group_alive(g)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    return alive


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_groups(pgids: Sequence[int], grace_s: float = DEFAULT_GRACE_S) -> list[int]:
    """SIGTERM every group, SIGKILL those alive after ``grace_s``; return groups still alive after that."""
    pgids = list(dict.fromkeys(pgids))
    for g in pgids:
        _killpg(g, signal.SIGTERM)
    alive = _wait_groups_dead(pgids, time.monotonic() + grace_s)
    for g in alive:
        _killpg(g, signal.SIGKILL)
    return _wait_groups_dead(alive, time.monotonic() + max(grace_s, 1.0))


def read_pgid_file(path: Path) -> list[int]:
    """The child process groups a runner recorded in ``path`` (empty if the file is gone)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [int(tok) for tok in text.split() if tok.isdigit()]


def terminate_build(worker_pgid: int, pgid_file: Path | None = None, grace_s: float = DEFAULT_GRACE_S) -> bool:
    """Cancel a build running in another process; True when nothing of it is left running.

    SIGTERM to the worker's process group lets a worker that called `Runner.install_sigterm_handler`
    cancel cleanly. Whatever survives ``2 * grace_s`` (the worker's own grace for its children plus
    slack) is SIGKILLed: the worker group and every child group recorded in ``pgid_file``.
    """
    _killpg(worker_pgid, signal.SIGTERM)
    groups = [worker_pgid] + (read_pgid_file(pgid_file) if pgid_file else [])
    alive = _wait_groups_dead(groups, time.monotonic() + 2 * grace_s)
    for g in alive:
        _killpg(g, signal.SIGKILL)
    return not _wait_groups_dead(alive, time.monotonic() + max(grace_s, 1.0))


class Runner:
    """Runs a build's commands; see the module docstring. Thread-safe: targets may build in parallel."""

    def __init__(self, log_path: Path, *, grace_s: float = DEFAULT_GRACE_S, pgid_file: Path | None = None) -> None:
        self.log_path = Path(log_path)
        self.grace_s = grace_s
        self.pgid_file = Path(pgid_file) if pgid_file else None
        self.started_pgids: list[int] = []
        self._live: dict[int, subprocess.Popen] = {}
        self._cancelled = False
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        ensure_dir(self.log_path.parent, 0o700)  # logs are operational data: the operator's only
        create_private(self.log_path)
        os.chmod(self.log_path, 0o600)  # also when the jobs code opened it first

    # --- state -----------------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def live_pgids(self) -> list[int]:
        """Process groups of commands that are running now."""
        with self._lock:
            return list(self._live)

    def _save_pgids(self) -> None:
        if self.pgid_file is None:
            return
        atomic_write(self.pgid_file, "".join(f"{g}\n" for g in self._live).encode(), durable=False)

    # --- log -------------------------------------------------------------------------------------

    def log(self, arch: str, line: str) -> None:
        """Append one line to the log, prefixed with ``[arch]``, flushed at once."""
        with self._log_lock, open(self.log_path, "a", encoding="utf-8", errors="replace") as f:
            f.write(f"[{arch}] {line.rstrip(chr(10))}\n")

    def _pump(self, stream: IO[bytes], arch: str, sink: list[str] | None) -> None:
        with open(self.log_path, "ab", buffering=0) as f:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if sink is not None:
                    sink.append(text)
                with self._log_lock:
                    f.write(f"[{arch}] {text}\n".encode("utf-8", errors="replace"))
        stream.close()

    # --- running ---------------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        arch: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        label: str | None = None,
        capture: bool = False,
    ) -> str:
        """Run ``argv`` to completion for target ``arch``; return its output if ``capture``, else "".

        Raises `BuildCancelled` if the runner was or gets cancelled, `CheckFailed` on a non-zero exit
        or when the executable cannot be started.
        """
        argv = [str(a) for a in argv]
        name = label or os.path.basename(argv[0])
        self.log(arch, "$ " + " ".join(argv))
        sink: list[str] | None = [] if capture else None
        with self._lock:
            if self._cancelled:
                raise BuildCancelled(f"build cancelled before {name} ran for {arch}")
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=child_env(base=env),
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                self.log(arch, f"cannot start {argv[0]}: {exc.strerror or exc}")
                raise CheckFailed(f"cannot start {name} for {arch}: {exc.strerror or exc}") from None
            pgid = proc.pid  # session leader: its pid is the group id
            self._live[pgid] = proc
            self.started_pgids.append(pgid)
            self._save_pgids()
        pump = threading.Thread(target=self._pump, args=(proc.stdout, arch, sink), daemon=True)
        pump.start()
        try:
            # Wait without reaping: the zombie leader keeps the pgid reserved while stragglers die.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        finally:
            # Also when this wait is interrupted (KeyboardInterrupt): nothing of the group survives.
            _killpg(pgid, signal.SIGKILL)
            # SIGKILL is delivered asynchronously: go on only once nothing of the group runs.
            _wait_groups_dead([pgid], time.monotonic() + max(self.grace_s, 1.0))
            rc = proc.wait()
            with self._lock:
                self._live.pop(pgid, None)
                self._save_pgids()
        pump.join(self.grace_s)
        if pump.is_alive():
            # Something escaped the group (its own setsid) and holds the output pipe: stop waiting.
            self.log(arch, f"{name} left a process holding its output open; not waiting for it")
        if self._cancelled:
            self.log(arch, f"{name} cancelled")
            raise BuildCancelled(f"build cancelled while {name} ran for {arch}")
        if rc != 0:
            how = f"exited {rc}" if rc > 0 else f"killed by {signal.Signals(-rc).name}"
            self.log(arch, f"{name} {how}")
            raise CheckFailed(f"{name} {how} for {arch} (see log)")
        return "\n".join(sink) if sink is not None else ""

    # --- cancelling ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Kill every live command group (SIGTERM, SIGKILL after ``grace_s``); refuse later runs.

        Returns once no process of those groups is running any more (or after a bounded wait).
        """
        with self._lock:
            self._cancelled = True
            groups = list(self._live)
        kill_groups(groups, self.grace_s)

    def install_sigterm_handler(self) -> None:
        """Make SIGTERM (and SIGINT) to this build worker process cancel the runner.

        For a process that exists to run one build (not the TUI); call it from the main thread.
        The handler only starts a thread: killing and waiting happens outside the signal handler, the
        interrupted `run` then raises `BuildCancelled` in the normal way.
        """

        def handler(signum: int, frame: object) -> None:
            threading.Thread(target=self.cancel, name="build-cancel", daemon=True).start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
