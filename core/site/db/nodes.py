"""``nodes`` (the inventory, one row per node) and ``smoke_runs`` (one row per smoke result)."""

from __future__ import annotations

from typing import Any

from core.site.db.base import Table, Where, like_any

#: What `Nodes.rows` returns: every column but the (large) probe document.
NODE_COLUMNS = (
    "name",
    "arch",
    "vendor",
    "cpus",
    "memory",
    "os",
    "flags_digest",
    "channels",
    "images",
    "status",
    "detail",
    "last_seen",
    "slurm_state",
    "slurm_features",
    "slurm_partitions",
    "slurm_reason",
    "slurm_cpus",
    "slurm_memory",
    "slurm_seen",
)

SMOKE_COLUMNS = (
    "node",
    "release",
    "image",
    "ok",
    "wall_s",
    "baseline_s",
    "reduction",
    "exit_code",
    "fingerprint",
    "time",
    "detail",
    "rejected",
)

_PAGE = """
select n.name, n.arch, n.images, n.channels, n.status, n.last_seen,
       s.ok, s.wall_s, s.reduction, n.slurm_state, n.slurm_features
from nodes n left join smoke_runs s on s.id = (select max(id) from smoke_runs where node = n.name)
{where} order by n.name limit ? offset ?"""


def node_filter(search: str = "") -> Where:
    """Nodes whose name, arch or status contains ``search`` (columns of the ``n`` alias)."""
    if not search:
        return Where()
    clause, params = like_any(("n.name", "n.arch", "n.status"), search)
    return Where((clause,), params)


class Nodes(Table):
    """Rows: name, arch, vendor, cpus, memory, os, flags_digest, channels (JSON), images (JSON),
    status, detail, last_seen, probe (JSON); what Slurm says (``nodes --refresh-from slurm``):
    slurm_state, slurm_features (JSON list), slurm_partitions (JSON list), slurm_reason, slurm_cpus,
    slurm_memory (bytes), slurm_seen."""

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Upsert node rows in one transaction. A row may carry only some columns (an unreachable
        node updates ``status``/``detail`` and keeps what was known about it)."""
        if not rows:
            return
        with self._transaction("IMMEDIATE"):
            for cols in sorted({tuple(sorted(r)) for r in rows}):
                batch = [r for r in rows if tuple(sorted(r)) == cols]
                assign = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "name")
                sql = (
                    f"insert into nodes ({', '.join(cols)}) values ({', '.join('?' for _ in cols)}) "
                    f"on conflict(name) do update set {assign}"
                )
                self.db.conn.executemany(sql, [tuple(r[c] for c in cols) for r in batch])

    def rows(self, arch: str | None = None) -> list[dict[str, Any]]:
        """`NODE_COLUMNS` of every node (of ``arch`` only, if given), sorted by name, JSON not decoded."""
        cols = ", ".join(NODE_COLUMNS)
        if arch:
            cur = self.db.execute(f"select {cols} from nodes where arch = ? order by name", [arch])
        else:
            cur = self.db.execute(f"select {cols} from nodes order by name")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, values)) for values in cur.fetchall()]

    def probe(self, name: str) -> str | None:
        """The stored probe document (JSON text) of a node, or None."""
        return self._scalar("select probe from nodes where name = ?", [name])

    def count(self, search: str = "") -> int:
        """How many nodes match `node_filter`."""
        where = node_filter(search)
        return int(self._scalar(f"select count(*) from nodes n {where.sql}", where.params))

    def page(self, offset: int, limit: int, search: str = "") -> list[tuple[Any, ...]]:
        """(name, arch, images, channels, status, last_seen, ok, wall_s, reduction, slurm_state,
        slurm_features) of the nodes matching `node_filter`, by name; ok, wall_s and reduction from
        each node's latest smoke run, the last two as Slurm reported them (NULL before any
        ``nodes --refresh-from slurm``)."""
        where = node_filter(search)
        return self.db.execute(_PAGE.format(where=where.sql), [*where.params, limit, offset]).fetchall()

    def has_slurm(self) -> bool:
        """Whether Slurm has reported on any node (``nodes --refresh-from slurm``)."""
        return self._scalar("select exists(select 1 from nodes where slurm_state is not null)") == 1

    def arch_counts(self) -> list[tuple[str, int]]:
        """(arch, number of nodes), most common first, then by arch."""
        return self.db.execute("select arch, count(*) from nodes group by arch order by count(*) desc, arch").fetchall()

    def names(self, arch: str) -> list[str]:
        """Names of the nodes of one arch, sorted."""
        return [r[0] for r in self.db.execute("select name from nodes where arch = ? order by name", [arch])]


class SmokeRuns(Table):
    """Rows: id, node, release, image, ok, wall_s, baseline_s, reduction, exit_code, fingerprint
    (JSON or text), time, detail, rejected (cache files the runtime rejected; NULL before migration 4)."""

    def latest_for_release(self, release: str, nodes: list[str] | None = None) -> list[dict[str, Any]]:
        """Each node's latest smoke run of ``release`` (of ``nodes`` only, if given), with the node's
        inventory ``arch`` (NULL for a node not in the inventory), by node name."""
        sql = (
            "select s.node, n.arch, s.release, s.image, s.ok, s.wall_s, s.baseline_s, s.fingerprint, "
            "s.rejected, s.detail, s.time from smoke_runs s left join nodes n on n.name = s.node "
            "where s.id in (select max(id) from smoke_runs where release = ? group by node)"
        )
        rows = self._dicts(sql + " order by s.node", [release])
        if nodes is not None:
            wanted = set(nodes)
            rows = [r for r in rows if r["node"] in wanted]
        return rows

    def insert(self, runs: list[dict[str, Any]]) -> None:
        """Insert rows (keys of `SMOKE_COLUMNS`, missing ones NULL) in one transaction."""
        if not runs:
            return
        with self._transaction("IMMEDIATE"):
            self.db.conn.executemany(
                f"insert into smoke_runs ({', '.join(SMOKE_COLUMNS)}) values ({', '.join('?' for _ in SMOKE_COLUMNS)})",
                [tuple(r.get(c) for c in SMOKE_COLUMNS) for r in runs],
            )
