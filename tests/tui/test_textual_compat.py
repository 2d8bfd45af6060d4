"""The Textual internals ``console.tui.textual_compat`` relies on are still there, with the shape it
assumes. When this fails after a Textual upgrade, fix ``textual_compat`` (and only it)."""

from __future__ import annotations

import inspect

from textual.app import App
from textual.cache import LRUCache
from textual.notifications import Notification
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from console.tui import textual_compat
from console.tui.app import DepotConsole
from console.tui.screens.release import ReleaseScreen


def test_overridden_hooks_still_exist() -> None:
    missing = [
        f"{cls.__name__}.{name}"
        for cls, name in textual_compat.OVERRIDDEN_HOOKS
        if not callable(getattr(cls, name, None))
    ]
    assert missing == []


def test_data_table_render_caches_and_clear() -> None:
    table = DataTable()
    for name in textual_compat.DATA_TABLE_CACHES:
        cache = getattr(table, name)
        assert isinstance(cache, LRUCache) and isinstance(cache.maxsize, int), name
    assert inspect.signature(DataTable._clear_caches).parameters.keys() == {"self"}
    textual_compat.shrink_render_caches(table, {"_line_cache": 7})
    assert table._line_cache.maxsize == 7
    table._line_cache.set("k", "v")  # type: ignore[arg-type]
    textual_compat.clear_render_caches(table)
    assert len(table._line_cache) == 0


def test_footer_bindings_ready_is_a_reactive_flag() -> None:
    descriptor = next(c.__dict__["_bindings_ready"] for c in Footer.__mro__ if "_bindings_ready" in c.__dict__)
    assert isinstance(descriptor, reactive) and descriptor._default is False
    # Footer's own bindings_changed sets it, and compose draws nothing until it is set
    assert "self._bindings_ready = True" in inspect.getsource(Footer.bindings_changed)
    assert "self._bindings_ready" in inspect.getsource(Footer.compose)


async def test_app_internals_have_the_assumed_shape() -> None:
    app = App()
    async with app.run_test() as pilot:
        stacks = app._screen_stacks
        assert isinstance(stacks, dict) and all(isinstance(s, list) for s in stacks.values())
        assert list(textual_compat.screen_stacks(app)) == list(stacks.values())
        assert isinstance(app._css_update_count, int)
        screen = Screen()
        assert screen._css_update_count == -1  # what skip_first_restyle exists to avoid
        textual_compat.skip_first_restyle(screen)
        assert screen._css_update_count == app._css_update_count
        app.notify("hello")
        await pilot.pause()
        assert all(isinstance(n, Notification) for n in app._notifications)
        assert textual_compat.notification_messages(app) == ["hello"]


def test_console_no_longer_overrides_textual_hooks_by_accident() -> None:
    """``_on_idle`` is Textual's Idle handler, ``_add_children`` a DOMNode method: the console's
    own methods must not reuse those names (both once did)."""
    assert "_on_idle" not in DepotConsole.__dict__ and hasattr(App, "_on_idle")
    assert "_add_children" not in ReleaseScreen.__dict__ and hasattr(Screen, "_add_children")


def test_no_console_class_redefines_a_textual_private() -> None:
    """No private method or class attribute of a console widget, screen or app shadows one of
    Textual's (an accidental override: Textual calls it for its own purposes)."""
    import importlib
    import pkgutil

    from textual.message_pump import MessagePump

    import console.tui

    for info in pkgutil.walk_packages(console.tui.__path__, "console.tui."):
        importlib.import_module(info.name)
    classes = {c for c in _subclasses(MessagePump) if c.__module__.startswith("console.")}
    assert DepotConsole in classes and ReleaseScreen in classes
    clashes = []
    for cls in classes:
        textual_bases = [b for b in cls.__mro__ if b.__module__.startswith("textual.")]
        for name, value in vars(cls).items():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                value = value.fget
            written_here = inspect.isfunction(value) and value.__module__ == cls.__module__
            if (
                written_here
                and name.startswith("_")
                and not name.startswith("__")
                and any(name in vars(b) for b in textual_bases)
            ):
                clashes.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    assert clashes == []


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out
