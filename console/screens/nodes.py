"""Nodes: the inventory (paged from SQLite), nodes per micro-architecture as a bar chart with the
image each channel gives them, the nodes no image fits, and fleet checks with live progress."""
from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static

from core.errors import DepotError
from core.inventory import ChannelTarget, ImageCache, live_images
from core.nodeset import expand, fold

from .. import actions
from ..output import ago, short
from ..widgets.barchart import bar_chart
from ..widgets.header import SiteHeader
from ..widgets.paged_table import PagedTable
from .base import BaseScreen
from .modals import FleetCheckModal, FleetRequest
from .releases import current_channels

COLUMNS = [("NODE", 8), ("ARCH", 14), ("IMAGE:PRODUCTION", 16), ("IMAGE:TESTING", 13), ("RELEASE", 12),
           ("LAST SMOKE", 15), ("STATUS", 11), ("LAST SEEN", 13)]

NODE_QUERY = """
select n.name, n.arch, n.images, n.channels, n.status, n.last_seen,
       s.ok, s.wall_s, s.reduction
from nodes n left join smoke_runs s on s.id = (select max(id) from smoke_runs where node = n.name)
{where} order by n.name limit ? offset ?"""


def channel_targets_from_db(site: Any) -> list[ChannelTarget]:
    """Each channel's current release and images, from the database (no store read)."""
    out = []
    for ch, (rid, _) in sorted(current_channels(site).items()):
        row = site.state.db.execute("select images from releases where id = ?", [rid]).fetchone()
        if row:
            out.append(ChannelTarget(ch, rid, tuple(json.loads(row[0] or "[]"))))
    return out


class NodesScreen(BaseScreen):
    SCREEN_ID = "nodes"
    BINDINGS = actions.bindings_for("nodes")

    def __init__(self) -> None:
        super().__init__(id="nodes")
        self.search = ""
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield SiteHeader("Nodes")
        with Horizontal(id="nodes-top"):
            yield Static("", id="arch-chart", classes="panel")
            yield Static("", id="no-fit", classes="panel")
        yield Input(placeholder="filter: node, arch, status   (esc clears)", id="filter", classes="filter hidden")
        yield PagedTable(COLUMNS, self.fetch, id="nodes-table")
        yield Static("", id="status", classes="status")
        yield Footer()

    @property
    def table(self) -> PagedTable:
        return self.query_one(PagedTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.query_one("#arch-chart", Static).border_title = "nodes per micro-architecture -> image per channel"
        self.query_one("#no-fit", Static).border_title = "no image fits"
        self._summary()

    def _where(self) -> tuple[str, list]:
        if not self.search:
            return "", []
        s = f"%{self.search}%"
        return "where n.name like ? or n.arch like ? or n.status like ?", [s, s, s]

    def fetch(self, offset: int, limit: int) -> list[tuple[str, list]]:
        where, params = self._where()
        now = self.site.now()
        out = []
        for name, arch, images, chans, status, seen, ok, wall, red in self.site.state.db.execute(
                NODE_QUERY.format(where=where), [*params, limit, offset]):
            imgs = json.loads(images or "{}")
            have = json.loads(chans or "{}")

            def img(ch: str) -> Text:
                pick = imgs.get(ch)
                if not pick:
                    return Text("-", style="dim")
                return Text(pick.get("image") or "none fits", style="" if pick.get("image") else "bold red")

            rel = (have.get("production") or {}).get("release")
            smoke = Text("-", style="dim")
            if ok is not None:
                smoke = Text(f"ok {wall:.1f}s -{red:.0%}" if ok and wall is not None and red is not None
                             else ("ok" if ok else f"FAIL {wall or 0:.0f}s"), style="green" if ok else "bold red")
            mark = "●" if name in self.marked else " "
            out.append((name, [mark + name, arch, img("production"), img("testing"), short(rel),
                               smoke, Text(status, style="green" if status == "ok" else "red"), ago(seen, now)]))
        return out

    def _summary(self) -> None:
        db = self.site.state.db
        where, params = self._where()
        total = db.execute(f"select count(*) from nodes n {where}", params).fetchone()[0]
        counts = db.execute("select arch, count(*) from nodes group by arch order by count(*) desc, arch").fetchall()
        cache = ImageCache(channel_targets_from_db(self.site))
        rows, no_fit = [], []
        for arch, n in counts:
            picks = live_images(arch, cache)
            note = ", ".join(f"{ch} {p['image'] or 'no image'}" for ch, p in sorted(picks.items()))
            rows.append((arch, n, note))
            if picks and all(p["image"] is None for p in picks.values()):
                names = [r[0] for r in db.execute("select name from nodes where arch = ? order by name", [arch])]
                reason = next(iter(picks.values()))["reason"]
                no_fit.append(f"{fold(names)}: {n} {arch} node(s)\n  {reason.split(';')[0][:90]}")
        self.query_one("#arch-chart", Static).update(bar_chart(rows, width=14))
        self.query_one("#no-fit", Static).update("\n".join(no_fit) or "every node has an image")
        marked = f"   marked {fold(sorted(self.marked))}" if self.marked else ""
        self.query_one("#status", Static).update(
            f" {total} node(s)" + (f" matching {self.search!r}" if self.search else "") + marked +
            "   (space marks nodes, f checks the marked ones or a node set)")

    def action_refresh(self) -> None:
        self.table.reload(keep_cursor=True)
        self._summary()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self.table.reload()
        self._summary()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if self.search or box.has_focus:
            box.value = ""
            box.add_class("hidden")
            self.table.focus()
            return
        super().action_back()

    def action_mark(self) -> None:
        key = self.table.current_key
        if key:
            self.marked.symmetric_difference_update({key})
            self.table.reload(keep_cursor=True)
            self._summary()

    def action_fleet_check(self) -> None:
        default = fold(sorted(self.marked)) if self.marked else (self.table.current_key or "")
        chans = sorted(current_channels(self.site))

        def start(req: FleetRequest | None) -> None:
            if req is None:
                return
            try:
                nodes = expand(req.nodeset)
            except DepotError as exc:
                self.notify(str(exc), title="bad node set", severity="error")
                return
            from .fleetcheck import FleetCheckScreen

            self.log_command("fleet_check", nodeset=req.nodeset + (f" --smoke --channel {req.channel}"
                                                                   if req.smoke else ""))
            self.app.push_screen(FleetCheckScreen(req.nodeset, nodes, req.smoke, req.channel))

        self.app.push_screen(FleetCheckModal(default, chans), start)
