"""The Textual console: ``console`` with no verb opens it on a site.

Views (Textual modes): releases, channels, nodes, builds, audit; detail screens (a release, a
comparison, a fleet check) are pushed on top and ``esc`` goes back. Bindings, the help screen and
the command palette all come from ``console.tui.actions``. Store, database and SSH work runs in
workers (``screens.base.run_site_work``), each with a ``Site`` of its own, which post their
results back as messages (``console.tui.messages``); the UI thread only pages small windows of
rows out of SQLite. A change that every view shows (a channel moved) reaches the app as a
``ChannelUpdated`` message, and the app asks every open view to reload.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import App, SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

import console.tui.actions as actions
from console.render import channel_update_text, inert, inert_text, short
from console.tui import textual_compat
from console.tui.messages import ChannelUpdated, FleetCheckRecorded, ReloadView
from console.tui.screens.base import BaseScreen
from console.tui.widgets.cells import markup_safe
from core.site.site import Site, open_site, system_clock


class ConsoleCommands(Provider):
    """The palette: every registry action that applies on the current screen now, the views, and
    ``compare`` with each release when on the releases view."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        from console.tui.screens.releases import ReleasesScreen

        app: DepotConsole = self.app  # type: ignore[assignment]
        screen = self.screen
        sid = screen.SCREEN_ID if isinstance(screen, BaseScreen) else ""
        out: list[tuple[str, str, Callable[[], Any]]] = []
        for a in actions.for_screen(sid, app.read_only):
            if a.name in ("command_palette", "help", "jump", "quit", "back") or a.name.startswith("view("):
                continue
            if GLOBAL_SCREEN_ONLY(a) or screen.check_action(a.name, ()) is False:
                continue
            cmd = screen.headless_for(a) if isinstance(screen, BaseScreen) else a.command(sid)
            out.append((a.description, cmd or a.description, partial(screen.run_action, a.name)))
        for v in actions.VIEWS:
            out.append((f"View: {v}", f"jump to the {v} view", partial(app.action_view, v)))
        if isinstance(screen, ReleasesScreen):
            cur = screen.table.current_key
            if cur:
                for r in app.site.state.releases.rows(limit=50):
                    rid, name, label = r["id"], r["name"], r["label"]
                    if rid != cur:
                        out.append(
                            (
                                f"Compare {short(cur)} with {short(rid)} {name} {label}",
                                f"console --headless diff {short(rid)} {short(cur)} --files",
                                partial(screen.open_compare, *screen.oldest_first([cur, rid])),
                            )
                        )
        return out

    async def discover(self) -> Hits:
        for title, help_text, cb in self._commands():
            yield DiscoveryHit(markup_safe(title), cb, help=markup_safe(help_text))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, cb in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(markup_safe(title)), cb, help=markup_safe(help_text))


def GLOBAL_SCREEN_ONLY(a: actions.Action) -> bool:  # noqa: N802 - reads as a predicate in the loop
    return actions.GLOBAL in a.screens


WARM_VIEWS = ("nodes", "channels", "audit")  # composed off-screen after start-up (builds polls: not)
IDLE_S = 0.5  # no key for this long: the operator is reading, time for deferred work
IDLE_CHECK_S = 0.1
FULL_GC_EVERY = 1000  # young-generation-1 collections between full ones (CPython's default: 10)


def _view(name: str) -> Callable[[], Screen]:
    def make() -> Screen:
        if name == "releases":
            from console.tui.screens.releases import ReleasesScreen

            return ReleasesScreen()
        if name == "channels":
            from console.tui.screens.channels import ChannelsScreen

            return ChannelsScreen()
        if name == "nodes":
            from console.tui.screens.nodes import NodesScreen

            return NodesScreen()
        if name == "builds":
            from console.tui.screens.builds import BuildsScreen

            return BuildsScreen()
        if name == "rollout":
            from console.tui.screens.rollout import RolloutScreen

            return RolloutScreen()
        from console.tui.screens.audit import AuditScreen

        return AuditScreen()

    return make


class DepotConsole(App):
    """The console on one site."""

    CSS_PATH = "console.tcss"
    TITLE = "depot-console"
    MODES = {v: _view(v) for v in actions.VIEWS}
    BINDINGS = actions.global_bindings()
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        site_dir: Path,
        read_only: bool = False,
        *,
        clock: Callable[[], datetime] = system_clock,
        start: str = "releases",
    ) -> None:
        super().__init__()
        self.site_dir = Path(site_dir)
        self.read_only = read_only
        self.clock = clock
        self.site = open_site(self.site_dir, clock=clock, read_only=read_only)
        self.start_view = start
        self.command_log: list[str] = []
        self._gc_thresholds: tuple[int, int, int] | None = None  # CPython's, while ours are set
        self._last_key = time.monotonic()
        self._to_warm = [v for v in WARM_VIEWS if v != start]
        self._refreeze = False
        key = self.site.signing_key_id()
        self.site_info = {
            "name": self.site.name,
            "store": self.site.config.site.store,
            "key": short(key, 12) if key else "",
        }

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification (a screen's or a widget's ``notify`` lands here) is inert: its text
        often quotes data (a release label, an error naming a node), so it is never parsed as
        markup and its control characters are shown as escapes; ``markup`` is ignored."""
        super().notify(inert_text(str(message)), title=inert(title), severity=severity, timeout=timeout, markup=False)

    def open_site(self) -> Site:
        """A Site of its own for a worker thread (SQLite connections are not shared across threads)."""
        return Site(self.site_dir, clock=self.clock, read_only=self.read_only)

    def on_mount(self) -> None:
        self.switch_mode(self.start_view)
        self.call_after_refresh(self._freeze_startup_objects)
        self.set_interval(IDLE_CHECK_S, self._idle_work, name="idle-work")

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
        await super().on_event(event)

    def _idle_work(self) -> None:
        """Work kept out of key presses, done once no key has come for a moment (the operator
        reads): compose the next view off-screen, else collect garbage. One step per pause.
        Nothing once the app is shutting down: a view opened then would add a screen stack while
        Textual closes them (``RuntimeError: dictionary changed size during iteration``)."""
        if not self.is_running or time.monotonic() - self._last_key < IDLE_S:
            return
        if self._to_warm and len(self.screen_stack) == 1:
            self._warm(self._to_warm.pop(0))
            self._refreeze = True
        elif self._refreeze and not self._to_warm:
            self._refreeze = False
            self._freeze_startup_objects()  # the views composed since are long-lived too
        elif gc.get_count()[2]:
            gc.collect()  # the full collection the thresholds keep out of key presses

    def _warm(self, view: str) -> None:
        """Compose ``view`` off-screen, so the first switch to it only lays out and paints.

        Opening a view for the first time builds its widgets and styles them (~150 ms for the
        nodes view). ``switch_mode`` there and straight back, inside one batch update: the view's
        screen is created and mounted in its mode's stack but never drawn (Textual lays out and
        paints only the current screen); its rows load as on a first visit.
        """
        here = self.current_mode
        try:
            if self.get_screen_stack(view):
                return  # opened already
        except KeyError:
            pass
        with self.batch_update():
            self.switch_mode(view)
            self.switch_mode(here)

    def _freeze_startup_objects(self) -> None:
        """Move everything alive after start-up (modules, classes, styles, composed views) out of
        the cyclic garbage collector's sight, and keep full collections out of key presses.

        Each DataTable repaint leaves cyclic garbage (Textual's strips). A full collection that
        walks the start-up objects costs a key press 50-100 ms, and CPython starts one as soon as
        the objects that survived young collections reach a quarter of the (small, once frozen)
        old generation: often, while scrolling. So full collections wait for many more young ones
        (``gc.set_threshold``), and ``_idle_work`` runs them between key presses instead.
        """
        gc.collect()
        gc.freeze()
        if self._gc_thresholds is None:
            self._gc_thresholds = gc.get_threshold()
            young, middle, _ = self._gc_thresholds
            gc.set_threshold(young, middle, FULL_GC_EVERY)

    def on_unmount(self) -> None:
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)  # the process outlives the app (tests)
            self._gc_thresholds = None
        self.site.close()

    def mounted_views(self) -> Iterable[Screen]:
        """Every screen of every mode that has been opened (for refresh after a change)."""
        for stack in textual_compat.screen_stacks(self):
            yield from stack

    @on(ChannelUpdated)
    def _channel_updated(self, event: ChannelUpdated) -> None:
        """A worker promoted, rolled back or renewed: say so, and have every open view reload."""
        text = channel_update_text(event.update)
        self.notify(f"{text}\n≡ {event.command}" if event.command else text, title=event.title)
        self.reload_views()

    def reload_views(self, *, only: tuple[str, ...] = ()) -> None:
        """Post ``ReloadView`` to every open screen (screens that show nothing changeable ignore it),
        or to the open views whose ``SCREEN_ID`` is in ``only``."""
        for screen in self.mounted_views():
            if not only or getattr(screen, "SCREEN_ID", "") in only:
                screen.post_message(ReloadView())

    @on(FleetCheckRecorded)
    def _fleet_check_recorded(self, _: FleetCheckRecorded) -> None:
        """A fleet check is in the inventory: the Nodes views show what the nodes reported."""
        self.reload_views(only=("nodes",))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return actions.allowed(action, self.read_only)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for cmd in super().get_system_commands(screen):
            if cmd.title in ("Quit", "Keys", "Theme"):
                yield cmd

    # -- global actions ---------------------------------------------------------------------
    def action_view(self, name: str) -> None:
        if name in actions.VIEWS:
            self.switch_mode(name)

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(origin=self.screen))

    def action_jump(self) -> None:
        from console.tui.screens.modals import JumpModal

        def go(view: str | None) -> None:
            if view:
                self.action_view(view)

        self.push_screen(JumpModal(), go)

    def action_back(self) -> None:
        """``esc``: a console view decides (clear a filter first, else go back)."""
        if isinstance(self.screen, BaseScreen):
            self.screen.action_back()
        elif len(self.screen_stack) > 1:
            self.pop_screen()


def run_app(site_dir: Path, read_only: bool) -> int:
    """Open the console on ``site_dir`` (NotFound, with the CLI's words, if there is no site)."""
    app = DepotConsole(site_dir, read_only)
    app.run()
    return app.return_code or 0
