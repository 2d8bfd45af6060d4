"""``releases``: the local cache of the store's release catalogue (the store stays the truth)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from core.site.db.base import Table, Where


def release_filter(name: str | None = None, search: str = "", also: Iterable[str] = ()) -> Where:
    """Releases named ``name`` and/or matching ``search`` in name, label, images or as an id prefix
    (or among the ids ``also``: those the caller matched otherwise, e.g. by their channels)."""
    where = Where()
    if name:
        where = where.and_("name = ?", name)
    if search:
        extra = sorted(set(also))
        where = where.and_(
            "(name like ? or label like ? or id like ? or images like ?" + "".join(" or id = ?" for _ in extra) + ")",
            f"%{search}%",
            f"%{search}%",
            f"sha256:{search}%",
            f"%{search}%",
            *extra,
        )
    return where


class Releases(Table):
    """One row per release the console has verified: id, name, label, created, parent, images (JSON
    list), bytes, files, packages, signed_by (JSON list), seen_at."""

    def known_ids(self) -> set[str]:
        """Every release id in the cache."""
        return {r[0] for r in self.db.execute("select id from releases")}

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace catalogue rows (keyed by id)."""
        if rows:
            self.db["releases"].upsert_all(rows, pk="id")

    def delete(self, ids: Iterable[str]) -> None:
        """Drop releases from the cache (gone from the store), in one transaction."""
        ids = list(ids)
        if ids:
            with self._transaction():
                self.db.conn.executemany("delete from releases where id = ?", [(i,) for i in ids])

    def rows(
        self,
        name: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        search: str = "",
        also: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """Catalogue rows matching `release_filter`, newest first (then by id); a page with ``limit``."""
        where = release_filter(name, search, also)
        lim = f"limit {int(limit)} offset {int(offset)}" if limit is not None else ""
        return self._dicts(f"select * from releases {where.sql} order by created desc, id {lim}", where.params)

    def count(self, name: str | None = None, search: str = "", also: Iterable[str] = ()) -> int:
        """How many rows `rows` would return without a limit."""
        where = release_filter(name, search, also)
        return int(self._scalar(f"select count(*) from releases {where.sql}", where.params))

    def ids_with_prefix(self, hexprefix: str) -> list[str]:
        """Ids starting with ``sha256:<hexprefix>``, sorted."""
        like = "sha256:" + hexprefix + "%"
        return [r[0] for r in self.db.execute("select id from releases where id like ? order by id", [like])]

    def images(self, release: str) -> tuple[str, ...] | None:
        """The image keys of a cached release (None when it is not cached)."""
        value = self._scalar("select images from releases where id = ?", [release])
        return None if value is None else tuple(json.loads(value or "[]"))

    def labels(self) -> dict[str, tuple[str, str]]:
        """release id -> (name, label) for every cached release."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute("select id, name, label from releases")}

    def created(self, ids: Iterable[str]) -> dict[str, str]:
        """release id -> creation time for those of ``ids`` that are cached."""
        ids = list(ids)
        if not ids:
            return {}
        sql = f"select id, created from releases where id in ({','.join('?' * len(ids))})"
        return {r[0]: r[1] for r in self.db.execute(sql, ids)}
