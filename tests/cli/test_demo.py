"""``console demo``: a deterministic demo site built through the core functions."""

from __future__ import annotations

import json
from pathlib import Path

import core.site.channels as channel_ops
from core.site.site import Site
from core.site.verify import verify_releases

from fixtures.demo import DEMO_NOW
from helpers import run_console


def test_demo_verb_headless_is_deterministic(demo_master: Path, tmp_path: Path) -> None:
    proc = run_console(None, "demo", str(tmp_path / "d"), "--json", env={"DEPOT_CONSOLE_NOW": DEMO_NOW}, check=0)
    doc = json.loads(proc.stdout)
    assert doc["nodes"] == 50 and doc["builds"] == 3 and len(doc["releases"]) == 6
    assert sorted(doc["channels"]) == ["production", "testing"]
    master = Site(demo_master)
    try:
        ids = [r["id"] for r in master.state.release_rows()]
        assert sorted(ids) == sorted(doc["releases"])  # same seed, same clock: same release ids
        assert doc["signing_key"] == master.signing_key_id()
    finally:
        master.close()


def test_demo_site_tells_its_story(demo_master: Path, monkeypatch) -> None:
    monkeypatch.setenv("DEPOT_CONSOLE_NOW", DEMO_NOW)
    site = Site(demo_master)
    try:
        rows = {r["channel"]: r for r in channel_ops.channel_status(site)}
        assert rows["production"]["action"] == "rollback" and rows["production"]["problem"] == ""
        history = channel_ops.history_rows(site, "production")
        assert [h["action"] for h in history] == ["promote", "promote", "promote", "rollback"]
        assert verify_releases(site, site.store.list_release_ids(), deep=False).problems == []
        arches = dict(site.state.db.execute("select arch, count(*) from nodes group by arch").fetchall())
        assert sum(arches.values()) == 50 and arches["neoverse_v1"] == 4
        assert site.state.db.execute("select count(*) from smoke_runs").fetchone()[0] > 30
        images = {r["name"]: r["images"] for r in site.state.release_rows()}
        assert all(len(json.loads(i)) in (2, 3) for i in images.values())
    finally:
        site.close()


def test_demo_refuses_an_existing_site(demo_master: Path) -> None:
    proc = run_console(None, "demo", str(demo_master), check=2)
    assert "a site already exists" in proc.stderr
