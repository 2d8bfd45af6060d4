"""Issue 18 item 12: at 80x24 (and 120x36) every key of every view's footer is on screen, none
under another (the ``^p palette`` key is docked over the right end when it is shown), ``q Quit``
and ``? Keys`` included; the help screen's footer and its table are not clipped either."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.geometry import Region
from textual.widgets import Static
from textual.widgets._footer import FooterKey

import console.tui.actions as actions
from console.tui.app import DepotConsole
from console.tui.screens.base import BaseScreen
from console.tui.screens.help import HelpScreen

from helpers import press_settled, settle

SIZES = [(80, 24), (120, 36)]
# (screen id, the view it starts on, keys that open it)
SCREENS = [
    ("releases", "releases", ()),
    ("release", "releases", ("enter",)),
    ("compare", "releases", ("space", "down", "down", "space", "c")),
    ("channels", "channels", ()),
    ("nodes", "nodes", ()),
    ("builds", "builds", ()),
    ("audit", "audit", ()),
    ("rollout", "rollout", ()),
]


def footer_keys(app: DepotConsole) -> list[FooterKey]:
    return sorted(app.screen.query(FooterKey), key=lambda k: k.region.x)


def shown(keys: list[FooterKey]) -> list[tuple[str, str]]:
    return [(k.key_display, k.description) for k in keys]


def assert_on_screen(app: DepotConsole, keys: list[FooterKey]) -> None:
    """Each key lies inside the screen's last line, whole, and no key covers another."""
    width, height = app.size
    screen = Region(0, 0, width, height)
    for k in keys:
        r = k.region
        assert r.width >= len(k.key_display) + len(k.description), (k.key_display, k.description, r)
        assert screen.contains_region(r) and r.y == height - 1, (k.key_display, k.description, r, app.size)
    for left, right in zip(keys, keys[1:]):
        assert left.region.right <= right.region.x, (shown([left, right]), left.region, right.region)


def expected(app: DepotConsole) -> set[tuple[str, str]]:
    """The (key, description) pairs the footer must show: each binding shown that is active on
    the screen now (its own, the focused widget's, the global ones)."""
    return {
        (app.get_key_display(b.binding), b.binding.description)
        for b in app.screen.active_bindings.values()
        if b.binding.show
    }


def registry(sid: str, read_only: bool = False) -> set[tuple[str, str]]:
    """The footer keys the action registry gives ``sid`` (``actions.ACTIONS``), but ``enter``:
    the focused table takes it (it opens a row there, it is no footer key)."""
    return {
        (a.key_display or a.key, a.description)
        for a in actions.ACTIONS
        if a.applies_to(sid) and a.show and not a.cvmfs and actions.allowed(a.name, read_only) and a.key != "enter"
    }


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_footer_key_of_every_view_is_on_screen(demo_site: Path, size: tuple[int, int]) -> None:
    for sid, start, keys in SCREENS:
        app = DepotConsole(demo_site, start=start)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await press_settled(pilot, *keys)
            assert isinstance(app.screen, BaseScreen) and app.screen.SCREEN_ID == sid
            keys_shown = footer_keys(app)
            pairs = set(shown(keys_shown))
            assert ("q", "Quit") in pairs and ("?", "Keys") in pairs, (sid, pairs)
            assert expected(app) <= pairs and registry(sid) <= pairs, (
                sid,
                expected(app) - pairs,
                registry(sid) - pairs,
            )
            assert ("^p", "palette") in pairs if size[0] >= 100 else ("^p", "palette") not in pairs
            assert_on_screen(app, keys_shown)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_help_screen_is_not_clipped(demo_site: Path, size: tuple[int, int]) -> None:
    for _, start, keys in SCREENS:
        app = DepotConsole(demo_site, start=start)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await press_settled(pilot, *keys)
            await pilot.press("question_mark")
            await settle(pilot)
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen)
            keys_shown = footer_keys(app)
            assert ("esc", "Close") in shown(keys_shown)  # q and ? close the help too
            assert_on_screen(app, keys_shown)
            table = help_screen.query_one("#help-table", Static)
            assert table.region.right <= size[0]
            lines = table.render_lines(Region(0, 0, table.size.width, table.virtual_size.height))
            text = "\n".join(Text.assemble(*[(s.text, s.style) for s in strip]).plain for strip in lines)
            for description in help_screen.listed:  # each action's name whole, none cut with '…'
                assert description in text, (description, size)
            assert "…" not in text


async def test_the_footer_of_a_read_only_console_fits_too(demo_site: Path) -> None:
    app = DepotConsole(demo_site, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys_shown = footer_keys(app)
        pairs = set(shown(keys_shown))
        assert registry("releases", read_only=True) <= pairs and ("p", "Promote") not in pairs
        assert_on_screen(app, keys_shown)


def test_read_only_stays_on_an_80_column_header_whatever_the_store_url() -> None:
    """READ-ONLY sits next to the title: the header is one line high, so whatever a long store URL
    pushes past 80 columns is cut, and READ-ONLY must not be in it."""
    from rich.console import Console

    from console.tui.widgets.header import header_text

    text = header_text("Releases", "demo", "https://depot.example.org/very/long/store/path/", "44d34ce655ca", True)
    console = Console(width=80, record=True, color_system=None)
    console.print(text)
    lines = console.export_text().splitlines()
    assert "READ-ONLY" in lines[0] and "READ-ONLY" not in "".join(lines[1:])
