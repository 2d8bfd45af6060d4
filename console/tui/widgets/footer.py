"""Textual's footer, recomposed only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer

from console.tui import textual_compat


class ConsoleFooter(Footer):
    """Looks exactly like ``Footer``; cheaper to keep.

    ``Footer`` throws its key widgets away and builds them again whenever the screen's bindings
    are announced as changed: every view switch, every focus move (opening the filter box,
    leaving it). Each rebuild mounts and styles a widget per key, 50-100 ms of a key press. The
    keys shown rarely change, so this footer rebuilds only when they do.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[object, ...] | None = None

    def _keys_shown(self, screen: Screen) -> tuple[object, ...]:
        """What ``compose`` draws from: each shown binding, whether it is enabled, its tooltip."""
        return tuple(
            (b.key, b.action, b.description, b.key_display, b.group, enabled, tooltip)
            for (_, b, enabled, tooltip) in screen.active_bindings.values()
            if b.show
        )

    def bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen and screen.app.app_focus:
            shown = self._keys_shown(screen)
            if shown == self._shown:
                textual_compat.mark_footer_ready(self)
                return
            self._shown = shown
        super().bindings_changed(screen)
