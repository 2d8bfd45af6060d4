"""Cell helpers for fixed-width tables: long values end in an ellipsis instead of scrolling sideways."""

from __future__ import annotations

from rich.text import Text


def fit(value: str | Text | None, width: int) -> str | Text:
    """``value`` cut to ``width`` cells, the last one an ellipsis when something was cut."""
    if value is None:
        return "-"
    if isinstance(value, Text):
        if value.cell_len <= width:
            return value
        cut = value.copy()
        cut.truncate(width, overflow="ellipsis")
        return cut
    return value if len(value) <= width else value[: max(0, width - 1)] + "…"
