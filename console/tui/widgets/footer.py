"""Textual's footer, recomposed only when the keys it shows change, and fitted to narrow terminals."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.screen import Screen
from textual.widgets import Footer

from console.tui import textual_compat

# Below this width the footer is compact (one blank between keys, none inside) and leaves out the
# ``^p palette`` key (ctrl+p still opens it; the help screen says so): at 80 columns the widest
# views' keys (releases: five of its own, ``?``, ``:`` and ``q``) then fit with ``q Quit`` last.
NARROW = 100


class ConsoleFooter(Footer):
    """Looks like ``Footer``; cheaper to keep, and every key stays on screen at 80 columns.

    ``Footer`` throws its key widgets away and builds them again whenever the screen's bindings
    are announced as changed: every view switch, every focus move (opening the filter box,
    leaving it). Each rebuild mounts and styles a widget per key, 50-100 ms of a key press. The
    keys shown rarely change, so this footer rebuilds only when they do (or when its width
    crosses ``NARROW``, which changes what it shows).

    The blanks around each key are styled (``console.tcss``) to end a text run, never to start
    one: an SVG screenshot viewed through ``rsvg-convert`` drops a run's leading blanks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[object, ...] | None = None

    def _keys_shown(self, screen: Screen) -> tuple[object, ...]:
        """What ``compose`` draws from: each shown binding, whether it is enabled, its tooltip,
        and whether the palette key is drawn."""
        return (self.show_command_palette,) + tuple(
            (b.key, b.action, b.description, b.key_display, b.group, enabled, tooltip)
            for (_, b, enabled, tooltip) in screen.active_bindings.values()
            if b.show
        )

    def on_resize(self, event: events.Resize) -> None:
        """Compact, without the palette key, below ``NARROW`` columns; as Textual draws it above."""
        narrow = event.size.width < NARROW
        self.compact = narrow
        if self.show_command_palette == narrow:
            self.show_command_palette = not narrow
            if self.is_attached and self._bindings_ready:
                self._shown = None
                self.call_after_refresh(self.recompose)

    def bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen and screen.app.app_focus:
            shown = self._keys_shown(screen)
            if shown == self._shown:
                textual_compat.mark_footer_ready(self)
                return
            self._shown = shown
        super().bindings_changed(screen)
