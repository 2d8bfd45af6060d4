"""Nodes: the inventory (paged from SQLite), nodes per micro-architecture as a bar chart with the
image each channel gives them, the nodes no image fits, and fleet checks with live progress.

Once Slurm has reported on the nodes (``console nodes --refresh-from slurm``) the table shows each
node's Slurm state and features, and a feature that claims another CPU than the one the probe
measured (``core.site.inventory.arch_findings``) is flagged: ``!`` in ARCH, the finding in the panel."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Static

import console.tui.actions as actions
from console.render import ago, inert, short, smoke_cell
from console.tui.lookups import current_channels
from console.tui.messages import NodesSummarised
from console.tui.screens.base import PagedView
from console.tui.screens.modals import FleetCheckModal, FleetRequest
from console.tui.widgets.barchart import bar_chart
from console.tui.widgets.cells import block, cell, line
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from console.tui.widgets.paged_table import PagedTable
from core.errors import DepotError
from core.fleet.check import channel_targets
from core.fleet.nodeset import expand, fold
from core.site.inventory import UNKNOWN_ARCH, ImageCache, arch_findings, live_images, node_rows

# Between ARCH and RELEASE: one column per channel the site has (the first `IMAGE_CHANNELS` by
# name), headed by its name, the image that channel gives the node; RELEASE is what the node
# reported for the first of them. At 80 columns: the node, its CPU, the images it gets and how
# it stands; the release, smoke and when it was seen as the width allows.
IMAGE_CHANNELS = 2
COLUMNS = [
    Col("NODE", 6, priority=0),
    Col("ARCH", 8, priority=0),
    Col("RELEASE", 12, priority=3, max=12),
    Col("LAST SMOKE", 8, priority=2, flex=1),
    Col("STATUS", 6, priority=1, flex=1),
    Col("LAST SEEN", 8, priority=4),
]
# With Slurm's view of the nodes: its state and features instead of LAST SEEN (Slurm's state says
# more about a node now) and a shorter RELEASE.
SLURM_COLUMNS = [
    Col("NODE", 6, priority=0),
    Col("ARCH", 8, priority=0),
    Col("RELEASE", 8, priority=4, max=8),
    Col("LAST SMOKE", 8, priority=3, flex=1),
    Col("STATUS", 6, priority=1, flex=1),
    Col("SLURM", 5, priority=1),
    Col("FEATURES", 8, priority=2, flex=1),
]


def image_column(channel: str) -> Col:
    """The column of the image ``channel`` gives each node, headed by the channel's name."""
    return Col(channel.upper(), 6, priority=1, key=f"image:{channel}")


SLURM_STATE_STYLE = {"idle": "green", "mixed": "green", "allocated": "green", "alloc": "green"}


def slurm_state_cell(state: str | None) -> Text:
    """Slurm's node state: green when it takes jobs, red when down/drained/failing, dim when unknown."""
    if not state:
        return Text("-", style="dim")
    base = state.lower().split("+")[0].rstrip("*~#!%$@^-")
    return cell(state, SLURM_STATE_STYLE.get(base, "bold red"))


class NodesScreen(PagedView):
    """Composes at once; the first window of rows and the per-arch summary load in workers."""

    SCREEN_ID = "nodes"
    BINDINGS = actions.bindings_for("nodes")

    def __init__(self) -> None:
        super().__init__(id="nodes")
        self.marked: set[str] = set()
        self.total: int | None = None
        self.slurm = False  # Slurm columns: decided once, when the view is composed
        self.channels: list[str] = []  # the channels whose image columns are shown (composed once too)

    def compose(self) -> ComposeResult:
        self.slurm = self.site.state.nodes.has_slurm()
        self.channels = sorted(current_channels(self.site))[:IMAGE_CHANNELS]
        base = SLURM_COLUMNS if self.slurm else COLUMNS
        columns = [*base[:2], *(image_column(ch) for ch in self.channels), *base[2:]]
        yield SiteHeader("Nodes")
        with Horizontal(id="nodes-top"):
            yield Static("loading…", id="arch-chart", classes="panel")
            yield Static("", id="no-fit", classes="panel")
        yield Input(placeholder="filter: node, arch, status   (esc clears)", id="filter", classes="filter hidden")
        yield PagedTable(columns, self.fetch, self.count, id="nodes-table", load_on_mount=False)
        yield Static(" loading the inventory…", id="status", classes="status")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self.query_one("#arch-chart", Static).border_title = "nodes per micro-architecture -> image per channel"
        self.query_one("#no-fit", Static).border_title = (
            "no image fits · ! Slurm feature vs CPU" if self.slurm else "no image fits"
        )
        self.action_refresh()

    def fetch(self, site: Any, offset: int, limit: int) -> list[tuple[str, list]]:
        now = site.now()
        out = []
        for name, arch, images, chans, status, seen, ok, wall, red, sstate, sfeat in site.state.nodes.page(
            offset, limit, self.search
        ):
            imgs = json.loads(images or "{}")
            have = json.loads(chans or "{}")

            def img(ch: str, imgs: dict[str, Any] = imgs) -> Text:  # called in this iteration only
                pick = imgs.get(ch)
                if not pick:
                    return Text("-", style="dim")
                return cell(pick.get("image") or "none fits", "" if pick.get("image") else "bold red")

            rel = (have.get(self.channels[0]) or {}).get("release") if self.channels else None
            smoke = Text(*smoke_cell(None if ok is None else bool(ok), wall, red))
            mark = "●" if name in self.marked else " "
            arch = arch or UNKNOWN_ARCH  # never probed, or not classified: 'unknown', as the CLI says
            cells = [cell(mark + name), cell(arch), *(img(ch) for ch in self.channels)]
            if not self.slurm:
                cells += [
                    short(rel),
                    smoke,
                    cell(status, "green" if status == "ok" else "red"),
                    cell(ago(seen, now)),
                ]
                out.append((name, cells))
                continue
            features = json.loads(sfeat) if sfeat else []
            wrong = bool(arch_findings(arch, features))  # a feature claims a CPU the probe did not measure
            if wrong:
                cells[1] = cell(f"{arch} !", "bold red")
            cells += [
                short(rel, 8),
                smoke,
                cell(status, "green" if status == "ok" else "red"),
                slurm_state_cell(sstate),
                cell(",".join(features) or "-", "bold red" if wrong else ""),
            ]
            out.append((name, cells))
        return out

    def count(self, site: Any) -> int:
        return site.state.nodes.count(self.search)

    @staticmethod
    def summary(site: Any) -> tuple[list[tuple[str, int, str]], list[str]]:
        """(nodes per arch with each channel's image, the nodes no image fits and the nodes whose
        Slurm feature claims another CPU than the measured one): a worker's job.

        The channels' images come from ``channel_targets``, as for ``console inventory``."""
        nodes = site.state.nodes
        counts = nodes.arch_counts()
        cache = ImageCache(channel_targets(site))
        rows, no_fit = [], []
        merged: dict[str, int] = {}
        for arch, n in counts:  # a node never probed (no arch) and an unclassified one are both 'unknown'
            merged[arch or UNKNOWN_ARCH] = merged.get(arch or UNKNOWN_ARCH, 0) + n
        for arch, n in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])):
            picks = live_images(arch, cache)
            by_image: dict[str, list[str]] = {}
            for ch, p in sorted(picks.items()):
                by_image.setdefault(p["image"] or "no image", []).append(ch)
            note = " · ".join(f"{image} ({', '.join(chs)})" for image, chs in by_image.items())
            rows.append((arch, n, note))
            if picks and all(p["image"] is None for p in picks.values()):
                names = nodes.names(arch)
                if arch == UNKNOWN_ARCH:
                    names += [r["name"] for r in node_rows(site.state) if not r.get("arch")]
                reason = next(iter(picks.values()))["reason"]
                no_fit.append(f"{inert(fold(names))}: {n} {inert(arch)} node(s)\n  {inert(reason.split(';')[0][:90])}")
        if nodes.has_slurm():
            for r in node_rows(site.state):
                for finding in r["arch_mismatch"]:
                    no_fit.append(f"! {inert(r['name'])}: {inert(finding)[:90]}")
        return rows, no_fit

    @on(NodesSummarised)
    def _show_summary(self, event: NodesSummarised) -> None:
        rows, no_fit = event.rows, event.no_fit
        self.query_one("#arch-chart", Static).update(bar_chart(rows, width=10) if rows else "no nodes yet")
        self.query_one("#no-fit", Static).update(block("\n".join(no_fit) or "every node has an image"))

    def _status(self) -> None:
        total = self.table.total
        marked = f"   marked {fold(sorted(self.marked))}" if self.marked else ""
        self.query_one("#status", Static).update(
            line(
                f" {total if total is not None else '…'} node(s)"
                + (f" matching {self.search!r}" if self.search else "")
                + marked
                + "   (space marks nodes, f checks the marked ones or a node set)"
            )
        )

    def filtered(self) -> None:
        self._status()

    def action_refresh(self) -> None:
        self.table.reload_in_background(keep_cursor=True)  # TableReloaded: filtered(), the status line
        self.work(self.summary, lambda result: NodesSummarised(*result), name="nodes-summary", title="nodes")

    def action_mark(self) -> None:
        key = self.table.current_key
        if key:
            self.marked.symmetric_difference_update({key})
            self.table.reload(keep_cursor=True)
            self._status()

    def headless_context(self) -> dict[str, object]:
        return {"nodeset": fold(sorted(self.marked)) if self.marked else self.table.current_key}

    def action_fleet_check(self) -> None:
        default = fold(sorted(self.marked)) if self.marked else (self.table.current_key or "")
        chans = sorted(current_channels(self.site))

        def start(req: FleetRequest | None) -> None:
            if req is None:
                return
            try:
                nodes = expand(req.nodeset) if req.nodeset else []  # none: Slurm picks them
            except DepotError as exc:
                self.notify(str(exc), title="bad node set", severity="error")
                return
            from console.tui.screens.fleetcheck import FleetCheckScreen

            # the headless line: the node set quoted, the options as options (not one quoted word)
            self.console.command_log.append(f"console --headless fleet check {req.command_args()}")
            self.app.push_screen(FleetCheckScreen(req.nodeset, nodes, req.smoke, req.channel, request=req))

        transport = self.site.config.fleet.transport or "ssh"
        self.app.push_screen(FleetCheckModal(default, chans, transport), start)
