"""Smoke tests on a node: does the hydrated depot start, start warm, and load the same modules everywhere?

``run_smoke`` runs the release's smoke command (manifest ``"smoke": {"command": [...],
"timeout_s"}``) with the depot environment of ``core.node.env``, under a timeout (the whole process
group is killed when it expires), and reports exit code, output tail and wall time. With
``baseline`` it runs the same command cold afterwards and reports the start-up reduction.

What is kind-specific comes from ``core.kinds`` (`Kind.warm_up`, `Kind.cold_start`,
`Kind.read_fingerprint`, `Kind.rejected_caches`, `Kind.is_noise`), for every kind that is
*active*: the image is of that kind (``NodeImage.kinds``) or the smoke command runs its interpreter
(`Kind.runs`). Each active kind prepares the warm run in registry order (Julia: ``JULIA_DEBUG=loading``
and a ``-L`` fingerprint hook; Python: a ``sitecustomize`` fingerprint hook first on ``PYTHONPATH``)
and the cold one (Julia: ``--compiled-modules=no``; Python: ``-B`` and an empty
``PYTHONPYCACHEPREFIX``). The first active kind reads the result: its fingerprint (the module graph,
so the console can check that one image yields one module graph everywhere) and the caches its
runtime rejected (a rejected cache fails the smoke test and names the package). With no active
kind the fingerprint is whatever the command itself left in ``$DEPOT_SMOKE_FINGERPRINT`` (the
generic JSON list of ``[module, digest]``), usually None.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInput
from core.kinds import FINGERPRINT_ENV, all_kinds
from core.kinds.base import read_module_list
from core.model.digest import short
from core.node.env import NodeImage, image_env, node_image
from core.node.root import NodeRoot

TAIL_LINES = 20
TAIL_BYTES = 4000


@dataclass
class RunOutcome:
    exit_code: int | None
    output: str
    wall_s: float
    timed_out: bool


@dataclass
class SmokeResult:
    """The JSON result of ``node smoke`` (``to_json``)."""

    node: str
    channel: str
    release: str
    image: str
    command: list[str]
    ok: bool
    wall_s: float
    exit_code: int | None
    output_tail: str
    timed_out: bool = False
    baseline_s: float | None = None
    baseline_exit_code: int | None = None
    reduction: float | None = None
    rejected_caches: list[dict] = field(default_factory=list)
    fingerprint: dict | None = None
    problem: str = ""

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _run(cmd: list[str], env: dict[str, str], timeout: float, cwd: Path) -> RunOutcome:
    """Run with stdout+stderr merged; on timeout kill the whole process group."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return RunOutcome(127, f"cannot run {cmd[0]}: {exc.strerror}", time.perf_counter() - t0, False)
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        timed_out = True
    wall = time.perf_counter() - t0
    return RunOutcome(None if timed_out else proc.returncode, out.decode("utf-8", "replace"), wall, timed_out)


def _tail(output: str) -> str:
    kinds = all_kinds()
    lines = [ln for ln in output.splitlines() if not any(k.is_noise(ln) for k in kinds)]
    return "\n".join(lines[-TAIL_LINES:])[-TAIL_BYTES:]


def smoke_command(img: NodeImage) -> tuple[list[str], int]:
    """The release's smoke command and timeout; BadInput if it has none."""
    smoke = img.release.smoke
    if not smoke:
        raise BadInput(f"release {short(img.release.id)} has no smoke command (publish with --smoke CMD)")
    return list(smoke["command"]), int(smoke.get("timeout_s", 600))


def run_smoke(
    node: NodeRoot | None,
    channel: str,
    *,
    baseline: bool = False,
    timeout: float | None = None,
    hostname: str | None = None,
    base_env: dict[str, str] | None = None,
    image: NodeImage | None = None,
    depot_env: dict[str, str] | None = None,
) -> SmokeResult:
    """Run the smoke command of the image on ``channel`` (then cold with ``baseline``).

    ``image`` and ``depot_env`` run an image that is not hydrated in ``node`` (a depot read in place
    from a mount, ``core.node.mount``); the command runs in a scratch directory either way.
    """
    if image is None or depot_env is None:
        assert node is not None
        image = node_image(node, channel)
        depot_env = image_env(node, image)
    img = image
    cmd, default_timeout = smoke_command(img)
    limit = float(timeout if timeout is not None else default_timeout)
    image_kinds = img.kinds
    active = [k for k in all_kinds() if k in image_kinds or k.runs(cmd)]
    env = {**(base_env if base_env is not None else os.environ), **depot_env}
    with tempfile.TemporaryDirectory(prefix="depot-smoke-") as scratch_s:
        scratch = Path(scratch_s)
        fp_file = scratch / "fingerprint"
        warm_cmd, warm_env = list(cmd), dict(env, **{FINGERPRINT_ENV: str(fp_file)})
        for kind in active:
            warm_cmd = kind.warm_up(warm_cmd, warm_env, scratch)
        run_dir = scratch / "cwd"
        run_dir.mkdir()
        warm = _run(warm_cmd, warm_env, limit, run_dir)

        result = SmokeResult(
            node=hostname or socket.gethostname(),
            channel=channel,
            release=img.release.id,
            image=img.arch,
            command=cmd,
            ok=False,
            wall_s=round(warm.wall_s, 4),
            exit_code=warm.exit_code,
            output_tail=_tail(warm.output),
            timed_out=warm.timed_out,
        )
        if active:
            result.rejected_caches = active[0].rejected_caches(warm.output)
            result.fingerprint = active[0].read_fingerprint(fp_file, warm.output)
        else:
            result.fingerprint = read_module_list(fp_file)
        problems = []
        if warm.timed_out:
            problems.append(f"timed out after {limit:g}s")
        elif warm.exit_code != 0:
            problems.append(f"exit code {warm.exit_code}")
        if result.rejected_caches:
            problems.append(
                f"{active[0].label} rejected cache files of "
                + ", ".join(sorted({r["package"] for r in result.rejected_caches}))
            )

        if baseline:
            cold_cmd, cold_env = list(cmd), dict(env)
            for kind in active:
                cold_cmd = kind.cold_start(cold_cmd, cold_env, scratch)
            cold = _run(cold_cmd, cold_env, limit, run_dir)
            result.baseline_s = round(cold.wall_s, 4)
            result.baseline_exit_code = cold.exit_code
            if cold.exit_code == 0 and result.baseline_s > 0:
                result.reduction = round(1.0 - result.wall_s / result.baseline_s, 4)
            else:
                problems.append(
                    "baseline " + (f"timed out after {limit:g}s" if cold.timed_out else f"exit code {cold.exit_code}")
                )
    result.ok = warm.exit_code == 0 and not result.rejected_caches  # a failing cold run is only reported
    result.problem = "; ".join(problems)
    return result
