"""Every use of a Textual private (an attribute or method starting with ``_``) in one place.

The console leans on a few internals, each for a measured reason (start-up, key-press latency,
memory the garbage collector walks). Textual may rename or reshape any of them in any release
without notice, so nothing else in ``console/`` touches them: it calls the functions here, which
degrade to "do nothing" when an internal has gone, and ``tests/tui/test_textual_compat.py`` fails
when the pinned Textual no longer has one with the shape assumed below. ``OVERRIDDEN_HOOKS``
names the public-but-undocumented Textual methods the console overrides, for the same test.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable, Footer
from textual.widgets.data_table import Column

#: (class, method): Textual methods the console's subclasses override; if one is renamed, the
#: override silently stops being called, so the compat test checks they still exist.
OVERRIDDEN_HOOKS: tuple[tuple[type, str], ...] = (
    (App, "on_event"),
    (Footer, "bindings_changed"),
    (DataTable, "notify_style_update"),
    (DataTable, "watch_cursor_coordinate"),
    (DataTable, "watch_scroll_y"),
    (Column, "get_render_width"),  # a hidden column of an InertTable takes no width at all
)

#: DataTable's render caches (LRU caches with a ``maxsize``), by attribute name.
DATA_TABLE_CACHES = ("_cell_render_cache", "_row_render_cache", "_line_cache")


def screen_stacks(app: App) -> Iterator[list[Screen]]:
    """The screen stack of every mode opened so far (``App._screen_stacks``)."""
    stacks: Mapping[str, list[Screen]] = getattr(app, "_screen_stacks", {})
    yield from stacks.values()


def skip_first_restyle(screen: Screen) -> None:
    """Mark a new screen as styled with the app's current stylesheet generation.

    Textual re-reads and re-applies the whole stylesheet to every screen (twice) the first time a
    screen is shown, because a new screen's CSS generation (``_css_update_count``) starts at -1;
    its widgets are styled from the current stylesheet when they mount, so that costs a first view
    switch ~50 ms for nothing. A theme change still bumps the app's generation and restyles.
    """
    try:
        generation = screen.app._css_update_count
    except (RuntimeError, AttributeError):  # no running app (NoActiveAppError), other Textual
        return
    if hasattr(screen, "_css_update_count"):
        screen._css_update_count = generation


def mark_footer_ready(footer: Footer) -> None:
    """Tell a ``Footer`` that kept its key widgets that its bindings are shown (``_bindings_ready``),
    as its own ``bindings_changed`` would after a rebuild."""
    footer._bindings_ready = True


def shrink_render_caches(table: DataTable, sizes: Mapping[str, int]) -> None:
    """Set the ``maxsize`` of DataTable's render caches (``DATA_TABLE_CACHES``) that exist."""
    for name, size in sizes.items():
        cache = getattr(table, name, None)
        if cache is not None:
            cache.maxsize = size


def clear_render_caches(table: DataTable) -> None:
    """Drop every rendered row, cell and line of a DataTable (``DataTable._clear_caches``)."""
    clear = getattr(table, "_clear_caches", None)
    if clear is not None:
        clear()


def notification_messages(app: App) -> list[str]:
    """The text of every notification the app currently shows (``App._notifications``; tests)."""
    notes: Iterable[Any] = getattr(app, "_notifications", ())
    return [n.message for n in notes]
