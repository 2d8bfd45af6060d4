"""Fleet checks (DESIGN §6): probe, classify, and optionally hydrate and smoke-test every node of a set.

Used alike by ``console fleet check`` and the TUI. ``check_fleet`` is a coroutine: per node, under
a semaphore of ``fanout``, it sends the stdlib probe over ssh (``core.fleet.ssh``), classifies the CPU
with archspec on this side (``core.site.inventory``), picks the image each channel's current release
would run, then — when asked — runs the console installed on the node (``remote_console``) for
``node hydrate`` and ``node smoke`` with ``--json``. A node that hydrated is probed again right
after, so what is recorded about it (its channels' releases above all) is what it reports after
the hydrate, not before. Results stream through ``on_result`` as nodes finish; cancelling the task kills every ssh it started (``core.fleet.ssh`` guarantees it).
After every node is done, smoke fingerprints of nodes running the same image are compared and
odd ones out become ``fingerprint-mismatch`` (``on_result`` is called again for them).

``record_check`` writes the outcome to the database: ``nodes`` rows, ``smoke_runs`` rows and one
audit row. Nothing here prints.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import core.fleet.slurm as slurm
import core.fleet.ssh as fleet
from core.errors import BadInput, DepotError, NotFound
from core.fleet.nodeset import expand, fold
from core.fleet.slurm import SlurmOptions
from core.fleet.ssh import NodeResult, apply_parser, bounded_gather, run_fleet
from core.node.probe import parse_probe_output, probe_source
from core.site.inventory import (
    FINGERPRINT_MISMATCH,
    ChannelTarget,
    Classified,
    ImageCache,
    classify_probe,
    fingerprint_mismatches,
    node_row,
    os_label,
    record_smoke_runs,
    smoke_row,
    upsert_nodes,
)
from core.site.state import utcnow_iso

#: Every per-node status a fleet check can report, in display order.
STATUSES = (*fleet.STATUSES, *slurm.STATUSES, FINGERPRINT_MISMATCH)
#: The statuses of a node that gave the check no answer: not reached, refused us, said nothing in
#: time, or Slurm would not run it there. Every other status is an answer, if a bad one.
NO_ANSWER = (
    fleet.UNREACHABLE,
    fleet.AUTH_REFUSED,
    fleet.HOST_KEY_MISMATCH,
    fleet.TIMEOUT,
    *slurm.STATUSES,
)
TRANSPORTS = ("ssh", "slurm")
AUDIT_VERB = "fleet check"  # the audit rows of a check, and the verb named when one is refused
_TAIL_LINES = 3


@dataclass(frozen=True)
class CheckOptions:
    """How to reach nodes and what to do there (defaults: console.toml ``[fleet]``, see ``options_from_site``)."""

    fanout: int = 64
    connect_timeout: float = 10
    timeout: float = 120  # per ssh call (probe, hydrate, smoke each get the full deadline)
    ssh_config: str | None = None
    root: str | None = None  # node root (DESIGN §5) whose current/ channels the probe reports
    smoke: bool = False
    baseline: bool = False  # smoke also runs cold and reports the start-up reduction
    hydrate: bool = False
    channel: str | None = None
    mount: str | None = None  # smoke the depot read in place there (CVMFS: /cvmfs/REPO/PREFIX), not hydrated
    remote_console: tuple[str, ...] = ("console",)
    store: str | None = None  # the store as the nodes reach it (hydrate)
    trust: str | None = None  # trust file path on the nodes (hydrate)
    max_output: int = fleet.DEFAULT_MAX_OUTPUT  # bytes per ssh call and stream; more: bad-output
    transport: str = "ssh"  # "ssh" (one ssh per node and call) or "slurm" (one srun step per stage)
    slurm: SlurmOptions = field(default_factory=SlurmOptions)  # partition, feature, account, qos

    def validate(self) -> None:
        """BadInput for contradictory or impossible options, before any ssh starts."""
        if self.fanout < 1:
            raise BadInput(f"fanout must be at least 1, not {self.fanout}")
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise BadInput("timeout and connect timeout must be positive")
        if self.max_output < 1:
            raise BadInput(f"max output must be at least 1 byte, not {self.max_output}")
        if (self.smoke or self.hydrate) and not self.channel:
            raise BadInput("--smoke and --hydrate need --channel C")
        if (self.smoke or self.hydrate) and not self.remote_console:
            raise BadInput("remote_console is empty in console.toml")
        if self.mount and not self.smoke:
            raise BadInput("--mount needs --smoke (it names the depot the nodes smoke in place)")
        if self.mount and self.hydrate:
            raise BadInput("--mount reads the depot in place: it does not go with --hydrate")
        if self.hydrate and not self.store:
            raise BadInput("--hydrate needs a store location the nodes can reach (--store)")
        if self.transport not in TRANSPORTS:
            raise BadInput(f"transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}")


@dataclass
class NodeCheck:
    """One node's outcome: status (one of ``STATUSES``), a one-line detail, and what was learnt."""

    node: str
    status: str
    detail: str
    seconds: float = 0.0
    stage: str = "probe"  # where the check ended: probe, hydrate, smoke
    arch: str | None = None
    vendor: str = ""
    cpus: int | None = None
    memory: int | None = None
    os: str = ""
    flags_digest: str = ""
    channels: dict[str, Any] = field(default_factory=dict)  # as the node reports them (current/ links)
    images: dict[str, Any] = field(default_factory=dict)  # per channel: release, image, reason
    probe: dict[str, Any] | None = None
    hydrate: dict[str, Any] | None = None
    smoke: dict[str, Any] | None = None
    smoke_attempted: bool = False
    mismatch: list[str] | None = None  # modules that differ from the majority, when flagged
    checked: str = ""

    @property
    def ok(self) -> bool:
        return self.status == fleet.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.node,
            "status": self.status,
            "detail": self.detail,
            "stage": self.stage,
            "seconds": round(self.seconds, 3),
            "arch": self.arch,
            "vendor": self.vendor,
            "cpus": self.cpus,
            "memory": self.memory,
            "os": self.os,
            "flags_digest": self.flags_digest or None,
            "channels": self.channels,
            "images": self.images,
            "hydrate": self.hydrate,
            "smoke": self.smoke,
            "mismatch": self.mismatch,
        }


# --------------------------------------------------------------------------- site glue


def _path_option(value: str | None, base: Path) -> str | None:
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise BadInput(f"ssh config {path} does not exist")
    return str(path)


def options_from_site(site: Any, **given: Any) -> CheckOptions:
    """Options from console.toml (``[fleet]``, ``[node] root`` and ``remote_console``), overridden
    by every non-None keyword. A relative ``ssh_config`` in console.toml is relative to the site;
    one given on the command line, to the current directory."""
    cfg = site.config
    fleet_cfg = cfg.fleet
    remote = fleet_cfg.remote_console or cfg.node.remote_console or "console"
    ssh_config = given.pop("ssh_config", None)
    ssh_config = _path_option(ssh_config, Path.cwd()) if ssh_config else _path_option(fleet_cfg.ssh_config, site.root)
    try:
        remote_argv = tuple(shlex.split(remote) if isinstance(remote, str) else [str(x) for x in remote])
    except ValueError as exc:
        raise BadInput(f"remote_console {remote!r} is not a valid command line: {exc}") from None
    opts: dict[str, Any] = {
        "fanout": fleet_cfg.fanout,
        "connect_timeout": float(fleet_cfg.connect_timeout),
        "timeout": float(fleet_cfg.timeout),
        "ssh_config": ssh_config,
        "root": fleet_cfg.root or cfg.node.root or None,
        "remote_console": remote_argv,
        "store": fleet_cfg.store or None,
        "trust": fleet_cfg.trust or None,
        "max_output": fleet_cfg.max_output_bytes,
        "transport": fleet_cfg.transport,
    }
    slurm_given = {k: given.pop(k, None) for k in ("partition", "feature")}
    opts["slurm"] = slurm.options_from(fleet_cfg, **slurm_given)
    opts.update({k: v for k, v in given.items() if v is not None})
    if opts.get("hydrate") and not opts.get("store"):
        opts["store"] = site.store_location
    options = CheckOptions(**opts)
    options.validate()
    return options


def channel_targets(site: Any) -> list[ChannelTarget]:
    """Each channel's current release and its images, read (and verified) from the store.

    A channel whose pointer or release does not verify is left out: no node would run it.
    """
    from core.site.catalogue import load_release
    from core.site.channels import channel_status

    targets = []
    for row in channel_status(site):
        if not row.get("release"):
            continue
        try:
            release = load_release(site, row["release"])
        except DepotError:
            continue
        targets.append(ChannelTarget(row["channel"], release.id, tuple(sorted(release.images))))
    return targets


def node_groups(site: Any) -> dict[str, str]:
    """``[fleet] groups`` (name -> node set; a table of strings, checked when console.toml is loaded)."""
    return dict(site.config.fleet.groups)


def expand_nodes(site: Any, pattern: str) -> list[str]:
    """The site's node set ``pattern`` as names, with its groups and its ``[fleet] max_nodes`` cap
    (a larger set is refused before ClusterShell expands it)."""
    return expand(pattern, node_groups(site), max_nodes=site.config.fleet.max_nodes)


def select_nodes(site: Any, pattern: str | None, options: CheckOptions) -> list[str]:
    """The nodes of a check: ``pattern`` expanded (``expand_nodes``); without one, with the Slurm
    transport, the nodes Slurm has in ``--partition``/``--feature``."""
    if pattern:
        return expand_nodes(site, pattern)
    if options.transport != "slurm":
        raise BadInput("fleet check needs a NODESET (or --via slurm with --partition / --feature)")
    import asyncio

    nodes = asyncio.run(slurm.select_nodes(options.slurm))
    return expand_nodes(site, fold(nodes))


# --------------------------------------------------------------------------- one node


def _remote_doc(stdout: bytes) -> dict[str, Any] | None:
    """stdout as one JSON object (a console's ``--json`` document, possibly indented), or None."""
    try:
        text = stdout.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # a node's output is untrusted: nested past the parser's reach too
        return None
    return doc if isinstance(doc, dict) else None


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:])


def _remote_outcome(result: NodeResult, verb: str) -> tuple[str, str, dict[str, Any] | None]:
    """(status, detail, document) of one ``remote_console node VERB --json`` run."""
    doc = _remote_doc(result.stdout)
    if result.status == fleet.NO_PYTHON:
        return fleet.REMOTE_FAILED, f"node {verb}: remote console not found ({result.detail})", None
    if result.status == fleet.OK:
        if doc is None:
            return fleet.BAD_OUTPUT, f"node {verb}: output is not one JSON document", None
        return fleet.OK, "", doc
    if result.status == fleet.REMOTE_FAILED:
        if doc is not None and isinstance(doc.get("error"), str):
            return fleet.REMOTE_FAILED, f"node {verb}: {doc['error']} (exit {result.exit_code})", doc
        if doc is not None:
            return fleet.REMOTE_FAILED, "", doc
        return fleet.REMOTE_FAILED, f"node {verb}: {result.detail}", None
    return result.status, f"node {verb}: {result.detail}", doc


def _warm(reduction: float) -> str:
    """As ``console.render.warm_change``: a slower warm start reads as a regression."""
    pct = round(abs(reduction) * 100)
    if not pct:
        return "as fast as cold"
    return f"{pct}% faster warm" if reduction > 0 else f"{pct}% slower warm: a regression"


def _smoke_detail(doc: Mapping[str, Any], exit_code: int | None) -> str:
    wall, base, red = doc.get("wall_s"), doc.get("baseline_s"), doc.get("reduction")
    timing = f"{wall:.2f}s" if isinstance(wall, (int, float)) else ""
    if isinstance(base, (int, float)):
        timing += f" (cold {base:.2f}s" + (f", {_warm(red)}" if isinstance(red, (int, float)) else "") + ")"
    if doc.get("ok") is True:
        return f"smoke ok {timing}".rstrip()
    problem = str(doc.get("problem") or "")
    parts = [f"smoke failed: {problem or 'exit ' + str(doc.get('exit_code', exit_code))}"]
    rejected = doc.get("rejected_caches")
    if rejected and not problem:
        parts.append(f"{len(rejected) if isinstance(rejected, list) else rejected} rejected cache file(s)")
    tail = _tail(str(doc.get("output_tail") or ""))
    if tail:
        parts.append(tail)
    return "; ".join(parts)


def _hydrate_detail(doc: Mapping[str, Any]) -> str:
    bits = [str(doc[k])[:19] if k == "release" else str(doc[k]) for k in ("release", "image") if doc.get(k)]
    return "hydrated " + " ".join(bits) if bits else "hydrated"


class _Classifier:
    """``classify_probe`` memoised on the CPU facts: a fleet has a handful of distinct CPUs."""

    def __init__(self) -> None:
        self._memo: dict[str, Classified] = {}

    def __call__(self, probe: Mapping[str, Any]) -> Classified:
        cpu = probe.get("cpuinfo") or {}
        key = json.dumps([cpu, probe.get("machine")], sort_keys=True)
        if key not in self._memo:
            self._memo[key] = classify_probe(probe)
        return self._memo[key]


async def _ssh(
    node: str,
    argv: list[str],
    stdin: bytes | None,
    options: CheckOptions,
    on_start: Callable[[str], None] | None = None,
) -> NodeResult:
    [result] = await run_fleet(
        [node],
        argv,
        stdin,
        fanout=1,
        connect_timeout=options.connect_timeout,
        deadline=options.timeout,
        ssh_config=options.ssh_config,
        on_start=on_start,
        max_output=options.max_output,
    )
    return result


def _probe_argv(options: CheckOptions) -> tuple[list[str], list[str]]:
    """(the probe's command, the ``--root`` arguments every stage passes)."""
    root = ["--root", options.root] if options.root else []
    return ["python3", "-", *root], root


def _after_probe(node: str, result: NodeResult, classify: _Classifier, images: ImageCache) -> NodeCheck:
    """A node's check from its probe result (same for every transport)."""
    apply_parser(result, parse_probe_output)
    check = NodeCheck(node, result.status, result.detail if not result.ok else "", checked=utcnow_iso())
    if result.ok:
        probe: dict[str, Any] = result.data
        c = classify(probe)
        check.probe, check.arch, check.vendor, check.flags_digest = probe, c.arch, c.vendor, c.flags_digest
        check.cpus, check.memory = probe["cpus"], probe["memory"]
        check.os = os_label(probe)
        check.channels = probe.get("channels") or {}
        check.images = images.get(c.arch, c.problem)
        if c.arch is None:
            check.detail = c.problem
        else:
            picks = sorted(check.images.items())
            check.detail = ", ".join(f"{ch}={v['image'] or 'none'}" for ch, v in picks) or "no channels"
    return check


async def _check_node(
    node: str,
    options: CheckOptions,
    classify: _Classifier,
    images: ImageCache,
    probe_bytes: bytes,
    on_start: Callable[[str], None] | None,
) -> NodeCheck:
    started = time.monotonic()
    probe_argv, root = _probe_argv(options)
    result = await _ssh(node, probe_argv, probe_bytes, options, on_start)
    check = _after_probe(node, result, classify, images)
    if result.ok:
        await _remote_stages(check, options, root, lambda r: _after_reprobe(check, r, classify, images), probe_bytes)
    check.seconds = time.monotonic() - started
    return check


def _hydrate_argv(options: CheckOptions, root: list[str]) -> list[str]:
    argv = [
        *options.remote_console,
        "node",
        "hydrate",
        "--store",
        str(options.store),
        "--channel",
        str(options.channel),
    ]
    argv += root + (["--trust", options.trust] if options.trust else [])
    return [*argv, "--json"]


def _smoke_argv(options: CheckOptions, root: list[str]) -> list[str]:
    baseline = ["--baseline"] if options.baseline else []
    mount = ["--mount", options.mount] if options.mount else []
    return [
        *options.remote_console,
        "node",
        "smoke",
        *mount,
        "--channel",
        str(options.channel),
        *root,
        *baseline,
        "--json",
    ]


def _after_hydrate(check: NodeCheck, result: NodeResult) -> bool:
    """Apply a node's ``node hydrate`` result; False when the node's check ends here."""
    check.stage = "hydrate"
    status, detail, doc = _remote_outcome(result, "hydrate")
    check.hydrate = doc
    if status != fleet.OK:
        check.status, check.detail = status, detail or f"node hydrate: exit {result.exit_code}"
        return False
    check.detail = _hydrate_detail(doc or {})
    return True


def _after_reprobe(check: NodeCheck, result: NodeResult, classify: _Classifier, images: ImageCache) -> bool:
    """Apply the probe taken after a node's hydrate: its facts replace the first probe's (the
    hydrate switched ``current/<channel>``), the hydrate's detail stays. False, with the probe's
    failure as the node's status, when the node did not answer it: what it runs now is unknown."""
    fresh = _after_probe(check.node, result, classify, images)
    if not fresh.ok:
        check.status, check.detail = fresh.status, f"probe after hydrate: {fresh.detail}"
        check.probe, check.channels = None, {}  # the first probe's releases are stale: record status only
        return False
    check.probe, check.arch, check.vendor, check.flags_digest = (
        fresh.probe,
        fresh.arch,
        fresh.vendor,
        fresh.flags_digest,
    )
    check.cpus, check.memory, check.os = fresh.cpus, fresh.memory, fresh.os
    check.channels, check.images, check.checked = fresh.channels, fresh.images, fresh.checked
    return True


def _after_smoke(check: NodeCheck, result: NodeResult) -> None:
    """Apply a node's ``node smoke`` result."""
    check.stage = "smoke"
    check.smoke_attempted = True
    status, detail, doc = _remote_outcome(result, "smoke")
    if (
        doc is not None
        and status in (fleet.OK, fleet.REMOTE_FAILED)
        and not isinstance(doc.get("ok"), bool)
        and "error" not in doc
    ):
        status, detail, doc = fleet.BAD_OUTPUT, "node smoke: JSON document has no boolean 'ok'", None
    check.smoke = doc if doc is not None and "error" not in doc else None
    if status == fleet.OK and check.smoke is not None and check.smoke.get("ok") is not True:
        status = fleet.REMOTE_FAILED
    if check.smoke is not None and not detail:
        detail = _smoke_detail(check.smoke, result.exit_code)
    check.status, check.detail = status, detail


async def _remote_stages(
    check: NodeCheck,
    options: CheckOptions,
    root: list[str],
    after_reprobe: Callable[[NodeResult], bool],
    probe_bytes: bytes,
) -> None:
    """Hydrate, probe again (``after_reprobe`` applies it), then smoke, with the node's own
    console; the first failure ends the node's check."""
    if options.hydrate:
        result = await _ssh(check.node, _hydrate_argv(options, root), None, options)
        if not _after_hydrate(check, result):
            return
        if not after_reprobe(await _ssh(check.node, _probe_argv(options)[0], probe_bytes, options)):
            return
    if options.smoke:
        result = await _ssh(check.node, _smoke_argv(options, root), None, options)
        _after_smoke(check, result)


async def _check_via_slurm(
    nodes: list[str],
    options: CheckOptions,
    classify: _Classifier,
    images: ImageCache,
    probe_bytes: bytes,
    on_start: Callable[[str], None] | None,
    on_result: Callable[[NodeCheck], None] | None,
) -> list[NodeCheck]:
    """The Slurm transport: one srun step per stage (probe, hydrate, probe again, smoke) over the
    nodes still ok; a node is reported when its check ends (failed stage, or the last stage)."""
    started = time.monotonic()
    deadline, cap = options.timeout, options.max_output
    probe_argv, root = _probe_argv(options)
    results = await slurm.run_step(
        nodes, probe_argv, probe_bytes, options.slurm, deadline=deadline, max_output=cap, on_start=on_start
    )
    checks = [_after_probe(n, r, classify, images) for n, r in zip(nodes, results, strict=True)]

    def report(done: Iterable[NodeCheck]) -> None:
        for c in done:
            c.seconds = time.monotonic() - started
            if on_result is not None:
                on_result(c)

    def reprobe(check: NodeCheck, result: NodeResult) -> bool:
        return _after_reprobe(check, result, classify, images)

    stages: list[tuple[list[str], bytes | None, Callable[[NodeCheck, NodeResult], Any]]] = []
    if options.hydrate:
        stages.append((_hydrate_argv(options, root), None, _after_hydrate))
        stages.append((probe_argv, probe_bytes, reprobe))
    if options.smoke:
        stages.append((_smoke_argv(options, root), None, _after_smoke))
    live = [c for c in checks if c.ok]
    report(c for c in checks if not c.ok or not stages)
    for argv, stdin, apply in stages:
        if not live:
            break
        results = await slurm.run_step(
            [c.node for c in live], argv, stdin, options.slurm, deadline=deadline, max_output=cap
        )
        for c, r in zip(live, results, strict=True):
            apply(c, r)
        ended = [c for c in live if not c.ok or apply is stages[-1][2]]
        report(ended)
        live = [c for c in live if c not in ended]
    return checks


# --------------------------------------------------------------------------- the fleet


def flag_mismatches(checks: Iterable[NodeCheck]) -> list[NodeCheck]:
    """Turn ok nodes whose smoke fingerprint differs from their image group's majority into
    ``fingerprint-mismatch``; return the nodes flagged."""
    by_node = {c.node: c for c in checks if c.ok and c.smoke is not None}
    items = [
        {
            "node": c.node,
            "release": c.smoke.get("release"),
            "image": c.smoke.get("image"),
            "fingerprint": c.smoke.get("fingerprint"),
        }
        for c in by_node.values()
        if c.smoke
    ]
    flagged = []
    for m in fingerprint_mismatches(items):
        check = by_node[m.node]
        check.status, check.detail, check.mismatch = FINGERPRINT_MISMATCH, m.detail, list(m.modules)
        flagged.append(check)
    return flagged


async def check_fleet(
    nodes: list[str],
    options: CheckOptions,
    targets: Iterable[ChannelTarget],
    *,
    on_start: Callable[[str], None] | None = None,
    on_result: Callable[[NodeCheck], None] | None = None,
) -> list[NodeCheck]:
    """Check every node; results in the order of ``nodes``.

    ``on_start(node)`` is called when a node's probe ssh starts, ``on_result(check)`` when a node
    is done (again, later, for a node flagged ``fingerprint-mismatch``). At most
    ``options.fanout`` nodes are worked on at once. Cancel the task to stop: every ssh is killed
    and the results streamed so far are all there is. Raises BadInput for bad options, NotFound
    when ``--smoke``/``--hydrate`` name a channel without a current release.
    """
    options.validate()
    targets = list(targets)
    if (options.smoke or options.hydrate) and options.channel not in {t.channel for t in targets}:
        raise NotFound(f"channel {options.channel} has no current release")
    classify, images, probe_bytes = _Classifier(), ImageCache(targets), probe_source()
    if options.transport == "slurm":
        done = await _check_via_slurm(nodes, options, classify, images, probe_bytes, on_start, on_result)
        for check in flag_mismatches(done):
            if on_result is not None:
                on_result(check)
        return done
    done = await bounded_gather(
        len(nodes),
        options.fanout,
        lambda i: _check_node(nodes[i], options, classify, images, probe_bytes, on_start),
        on_result,
    )
    for check in flag_mismatches(done):
        if on_result is not None:
            on_result(check)
    return done


# --------------------------------------------------------------------------- summary and record


def summarize(checks: Iterable[NodeCheck]) -> dict[str, Any]:
    """Counts per status, folded node set per status, counts per micro-architecture, and how many
    nodes answered (a status not in ``NO_ANSWER``)."""
    checks = list(checks)
    by_status: dict[str, list[str]] = {}
    for c in checks:
        by_status.setdefault(c.status, []).append(c.node)
    order = {s: i for i, s in enumerate(STATUSES)}
    statuses = sorted(by_status, key=lambda s: (order.get(s, len(order)), s))
    arches = Counter(c.arch for c in checks if c.arch)
    failed = sum(len(names) for status, names in by_status.items() if status != fleet.OK)
    return {
        "total": len(checks),
        "answered": sum(1 for c in checks if c.status not in NO_ANSWER),
        "failed": failed,
        "counts": {s: len(by_status[s]) for s in statuses},
        "nodesets": {s: _fold(by_status[s]) for s in statuses},
        "arches": dict(sorted(arches.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def answered_text(checks: Iterable[NodeCheck], total: int) -> str:
    """``0 of 2 answered, 2 unreachable``: of the ``total`` nodes asked, how many answered, then
    each no-answer status with its count, then the nodes not checked (a cancelled check). A node
    that could not be reached is never counted as having answered."""
    checks = list(checks)
    counts = summarize(checks)["counts"]
    parts = [f"{sum(1 for c in checks if c.status not in NO_ANSWER)} of {total} answered"]
    parts += [f"{n} {s}" for s, n in counts.items() if s in NO_ANSWER]
    if total > len(checks):
        parts.append(f"{total - len(checks)} not checked")
    return ", ".join(parts)


def _fold(names: list[str]) -> str:
    try:
        return fold(names)
    except BadInput:
        return ",".join(names)


def refuse_if_read_only(site: Any, *, hydrate: bool | None) -> None:
    """A fleet check only reads the nodes, so a read-only console may run one (its outcome is not
    recorded); with ``--hydrate`` it changes them, and is refused as ``Site.action`` refuses."""
    if hydrate:
        site.refuse_if_read_only(f"{AUDIT_VERB} --hydrate")


def record_check(
    site: Any, target: str, checks: Iterable[NodeCheck], options: CheckOptions, *, interrupted: bool = False
) -> bool:
    """Write a check to the database: node rows, smoke runs, one audit row (``fleet check``),
    through ``Site.action`` like every state-changing verb. False, and nothing written, on a
    read-only site: the check itself only read the nodes.

    A node that answered its probe gets its full row; one that did not keeps what was known
    about it and only gets the new status and detail.
    """
    if site.read_only:
        return False
    checks = list(checks)
    with site.action(AUDIT_VERB, target) as detail:
        rows, smokes = [], []
        for c in checks:
            if c.probe is not None:
                c_classified = Classified(c.arch, c.vendor, c.flags_digest)
                rows.append(node_row(c.node, c.probe, c_classified, c.images, c.status, c.detail, c.checked))
            else:
                rows.append({"name": c.node, "status": c.status, "detail": c.detail})
            if c.smoke_attempted:
                doc = c.smoke or {
                    "release": (c.images.get(str(options.channel)) or {}).get("release"),
                    "image": (c.images.get(str(options.channel)) or {}).get("image"),
                    "ok": False,
                }
                smokes.append(smoke_row(c.node, doc, f"{c.status}: {c.detail}", c.checked))
        upsert_nodes(site.state, rows)
        record_smoke_runs(site.state, smokes)
        summary = summarize(checks)
        if interrupted:
            detail.outcome = "interrupted"
        elif summary["failed"]:
            detail.outcome = f"failed: {summary['failed']} of {summary['total']} nodes"
        detail.update(counts=summary["counts"], smoke=options.smoke, hydrate=options.hydrate, channel=options.channel)
    return True
