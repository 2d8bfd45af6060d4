"""Staged rollout (issue 16 part 3): a release reaches a channel's nodes stage by stage.

A rollout of release R on channel C (carrying base release B) has stages: the canary node set,
then fractions (``25%``), then ``100%``. Nodes learn their stage from one signed **stage pointer**,
``channels/C.rollout.json`` (an ordinary pointer of channel ``C.rollout``, with history, marks and
expiry like any other, whose payload also carries an ``audience``: the canary names, a
percentage, the base B and a salt). A node hydrating C follows the stage pointer's release when the
pointer verifies, its base is C's current release and the node is in its audience: named, or its
stable hash bucket (``core.trust.pointers.node_bucket``, salt = the channel) is below the
percentage (``core.node.hydrate.verify``). Every other node follows C's own pointer, i.e. B.
The server holds no state per node: the audience is computed by each node from its own name;
the console computes the same function over its inventory to know which nodes are in a stage.

* ``start``: the stage pointer names R for the canary nodes (version N+1 of ``C.rollout``).
* ``advance`` (``rollout next``): the evidence of the current stage's nodes (their latest smoke
  runs of R, recorded by ``fleet check --hydrate --smoke``; checks of ``core.site.policy``:
  ``smoke-every-arch``, ``no-rejected-caches``, ``same-fingerprint``, ``no-failed-smoke``, plus
  ``startup`` if the channel's policy requires it, compared with B) must hold; then the next stage
  is issued (a wider audience). Reaching 100 % promotes C itself to R (the stage pointer's base
  no longer matches, so nodes stop consulting it) and the rollout is done; before that promote,
  the channel's full policy (every required check, over every node, as ``promote`` runs it) is
  checked again: an unmet check keeps the rollout at its stage (exit 1), nothing issued.
* ``abort``: a new stage pointer version with an empty audience carrying B: every node follows
  C's pointer (B) on its next hydrate, canaries included. Roll-forward, nothing rewound.

The ``rollouts`` table is the console's plan and record (stages, the stage reached, its state);
the store's pointers are what nodes obey.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.clock import format_time
from core.errors import BadInput, CheckFailed, Conflict, NotFound
from core.site.config import POLICY_CHECKS
from core.trust.pointers import Audience

if TYPE_CHECKING:
    from core.site.site import Site

CANARY = "canary"
RUNNING, DONE, ABORTED = "running", "done", "aborted"
_PERCENT = re.compile(r"^([0-9]{1,3}(?:\.[0-9]+)?)%$")


def stage_channel(channel: str) -> str:
    return f"{channel}.rollout"


@dataclass
class Stage:
    name: str
    percent: float
    nodes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "percent": self.percent, "nodes": list(self.nodes)}


def parse_stages(canary: list[str], then: list[str]) -> list[Stage]:
    """The canary stage, then each ``--then P%`` (increasing, the last one 100 %)."""
    if not canary:
        raise BadInput("rollout start: the canary node set is empty (--canary NODESET, or [channels.<name>] canary)")
    stages = [Stage(CANARY, 0.0, tuple(sorted(set(canary))))]
    for text in then or ["100%"]:
        m = _PERCENT.match(text.strip())
        if not m or not 0 < float(m.group(1)) <= 100:
            raise BadInput(f"rollout start: --then {text!r} is not a percentage such as 25%")
        pct = float(m.group(1))
        if pct <= stages[-1].percent:
            raise BadInput("rollout start: each --then must be larger than the one before")
        stages.append(Stage(text.strip(), pct))
    if stages[-1].percent != 100:
        stages.append(Stage("100%", 100.0))
    return stages


@dataclass
class Rollout:
    id: int
    channel: str
    release: str
    base: str
    stages: list[Stage]
    stage: int
    state: str
    started: str
    updated: str
    actor: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rollout:
        stages = [Stage(s["name"], float(s["percent"]), tuple(s["nodes"])) for s in json.loads(row["stages"])]
        return cls(
            row["id"],
            row["channel"],
            row["release"],
            row["base"],
            stages,
            int(row["stage"]),
            row["state"],
            row["started"],
            row["updated"],
            row["actor"],
        )

    @property
    def canary(self) -> tuple[str, ...]:
        return self.stages[0].nodes

    def audience(self, stage: int | None = None) -> Audience:
        """The audience of stage ``stage`` (default: the current one): canaries plus its percentage."""
        s = self.stages[self.stage if stage is None else stage]
        return Audience(self.base, self.canary, s.percent, self.channel)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "release": self.release,
            "base": self.base,
            "stages": [s.to_json() for s in self.stages],
            "stage": self.stage,
            "stage_name": self.stages[self.stage].name,
            "state": self.state,
            "started": self.started,
            "updated": self.updated,
            "actor": self.actor,
        }


def _issue_stage(site: Site, rollout: Rollout, release: str, audience: Audience, reason: str) -> Any:
    """Version N+1 of the stage pointer (``C.rollout``) carrying ``release`` for ``audience``."""
    from core.site.channels import _issue, read_current

    cur = read_current(site, stage_channel(rollout.channel), None, for_update=True)
    return _issue(site, cur, release, "promote", reason, {"audience": audience.to_json()})


def running(site: Site, channel: str) -> Rollout:
    rows = site.state.rollouts.running(channel)
    if not rows:
        raise NotFound(f"no rollout is running on channel {channel}")
    return Rollout.from_row(rows[-1])


def start(site: Site, ref: str, channel: str, canary: list[str], then: list[str]) -> Rollout:
    """Start a rollout of ``ref`` on ``channel``: the stage pointer names it for the canary nodes."""
    from core.site.catalogue import load_release, resolve_release
    from core.site.channels import read_current
    from core.site.policy import evaluate, policy_for

    with site.action("rollout start", channel) as detail:
        release = resolve_release(site, ref)
        load_release(site, release)
        detail["release"] = release
        if site.state.rollouts.running(channel):
            raise Conflict(f"a rollout is already running on {channel}: 'console rollout status', then next or abort")
        cur = read_current(site, channel, site.now())
        if cur.pointer is None:
            raise NotFound(f"channel {channel} has no pointer: a rollout needs a release to start from")
        if cur.pointer.release == release:
            raise BadInput(f"{channel} already carries {release[7:19]}: nothing to roll out")
        policy = policy_for(site, channel)
        if policy is not None and "soak" in policy.require:
            ev = evaluate(site, release, channel, ["soak"])
            if ev.unmet:
                raise CheckFailed(f"rollout of {release[7:19]} onto {channel} refused: {ev.unmet[0].line()}")
        stages = parse_stages(canary, then)
        now = format_time(site.now())
        row = {
            "channel": channel,
            "release": release,
            "base": cur.pointer.release,
            "stages": json.dumps([s.to_json() for s in stages]),
            "stage": 0,
            "state": RUNNING,
            "started": now,
            "updated": now,
            "actor": site.actor,
            "detail": "",
        }
        ro = Rollout(0, channel, release, cur.pointer.release, stages, 0, RUNNING, now, now, site.actor)
        issued = _issue_stage(site, ro, release, ro.audience(0), f"rollout of {release[7:19]}: stage canary")
        ro.id = site.state.rollouts.insert(row)
        detail.update(rollout=ro.id, base=ro.base, canary=list(ro.canary), stages=[s.name for s in stages])
        _note_proposal(detail, issued)
    return ro


def _note_proposal(detail: Any, issued: Any) -> None:
    from core.trust.pointers import Pointer

    if not isinstance(issued, Pointer):
        detail.update(proposal=True)
        detail.outcome = "proposed"


def stage_nodes(site: Site, ro: Rollout, stage: int | None = None) -> list[str]:
    """The inventory's nodes in stage ``stage`` (default: current) plus canaries not in it yet."""
    aud = ro.audience(stage)
    names = {r["name"] for r in site.state.nodes.rows()}
    return sorted({n for n in names if aud.includes(n)} | set(ro.canary))


def stage_checks(site: Site, ro: Rollout) -> list[str]:
    from core.site.policy import NO_FAILED_SMOKE, STAGE_CHECKS, policy_for

    policy = policy_for(site, ro.channel)
    wanted = list(STAGE_CHECKS) + [NO_FAILED_SMOKE]
    if policy is not None:
        wanted += [c for c in policy.require if c in ("startup",) and c not in wanted]
    return [c for c in (*POLICY_CHECKS, NO_FAILED_SMOKE) if c in wanted]


def evidence(site: Site, ro: Rollout) -> Any:
    """The checks of the current stage over its nodes (``core.site.policy.evaluate``)."""
    from core.site.policy import evaluate

    return evaluate(site, ro.release, ro.channel, stage_checks(site, ro), nodes=stage_nodes(site, ro), base=ro.base)


def advance(site: Site, channel: str) -> tuple[Rollout, Any]:
    """``rollout next``: if the current stage's evidence holds, issue the next stage (or, at 100 %,
    promote the channel itself, after the channel's full policy, ``core.site.policy.evaluate`` over
    every node as ``promote`` runs it, holds). ``CheckFailed`` (exit 1) names each unmet check."""
    from core.site.channels import _issue, read_current
    from core.site.policy import evaluate

    with site.action("rollout next", channel) as detail:
        ro = running(site, channel)
        detail.update(rollout=ro.id, release=ro.release, stage=ro.stages[ro.stage].name)
        ev = evidence(site, ro)
        if ev.unmet:
            raise CheckFailed(
                f"rollout of {ro.release[7:19]} on {channel} stays at stage {ro.stages[ro.stage].name}: "
                f"{len(ev.unmet)} unmet check(s): " + "; ".join(c.line() for c in ev.unmet)
            )
        nxt = ro.stage + 1
        cur = read_current(site, channel, None, for_update=True)
        if cur.pointer is None or cur.pointer.release != ro.base:
            raise Conflict(f"{channel} no longer carries {ro.base[7:19]} (moved meanwhile); abort this rollout")
        if ro.stages[nxt].percent >= 100:
            full = evaluate(site, ro.release, channel)  # the channel's whole policy, every node: as `promote`
            if full.unmet:
                raise CheckFailed(
                    f"rollout of {ro.release[7:19]} on {channel} stays at stage {ro.stages[ro.stage].name}: "
                    f"the last stage promotes {channel}, whose policy has {len(full.unmet)} unmet check(s): "
                    + "; ".join(c.line() for c in full.unmet)
                )
            issued = _issue(site, cur, ro.release, "promote", f"rollout {ro.id}: every stage passed")
            ro.state = DONE
        else:
            issued = _issue_stage(
                site, ro, ro.release, ro.audience(nxt), f"rollout of {ro.release[7:19]}: stage {ro.stages[nxt].name}"
            )
        _note_proposal(detail, issued)
        ro.stage, ro.updated = nxt, format_time(site.now())
        site.state.rollouts.update(ro.id, stage=ro.stage, state=ro.state, updated=ro.updated)
        detail.update(to=ro.stages[nxt].name, state=ro.state)
    return ro, ev


def abort(site: Site, channel: str, reason: str = "") -> Rollout:
    """``rollout abort``: the stage pointer carries the base again for nobody; every node follows
    the channel's own pointer (the base) on its next hydrate."""
    with site.action("rollout abort", channel) as detail:
        ro = running(site, channel)
        detail.update(rollout=ro.id, release=ro.release, stage=ro.stages[ro.stage].name)
        nobody = Audience(ro.base, (), 0.0, ro.channel)
        issued = _issue_stage(site, ro, ro.base, nobody, f"rollout {ro.id} aborted" + (f": {reason}" if reason else ""))
        _note_proposal(detail, issued)
        ro.state, ro.updated = ABORTED, format_time(site.now())
        site.state.rollouts.update(ro.id, state=ro.state, updated=ro.updated)
    return ro


def status(site: Site, channel: str | None = None) -> list[dict[str, Any]]:
    """Per channel, its latest rollout: stages with their nodes, nodes per release (as their last
    smoke said), smoke verdicts and start-up per CPU type, and what blocks the next stage."""
    out = []
    for row in site.state.rollouts.latest(channel):
        ro = Rollout.from_row(row)
        doc = ro.to_json()
        members = stage_nodes(site, ro)
        doc["stage_nodes"] = members
        runs = {r["node"]: r for r in site.state.smoke_runs.latest_for_release(ro.release)}
        base_runs = {r["node"]: r for r in site.state.smoke_runs.latest_for_release(ro.base)}
        per_arch: dict[str, dict[str, Any]] = {}
        on_release: dict[str, list[str]] = {}
        for node in members:
            r, b = runs.get(node), base_runs.get(node)
            latest = max((x for x in (r, b) if x), key=lambda x: x["time"], default=None)
            on_release.setdefault(latest["release"] if latest else "unknown", []).append(node)
            if r is not None:
                a = per_arch.setdefault(r.get("arch") or "unknown", {"ok": 0, "failed": 0, "wall_s": []})
                a["ok" if r["ok"] else "failed"] += 1
                if r["ok"] and isinstance(r.get("wall_s"), (int, float)):
                    a["wall_s"].append(r["wall_s"])
        doc["nodes_per_release"] = on_release
        doc["arches"] = {
            k: {"ok": v["ok"], "failed": v["failed"], "wall_s": min(v["wall_s"]) if v["wall_s"] else None}
            for k, v in sorted(per_arch.items())
        }
        doc["blocking"] = [c.line() for c in evidence(site, ro).unmet] if ro.state == RUNNING else []
        out.append(doc)
    return out
