"""Builds: the jobs with their status, a form to start one, and the live log of the selected one.

Everything goes through ``core.build.jobs``, as ``console --headless build`` does: ``start_build`` queues a
build and spawns its worker process (its own session, so it outlives the console), ``list_builds``
reads the rows, a ``LogFollower`` tails the selected build's log on a timer, and ``cancel_build``
(which blocks until every process of the build is gone) runs in a worker thread. The console never
runs a build in its own process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult, ScreenStackError
from textual.widgets import DataTable, Log, Static

import console.tui.actions as actions
import core.build.jobs as jobs
from console.render import ago, build_summary, short
from console.tui.messages import BuildCancelled, BuildsListed, BuildsListFailed, BuildStarted
from console.tui.screens.base import BaseScreen
from console.tui.screens.modals import BuildModal, BuildRequest, Confirmed, ConfirmModal, build_command
from console.tui.widgets.cells import InertTable, cell, line, log_lines
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from core.errors import DepotError

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "running": "yellow",
    "queued": "cyan",
    "cancelled": "magenta",
}
# At 80 columns: the build, how it stands, what it builds and why it failed; the rest as the
# width allows (every value whole in the row detail, enter).
COLUMNS = [
    Col("ID", 2, priority=0),
    Col("STATUS", 6, priority=0),
    Col("BUILDER", 5, priority=5),
    Col("NAME", 6, priority=1, flex=1),
    Col("TARGETS", 8, priority=2, flex=1),
    Col("CREATED", 8, priority=3),
    Col("RELEASE", 12, priority=4, max=12),
    Col("ERROR", 10, priority=1, flex=2, claim=24),
]
TAIL_BYTES = 64 << 10  # a new log view starts with at most this much of the file
TICK_S = 0.5  # log poll period; the list is re-read on every tick while a build is active
IDLE_LIST_TICKS = 10  # ... and every 10th tick otherwise (builds started by others)
LIST_LIMIT = 200


def status_cell(row: dict) -> Text:
    """``queued`` / the step of a running build (``building``, ``publishing``…) / how it ended."""
    status = row["status"] or "-"
    text = (row.get("step") or status) if status == "running" else status
    return cell(text, STATUS_STYLE.get(status, ""))


SLURM_STATE_STYLE = {"COMPLETED": "green", "RUNNING": "yellow", "PENDING": "cyan", "CONFIGURING": "cyan"}


def targets_text(row: dict) -> str:
    """``x86_64_v3,zen3``; for a Slurm build each target with its job id and state
    (``zen3:42 RUNNING``), as ``console builds`` prints them."""
    sjobs = row.get("jobs") or {}
    if row.get("executor") != "slurm" or not sjobs:
        return ",".join(row["targets"])
    parts = []
    for arch in row["targets"]:
        j = sjobs.get(arch) or {}
        parts.append(f"{arch}:{j.get('job') or '-'} {j.get('state') or 'PENDING'}" if j else arch)
    return ", ".join(parts)


def slurm_lines(row: dict) -> Text:
    """One line per target of a Slurm build: its job id, Slurm state, node and exit code."""
    out = Text()
    sjobs = row.get("jobs") or {}
    if row.get("executor") != "slurm":
        return out
    for arch in row["targets"]:
        j = sjobs.get(arch) or {}
        state = j.get("state") or "PENDING"
        out.append("\n")
        out.append(cell(f" {arch:<14} slurm job {j.get('job') or '-':<8} "))
        out.append(cell(f"{state:<11}", SLURM_STATE_STYLE.get(state, "bold red")))
        if j.get("node"):
            out.append(cell(f" on {j['node']}"))
        if j.get("exit") not in (None, ""):
            out.append(cell(f"  exit {j['exit']}"))
    return out


def row_cells(row: dict, now: Any) -> list:
    return [
        cell(row["id"]),
        status_cell(row),
        cell(row["builder"]),
        cell(row.get("name") or "-"),
        cell(targets_text(row)),
        cell(ago(row["created"], now)),
        cell(short(row.get("release"))),
        cell(row.get("error") or "", "red"),
    ]


class BuildsScreen(BaseScreen):
    SCREEN_ID = "builds"
    BINDINGS = actions.bindings_for("builds")

    def __init__(self) -> None:
        super().__init__(id="builds")
        self.rows: dict[int, dict] = {}
        self.follower: jobs.LogFollower | None = None
        self.select_next: int | None = None
        self._listing = False
        self._ticks = 0

    def compose(self) -> ComposeResult:
        yield SiteHeader("Builds")
        yield InertTable(id="builds-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="build-detail", classes="section")
        yield Log(id="build-log", highlight=False, max_lines=5000)
        yield ConsoleFooter()

    @property
    def table(self) -> InertTable:
        return self.query_one("#builds-table", InertTable)

    def on_mount(self) -> None:
        self.table.set_columns(COLUMNS)
        self.table.focus()
        self.action_refresh()
        self.set_interval(TICK_S, self._tick, name="builds-follow")

    # -- the list ---------------------------------------------------------------------------
    def action_refresh(self) -> None:
        """Re-read the build rows in a worker (``list_builds`` also notices dead workers)."""
        if self._listing:
            return
        self._listing = True
        self.work(
            lambda s: jobs.list_builds(s, limit=LIST_LIMIT),
            BuildsListed,
            name="builds-list",
            title="builds",
            failed=lambda _: BuildsListFailed(),
        )

    @on(BuildsListFailed)
    def _list_failed(self, _: BuildsListFailed) -> None:
        self._listing = False

    @on(BuildsListed)
    def _loaded(self, event: BuildsListed) -> None:
        rows = event.rows
        self._listing = False
        t, now = self.table, self.site.now()
        keep = self.select_next or self.current_build()
        self.rows = {r["id"]: r for r in rows}
        keys = [str(r["id"]) for r in rows]
        with self.app.batch_update():
            if keys == [k.value for k in t.rows]:  # same builds: update changed cells in place
                for r in rows:
                    key = str(r["id"])
                    old = t.get_row(key)
                    for i, new in enumerate(row_cells(r, now)):
                        if str(old[i]) != str(new):
                            t.update_cell(key, COLUMNS[i].column_key, new)
            else:
                t.clear()
                for r in rows:
                    t.add_row(*row_cells(r, now), key=str(r["id"]))
                if keep is not None and str(keep) in keys:
                    t.move_cursor(row=keys.index(str(keep)), animate=False)
        if self.select_next is not None and str(self.select_next) in keys:
            self.select_next = None
        if not rows:
            self.query_one("#build-detail", Static).update(line(" no builds yet: press n to start one"))
            return
        self._follow(self.current_build())
        self._detail()

    def headless_context(self) -> dict[str, object]:
        return {"build": self.current_build()}  # a new build's spec comes from its form

    def current_build(self) -> int | None:
        t = self.table
        if not t.row_count:
            return None
        return int(t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._follow(self.current_build())
        self._detail()

    def _detail(self) -> None:
        bid = self.current_build()
        row = self.rows.get(bid) if bid is not None else None
        if row is None:
            return
        text = Text(f" build {bid}  ", style="bold")
        text.append(cell(build_summary(row).removeprefix(f"build {bid} "), STATUS_STYLE.get(row["status"], "")))
        text.append("\n")
        text.append(cell(f" {row['builder']} {row['source']}  ->  {', '.join(row['targets'])}"))
        if row.get("publish"):
            text.append(cell(f"   publish {row.get('name')} {row.get('label')}"))
            if row.get("channel"):
                text.append(cell(f", promote to {row['channel']}"))
        text.append(slurm_lines(row))
        text.append(f"\n log  ≡ {actions.action('view_log').command(build=bid)}", style="dim")
        self.query_one("#build-detail", Static).update(text)

    # -- the live log -----------------------------------------------------------------------
    def _follow(self, bid: int | None) -> None:
        """Show the log of build ``bid`` (its last ``TAIL_BYTES``) and follow it from there."""
        if bid is None or (self.follower is not None and self.follower.build_id == bid):
            return
        log = self.query_one("#build-log", Log)
        log.clear()
        path = jobs.build_paths(self.site, bid).log
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        self.follower = jobs.LogFollower(self.site, bid, offset=max(0, size - TAIL_BYTES))
        log.border_title = f"log of build {bid}"
        text = self._poll()
        if size > TAIL_BYTES:
            text = text.partition("\n")[2]  # the first line was cut by the offset
        self._write(text)

    def _poll(self) -> str:
        follower = self.follower
        if follower is None:
            return ""
        row = self.rows.get(follower.build_id)
        finished = row is not None and row["status"] in jobs.FINISHED
        try:
            return follower.poll(whole_lines=not finished)
        except DepotError:
            return ""

    def _write(self, text: str) -> None:
        if text:
            self.query_one("#build-log", Log).write_lines(log_lines(text))

    def _tick(self) -> None:
        try:
            on_top = self.app.screen is self
        except ScreenStackError:  # the app is closing: its last screen is already gone
            return
        if not on_top:
            return
        self._write(self._poll())
        self._ticks += 1
        active = any(r["status"] in jobs.ACTIVE for r in self.rows.values())
        if active or self._ticks % IDLE_LIST_TICKS == 0:
            self.action_refresh()

    def action_view_log(self) -> None:
        self.query_one("#build-log", Log).focus()

    # -- start and cancel -------------------------------------------------------------------
    def action_new_build(self) -> None:
        try:
            from core.build.builders import known_builders

            builders = known_builders()
        except Exception:  # noqa: BLE001 - the form still offers the standard ones
            builders = []

        def start(req: BuildRequest | None) -> None:
            if req is None:
                return
            cmd = build_command(req)
            self.console.command_log.append(cmd)

            def run(site: Any) -> int:
                builder = jobs.builder_for(site, req.builder)
                options = jobs.parse_options(builder, req.options)
                return jobs.start_build(
                    site,
                    Path(req.source).expanduser(),
                    req.builder,
                    req.targets,
                    options,
                    publish=req.publish,
                    promote=req.promote or None,
                    create=bool(req.promote) and req.create,
                )

            self.work(run, lambda bid: BuildStarted(bid, cmd), name="build-start", title="build refused")

        self.app.push_screen(BuildModal(builders), start)

    @on(BuildStarted)
    def _started(self, event: BuildStarted) -> None:
        self.notify(f"build {event.build_id} started\n≡ {event.command}", title="build")
        self.select_next = event.build_id
        self.action_refresh()

    def action_cancel(self) -> None:
        bid = self.current_build()
        row = self.rows.get(bid) if bid is not None else None
        if row is None:
            return
        if row["status"] in jobs.FINISHED:
            self.notify(f"build {bid} already {row['status']}; nothing to cancel", severity="warning")
            return
        cmd = actions.action("cancel").command(build=bid)
        lines = [
            f"build {bid}: {row['builder']} {row['source']} -> {', '.join(row['targets'])}",
            "Stops the worker and every process it started; nothing is published.",
        ]

        def answered(answer: Confirmed | None) -> None:
            if answer is None:
                return
            self.log_command("cancel", build=bid)
            self.notify(f"cancelling build {bid}…", title="build")

            self.work(lambda s: jobs.cancel_build(s, bid), BuildCancelled, name="build-cancel", title="cancel failed")

        self.app.push_screen(
            ConfirmModal(
                f"Cancel build {bid}?", lines, yes="Cancel build", ask_reason=False, command=cmd, id="cancel-modal"
            ),
            answered,
        )

    @on(BuildCancelled)
    def _cancelled(self, event: BuildCancelled) -> None:
        self.notify(build_summary(event.row), title="build")
        self.action_refresh()
