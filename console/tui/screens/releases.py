"""Releases: the catalogue, paged from SQLite; filter, open, mark two and compare, promote."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, Static

import console.tui.actions as actions
import core.site.channels as channel_ops
from console.render import ago, short, size
from console.tui.lookups import channels_by_release
from console.tui.messages import CatalogueSynced
from console.tui.promote import start_promote
from console.tui.screens.base import PagedView
from console.tui.widgets.cells import cell, line
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from console.tui.widgets.paged_table import PagedTable
from core.site.catalogue import sync_catalogue

# At 80 columns: the id, name, label, the channels carrying it and its signature, whole; when
# wider, its age and size, then its images. Enter opens the release (its detail).
COLUMNS = [
    Col("ID", 14, priority=0, max=14),
    Col("NAME", 8, priority=1, flex=2),
    Col("LABEL", 7, priority=2, flex=1),
    Col("CREATED", 8, priority=3),
    Col("IMAGES", 8, priority=5, flex=1),
    Col("SIZE", 6, priority=4),
    Col("CHANNELS", 8, priority=1, flex=2),
    Col("SIGNATURE", 8, priority=1),
]


def signature_state(site: Any, signed_by_json: str) -> Text:
    """``✓ signed`` when a trusted, unrevoked release key signed it; otherwise why not."""
    try:
        keys = json.loads(signed_by_json or "[]")
    except ValueError:
        keys = []
    trust = site.trust
    good = [k for k in keys if k in trust.keys and not trust.keys[k].revoked and "release" in trust.keys[k].roles]
    if len(good) >= trust.thresholds.get("release", 1):
        return Text("✓ signed", style="green")
    if any(k in trust.keys and trust.keys[k].revoked for k in keys):
        return Text("✗ revoked key", style="red")
    return Text("✗ untrusted", style="red")


class ReleasesScreen(PagedView):
    SCREEN_ID = "releases"
    BINDINGS = actions.bindings_for("releases")

    def __init__(self) -> None:
        super().__init__(id="releases")
        self.marked: list[str] = []
        self.by_release: dict[str, list[str]] = {}

    def compose(self) -> ComposeResult:
        self.by_release = channels_by_release(self.site)  # before the table's first page
        yield SiteHeader("Releases")
        yield Input(
            placeholder="filter: name, label, id prefix, image, channel   (esc clears)",
            id="filter",
            classes="filter hidden",
        )
        yield PagedTable(COLUMNS, self.fetch, self.count, id="releases-table")
        yield Static("", id="status", classes="status")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self.table.total = self.count(self.site)
        self._status()
        self.action_refresh()

    # -- data -------------------------------------------------------------------------------
    def fetch(self, site: Any, offset: int, limit: int) -> list[tuple[str, list]]:
        now = site.now()
        out = []
        for r in site.state.releases.rows(limit=limit, offset=offset, search=self.search, also=self.on_channels()):
            mark = "● " if r["id"] in self.marked else "  "
            images = cell(",".join(json.loads(r["images"] or "[]")))
            chans = cell(", ".join(self.by_release.get(r["id"], [])), "bold magenta")
            out.append(
                (
                    r["id"],
                    [
                        mark + short(r["id"]),
                        cell(r["name"]),
                        cell(r["label"]),
                        ago(r["created"], now),
                        images,
                        size(r["bytes"]),
                        chans,
                        signature_state(site, r["signed_by"]),
                    ],
                )
            )
        return out

    def normalize(self, text: str) -> str:
        return text.strip().lower().removeprefix("sha256:")

    def count(self, site: Any) -> int:
        return site.state.releases.count(search=self.search, also=self.on_channels())

    def on_channels(self) -> list[str]:
        """The releases a channel matching the filter carries (the filter also matches channels)."""
        s = self.search
        return [rid for rid, chans in self.by_release.items() if s and any(s in c.lower() for c in chans)]

    def filtered(self) -> None:
        self._status()

    def _status(self) -> None:
        n = self.table.total if self.table.total is not None else self.count(self.site)
        marked = ", ".join(short(m) for m in self.marked) or "none (space marks, c compares two)"
        filt = f"   filter {self.search!r}" if self.search else ""
        self.query_one("#status", Static).update(line(f" {n} release(s){filt}   marked: {marked}"))

    @staticmethod
    def _sync(site: Any) -> tuple[list[str], dict]:
        problems = sync_catalogue(site)
        try:
            status = channel_ops.channel_status(site)  # verifies pointers and raises the marks
        except Exception:  # noqa: BLE001 - the table still shows the catalogue
            status = []
        return problems, channels_by_release(site, status)

    @on(CatalogueSynced)
    def _synced(self, event: CatalogueSynced) -> None:
        problems, by_release = event.problems, event.by_release
        for p in problems:
            self.notify(p, title="release left out", severity="warning", timeout=8)
        total = self.count(self.site)
        if by_release != self.by_release or total != self.table.total:
            self.by_release = by_release
            self.table.reload(keep_cursor=True)
        self.table.total = total
        self._status()

    # -- actions ----------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self.work(self._sync, lambda result: CatalogueSynced(*result), name="sync-catalogue")

    def headless_context(self) -> dict[str, object]:
        rid, pair = self.table.current_key, self.compare_pair()
        a, b = (short(pair[0]), short(pair[1])) if pair else (None, None)
        return {"release": short(rid) if rid else None, "a": a, "b": b}

    def on_data_table_row_selected(self, event: PagedTable.RowSelected) -> None:
        """enter opens the release: that is a release row's detail (not the generic one)."""
        event.prevent_default()
        self.action_open()

    def action_open(self) -> None:
        rid = self.table.current_key
        if rid:
            from console.tui.screens.release import ReleaseScreen

            self.log_command("open", release=short(rid))
            self.app.push_screen(ReleaseScreen(rid))

    def action_mark(self) -> None:
        rid = self.table.current_key
        if not rid:
            return
        if rid in self.marked:
            self.marked.remove(rid)
        else:
            self.marked = (self.marked + [rid])[-2:]
        self.table.reload(keep_cursor=True)
        self._status()

    def compare_pair(self) -> tuple[str, str] | None:
        picks = list(self.marked)
        cur = self.table.current_key
        if len(picks) == 1 and cur and cur not in picks:
            picks.append(cur)
        if len(picks) != 2:
            return None
        return tuple(self.oldest_first(picks))  # type: ignore[return-value]

    def oldest_first(self, ids: list[str]) -> list[str]:
        """``ids`` ordered by creation time, oldest first (a comparison reads old -> new)."""
        created = self.site.state.releases.created(ids)
        return sorted(ids, key=lambda i: (created.get(i, ""), i))

    def action_compare(self) -> None:
        pair = self.compare_pair()
        if pair is None:
            self.notify(
                "mark two releases with space (or one, and put the cursor on the other), then press c",
                severity="warning",
            )
            return
        self.open_compare(*pair)

    def open_compare(self, a: str, b: str) -> None:
        from console.tui.screens.compare import CompareScreen

        self.log_command("compare", a=short(a), b=short(b))
        self.app.push_screen(CompareScreen(a, b))

    def action_promote(self) -> None:
        rid = self.table.current_key
        if rid:
            start_promote(self, rid)
