"""Issue 12 item 12: the key passphrase never reaches a child process.

``DEPOT_KEY_PASSPHRASE`` is read once by ``core.trust.signing`` and removed from the environment;
every build command gets ``core.environ.child_env`` (no console secret, whatever env its builder
passed). The encrypted key still signs for the whole process. A build that prints its environment
must not write the passphrase into its build log; neither may a publish hook.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from core.build.run import Runner
from core.environ import child_env, is_secret

from helpers import REPO, init_site, make_tree, run_console, run_json, set_config, write_script

PASSPHRASE = "hunter2-correct-horse-battery"
PRINT_ENV = """
env
python3 -c 'import os; print(sorted(os.environ.items()))'
cat /proc/self/environ | tr '\\0' '\\n'
touch "$DEPOT_OUT/ok"
"""


def encrypt_site_key(site: Path) -> Path:
    """Re-encrypt the site's signing key in place with PASSPHRASE (same key: the trust set holds)."""
    path = site / "keys" / "signing.pem"
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    return path


@pytest.fixture
def encrypted_site(tmp_path: Path) -> Path:
    site = init_site(tmp_path / "site")
    encrypt_site_key(site)
    return site


def _logs(site: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted((site / "logs").glob("*.log")))


def test_build_that_prints_its_environment_logs_no_passphrase(encrypted_site: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path / "printenv.sh", PRINT_ENV)
    env = {"DEPOT_KEY_PASSPHRASE": PASSPHRASE, "DEPOT_UPLOAD_TOKEN": "tok-" + PASSPHRASE, "MARKER": "kept-1"}
    run_console(encrypted_site, "build", str(script), "--builder", "command", "--arch", "x86_64", env=env, check=0)
    log = _logs(encrypted_site)
    assert "MARKER=kept-1" in log  # the environment was printed, and ordinary variables pass
    assert PASSPHRASE not in log
    assert "DEPOT_KEY_PASSPHRASE" not in log and "DEPOT_UPLOAD_TOKEN" not in log


def test_build_publish_signs_with_the_encrypted_key_and_logs_no_passphrase(
    encrypted_site: Path, tmp_path: Path
) -> None:
    script = write_script(tmp_path / "printenv.sh", PRINT_ENV)
    env = {"DEPOT_KEY_PASSPHRASE": PASSPHRASE}
    doc = run_json(
        encrypted_site, "build", str(script), "--builder", "command", "--arch", "x86_64", "--publish", env=env
    )
    assert isinstance(doc, dict) and doc.get("status") == "succeeded", doc
    assert PASSPHRASE not in _logs(encrypted_site)


def test_publish_hooks_get_no_passphrase_and_the_key_still_signs(encrypted_site: Path, tmp_path: Path) -> None:
    seen = tmp_path / "hook-env"
    hook = write_script(tmp_path / "hook.sh", f'echo "== hook" >> "{seen}"\nenv >> "{seen}"\n')
    set_config(encrypted_site, "publish", "pre_publish", str(hook))
    set_config(encrypted_site, "publish", "post_publish", str(hook))
    tree = make_tree(tmp_path / "tree", {"a.txt": "a\n"})
    env = {"DEPOT_KEY_PASSPHRASE": PASSPHRASE}
    doc = run_json(encrypted_site, "publish", "--name", "n", "--image", f"x86_64={tree}", env=env)
    assert isinstance(doc, dict) and doc["release_id"].startswith("sha256:")
    text = seen.read_text()
    assert text.count("== hook") == 2  # both hooks ran and printed their environment
    assert PASSPHRASE not in text and "DEPOT_KEY_PASSPHRASE" not in text
    # Without the passphrase the encrypted key cannot sign: it really was used above.
    proc = run_console(encrypted_site, "publish", "--name", "n", "--image", f"x86_64={tree}", "--label", "2")
    assert proc.returncode == 2 and "is encrypted: set DEPOT_KEY_PASSPHRASE" in proc.stderr


def test_passphrase_is_read_once_and_removed_from_the_environment(encrypted_site: Path) -> None:
    code = (
        "import os, subprocess, sys\n"
        "from pathlib import Path\n"
        "import core.trust.signing as s\n"
        "assert 'DEPOT_KEY_PASSPHRASE' not in os.environ\n"
        "key = s.load_key(Path(sys.argv[1]))\n"
        "key2 = s.load_key(Path(sys.argv[1]))\n"  # the whole process long, not once
        "assert key.id == key2.id\n"
        "out = subprocess.run(['env'], capture_output=True, text=True).stdout\n"
        "print('LEAK' if sys.argv[2] in out else 'clean')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "DEPOT_KEY_PASSPHRASE": PASSPHRASE}
    key = str(encrypted_site / "keys" / "signing.pem")
    proc = subprocess.run([sys.executable, "-c", code, key, PASSPHRASE], capture_output=True, text=True, env=env)
    assert (proc.returncode, proc.stdout.strip()) == (0, "clean"), proc.stderr


def test_runner_scrubs_the_env_a_builder_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOT_KEY_PASSPHRASE", PASSPHRASE)
    runner = Runner(tmp_path / "build.log")
    given = {**os.environ, "DEPOT_REGISTRY_PASSWORD": "pw-" + PASSPHRASE, "KEEP_ME": "yes", "PATH": os.environ["PATH"]}
    runner.run(["env"], arch="x86_64", env=given)
    runner.run(["env"], arch="x86_64")
    log = (tmp_path / "build.log").read_text()
    assert log.count("KEEP_ME=yes") == 1 and PASSPHRASE not in log


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DEPOT_KEY_PASSPHRASE", True),
        ("depot_key_passphrase", True),
        ("DEPOT_S3_SECRET_KEY", True),
        ("DEPOT_API_TOKEN", True),
        ("DEPOT_SITE_PASSWORD", True),
        ("DEPOT_ACTOR", False),
        ("DEPOT_CONSOLE_SITE", False),
        ("PATH", False),
        ("HOME", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret(name) is secret
    env = child_env({"EXTRA": "1"}, base={name: "v", "OTHER": "o"})
    assert (name in env) is not secret and env["EXTRA"] == "1" and env["OTHER"] == "o"
