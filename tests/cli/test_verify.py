"""verify (fast and deep), tampering, trust failures, and the catalogue's reaction to them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from helpers import run_console, run_json, sample_tree


def _publish(site: Path, tmp_path: Path, name: str = "n") -> dict:
    src = sample_tree(tmp_path / f"src-{name}")
    return run_json(site, "publish", "--name", name, "--image", f"x86_64={src}", "--image", f"x86_64_v3={src}")


def _object_file(site: Path, digest: str) -> Path:
    h = digest.removeprefix("sha256:")
    return site / "store" / "objects" / h[:2] / h[2:]


def _file_digest(site: Path, rid: str, path: str) -> str:
    """Digest of a file in image x86_64, found through the CLI's own JSON (export-free)."""
    import hashlib

    del rid
    return "sha256:" + hashlib.sha256((site.parent / "src-n" / path).read_bytes()).hexdigest()


def test_clean_store_verifies(site_dir: Path, tmp_path: Path) -> None:
    _publish(site_dir, tmp_path)
    doc = run_json(site_dir, "verify", "--deep")
    assert doc["ok"] is True and doc["problems"] == [] and doc["releases"] == 1
    human = run_console(site_dir, "verify", check=0).stdout
    assert human.strip().endswith(": ok")


def test_flipped_byte_found_by_deep_verify_only(site_dir: Path, tmp_path: Path) -> None:
    import zstandard

    rid = _publish(site_dir, tmp_path)["release_id"]
    digest = _file_digest(site_dir, rid, "share/doc/README")
    obj = _object_file(site_dir, digest)
    data = bytearray(zstandard.ZstdDecompressor().decompressobj().decompress(obj.read_bytes()))
    data[0] ^= 0x01
    obj.chmod(0o644)
    obj.write_bytes(zstandard.ZstdCompressor().compress(bytes(data)))
    assert run_json(site_dir, "verify")["ok"] is True  # fast verify: presence only
    proc = run_console(site_dir, "verify", "--deep", "--json")
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert {(p["release"], p["image"], p["path"], p["kind"]) for p in problems} == {
        (rid, "x86_64", "share/doc/README", "corrupt-object"),
        (rid, "x86_64_v3", "share/doc/README", "corrupt-object"),
    }
    human = run_console(site_dir, "verify", "--deep")
    assert f"{rid[7:19]} x86_64/share/doc/README: corrupt-object" in human.stdout


def test_removed_object_found_by_fast_verify(site_dir: Path, tmp_path: Path) -> None:
    rid = _publish(site_dir, tmp_path)["release_id"]
    _object_file(site_dir, _file_digest(site_dir, rid, "bin/tool")).unlink()
    proc = run_console(site_dir, "verify", "--json")
    assert proc.returncode == 1
    kinds = {(p["image"], p["path"], p["kind"]) for p in json.loads(proc.stdout)["problems"]}
    assert kinds == {("x86_64", "bin/tool", "missing-object"), ("x86_64_v3", "bin/tool", "missing-object")}
    # export refuses cleanly and leaves nothing behind
    out = tmp_path / "out"
    exp = run_console(site_dir, "export", rid, "--arch", "x86_64", str(out))
    assert exp.returncode == 2 and exp.stderr.startswith("console: object sha256:") and not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_edited_payload_is_a_trust_failure(site_dir: Path, tmp_path: Path) -> None:
    rid = _publish(site_dir, tmp_path)["release_id"]
    path = site_dir / "store" / "releases" / f"{rid[7:]}.json"
    env = json.loads(path.read_bytes())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["label"] = "evil"
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    path.chmod(0o644)
    path.write_text(json.dumps(env))
    proc = run_console(site_dir, "verify")
    assert proc.returncode == 4
    assert "payload-hash" in proc.stdout
    show = run_console(site_dir, "show", rid)
    assert show.returncode == 4 and "does not match its file name" in show.stderr


def test_untrusted_and_revoked_keys(site_dir: Path, tmp_path: Path) -> None:
    rid = _publish(site_dir, tmp_path)["release_id"]
    old = run_json(site_dir, "keys", "list")[0]["id"]
    new = run_json(site_dir, "keys", "generate")
    assert new["signing"] is True
    run_json(site_dir, "keys", "revoke", old[7:15], "--force")
    proc = run_console(site_dir, "show", rid)
    assert proc.returncode == 4 and "revoked key" in proc.stderr
    assert run_console(site_dir, "verify").returncode == 4
    # resign cannot rescue a release that no longer verifies; trust must be restored first
    assert run_console(site_dir, "keys", "resign", "--all").returncode == 4
    # a release signed by a stranger's key is untrusted
    other = tmp_path / "other"
    run_console(other, "init", check=0)
    rid2 = _publish(other, tmp_path, "x")["release_id"]
    src = other / "store" / "releases" / f"{rid2[7:]}.json"
    (site_dir / "store" / "releases" / src.name).write_bytes(src.read_bytes())
    proc = run_console(site_dir, "show", rid2)
    assert proc.returncode == 4 and "untrusted key" in proc.stderr


def test_key_rotation_with_resign_keeps_releases_valid(site_dir: Path, tmp_path: Path) -> None:
    rid = _publish(site_dir, tmp_path)["release_id"]
    old = run_json(site_dir, "keys", "list")[0]["id"]
    run_json(site_dir, "keys", "generate")
    res = run_json(site_dir, "keys", "resign", "--all")
    assert res["resigned"] == 1
    run_json(site_dir, "keys", "revoke", old)
    doc = run_json(site_dir, "show", rid[7:15])
    assert doc["id"] == rid and len(doc["signed_by"]) == 1 and doc["signed_by"][0] != old
    assert run_json(site_dir, "verify", "--deep")["ok"] is True
