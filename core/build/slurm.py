"""Build executor ``slurm`` (issue 15): each target of a build is one ``sbatch`` job.

``console build SPEC --builder B --arch a,b --executor slurm`` (or ``[build] executor = "slurm"``)
runs the build worker on the console host as always (``core.build.jobs``); only the per-target
step moves to the batch system. For each target the worker

1. prepares ``<shared_dir>/depot-build-<site>-<id>/<arch>/`` in the directory every node sees
   (``[build] slurm_shared_dir``): ``task.json`` (builder, options, the spec copied to
   ``<build dir>/source/``), ``job.sh``, then ``image/`` and ``work/`` are filled by the job;
2. submits ``sbatch --parsable --job-name=depot-build-<id>-<arch> --output=<arch>/job.out
   --open-mode=append <[build] slurm_options> <[build] slurm_targets[arch]> job.sh``;
3. follows the job: its state (``squeue -t all``: PENDING, RUNNING, then COMPLETED, FAILED,
   CANCELLED, TIMEOUT…) goes into the build row (``jobs``: per target the job id, state, node,
   exit code), its output file into the build log as it grows (so ``builds log ID --follow`` shows
   it live, lines prefixed ``[arch]`` like local builds);
4. once the job ended, reads ``result.json`` (what the node-side step wrote: the builder's
   `BuildOutput`, or its one-line error) and ``exit`` (the job script's exit code).

On the node the job runs ``python -m core.build.slurm target task.json`` (``[build] slurm_python``,
default: the console's own interpreter with its source on ``PYTHONPATH``, which suits a console
installed on a shared file system): the same builder, through the same `Runner`, writing into the
job's output file. A target fails when its job does (the error names the target and the job id);
the worker then scancels the other targets, exactly as a local build cancels its other targets.
The images come back through the shared directory: publish and promote read them there, on the
console, only when every target succeeded (``core.build.jobs``). The shared build directory is
removed after a publish or a cancel and kept after a failure, like ``<site>/builds/<id>``.

Cancelling (``builds cancel ID``, Ctrl-C) scancels every job of the build and waits until Slurm
says none is pending or running. A worker that died (SIGKILL) leaves jobs behind: the dead-worker
check scancels the jobs recorded in the row (`scancel_recorded`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.build.run import BuildCancelled, Runner
from core.durable import atomic_write
from core.errors import BadInput, CheckFailed, DepotError

#: Slurm job states after which nothing more happens (``squeue -t all`` shows them a while).
TERMINAL = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
)
_REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_CLIENT_TIMEOUT_S = 60.0
GONE = "GONE"  # squeue no longer knows the job
_SQUEUE_RETRIES = 5  # consecutive squeue failures before a target is given up


def check_config(build: Any) -> Path:
    """The shared directory of ``[build]`` (a BuildSettings), checked; BadInput naming the key."""
    if not build.slurm_shared_dir:
        raise BadInput("--executor slurm needs [build] slurm_shared_dir: a directory the console and every node see")
    shared = Path(build.slurm_shared_dir).expanduser()
    if not shared.is_dir():
        raise BadInput(f"[build] slurm_shared_dir {shared} is not a directory")
    if shutil.which("sbatch") is None:
        raise BadInput("sbatch not found: the Slurm client commands are needed for --executor slurm")
    for arch, opts in build.slurm_targets.items():
        try:
            shlex.split(opts)
        except ValueError as exc:
            raise BadInput(f"[build] slurm_targets {arch}: {exc}") from None
    return shared


def build_dir(site_root: Path | str, shared: Path, build_id: int) -> Path:
    """``<shared>/depot-build-<8 hex of the site path>-<id>``: sites may share the directory."""
    tag = hashlib.sha256(str(Path(site_root).resolve()).encode()).hexdigest()[:8]
    return Path(shared) / f"depot-build-{tag}-{build_id}"


def sbatch_options(build: Any, arch: str) -> list[str]:
    """``[build] slurm_options`` then ``slurm_targets[arch]`` (shell words): where ``arch`` builds."""
    return [*build.slurm_options, *shlex.split(build.slurm_targets.get(arch, ""))]


def _client(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=_CLIENT_TIMEOUT_S,
            start_new_session=True,  # a cancel's SIGTERM to the worker's group must not kill squeue mid-poll
        )
    except FileNotFoundError:
        raise CheckFailed(f"{argv[0]} not found: the Slurm client commands are needed for --executor slurm") from None
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{argv[0]} did not answer within {_CLIENT_TIMEOUT_S:g}s") from None


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def job_state(job: str, env: Mapping[str, str]) -> tuple[str, str, str]:
    """(state, node, reason) of a job (``squeue -t all``); state ``GONE`` when squeue no longer knows it."""
    proc = _client(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T|%N|%r"], env)
    line = _last(proc.stdout)
    if proc.returncode != 0 or not line:
        if proc.returncode != 0 and "invalid job id" not in proc.stderr.lower():
            raise CheckFailed(f"squeue failed for job {job}: {_last(proc.stderr) or f'exit {proc.returncode}'}")
        return GONE, "", ""
    state, _, rest = line.partition("|")
    node, _, reason = rest.partition("|")
    reason = reason.strip()
    return state.strip().upper(), node.strip(), "" if reason in ("None", "(null)") else reason


def scancel(jobs: list[str], env: Mapping[str, str]) -> None:
    """scancel every job (errors ignored: a job already gone is what was wanted)."""
    if jobs:
        try:
            _client(["scancel", "--full", *jobs], env)
        except CheckFailed:
            pass


def scancel_recorded(row: Mapping[str, Any]) -> list[str]:
    """scancel the jobs a build row records as not yet ended (a dead worker's); the job ids."""
    try:
        jobs = json.loads(row.get("jobs") or "{}") if isinstance(row.get("jobs"), str) else dict(row.get("jobs") or {})
    except ValueError:
        return []
    live = [
        str(j["job"]) for j in jobs.values() if isinstance(j, dict) and j.get("job") and j.get("state") not in TERMINAL
    ]
    scancel(live, os.environ)
    return live


class SlurmExecutor:
    """Runs the targets of one build as sbatch jobs (see the module docstring); thread-safe."""

    def __init__(self, build: Any, site_root: Path | str, row: Mapping[str, Any], runner: Runner) -> None:
        self.config = build
        self.shared = check_config(build)
        self.id = int(row["id"])
        self.row = row
        self.runner = runner
        self.root = build_dir(site_root, self.shared, self.id)
        self.env = dict(os.environ)
        self.poll_s = float(build.slurm_poll_s)
        self._lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self._synced = ""
        self._cancelled = False
        self._source: Path | None = None

    # -- where things are ----------------------------------------------------------------------
    def target_dir(self, arch: str) -> Path:
        return self.root / arch

    def image_dir(self, arch: str) -> Path:
        return self.target_dir(arch) / "image"

    def _set(self, arch: str, **values: Any) -> None:
        with self._lock:
            self.jobs.setdefault(arch, {}).update(values)

    def jobs_json(self) -> str | None:
        """The ``jobs`` column if it changed since the last call, else None (the caller writes it)."""
        with self._lock:
            text = json.dumps(self.jobs, sort_keys=True)
            if text == self._synced:
                return None
            self._synced = text
            return text

    # -- one target ----------------------------------------------------------------------------
    def _copy_source(self, source: Path) -> Path:
        """The spec, copied once into the shared build dir (the nodes may not see the console's disk)."""
        with self._lock:
            if self._source is None:
                dest = self.root / "source" / source.name
                if dest.exists():
                    shutil.rmtree(dest) if dest.is_dir() and not dest.is_symlink() else dest.unlink()
                dest.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, dest, symlinks=True)
                else:
                    shutil.copy2(source, dest)
                self._source = dest
            return self._source

    def _python(self) -> tuple[list[str], dict[str, str]]:
        if self.config.slurm_python:
            return shlex.split(self.config.slurm_python), {}
        return [sys.executable], {"PYTHONPATH": str(_REPO_ROOT)}

    def _job_script(self, task: Path, exit_file: Path) -> str:
        python, env = self._python()
        exports = "".join(f'export {k}={shlex.quote(v)}"${{{k}:+:${k}}}"\n' for k, v in env.items())
        cmd = shlex.join([*python, "-m", "core.build.slurm", "target", str(task)])
        tmp = shlex.quote(str(exit_file) + ".tmp")
        return (
            "#!/bin/sh\n"
            f"# depot-console build {self.id}, target {task.parent.name}\n"
            f"{exports}"
            f"cd {shlex.quote(str(task.parent))} || exit 1\n"
            f"{cmd}\n"
            "rc=$?\n"
            f'echo "$rc" > {tmp} && mv {tmp} {shlex.quote(str(exit_file))}\n'
            'exit "$rc"\n'
        )

    def build(self, arch: str, builder: str, source: Path, options: dict[str, Any], site_builders: dict) -> Any:
        """Build ``arch`` as one sbatch job; the `BuildOutput`. CheckFailed naming the job when it
        fails, BuildCancelled when the build is cancelled (the job is scancelled first)."""
        from core.build.builders import BuildOutput

        if self._cancelled or self.runner.cancelled:
            raise BuildCancelled(f"build cancelled before {arch} was submitted")
        d = self.target_dir(arch)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        src = self._copy_source(Path(source))
        task = d / "task.json"
        out, result, exit_file = d / "job.out", d / "result.json", d / "exit"
        atomic_write(
            task,
            json.dumps(
                {
                    "build": self.id,
                    "arch": arch,
                    "builder": builder,
                    "site_builders": dict(site_builders),
                    "source": str(src),
                    "options": options,
                    "out": str(self.image_dir(arch)),
                    "work": str(d / "work"),
                    "log": str(out),
                    "result": str(result),
                },
                sort_keys=True,
            ).encode(),
            durable=False,
        )
        script = d / "job.sh"
        script.write_text(self._job_script(task, exit_file))
        script.chmod(0o755)
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name=depot-build-{self.id}-{arch}",
            f"--output={out}",
            "--open-mode=append",
            f"--chdir={d}",
            *sbatch_options(self.config, arch),
            str(script),
        ]
        self.runner.log(arch, "$ " + shlex.join(argv))
        with self._lock:
            if self._cancelled:
                raise BuildCancelled(f"build cancelled before {arch} was submitted")
            proc = _client(argv, self.env)
            if proc.returncode != 0:
                why = _last(proc.stderr).removeprefix("sbatch: error: ") or f"exit {proc.returncode}"
                self.jobs.setdefault(arch, {}).update(job=None, state="REFUSED", detail=why)
                self.runner.log(arch, f"sbatch refused the job: {why}")
                raise CheckFailed(f"{arch}: sbatch refused the job: {why}")
            job = _last(proc.stdout).split(";")[0]
            self.jobs.setdefault(arch, {}).update(job=job, state="PENDING", node="", output=str(out))
        self.runner.log(
            arch, f"Slurm job {job} submitted: {shlex.join(sbatch_options(self.config, arch)) or 'no options'}"
        )
        state = self._follow(arch, job, out)
        exit_code = _read_int(exit_file)
        self._set(arch, state=state, exit=exit_code)
        if self._cancelled or self.runner.cancelled:
            raise BuildCancelled(f"build cancelled while Slurm job {job} built {arch}")
        doc = _read_json(result)
        if state == "COMPLETED" and exit_code == 0 and doc.get("ok") is True:
            self.runner.log(arch, f"Slurm job {job} built {arch}: image in {self.image_dir(arch)}")
            return BuildOutput(**doc["output"])
        why = str(doc.get("error") or "") or (
            f"exit {exit_code}" if exit_code is not None else f"ended {state.lower()} without a result"
        )
        self.runner.log(arch, f"Slurm job {job} {state.lower()}: {why}")
        raise CheckFailed(f"{arch}: Slurm job {job} {state.lower()}: {why}")

    def _follow(self, arch: str, job: str, out: Path) -> str:
        """Copy the job's output into the build log and its state into ``jobs`` until it ended."""
        offset, last, state, errors = 0, "", "PENDING", 0
        while True:
            offset = self._copy_output(arch, out, offset)
            cancelled = self._cancelled or self.runner.cancelled
            if cancelled:
                scancel([job], self.env)
            try:
                state, node, reason = job_state(job, self.env)
                errors = 0
            except CheckFailed as exc:  # the controller busy or restarting: try again a few times
                errors += 1
                if errors >= _SQUEUE_RETRIES:
                    if not cancelled:
                        scancel([job], self.env)
                    raise CheckFailed(f"{arch}: {exc} ({errors} times); Slurm job {job} scancelled") from None
                self.runner.log(arch, f"{exc}; trying again")
                time.sleep(self.poll_s)
                continue
            if state != last:
                if state != GONE:
                    self._set(arch, state=state, node=node, reason=reason)
                    where = ", ".join(x for x in (f"on {node}" if node else "", reason) if x)
                    self.runner.log(arch, f"Slurm job {job} {state.lower()}" + (f" ({where})" if where else ""))
                last = state
            if state in TERMINAL or state == GONE:
                break
            time.sleep(self.poll_s)
        self._copy_output(arch, out, offset, final=True)
        if state == GONE:  # purged before we saw it end: the exit file says how it went
            code = _read_int(out.parent / "exit")
            state = "COMPLETED" if code == 0 else "FAILED" if code is not None else "CANCELLED"
        return state

    def _copy_output(self, arch: str, out: Path, offset: int, final: bool = False) -> int:
        try:
            with open(out, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return offset
        if not final:
            data = data[: data.rfind(b"\n") + 1]
        prefix = f"[{arch}] "
        for raw in data.decode("utf-8", "replace").splitlines():
            self.runner.log(arch, raw.removeprefix(prefix))
        return offset + len(data)

    # -- cancelling and cleaning up ------------------------------------------------------------
    def cancel(self) -> None:
        """scancel every job of the build (the followers then see them end and raise BuildCancelled)."""
        with self._lock:
            self._cancelled = True
            live = [str(j["job"]) for j in self.jobs.values() if j.get("job") and j.get("state") not in TERMINAL]
        if live:
            self.runner.log("build", f"scancel {' '.join(live)}")
        scancel(live, self.env)

    def cleanup(self, keep: bool) -> None:
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.lstrip("-").isdigit() else None


# --- the node side -------------------------------------------------------------------------------


def run_target(task_path: Path) -> int:
    """``python -m core.build.slurm target TASK``: build one target on the node (inside the job)."""
    from core.build.builders import BuildTarget, get_builder, load_site_builders

    task = json.loads(Path(task_path).read_text("utf-8"))
    result = Path(task["result"])
    runner = Runner(Path(task["log"]))
    runner.install_sigterm_handler()  # scancel: SIGTERM to the job, the runner kills its commands
    arch = task["arch"]
    node = os.environ.get("SLURMD_NODENAME") or os.uname().nodename
    runner.log(arch, f"building on {node} (Slurm job {os.environ.get('SLURM_JOB_ID', '?')})")
    try:
        load_site_builders(task["site_builders"])
        builder = get_builder(task["builder"])
        target = BuildTarget(arch, Path(task["out"]), Path(task["work"]))
        output = builder.build(Path(task["source"]), target, runner, task["options"])
    except DepotError as exc:
        runner.log(arch, f"failed: {exc}")
        atomic_write(result, json.dumps({"ok": False, "error": str(exc).splitlines()[0]}).encode(), durable=False)
        return 1
    atomic_write(result, json.dumps({"ok": True, "output": asdict(output)}).encode(), durable=False)
    runner.log(arch, "done")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "target":
        sys.stderr.write("usage: python -m core.build.slurm target TASK.json\n")
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return run_target(Path(args[1]))


if __name__ == "__main__":
    raise SystemExit(main())
