"""Issue 18 item 7: the headless equivalent shown for an action (help, palette) is the exact,
filled-in command that does the same thing: every action's command, built on the view it applies
to on the demo site, parses as a ``console`` command line; the read-only ones run there."""

from __future__ import annotations

import io
import shlex
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import console.tui.actions as actions
from console.cli import build_parser, main
from console.tui.app import ConsoleCommands, DepotConsole
from console.tui.screens.base import BaseScreen
from console.tui.screens.help import HelpScreen

from helpers import settle

SIZE = (120, 36)
UNFILLED_OK = {
    ("releases", "promote"): "CHANNEL",
    ("release", "promote"): "CHANNEL",
    ("builds", "new_build"): "SPEC",
}  # chosen in a dialog


def parses(cmd: str) -> None:
    argv = shlex.split(cmd)
    assert argv[:2] == ["console", "--headless"], cmd
    args = build_parser().parse_args(argv[1:])
    assert getattr(args, "handler", None) is not None, cmd


def runs(site: Path, cmd: str) -> int:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([*shlex.split(cmd)[1:], "--site", str(site)])
    assert rc in (0, 1), f"{cmd}: exit {rc}: {err.getvalue()}"
    return rc


async def test_every_actions_headless_command_is_filled_in_and_runs(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    seen: dict[tuple[str, str], str] = {}
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space", "down", "down")  # one marked, the cursor on another: c compares
        await settle(pilot)

        async def visit() -> None:
            screen = app.screen
            assert isinstance(screen, BaseScreen)
            sid = screen.SCREEN_ID
            for a in actions.ACTIONS:
                if not a.applies_to(sid):
                    continue
                cmd = screen.headless_for(a)
                seen[(sid, a.name)] = cmd
                if not cmd:
                    continue
                assert "{" not in cmd and "[" not in cmd, cmd
                if (sid, a.name) in UNFILLED_OK:
                    assert UNFILLED_OK[(sid, a.name)] in cmd
                    continue
                assert not any(m in cmd.split() for m in ("ID", "A", "B", "CHANNEL", "NODESET")), cmd
                parses(cmd)
                if not a.mutating and a.name != "view_log":
                    runs(demo_site, cmd)
            # the help screen and the palette show the same commands
            app.action_help()
            await settle(pilot)
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen)
            for (hsid, name), shown in help_screen.commands.items():
                if hsid in (actions.GLOBAL, sid):
                    assert shown == seen[(sid, name)], (sid, name)
                else:
                    assert "{" not in shown and "[" not in shown, shown
            app.pop_screen()
            await settle(pilot)
            palette = {t: h for t, h, _ in ConsoleCommands(app.screen, None)._commands()}  # type: ignore[arg-type]
            for a in actions.for_screen(sid, False):
                if a.description in palette and seen.get((sid, a.name)):
                    assert palette[a.description] == seen[(sid, a.name)]

        await visit()  # releases
        await pilot.press("enter")  # a release
        await settle(pilot)
        await visit()
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("c")  # the comparison of the marked pair
        await settle(pilot)
        await visit()
        await pilot.press("escape")
        for view in ("channels", "nodes", "builds", "audit", "rollout"):
            app.action_view(view)
            await settle(pilot)
            await visit()

    assert seen[("channels", "refresh")] == "console --headless channels"
    assert seen[("nodes", "refresh")] == "console --headless nodes"
    assert seen[("rollout", "refresh")] == "console --headless rollout status"
    assert seen[("channels", "refresh_pointer")].startswith("console --headless refresh --channel ")
    assert seen[("channels", "rollback")].startswith("console --headless rollback --channel ")
    assert seen[("releases", "compare")].startswith("console --headless diff ")
    assert seen[("releases", "view('audit')")] == "console --headless audit"
    assert seen[("builds", "cancel")].startswith("console --headless builds cancel ")
    # a fleet check is stopped with ctrl+c headless: no 'builds cancel' there
    assert actions.action("cancel").command("fleetcheck", build=3) == ""
    assert actions.action("cancel").command("builds", build=3) == "console --headless builds cancel 3"
    # outside a view, a field reads as its metavar and an optional part is left out
    assert actions.action("rollback").command("channels") == "console --headless rollback --channel CHANNEL"
