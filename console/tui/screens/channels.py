"""Channels: each channel's current release, version, last action, actor, time to expiry; the
history of the highlighted one; roll back (modal: from -> to, reason, default No) and renew."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

import console.tui.actions as actions
import core.site.channels as channel_ops
from console.render import ago, short, time_left
from console.tui.lookups import release_labels
from console.tui.messages import ChannelsLoaded, ChannelUpdated, HistoryLoaded, ReloadView, RollbackTargetFound
from console.tui.screens.base import BaseScreen
from console.tui.screens.modals import Confirmed, ConfirmModal
from console.tui.widgets.cells import InertTable, cell, line
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from core.site.guards import require_channel_version

# The history fits 120 columns: long reasons end in "…" (``history --channel C`` prints them whole);
# the release a pointer replaced is the one on the row below it.
HISTORY_COLUMNS = [
    ("VER", 3),
    ("ACTION", 8),
    ("RELEASE", 12),
    ("NAME LABEL", 18),
    ("ACTOR", 10),
    ("REASON", 32),
    ("ISSUED", 13),
    ("STATUS", 6),
]


class ChannelsScreen(BaseScreen):
    SCREEN_ID = "channels"
    BINDINGS = actions.bindings_for("channels")

    def __init__(self) -> None:
        super().__init__(id="channels")
        self.rows: list[dict] = []
        self.names: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield SiteHeader("Channels")
        yield InertTable(id="channels-table", cursor_type="row")
        yield Static("", id="history-title", classes="section")
        yield InertTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        t = self.query_one("#channels-table", DataTable)
        t.add_columns(
            "CHANNEL", "VERSION", "RELEASE", "NAME", "LABEL", "ACTION", "ACTOR", "ISSUED", "EXPIRES IN", "STATUS"
        )
        h = self.query_one("#history-table", DataTable)
        for label, width in HISTORY_COLUMNS:
            h.add_column(label, width=width)
        t.focus()
        self.action_refresh()

    def action_refresh(self) -> None:
        self.work(channel_ops.channel_status, ChannelsLoaded, name="channel-status", title="channels")

    def _labels(self) -> dict[str, str]:
        return release_labels(self.site)

    @on(ChannelsLoaded)
    def _loaded(self, event: ChannelsLoaded) -> None:
        rows = self.rows = event.rows
        labels = self._labels()
        now = self.site.now()
        t = self.query_one("#channels-table", DataTable)
        keep = t.cursor_row
        t.clear()
        for r in rows:
            name, label = labels.get(r["release"] or "", ("", ""))
            status = Text("ok", style="green") if not r["problem"] else cell(r["problem"], "red", 30)
            t.add_row(
                cell(r["channel"], "bold magenta"),
                str(r["version"] or "-"),
                short(r["release"]),
                name,
                label,
                r["action"] or "-",
                r["actor"] or "-",
                ago(r["issued"], now),
                time_left(r["seconds_left"]),
                status,
                key=r["channel"],
            )
        if rows:
            t.move_cursor(row=min(keep, len(rows) - 1))
            self._history(self.current_channel())
        else:
            self.query_one("#history-title", Static).update(
                " no channels yet: open a release and press p to promote it"
            )

    def current_channel(self) -> str | None:
        t = self.query_one("#channels-table", DataTable)
        if not t.row_count:
            return None
        return t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "channels-table" and event.row_key is not None:
            self._history(event.row_key.value)

    def _history(self, channel: str | None) -> None:
        if not channel:
            return
        self.query_one("#history-title", Static).update(
            line(f" history of {channel}   ≡ console --headless history --channel {channel}")
        )
        self.work(lambda s: channel_ops.history_rows(s, channel), HistoryLoaded, name="history", title="history")

    @on(HistoryLoaded)
    def _history_loaded(self, event: HistoryLoaded) -> None:
        rows = event.rows
        labels = self._labels()
        now = self.site.now()
        h = self.query_one("#history-table", DataTable)
        h.clear()
        for r in sorted(rows, key=lambda r: -r["version"]):
            action = r.get("action", "-")
            h.add_row(
                str(r["version"]),
                cell(action, "bold yellow" if action == "rollback" else ""),
                short(r.get("release")),
                cell(" ".join(labels.get(r.get("release") or "", ("", ""))).strip(), width=18),
                cell(r.get("actor", "-"), width=10),
                cell(r.get("reason") or "-", width=32),
                cell(ago(r.get("issued"), now), width=13),
                cell(r["problem"] or "ok", "red" if r["problem"] else "green", 6),
            )

    def _row(self, channel: str) -> dict | None:
        return next((r for r in self.rows if r["channel"] == channel), None)

    # -- rollback ---------------------------------------------------------------------------
    def action_rollback(self) -> None:
        channel = self.current_channel()
        row = self._row(channel) if channel else None
        if not row or not row["release"]:
            self.notify("select a channel with a current release", severity="warning")
            return

        def target(site: Any) -> str:
            cur = channel_ops.read_current(site, channel, None)
            return channel_ops.rollback_target(channel_ops.read_history(site, channel), cur.pointer, 1)

        self.work(target, lambda to: RollbackTargetFound(row, to), name="rollback-target", title="cannot roll back")

    @on(RollbackTargetFound)
    def _confirm_rollback(self, event: RollbackTargetFound) -> None:
        row, to = event.row, event.release
        labels = self._labels()
        channel, frm, version = row["channel"], row["release"], row["version"]
        lines = [
            f"{channel}  version {version} -> {version + 1}",
            f"from  {short(frm)}  {' '.join(labels.get(frm, ('', '')))}",
            f"  to  {short(to)}  {' '.join(labels.get(to, ('', '')))}",
            "A rollback is a new pointer version pointing at the older release.",
        ]
        cmd = actions.action("rollback").command(channel=channel, release=short(to), reason="…")

        def answered(answer: Confirmed | None) -> None:
            if answer is None:
                self.notify(f"rollback of {channel} cancelled: nothing changed")
                return
            self.log_command("rollback", channel=channel, release=short(to), reason=answer.reason)

            def run(site: Any) -> Any:
                require_channel_version(site, channel, version)
                return channel_ops.rollback(site, channel, to=to, reason=answer.reason)

            self.work(run, _updated, name="rollback", title="rollback failed", failed=lambda _: ReloadView())

        self.app.push_screen(
            ConfirmModal(f"Roll back {channel}?", lines, yes="Roll back", command=cmd, id="rollback-modal"), answered
        )

    # -- renew ------------------------------------------------------------------------------
    def action_refresh_pointer(self) -> None:
        channel = self.current_channel()
        row = self._row(channel) if channel else None
        if not row or not row["release"]:
            return
        lines = [f"{channel}: re-sign {short(row['release'])} as version {row['version'] + 1} with a fresh expiry"]
        cmd = actions.action("refresh_pointer").command(channel=channel)

        def answered(answer: Confirmed | None) -> None:
            if answer is None:
                return
            self.log_command("refresh_pointer", channel=channel)

            def run(site: Any) -> Any:
                require_channel_version(site, channel, row["version"])
                return channel_ops.refresh(site, channel, answer.reason)

            self.work(run, _updated, name="refresh-pointer", title="refresh failed")

        self.app.push_screen(ConfirmModal(f"Renew {channel}?", lines, yes="Renew", command=cmd), answered)


def _updated(update: Any) -> ChannelUpdated:
    """A roll back or renew went through: the app says so and every open view reloads."""
    return ChannelUpdated(update, title="channel updated")
