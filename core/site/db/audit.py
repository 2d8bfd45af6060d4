"""``audit``: who did what, when, with what outcome (one row per operation, never updated)."""

from __future__ import annotations

import json
from typing import Any

from core.site.db.base import Table, Where, like_any, utcnow_iso

_SEARCHED = ("actor", "verb", "target", "outcome")


def audit_filter(search: str = "") -> Where:
    """Rows whose actor, verb, target or outcome contains ``search``."""
    if not search:
        return Where()
    clause, params = like_any(_SEARCHED, search)
    return Where((clause,), params)


class AuditLog(Table):
    """Rows: id, time, actor, verb, target, outcome, detail (JSON or '')."""

    def insert(
        self, actor: str, verb: str, target: str, outcome: str, detail: Any = None, time: str | None = None
    ) -> None:
        """Append one row; ``detail`` is stored as JSON, ``time`` defaults to now."""
        self.db["audit"].insert(
            {
                "time": time or utcnow_iso(),
                "actor": actor,
                "verb": verb,
                "target": target,
                "outcome": outcome,
                "detail": json.dumps(detail) if detail is not None else "",
            }
        )

    def rows(self, limit: int = 200, search: str = "") -> list[dict[str, Any]]:
        """Whole rows matching `audit_filter`, newest id first."""
        where = audit_filter(search)
        return self._dicts(f"select * from audit {where.sql} order by id desc limit ?", [*where.params, limit])

    def matching(self, since: str | None = None, verb: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Whole rows (``detail`` parsed) at or after ``since`` (a console timestamp) whose verb is
        ``verb`` or one of its sub-verbs (``keys`` matches ``keys revoke``), newest first."""
        clauses, params = [], []
        if since:
            clauses.append("time >= ?")
            params.append(since)
        if verb:
            clauses.append("(verb = ? or verb like ? escape '\\')")
            params += [verb, verb.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " %"]
        where = f"where {' and '.join(clauses)}" if clauses else ""
        rows = self._dicts(f"select * from audit {where} order by time desc, id desc limit ?", [*params, limit])
        for r in rows:
            try:
                r["detail"] = json.loads(r["detail"]) if r["detail"] else None
            except ValueError:
                pass  # a detail written by hand: shown as it is
        return rows

    def page(self, offset: int, limit: int, search: str = "") -> list[tuple[int, str, str, str, str, str]]:
        """(id, time, actor, verb, target, outcome) matching `audit_filter`, newest time first."""
        where = audit_filter(search)
        return self.db.execute(
            f"select id, time, actor, verb, target, outcome from audit {where.sql} order by time desc, id desc "
            "limit ? offset ?",
            [*where.params, limit, offset],
        ).fetchall()

    def count(self, search: str = "") -> int:
        """How many rows match `audit_filter`."""
        where = audit_filter(search)
        return int(self._scalar(f"select count(*) from audit {where.sql}", where.params))

    def rewrite(self, verb: str, **values: Any) -> None:
        """Set ``values`` on every row of ``verb`` (the demo back-dates its ``init`` row; nothing else
        rewrites the audit)."""
        sets = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"update audit set {sets} where verb = ?", [*values.values(), verb])
