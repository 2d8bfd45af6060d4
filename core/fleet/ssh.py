"""SSH fan-out over a node set (DESIGN §6): one OpenSSH client per node, from asyncio.

Each node gets ``ssh -o BatchMode=yes -o ConnectTimeout=N [-F cfg] -- node 'cmd …'`` under a
semaphore (``fanout``), so the operator's ssh config, agent, ProxyJump and ControlMaster apply
unchanged: we add nothing but the two options that keep a fan-out from hanging on a prompt or a
dead host. Each node has its own deadline; on expiry its ssh is killed and it reports ``timeout``.

Killing the local ssh does not end the remote command: without a tty, sshd sends it no signal
when the connection drops, and a command that writes nothing (a hung hydrate, ``sleep``) lives on
until it next writes. So the deadline is enforced on the node too (``remote_command_line``): the
command runs under ``timeout -k 2 <deadline>`` when the node's ``timeout`` takes ``-k`` (coreutils, busybox),
which signals the command's whole process group and SIGKILLs it 2 s later. A pty (``ssh -tt``)
would get the command a SIGHUP on hang-up, but merges stderr into stdout, rewrites line endings
and turns stdin into a terminal (the probe is sent on stdin), so it is not used.
Each node's output is capped (``max_output`` bytes on stdout, the same on stderr; ``[fleet]
max_output_bytes``): a node (or its sshd ``ForceCommand``) that streams more gets its ssh killed at
once and reports ``bad-output``, so one hostile node cannot grow the console's memory, and the
others are unaffected.
Results stream through ``on_result`` as nodes finish. Cancelling the task that runs
``run_fleet`` kills every ssh it started before the cancellation propagates (no orphans).

Statuses (exact strings, shown by the CLI/TUI and stored in the inventory): see ``STATUSES``.
"""

from __future__ import annotations

import asyncio
import math
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core.errors import BadInput, DepotError
from core.node.probe import parse_probe_output, probe_source

T = TypeVar("T")

OK = "ok"
UNREACHABLE = "unreachable"
AUTH_REFUSED = "auth-refused"
HOST_KEY_MISMATCH = "host-key-mismatch"
TIMEOUT = "timeout"
NO_PYTHON = "no-python"
BAD_OUTPUT = "bad-output"
REMOTE_FAILED = "remote-failed"
STATUSES = (OK, UNREACHABLE, AUTH_REFUSED, HOST_KEY_MISMATCH, TIMEOUT, NO_PYTHON, BAD_OUTPUT, REMOTE_FAILED)

SSH_ERROR_EXIT = 255
NOT_FOUND_EXIT = 127
STDERR_TAIL_BYTES = 4096
DEFAULT_MAX_OUTPUT = 1 << 20  # bytes per node and stream; [fleet] max_output_bytes
_READ_CHUNK = 65536

_HOST_KEY_MARKERS = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")
_AUTH_MARKERS = ("Permission denied",)
_NOT_FOUND_MARKERS = ("python3: not found", "command not found", "python3: No such file or directory")


@dataclass
class NodeResult:
    """The outcome of one node: status (one of STATUSES), a one-line detail, and the raw output."""

    node: str
    status: str
    detail: str
    exit_code: int | None
    stdout: bytes = b""
    stderr_tail: str = ""
    seconds: float = 0.0
    data: Any = None  # what a caller's parser made of stdout (e.g. the probe dict)

    @property
    def ok(self) -> bool:
        return self.status == OK


def _lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.strip() and not line.lstrip().startswith("@@@")]


def _line_with(stderr: str, markers: Sequence[str]) -> str | None:
    for line in _lines(stderr):
        if any(m in line for m in markers):
            return line
    return None


def classify(exit_code: int, stderr: str) -> tuple[str, str]:
    """(status, one-line detail) for a finished ssh from its exit code and stderr."""
    last = (_lines(stderr) or [""])[-1]
    if exit_code == 0:
        return OK, "exit 0"
    if exit_code == SSH_ERROR_EXIT:
        if any(m in stderr for m in _HOST_KEY_MARKERS):
            return HOST_KEY_MISMATCH, "host key does not match known_hosts (remote host identification has changed)"
        line = _line_with(stderr, _AUTH_MARKERS)
        if line:
            return AUTH_REFUSED, line
        return UNREACHABLE, last or "ssh failed with exit 255 and no message"
    line = _line_with(stderr, _NOT_FOUND_MARKERS)
    if exit_code == NOT_FOUND_EXIT or line:
        return NO_PYTHON, line or last or f"exit {exit_code}: command not found"
    return REMOTE_FAILED, f"exit {exit_code}" + (f": {last}" if last else "")


def mark_bad_output(result: NodeResult, reason: str) -> NodeResult:
    """Turn an ``ok`` result into ``bad-output`` (the node answered, but not what the caller expects)."""
    result.status = BAD_OUTPUT
    result.detail = reason.splitlines()[0] if reason else "unexpected output"
    return result


def apply_parser(result: NodeResult, parse: Callable[[bytes], Any]) -> NodeResult:
    """Parse an ``ok`` result's stdout into ``result.data``; a DepotError from ``parse`` -> ``bad-output``."""
    if result.status != OK:
        return result
    try:
        result.data = parse(result.stdout)
    except DepotError as exc:
        mark_bad_output(result, str(exc))
    return result


#: Seconds between the remote deadline's SIGTERM and its SIGKILL (``timeout -k``).
REMOTE_KILL_AFTER = 2


def remote_command_line(remote_command: Sequence[str], deadline: float | None = None) -> str:
    """The command line the node's login shell runs: ``remote_command`` quoted word by word (ssh
    joins its arguments with blanks), and with a ``deadline`` run under ``timeout`` there, so the
    command ends when the console gives up on it even though ssh cannot tell it to (module
    docstring). The login shell sees one simple command (``/bin/sh -c SCRIPT sh WORDS…``, found
    whatever the PATH), so a csh, tcsh or fish login shell runs it as it ran the bare command;
    the script, in ``sh``, uses ``timeout -k`` only if the node's ``timeout`` accepts it (an old busybox does not) and runs the
    words as they are otherwise."""
    command = shlex.join(remote_command)
    if deadline is None:
        return command
    secs = max(1, math.ceil(deadline))
    script = (
        f"if timeout -k 1 5 true >/dev/null 2>&1; "
        f'then exec timeout -k {REMOTE_KILL_AFTER} {secs} "$@"; else exec "$@"; fi'
    )
    return shlex.join(["/bin/sh", "-c", script, "sh", *remote_command])


def ssh_argv(
    node: str,
    remote_command: Sequence[str],
    *,
    connect_timeout: float = 10,
    ssh_config: str | None = None,
    ssh_options: Sequence[str] = (),
    remote_deadline: float | None = None,
) -> list[str]:
    """The ssh command line for one node. ``--`` before the node: nothing after it is an option.
    With ``remote_deadline`` the command is also ended on the node after that many seconds
    (``remote_command_line``)."""
    if not node or node.startswith("-") or any(c.isspace() for c in node):
        raise BadInput(f"bad node name {node!r}")
    if not remote_command:
        raise BadInput("empty remote command")
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, math.ceil(connect_timeout))}"]
    if ssh_config:
        argv += ["-F", ssh_config]
    argv += list(ssh_options)
    # ssh joins its arguments with blanks for the remote shell: quote each so argv survives intact.
    argv += ["--", node, remote_command_line(remote_command, remote_deadline)]
    return argv


async def _pump(stream: asyncio.StreamReader, sink: bytearray, limit: int, on_overflow: Callable[[], None]) -> None:
    """Read ``stream`` into ``sink`` until EOF; past ``limit`` bytes keep the first ``limit``, call
    ``on_overflow`` (which kills the ssh) and discard the rest, up to the EOF that the kill brings
    (reading on lets the pipe's transport close normally, inside the event loop)."""
    while chunk := await stream.read(min(_READ_CHUNK, limit - len(sink) + 1)):
        room = limit - len(sink)
        if len(chunk) > room:
            sink += chunk[:room]
            on_overflow()
            while await stream.read(_READ_CHUNK):
                pass
            return
        sink += chunk


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # ssh exited before reading stdin (dead host): its exit status tells why
    finally:
        proc.stdin.close()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the ssh (at once, before any await) and reap it."""
    if proc.returncode is not None:
        return
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    await proc.wait()


def _kill_now(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass


async def _run_node(
    node: str,
    argv: list[str],
    stdin: bytes | None,
    deadline: float,
    on_start: Callable[[str], None] | None,
    max_output: int = DEFAULT_MAX_OUTPUT,
) -> NodeResult:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = bytearray(), bytearray()
    overflow: list[str] = []  # the stream(s) that went past max_output

    def too_much(stream: str) -> Callable[[], None]:
        def kill() -> None:
            overflow.append(stream)
            _kill_now(proc)  # at once, before any await: the node's output stops here

        return kill

    assert proc.stdout is not None and proc.stderr is not None
    io = [
        asyncio.create_task(_pump(proc.stdout, out, max_output, too_much("stdout"))),
        asyncio.create_task(_pump(proc.stderr, err, max_output, too_much("stderr"))),
    ]
    if stdin is not None:
        io.append(asyncio.create_task(_feed(proc, stdin)))
    timed_out = False
    try:
        if on_start is not None:
            on_start(node)
        try:
            async with asyncio.timeout(deadline):
                await proc.wait()
                # A ProxyCommand child may hold the pipes after ssh exits: bounded by the deadline too.
                await asyncio.gather(*io)
        except TimeoutError:
            timed_out = proc.returncode is None
            await _kill(proc)
    except BaseException:
        # Cancelled (or a callback failed): the ssh must not outlive us.
        await asyncio.shield(_kill(proc))
        raise
    finally:
        for task in io:
            task.cancel()
        await asyncio.gather(*io, return_exceptions=True)
    seconds = time.monotonic() - started
    tail = bytes(err[-STDERR_TAIL_BYTES:]).decode("utf-8", errors="replace")
    if overflow:
        detail = f"more than {max_output} bytes on {overflow[0]} (the [fleet] max_output_bytes cap); ssh killed"
        return NodeResult(node, BAD_OUTPUT, detail, proc.returncode, bytes(out), tail, seconds)
    if timed_out:
        return NodeResult(
            node, TIMEOUT, f"no answer within the {deadline:g}s deadline; ssh killed", None, bytes(out), tail, seconds
        )
    code = proc.returncode
    assert code is not None
    if code < 0:
        status, detail = REMOTE_FAILED, f"ssh killed by signal {-code}"
    else:
        status, detail = classify(code, tail)
    return NodeResult(node, status, detail, code, bytes(out), tail, seconds)


async def run_fleet(
    nodes: list[str],
    remote_command: list[str],
    stdin: bytes | None,
    *,
    fanout: int = 64,
    connect_timeout: float = 10,
    deadline: float = 60,
    ssh_config: str | None = None,
    ssh_options: Sequence[str] = (),
    on_result: Callable[[NodeResult], None] | None = None,
    on_start: Callable[[str], None] | None = None,
    max_output: int = DEFAULT_MAX_OUTPUT,
) -> list[NodeResult]:
    """Run ``remote_command`` on every node over ssh; results in the order of ``nodes``.

    ``stdin`` is sent to each node's command (None: /dev/null). ``on_start(node)`` is called when
    a node's ssh is spawned, ``on_result(result)`` as each node finishes. At most ``fanout`` ssh
    run at once; each is killed after ``deadline`` seconds (status ``timeout``), and the command
    on the node with it (``remote_command_line``), or as soon as it writes more than
    ``max_output`` bytes on stdout or on stderr (status ``bad-output``).
    """
    if fanout < 1:
        raise BadInput(f"fanout must be at least 1, not {fanout}")
    if max_output < 1:
        raise BadInput(f"max output must be at least 1 byte, not {max_output}")
    if deadline <= 0 or connect_timeout <= 0:
        raise BadInput("deadline and connect timeout must be positive")
    argvs = [
        ssh_argv(
            n,
            remote_command,
            connect_timeout=connect_timeout,
            ssh_config=ssh_config,
            ssh_options=ssh_options,
            remote_deadline=deadline,
        )
        for n in nodes
    ]
    return await bounded_gather(
        len(nodes), fanout, lambda i: _run_node(nodes[i], argvs[i], stdin, deadline, on_start, max_output), on_result
    )


async def bounded_gather(
    count: int, fanout: int, work: Callable[[int], Awaitable[T]], on_result: Callable[[T], None] | None = None
) -> list[T]:
    """Run ``work(0..count-1)`` with at most ``fanout`` at once; results in index order.

    ``on_result`` is called as each finishes. A TaskGroup waits for every child to finish its
    cleanup (killing its ssh) when the caller is cancelled.
    """
    gate = asyncio.Semaphore(fanout)
    results: list[T | None] = [None] * count

    async def one(index: int) -> None:
        async with gate:
            result = await work(index)
        results[index] = result
        if on_result is not None:
            on_result(result)

    async with asyncio.TaskGroup() as group:
        for index in range(count):
            group.create_task(one(index))
    return [r for r in results if r is not None]


async def probe_nodes(
    nodes: list[str], *, root: str | None = None, on_result: Callable[[NodeResult], None] | None = None, **kw: Any
) -> list[NodeResult]:
    """Send the probe (``python3 - [--root DIR]``) to every node; ``result.data`` is the probe dict.

    A node that answers with something else than one valid probe object is ``bad-output``.
    Other keyword arguments go to ``run_fleet``.
    """
    command = ["python3", "-"] + (["--root", root] if root else [])

    def parsed(result: NodeResult) -> None:
        apply_parser(result, parse_probe_output)
        if on_result is not None:
            on_result(result)

    return await run_fleet(nodes, command, probe_source(), on_result=parsed, **kw)
