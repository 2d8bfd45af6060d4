"""Co-signing (issue 16 part 2): a threshold-2 channel takes a proposal, then a second trusted key.

Alice's site holds the channel; Bob has a site of his own (his own key) and sends Alice his
public key (``keys export --public``), which she trusts for the channel role. The proposal lives
in the shared store (``proposals/<channel>.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import init_site, make_tree, run_console, run_json, set_config


def publish(site: Path, tmp: Path, name: str) -> str:
    make_tree(tmp / name, {"lib/a.py": f"{name}\n"})
    return run_json(site, "publish", "--name", "pkg", "--image", f"x86_64={tmp / name}")["release_id"]


@pytest.fixture
def pair(tmp_path: Path) -> dict:
    alice = init_site(tmp_path / "alice")
    bob = init_site(tmp_path / "bob")
    one, two = publish(alice, tmp_path, "one"), publish(alice, tmp_path, "two")
    pem = tmp_path / "bob.pub.pem"
    pem.write_text(run_console(bob, "keys", "export", "--public", check=0).stdout)
    trusted = run_json(alice, "keys", "trust", str(pem), "--roles", "channel", "--name", "bob")
    assert trusted["roles"] == ["channel"]
    set_config(alice, "trust", "thresholds", {"release": 1, "channel": 1, "channel:production": 2})
    bob_key = bob / "keys" / "signing.pem"
    run_console(alice, "promote", one, "--channel", "production", "--create", check=0)  # version 1, co-signed too
    run_console(alice, "approve", one, "--channel", "production", "--key", str(bob_key), check=0)
    return {"alice": alice, "bob_key": bob_key, "one": one, "two": two, "tmp": tmp_path}


def current(site: Path, channel: str = "production") -> dict:
    return next(r for r in run_json(site, "channels") if r["channel"] == channel)


def test_one_signature_is_a_proposal_and_nothing_is_published(pair: dict) -> None:
    alice, two = pair["alice"], pair["two"]
    doc = run_json(alice, "promote", two, "--channel", "production")
    prop = doc["proposal"]
    assert (prop["version"], prop["release"], prop["signatures"], prop["threshold"], prop["missing"]) == (
        2,
        two,
        1,
        2,
        1,
    )
    assert current(alice)["version"] == 1 and current(alice)["release"] == pair["one"]
    assert not (alice / "store" / "channels" / "production" / "2.json").exists()
    stored = json.loads((alice / "store" / "proposals" / "production.json").read_text())
    assert stored["state"] == "open" and len(stored["envelope"]["signatures"]) == 1
    # a channel under the role threshold (1) still publishes at once
    run_console(alice, "promote", two, "--channel", "testing", "--create", check=0)
    assert current(alice, "testing")["version"] == 1


def test_the_same_key_twice_never_counts_twice(pair: dict) -> None:
    alice, two = pair["alice"], pair["two"]
    run_console(alice, "promote", two, "--channel", "production", check=0)
    proc = run_console(alice, "approve", two[7:19], "--channel", "production")  # the site key again
    assert proc.returncode == 4
    assert "already signed this proposal; the same key never counts twice (1 of 2 signatures)" in proc.stderr
    assert current(alice)["version"] == 1
    stored = json.loads((alice / "store" / "proposals" / "production.json").read_text())
    assert len(stored["envelope"]["signatures"]) == 1


def test_an_untrusted_key_is_refused(pair: dict) -> None:
    alice, two, tmp = pair["alice"], pair["two"], pair["tmp"]
    stranger = init_site(tmp / "stranger") / "keys" / "signing.pem"
    run_console(alice, "promote", two, "--channel", "production", check=0)
    proc = run_console(alice, "approve", two, "--channel", "production", "--key", str(stranger))
    assert proc.returncode == 4 and "is not in this site's trust set" in proc.stderr
    assert current(alice)["version"] == 1


def test_two_distinct_trusted_keys_publish_the_pointer(pair: dict) -> None:
    alice, one, two = pair["alice"], pair["one"], pair["two"]
    run_console(alice, "promote", two, "--channel", "production", "--reason", "ok by both", check=0)
    doc = run_json(alice, "approve", two[7:19], "--channel", "production", "--key", str(pair["bob_key"]))
    assert doc["published"] is True
    assert (doc["version"], doc["release"], doc["previous"]) == (2, two, one)
    cur = current(alice)
    assert (cur["version"], cur["release"], cur["problem"]) == (2, two, "")
    assert len(cur["signed_by"]) == 2
    env = json.loads((alice / "store" / "channels" / "production.json").read_text())
    assert len({s["keyid"] for s in env["signatures"]}) == 2
    assert (alice / "store" / "channels" / "production" / "2.json").read_bytes() == (
        alice / "store" / "channels" / "production.json"
    ).read_bytes()
    # a node with the exported trust set (threshold included) accepts it
    trust = pair["tmp"] / "trust.json"
    trust.write_text(run_console(alice, "keys", "export", check=0).stdout)
    assert json.loads(trust.read_text())["thresholds"]["channel:production"] == 2
    run_console(
        None, "node", "hydrate", "--store", str(alice / "store"), "--channel", "production",
        "--trust", str(trust), "--root", str(pair["tmp"] / "node"), check=0,
    )  # fmt: skip
    # approving again: the proposal is published already
    proc = run_console(alice, "approve", two, "--channel", "production", "--key", str(pair["bob_key"]))
    assert proc.returncode == 3 and "stale: it was published already" in proc.stderr
    audit = run_json(alice, "proposals")
    assert [(p["state"], p["signatures"]) for p in audit] == [("published", 2)]


def test_a_proposal_whose_base_moved_is_stale(pair: dict) -> None:
    alice, one, two, bob = pair["alice"], pair["one"], pair["two"], str(pair["bob_key"])
    proposal = alice / "store" / "proposals" / "production.json"
    run_console(alice, "promote", two, "--channel", "production", check=0)
    seen = proposal.read_bytes()  # what a slower approver read
    run_console(alice, "approve", two, "--channel", "production", "--key", bob, check=0)  # version 2
    three = publish(alice, pair["tmp"], "three")
    run_console(alice, "promote", three, "--channel", "production", check=0)
    run_console(alice, "approve", three, "--channel", "production", "--key", bob, check=0)  # version 3
    proposal.write_bytes(seen)  # the version-2 proposal, still open, over version 1
    proc = run_console(alice, "approve", two, "--channel", "production", "--key", bob)
    assert proc.returncode == 3
    assert (
        "stale: its base moved: it was made over version 1, the channel is at version 3; nothing published"
        in proc.stderr
    ), proc.stderr
    cur = current(alice)
    assert (cur["version"], cur["release"], cur["problem"]) == (3, three, "")
    # a new promote replaces the stale proposal
    doc = run_json(alice, "promote", one, "--channel", "production")
    assert doc["proposal"]["version"] == 4 and doc["proposal"]["base_version"] == 3


def test_a_live_proposal_is_not_replaced(pair: dict) -> None:
    alice, one, two = pair["alice"], pair["one"], pair["two"]
    run_console(alice, "promote", two, "--channel", "production", check=0)
    three = publish(alice, pair["tmp"], "three")
    proc = run_console(alice, "promote", three, "--channel", "production")
    assert proc.returncode == 3 and "already has an open proposal (version 2, promote " in proc.stderr
    assert json.loads((alice / "store" / "proposals" / "production.json").read_text())["envelope"]
    assert one  # the channel still carries it
    assert current(alice)["release"] == one
