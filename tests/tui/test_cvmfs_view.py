"""The Channels view with CernVM-FS targets: per channel each target's state, and ``s`` to sync."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from console.tui.app import DepotConsole
from console.tui.screens.channels import ChannelsScreen
from console.tui.textual_compat import notification_messages

from fixtures.cvmfs import CvmfsRepo
from helpers import promote, publish, run_console, sample_tree, settle

SIZE = (120, 36)


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_channels_view_shows_target_states_and_syncs(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    repo.configure(site_dir)
    a = publish(site_dir, sample_tree(tmp_path / "a"), label="a")
    b = publish(site_dir, sample_tree(tmp_path / "b", "b"), label="b")
    promote(site_dir, a)
    repo.fail("transaction")  # the flip of b fails: the target is left behind, the failure recorded
    run_console(site_dir, "promote", b, "--channel", "production", check=1)
    repo.clear_failures()

    app = DepotConsole(site_dir, start="channels")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ChannelsScreen)
        table = app.screen.query_one("#cvmfs-table", DataTable)
        [row] = rows(table)
        assert row[:6] == ["production", repo.name, repo.name, "failed", "1", "2"]
        assert row[6] == a[7:19] and row[7].startswith(f"{repo.name}: ")  # the recorded error
        await pilot.press("s")
        await settle(pilot)
        [row] = rows(table)
        assert row[:6] == ["production", repo.name, repo.name, "in line", "2", "2"] and row[6] == b[7:19]
        assert f"console --headless cvmfs sync --repo {repo.name} --channel production" in app.command_log
        assert any(f"cvmfs {repo.name} production: in line" in n for n in notification_messages(app))
    assert (repo.depot / "channels" / "production").resolve().name == b[7:]


async def test_no_targets_no_cvmfs_table_and_no_sync_binding(site_dir: Path) -> None:
    app = DepotConsole(site_dir, start="channels")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.screen.query("#cvmfs-table")
        assert app.screen.check_action("sync_cvmfs", ()) is False
