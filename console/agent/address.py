"""Where a user's agent listens: one socket per user and per install, in a private directory.

Imported by the launcher before anything else (``console.launch``), so it uses builtins only.

The directory is ``$XDG_RUNTIME_DIR/depot-console`` (per-user, ``0700`` by systemd), else
``/tmp/depot-console-<uid>``; either must be a real directory owned by the user with no access for
group or others, or it is not used (someone else could have made it to listen in our place). The
socket's name carries a short hash of the interpreter and the install's directory, so two
virtual environments of one user never reach each other's agent.
"""

from __future__ import annotations

import os
import stat
import sys

MAGIC = b"DCA1"
#: ``DEPOT_CONSOLE_AGENT=off`` makes the launcher never try the agent.
DISABLE_ENV = "DEPOT_CONSOLE_AGENT"


def runtime_dir() -> str:
    """The agent's directory (not created here)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base):
        return os.path.join(base, "depot-console")
    return f"/tmp/depot-console-{os.getuid()}"


def install_key() -> str:
    """8 hex digits of FNV-1a over the interpreter's prefix and version and this install's
    directory (not ``sys.executable``: ``python`` and ``python3.11`` are one interpreter)."""
    h = 0x811C9DC5
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version = "%d.%d" % sys.version_info[:2]
    for byte in f"{sys.prefix}\0{version}\0{here}".encode("utf-8", "surrogateescape"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def socket_path(directory: str | None = None) -> str:
    return os.path.join(directory or runtime_dir(), f"agent-{install_key()}.sock")


def private_dir_problem(directory: str) -> str | None:
    """Why ``directory`` must not hold our socket (None when it may)."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return f"{directory} does not exist"
    except OSError as exc:
        return f"{directory}: {exc.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{directory} is not a directory"
    if st.st_uid != os.getuid():
        return f"{directory} is owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
    if st.st_mode & 0o077:
        return f"{directory} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}; needs 0700)"
    return None
