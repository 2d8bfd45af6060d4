"""What a hydrate reports: progress hooks, the result document, a failure's one line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import DepotError
from core.node.root import NodeRoot


class HydrateProgress:
    """Progress hooks (no-ops here; the CLI prints them on stderr)."""

    def phase(self, text: str) -> None:
        """A step started (``trees``, ``objects 120 (45 MB)``, ``materialize``…)."""

    def start_objects(self, count: int, nbytes: int) -> None:
        """The number and total size of file objects about to be fetched."""

    def object_done(self, digest: str, nbytes: int) -> None:
        """One file object fetched and verified (called from worker threads, serialized)."""


@dataclass
class HydrateResult:
    """What a hydrate did; ``to_json`` is the ``--json`` summary."""

    channel: str
    release: str
    image: str
    cpu: str
    reason: str
    version: int | None
    path: str
    fetched_objects: int = 0
    fetched_bytes: int = 0
    fetched_trees: int = 0
    tree_bytes: int = 0
    transferred_bytes: int | None = None
    reused_objects: int = 0
    reused_bytes: int = 0
    files: int = 0
    bytes: int = 0
    materialized: bool = False
    switched: bool = False
    previous: str | None = None
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Requests and body bytes per route (``origin``, ``proxy``: answered by a cache, ``mirror``),
    #: for an HTTP store (``route_stats``); {} otherwise.
    routes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Mirrors whose channel pointer lost to another's newer valid one (older, invalid, absent,
    #: unreachable): ``{"url", "reason"}`` each (``verify.Verified.stale_mirrors``).
    stale_mirrors: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def route_stats(store: object) -> dict[str, dict[str, int]]:
    """A copy of an HTTP store's per-route counters ({} for a local store)."""
    stats = getattr(store, "route_stats", None)
    return {k: dict(v) for k, v in stats.items()} if isinstance(stats, dict) else {}


def describe_failure(exc: DepotError, node: NodeRoot, channel: str) -> str:
    """One line for a failed hydrate: what failed and what ``current`` still points at."""
    try:
        cur = node.current(channel)
    except DepotError:
        cur = None
    kept = f"current/{channel} unchanged ({cur.release[7:19]} {cur.arch})" if cur else f"current/{channel} not created"
    return f"hydrate failed: {exc}; {kept}"
