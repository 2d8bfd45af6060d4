"""Smoke tests on a node: does the hydrated depot start, start warm, and load the same modules everywhere?

``run_smoke`` runs the release's smoke command (manifest ``"smoke": {"command": [...],
"timeout_s"}``) with the depot environment of ``core.node.env``, under a timeout (the whole process
group is killed when it expires), and reports exit code, output tail and wall time. With
``baseline`` it runs the same command cold afterwards and reports the start-up reduction:

* Julia: ``--compiled-modules=no`` (no package images, everything compiled again);
* Python: ``-B`` and ``PYTHONPYCACHEPREFIX`` set to an empty directory (no bytecode is found).

Julia depots run with ``JULIA_DEBUG=loading``; a line with ``Rejecting cache file`` fails the smoke
test and names the package (the cache was built for another CPU or Julia and would silently be
recompiled on every node start otherwise).

Module fingerprint (so the console can check that one image yields one module graph everywhere):

* Python: a ``sitecustomize.py`` in a temporary directory put first on ``PYTHONPATH`` registers an
  ``atexit`` hook that writes every ``sys.modules`` name with the sha256 of the file it came from
  (``__spec__.origin``). A program that ends with ``os._exit``, runs with ``-S``/``-I``, or a site
  whose own ``sitecustomize`` must run yields no fingerprint (``None``) or shadows that file.
* Julia: ``-L <hook.jl>`` is inserted after the executable; the hook registers ``atexit`` and writes
  ``Base.PkgId(m)`` name, uuid and ``Base.pathof(m)`` for ``Base.loaded_modules_array()``. The cache
  file each package came from is taken from the ``Loading (object) cache file <path> for <Name>
  [<uuid>]`` lines that ``JULIA_DEBUG=loading`` prints, and hashed.

NOT run against a real Julia: there is none on the test machines. The Julia path is tested with a
stand-in ``julia`` script that prints the debug line format of Julia 1.10's ``loading.jl``
(``┌ Debug: Rejecting cache file <path> for <Name> [<uuid>] since the flags are mismatched``) and
writes the fingerprint file as the hook would. The hook uses only ``atexit``,
``Base.loaded_modules_array``, ``Base.PkgId`` and ``Base.pathof``; the debug message texts are
Julia-internal and may change between Julia versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInput
from core.model.digest import canonical_json
from core.node.env import NodeImage, image_env, node_image
from core.node.root import NodeRoot

FINGERPRINT_ENV = "DEPOT_SMOKE_FINGERPRINT"
TAIL_LINES = 20
TAIL_BYTES = 4000
_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")
_REJECT_RE = re.compile(r"Rejecting cache file (\S+)(?:\s+for\s+([^\s\[]+)(?:\s+\[([0-9a-f-]{36})\])?)?")
_LOADING_RE = re.compile(r"Loading (?:object )?cache file (\S+) for ([^\s\[]+)(?:\s+\[([0-9a-f-]{36})\])?")

PY_HOOK = """\
import atexit, os, sys


def _depot_smoke_fingerprint():
    names = sorted(n for n in list(sys.modules) if n != "sitecustomize")
    import hashlib, json
    out = []
    for name in names:
        mod = sys.modules.get(name)
        spec = getattr(mod, "__spec__", None)
        origin = getattr(spec, "origin", None) or getattr(mod, "__file__", None)
        digest = None
        if isinstance(origin, str) and os.path.isfile(origin):
            with open(origin, "rb") as f:
                digest = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        out.append([name, digest])
    with open(os.environ["DEPOT_SMOKE_FINGERPRINT"], "w") as f:
        json.dump(out, f)


if os.environ.get("DEPOT_SMOKE_FINGERPRINT"):
    atexit.register(_depot_smoke_fingerprint)
"""

JULIA_HOOK = """\
atexit() do
    path = get(ENV, "DEPOT_SMOKE_FINGERPRINT", "")
    isempty(path) && return
    open(path, "w") do io
        for m in Base.loaded_modules_array()
            id = Base.PkgId(m)
            src = Base.pathof(m)
            println(io, id.name, '\\t', id.uuid === nothing ? "" : string(id.uuid), '\\t',
                    src === nothing ? "" : src)
        end
    end
end
"""


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


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return "sha256:" + hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


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
    lines = [
        ln for ln in output.splitlines() if not ln.startswith(("┌ Debug:", "│ ", "└ @")) and not _LOADING_RE.search(ln)
    ]
    return "\n".join(lines[-TAIL_LINES:])[-TAIL_BYTES:]


def rejected_caches(output: str) -> list[dict]:
    """Every ``Rejecting cache file`` line of Julia's loading debug output, as {package, uuid, cache_file}."""
    out, seen = [], set()
    for m in _REJECT_RE.finditer(output):
        path, name, uuid = m.group(1).rstrip(".,;:"), m.group(2), m.group(3)
        if not name:  # messages without "for <Name>": the package is the cache's directory
            name = Path(path).parent.name
        key = (name, path)
        if key not in seen:
            seen.add(key)
            out.append({"package": name, "uuid": uuid or "", "cache_file": path})
    return out


def _fingerprint(modules: list[list]) -> dict:
    modules = sorted(modules, key=lambda m: [str(x) for x in m])
    return {
        "modules": modules,
        "count": len(modules),
        "digest": "sha256:" + hashlib.sha256(canonical_json(modules)).hexdigest(),
    }


def _python_fingerprint(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return _fingerprint([[str(n), d] for n, d in data])


def _julia_fingerprint(path: Path, output: str) -> dict | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    caches = {}
    for m in _LOADING_RE.finditer(output):
        caches[(m.group(2), m.group(3) or "")] = m.group(1)
    modules = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        name, uuid = parts[0], parts[1]
        cache = caches.get((name, uuid)) or caches.get((name, ""))
        modules.append([name, uuid, _file_digest(cache) if cache else None])
    return _fingerprint(modules)


def _is_julia_cmd(cmd: list[str]) -> bool:
    return Path(cmd[0]).name.startswith("julia")


def _is_python_cmd(cmd: list[str]) -> bool:
    return bool(_PYTHON_RE.match(Path(cmd[0]).name))


def smoke_command(img: NodeImage) -> tuple[list[str], int]:
    """The release's smoke command and timeout; BadInput if it has none."""
    smoke = img.release.smoke
    if not smoke:
        raise BadInput(f"release {img.release.id[7:19]} has no smoke command (publish with --smoke CMD)")
    return list(smoke["command"]), int(smoke.get("timeout_s", 600))


def run_smoke(
    node: NodeRoot,
    channel: str,
    *,
    baseline: bool = False,
    timeout: float | None = None,
    hostname: str | None = None,
    base_env: dict[str, str] | None = None,
) -> SmokeResult:
    """Run the smoke command of the image on ``channel`` (then cold with ``baseline``)."""
    img = node_image(node, channel)
    cmd, default_timeout = smoke_command(img)
    limit = float(timeout if timeout is not None else default_timeout)
    julia = img.is_julia or _is_julia_cmd(cmd)
    depot_env = image_env(node, img)
    env = {**(base_env if base_env is not None else os.environ), **depot_env}
    with tempfile.TemporaryDirectory(prefix="depot-smoke-") as scratch_s:
        scratch = Path(scratch_s)
        fp_file = scratch / "fingerprint"
        warm_cmd, warm_env = list(cmd), dict(env, **{FINGERPRINT_ENV: str(fp_file)})
        if julia:
            warm_env["JULIA_DEBUG"] = "loading"
            if _is_julia_cmd(cmd):
                hook = scratch / "fingerprint_hook.jl"
                hook.write_text(JULIA_HOOK)
                warm_cmd = [cmd[0], "-L", str(hook), *cmd[1:]]
        if _is_python_cmd(cmd) or img.is_python:
            hookdir = scratch / "pyhook"
            hookdir.mkdir()
            (hookdir / "sitecustomize.py").write_text(PY_HOOK)
            warm_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hookdir), env.get("PYTHONPATH", "")) if p)
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
        if julia:
            result.rejected_caches = rejected_caches(warm.output)
            result.fingerprint = _julia_fingerprint(fp_file, warm.output)
        else:
            result.fingerprint = _python_fingerprint(fp_file)
        problems = []
        if warm.timed_out:
            problems.append(f"timed out after {limit:g}s")
        elif warm.exit_code != 0:
            problems.append(f"exit code {warm.exit_code}")
        if result.rejected_caches:
            problems.append(
                "Julia rejected cache files of " + ", ".join(sorted({r["package"] for r in result.rejected_caches}))
            )

        if baseline:
            cold_cmd, cold_env = list(cmd), dict(env)
            if _is_julia_cmd(cmd):
                cold_cmd = [cmd[0], "--compiled-modules=no", *cmd[1:]]
            if _is_python_cmd(cmd):
                cold_cmd = [cmd[0], "-B", *cmd[1:]]
            if _is_python_cmd(cmd) or img.is_python:
                empty = scratch / "empty-pycache"
                empty.mkdir()
                cold_env["PYTHONPYCACHEPREFIX"] = str(empty)
                cold_env["PYTHONDONTWRITEBYTECODE"] = "1"
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
