"""Builds: the jobs with their status, a form to start one, and the live log of the selected one.

Starting and cancelling run the headless verbs (``console --headless build …`` /
``builds cancel ID``) as child processes: a build outlives the screen (and the console), writes
its own ``builds`` row and log file, and this view follows both.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Log, Static

from core.builders.base import known_builders
from core.errors import BadInput

from .. import actions
from ..output import ago, short
from ..widgets.header import SiteHeader
from .base import BaseScreen
from .modals import BuildModal, BuildRequest

STATUS_STYLE = {"succeeded": "green", "failed": "bold red", "running": "yellow", "queued": "cyan",
                "cancelled": "magenta"}
TAIL_BYTES = 64 << 10


def build_argv(site_dir: Path, req: BuildRequest) -> list[str]:
    """The headless command line of a build request (shown to the operator and run as is)."""
    argv = ["console", "--headless", "--site", str(site_dir), "build", req.source, "--builder", req.builder,
            "--arch", req.targets]
    if req.publish:
        argv.append("--publish")
    if req.promote:
        argv += ["--promote", req.promote]
    return argv


def run_headless(argv: list[str]) -> str:
    """Run a headless verb to completion; BadInput with its own error line if it fails."""
    proc = subprocess.run([sys.executable, "-m", "console.cli", *argv[1:]], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise BadInput((lines[-1] if lines else f"exit {proc.returncode}").removeprefix("console: "))
    return proc.stdout.strip()


class BuildsScreen(BaseScreen):
    SCREEN_ID = "builds"
    BINDINGS = actions.bindings_for("builds")

    def __init__(self) -> None:
        super().__init__(id="builds")
        self.log_for: int | None = None

    def compose(self) -> ComposeResult:
        yield SiteHeader("Builds")
        yield DataTable(id="builds-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="log-title", classes="section")
        yield Log(id="build-log", highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#builds-table", DataTable)
        t.add_columns("ID", "STATUS", "BUILDER", "SOURCE", "TARGETS", "CREATED", "ACTOR", "RELEASE", "ERROR")
        t.focus()
        self.action_refresh()
        self.set_interval(2.0, self._tick, name="builds-follow")

    def _tick(self) -> None:
        if self.app.screen is self:
            running = self.site.state.db.execute(
                "select count(*) from builds where status in ('queued', 'running')").fetchone()[0]
            if running:
                self.action_refresh()

    def action_refresh(self) -> None:
        t = self.query_one("#builds-table", DataTable)
        keep = t.cursor_row
        t.clear()
        now = self.site.now()
        for r in self.site.state.db.query("select * from builds order by id desc limit 500"):
            try:
                targets = ", ".join(json.loads(r["targets"] or "[]"))
            except ValueError:
                targets = r["targets"] or ""
            t.add_row(str(r["id"]), Text(r["status"] or "-", style=STATUS_STYLE.get(r["status"], "")),
                      r["builder"] or "-", r["source"] or "-", targets, ago(r["created"], now), r["actor"] or "-",
                      short(r["release"]), (r["error"] or "")[:50], key=str(r["id"]))
        if t.row_count:
            t.move_cursor(row=min(keep, t.row_count - 1))
            self._show_log()
        else:
            self.query_one("#log-title", Static).update(" no builds yet: press n to start one")

    def current_build(self) -> int | None:
        t = self.query_one("#builds-table", DataTable)
        if not t.row_count:
            return None
        return int(t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_log()

    def action_view_log(self) -> None:
        self.query_one("#build-log", Log).focus()

    def _show_log(self) -> None:
        bid = self.current_build()
        if bid is None:
            return
        row = self.site.state.db.execute("select log_path from builds where id = ?", [bid]).fetchone()
        path = Path(row[0]) if row and row[0] else None
        self.query_one("#log-title", Static).update(
            f" log of build {bid}   ≡ {actions.action('view_log').command(build=bid)}")

        def tail(_site: Any) -> list[str]:
            if path is None or not path.exists():
                return ["(no log yet)"]
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - TAIL_BYTES))
                return f.read().decode("utf-8", "replace").splitlines()[-400:]

        def show(lines: list[str]) -> None:
            log = self.query_one("#build-log", Log)
            log.clear()
            log.write_lines(lines)

        self.work(tail, show, name="build-log", title="build log")

    def action_new_build(self) -> None:
        try:
            builders = known_builders()
        except Exception:  # noqa: BLE001 - the form still offers the standard ones
            builders = []

        def start(req: BuildRequest | None) -> None:
            if req is None:
                return
            argv = build_argv(self.console.site_dir, req)
            cmd = shlex.join(a for a in argv if a not in ("--site", str(self.console.site_dir)))
            self.console.command_log.append(cmd)
            self.notify(f"build started\n≡ {cmd}", title="build")
            self.work(lambda _s: run_headless(argv), lambda out: (self.notify(out or "build finished",
                                                                             title="build"), self.action_refresh()),
                      name="build-run", title="build failed")
            self.set_timer(1.0, self.action_refresh)

        self.app.push_screen(BuildModal(builders), start)

    def action_cancel(self) -> None:
        bid = self.current_build()
        if bid is None:
            return
        argv = ["console", "--headless", "--site", str(self.console.site_dir), "builds", "cancel", str(bid)]
        self.log_command("cancel", build=bid)
        self.work(lambda _s: run_headless(argv), lambda out: (self.notify(out or f"build {bid} cancelled"),
                                                             self.action_refresh()),
                  name="build-cancel", title="cancel failed")
