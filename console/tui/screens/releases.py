"""Releases: the catalogue, paged from SQLite; filter, open, mark two and compare, promote."""
from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Input, Static

import core.site.channels as channel_ops
from core.site.catalogue import sync_catalogue
from core.errors import Conflict

import console.tui.actions as actions
from console.render import ago, short, size
from console.tui.widgets.cells import fit
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from console.tui.widgets.paged_table import PagedTable
from console.tui.screens.base import BaseScreen, PagedView
from console.tui.screens.modals import Confirmed, PromoteModal

COLUMNS = [("ID", 14), ("NAME", 11), ("LABEL", 10), ("CREATED", 11), ("IMAGES", 21), ("SIZE", 8),
           ("CHANNELS", 18), ("SIGNATURE", 10)]


def current_channels(site: Any) -> dict[str, tuple[str, int]]:
    """channel -> (release id, version) as last accepted by this console (database, no store read)."""
    rows = site.state.db.execute(
        "select m.channel, e.release, m.version from channel_marks m join channel_events e "
        "on e.channel = m.channel and e.version = m.version")
    return {r[0]: (r[1], r[2]) for r in rows}


def channels_by_release(site: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ch, (rid, _) in sorted(current_channels(site).items()):
        out.setdefault(rid, []).append(ch)
    return out


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


def guard_version(site: Any, channel: str, expected: int | None) -> None:
    """Refuse when the channel is no longer at the version the operator confirmed against."""
    for row in channel_ops.channel_status(site):
        if row["channel"] == channel:
            if expected is not None and row["version"] != expected:
                raise Conflict(f"channel moved meanwhile: {channel} is at version {row['version']}, not "
                               f"{expected} as shown; nothing changed, look again and retry")
            return
    if expected:
        raise Conflict(f"channel moved meanwhile: {channel} has no pointer any more; nothing changed")


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
        yield Input(placeholder="filter: name, label, id prefix, image   (esc clears)", id="filter",
                    classes="filter hidden")
        yield PagedTable(COLUMNS, self.fetch, self.count, id="releases-table")
        yield Static("", id="status", classes="status")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self.table.total = self.count(self.site)
        self._status()
        self.work(self._sync, self._synced, name="sync-catalogue")

    # -- data -------------------------------------------------------------------------------
    def fetch(self, site: Any, offset: int, limit: int) -> list[tuple[str, list]]:
        now = site.now()
        out = []
        for r in site.state.release_rows(limit=limit, offset=offset, search=self.search):
            mark = "● " if r["id"] in self.marked else "  "
            images = fit(",".join(json.loads(r["images"] or "[]")), 21)
            chans = Text(", ".join(self.by_release.get(r["id"], [])), style="bold magenta")
            out.append((r["id"], [mark + short(r["id"]), r["name"], r["label"], ago(r["created"], now), images,
                                  size(r["bytes"]), chans, signature_state(site, r["signed_by"])]))
        return out

    def normalize(self, text: str) -> str:
        return text.strip().lower().removeprefix("sha256:")

    def count(self, site: Any) -> int:
        if not self.search:
            return site.state.db.execute("select count(*) from releases").fetchone()[0]
        s = f"%{self.search}%"
        return site.state.db.execute(
            "select count(*) from releases where name like ? or label like ? or id like ? or images like ?",
            [s, s, f"sha256:{self.search}%", s]).fetchone()[0]

    def filtered(self) -> None:
        self._status()

    def _status(self) -> None:
        n = self.table.total if self.table.total is not None else self.count(self.site)
        marked = ", ".join(short(m) for m in self.marked) or "none (space marks, c compares two)"
        filt = f"   filter {self.search!r}" if self.search else ""
        self.query_one("#status", Static).update(f" {n} release(s){filt}   marked: {marked}")

    @staticmethod
    def _sync(site: Any) -> tuple[list[str], dict]:
        problems = sync_catalogue(site)
        try:
            channel_ops.channel_status(site)  # verifies pointers and raises the marks
        except Exception:  # noqa: BLE001 - the table still shows the catalogue
            pass
        return problems, channels_by_release(site)

    def _synced(self, result: tuple[list[str], dict]) -> None:
        problems, by_release = result
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
        self.work(self._sync, self._synced, name="sync-catalogue")

    def on_data_table_row_selected(self, event: PagedTable.RowSelected) -> None:
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
        return tuple(self._oldest_first(picks))  # type: ignore[return-value]

    def _oldest_first(self, ids: list[str]) -> list[str]:
        created = {r[0]: r[1] for r in self.site.state.db.execute(
            f"select id, created from releases where id in ({','.join('?' * len(ids))})", ids)}
        return sorted(ids, key=lambda i: (created.get(i, ""), i))

    def action_compare(self) -> None:
        pair = self.compare_pair()
        if pair is None:
            self.notify("mark two releases with space (or one, and put the cursor on the other), then press c",
                        severity="warning")
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


def start_promote(screen: BaseScreen, rid: str) -> None:
    """Ask which channel and why (default No), then promote in a worker; show conflicts as errors."""
    site = screen.site
    row = site.state.db.execute("select name, label from releases where id = ?", [rid]).fetchone()
    label = f"{row[0]} {row[1]}" if row else ""
    names = {r[0]: f"{r[0]} {r[1]}" for r in site.state.db.execute("select id, name || ' ' || label from releases")}
    current = current_channels(site)
    choices = {ch: (f"{short(r)} {names.get(r, '')}", str(v)) for ch, (r, v) in current.items()}
    for ch in ("testing", "production"):
        choices.setdefault(ch, ("(none)", "0"))

    def confirmed(answer: Confirmed | None) -> None:
        if answer is None:
            screen.notify("promote cancelled: nothing changed")
            return
        channel, reason = answer.choice, answer.reason
        expected = current.get(channel, (None, None))[1]
        cmd = screen.log_command("promote", release=short(rid), channel=channel, reason=reason)

        def run(s: Any) -> Any:
            guard_version(s, channel, expected)
            return channel_ops.promote(s, rid, channel, reason)

        def done(update: Any) -> None:
            from console.verbs.channel_verbs import _update_text

            screen.notify(f"{_update_text(update)}\n≡ {cmd}", title="promoted" if update.changed else "no change")
            refresh_all(screen)

        screen.work(run, done, name="promote", title="promote failed")

    screen.app.push_screen(PromoteModal(rid, label, choices), confirmed)


def refresh_all(screen: BaseScreen) -> None:
    """Ask every mounted view to reload after a state change."""
    for s in screen.app.screen_stack:
        if hasattr(s, "action_refresh"):
            s.action_refresh()
    for mode_screen in screen.app.mounted_views():  # type: ignore[attr-defined]
        if mode_screen not in screen.app.screen_stack and hasattr(mode_screen, "action_refresh"):
            mode_screen.action_refresh()
