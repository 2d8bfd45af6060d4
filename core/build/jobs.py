"""Build jobs: one row in ``builds``, one worker process, one log file per build (DESIGN §7, §8).

Life of a build::

    create_build()  validate spec, builder, options, targets; insert the row "queued"; touch the log
    spawn_worker()  ``python -m core.build.jobs run SITE ID`` in a new session: its pid is the pgid of the
                    whole build, stored in the row, so ``cancel_build`` from any process reaches it
    run_build()     (in the worker) "running": targets build in parallel threads, at most
                    ``[build] parallel`` at once, through one `Runner` writing the log; the first
                    target that fails cancels the others and fails the build; then, if asked,
                    publish (core.site.publish) and promote (core.site.channels); "succeeded" / "failed" /
                    "cancelled" with a one-line ``error``

Files: ``<site>/logs/build-<id>.log`` (always kept), ``<site>/builds/<id>/<arch>/{image,work}`` and
``<site>/builds/<id>/pgids`` (the runner's live child groups). The build directory is removed after a
successful publish and after a cancel; it is kept after a failure (to debug) and after a successful
build without ``--publish`` (the images are the result).

Once a build has started publishing it is not interrupted: a half-done publish is harmless to the
store, but "cancelled" must mean "nothing published". `cancel_build` refuses then (Conflict), and a
cancel that races the switch to publishing waits for the publish and reports what happened.

A worker killed with SIGKILL cannot record its end: `get_build` / `list_builds` notice that the row is
active but its process group is gone, kill any child group it left behind and mark it failed
("worker died").
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.build.run import BuildCancelled, Runner, group_alive, kill_groups, read_pgid_file, terminate_build
from core.environ import child_env
from core.errors import BadInput, CheckFailed, Conflict, DepotError, NotFound
from core.site.site import Site, format_time, open_site
from core.trust.signing import passphrase_env

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
EXECUTORS = ("local", "slurm")  # where targets build: here, or one sbatch job each (core.build.slurm)
ACTIVE = frozenset({"queued", "running"})
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
# Steps of a running build; after "building" a cancel is refused (nothing is left to stop).
STEPS = ("building", "publishing", "promoting", "finishing")
_UNINTERRUPTIBLE = frozenset({"publishing", "promoting", "finishing"})
_POLL_S = 0.1
_REPO_ROOT = Path(__file__).resolve().parent.parent

LogSink = Callable[[str], Any]


# --- paths and rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildPaths:
    """Where one build keeps its files."""

    root: Path  # <site>/builds/<id>: per-target image and work dirs
    log: Path  # <site>/logs/build-<id>.log
    pgid_file: Path  # the runner's live child process groups

    def image_dir(self, arch: str) -> Path:
        return self.root / arch / "image"

    def work_dir(self, arch: str) -> Path:
        return self.root / arch / "work"


def build_paths(site: Site, build_id: int) -> BuildPaths:
    root = Path(site.root).resolve()
    return BuildPaths(
        root / "builds" / str(build_id),
        root / "logs" / f"build-{build_id}.log",
        root / "builds" / str(build_id) / "pgids",
    )


def _decode(raw: dict) -> dict:
    row = dict(raw)
    row["targets"] = json.loads(row["targets"] or "[]")
    row["options"] = json.loads(row["options"] or "{}")
    row["publish"] = bool(row.get("publish"))
    row["executor"] = row.get("executor") or "local"
    row["jobs"] = json.loads(row.get("jobs") or "{}")  # Slurm: per target {"job", "state", "node", "exit"}
    return row


def _load(site: Site, build_id: int) -> dict:
    row = site.state.builds.get(build_id)
    if row is None:
        raise NotFound(f"no build {build_id} (see 'console builds')")
    return _decode(row)


def _update(site: Site, build_id: int, values: dict, *, when_status: Sequence[str] = ()) -> bool:
    """Set ``values`` on the row; with ``when_status`` only if the row's status is one of them.

    The conditional form is how the worker, ``cancel_build`` and the dead-worker check agree on one
    outcome without a lock: whoever updates first wins, the others see 0 rows changed.
    """
    return site.state.builds.update(build_id, values, when_status=when_status)


def _now(site: Site) -> str:
    return format_time(site.now())


def _log_line(path: Path, line: str) -> None:
    """A job-level line in the build log, in the runner's ``[prefix] text`` format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"[build] {line}\n")


def parse_build_id(text: str | int) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise BadInput(f"build id must be a number, not {text!r}") from None
    if value <= 0:
        raise BadInput(f"build id must be positive, not {value}")
    return value


# --- inputs --------------------------------------------------------------------------------------


def builder_for(site: Site, name: str):
    """The builder called ``name``, the site's own builders from config included."""
    from core.build.builders import get_builder, load_site_builders

    load_site_builders(dict(site.config.build.builders))
    return get_builder(name)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_options(builder: Any, pairs: Sequence[str]) -> dict[str, Any]:
    """``["key=value", …]`` -> typed builder options (``builder`` is a `Builder` or its name).

    Types come from the builder's declared options: ``bool`` takes true/false/yes/no/1/0, ``int`` a
    number, ``list`` appends one item per occurrence (``smoke_command`` is split like a shell line);
    ``str`` takes the value as is. Unknown keys are left to the builder's own check.
    """
    import shlex

    if isinstance(builder, str):
        from core.build.builders import get_builder

        builder = get_builder(builder)
    known = {**builder.common_options, **builder.options}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"--option expects KEY=VALUE, got {pair!r}")
        expected = known.get(key, str)
        types = expected if isinstance(expected, tuple) else (expected,)
        if list in types:
            if key == "smoke_command":
                try:
                    out[key] = shlex.split(value)
                except ValueError as exc:
                    raise BadInput(f"--option smoke_command: {exc}") from None
            else:
                out.setdefault(key, []).append(value)
        elif bool in types:
            if value.lower() not in _TRUE | _FALSE:
                raise BadInput(f"--option {key} must be true or false, not {value!r}")
            out[key] = value.lower() in _TRUE
        elif int in types:
            try:
                out[key] = int(value)
            except ValueError:
                raise BadInput(f"--option {key} must be a whole number, not {value!r}") from None
        else:
            out[key] = value
    return out


def parse_targets(targets: str | Sequence[str]) -> list[str]:
    """``"x86_64,x86_64_v3"`` (or a list) -> checked archspec names, in order, no duplicates."""
    from core.arch import check_microarch

    items = targets.split(",") if isinstance(targets, str) else list(targets)
    names = [t.strip() for t in items if t.strip()]
    if not names:
        raise BadInput("--arch needs at least one micro-architecture, e.g. x86_64,x86_64_v3")
    seen: set[str] = set()
    for n in names:
        check_microarch(n)
        if n in seen:
            raise BadInput(f"--arch lists {n} twice")
        seen.add(n)
    return names


def default_name(source: Path) -> str:
    """The release name for a spec: a directory's name, a file's stem (``requirements.txt`` ->
    ``requirements``)."""
    source = Path(source).resolve()
    return source.name if source.is_dir() else source.stem


# --- creating and starting -----------------------------------------------------------------------


def create_build(
    site: Site,
    source: Path | str,
    builder: str,
    targets: str | Sequence[str],
    options: dict[str, Any] | None = None,
    *,
    publish: bool = False,
    promote: str | None = None,
    create: bool = False,
    override: str | None = None,
    name: str | None = None,
    label: str | None = None,
    executor: str | None = None,
) -> int:
    """Validate everything a build needs, insert its row "queued", return its id. Nothing runs yet.

    Bad input (unknown builder or option, bad spec, unknown arch, ``promote`` without ``publish``,
    ``override`` without ``promote``, bad release or channel name) raises BadInput before any row
    is written. ``promote`` to a channel the site does not have is refused as ``console promote``
    refuses it (NotFound naming the known channels) unless ``create`` (``build --create``): a typo
    never becomes a channel, however the release got there. The promote at the end goes through the channel's policy (``core.site.policy.gate``)
    like ``console promote``: unmet checks fail the build with each one named, the release stays
    published and nothing is promoted; ``override`` waives them where the policy permits.
    """
    from core.model.manifest import check_release_name
    from core.store.base import check_channel_name

    if site.read_only:
        raise BadInput("build: refused, the console is in read-only mode")
    source = Path(source).resolve()
    options = dict(options or {})
    b = builder_for(site, builder)
    arches = parse_targets(targets)
    b.validate_source(source, options)
    if promote and not publish:
        raise BadInput("--promote needs --publish (only a published release can be promoted)")
    if promote:
        check_channel_name(promote)
    if create and not promote:
        raise BadInput("--create needs --promote (it creates the channel the build promotes to)")
    if override is not None and not promote:
        raise BadInput("--override needs --promote (it waives the channel policy's unmet checks)")
    if override is not None and not override.strip():
        raise BadInput("--override needs a reason")
    if override is not None and promote:
        from core.site.policy import policy_for

        policy = policy_for(site, promote)
        if policy is None or not policy.require:
            raise BadInput(f"--override: channel {promote} has no policy to override")
    if promote and not create:
        from core.site.channels import known_channels, unknown_channel

        if promote not in known_channels(site):
            raise unknown_channel(site, promote, f"; to create it: build with '--promote {promote} --create'")
    name = check_release_name(name if name is not None else default_name(source))
    executor = executor or site.config.build.executor
    if executor not in EXECUTORS:
        raise BadInput(f"unknown build executor {executor!r} (known: {', '.join(EXECUTORS)})")
    if executor == "slurm":
        from core.build.slurm import check_config

        check_config(site.config.build)

    build_id = site.state.builds.insert(
        {
            "status": "queued",
            "builder": builder,
            "source": str(source),
            "targets": json.dumps(arches),
            "options": json.dumps(options, sort_keys=True),
            "created": _now(site),
            "actor": site.actor,
            "name": name,
            "label": label or "",
            "publish": int(bool(publish)),
            "channel": promote or None,
            "override": override,
            "executor": executor,
        }
    )
    if not label:
        label = f"build{build_id}-{site.now():%Y%m%d}"
        _update(site, build_id, {"label": label})
    paths = build_paths(site, build_id)
    _update(site, build_id, {"log_path": str(paths.log)})
    _log_line(
        paths.log,
        f"build {build_id} queued: {builder} {source} for {', '.join(arches)}"
        f"{' as Slurm jobs' if executor == 'slurm' else ''}"
        f"{' then publish ' + name + ' ' + label if publish else ''}"
        f"{' and promote to ' + promote if promote else ''}",
    )
    site.audit(
        "build",
        f"build {build_id}",
        "queued",
        {
            "builder": builder,
            "source": str(source),
            "targets": arches,
            "options": options,
            "publish": bool(publish),
            "promote": promote,
            **({"override": override} if override is not None else {}),
            "name": name,
            "label": label,
            "executor": executor,
        },
    )
    return build_id


def spawn_worker(site: Site, build_id: int) -> subprocess.Popen:
    """Start the worker for a queued build in a new session; record its pid (= its pgid).

    The worker's stdout and stderr go to the build log (anything unexpected, a traceback, lands
    there). A daemon thread reaps it, so a long-lived caller (the TUI) leaves no zombie behind.
    """
    paths = build_paths(site, build_id)
    # The worker signs the release it publishes: it alone gets the passphrase, explicitly.
    pythonpath = os.pathsep.join([str(_REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    env = child_env({"PYTHONPATH": pythonpath, **passphrase_env()})
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(paths.log, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core.build.jobs", "run", str(Path(site.root).resolve()), str(build_id)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
    except OSError as exc:
        error = f"cannot start the build worker: {exc.strerror or exc}"
        _update(site, build_id, {"status": "failed", "error": error, "finished": _now(site)}, when_status=("queued",))
        _log_line(paths.log, f"failed: {error}")
        site.audit("build-finish", f"build {build_id}", f"failed: {error}")
        raise CheckFailed(f"build {build_id}: {error}") from None
    _update(site, build_id, {"pid": proc.pid}, when_status=("queued",))
    threading.Thread(target=proc.wait, name=f"reap-build-{build_id}", daemon=True).start()
    return proc


def start_build(
    site: Site,
    source: Path | str,
    builder: str,
    targets: str | Sequence[str],
    options: dict[str, Any] | None = None,
    **kw: Any,
) -> int:
    """`create_build` + `spawn_worker`: the build runs in the background; returns its id."""
    build_id = create_build(site, source, builder, targets, options, **kw)
    spawn_worker(site, build_id)
    return build_id


# --- the worker ----------------------------------------------------------------------------------


def _merge_builder(outputs: dict[str, Any]) -> dict[str, Any]:
    """One manifest ``builder`` from per-target outputs: shared fields, plus ``targets`` holding
    the fields that differ per arch (``cflags``, ``cpu_target``)."""
    first = next(iter(outputs.values())).builder
    common = {k: v for k, v in first.items() if all(o.builder.get(k) == v for o in outputs.values())}
    differ = {a: {k: v for k, v in o.builder.items() if k not in common} for a, o in outputs.items()}
    if any(differ.values()):
        common["targets"] = {a: d for a, d in differ.items() if d}
    return common


class _Worker:
    """Runs one build in this process (see the module docstring)."""

    def __init__(self, site: Site, row: dict) -> None:
        self.site = site
        self.row = row
        self.id: int = row["id"]
        self.paths = build_paths(site, self.id)
        grace = site.config.build.grace_s
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.runner = Runner(self.paths.log, grace_s=grace, pgid_file=self.paths.pgid_file)
        self.builder = builder_for(site, row["builder"])
        self.source = Path(row["source"])
        self.options: dict[str, Any] = row["options"]
        self._lock = threading.Lock()
        self.step = "building"
        self.cancel_requested = False
        self.slurm = None
        if row.get("executor") == "slurm":
            from core.build.slurm import SlurmExecutor

            self.slurm = SlurmExecutor(site.config.build, site.root, row, self.runner)

    def image_dir(self, arch: str) -> Path:
        """Where ``arch``'s image is: the build dir, or (Slurm) the shared directory."""
        return self.slurm.image_dir(arch) if self.slurm is not None else self.paths.image_dir(arch)

    def sync_jobs(self) -> None:
        """Slurm: the per-target job ids and states into the row (main thread: one DB connection)."""
        text = self.slurm.jobs_json() if self.slurm is not None else None
        if text is not None:
            _update(self.site, self.id, {"jobs": text})

    def log(self, line: str) -> None:
        self.runner.log("build", line)

    # -- cancelling ------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT cancel the build while it is building (main thread only)."""

        def handler(signum: int, frame: object) -> None:
            threading.Thread(target=self.request_cancel, name="build-cancel", daemon=True).start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def request_cancel(self) -> None:
        with self._lock:
            self.cancel_requested = True
            step = self.step
        if step in _UNINTERRUPTIBLE:
            self.log(f"cancel requested while {step}: too late, finishing")
            return
        self.log("cancel requested")
        if self.slurm is not None:
            self.slurm.cancel()
        self.runner.cancel()

    def enter(self, step: str) -> None:
        """Move to ``step``; BuildCancelled if a cancel came first (then nothing more happens)."""
        with self._lock:
            if self.cancel_requested:
                raise BuildCancelled("build cancelled")
            self.step = step
        _update(self.site, self.id, {"step": step})

    # -- building --------------------------------------------------------------------------------
    def build_one(self, arch: str):
        from core.build.builders import BuildTarget

        if self.runner.cancelled:
            raise BuildCancelled(f"build cancelled before {arch} started")
        self.log(f"{arch}: building")
        if self.slurm is not None:
            output = self.slurm.build(
                arch, self.row["builder"], self.source, self.options, dict(self.site.config.build.builders)
            )
            self.log(f"{arch}: done")
            return output
        target = BuildTarget(arch, self.paths.image_dir(arch), self.paths.work_dir(arch))
        output = self.builder.build(self.source, target, self.runner, self.options)
        self.log(f"{arch}: done")
        return output

    def build_all(self) -> dict[str, Any]:
        """Build every target, at most ``[build] parallel`` at once; raise the first real failure."""
        targets: list[str] = self.row["targets"]
        parallel = self.site.config.build.parallel
        outputs: dict[str, Any] = {}
        failure: tuple[str, DepotError] | None = None
        with ThreadPoolExecutor(max_workers=min(parallel, len(targets)), thread_name_prefix="target") as pool:
            futures: dict[Future, str] = {pool.submit(self.build_one, a): a for a in targets}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                self.sync_jobs()
                for fut in done:
                    arch, exc = futures[fut], fut.exception()
                    target = f"build {self.id} {arch}"
                    if exc is None:
                        outputs[arch] = fut.result()
                        self.site.audit("build-target", target, "ok")
                        continue
                    if isinstance(exc, BuildCancelled):
                        self.site.audit("build-target", target, "cancelled")
                        continue
                    if not isinstance(exc, DepotError):
                        for line in traceback.format_exception(exc):
                            for part in line.rstrip("\n").splitlines():
                                self.runner.log(arch, part)
                        exc = CheckFailed(f"{arch}: {type(exc).__name__}: {exc}")
                    self.log(f"{arch}: failed: {exc}")
                    self.site.audit("build-target", target, f"error: {exc}")
                    if failure is None:
                        failure = (arch, exc)
                        # Fail fast: the other targets' work is wasted now.
                        if self.slurm is not None:
                            threading.Thread(target=self.slurm.cancel, daemon=True).start()
                        threading.Thread(target=self.runner.cancel, daemon=True).start()
        if failure is not None:
            raise failure[1]
        if len(outputs) != len(targets):
            raise BuildCancelled("build cancelled")
        return {a: outputs[a] for a in targets}

    def publish(self, outputs: dict[str, Any]) -> str:
        from core.model.digest import hash_file
        from core.site.audited import publish_release
        from core.site.catalogue import list_releases

        row, site = self.row, self.site
        first = next(iter(outputs.values()))
        source = {
            "files": {
                n: hash_file(p)[0] for n, p in sorted(self.builder.source_files(self.source, self.options).items())
            },
            "packages": first.packages,
        }
        earlier = list_releases(site, row["name"])
        parent = earlier[0]["id"] if earlier else None
        self.log(f"publishing {row['name']} {row['label']} ({', '.join(outputs)})")
        res = publish_release(
            site,
            row["name"],
            {a: self.image_dir(a) for a in outputs},
            audit={"build": self.id},
            label=row["label"],
            parent=parent,
            builder=_merge_builder(outputs),
            source=source,
            smoke=first.smoke,
            cpu_targets={a: o.cpu_target for a, o in outputs.items()},
        )
        _update(site, self.id, {"release": res.release_id})
        self.log(f"published {res.release_id}: {res.files} files, {res.new_objects} new objects")
        return res.release_id

    def run(self) -> dict:
        from core.site.channels import promote

        row, site = self.row, self.site
        status, error, release = "failed", "", None
        try:
            self.log(
                f"build {self.id} running in pid {os.getpid()}: {row['builder']} {row['source']} "
                f"for {', '.join(row['targets'])}"
            )
            outputs = self.build_all()
            if row["publish"]:
                self.enter("publishing")
                release = self.publish(outputs)
                if row["channel"]:
                    self.enter("promoting")
                    upd = promote(
                        site,
                        release,
                        row["channel"],
                        reason=f"build {self.id}",
                        create=True,  # a new channel was refused when the build was queued, unless --create
                        override=row.get("override"),
                    )
                    self.log(f"promoted {row['channel']} to {release} (version {upd.pointer.version})")
            else:
                self.enter("finishing")
            status = "succeeded"
        except BuildCancelled:
            status, error = "cancelled", "cancelled by the operator"
        except DepotError as exc:
            status, error = "failed", str(exc)
            if release:
                error = f"published {release} but: {exc}"
        except Exception as exc:  # noqa: BLE001 - recorded, the worker must always end the row
            for line in traceback.format_exc().splitlines():
                self.log(line)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        return self.finish(status, error.splitlines()[0] if error else "")

    def finish(self, status: str, error: str) -> dict:
        site = self.site
        keep = status == "failed" or (status == "succeeded" and not self.row["publish"])
        if self.slurm is not None:
            self.sync_jobs()
            self.slurm.cleanup(keep)
        if not keep:
            shutil.rmtree(self.paths.root, ignore_errors=True)
        else:
            self.paths.pgid_file.unlink(missing_ok=True)
        _update(site, self.id, {"status": status, "error": error or None, "finished": _now(site)}, when_status=ACTIVE)
        row = _load(site, self.id)
        where = f" (build files kept in {self.paths.root})" if keep else ""
        self.log(f"{row['status']}{': ' + error if error else ''}{where}")
        site.audit(
            "build-finish",
            f"build {self.id}",
            row["status"] + (f": {error}" if error else ""),
            {"release": row["release"]} if row["release"] else None,
        )
        return row


def run_build(site: Site, build_id: int, *, handle_signals: bool = False) -> dict:
    """Run queued build ``build_id`` in this process to its end; return the final row.

    ``handle_signals`` (worker processes only, main thread): SIGTERM/SIGINT cancel the build.
    A build that is no longer queued (cancelled before it started) is left as it is.
    """
    row = _load(site, build_id)
    started = _update(
        site,
        build_id,
        {"status": "running", "pid": os.getpid(), "started": _now(site), "step": "building"},
        when_status=("queued",),
    )
    if not started:
        _log_line(build_paths(site, build_id).log, f"worker {os.getpid()}: build is {row['status']}, not running it")
        return row
    row = _load(site, build_id)
    try:
        worker = _Worker(site, row)
    except DepotError as exc:
        _update(site, build_id, {"status": "failed", "error": str(exc), "finished": _now(site)}, when_status=ACTIVE)
        _log_line(build_paths(site, build_id).log, f"failed: {exc}")
        site.audit("build-finish", f"build {build_id}", f"failed: {exc}")
        return _load(site, build_id)
    if handle_signals:
        worker.install_signal_handlers()
    site.audit("build-start", f"build {build_id}", "ok", {"pid": os.getpid()})
    return worker.run()


# --- looking at builds ---------------------------------------------------------------------------


def _worker_alive(pid: int) -> bool:
    """The worker's group is alive, or (a build run in-process, not a group leader) the process."""
    if group_alive(pid):
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X", "")


def _refresh(site: Site, row: dict) -> dict:
    """Mark an active build whose worker is gone as failed ("worker died"); see module docstring."""
    if row["status"] not in ACTIVE or not row["pid"] or _worker_alive(row["pid"]):
        return row
    row = _load(site, row["id"])  # it may have finished just now
    if row["status"] not in ACTIVE:
        return row
    if site.read_only:
        return dict(row, status="failed", error="worker died")
    paths = build_paths(site, row["id"])
    orphans = [g for g in read_pgid_file(paths.pgid_file) if group_alive(g)]
    if orphans:
        kill_groups(orphans, site.config.build.grace_s)
    _scancel_jobs(row)
    if _update(
        site, row["id"], {"status": "failed", "error": "worker died", "finished": _now(site)}, when_status=ACTIVE
    ):
        _log_line(paths.log, f"failed: worker died (pid {row['pid']} is gone)")
        site.audit("build-finish", f"build {row['id']}", "failed: worker died", {"pid": row["pid"]})
    return _load(site, row["id"])


def _scancel_jobs(row: dict) -> None:
    """A Slurm build whose worker is gone: scancel the jobs its row records as not ended."""
    if row.get("executor") == "slurm" and row.get("jobs"):
        from core.build.slurm import scancel_recorded

        scancel_recorded(row)


def get_build(site: Site, build_id: int | str) -> dict:
    """One build row (``targets`` and ``options`` decoded); NotFound for an unknown id."""
    return _refresh(site, _load(site, parse_build_id(build_id)))


def list_builds(site: Site, limit: int | None = None, status: str | None = None) -> list[dict]:
    """Build rows, newest first (dead workers noticed on the way)."""
    if status is not None and status not in STATUSES:
        raise BadInput(f"unknown build status {status!r} (known: {', '.join(STATUSES)})")
    return [_refresh(site, _decode(r)) for r in site.state.builds.rows(status, limit)]


def read_log(site: Site, build_id: int | str, offset: int = 0, *, whole_lines: bool = True) -> tuple[str, int]:
    """The build log from byte ``offset``: (text, next offset). With ``whole_lines`` a trailing
    partial line is left for the next call, so a follower never prints half a line."""
    path = build_paths(site, parse_build_id(build_id)).log
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        _load(site, parse_build_id(build_id))
        return "", offset
    if whole_lines and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        data = data[:cut]
    return data.decode("utf-8", errors="replace"), offset + len(data)


class LogFollower:
    """Reads a build log incrementally: `poll` returns the whole lines added since the last call.

    For the TUI: call `poll` on a timer and append what it returns; `follow_log` uses it too.
    """

    def __init__(self, site: Site, build_id: int | str, offset: int = 0) -> None:
        self.site = site
        self.build_id = parse_build_id(build_id)
        self.offset = offset

    def poll(self, whole_lines: bool = True) -> str:
        text, self.offset = read_log(self.site, self.build_id, self.offset, whole_lines=whole_lines)
        return text


def follow_log(
    site: Site, build_id: int | str, write: LogSink, *, follower: LogFollower | None = None, poll_s: float = _POLL_S
) -> dict:
    """Pass the log to ``write`` as it grows, until the build ends; return the final row.

    Pass a ``follower`` to resume where an earlier (interrupted) follow stopped.
    """
    follower = follower or LogFollower(site, build_id)
    while True:
        row = get_build(site, follower.build_id)
        text = follower.poll()
        if text:
            write(text)
        if row["status"] in FINISHED:
            rest = follower.poll(whole_lines=False)
            if rest:
                write(rest if rest.endswith("\n") else rest + "\n")
            return row
        time.sleep(poll_s)


# --- cancelling ----------------------------------------------------------------------------------


def cancel_build(site: Site, build_id: int | str, *, grace_s: float | None = None) -> dict:
    """End a queued or running build and everything it started; return its final row ("cancelled").

    BadInput if it already ended; Conflict if it is publishing (too late: see module docstring).
    Returns once no process of the build is left.
    """
    build_id = parse_build_id(build_id)
    grace = float(grace_s if grace_s is not None else site.config.build.grace_s)
    paths = build_paths(site, build_id)
    with site.action("build-cancel", f"build {build_id}") as detail:
        row = get_build(site, build_id)
        if row["status"] in FINISHED:
            raise BadInput(f"build {build_id} already {row['status']}; nothing to cancel")
        if _update(
            site,
            build_id,
            {"status": "cancelled", "error": "cancelled by the operator", "finished": _now(site)},
            when_status=("queued",),
        ):
            # Its worker, if one was spawned, sees the status and exits without building.
            _log_line(paths.log, "cancelled before it started")
            detail["was"] = "queued"
            return _load(site, build_id)
        if row["step"] in _UNINTERRUPTIBLE:
            raise Conflict(f"build {build_id} is already {row['step']}; too late to cancel")
        pid = int(row["pid"])
        detail.update(was="running", pid=pid)
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        # The worker cancels its runner (SIGTERM, then SIGKILL after grace to its children) and
        # records "cancelled"; a worker that is publishing is waited for, not interrupted.
        deadline = time.monotonic() + 2 * grace + 1
        while group_alive(pid):
            if _load(site, build_id)["step"] in _UNINTERRUPTIBLE:
                deadline = time.monotonic() + 2 * grace + 1
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        terminate_build(pid, paths.pgid_file, grace_s=grace)  # whatever is left: SIGKILL
        _scancel_jobs(_load(site, build_id))
        if _update(
            site,
            build_id,
            {"status": "cancelled", "error": "cancelled by the operator (worker killed)", "finished": _now(site)},
            when_status=ACTIVE,
        ):
            _log_line(paths.log, "cancelled: the worker did not stop by itself and was killed")
            site.audit("build-finish", f"build {build_id}", "cancelled", {"killed": True})
        row = _load(site, build_id)
        detail["status"] = row["status"]
        if row["status"] != "cancelled":
            raise Conflict(
                f"build {build_id} was past its last build step and could not be cancelled; it {row['status']}"
            )
    return row


# --- worker entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m core.build.jobs run SITE BUILD_ID``: the worker process (started by `spawn_worker`)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "run":
        sys.stderr.write("usage: python -m core.build.jobs run SITE BUILD_ID\n")
        return 2
    try:
        site = open_site(args[1])
        row = run_build(site, parse_build_id(args[2]), handle_signals=True)
    except DepotError as exc:
        sys.stderr.write(f"build worker: {exc}\n")
        return exc.exit_code
    return 0 if row["status"] == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
