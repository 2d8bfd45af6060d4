"""The header every screen shows: site, store, signing key, read-only badge, and the view title."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.tui.widgets.cells import cell

SEP = "· "  # between items; the blank before it ends the previous segment (see ``header_text``)


def header_text(title: str, name: str, store: str, key: str, read_only: bool) -> Text:
    """``depot-console  Releases · site demo · store store · key 44d34ce655ca · READ-ONLY``.

    Items are parted by a visible ``·``, and no styled run of the line *starts* with a blank:
    SVG renderers such as ``rsvg-convert`` drop a text run's leading blanks (the run keeps its
    position, its first glyph moves left), which read ``site demostore storekey`` when the gaps
    led each dim label. Every blank here ends a run (dropped trailing blanks change nothing) or
    is a run of blanks alone.
    """
    text = Text(end="")
    text.append(" ", style="reverse")
    text.append("depot-console", style="bold reverse")
    text.append(" ", style="reverse")
    text.append("  ")
    text.append_text(cell(title, "bold"))
    text.append("  ")
    if read_only:  # next to the title: a long store URL must not push it off an 80-column line
        text.append(" ", style="black on yellow")  # not bold: a run apart from the word
        text.append("READ-ONLY", style="bold black on yellow")
        text.append(" ", style="black on yellow")
        text.append(" ")
    for label, value in (("site", name), ("store", store), ("key", key or "(none)")):
        text.append(f"{SEP}{label} ", style="dim")
        text.append_text(cell(value))
        text.append(" ")
    text.no_wrap, text.overflow = True, "ellipsis"  # one line: cut at the edge, never wrapped away
    return text


class SiteHeader(Static):
    """One line: ``depot-console  Releases  READ-ONLY · site demo · store store · key 44d34ce655ca``."""

    def __init__(self, title: str) -> None:
        super().__init__(id="site-header")
        self.title = title

    def on_mount(self) -> None:
        app = self.app
        info = app.site_info  # type: ignore[attr-defined]
        self.update(header_text(self.title, info["name"], info["store"], info["key"], app.read_only))  # type: ignore[attr-defined]
