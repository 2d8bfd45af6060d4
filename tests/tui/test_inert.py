"""Untrusted strings on screen are inert (issue 12, item 6, the TUI half).

A site whose release names and labels, promote reasons, node names and probe details, audit rows,
build rows and build log carry escape sequences, control characters, bidi overrides and Textual
markup. Every view shows them as ``console.render.inert`` renders them (``\\x1b``-style escapes,
markup as literal text): asserted on the cells and widgets the app holds and on the screen it
draws (its exported screenshot), and the app neither quits (``[@click=app.quit]``) nor dies on a
markup error (an unbalanced ``[/]``).
"""

from __future__ import annotations

import ast
import html
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Label, Log, Static, Tree

import core.site.channels as channel_ops
from console.render import inert, inert_text
from console.tui.app import DepotConsole
from console.tui.screens.modals import ConfirmModal, PromoteModal
from console.tui.screens.release import ReleaseScreen
from console.tui.screens.row_detail import RowDetail
from console.tui.textual_compat import notification_messages
from console.tui.widgets.cells import InertTable, as_cell, block, cell, log_lines, markup_safe
from core.site.inventory import Classified, node_row, upsert_nodes
from core.site.publish import publish
from core.site.site import Site, format_time

from helpers import init_site, make_tree, settle

SIZE = (160, 40)

#: One shape per class: set the title, clear the screen, forge a line, overwrite with CR, reorder
#: with a bidi override, style with markup, act with markup, break the markup parser.
SHAPES = [
    "t\x1b]0;title\x07",
    "c\x1b[2J",
    "n\nforged",
    "r\rhid",
    "b\u202eexe",
    "[red]x[/]",
    "[@click=app.quit]q[/]",
    "[bold",
]


def node_of(i: int) -> str:
    return f"h{i}" + NODE_SHAPES[i % len(NODE_SHAPES)]


def name_of(i: int, shape: str) -> str:
    """A release name with the shape (names refuse "/", "\\" and newlines; the markup still opens)."""
    return f"n{i}" + shape.replace("/", "").replace("\n", "\x0b")


#: Node names are checked (``core.fleet.nodeset``: no blanks, no C0 controls, and "[" is node set
#: syntax), so only the shapes that pass the check can name a node; the other columns take all.
NODE_SHAPES = ["b\u202eexe", "c\x9b2J", "d\x7f"]


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")


def _screen_lines(app: DepotConsole) -> list[str]:
    """The text of each line the app draws (its SVG screenshot, as the snapshot tests take it)."""
    svg = app.export_screenshot()
    rows: dict[int, list[tuple[float, str]]] = {}
    for x, n, t in re.findall(r'<text [^>]*?x="([\d.]+)"[^>]*?clip-path="url\(#[\w-]+-line-(\d+)\)">(.*?)</text>', svg):
        rows.setdefault(int(n), []).append((float(x), html.unescape(t)))
    return ["".join(t for _, t in sorted(parts)).replace("\xa0", " ") for _, parts in sorted(rows.items())]


def assert_screen_inert(app: DepotConsole) -> str:
    """Nothing drawn holds a control character, and the app is still running. Returns the screen."""
    assert app.is_running and app.return_code is None
    lines = _screen_lines(app)
    text = "\n".join(lines)
    assert not CONTROL.findall(text), [line for line in lines if CONTROL.search(line)]
    return text


def cells_of(table: DataTable) -> list[list[object]]:
    return [table.get_row_at(r) for r in range(table.row_count)]


def plain(value: object) -> str:
    assert isinstance(value, Text), f"a {type(value).__name__} cell is parsed as markup: {value!r}"
    return value.plain


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A site full of hostile strings (built once; the tests only read it)."""
    root = tmp_path_factory.mktemp("hostile")
    site_dir = init_site(root / "site")
    site = Site(site_dir)
    try:
        files = {f"f{i}{s}": "x" for i, s in enumerate(SHAPES) if "/" not in s}  # "/" is a path
        tree = make_tree(root / "tree", {"ok.txt": "a\n", **files})
        ids = []
        for i, shape in enumerate(SHAPES):
            site.config.set("site", "actor", f"a{i}{shape}")
            res = publish(site, name_of(i, shape), {"x86_64": tree}, label=f"l{i}{shape}")
            ids.append(res.release_id)
            site.audit(f"v{i}{shape}", f"t{i}{shape}", f"o{i}{shape}", {"why": shape})
        for i, rid in enumerate(ids):
            channel_ops.promote(site, rid, "testing", f"why{i}{SHAPES[i]}", create=True)
        channel_ops.promote(site, ids[0], "production", f"prod{SHAPES[6]}", create=True)
        now = format_time(site.now())
        nodes = [
            node_row(node_of(i), {"cpus": 4}, Classified(f"arch{i}{s}", "v", ""), {}, f"s{i}{s}", f"d{i}{s}", now)
            for i, s in enumerate(SHAPES)
        ]
        upsert_nodes(site.state, nodes)
        (site_dir / "logs").mkdir(exist_ok=True)
        log = site_dir / "logs" / "build-1.log"  # where jobs.build_paths looks
        log.write_text("".join(f"line{i} {s}\n" for i, s in enumerate(SHAPES)) + "crlf\r\nend\n")
        site.state.builds.upsert_all(
            [
                {
                    "id": 1,
                    "status": "failed",
                    "builder": "command",
                    "source": f"src{SHAPES[0]}",
                    "targets": json.dumps(["x86_64"]),
                    "options": "{}",
                    "created": now,
                    "started": now,
                    "finished": now,
                    "release": "",
                    "log_path": str(log),
                    "pid": 0,
                    "error": f"err{SHAPES[5]}",
                    "actor": "x",
                    "name": f"bn{SHAPES[6]}",
                    "label": f"bl{SHAPES[1]}",
                    "publish": 1,
                    "step": "building",
                }
            ]
        )
    finally:
        site.config.set("site", "actor", "")
        site.close()
    return {"site": site_dir, "ids": ids, "log": log.read_bytes().decode()}


def test_the_helpers_render_every_shape_inert() -> None:
    for s in SHAPES:
        assert cell(s).plain == inert(s) and not cell(s).spans
        assert block(s).plain == inert_text(s)
        assert as_cell(s).plain == inert(s)
        assert as_cell(Text(s, style="red")).plain == inert(Text(s).plain)
    styled = Text.assemble(("a\x1b", "red"), ("b", "green"))
    out = as_cell(styled)
    assert out.plain == "a\\x1bb" and [(sp.start, sp.end, sp.style) for sp in out.spans] == [
        (0, 5, "red"),
        (5, 6, "green"),
    ]
    assert cell("abcdef", width=4).plain == "abc…"
    assert log_lines("a\x1b[2Jb\r\nc\n") == ["a\\x1b[2Jb", "c"]
    assert markup_safe("[@click=app.quit]q[/]") == r"\[@click=app.quit]q\[/]"


def test_no_screen_builds_a_plain_data_table_or_a_markup_string_from_data() -> None:
    """Every table is an ``InertTable``, and no ``Static``/``Label``/``update``/tree leaf is given a
    string built from data (an f-string or a concatenation): those go through ``cell``/``block``."""
    root = Path(__file__).resolve().parents[2] / "console" / "tui"
    bad = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "cells.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            where = f"{path.relative_to(root)}:{node.lineno}"
            if name == "DataTable":
                bad.append(f"{where}: DataTable( (use InertTable)")
            if name in ("Static", "Label", "update", "add_leaf", "add") and node.args:
                if isinstance(node.args[0], (ast.JoinedStr, ast.BinOp)):
                    bad.append(f"{where}: {name}({ast.unparse(node.args[0])[:40]}) shows data unescaped")
    assert bad == []


async def test_releases_and_release_detail(hostile: dict) -> None:
    app = DepotConsole(hostile["site"], start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#releases-table", InertTable)
        rows = {plain(r[1]): r for r in cells_of(table)}
        for i, s in enumerate(SHAPES):
            assert plain(rows[inert(name_of(i, s))][2]) == inert(f"l{i}{s}")
        screen = assert_screen_inert(app)
        assert "[red]x" in screen  # the markup is shown as text, not applied
        await pilot.press("home", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReleaseScreen)
        meta = str(app.screen.query_one("#meta", Static).render())
        rel = app.screen.release
        assert inert(rel.name) in meta and inert(rel.label) in meta
        tree = app.screen.query_one("#files", Tree)
        tree.root.children[0].expand()
        await settle(pilot)
        names = [str(n.label).split("  ")[0] for n in tree.root.children[0].children]
        for i, s in enumerate(SHAPES):
            if "/" not in s:
                assert inert(f"f{i}{s}") in names, names
        assert_screen_inert(app)


async def test_channels_history_and_the_dialogs(hostile: dict) -> None:
    app = DepotConsole(hostile["site"], start="channels")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        channels = app.screen.query_one("#channels-table", InertTable)
        for row in cells_of(channels):
            assert all(isinstance(c, Text) for c in row)
        testing = next(r for r in cells_of(channels) if plain(r[0]) == "testing")
        assert plain(testing[3]) == inert(name_of(7, SHAPES[7])) and plain(testing[4]) == inert(f"l7{SHAPES[7]}")
        assert plain(testing[6]) == inert(f"a7{SHAPES[7]}")
        history = app.screen.query_one("#history-table", InertTable)
        reasons = [plain(r[5]) for r in cells_of(history)]
        assert reasons == [inert(f"prod{SHAPES[6]}")]
        await pilot.press("down")
        await settle(pilot)
        reasons = [plain(r[5]) for r in cells_of(history)]
        assert reasons == [inert(f"why{i}{s}") for i, s in reversed(list(enumerate(SHAPES)))]  # whole
        assert_screen_inert(app)
        await pilot.press("b")  # roll back testing: the dialog quotes both labels
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        lines = [str(s.render()) for s in app.screen.query(".dialog-line")]
        assert any(inert(f"l6{SHAPES[6]}") in line for line in lines), lines
        assert_screen_inert(app)
        await pilot.press("escape")
        await settle(pilot)
    app = DepotConsole(hostile["site"], start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, PromoteModal)
        title = str(app.screen.query_one(".dialog-title", Label).render())
        assert inert(app.screen.label) in title
        assert_screen_inert(app)


async def test_nodes_view(hostile: dict) -> None:
    app = DepotConsole(hostile["site"], start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#nodes-table", InertTable)
        rows = cells_of(table)
        assert len(rows) == len(SHAPES)
        got = sorted((plain(r[0]), plain(r[1]), plain(r[6])) for r in rows)
        want = sorted(
            (
                inert(f" {node_of(i)}"),
                inert(f"arch{i}{s}"),
                inert(f"s{i}{s}"),
            )
            for i, s in enumerate(SHAPES)
        )
        assert got == want
        assert notification_messages(app) == []
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#arch-chart", Static).content)  # a rich Table
        chart = console.export_text()
        for i, s in enumerate(SHAPES):
            assert inert(f"arch{i}{s}") in chart, chart
        assert_screen_inert(app)


async def test_audit_view(hostile: dict) -> None:
    app = DepotConsole(hostile["site"], start="audit")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#audit-table", InertTable)
        rows = cells_of(table)
        for i, s in enumerate(SHAPES):
            assert [inert(f"{p}{i}{s}") for p in ("a", "v", "t", "o")] in [
                [plain(r[2]), plain(r[3]), plain(r[4]), plain(r[5])] for r in rows
            ]
        assert_screen_inert(app)


async def test_the_row_detail_is_inert(hostile: dict) -> None:
    """enter on an audit row: every value whole, still inert (escaped, never markup)."""
    app = DepotConsole(hostile["site"], start="audit")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#audit-table", InertTable)
        hostile_rows = [r for r in range(table.row_count) if plain(table.get_row_at(r)[3]).startswith("v")]
        assert len(hostile_rows) == len(SHAPES)
        for row in hostile_rows:
            table.move_cursor(row=row)
            await pilot.press("enter")
            await pilot.pause()
            detail = app.screen
            assert isinstance(detail, RowDetail)
            fields = dict(detail.fields)
            actor = fields["ACTOR"].plain
            i, s = next((i, s) for i, s in enumerate(SHAPES) if actor == inert(f"a{i}{s}"))
            assert [fields[k].plain for k in ("VERB", "TARGET", "OUTCOME")] == [
                inert(f"{p}{i}{s}") for p in ("v", "t", "o")
            ]
            assert_screen_inert(app)
            await pilot.press("escape")
            await pilot.pause()
        assert_screen_inert(app)


async def test_builds_view_and_log(hostile: dict) -> None:
    app = DepotConsole(hostile["site"], start="builds")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#builds-table", InertTable)
        row = table.get_row_at(0)
        assert plain(row[3]) == inert(f"bn{SHAPES[6]}")  # whole: cut only where it is drawn
        assert plain(row[7]) == inert(f"err{SHAPES[5]}")
        detail = str(app.screen.query_one("#build-detail", Static).render())
        assert inert(f"src{SHAPES[0]}") in detail and inert(f"bl{SHAPES[1]}") in detail
        log = list(app.screen.query_one("#build-log", Log).lines)
        assert log == log_lines(hostile["log"])
        assert log[:2] == [inert_text(f"line0 {SHAPES[0]}"), inert_text(f"line1 {SHAPES[1]}")]
        assert "line2 n" in log and "forged" in log  # a newline in the log is a line end
        assert log[-2:] == ["crlf", "end"]
        assert_screen_inert(app)


async def test_notifications_are_inert(hostile: dict) -> None:
    app = DepotConsole(hostile["site"], start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for s in SHAPES:
            app.screen.notify(f"note {s}", title=f"title {s}")
        await pilot.pause()
        assert notification_messages(app)[-len(SHAPES) :] == [inert_text(f"note {s}") for s in SHAPES]
        assert_screen_inert(app)


async def test_a_table_cell_is_never_markup(hostile: dict) -> None:
    """Even a raw string given to a table is shown as its inert text (the table makes it so)."""
    app = DepotConsole(hostile["site"], start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#releases-table", InertTable)
        table.update_cell_at(Coordinate(0, 1), "[@click=app.quit]q[/]")
        table.update_cell_at(Coordinate(0, 2), "[bold")
        await pilot.pause()
        assert plain(table.get_cell_at(Coordinate(0, 1))) == "[@click=app.quit]q[/]"
        await pilot.click("#releases-table", offset=(17, 1))
        await pilot.pause()
        assert_screen_inert(app)
