"""Rollout: per channel, its latest staged rollout (``core.site.rollout.status``, as ``console
--headless rollout status``): the stages and which one is current, the nodes on each release, the
smoke verdict and start-up time per CPU type, and what blocks the next stage. Read in a worker."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

import console.tui.actions as actions
from console.render import short
from console.tui.screens.base import BaseScreen
from console.tui.widgets.cells import cell
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from core.fleet.nodeset import fold

STATE_STYLE = {"running": "yellow", "done": "green", "aborted": "magenta"}


class RolloutsRead(Message):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


def rollout_text(doc: dict[str, Any]) -> Text:
    """One rollout as inert lines: every value from the database goes through ``cell``."""
    out = Text()
    out.append(cell(f"{doc['channel']}", "bold"))
    out.append(cell(f"  rollout {doc['id']}  {short(doc['release'])} over {short(doc['base'])}  "))
    out.append(cell(doc["state"], STATE_STYLE.get(doc["state"], "red")))
    out.append(cell(f"  by {doc.get('actor') or '-'}"))
    out.append("\n stages  ")
    for i, s in enumerate(doc["stages"]):
        mark = "▶ " if i == doc["stage"] else ""
        style = "bold yellow" if i == doc["stage"] else ("green" if i < doc["stage"] else "dim")
        who = fold(list(s["nodes"])) if s.get("nodes") else f"{s['percent']:g}%"
        out.append(cell(f"{mark}{s['name']} ({who})", style))
        out.append("  ")
    out.append("\n nodes per release\n")
    for rel, nodes in sorted(doc.get("nodes_per_release", {}).items()):
        which = " (new)" if rel == doc["release"] else " (base)" if rel == doc["base"] else ""
        out.append(cell(f"   {short(rel)}{which}: {len(nodes)}  {fold(nodes)}"[:110]))
        out.append("\n")
    out.append(" smoke per CPU type (this release)\n")
    arches = doc.get("arches") or {}
    if not arches:
        out.append("   no smoke results yet\n", style="dim")
    for arch, v in arches.items():
        verdict = "ok" if not v["failed"] else "FAILED"
        out.append(cell(f"   {arch:<16}"))
        out.append(cell(f"{verdict:<7}", "green" if not v["failed"] else "bold red"))
        wall = f"{v['wall_s']:.2f}s" if v.get("wall_s") is not None else "-"
        out.append(cell(f" {v['ok']} ok, {v['failed']} failed   start-up {wall}"))
        out.append("\n")
    blocking = doc.get("blocking") or []
    if doc["state"] == "running":
        out.append(" next stage: ", style="bold")
        if blocking:
            out.append("blocked by\n", style="bold red")
            for b in blocking:
                out.append(cell(f"   - {b}", "red"))
                out.append("\n")
        else:
            out.append(cell("nothing blocks it (rollout next)", "green"))
            out.append("\n")
    return out


class RolloutScreen(BaseScreen):
    SCREEN_ID = "rollout"
    BINDINGS = actions.bindings_for("rollout")

    def __init__(self) -> None:
        super().__init__(id="rollout")
        self.rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield SiteHeader("Rollout")
        with VerticalScroll(id="rollout-scroll"):
            yield Static(Text(" reading rollouts…", style="dim"), id="rollout-body", classes="panel")
        yield Static(cell(" ≡ console --headless rollout status"), id="status", classes="status")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        from core.site import rollout

        self.work(lambda site: rollout.status(site), RolloutsRead, name="rollout-status", title="rollout")

    @on(RolloutsRead)
    def _read(self, event: RolloutsRead) -> None:
        self.rows = event.rows
        body = Text()
        for doc in event.rows:
            body.append(rollout_text(doc))
            body.append("\n")
        if not event.rows:
            body = Text(
                " no rollouts yet: console rollout start ID --channel C --canary NODESET --then P%", style="dim"
            )
        self.query_one("#rollout-body", Static).update(body)
