"""The node inventory (DESIGN §6, §7): what each node is, which image it would run, and how nodes compare.

Pure functions turn a probe (``core.node.probe`` output) into a classification — archspec
micro-architecture, flags digest, the image each channel's current release would run there — and
compare smoke fingerprints across nodes that run the same image. The ``nodes`` table of
``state.db`` holds one row per node (upserted by fleet checks); ``smoke_runs`` one row per smoke
result. Nothing here talks to nodes: ``core.fleet.check`` does, then calls into this module.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.arch import TARGETS, choose_image, classify, cpuinfo_from_probe, is_known_microarch, why_not
from core.errors import BadInput
from core.model.digest import canonical_json, digest_bytes
from core.site.db import State, utcnow_iso

UNKNOWN_ARCH = "unknown"
FINGERPRINT_MISMATCH = "fingerprint-mismatch"
_NODE_JSON_COLUMNS = ("channels", "images")
_NODE_LIST_COLUMNS = ("slurm_features", "slurm_partitions")


# --------------------------------------------------------------------------- classification


def flags_digest(flags: Iterable[str]) -> str:
    """``sha256:`` of the sorted, distinct feature names joined by blanks: equal digests, equal flags."""
    return digest_bytes(" ".join(sorted(set(flags))).encode())


@dataclass(frozen=True)
class ChannelTarget:
    """A channel's current release and the images it carries (what ``choose_image`` chooses among)."""

    channel: str
    release: str
    images: tuple[str, ...]


@dataclass(frozen=True)
class Classified:
    """A node's classification: archspec name (None if unclassifiable) and the facts kept in the DB."""

    arch: str | None
    vendor: str
    flags_digest: str
    problem: str = ""


def classify_probe(probe: Mapping[str, Any]) -> Classified:
    """Classify a probe with archspec; an unclassifiable CPU gives ``arch=None`` and a problem line."""
    try:
        info = cpuinfo_from_probe(probe)
        return Classified(classify(info), info.vendor, flags_digest(info.flags))
    except BadInput as exc:
        cpu = probe.get("cpuinfo") or {}
        raw = list(cpu.get("flags") or []) + list(cpu.get("features") or [])
        return Classified(None, str(cpu.get("vendor") or ""), flags_digest(raw), str(exc))


def images_for(
    arch: str | None, targets: Iterable[ChannelTarget], problem: str = "", override: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per channel: ``{"release", "image", "reason"}``; ``image`` None when no image fits (reason says why)."""
    out: dict[str, dict[str, Any]] = {}
    for t in targets:
        if arch is None:
            out[t.channel] = {"release": t.release, "image": None, "reason": problem or "CPU not classified"}
            continue
        choice = choose_image(arch, t.images, override)
        out[t.channel] = {"release": t.release, "image": choice.image, "reason": choice.reason}
    return out


class ImageCache:
    """``images_for`` memoised per arch: 10k nodes share a handful of micro-architectures."""

    def __init__(self, targets: Iterable[ChannelTarget]) -> None:
        self.targets = list(targets)
        self._memo: dict[str | None, dict[str, dict[str, Any]]] = {}

    def get(self, arch: str | None, problem: str = "") -> dict[str, dict[str, Any]]:
        if arch is None:
            return images_for(None, self.targets, problem)
        if arch not in self._memo:
            self._memo[arch] = images_for(arch, self.targets)
        return {ch: dict(v) for ch, v in self._memo[arch].items()}


def os_label(probe: Mapping[str, Any]) -> str:
    """``pretty_name`` of os-release, else ``id version_id``, plus nothing else (kernel is in the probe)."""
    o = probe.get("os") or {}
    return str(o.get("pretty_name") or " ".join(x for x in (o.get("id"), o.get("version_id")) if x))


def node_row(
    name: str,
    probe: Mapping[str, Any],
    classified: Classified,
    images: Mapping[str, Any],
    status: str,
    detail: str,
    seen: str,
) -> dict[str, Any]:
    """The ``nodes`` row of a node that answered its probe."""
    return {
        "name": name,
        "arch": classified.arch or UNKNOWN_ARCH,
        "vendor": classified.vendor,
        "cpus": int(probe.get("cpus") or 0),
        "memory": int(probe.get("memory") or 0),
        "os": os_label(probe),
        "flags_digest": classified.flags_digest,
        "channels": json.dumps(probe.get("channels") or {}, sort_keys=True),
        "images": json.dumps(dict(images), sort_keys=True),
        "status": status,
        "detail": detail,
        "last_seen": seen,
        "probe": json.dumps(dict(probe), sort_keys=True),
    }


# --------------------------------------------------------------------------- fingerprints


@dataclass(frozen=True)
class Mismatch:
    """A node whose module fingerprint differs from the majority of nodes running the same image."""

    node: str
    release: str
    image: str
    modules: tuple[str, ...]  # modules whose fingerprint differs (or is missing on one side)
    majority: int  # how many nodes share the majority fingerprint (0: there is no majority)
    group: int  # how many nodes run this image of this release

    @property
    def detail(self) -> str:
        what = ", ".join(self.modules[:8]) + (f" and {len(self.modules) - 8} more" if len(self.modules) > 8 else "")
        if self.majority == 0:
            base = f"no majority fingerprint among the {self.group} nodes running {self.image}"
        else:
            base = f"fingerprint differs from {self.majority} of {self.group} nodes running {self.image}"
        return base + (f" in: {what}" if what else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "release": self.release,
            "image": self.image,
            "modules": list(self.modules),
            "majority": self.majority,
            "group": self.group,
            "detail": self.detail,
        }


def _modules(fingerprint: Any) -> dict[str, str] | None:
    """A fingerprint as ``{module: what identifies it}``, or None when it has no per-module detail.

    Two shapes carry modules: ``core.node.smoke``'s ``{"modules": [[name, digest] | [name, uuid,
    digest], …], "count", "digest"}`` and a plain ``{module: digest}`` mapping.
    """
    if not isinstance(fingerprint, Mapping):
        return None
    entries = fingerprint.get("modules")
    if isinstance(entries, list):
        out: dict[str, str] = {}
        for entry in entries:
            if isinstance(entry, list) and entry:
                key = str(entry[0])
                value = canonical_json(entry[1:]).decode()
                out[key] = value if key not in out else out[key] + "|" + value
        return out
    return {str(k): v if isinstance(v, str) else canonical_json(v).decode() for k, v in fingerprint.items()}


def _differing(a: Any, b: Any) -> tuple[str, ...]:
    ma, mb = _modules(a), _modules(b)
    if ma is None or mb is None:
        return ()
    return tuple(sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k)))


def _key(fingerprint: Any) -> str:
    """What two equal fingerprints share: ``core.node.smoke``'s digest when given, else the canonical JSON."""
    if (
        isinstance(fingerprint, Mapping)
        and isinstance(fingerprint.get("digest"), str)
        and isinstance(fingerprint.get("modules"), list)
    ):
        return fingerprint["digest"]
    return canonical_json(fingerprint).decode()


def fingerprint_mismatches(smokes: Iterable[Mapping[str, Any]]) -> list[Mismatch]:
    """Compare smoke results of nodes that run the same release and image, by module fingerprint.

    Each item needs ``node``, ``release``, ``image``, ``fingerprint`` (``core.node.smoke``'s
    ``{"modules": [...], "count", "digest"}``, a ``{module: digest}`` mapping, or any JSON value
    compared as a whole); items without a fingerprint are left out.
    Within each (release, image) group the majority fingerprint is the one held by more nodes
    than any other; every node holding another is a mismatch, with the modules that differ from
    the majority. If the most common fingerprint is tied, there is no majority: each node not
    sharing the fingerprint of all others is a mismatch (modules compared with the most common
    fingerprint that sorts first, so the report is deterministic). Groups of one node, and
    groups where all agree, give nothing. Result sorted by node name.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for s in smokes:
        if s.get("fingerprint") in (None, "", {}) or not s.get("image"):
            continue
        groups.setdefault((str(s.get("release") or ""), str(s["image"])), []).append(s)
    out: list[Mismatch] = []
    for (release, image), items in groups.items():
        counts = Counter(_key(s["fingerprint"]) for s in items)
        if len(items) < 2 or len(counts) == 1:
            continue
        ranked = counts.most_common()
        top = ranked[0][1]
        tied = sorted(k for k, c in ranked if c == top)
        majority_key = tied[0]
        majority_fp = next(s["fingerprint"] for s in items if _key(s["fingerprint"]) == majority_key)
        has_majority = len(tied) == 1
        for s in items:
            if has_majority and _key(s["fingerprint"]) == majority_key:
                continue
            modules = _differing(s["fingerprint"], majority_fp) if _key(s["fingerprint"]) != majority_key else ()
            out.append(Mismatch(str(s["node"]), release, image, modules, top if has_majority else 0, len(items)))
    return sorted(out, key=lambda m: m.node)


# --------------------------------------------------------------------------- database


def upsert_nodes(state: State, rows: list[dict[str, Any]]) -> None:
    """Upsert node rows in one transaction. A row may carry only some columns (an unreachable
    node updates ``status``/``detail`` and keeps what was known about it)."""
    state.nodes.upsert(rows)


def record_smoke_runs(state: State, runs: list[dict[str, Any]]) -> None:
    """Insert ``smoke_runs`` rows (node, release, image, ok, wall_s, baseline_s, reduction,
    exit_code, fingerprint, time, detail) in one transaction."""
    state.smoke_runs.insert(runs)


def smoke_row(node: str, smoke: Mapping[str, Any], detail: str, when: str | None = None) -> dict[str, Any]:
    """A ``smoke_runs`` row from a node's ``node smoke --json`` document."""
    fp = smoke.get("fingerprint")

    def num(key: str) -> float | None:
        v = smoke.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    code = smoke.get("exit_code")
    return {
        "node": node,
        "release": smoke.get("release"),
        "image": smoke.get("image"),
        "ok": 1 if smoke.get("ok") is True else 0,
        "wall_s": num("wall_s"),
        "baseline_s": num("baseline_s"),
        "reduction": num("reduction"),
        "exit_code": code if isinstance(code, int) else None,
        "fingerprint": None if fp is None else (fp if isinstance(fp, str) else json.dumps(fp, sort_keys=True)),
        "time": when or utcnow_iso(),
        "detail": detail,
        "rejected": len(rej) if isinstance(rej := smoke.get("rejected_caches"), list) else None,
    }


def node_rows(state: State, arch: str | None = None) -> list[dict[str, Any]]:
    """Inventory rows sorted by name, ``channels``/``images`` and the Slurm lists decoded, each with
    its ``claimed_arch`` and ``arch_mismatch`` (`arch_findings`); ``probe`` left out (see ``node_probe``)."""
    rows = state.nodes.rows(arch)
    for row in rows:
        for c in _NODE_JSON_COLUMNS:
            row[c] = json.loads(row[c]) if row[c] else {}
        for c in _NODE_LIST_COLUMNS:
            row[c] = json.loads(row[c]) if row.get(c) else []
        row["claimed_arch"] = claimed_arches(row["slurm_features"])
        row["arch_mismatch"] = arch_findings(row.get("arch"), row["slurm_features"])
    return rows


# --------------------------------------------------------------------------- Slurm's view of the nodes


def claimed_arches(features: Iterable[str]) -> list[str]:
    """The node features that are archspec micro-architecture names: the architecture Slurm claims."""
    return [f for f in features if is_known_microarch(f)]


def arch_findings(measured: str | None, features: Iterable[str]) -> list[str]:
    """What is wrong between the architecture a node's Slurm features claim and the one its probe
    measured (nothing when either is unknown): one line per claim that does not hold.

    A generic level (``x86_64_v3``) holds when the measured CPU can run its code; a specific
    micro-architecture (``zen3``, ``haswell``) only when it is the measured one: a node whose
    feature says zen3 and whose CPU is zen2 (or haswell) gets jobs and images meant for another
    CPU (``--constraint=zen3`` builds and tests land there).
    """
    if not measured or measured == UNKNOWN_ARCH or not is_known_microarch(measured):
        return []
    out = []
    for claim in claimed_arches(features):
        if claim == measured:
            continue
        cannot = why_not(measured, claim)
        if cannot is not None:
            out.append(f"feature {claim}, but the CPU is {measured}, which cannot run {claim} code ({cannot})")
        elif TARGETS[claim].vendor != "generic":
            out.append(f"feature {claim}, but the CPU is {measured}")
    return out


def slurm_rows(nodes: Iterable[Any], seen: str) -> list[dict[str, Any]]:
    """``nodes`` rows (the Slurm columns only) from Slurm's node records (``core.fleet.slurm.SlurmNode``:
    name, state, partitions, features, reason, cpus, memory); upserting them keeps what fleet checks
    measured."""
    return [
        {
            "name": n.name,
            "slurm_state": n.state,
            "slurm_features": json.dumps(list(n.features)),
            "slurm_partitions": json.dumps(list(n.partitions)),
            "slurm_reason": n.reason,
            "slurm_cpus": n.cpus,
            "slurm_memory": n.memory,
            "slurm_seen": seen,
        }
        for n in nodes
    ]


def node_probe(state: State, name: str) -> dict[str, Any] | None:
    """The last probe document stored for a node, or None."""
    probe = state.nodes.probe(name)
    return json.loads(probe) if probe else None


# --------------------------------------------------------------------------- summary


@dataclass
class ArchGroup:
    """Nodes of one micro-architecture and the image each channel would give them."""

    arch: str
    count: int
    images: dict[str, str | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"arch": self.arch, "count": self.count, "images": dict(self.images)}


def arch_summary(rows: Iterable[Mapping[str, Any]], targets: Iterable[ChannelTarget]) -> dict[str, Any]:
    """Count per micro-architecture with the image each channel's current release picks for it,
    and every (node, channel) that no image fits, with the reason.

    Images are recomputed from ``targets`` (the channels as they are now), so a promote shows at
    once; nodes never classified (arch ``unknown`` or missing) count under ``unknown``.
    """
    rows = list(rows)
    cache = ImageCache(targets)
    counts: Counter[str] = Counter()
    no_fit: list[dict[str, Any]] = []
    for r in rows:
        arch = r.get("arch") or UNKNOWN_ARCH
        counts[arch] += 1
        if arch == UNKNOWN_ARCH:
            continue
        for ch, pick in live_images(arch, cache).items():
            if pick["image"] is None:
                no_fit.append({"node": r["name"], "arch": arch, "channel": ch, "reason": pick["reason"]})
    groups = []
    for arch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        imgs = (
            {ch: p["image"] for ch, p in live_images(arch, cache).items()}
            if arch != UNKNOWN_ARCH
            else {t.channel: None for t in cache.targets}
        )
        groups.append(ArchGroup(arch, n, imgs))
    mismatches = [
        {
            "node": r["name"],
            "arch": r.get("arch"),
            "claimed": claimed_arches(r.get("slurm_features") or []),
            "detail": d,
        }
        for r in rows
        for d in (r.get("arch_mismatch") or [])
    ]
    return {
        "arches": [g.to_json() for g in groups],
        "no_fit": no_fit,
        "arch_mismatches": mismatches,
        "problems": len(no_fit) + len(mismatches),
    }


def live_images(arch: str | None, cache: ImageCache) -> dict[str, dict[str, Any]]:
    """The images of ``arch`` under the current channels; an archspec-unknown arch fits nothing."""
    if not arch or arch == UNKNOWN_ARCH:
        return cache.get(None, "CPU not classified")
    try:
        return cache.get(arch)
    except BadInput as exc:
        return cache.get(None, str(exc))
