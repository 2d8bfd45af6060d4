"""Channels: each channel's current release, version, last action, actor, time to expiry; the
history of the highlighted one; roll back (modal: from -> to, reason, default No) and renew.

With CernVM-FS targets configured, a table of each target's state per channel (in line / behind /
failed, ``core.site.cvmfs.status.status`` in a worker) and ``s`` to sync the highlighted channel
(``core.site.cvmfs.sync.sync``, in a worker). Without targets the view is as before."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Static

import console.tui.actions as actions
import core.site.channels as channel_ops
from console.render import ago, short, time_left
from console.tui.lookups import release_labels
from console.tui.messages import ChannelsLoaded, ChannelUpdated, HistoryLoaded, ReloadView, RollbackTargetFound
from console.tui.screens.base import BaseScreen
from console.tui.screens.modals import Confirmed, ConfirmModal
from console.tui.widgets.cells import InertTable, cell, line
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from core.site.guards import require_channel_version

# At 80 columns: which channel, its version, release and what it is, how long it has left and
# whether it is sound; who did the last thing and when, as the width allows.
CHANNEL_COLUMNS = [
    Col("CHANNEL", 7, priority=0, flex=1),
    Col("VERSION", 3, priority=1),
    Col("RELEASE", 12, priority=1, max=12),
    Col("NAME", 6, priority=2, flex=1),
    Col("LABEL", 6, priority=2, flex=1),
    Col("ACTION", 6, priority=4),
    Col("ACTOR", 6, priority=5, flex=1),
    Col("ISSUED", 8, priority=4),
    Col("EXPIRES IN", 6, priority=1),
    Col("STATUS", 6, priority=0, flex=2, claim=24),
]
CVMFS_COLUMNS = [
    Col("CHANNEL", 7, priority=0),
    Col("TARGET", 6, priority=0, flex=1),
    Col("REPO", 6, priority=4, flex=1),
    Col("STATE", 6, priority=0),
    Col("TARGET VER", 3, priority=2),
    Col("STORE VER", 3, priority=2),
    Col("RELEASE", 12, priority=3, max=12),
    Col("DETAIL", 10, priority=1, flex=3, claim=24),
]
# The history, newest first: the reason is what an operator reads it for (enter shows a row
# whole; ``history --channel C`` prints them all); the release a pointer replaced is the one on
# the row below it.
HISTORY_COLUMNS = [
    Col("VER", 3, priority=0),
    Col("ACTION", 6, priority=1),
    Col("RELEASE", 12, priority=2, max=12),
    Col("NAME LABEL", 8, priority=3, flex=1),
    Col("ACTOR", 6, priority=2),
    Col("REASON", 12, priority=1, flex=3, claim=30),
    Col("ISSUED", 8, priority=2),
    Col("STATUS", 2, priority=1),
]


CVMFS_STYLES = {"in line": "green", "behind": "yellow", "failed": "bold red"}


class CvmfsLoaded(Message):
    """``core.site.cvmfs.status.status`` came back: one document per target."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.docs = docs


class CvmfsSynced(Message):
    """``core.site.cvmfs.sync.sync`` came back: one row per (target, channel)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


def _cvmfs_status(site: Any) -> list[dict[str, Any]]:
    from core.site.cvmfs.status import status

    return status(site)


class ChannelsScreen(BaseScreen):
    SCREEN_ID = "channels"
    BINDINGS = actions.bindings_for("channels")

    def __init__(self) -> None:
        super().__init__(id="channels")
        self.rows: list[dict] = []
        self.names: dict[str, str] = {}
        self.cvmfs: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield SiteHeader("Channels")
        yield InertTable(id="channels-table", cursor_type="row")
        if self.has_cvmfs:
            yield Static("", id="cvmfs-title", classes="section")
            yield InertTable(id="cvmfs-table", cursor_type="row")
        yield Static("", id="history-title", classes="section")
        yield InertTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        t = self.query_one("#channels-table", DataTable)
        self.query_one("#channels-table", InertTable).set_columns(CHANNEL_COLUMNS)
        self.query_one("#history-table", InertTable).set_columns(HISTORY_COLUMNS)
        if self.has_cvmfs:
            self.query_one("#cvmfs-table", InertTable).set_columns(CVMFS_COLUMNS)
        t.focus()
        self.action_refresh()

    @property
    def has_cvmfs(self) -> bool:
        """CVMFS targets in console.toml (the config only: no repository is read here)."""
        return bool(self.site.config.cvmfs.targets)

    def action_refresh(self) -> None:
        self.work(channel_ops.channel_status, ChannelsLoaded, name="channel-status", title="channels")
        if self.has_cvmfs:
            self.work(_cvmfs_status, CvmfsLoaded, name="cvmfs-status", title="cvmfs status")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "sync_cvmfs" and not self.has_cvmfs:
            return False  # hidden: no targets to sync
        return super().check_action(action, parameters)

    @on(CvmfsLoaded)
    def _cvmfs_loaded(self, event: CvmfsLoaded) -> None:
        self.cvmfs = event.docs
        t = self.query_one("#cvmfs-table", DataTable)
        t.clear()
        for doc in event.docs:
            for r in doc.get("channels", []):
                state = r.get("state", "")
                detail = r.get("error") or ""
                t.add_row(
                    cell(r["channel"], "bold magenta"),
                    cell(doc.get("name", "")),
                    cell(doc.get("repo", "")),
                    cell(state, CVMFS_STYLES.get(state, "yellow")),
                    cell(str(r.get("target_version") or "-")),
                    cell(str(r.get("store_version") or "-")),
                    short(r.get("target_release")),
                    cell(detail, "red" if detail else ""),
                    key=f"{doc.get('name')}:{r['channel']}",
                )
        self.query_one("#cvmfs-title", Static).update(
            line(" CernVM-FS targets   s sync   ≡ console --headless cvmfs status")
        )

    def action_sync_cvmfs(self) -> None:
        channel = self.current_channel()
        names = [d.get("name", "") for d in self.cvmfs if any(r["channel"] == channel for r in d.get("channels", []))]
        if not channel or not names:
            self.notify("no CVMFS target follows this channel", severity="warning")
            return
        for name in names:
            self.log_command("sync_cvmfs", repo=name, channel=channel)

        def run(site: Any) -> list[dict[str, Any]]:
            from core.site.cvmfs.sync import sync

            rows: list[dict[str, Any]] = []
            for name in names:
                rows += sync(site, name, [channel])
            return rows

        self.work(run, CvmfsSynced, name="cvmfs-sync", title="cvmfs sync failed", failed=lambda _: ReloadView())

    @on(CvmfsSynced)
    def _cvmfs_synced(self, event: CvmfsSynced) -> None:
        for r in event.rows:
            where = f"{r.get('target')} {r.get('channel')}"
            if r.get("ok"):
                self.notify(f"cvmfs {where}: {r.get('state')}", title="cvmfs sync")
            else:
                self.notify(f"cvmfs {where}: {r.get('error')}", title="cvmfs sync failed", severity="error")
        self.action_refresh()

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
            status = Text("ok", style="green") if not r["problem"] else cell(r["problem"], "red")
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

    def headless_context(self) -> dict[str, object]:
        return {"channel": self.current_channel()}  # roll back: one step, as b does (no --to)

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
                cell(" ".join(labels.get(r.get("release") or "", ("", ""))).strip()),
                cell(r.get("actor", "-")),
                cell(r.get("reason") or "-"),
                cell(ago(r.get("issued"), now)),
                cell(r["problem"] or "ok", "red" if r["problem"] else "green"),
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

        def cmd(reason: str) -> str:  # the ≡ line, as the reason is typed
            return actions.action("rollback").command(channel=channel, release=short(to), reason=reason)

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

        def cmd(reason: str) -> str:  # the ≡ line, as the reason is typed (``refresh --reason``)
            return actions.action("refresh_pointer").command(channel=channel, reason=reason)

        def answered(answer: Confirmed | None) -> None:
            if answer is None:
                return
            self.log_command("refresh_pointer", channel=channel, reason=answer.reason)

            def run(site: Any) -> Any:
                require_channel_version(site, channel, row["version"])
                return channel_ops.refresh(site, channel, answer.reason)

            self.work(run, _updated, name="refresh-pointer", title="refresh failed")

        self.app.push_screen(ConfirmModal(f"Renew {channel}?", lines, yes="Renew", command=cmd), answered)


def _updated(update: Any) -> ChannelUpdated:
    """A roll back or renew went through: the app says so and every open view reloads."""
    return ChannelUpdated(update, title="channel updated")
