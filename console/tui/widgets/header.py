"""The header every screen shows: site, store, signing key, read-only badge, and the view title."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.tui.widgets.cells import cell


class SiteHeader(Static):
    """One line: ``depot-console · site demo · store store · key 44d34ce655ca · READ-ONLY · Releases``."""

    def __init__(self, title: str) -> None:
        super().__init__(id="site-header")
        self.title = title

    def on_mount(self) -> None:
        app = self.app
        info = app.site_info  # type: ignore[attr-defined]
        text = Text()
        text.append(" depot-console ", style="bold reverse")
        text.append(cell(f"  {self.title}", "bold"))
        text.append("   site ", style="dim")
        text.append(cell(info["name"]))
        text.append("   store ", style="dim")
        text.append(cell(info["store"]))
        text.append("   key ", style="dim")
        text.append(cell(info["key"] or "(none)"))
        if app.read_only:  # type: ignore[attr-defined]
            text.append("   READ-ONLY ", style="bold black on yellow")
        self.update(text)
