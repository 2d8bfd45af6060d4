"""A fleet check running live: one row per node, updated as each node finishes; ``x`` cancels
(every ssh is killed, or the Slurm step cancelled, by ``core.fleet.check``) and leaves the footer
when the check is over; the outcome is recorded like ``console fleet check``, and then every open
Nodes view reloads (``FleetCheckRecorded``). With the Slurm transport and no node set, the nodes are the
ones Slurm has in the partition / with the feature (``select_nodes``), listed once it answers."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import ProgressBar, Static

import console.tui.actions as actions
from console.tui.messages import FleetCheckFinished, FleetCheckRecorded, NodeChecked, NodeStarted
from console.tui.screens.base import BaseScreen
from console.tui.screens.modals import FleetRequest
from console.tui.widgets.cells import InertTable, cell, line
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from core.errors import DepotError
from core.fleet.check import (
    NodeCheck,
    answered_text,
    channel_targets,
    check_fleet,
    options_from_site,
    record_check,
    select_nodes,
    summarize,
)

# At 80 columns: the node, how its check went and why, whole as far as the width goes (enter
# shows a row whole); the micro-architecture and the time when there is room.
COLUMNS = [
    Col("NODE", 6, priority=0),
    Col("STATUS", 8, priority=0),
    Col("ARCH", 6, priority=2),
    Col("DETAIL", 12, priority=1, flex=1, claim=30),
    Col("SECONDS", 5, priority=3),
]


class FleetCheckScreen(BaseScreen):
    SCREEN_ID = "fleetcheck"
    BINDINGS = actions.bindings_for("fleetcheck")

    def __init__(
        self, nodeset: str, nodes: list[str], smoke: bool, channel: str, *, request: FleetRequest | None = None
    ) -> None:
        super().__init__()
        self.nodeset, self.nodes, self.smoke, self.channel = nodeset, nodes, smoke, channel
        self.request = request or FleetRequest(nodeset, smoke, channel)
        self.results: dict[str, NodeCheck] = {}
        self.running = False
        self.t0 = 0.0

    def compose(self) -> ComposeResult:
        req = self.request
        where = ", ".join(f"{k} {v}" for k, v in (("partition", req.partition), ("feature", req.feature)) if v)
        via = (" via slurm" + (f" ({where})" if where else "")) if req.transport == "slurm" else ""
        yield SiteHeader(f"Fleet check {self.nodeset}{via}")
        yield ProgressBar(total=len(self.nodes), show_eta=False, id="fleet-progress")
        yield InertTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="status", classes="status")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        t = self.query_one("#fleet-table", InertTable)
        t.set_columns(COLUMNS)
        self._add_rows()
        t.focus()
        self.running = True
        self.t0 = time.monotonic()
        self.run_check()

    def _add_rows(self) -> None:
        t = self.query_one("#fleet-table", InertTable)
        for n in self.nodes:
            t.add_row(cell(n), Text("waiting", style="dim"), "", "", "", key=n)
        self.query_one(ProgressBar).update(total=len(self.nodes) or None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel" and not self.running:
            return False  # nothing left to cancel: the key leaves the footer (``refresh_bindings``)
        return super().check_action(action, parameters)

    @work(exclusive=True, group="fleet-check", exit_on_error=False)
    async def run_check(self) -> None:
        import asyncio

        interrupted = False

        req = self.request
        slurm = req.transport == "slurm"

        def prepare() -> tuple[Any, Any, list[str]]:
            site = self.console.open_site()
            try:
                opts = options_from_site(  # what ``req.command()`` (the form's ≡ line) asks headless
                    site,
                    smoke=self.smoke or None,
                    hydrate=req.hydrate or None,
                    channel=self.channel if self.smoke or req.hydrate else None,
                    transport=req.transport,
                    partition=(req.partition or None) if slurm else None,
                    feature=(req.feature or None) if slurm else None,
                    ssh_config=(req.ssh_config or None) if not slurm else None,
                    timeout=req.timeout,
                )
                nodes = self.nodes or select_nodes(site, None, opts)  # none given: Slurm's
                return opts, channel_targets(site), nodes
            finally:
                site.close()

        def started(node: str) -> None:
            self.post_message(NodeStarted(node))

        def result(check: NodeCheck) -> None:
            self.results[check.node] = check  # at once: what gets recorded must not wait for the screen
            self.post_message(NodeChecked(check))

        try:
            options, targets, nodes = await asyncio.to_thread(prepare)
            if not self.nodes:
                self.nodes = nodes
                self._add_rows()
            await check_fleet(self.nodes, options, targets, on_start=started, on_result=result)
        except asyncio.CancelledError:
            interrupted = True
            self._ended(interrupted, None)
            raise
        except DepotError as exc:
            self.notify(str(exc), title="fleet check failed", severity="error")
            self.running = False
            self.refresh_bindings()
            return
        self._ended(interrupted, options)

    def _ended(self, interrupted: bool, options: Any) -> None:
        """Finish after the results queued so far are shown; a screen that is closing (esc during
        the check) cannot take messages any more, and finishes (records) at once."""
        if not self.post_message(FleetCheckFinished(interrupted, options)):
            self._finish(interrupted, options)

    @on(NodeStarted)
    def _node_started(self, event: NodeStarted) -> None:
        self.query_one("#fleet-table", InertTable).update_cell(event.node, "status", Text("checking…", style="yellow"))

    @on(NodeChecked)
    def _node_checked(self, event: NodeChecked) -> None:
        check = event.check
        t = self.query_one("#fleet-table", InertTable)
        t.update_cell(check.node, "status", cell(check.status, "green" if check.ok else "bold red"))
        t.update_cell(check.node, "arch", cell(check.arch or "-"))
        t.update_cell(check.node, "detail", cell(check.detail))
        t.update_cell(check.node, "seconds", f"{check.seconds:.1f}")
        self.query_one(ProgressBar).update(progress=len(self.results))
        self._status()

    def _status(self, extra: str = "") -> None:
        s = summarize(self.results.values())
        counts = "  ".join(f"{k} {v}" for k, v in s["counts"].items()) or "-"
        self.query_one("#status", Static).update(
            line(f" {len(self.results)}/{len(self.nodes)} done   {counts}   {time.monotonic() - self.t0:.1f}s{extra}")
        )

    @on(FleetCheckFinished)
    def _finished(self, event: FleetCheckFinished) -> None:
        self._finish(event.interrupted, event.options)

    def _finish(self, interrupted: bool, options: Any) -> None:
        self.running = False
        self.refresh_bindings()
        checks = list(self.results.values())
        self._status("   cancelled" if interrupted else "   finished")
        app = self.app  # the worker posts to the app: this screen may be gone (esc) when it is done

        def record(site: Any) -> None:
            opts = options or options_from_site(site)
            if record_check(site, self.nodeset, checks, opts, interrupted=interrupted):  # read-only: records nothing
                app.post_message(FleetCheckRecorded(self.nodeset))

        self.work(record, name="record-check", title="cannot record fleet check")
        self.notify(
            ("fleet check cancelled: " if interrupted else "fleet check done: ")
            + answered_text(checks, len(self.nodes))
        )

    def action_cancel(self) -> None:
        if self.running:
            self.app.workers.cancel_group(self, "fleet-check")
