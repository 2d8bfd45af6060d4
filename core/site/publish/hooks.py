"""The site's publish hooks (``[publish]`` ``pre_publish``, ``post_publish``, ``abort_publish``)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

from core.environ import child_env
from core.errors import CheckFailed, DepotError
from core.site.site import Site

if TYPE_CHECKING:
    from core.site.publish.plan import Plan


def hook_env(site: Site, planned: Plan) -> dict[str, str]:
    """What every hook of this publish sees in its environment, besides the console's own."""
    return {"DEPOT_STORE": site.store.location, "DEPOT_RELEASE_NAME": planned.name, "DEPOT_RELEASE": planned.release_id}


def run_hook(site: Site, which: str, env_extra: dict[str, str]) -> None:
    """Run a configured shell hook (``pre_publish``, ``post_publish``, ``abort_publish``)."""
    cmd = str(getattr(site.config.publish, which)).strip()
    if not cmd:
        return
    env = child_env(env_extra)  # hooks never see the console's secrets
    proc = subprocess.run(cmd, shell=True, cwd=site.root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise CheckFailed(f"{which} hook failed (exit {proc.returncode}): {tail[0]}")


@contextlib.contextmanager
def aborting(site: Site, env: dict[str, str]) -> Iterator[None]:
    """Run ``abort_publish`` when the body fails (an error, Ctrl-C, an OS error), then re-raise.

    A failing abort hook never hides the error that caused the abort.
    """
    try:
        yield
    except (DepotError, KeyboardInterrupt, OSError):
        with contextlib.suppress(DepotError):
            run_hook(site, "abort_publish", env)
        raise
