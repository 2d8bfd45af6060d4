"""Run the real CLI in a child process under hostile limits: a capped address space (``RLIMIT_AS``)
or a permissive umask.

A memory bound is asserted by the child surviving the limit, never by timing: a console that
buffers a hostile node's endless output, or expands a huge node set, dies of MemoryError inside it.
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

from helpers import CONSOLE, REPO

GIB = 1 << 30


def run_console_limited(
    site: Path | None,
    *args: str,
    limit: int | None = GIB,
    umask: int | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``console --headless [--site SITE] ARGS…`` with ``RLIMIT_AS`` = ``limit`` bytes (None: no
    cap) and, if given, ``umask`` (text mode).

    ``timeout`` only bounds a hung run so the suite cannot stall; no assertion depends on it.
    """
    full_env = dict(os.environ)
    full_env.pop("DEPOT_CONSOLE_SITE", None)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env["MALLOC_ARENA_MAX"] = "2"  # glibc reserves 64 MiB of address space per thread arena
    full_env.update(env or {})

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if umask is not None:
            os.umask(umask)

    cmd = [*CONSOLE, "--headless"] + (["--site", str(site)] if site else []) + list(args)
    return subprocess.run(
        cmd, capture_output=True, text=True, env=full_env, preexec_fn=cap, timeout=timeout, stdin=subprocess.DEVNULL
    )
