"""The TUI with CernVM-FS targets: the Channels view (per channel each target's state, ``s`` to
sync) and the release detail (which targets hold the release)."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import DataTable, Static

from console.tui.app import DepotConsole
from console.tui.screens.channels import ChannelsScreen
from console.tui.screens.release import ReleaseScreen
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


def meta_text(app: DepotConsole) -> str:
    return str(app.screen.query_one("#meta", Static).render())


async def test_release_detail_says_which_targets_hold_it(
    site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo, monkeypatch
) -> None:
    import core.site.cvmfs.status as cvmfs_status

    repo = cvmfs_repo
    repo.configure(site_dir)
    a = publish(site_dir, sample_tree(tmp_path / "a"), label="a")
    b = publish(site_dir, sample_tree(tmp_path / "b", "b"), label="b")
    run_console(site_dir, "cvmfs", "publish", a, check=0)
    threads: list[str] = []
    real = cvmfs_status.release_in_targets

    def spy(site, release_id):
        threads.append(threading.current_thread().name)
        return real(site, release_id)

    monkeypatch.setattr(cvmfs_status, "release_in_targets", spy)
    app = DepotConsole(site_dir, start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for rid, want in [(a, f"cvmfs  {repo.name}\n"), (b, f"cvmfs  - (not in {repo.name})\n")]:
            await app.push_screen(ReleaseScreen(rid))
            await settle(pilot)
            assert isinstance(app.screen, ReleaseScreen) and app.screen.release is not None
            assert want in meta_text(app)
            app.pop_screen()
            await settle(pilot)
    assert len(threads) == 2 and threading.main_thread().name not in threads  # in a worker, never the UI


async def test_no_targets_no_cvmfs_line_in_release_detail(site_dir: Path, tmp_path: Path) -> None:
    a = publish(site_dir, sample_tree(tmp_path / "a"), label="a")
    app = DepotConsole(site_dir, start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.push_screen(ReleaseScreen(a))
        await settle(pilot)
        assert isinstance(app.screen, ReleaseScreen) and app.screen.release is not None
        assert "cvmfs" not in meta_text(app)
