"""Where ``State`` used to live: the database is ``core.site.db`` now (the only place SQL runs).

Kept so ``from core.site.state import State`` keeps working; new code imports ``core.site.db``.
"""

from __future__ import annotations

from core.site.db import MIGRATIONS, State, utcnow_iso

__all__ = ["MIGRATIONS", "State", "utcnow_iso"]
