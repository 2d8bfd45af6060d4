"""Slurm as a fleet transport (issue 15): one ``srun`` job step over a node set instead of one ssh per node.

On HPC systems ssh to compute nodes is refused unless one holds a job there; the batch system is the
way in. ``run_step`` runs a command on every node of a set as one step::

    srun --job-name=depot-fleet-<nonce> --nodes=K --ntasks-per-node=1 -w <folded set> [--partition P]
         [--constraint F] [--account A] [--qos Q] --time=M --immediate=S --label --input=all|none
         -- /bin/sh -c <wrapper> sh <command…>

The wrapper (POSIX sh, nothing installed on the node) prints a start marker naming the node, runs
the command under ``timeout`` (the per-node deadline, on the node itself), then prints the exit
code: both markers go to stderr with a per-step nonce, so srun's ``--label`` (``<task>: line``)
tells which task is which node and when each is done. stdout is the command's own, split by task;
each node's stdout and stderr are capped (``max_output``) by dropping the rest (the step cannot
kill one task alone; the console's memory stays bounded and the node is ``bad-output``).

Before the step, ``sinfo`` says which nodes can run it: a drained node gets ``drained``, a down or
not-responding one ``down``, a name Slurm does not know (or not in the partition asked for)
``not-in-partition``; the others run. A step Slurm refuses (``--immediate`` expired, bad
partition, account, constraint) makes every node that would have run it ``job-refused``. The statuses
of a node's command are those of ssh (``core.fleet.ssh.classify``): ok, timeout, no-python,
remote-failed, bad-output.

Cancelling ``run_step`` scancels the job (by its unique name) and kills srun before the
cancellation propagates. ``select_nodes`` asks Slurm for the nodes of a partition/feature (the
``--via slurm --partition P --feature F`` form without a node set).
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import re
import secrets
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import BadInput
from core.fleet.nodeset import fold
from core.fleet.ssh import (
    BAD_OUTPUT,
    DEFAULT_MAX_OUTPUT,
    REMOTE_FAILED,
    STDERR_TAIL_BYTES,
    TIMEOUT,
    NodeResult,
    classify,
)

DRAINED = "drained"
DOWN = "down"
JOB_REFUSED = "job-refused"
NOT_IN_PARTITION = "not-in-partition"
#: Statuses only a Slurm transport reports (added to ``core.fleet.ssh.STATUSES``).
STATUSES = (DRAINED, DOWN, NOT_IN_PARTITION, JOB_REFUSED)

TIMEOUT_EXIT = 124  # coreutils timeout: the command ran past the deadline
KILLED_EXIT = 137  # timeout -k: it ignored SIGTERM too
GRACE_S = 15.0  # beyond the per-node deadline, how long the whole step may take before it is cancelled
_LABEL = re.compile(rb"^\s*(\d+): ?(.*)$", re.DOTALL)
_DRAINED_STATES = ("drain",)
_DOWN_STATES = ("down", "fail", "not_responding", "no_respond", "unknown", "power", "reboot", "maint", "future")


@dataclass(frozen=True)
class SlurmOptions:
    """Where the step runs: ``[fleet] slurm_*`` in console.toml, ``--partition``/``--feature`` on the CLI."""

    partition: str | None = None
    feature: str | None = None  # srun --constraint
    account: str | None = None
    qos: str | None = None
    extra: tuple[str, ...] = ()  # more srun options, verbatim
    immediate: float = 10  # seconds Slurm may take to grant the step before it is job-refused
    env: Mapping[str, str] = field(default_factory=dict)  # added to the environment of srun/sinfo/scancel

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}


@dataclass(frozen=True)
class SlurmNode:
    """One node as Slurm knows it (``sinfo``/``scontrol``)."""

    name: str
    state: str  # lower case, flags kept: "idle", "drained", "down*", "mixed"
    partitions: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    reason: str = ""
    cpus: int | None = None
    memory: int | None = None  # bytes

    @property
    def status(self) -> str | None:
        """The fleet status this state forces (drained, down), or None when the node can run a step."""
        s = self.state.lower()
        if any(k in s for k in _DRAINED_STATES):
            return DRAINED
        if s.endswith("*") or any(k in s for k in _DOWN_STATES):
            return DOWN
        return None


class SlurmError(BadInput):
    """A Slurm client command failed in a way that is the operator's to fix (no controller, bad config)."""


async def _client(argv: Sequence[str], options: SlurmOptions, timeout: float = 60) -> tuple[int, str, str]:
    """Run one Slurm client command; (exit code, stdout, stderr). A missing command is SlurmError."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=options.environ(),
        )
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]} not found: the Slurm client commands are needed for --via slurm") from None
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


_SINFO_FORMAT = "%N|%T|%P|%f|%c|%m|%E"


def parse_sinfo(text: str) -> dict[str, SlurmNode]:
    """Nodes from ``sinfo -h -N -o '%N|%T|%P|%f|%c|%m|%E'`` (one line per node and partition)."""
    nodes: dict[str, SlurmNode] = {}
    for line in text.splitlines():
        parts = line.split("|", 6)
        if len(parts) < 7 or not parts[0].strip():
            continue
        name, state, part, feats, cpus, mem, reason = (p.strip() for p in parts)
        prev = nodes.get(name)
        partitions = (*(prev.partitions if prev else ()), part.rstrip("*"))
        features = tuple(f for f in feats.split(",") if f and f != "(null)")
        nodes[name] = SlurmNode(
            name,
            state.lower(),
            tuple(dict.fromkeys(partitions)),
            features,
            "" if reason in ("none", "(null)") else reason,
            int(cpus) if cpus.isdigit() else None,
            int(mem) * 1024 * 1024 if mem.isdigit() else None,
        )
    return nodes


async def node_info(nodes: Sequence[str] | None, options: SlurmOptions) -> dict[str, SlurmNode]:
    """What Slurm says about ``nodes`` (None: every node of ``options.partition``/``feature``)."""
    argv = ["sinfo", "-h", "-N", "-o", _SINFO_FORMAT]
    if nodes:
        argv += ["-n", fold(nodes)]
    if options.partition:
        argv += ["-p", options.partition]
    code, out, err = await _client(argv, options)
    if code != 0:
        raise SlurmError(f"sinfo failed: {_last_line(err) or f'exit {code}'}")
    info = parse_sinfo(out)
    if options.feature and nodes is None:
        info = {n: i for n, i in info.items() if _feature_matches(options.feature, i.features)}
    return info


def _feature_matches(expr: str, features: Sequence[str]) -> bool:
    """A simple ``--constraint`` (``a``, ``a&b``, ``a|b``) against a node's features (for node selection)."""
    have = set(features)
    return any(all(f.strip() in have for f in alt.split("&")) for alt in expr.split("|"))


async def select_nodes(options: SlurmOptions) -> list[str]:
    """The nodes Slurm has in ``options.partition`` with ``options.feature`` (the set for ``--via slurm``
    without a NODESET). BadInput when there is none."""
    if not options.partition and not options.feature:
        raise BadInput("--via slurm without a NODESET needs --partition or --feature")
    info = await node_info(None, options)
    if not info:
        what = " ".join(
            x for x in (f"partition {options.partition}" if options.partition else "", options.feature or "") if x
        )
        raise BadInput(f"Slurm has no nodes in {what}")
    return sorted(info)


def _wrapper(nonce: str, deadline: float) -> str:
    """The sh run by each task: start marker, the command under the node's own deadline with its
    stdout base64-encoded (srun's ``--label`` splits lines longer than 1 KiB: encoded lines are
    shorter, and no byte of the command's output can pose as a marker), then the exit marker."""
    secs = max(1, math.ceil(deadline))
    return (
        f'printf "@@{nonce} start %s\\n" "$SLURMD_NODENAME" >&2; '
        f't=""; if timeout -k 1 5 true >/dev/null 2>&1; then t="timeout -k 2 {secs}"; fi; '
        "exec 4>&1; "
        'rc=$( { { $t "$@" 3>&- 4>&-; echo $? >&3; } | base64 -w 900 >&4; } 3>&1 ); '
        f'printf "\\n@@{nonce} exit %s\\n" "$rc" >&2'
    )


def srun_argv(
    nodes: Sequence[str], command: Sequence[str], options: SlurmOptions, *, deadline: float, stdin: bool, nonce: str
) -> list[str]:
    """The srun command line for one step over ``nodes``."""
    if not nodes:
        raise BadInput("no nodes for srun")
    if not command:
        raise BadInput("empty remote command")
    minutes = max(1, math.ceil((deadline + GRACE_S) / 60))
    argv = [
        "srun",
        f"--job-name=depot-fleet-{nonce}",
        f"--nodes={len(nodes)}",
        f"--ntasks={len(nodes)}",
        "--ntasks-per-node=1",
        f"--nodelist={fold(nodes)}",
        f"--time={minutes}",
        f"--immediate={max(1, math.ceil(options.immediate))}",
        "--label",
        "--input=all" if stdin else "--input=none",
        "--kill-on-bad-exit=0",
        "--quiet",
    ]
    for flag, value in (
        ("--partition", options.partition),
        ("--constraint", options.feature),
        ("--account", options.account),
        ("--qos", options.qos),
    ):
        if value:
            argv.append(f"{flag}={value}")
    argv += list(options.extra)
    argv += ["--", "/bin/sh", "-c", _wrapper(nonce, deadline), "sh", *command]
    return argv


@dataclass
class _Task:
    node: str | None = None
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    overflow: str = ""
    exit_code: int | None = None
    started: float = 0.0
    ended: float = 0.0


class _Step:
    """Demultiplexes srun's labelled stdout/stderr into per-task buffers and markers."""

    def __init__(self, nonce: str, max_output: int, on_start: Callable[[str], None] | None) -> None:
        self.start_marker = f"@@{nonce} start ".encode()
        self.exit_marker = f"@@{nonce} exit ".encode()
        self.tasks: dict[int, _Task] = {}
        self.max_output = max_output
        self.on_start = on_start
        self.srun_err = bytearray()  # srun's own unlabelled lines (allocation errors)

    def task(self, index: int) -> _Task:
        return self.tasks.setdefault(index, _Task())

    def line(self, raw: bytes, stream: str) -> None:
        m = _LABEL.match(raw)
        if m is None:
            if len(self.srun_err) < STDERR_TAIL_BYTES * 4:
                self.srun_err += raw
            return
        task, body = self.task(int(m.group(1))), m.group(2)
        if stream == "err" and body.startswith(self.start_marker):
            task.node = body[len(self.start_marker) :].strip().decode("utf-8", "replace")
            task.started = time.monotonic()
            if self.on_start is not None and task.node:
                self.on_start(task.node)
            return
        if stream == "err" and body.startswith(self.exit_marker):
            code = body[len(self.exit_marker) :].strip()
            task.exit_code = int(code) if code.isdigit() else 255
            task.ended = time.monotonic()
            return
        if task.overflow:
            return
        sink = task.out if stream == "out" else task.err
        if stream == "out":
            try:
                body = base64.b64decode(body.strip(), validate=True)
            except ValueError:
                task.overflow = "stdout (not the wrapper's encoding)"
                return
        if len(sink) + len(body) > self.max_output:
            sink += body[: self.max_output - len(sink)]
            task.overflow = "stdout" if stream == "out" else "stderr"
            return
        sink += body


async def _lines(stream: asyncio.StreamReader, step: _Step, name: str) -> None:
    while True:
        try:
            raw = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                step.line(exc.partial, name)
            return
        except asyncio.LimitOverrunError as exc:
            raw = await stream.readexactly(exc.consumed)  # one huge line: take it in pieces
        step.line(raw, name)


async def _scancel(job_name: str, options: SlurmOptions) -> None:
    try:
        await _client(["scancel", "--name", job_name, "--full"], options, timeout=30)
    except (SlurmError, TimeoutError):
        pass


def _refused(nodes: Sequence[str], status: str, detail: str) -> list[NodeResult]:
    return [NodeResult(n, status, detail, None) for n in nodes]


def _task_result(task: _Task, deadline: float, max_output: int) -> NodeResult:
    assert task.node is not None
    seconds = (task.ended or time.monotonic()) - (task.started or time.monotonic())
    tail = bytes(task.err[-STDERR_TAIL_BYTES:]).decode("utf-8", "replace")
    out = bytes(task.out)
    if task.overflow:
        detail = f"more than {max_output} bytes on {task.overflow} (the [fleet] max_output_bytes cap); rest dropped"
        return NodeResult(task.node, BAD_OUTPUT, detail, task.exit_code, out, tail, seconds)
    code = task.exit_code
    if code is None or code in (TIMEOUT_EXIT, KILLED_EXIT):
        detail = f"no answer within the {deadline:g}s deadline; task killed"
        return NodeResult(task.node, TIMEOUT, detail, None, out, tail, seconds)
    if code == 255:  # ssh's own failure, but here the command's exit
        last = _last_line(tail)
        status, detail = REMOTE_FAILED, "exit 255" + (f": {last}" if last else "")
    else:
        status, detail = classify(code, tail)
    return NodeResult(task.node, status, detail, code, out, tail, seconds)


async def run_step(
    nodes: list[str],
    command: Sequence[str],
    stdin: bytes | None,
    options: SlurmOptions,
    *,
    deadline: float = 60,
    max_output: int = DEFAULT_MAX_OUTPUT,
    on_start: Callable[[str], None] | None = None,
) -> list[NodeResult]:
    """Run ``command`` on every node as one srun step; results in the order of ``nodes``.

    ``stdin`` goes to every task (None: none). Nodes Slurm cannot use get their Slurm status at
    once (no step is tried for them); the others get the status of their command. ``deadline`` is
    per node (enforced on the node); the whole step is cancelled ``GRACE_S`` after it.
    """
    if deadline <= 0:
        raise BadInput("deadline must be positive")
    if max_output < 1:
        raise BadInput(f"max output must be at least 1 byte, not {max_output}")
    if not nodes:
        return []
    info = await node_info(nodes, options)
    results: dict[str, NodeResult] = {}
    usable = []
    for n in nodes:
        i = info.get(n)
        if i is None:
            where = f"partition {options.partition}" if options.partition else "the Slurm cluster"
            results[n] = NodeResult(n, NOT_IN_PARTITION, f"not a node of {where}", None)
        elif i.status is not None:
            detail = f"Slurm state {i.state}" + (f": {i.reason}" if i.reason else "")
            results[n] = NodeResult(n, i.status, detail, None)
        else:
            usable.append(n)
    if usable:
        for r in await _step(usable, command, stdin, options, deadline, max_output, on_start):
            results[r.node] = r
    return [results[n] for n in nodes]


async def _step(
    nodes: list[str],
    command: Sequence[str],
    stdin: bytes | None,
    options: SlurmOptions,
    deadline: float,
    max_output: int,
    on_start: Callable[[str], None] | None,
) -> list[NodeResult]:
    nonce = secrets.token_hex(6)
    job_name = f"depot-fleet-{nonce}"
    argv = srun_argv(nodes, command, options, deadline=deadline, stdin=stdin is not None, nonce=nonce)
    step = _Step(nonce, max_output, on_start)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=options.environ(),
            limit=1 << 16,
        )
    except FileNotFoundError:
        raise SlurmError("srun not found: the Slurm client commands are needed for --via slurm") from None
    assert proc.stdout is not None and proc.stderr is not None
    io = [
        asyncio.create_task(_lines(proc.stdout, step, "out")),
        asyncio.create_task(_lines(proc.stderr, step, "err")),
    ]
    if stdin is not None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            proc.stdin.close()
    expired = False
    try:
        try:
            async with asyncio.timeout(deadline + GRACE_S + options.immediate):
                await proc.wait()
                await asyncio.gather(*io)
        except TimeoutError:
            expired = True
            await _scancel(job_name, options)
            await _reap(proc)
    except BaseException:
        await asyncio.shield(_cancel(job_name, options, proc))
        raise
    finally:
        for t in io:
            t.cancel()
        await asyncio.gather(*io, return_exceptions=True)
    by_node = {t.node: t for t in step.tasks.values() if t.node}
    srun_tail = bytes(step.srun_err).decode("utf-8", "replace")
    if not by_node:
        if expired:
            return _refused(nodes, JOB_REFUSED, f"Slurm did not start the step within {deadline + GRACE_S:g}s")
        detail = _srun_message(srun_tail) or f"srun exit {proc.returncode}"
        return _refused(nodes, JOB_REFUSED, detail)
    out = []
    for n in nodes:
        task = by_node.get(n)
        if task is None:
            detail = _srun_message(srun_tail) or "its task never started"
            out.append(NodeResult(n, JOB_REFUSED, detail, None))
        else:
            out.append(_task_result(task, deadline, max_output))
    return out


def _srun_message(text: str) -> str:
    """srun's own error lines, joined (``srun: error: Unable to allocate resources: …``)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("srun:")]
    return lines[-1].removeprefix("srun: error: ").removeprefix("srun: ") if lines else ""


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Wait (bounded) for srun to exit after scancel; kill it if it does not."""
    try:
        async with asyncio.timeout(10):
            await proc.wait()
    except TimeoutError:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _cancel(job_name: str, options: SlurmOptions, proc: asyncio.subprocess.Process) -> None:
    await _scancel(job_name, options)
    await _reap(proc)


def describe_argv(argv: Sequence[str]) -> str:
    """An srun command line as the operator could paste it (for logs and the command log)."""
    return shlex.join(argv)


def options_from(config: Any, **given: Any) -> SlurmOptions:
    """SlurmOptions from ``[fleet] slurm_*`` (``config`` is a FleetSettings), overridden by non-None keywords."""
    values: dict[str, Any] = {
        "partition": config.slurm_partition or None,
        "feature": config.slurm_feature or None,
        "account": config.slurm_account or None,
        "qos": config.slurm_qos or None,
        "extra": tuple(config.slurm_options),
        "immediate": float(config.slurm_immediate_s),
    }
    values.update({k: v for k, v in given.items() if v is not None})
    return SlurmOptions(**values)


# --------------------------------------------------------------------------- inventory (nodes --refresh-from slurm)


def _number(value: Any) -> int | None:
    """A Slurm JSON number: a plain int, or (OpenAPI 0.0.39+) ``{"set": true, "number": N}``."""
    if isinstance(value, dict):
        if value.get("set") is False or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _words(value: Any) -> tuple[str, ...]:
    """Features or partitions: ``"a,b"``, ``["a", "b"]`` or ``{"total": [...]}`` (newer OpenAPI)."""
    if isinstance(value, dict):
        value = value.get("total", value.get("active", []))
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(str(v).strip() for v in value if str(v).strip() and str(v).strip() != "(null)"))


def parse_nodes_json(text: str) -> dict[str, SlurmNode]:
    """Nodes from ``scontrol show nodes --json`` or ``sinfo --json`` (Slurm's OpenAPI node records).

    ``state`` is a string (22.05) or a list of words (23.02+); ``state_flags`` (DRAIN, NOT_RESPONDING…)
    join it with ``+`` (``idle+drain``), as ``scontrol`` prints them. Memory is ``real_memory`` MiB.
    SlurmError when the text is not such a document.
    """
    import json

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SlurmError(f"Slurm's JSON node list is not JSON: {exc}") from None
    items = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise SlurmError("Slurm's JSON node list has no 'nodes' array")
    errors = doc.get("errors")
    if isinstance(errors, list) and errors and not items:  # 22.05 exits 0 when the controller is unreachable
        what = [str(e.get("error") or e.get("description") or e) if isinstance(e, dict) else str(e) for e in errors]
        raise SlurmError("; ".join(what))
    out: dict[str, SlurmNode] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            continue
        state = item.get("state")
        words = [state] if isinstance(state, str) else [str(s) for s in state] if isinstance(state, list) else []
        flags = item.get("state_flags")
        if isinstance(flags, list):
            words += [str(f) for f in flags if str(f) not in words]
        reason = item.get("reason")
        if isinstance(reason, dict):
            reason = reason.get("description", "")
        memory = _number(item.get("real_memory"))
        name = item["name"]
        prev = out.get(name)  # sinfo --json lists a node once per partition on some versions
        partitions = (*(prev.partitions if prev else ()), *_words(item.get("partitions")))
        out[name] = SlurmNode(
            name,
            "+".join(w.lower() for w in words if w) or "unknown",
            tuple(dict.fromkeys(partitions)),
            _words(item.get("active_features") or item.get("features")),
            str(reason or ""),
            _number(item.get("cpus")),
            memory * 1024 * 1024 if memory is not None else None,
        )
    return out


#: How Slurm is asked for its nodes, best first: the JSON forms need Slurm's serializer plugin
#: (``scontrol --json`` needs 23.02 or newer; ``sinfo --json`` 21.08 with the JSON serializer).
INVENTORY_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("scontrol --json", ("scontrol", "show", "nodes", "--json")),
    ("sinfo --json", ("sinfo", "--json")),
    ("sinfo", ("sinfo", "-h", "-N", "-o", _SINFO_FORMAT)),
)


async def inventory(options: SlurmOptions) -> tuple[dict[str, SlurmNode], str]:
    """Every node Slurm knows (of ``options.partition`` if set) and which command said so.

    Tries ``scontrol show nodes --json``, then ``sinfo --json``, then plain ``sinfo`` (see
    `INVENTORY_SOURCES`); a form this Slurm lacks (unknown option, no serializer) falls through to
    the next. SlurmError with the last command's error when none answers (no controller).
    """
    errors: list[str] = []
    for source, argv in INVENTORY_SOURCES:
        code, out, err = await _client(argv, options)
        if code != 0:
            errors.append(f"{source}: {_last_line(err) or f'exit {code}'}")
            continue
        try:
            nodes = parse_sinfo(out) if source == "sinfo" else parse_nodes_json(out)
        except SlurmError as exc:
            errors.append(f"{source}: {exc}")
            continue
        if options.partition:  # filtered here: the JSON forms ignore --partition
            nodes = {n: i for n, i in nodes.items() if options.partition in i.partitions}
        return nodes, source
    raise SlurmError("cannot read Slurm's node list: " + "; ".join(errors))
