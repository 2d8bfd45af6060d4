"""What every console screen shares: the header and footer, read-only filtering of actions, and
running store/database work in thread workers whose errors become notifications (same words as
the CLI, which prints ``console: <message>``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.screen import Screen

from core.errors import DepotError

from .. import actions

if TYPE_CHECKING:
    from core.site import Site

    from ..app import DepotConsole


def run_site_work(node: Any, fn: Callable[["Site"], Any], done: Callable[[Any], None] | None = None, *,
                  name: str, title: str = "", failed: Callable[[DepotError], None] | None = None) -> None:
    """Run ``fn(site)`` in a thread with a Site of its own; ``done(result)`` back on the UI thread.

    A ``DepotError`` becomes an error notification carrying its message, exactly the line the CLI
    prints; anything else is a bug, also shown (with its type) rather than crashing the console.
    """
    app: DepotConsole = node.app

    def work() -> None:
        site = app.open_site()
        try:
            result = fn(site)
        except DepotError as exc:
            app.call_from_thread(app.notify, str(exc), title=title or "error", severity="error", timeout=8)
            if failed is not None:
                app.call_from_thread(failed, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not take the console down
            app.call_from_thread(app.notify, f"{type(exc).__name__}: {exc}", title="unexpected error",
                                 severity="error", timeout=10)
            return
        finally:
            site.close()
        if done is not None:
            def deliver() -> None:
                if node.is_attached:
                    done(result)
            app.call_from_thread(deliver)

    node.run_worker(work, thread=True, name=name, group=name, exit_on_error=False)


class BaseScreen(Screen):
    """A console view: ``SCREEN_ID`` selects its bindings in the action registry."""

    SCREEN_ID = ""
    TITLE_TEXT = ""

    @property
    def console(self) -> "DepotConsole":
        return self.app  # type: ignore[return-value]

    @property
    def site(self) -> "Site":
        return self.console.site

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not actions.allowed(action, self.console.read_only):
            return False
        return True

    def work(self, fn: Callable[["Site"], Any], done: Callable[[Any], None] | None = None, *, name: str,
             title: str = "", failed: Callable[[DepotError], None] | None = None) -> None:
        run_site_work(self, fn, done, name=name, title=title, failed=failed)

    def log_command(self, action_name: str, **context: object) -> str:
        """Record (and return) the headless equivalent of an action just started."""
        cmd = actions.action(action_name).command(**context)
        if cmd:
            self.console.command_log.append(cmd)
        return cmd

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
