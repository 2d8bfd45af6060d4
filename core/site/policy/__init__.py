"""Promotion policies per channel (issue 16, DESIGN §10 "Rollout policy").

A channel's ``[channels.<name>]`` table (``core.site.config.ChannelPolicy``) lists the evidence a
promote onto it needs. Every check reads what the console already records or the store holds, never
the nodes directly:

``smoke-every-arch``
    every micro-architecture the inventory (``nodes``) has, for which one of the release's images
    is the one ``core.arch.choose_image`` picks, has at least one node whose latest smoke run of
    the release passed (``smoke_runs``, written by ``fleet check --smoke``);
``no-rejected-caches``
    no node's latest smoke run of the release saw the runtime reject a cache file;
``same-fingerprint``
    the passing runs of one image report one module fingerprint (``inventory.fingerprint_mismatches``);
``startup``
    per micro-architecture, the median smoke wall time of the release is at most the current
    release's (on the channel) times ``1 + startup_margin``;
``soak``
    the release was the current release of ``soak_channel`` for ``soak_hours`` in all (from the
    signed pointer history in the store).

``gate`` runs them for ``promote``: unmet checks refuse (``CheckFailed``, exit 1, every unmet one
named in the one line), unless ``--override REASON`` is given and the policy lets each of them be
waived (``override``), in which case the reason and the waived checks go into the pointer's
``reason`` and the audit row. ``evaluate`` with ``nodes`` judges only those nodes (a rollout stage).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.arch import choose_image
from core.clock import parse_time
from core.errors import BadInput, CheckFailed, DepotError
from core.site.config import POLICY_CHECKS, ChannelPolicy

if TYPE_CHECKING:
    from core.model.manifest import Release
    from core.site.site import Site

#: The checks a rollout stage waits for when the channel's policy requires none of the node ones.
STAGE_CHECKS = ("smoke-every-arch", "no-rejected-caches", "same-fingerprint")
#: Rollout-only check: no node of the stage has a failing latest smoke of the release.
NO_FAILED_SMOKE = "no-failed-smoke"
NODE_CHECKS = ("smoke-every-arch", "no-rejected-caches", "same-fingerprint", "startup")


@dataclass
class CheckResult:
    """One check of a policy: its name, whether it holds, a one-line detail, whether it may be waived."""

    name: str
    ok: bool
    detail: str
    overridable: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "overridable": self.overridable}

    def line(self) -> str:
        return f"{self.name}: {self.detail}"


@dataclass
class Evaluation:
    """The checks of one release against one channel's policy."""

    channel: str
    release: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def unmet(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "release": self.release,
            "ok": not self.unmet,
            "checks": [c.to_json() for c in self.checks],
            "unmet": [c.name for c in self.unmet],
        }


def policy_for(site: Site, channel: str) -> ChannelPolicy | None:
    """The ``[channels.<channel>]`` policy, or None when the channel has none."""
    return site.config.policies.get(channel)


def overridable(policy: ChannelPolicy | None, check: str) -> bool:
    return policy is not None and ("*" in policy.override or check in policy.override)


def _short(release: str | None) -> str:
    return (release or "")[7:19] or "-"


# -- the evidence ---------------------------------------------------------------------------------
def _inventory_arches(site: Site, nodes: list[str] | None) -> dict[str, list[str]]:
    """arch -> node names (classified nodes of the inventory, of ``nodes`` only if given)."""
    wanted = None if nodes is None else set(nodes)
    out: dict[str, list[str]] = {}
    for row in site.state.nodes.rows():
        arch = row.get("arch")
        if not arch or arch == "unknown" or (wanted is not None and row["name"] not in wanted):
            continue
        out.setdefault(arch, []).append(row["name"])
    return out


def served_arches(site: Site, release: Release, nodes: list[str] | None = None) -> dict[str, tuple[str, list[str]]]:
    """arch -> (image of ``release`` that arch runs, its nodes), for the inventory's arches an image serves."""
    out = {}
    for arch, names in sorted(_inventory_arches(site, nodes).items()):
        try:
            image = choose_image(arch, release.images).image
        except BadInput:
            continue
        if image is not None:
            out[arch] = (image, names)
    return out


def _runs(site: Site, release: str, nodes: list[str] | None) -> list[dict[str, Any]]:
    return site.state.smoke_runs.latest_for_release(release, nodes)


def _rejected(run: dict[str, Any]) -> bool:
    if run.get("rejected") is not None:
        return int(run["rejected"]) > 0
    return "rejected cache" in str(run.get("detail") or "")


def _check_smoke_every_arch(
    site: Site, release: Release, runs: list[dict], nodes: list[str] | None
) -> tuple[bool, str]:
    served = served_arches(site, release, nodes)
    if not served:
        where = "among these nodes" if nodes is not None else "in the inventory"
        return False, f"no node {where} runs an image of {_short(release.id)} (run 'console fleet check' first)"
    passed = {r["node"] for r in runs if r["ok"]}
    missing = [f"{arch} (image {image})" for arch, (image, names) in served.items() if not passed & set(names)]
    if missing:
        return False, f"no passing smoke of {_short(release.id)} on a node of {', '.join(missing)}"
    return True, f"a passing smoke on every micro-architecture served: {', '.join(served)}"


def _check_no_rejected(release: Release, runs: list[dict]) -> tuple[bool, str]:
    bad = [r["node"] for r in runs if _rejected(r)]
    if bad:
        return False, f"the runtime rejected cache files of {_short(release.id)} on {', '.join(bad)}"
    return True, f"no rejected cache file in {len(runs)} smoke run(s)"


def _check_same_fingerprint(release: Release, runs: list[dict]) -> tuple[bool, str]:
    from core.site.inventory import fingerprint_mismatches

    items = []
    for r in runs:
        if not r["ok"] or r.get("fingerprint") is None:
            continue
        fp: Any = r["fingerprint"]
        try:
            fp = json.loads(fp)
        except (ValueError, TypeError, RecursionError):
            pass
        items.append({"node": r["node"], "release": r["release"], "image": r["image"], "fingerprint": fp})
    odd = fingerprint_mismatches(items)
    if odd:
        parts = [f"{m.node} ({m.image}: {', '.join(m.modules) or 'whole fingerprint'})" for m in odd]
        return False, f"module fingerprints differ across nodes of one image: {'; '.join(parts)}"
    return True, f"one module fingerprint per image over {len(items)} passing run(s)"


def _medians(runs: list[dict]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for r in runs:
        if r["ok"] and r.get("arch") and isinstance(r.get("wall_s"), (int, float)):
            by.setdefault(r["arch"], []).append(float(r["wall_s"]))
    return {a: statistics.median(v) for a, v in by.items()}


def _check_startup(
    site: Site, release: Release, runs: list[dict], current: str | None, margin: float, nodes: list[str] | None
) -> tuple[bool, str]:
    if current is None or current == release.id:
        return True, "no other current release to compare with"
    new, old = _medians(runs), _medians(_runs(site, current, nodes))
    common = sorted(set(new) & set(old))
    if not common:
        return True, f"no micro-architecture with passing smokes of both {_short(release.id)} and {_short(current)}"
    worse = [
        f"{a} {new[a]:.2f}s vs {old[a]:.2f}s (+{new[a] / old[a] - 1:.0%})"
        for a in common
        if old[a] > 0 and new[a] > old[a] * (1 + margin)
    ]
    if worse:
        return False, (
            f"start-up slower than the current release {_short(current)} by more than {margin:.0%}: {', '.join(worse)}"
        )
    return True, f"start-up within {margin:.0%} of {_short(current)} on {', '.join(common)}"


def soak_seconds(site: Site, release: str, channel: str, now: datetime) -> float | None:
    """Seconds ``release`` was the current release of ``channel``, from its signed pointer history
    (None: it never was)."""
    from core.site.channels import read_history

    try:
        entries = [e for e in read_history(site, channel) if e.usable]
    except DepotError:
        return None
    entries.sort(key=lambda e: e.version)
    total: float | None = None
    for i, e in enumerate(entries):
        assert e.pointer is not None
        if e.pointer.release != release:
            continue
        start = parse_time(e.pointer.issued)
        end = parse_time(entries[i + 1].pointer.issued) if i + 1 < len(entries) else now  # type: ignore[union-attr]
        total = (total or 0.0) + max(0.0, (end - start).total_seconds())
    return total


def _check_soak(site: Site, release: Release, policy: ChannelPolicy) -> tuple[bool, str]:
    seconds = soak_seconds(site, release.id, policy.soak_channel, site.now())
    if seconds is None:
        return (
            False,
            f"{_short(release.id)} was never on channel {policy.soak_channel} ({policy.soak_hours:g} h required)",
        )
    hours = seconds / 3600
    if hours < policy.soak_hours:
        return False, (
            f"{_short(release.id)} has been on {policy.soak_channel} for {hours:.1f} h of the {policy.soak_hours:g} h required"
        )
    return True, f"on {policy.soak_channel} for {hours:.1f} h (>= {policy.soak_hours:g} h)"


def current_release(site: Site, channel: str) -> str | None:
    from core.site.channels import read_current

    try:
        cur = read_current(site, channel, None)
    except DepotError:
        return None
    return cur.pointer.release if cur.pointer else None


def evaluate(
    site: Site,
    release_id: str,
    channel: str,
    checks: tuple[str, ...] | list[str] | None = None,
    *,
    nodes: list[str] | None = None,
    base: str | None = None,
) -> Evaluation:
    """Run ``checks`` (default: the channel policy's ``require``) for ``release_id``; ``nodes``
    limits the node evidence to those nodes; ``base`` is the release to compare start-up with
    (default: the channel's current one)."""
    from core.site.catalogue import load_release

    policy = policy_for(site, channel)
    wanted = list(policy.require if policy and checks is None else checks or ())
    release = load_release(site, release_id)
    runs = _runs(site, release_id, nodes)
    out = Evaluation(channel, release_id)
    for name in [c for c in (*POLICY_CHECKS, NO_FAILED_SMOKE) if c in wanted]:
        if name == "smoke-every-arch":
            ok, detail = _check_smoke_every_arch(site, release, runs, nodes)
        elif name == "no-rejected-caches":
            ok, detail = _check_no_rejected(release, runs)
        elif name == "same-fingerprint":
            ok, detail = _check_same_fingerprint(release, runs)
        elif name == "startup":
            margin = policy.startup_margin if policy else 0.1
            ok, detail = _check_startup(site, release, runs, base or current_release(site, channel), margin, nodes)
        elif name == "soak":
            ok, detail = _check_soak(site, release, policy or ChannelPolicy())
        else:  # NO_FAILED_SMOKE
            failed = [r["node"] for r in runs if not r["ok"]]
            ok = not failed
            detail = f"smoke of {_short(release_id)} failed on {', '.join(failed)}" if failed else "no failed smoke"
        out.checks.append(CheckResult(name, ok, detail, overridable(policy, name)))
    return out


def gate(site: Site, release_id: str, channel: str, override: str | None) -> tuple[str, list[str]]:
    """Check a promote of ``release_id`` onto ``channel``; return (text for the pointer's reason, waived checks).

    Raises ``CheckFailed`` (exit 1) naming every unmet check when one is unmet and not waived; an
    ``override`` reason waives unmet checks only where the policy permits (``override``), else
    ``BadInput`` names the ones it may not waive.
    """
    policy = policy_for(site, channel)
    if policy is None or not policy.require:
        if override:
            raise BadInput(f"--override: channel {channel} has no policy to override")
        return "", []
    ev = evaluate(site, release_id, channel)
    unmet = ev.unmet
    if not unmet:
        return "", []
    lines = "; ".join(c.line() for c in unmet)
    head = f"promote of {_short(release_id)} onto {channel} refused: {len(unmet)} unmet check(s): {lines}"
    if not override:
        may = [c.name for c in unmet if c.overridable]
        hint = f" (--override REASON may waive: {', '.join(may)})" if may else ""
        raise CheckFailed(head + hint)
    fixed = [c.name for c in unmet if not c.overridable]
    if fixed:
        raise CheckFailed(f"{head} (the policy of {channel} lets --override waive none of: {', '.join(fixed)})")
    waived = [c.name for c in unmet]
    return f"override ({', '.join(waived)}): {override}", waived


def show(site: Site) -> list[dict[str, Any]]:
    """Per channel with a policy or a co-signing threshold above 1: required checks, parameters,
    signatures needed, the canary set (``console policy show``)."""
    channels = sorted(set(site.config.policies) | set(site.store.list_channels()))
    rows = []
    for ch in channels:
        policy = policy_for(site, ch)
        need = site.trust.channel_threshold(ch)
        if policy is None and need <= 1:
            continue
        p = policy or ChannelPolicy()
        rows.append(
            {
                "channel": ch,
                "require": list(p.require),
                "startup_margin": p.startup_margin if "startup" in p.require else None,
                "soak": {"channel": p.soak_channel, "hours": p.soak_hours} if "soak" in p.require else None,
                "override": list(p.override),
                "signatures": need,
                "signers": [k.id for k in site.trust.keys.values() if "channel" in k.roles and not k.revoked],
                "canary": p.canary,
            }
        )
    return rows
