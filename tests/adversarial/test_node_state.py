"""A node that loses or damages its ``state.json`` must not roll back (issue 12 item 8).

The node ran pointer version 2. Its state file is then deleted, emptied, filled with garbage,
truncated or given wrong types, and the store serves the older, validly signed version 1 again
(a replay: a stale mirror or an attacker). Deleted or empty, the node rebuilds its high-water
mark from the accepted pointers it keeps (``pointers/<channel>.json`` and beside each release)
and refuses the replay (exit 4). Damaged, it refuses with one line naming the file and how to
recover (exit 2); after that recovery the replay is still refused. Never a traceback, and
``current/production`` never moves back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import hydrate, make_tree, promote, publish, trust_file

TRUST = 4
BAD_INPUT = 2


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def current_release(root: Path) -> str:
    return "sha256:" + Path((root / "current" / "production").readlink()).parts[-2]


@pytest.fixture
def node_at_v2(site_dir: Path, tmp_path: Path):
    """(store, trust file, node root, v1 release, v2 release, v1 pointer bytes): the node ran v2."""
    store = site_dir / "store"
    r1 = publish(site_dir, make_tree(tmp_path / "t1", {"a.txt": "one\n"}), label="1")
    promote(site_dir, r1)
    r2 = publish(site_dir, make_tree(tmp_path / "t2", {"a.txt": "two\n"}), label="2")
    promote(site_dir, r2)
    trust = trust_file(site_dir)
    root = tmp_path / "node"
    hydrate(root, str(store), trust)
    assert current_release(root) == r2
    old = (store / "channels" / "production" / "1.json").read_bytes()
    return store, trust, root, r1, r2, old


def replay(store: Path, old: bytes) -> bytes:
    """Serve the old pointer as the channel's current one; return what it replaced."""
    cur = (store / "channels" / "production.json").read_bytes()
    (store / "channels" / "production.json").write_bytes(old)
    return cur


def assert_replay_refused(store: Path, trust: Path, root: Path, r2: str) -> None:
    proc = hydrate(root, str(store), trust, check=TRUST)
    line = one_line(proc.stderr)
    assert "replay" in line and "version 1 is older than accepted version 2" in line, line
    assert current_release(root) == r2


def test_intact_state_refuses_the_replay(node_at_v2):
    store, trust, root, _, r2, old = node_at_v2
    replay(store, old)
    assert_replay_refused(store, trust, root, r2)


@pytest.mark.parametrize("shape", ["deleted", "empty", "whitespace"])
def test_lost_state_is_rebuilt_from_the_kept_pointers(node_at_v2, shape):
    store, trust, root, _, r2, old = node_at_v2
    state = root / "state.json"
    if shape == "deleted":
        state.unlink()
    else:
        state.write_bytes(b"" if shape == "empty" else b" \n\n")
    good = replay(store, old)
    assert_replay_refused(store, trust, root, r2)
    (store / "channels" / "production.json").write_bytes(good)  # the real pointer hydrates again
    hydrate(root, str(store), trust)
    assert json.loads(state.read_bytes())["marks"]["production"]["version"] == 2


def test_lost_state_and_lost_pointer_record_still_refuse(node_at_v2):
    """The pointer beside the release is a second copy: losing ``pointers/`` as well is not enough."""
    store, trust, root, _, r2, old = node_at_v2
    (root / "state.json").unlink()
    shutil.rmtree(root / "pointers")
    replay(store, old)
    assert_replay_refused(store, trust, root, r2)


def test_an_older_state_file_does_not_lower_the_mark(node_at_v2, tmp_path):
    """state.json restored from a backup taken at version 1: the kept pointer of version 2 wins."""
    store, trust, root, r1, r2, old = node_at_v2
    state = json.loads((root / "state.json").read_bytes())
    state["marks"]["production"]["version"] = 1
    state["marks"]["production"]["digest"] = "sha256:" + __import__("hashlib").sha256(old).hexdigest()
    (root / "state.json").write_text(json.dumps(state))
    replay(store, old)
    assert_replay_refused(store, trust, root, r2)


def _wrong(mutate):
    def shape(doc: dict) -> bytes:
        mutate(doc)
        return json.dumps(doc).encode()

    return shape


DAMAGED = {
    "garbage": lambda doc: b"\x00\xff\xfe garbage \x89PNG",
    "truncated": lambda doc: json.dumps(doc).encode()[:40],
    "not-an-object": lambda doc: b"[1, 2, 3]",
    "version-string": _wrong(lambda d: d["marks"]["production"].update(version="2")),
    "version-list": _wrong(lambda d: d["marks"]["production"].update(version=[2])),
    "version-bool": _wrong(lambda d: d["marks"]["production"].update(version=True)),
    "digest-number": _wrong(lambda d: d["marks"]["production"].update(digest=7)),
    "mark-missing-version": _wrong(lambda d: d["marks"]["production"].pop("version")),
    "marks-list": _wrong(lambda d: d.update(marks=[1])),
    "history-dict": _wrong(lambda d: d.update(history={"a": 1})),
    "history-entry-string": _wrong(lambda d: d["history"].append("x")),
    "history-release-number": _wrong(lambda d: d["history"][0].update(release=5)),
    "wrong-schema": _wrong(lambda d: d.update(schema="depot-node-state/9")),
}


@pytest.mark.parametrize("shape", sorted(DAMAGED))
def test_damaged_state_gets_one_line_and_the_replay_stays_refused(node_at_v2, shape):
    store, trust, root, _, r2, old = node_at_v2
    state = root / "state.json"
    state.write_bytes(DAMAGED[shape](json.loads(state.read_bytes())))
    replay(store, old)
    proc = hydrate(root, str(store), trust, check=BAD_INPUT)
    line = one_line(proc.stderr)
    assert str(state) in line and "move it aside" in line, line
    assert current_release(root) == r2
    status = hydrate(root, str(store), trust, check=BAD_INPUT)  # still refused, never a traceback
    one_line(status.stderr)
    state.rename(state.with_name("state.json.bad"))  # the recovery the line names
    assert_replay_refused(store, trust, root, r2)
