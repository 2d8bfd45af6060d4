"""Channels: promote, rollback by hash, refresh, history, and every pointer rejection rule.

Attacks are played the way an attacker with write access to the store would: by writing bytes
into ``channels/`` (an old pointer copied back, another channel's pointer, a pointer signed twice
by one key). Time is injected (``Site(clock=…)`` in process, ``DEPOT_CONSOLE_NOW`` for the CLI),
never slept. Races run real ``console`` processes released together by a stdin barrier.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import core.site.channels as ch
from core.errors import BadInput, Conflict, NotFound, TrustError
from core.model.digest import canonical_json, digest_bytes
from core.site.site import Site, format_time
from core.store.base import channel_history_path, channel_path, release_path
from core.trust.signing import CHANNEL_TYPE, RELEASE_TYPE, TrustSet, generate_key, load_key, make_envelope

from helpers import CONSOLE, REPO

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# -- helpers ---------------------------------------------------------------------------------
class Clock:
    """An injectable clock: ``site.now()`` returns ``clock.now``."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


EMPTY_TREE = canonical_json({"entries": []})


def release_payload(label: str, name: str = "app") -> bytes:
    """A valid release manifest whose one image is the empty tree (cheap, and ``verify`` passes)."""
    return canonical_json(
        {
            "type": "depot-release",
            "schema": 1,
            "name": name,
            "label": label,
            "created": "2026-01-01T00:00:00Z",
            "parent": None,
            "builder": {"kind": "command"},
            "source": {"files": {}, "packages": []},
            "images": {"x86_64": {"root": digest_bytes(EMPTY_TREE), "files": 0, "bytes": 0, "cpu_target": "generic"}},
        }
    )


def add_release(site: Site, label: str, key=None) -> str:
    """Sign a release payload with the site key (or ``key``) and write it into the store."""
    payload = release_payload(label)
    rid = digest_bytes(payload)
    site.store.put_object(digest_bytes(EMPTY_TREE), EMPTY_TREE)
    site.store.write_file(release_path(rid), make_envelope(RELEASE_TYPE, payload, [key or site.signing_key]))
    return rid


def colliding_releases(site: Site) -> tuple[str, str]:
    """Two releases whose ids share their first 4 hex characters (birthday search on payloads)."""
    seen: dict[str, str] = {}
    i = 0
    while True:
        label = f"collide-{i}"
        prefix = digest_bytes(release_payload(label))[7:11]
        if prefix in seen:
            return add_release(site, seen[prefix]), add_release(site, label)
        seen[prefix] = label
        i += 1


def pointer_envelope(keys, **fields) -> bytes:
    """A channel pointer envelope with the given payload fields, signed by ``keys``."""
    doc = {
        "type": "depot-channel",
        "schema": 1,
        "channel": "production",
        "version": 1,
        "release": "sha256:" + "a" * 64,
        "previous": None,
        "action": "promote",
        "reason": "",
        "actor": "mallory@evil",
        "issued": format_time(T0),
        "expires": format_time(T0 + timedelta(days=30)),
    }
    doc.update(fields)
    return make_envelope(CHANNEL_TYPE, canonical_json(doc), keys)


def console_cmd() -> list[str]:
    """This checkout's console (not whichever one is pip-installed)."""
    return list(CONSOLE)


def cli(root: Path, *args: str, now: datetime | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEPOT_CONSOLE_SITE=str(root))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DEPOT_CONSOLE_NOW", None)
    if now is not None:
        env["DEPOT_CONSOLE_NOW"] = format_time(now)
    return subprocess.run([*console_cmd(), *args], env=env, capture_output=True, text=True, timeout=120)


def cli_json(root: Path, *args: str, now: datetime | None = None) -> tuple[int, object]:
    p = cli(root, *args, "--json", now=now)
    return p.returncode, json.loads(p.stdout)


def store_root(site: Site) -> Path:
    return Path(site.store_location)


def history_files(site: Site, channel: str) -> list[str]:
    return site.store.list_files(f"channels/{channel}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(tmp_path: Path, clock: Clock):
    Site.init(tmp_path / "site").close()
    s = Site(tmp_path / "site", clock=clock)
    yield s
    s.close()


@pytest.fixture
def three(site: Site) -> list[str]:
    return [add_release(site, f"r{i}") for i in range(3)]


# -- verify_pointer: the pure function nodes use too -------------------------------------------
@pytest.fixture
def keys(tmp_path: Path):
    k1, k2, k3 = (generate_key(tmp_path / f"k{i}.pem") for i in range(3))
    trust = TrustSet()
    trust.add(k1.public, name="one")
    trust.add(k2.public, name="two")
    return k1, k2, k3, trust


def test_verify_pointer_accepts_and_reports(keys):
    k1, _, _, trust = keys
    data = pointer_envelope([k1], version=3)
    p = ch.verify_pointer(data, "production", trust, 2, None, T0)
    assert (p.channel, p.version, p.action, p.signed_by) == ("production", 3, "promote", (k1.id,))
    assert p.digest == digest_bytes(data)
    # the same bytes again (a node re-reading the current pointer) are fine
    assert ch.verify_pointer(data, "production", trust, 3, digest_bytes(data), T0).version == 3


@pytest.mark.parametrize(
    "rule, build, args",
    [
        ("replay", lambda k: pointer_envelope([k], version=7), (8, None)),
        ("same version", lambda k: pointer_envelope([k], version=8, reason="other"), (8, "sha256:" + "b" * 64)),
        ("channel mismatch", lambda k: pointer_envelope([k], channel="testing"), (None, None)),
        ("expired", lambda k: pointer_envelope([k], expires=format_time(T0)), (None, None)),
        ("malformed", lambda k: pointer_envelope([k], version="8"), (None, None)),
        ("malformed", lambda k: b"{not json", (None, None)),
    ],
)
def test_verify_pointer_rules(keys, rule, build, args):
    k1, _, _, trust = keys
    with pytest.raises(ch.PointerRejected) as exc:
        ch.verify_pointer(build(k1), "production", trust, *args, T0)
    assert exc.value.rule == rule and str(exc.value).startswith(rule + ": ")
    assert exc.value.exit_code == 4


def test_verify_pointer_replay_message(keys):
    k1, _, _, trust = keys
    with pytest.raises(TrustError, match=r"^replay: production pointer version 7 is older than accepted version 8$"):
        ch.verify_pointer(pointer_envelope([k1], version=7), "production", trust, 8, None, T0)


def test_verify_pointer_keys_and_threshold(keys):
    k1, k2, k3, trust = keys
    with pytest.raises(ch.PointerRejected) as exc:
        ch.verify_pointer(pointer_envelope([k3]), "production", trust, None, None, T0)
    assert exc.value.rule == "untrusted"
    trust.keys[k2.id].revoked = True
    with pytest.raises(ch.PointerRejected) as exc:
        ch.verify_pointer(pointer_envelope([k2]), "production", trust, None, None, T0)
    assert exc.value.rule == "revoked"
    trust.keys[k2.id].revoked = False
    trust.thresholds["channel"] = 2
    with pytest.raises(ch.PointerRejected) as exc:  # two signatures, one key: counts once
        ch.verify_pointer(pointer_envelope([k1, k1]), "production", trust, None, None, T0)
    assert exc.value.rule == "threshold" and "1 of 2" in str(exc.value)
    p = ch.verify_pointer(pointer_envelope([k1, k2]), "production", trust, None, None, T0)
    assert set(p.signed_by) == {k1.id, k2.id}


# -- promote / rollback / refresh in process --------------------------------------------------
def test_promote_rollback_refresh_pointers(site: Site, three: list[str], clock: Clock):
    a, b, c = three
    u1 = ch.promote(site, a[7:15], "production", "first", create=True)
    assert u1.to_json() == {"channel": "production", "version": 1, "release": a, "previous": None, "action": "promote"}
    ch.promote(site, b, "production", create=True)
    ch.promote(site, c, "production", create=True)
    clock.now += timedelta(hours=1)
    u = ch.rollback(site, "production", to=a[7:11], reason="bad build")
    assert u.to_json() == {"channel": "production", "version": 4, "release": a, "previous": c, "action": "rollback"}
    p = u.pointer
    assert (p.reason, p.actor, p.issued) == ("bad build", site.actor, format_time(clock.now))
    assert p.expires == format_time(clock.now + timedelta(days=30))
    # current and history hold the same bytes; versions are contiguous
    assert site.store.read_file(channel_path("production")) == site.store.read_file(
        channel_history_path("production", 4)
    )
    assert history_files(site, "production") == ["1.json", "2.json", "3.json", "4.json"]
    # refresh: version 5, same release, fresh expiry
    clock.now += timedelta(days=29)
    r = ch.refresh(site, "production")
    assert (r.pointer.version, r.pointer.release, r.pointer.previous, r.pointer.action) == (5, a, a, "refresh")
    assert r.pointer.expires == format_time(clock.now + timedelta(days=30))
    assert ch.verify_channels(site) == []


def test_rollback_noop_and_refusals(site: Site, three: list[str]):
    a, b, c = three
    ch.promote(site, a, "production", create=True)
    ch.promote(site, b, "production", create=True)
    u = ch.rollback(site, "production", to=b)
    assert not u.changed and u.to_json()["action"] == "none" and u.to_json()["version"] == 2
    assert "already points at" in u.message
    assert history_files(site, "production") == ["1.json", "2.json"]
    with pytest.raises(BadInput, match="was never on channel production: use promote"):
        ch.rollback(site, "production", to=c)
    with pytest.raises(NotFound, match=r"unknown channel 'testing' \(known: production\)"):
        ch.rollback(site, "testing", to=a)
    with pytest.raises(BadInput, match="only 1 earlier release"):
        ch.rollback(site, "production", steps=2)
    assert history_files(site, "production") == ["1.json", "2.json"]


def test_rollback_steps_walks_distinct_releases(site: Site, three: list[str]):
    a, b, c = three
    for rid in (a, b, a, c):  # history releases: a b a c  -> distinct before c: a, b
        ch.promote(site, rid, "production", create=True)
    assert ch.rollback(site, "production", steps=2).pointer.release == b
    # now current b; walking back skips b itself: c, a
    assert ch.rollback(site, "production").pointer.release == c


def test_promote_same_release_is_noop(site: Site, three: list[str]):
    ch.promote(site, three[0], "production", create=True)
    u = ch.promote(site, three[0], "production", create=True)
    assert not u.changed and "use 'refresh'" in u.message
    assert history_files(site, "production") == ["1.json"]


def test_lifetime_from_config(site: Site, three: list[str], clock: Clock):
    site.config.set("channels", "lifetime_days", 2)
    p = ch.promote(site, three[0], "testing", create=True).pointer
    assert p.expires == format_time(clock.now + timedelta(days=2))
    assert ch.channel_status(site)[0]["seconds_left"] == 2 * 86400
    with pytest.raises(BadInput, match="lifetime_days"):  # refused when set, as when loaded
        site.config.set("channels", "lifetime_days", 0)


def test_records_events_and_audit(site: Site, three: list[str]):
    a, b, _ = three
    ch.promote(site, a, "production", "initial", create=True)
    ch.promote(site, b, "production", "new build", create=True)
    ch.rollback(site, "production", to=a, reason="bad build")
    ch.refresh(site, "production")
    events = ch.channel_events(site, "production")
    assert [(e["version"], e["action"], e["release"], e["reason"], e["actor"]) for e in events] == [
        (4, "refresh", a, "refresh", site.actor),
        (3, "rollback", a, "bad build", site.actor),
        (2, "promote", b, "new build", site.actor),
        (1, "promote", a, "initial", site.actor),
    ]
    audit = [r for r in site.state.audit_rows() if r["verb"] in ("promote", "rollback", "refresh")]
    assert [(r["verb"], r["target"], r["outcome"], r["actor"]) for r in reversed(audit)] == [
        ("promote", "production", "ok", site.actor),
        ("promote", "production", "ok", site.actor),
        ("rollback", "production", "ok", site.actor),
        ("refresh", "production", "ok", site.actor),
    ]
    assert json.loads(audit[1]["detail"])["reason"] == "bad build"
    mark = site.state.db.execute("select version, pointer_digest from channel_marks").fetchone()
    assert tuple(mark) == (4, digest_bytes(site.store.read_file(channel_path("production"))))


def test_read_only_refuses(tmp_path: Path, site: Site, three: list[str]):
    ro = Site(site.root, read_only=True)
    with pytest.raises(BadInput, match="read-only"):
        ch.promote(ro, three[0], "production")
    ro.close()
    assert site.store.read_file(channel_path("production")) is None


# -- races ----------------------------------------------------------------------------------
def test_lost_race_changes_nothing(site: Site, three: list[str], tmp_path: Path):
    """Another console swaps the pointer between our read and our compare-and-swap."""
    a, b, c = three
    ch.promote(site, a, "production", create=True)
    other = Site(site.root)
    real_cas = site.store.compare_and_swap

    def cas_after_rival(relpath, expected, new):
        ch.promote(other, b, "production", "rival")
        return real_cas(relpath, expected, new)

    site.store.compare_and_swap = cas_after_rival  # type: ignore[method-assign]
    with pytest.raises(Conflict, match="channel moved meanwhile") as exc:
        ch.promote(site, c, "production", create=True)
    assert exc.value.exit_code == 3
    site.store.compare_and_swap = real_cas  # type: ignore[method-assign]
    cur = ch.read_current(site, "production", None).pointer
    assert (cur.version, cur.release, cur.reason) == (2, b, "rival")
    assert history_files(site, "production") == ["1.json", "2.json"]
    assert all(e["release"] != c for e in ch.channel_events(site))
    assert site.state.audit_rows(limit=1)[0]["outcome"].startswith("error: channel moved meanwhile")
    other.close()


BARRIER = (
    "import sys\n"
    "from console.cli import main\n"
    "import console.verbs.channel_verbs, core.site.channels, core.site.catalogue\n"
    "sys.stderr.write('ready\\n'); sys.stderr.flush()\n"
    "sys.stdin.readline()\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_racing_promotes_from_processes(site: Site):
    """N console processes promote N different releases at once: no update lost, losers exit 3."""
    n = 6
    rels = [add_release(site, f"race-{i}") for i in range(n)]
    env = dict(os.environ, DEPOT_CONSOLE_SITE=str(site.root))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BARRIER, "promote", r[7:19], "--channel", "production", "--create", "--json"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in rels
    ]
    for p in procs:  # every process is loaded and waiting: release them together
        assert p.stderr.readline() == "ready\n"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p, rid in zip(procs, rels):
        out, err = p.communicate(timeout=120)
        results.append((p.returncode, out, err, rid))
    winners = [(json.loads(out), rid) for code, out, _, rid in results if code == 0]
    losers = [(err, rid) for code, _, err, rid in results if code != 0]
    assert sorted(code for code, *_ in results) == [0] * len(winners) + [3] * len(losers)
    assert all("channel moved meanwhile" in err for err, _ in losers)
    assert winners
    versions = sorted(doc["version"] for doc, _ in winners)
    assert versions == list(range(1, len(winners) + 1))
    assert history_files(site, "production") == sorted(f"{v}.json" for v in versions)
    history = {e.version: e.pointer for e in ch.read_history(site, "production") if not e.problem}
    for doc, rid in winners:
        assert history[doc["version"]].release == rid == doc["release"]
    on_channel = {p.release for p in history.values()}
    assert all(rid not in on_channel for _, rid in losers)
    cur = ch.read_current(site, "production", None).pointer
    assert cur.version == len(winners)
    assert ch.verify_channels(site) == []


# -- attacks on the store, seen through the CLI ------------------------------------------------
def test_replayed_pointer_after_rollback(site: Site, three: list[str]):
    a, b, _ = three
    root = site.root
    assert cli(root, "promote", a, "--channel", "production", "--create").returncode == 0
    assert cli(root, "promote", b, "--channel", "production", "--create").returncode == 0
    old = (store_root(site) / "channels/production.json").read_bytes()  # version 2 -> b
    code, doc = cli_json(root, "rollback", "--channel", "production", "--to", a[7:15], "--reason", "bad build")
    assert code == 0 and doc["version"] == 3
    assert cli(root, "verify").returncode == 0
    (store_root(site) / "channels/production.json").write_bytes(old)  # the attacker copies v2 back
    p = cli(root, "verify")
    assert p.returncode == 4
    assert "channel production: replay: production pointer version 2 is older than accepted version 3" in p.stdout
    p = cli(root, "channels")
    assert p.returncode == 4 and "replay" in p.stdout
    p = cli(root, "promote", a, "--channel", "production", "--create")
    assert p.returncode == 4 and "replay" in p.stderr
    assert (store_root(site) / "channels/production.json").read_bytes() == old
    assert history_files(site, "production") == ["1.json", "2.json", "3.json"]


def test_replay_caught_without_marks_by_history(site: Site, three: list[str], tmp_path: Path):
    """A console with an empty database still sees the replay: history is a floor too."""
    a, b, _ = three
    ch.promote(site, a, "production", create=True)
    old = site.store.read_file(channel_path("production"))
    ch.promote(site, b, "production", create=True)
    site.state.db.execute("delete from channel_marks")
    (store_root(site) / "channels/production.json").write_bytes(old)
    problems = ch.verify_channels(site)
    assert problems == ["production: replay: production pointer version 1 is older than accepted version 2"]


def test_pointer_of_other_channel(site: Site, three: list[str]):
    a, b, _ = three
    ch.promote(site, a, "testing", create=True)
    ch.promote(site, b, "production", create=True)
    ch.channel_status(site)
    sr = store_root(site)
    shutil.copyfile(sr / "channels/testing.json", sr / "channels/production.json")
    p = cli(site.root, "verify")
    assert p.returncode == 4
    assert "channel production: channel mismatch: pointer for channel 'testing' found at 'production'" in p.stdout


def test_same_version_other_bytes(site: Site, three: list[str]):
    a, b, _ = three
    ch.promote(site, a, "production", create=True)
    forged = pointer_envelope([site.signing_key], release=b, actor="insider@site")  # version 1, validly signed
    (store_root(site) / "channels/production.json").write_bytes(forged)
    p = cli(site.root, "verify")
    assert p.returncode == 4 and "channel production: same version: production pointer version 1 differs" in p.stdout


def test_expired_pointer(site: Site, three: list[str]):
    ch.promote(site, three[0], "production", create=True)
    later = T0 + timedelta(days=30, seconds=1)
    assert cli(site.root, "verify", now=T0 + timedelta(days=29)).returncode == 0
    p = cli(site.root, "verify", now=later)
    assert (
        p.returncode == 4
        and "channel production: expired: production pointer version 1 expired at 2026-03-31T12:00:00Z" in p.stdout
    )
    code, rows = cli_json(site.root, "channels", now=later)
    assert code == 4 and rows[0]["seconds_left"] == -1 and rows[0]["problem"].startswith("expired: ")
    assert "expired 1s ago" in cli(site.root, "channels", now=later).stdout
    code, docs = cli_json(site.root, "refresh", now=later)  # cron un-freezes it
    assert code == 0 and docs == [
        {"channel": "production", "version": 2, "release": three[0], "previous": three[0], "action": "refresh"}
    ]
    assert cli(site.root, "verify", now=later).returncode == 0


def test_threshold_two_signatures_one_key(site: Site, three: list[str]):
    ch.promote(site, three[0], "production", create=True)
    site.trust.thresholds["channel"] = 2
    site.save_trust()
    doubled = pointer_envelope(
        [site.signing_key, site.signing_key], version=2, release=three[1], previous=three[0], actor=site.actor
    )
    (store_root(site) / "channels/production.json").write_bytes(doubled)
    p = cli(site.root, "verify")
    assert p.returncode == 4 and "channel production: threshold: production pointer: 1 of 2 required" in p.stdout
    # the console never issues a pointer its own trust set would reject: one key writes a proposal
    # for a co-signer (issue 16, tests/cli/test_cosign.py), nothing is published
    (store_root(site) / "channels/production.json").write_bytes(
        site.store.read_file(channel_history_path("production", 1))
    )
    p = cli(site.root, "promote", three[1], "--channel", "production", "--create")
    assert p.returncode == 0 and "1 of 2 signatures, 1 more needed" in p.stdout
    assert history_files(site, "production") == ["1.json"]
    assert (store_root(site) / "proposals/production.json").is_file()


def test_forged_history_file(site: Site, three: list[str], tmp_path: Path):
    ch.promote(site, three[0], "production", create=True)
    ch.promote(site, three[1], "production", create=True)
    stranger = generate_key(tmp_path / "stranger.pem")
    (store_root(site) / "channels/production/1.json").write_bytes(pointer_envelope([stranger], release=three[2]))
    assert ch.verify_channels(site) == [
        "production: history version 1: untrusted: production history version 1: 0 of 1 required channel "
        f"signature(s) (untrusted key {stranger.id[:19]})"
    ]
    with pytest.raises(BadInput, match="never on channel"):  # a forged entry is no rollback target
        ch.rollback(site, "production", to=three[2])


def test_crash_after_swap_is_healed(site: Site, three: list[str]):
    ch.promote(site, three[0], "production", create=True)
    ch.promote(site, three[1], "production", create=True)
    current = site.store.read_file(channel_path("production"))
    (store_root(site) / "channels/production/2.json").unlink()  # as if killed between swap and history
    assert ch.verify_channels(site) == []
    rows = ch.history_rows(site, "production")
    assert [r["version"] for r in rows] == [1, 2] and "not written yet" in rows[1]["problem"]
    ch.promote(site, three[2], "production", create=True)
    assert site.store.read_file(channel_history_path("production", 2)) == current
    assert history_files(site, "production") == ["1.json", "2.json", "3.json"]


# -- the scripted rollback, end to end -----------------------------------------------------------
def test_scripted_rollback_cli(site: Site):
    x, y = colliding_releases(site)
    prefix = x[7:11]
    c = add_release(site, "current")
    root = site.root
    p = cli(root, "promote", prefix, "--channel", "production", "--create", "--json")
    assert p.returncode == 2
    err = json.loads(p.stdout)
    assert err["exit_code"] == 2 and sorted(err["candidates"]) == sorted([x, y]) and "ambiguous" in err["error"]
    assert x[7:19] in p.stderr and y[7:19] in p.stderr
    assert cli(root, "promote", x[7:19], "--channel", "production", "--create", "--reason", "first").returncode == 0
    assert cli(root, "promote", c, "--channel", "production", "--create").returncode == 0
    # ambiguous prefix on rollback too: exit 2, nothing changes
    p = cli(root, "--headless", "rollback", "--channel", "production", "--to", prefix, "--json")
    assert p.returncode == 2 and sorted(json.loads(p.stdout)["candidates"]) == sorted([x, y])
    p = cli(
        root, "--headless", "rollback", "--channel", "production", "--to", x[7:19], "--reason", "bad build", "--json"
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {
        "channel": "production",
        "version": 3,
        "release": x,
        "previous": c,
        "action": "rollback",
    }
    # again: a clear no-op, not a new version
    p = cli(root, "rollback", "--channel", "production", "--to", x[7:19])
    assert p.returncode == 0 and "already points at" in p.stdout
    assert history_files(site, "production") == ["1.json", "2.json", "3.json"]
    # a release never on the channel
    p = cli(root, "rollback", "--channel", "production", "--to", y[7:19])
    assert p.returncode == 2 and "use promote" in p.stderr
    p = cli(root, "history", "--channel", "production")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "ACTION", "RELEASE", "PREVIOUS", "ACTOR", "REASON", "ISSUED", "STATUS"]
    assert lines[3].split()[:4] == ["3", "rollback", x[7:19], c[7:19]] and "bad build" in lines[3]
    code, rows = cli_json(root, "history", "--channel", "production")
    assert [(r["version"], r["action"], r["problem"]) for r in rows] == [
        (1, "promote", ""),
        (2, "promote", ""),
        (3, "rollback", ""),
    ]
    code, status = cli_json(root, "channels")
    assert code == 0 and status[0]["release"] == x and status[0]["version"] == 3
    assert cli(root, "verify").returncode == 0


# -- key rotation with channels -------------------------------------------------------------------
def test_key_rotation_end_to_end(site: Site, three: list[str]):
    a, b, _ = three
    root = site.root
    old_key = site.signing_key.id
    assert cli(root, "promote", a, "--channel", "production", "--create").returncode == 0
    v1 = (store_root(site) / "channels/production.json").read_bytes()
    ids_before = site.store.list_release_ids()
    code, gen = cli_json(root, "keys", "generate")
    assert code == 0
    code, res = cli_json(root, "keys", "resign", "--all")
    assert code == 0 and res["resigned"] == 3
    assert site.store.list_release_ids() == ids_before  # ids are payload hashes: unchanged
    assert cli(root, "keys", "revoke", old_key[7:23], "--force").returncode == 0  # the pointer breaks, as it says
    # the current pointer is signed only by the revoked key now
    p = cli(root, "verify")
    assert p.returncode == 4 and "channel production: revoked: production pointer" in p.stdout
    # refresh re-signs it with the new key (the console accepted these exact bytes before)
    code, docs = cli_json(root, "refresh", "--channel", "production")
    assert code == 0 and docs[0]["version"] == 2
    cur = json.loads((store_root(site) / "channels/production.json").read_bytes())
    assert [s["keyid"] for s in cur["signatures"]] == [gen["id"]]
    assert cli(root, "verify").returncode == 0  # history v1 (revoked key) is still valid history
    assert cli(root, "promote", b, "--channel", "production", "--create").returncode == 0
    # the attacker puts back the old pointer: signed only by a revoked key, rejected from now on
    (store_root(site) / "channels/production.json").write_bytes(v1)
    p = cli(root, "verify")
    assert p.returncode == 4 and "channel production: revoked:" in p.stdout
    fresh = Site(root)  # even a console that never saw it, with no marks
    fresh.state.db.execute("delete from channel_marks")
    with pytest.raises(ch.PointerRejected) as exc:
        ch.read_current(fresh, "production", None)
    assert exc.value.rule == "revoked"
    fresh.close()
    # a release signed only by the revoked key (never re-signed) cannot be promoted
    stale = add_release(site, "stale", key=load_key(root / "keys" / "signing.pem"))
    p = cli(root, "promote", stale, "--channel", "testing", "--create")
    assert p.returncode == 4 and "revoked key" in p.stderr
    assert site.store.read_file(channel_path("testing")) is None


def test_deleted_pointer_is_reported(site: Site, three: list[str]):
    ch.promote(site, three[0], "production", create=True)
    (store_root(site) / "channels/production.json").unlink()
    assert ch.verify_channels(site) == [
        "production: missing: production pointer is gone, but version 1 was accepted before"
    ]
    with pytest.raises(ch.PointerRejected, match="^missing: "):
        ch.promote(site, three[1], "production", create=True)
    assert site.store.read_file(channel_path("production")) is None
