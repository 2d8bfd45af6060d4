"""Issue 14 item 4: a mirror serving a stale channel pointer cannot hold a node back.

Two real nginx servers serve two copies of one store; the copy is taken, then the site promotes
again on the original, so the copy lags one version behind. With several mirrors a node reads the
channel pointer from each, verifies each against its own high-water mark and takes the newest
valid one, whichever mirror is listed first; the lagging (or forging) mirror is reported stale.
The replay rule still holds: a node on v2 given only the v1 mirror refuses (exit 4).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.nginx import NginxServer, start_nginx
from helpers import hydrate, promote, publish, sample_tree, trust_file


def current(root: Path) -> str:
    return os.readlink(root / "current" / "production")


@pytest.fixture
def mirrors(
    http_site: Path, nginx_server: NginxServer, tmp_path: Path
) -> Iterator[tuple[NginxServer, NginxServer, str, str]]:
    """(fresh, lagging, v1, v2): both mirrors hold both releases; only ``fresh`` has v2 promoted."""
    v1 = publish(http_site, sample_tree(tmp_path / "v1", "a"))
    v2_tree = sample_tree(tmp_path / "v2", "a")
    (v2_tree / "data" / "extra.bin").write_bytes(b"extra content " * 50)
    v2 = publish(http_site, v2_tree)
    promote(http_site, v1)
    copy = tmp_path / "lagging-store"
    shutil.copytree(nginx_server.root, copy, symlinks=True)
    promote(http_site, v2)  # on the original only: the copy lags at v1
    with start_nginx(tmp_path / "nginx-lagging", root=copy) as lagging:
        yield nginx_server, lagging, v1, v2


def immutable_gets(*servers: NginxServer) -> Counter[str]:
    """GETs of digest-named paths (objects, trees, releases, packs) over all ``servers``."""
    return Counter(
        r.path.split("/depot/", 1)[-1]
        for s in servers
        for r in s.requests()
        if r.method == "GET"
        and r.status in (200, 206)
        and "/channels/" not in r.path
        and not r.path.endswith("/")
        and not r.path.endswith(("store.json", "index.json"))
    )


@pytest.mark.parametrize("order", ["lagging-first", "fresh-first"])
def test_newest_valid_pointer_wins_whichever_mirror_is_first(mirrors, http_site, tmp_path, order):
    fresh, lagging, _, v2 = mirrors
    urls = [lagging.url, fresh.url] if order == "lagging-first" else [fresh.url, lagging.url]
    root = tmp_path / "node"
    doc = json.loads(hydrate(root, ",".join(urls), trust_file(http_site)).stdout)
    assert (doc["release"], doc["version"]) == (v2, 2)
    assert current(root) == f"../releases/{v2[7:]}/x86_64"
    stale = doc["stale_mirrors"]
    assert [m["url"] for m in stale] == [lagging.url] and "version 1" in stale[0]["reason"]
    # Each pointer read once per mirror; no immutable path asked for more than once in all.
    gets = immutable_gets(fresh, lagging)
    assert gets and max(gets.values()) == 1, gets


def test_a_forged_newer_pointer_is_ignored(mirrors, http_site, tmp_path):
    fresh, lagging, _, v2 = mirrors
    pointer = lagging.root / "channels" / "production.json"
    env = json.loads((fresh.root / "channels" / "production.json").read_bytes())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["version"] = 3  # a newer version, its signatures now over other bytes
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    os.chmod(pointer, 0o644)
    pointer.write_bytes(json.dumps(env).encode())
    root = tmp_path / "node"
    doc = json.loads(hydrate(root, f"{lagging.url},{fresh.url}", trust_file(http_site)).stdout)
    assert (doc["release"], doc["version"]) == (v2, 2)
    assert [m["url"] for m in doc["stale_mirrors"]] == [lagging.url]

    env["signatures"] = []  # unsigned
    pointer.write_bytes(json.dumps(env).encode())
    doc = json.loads(hydrate(tmp_path / "node2", f"{lagging.url},{fresh.url}", trust_file(http_site)).stdout)
    assert (doc["release"], doc["version"]) == (v2, 2)


def test_replay_rule_still_holds(mirrors, http_site, tmp_path):
    fresh, lagging, _, v2 = mirrors
    trust = trust_file(http_site)
    root = tmp_path / "node"
    hydrate(root, f"{lagging.url},{fresh.url}", trust)
    assert current(root) == f"../releases/{v2[7:]}/x86_64"
    proc = hydrate(root, lagging.url, trust, check=4)
    assert "replay" in proc.stderr
    assert current(root) == f"../releases/{v2[7:]}/x86_64"
    # Both mirrors: the lagging one is stale, the node stays on v2 without fetching anything.
    doc = json.loads(hydrate(root, f"{lagging.url},{fresh.url}", trust).stdout)
    assert (doc["release"], doc["switched"]) == (v2, False)
