"""Issue 16 item 4: the promote dialog lists the channel policy's unmet checks and pending
approvals (computed in a worker) and refuses Promote while a check is unmet, unless the policy
lets every unmet one be waived and an override reason is typed (then it promotes with ``override``)."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import Input, Select, Static

import console.tui.promote as promote_mod
import core.site.channels as channel_ops
from console.tui.app import DepotConsole
from console.tui.screens.modals import PromoteModal
from console.tui.textual_compat import notification_messages
from core.site.site import Site

from helpers import settle

SIZE = (120, 40)


def production(site_dir: Path) -> dict:
    site = Site(site_dir)
    try:
        return next(r for r in channel_ops.channel_status(site) if r["channel"] == "production")
    finally:
        site.close()


def write_policy(site_dir: Path, body: str) -> None:
    with (site_dir / "console.toml").open("a") as fh:
        fh.write(f"\n[channels.production]\n{body}\n")


async def open_promote(pilot, channel: str = "production") -> PromoteModal:  # noqa: ANN001
    """``p``, then pick ``channel`` (the dialog picks none by itself) and let its policy check land."""
    await pilot.press("p")
    await settle(pilot)
    modal = pilot.app.screen
    assert isinstance(modal, PromoteModal)
    modal.query_one("#channel", Select).value = channel
    await settle(pilot)
    return modal


def policy_text(modal: PromoteModal) -> str:
    return str(modal.query_one("#policy", Static).render())


async def test_unmet_checks_are_listed_from_a_worker_and_an_override_reason_waives_them(
    demo_site: Path, monkeypatch
) -> None:
    write_policy(demo_site, 'require = ["soak"]\nsoak_hours = 100000\noverride = ["soak"]')
    threads: list[bool] = []
    real = promote_mod.assess

    def spy(site, release, channel):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread() is threading.main_thread())
        return real(site, release, channel)

    monkeypatch.setattr(promote_mod, "assess", spy)
    before = production(demo_site)
    app = DepotConsole(demo_site, start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        modal = await open_promote(pilot)
        assert modal.channel == "production"
        assert threads and not any(threads)  # evaluated, never on the UI thread
        text = policy_text(modal)
        assert "policy of production: 1 of 1 check(s) unmet:" in text
        assert "✗ soak: " in text and "of the 100000 h required" in text
        assert "an override reason waives them" in text
        override = modal.query_one("#override", Input)
        assert not override.has_class("hidden")
        await pilot.click("#reason")
        await pilot.press(*"fix")
        await pilot.click("#yes")  # no override reason: refused, the dialog stays
        await settle(pilot)
        assert app.screen is modal
        assert any("type an override reason to waive them" in n for n in notification_messages(app))
        assert production(demo_site)["version"] == before["version"]
        await pilot.click("#override")
        await pilot.press(*"hotfix")
        await pilot.click("#yes")
        await settle(pilot)
        assert not isinstance(app.screen, PromoteModal)
        after = production(demo_site)
        assert after["version"] == before["version"] + 1
        assert after["reason"] == "fix; override (soak): hotfix"
        assert any(c.endswith("--reason fix --override hotfix") for c in app.command_log), app.command_log


async def test_a_check_the_policy_does_not_let_waive_refuses_the_promote(demo_site: Path) -> None:
    write_policy(demo_site, 'require = ["soak"]\nsoak_hours = 100000')
    before = production(demo_site)
    app = DepotConsole(demo_site, start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        modal = await open_promote(pilot)
        text = policy_text(modal)
        assert "✗ soak: " in text and "(no override)" in text
        assert "refused: the policy lets no override waive soak" in text
        assert modal.query_one("#override", Input).has_class("hidden")
        await pilot.click("#yes")
        await settle(pilot)
        assert app.screen is modal
        assert production(demo_site)["version"] == before["version"]
