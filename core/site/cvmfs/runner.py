"""Every change to a CVMFS repository goes through the site's own tools, one change at a time.

* ``locked(site, target)``: an exclusive lock per repository on the console host
  (``<site>/cvmfs/<repo>.lock``) held by every publish, channel flip, sync and gc, so a gc never
  races a publish (CVMFS's own gc/publish collision: cvmfs#2968). A second caller waits up to
  ``[cvmfs] lock_timeout_s``, then gets Conflict (exit 3).
* ``Runner.transaction()``: the ``transaction`` command, the body, then ``publish``; if the body
  or ``publish`` fails, ``abort`` discards the transaction and the repository is as it was. A
  journal (``<site>/cvmfs/<repo>.txn``) exists while a transaction is open: a console killed
  meanwhile leaves it, and the next change to that repository aborts the orphan first.
* ``Runner.ingest()``: a tar stream to the ``ingest`` command (no transaction overlay).

Commands are templates split into words (no shell): ``{repo}``, ``{mount}`` and ``{base_dir}``
are replaced inside words. Each run command is recorded (``Runner.ran``) so the console can show
the operator exactly what it did.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from core.clock import format_time
from core.errors import CheckFailed, Conflict
from core.site.cvmfs.layout import Target

if TYPE_CHECKING:
    from core.site.site import Site

_POLL_S = 0.05


def state_dir(site: Site) -> Path:
    """``<site>/cvmfs``: locks, journals and the last outcome per target (never in the repository)."""
    path = Path(site.root) / "cvmfs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(site: Site, target: Target) -> Iterator[None]:
    """Hold the repository's lock (see the module docstring) for the body."""
    path = state_dir(site) / f"{target.repo}.lock"
    deadline = time.monotonic() + site.config.cvmfs.lock_timeout_s
    with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    holder = f.read().decode(errors="replace").strip() or "another console"
                    raise Conflict(
                        f"{target.repo}: another publish, sync or gc is running ({holder}); "
                        "nothing changed, run the command again when it is done"
                    ) from None
                time.sleep(_POLL_S)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} since {format_time(site.now())}".encode())
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


class Runner:
    """Runs a target's command templates; use under ``locked``."""

    def __init__(self, site: Site, target: Target) -> None:
        self.site = site
        self.target = target
        self.journal = state_dir(site) / f"{target.repo}.txn"
        self.ran: list[str] = []

    # -- commands ---------------------------------------------------------------------------------
    def argv(self, step: str, base_dir: str = "") -> list[str]:
        words = shlex.split(self.target.templates[step])
        values = {"{repo}": self.target.repo, "{mount}": str(self.target.mount), "{base_dir}": base_dir}
        out = []
        for word in words:
            for token, value in values.items():
                word = word.replace(token, value)
            out.append(word)
        return out

    def run(self, step: str, *, base_dir: str = "", feed: Callable[[IO[bytes]], None] | None = None) -> None:
        """Run template ``step``; CheckFailed (exit 1) naming the command and its last line on failure.

        ``feed`` writes the command's stdin (ingest's tar stream)."""
        argv = self.argv(step, base_dir)
        self.ran.append(shlex.join(argv))
        env = dict(os.environ, DEPOT_CVMFS_REPO=self.target.repo, DEPOT_CVMFS_MOUNT=str(self.target.mount))
        with tempfile.TemporaryFile() as out:  # files, not pipes: a chatty command never blocks the feed
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE if feed else subprocess.DEVNULL, stdout=out, stderr=out, env=env
                )
            except OSError as exc:
                raise CheckFailed(f"{self.target.name}: cannot run {argv[0]} ({exc.strerror})") from None
            feed_error: BaseException | None = None
            if feed is not None:
                assert proc.stdin is not None
                try:
                    feed(proc.stdin)
                except BrokenPipeError:
                    pass  # the command stopped reading: its exit code says why
                except BaseException as exc:  # noqa: BLE001 - re-raised after the command is reaped
                    feed_error = exc
                    proc.kill()
                finally:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
            proc.wait()
            if feed_error is not None:
                raise feed_error
            out.seek(0)
            output = out.read()
        if proc.returncode != 0:
            lines = output.decode("utf-8", "replace").strip().splitlines()
            raise CheckFailed(
                f"{self.target.name}: '{shlex.join(argv)}' failed (exit {proc.returncode})"
                + (f": {lines[-1]}" if lines else "")
            )

    # -- transactions -----------------------------------------------------------------------------
    def recover(self) -> bool:
        """Abort a transaction a killed console left open (its journal is still here); True if one was."""
        if not self.journal.exists():
            return False
        with contextlib.suppress(CheckFailed):  # the repository may have no transaction any more
            self.run("abort")
        self.journal.unlink(missing_ok=True)
        return True

    @contextlib.contextmanager
    def transaction(self, what: str) -> Iterator[Path]:
        """Open a transaction, yield the writable repository path, publish; abort on any failure."""
        self.recover()
        self.journal.write_text(json.dumps({"pid": os.getpid(), "what": what, "since": format_time(self.site.now())}))
        try:
            self.run("transaction")
        except BaseException:
            self.journal.unlink(missing_ok=True)
            raise
        try:
            yield self.target.mount
            self.run("publish")
        except BaseException:
            with contextlib.suppress(CheckFailed):
                self.run("abort")
            self.journal.unlink(missing_ok=True)
            raise
        self.journal.unlink(missing_ok=True)

    def ingest(self, base_dir: str, feed: Callable[[IO[bytes]], None]) -> None:
        """Stream a tar (written by ``feed``) into ``base_dir`` with the ingest command."""
        self.recover()
        self.run("ingest", base_dir=base_dir, feed=feed)
