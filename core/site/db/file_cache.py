"""``file_cache``: what publish learnt about a source file (size, mtime, inode -> digest)."""

from __future__ import annotations

from collections.abc import Iterable

from core.site.db.base import Table


class FileCache(Table):
    """One row per hashed source path, so an unchanged file is not hashed again."""

    def under(self, prefix: str) -> dict[str, tuple[int, int, int, str]]:
        """path -> (size, mtime_ns, inode, digest) for every cached path under ``prefix``."""
        rows = self.db.execute(
            "select path, size, mtime_ns, inode, digest from file_cache where path >= ? and path < ?",
            [prefix, prefix + "\U0010ffff"],
        )
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def store(self, rows: Iterable[tuple[str, int, int, int, str]]) -> None:
        """Insert or replace (path, size, mtime_ns, inode, digest) rows in one transaction."""
        with self._transaction():
            self.db.conn.executemany(
                "insert or replace into file_cache(path, size, mtime_ns, inode, digest) values (?,?,?,?,?)", rows
            )
