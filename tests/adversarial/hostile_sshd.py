"""A hostile sshd on loopback for the adversarial tests: nodes that flood their output.

A second OpenSSH server, separate from the shared ``sshd`` fixture (tests/fixtures/sshd.py) so the
hostile behaviours stay here: each alias is a loopback address whose sshd ``ForceCommand`` misbehaves,
whatever command the console sends. The plain aliases run the command as sent (the probe answers).

=============  ============  ================================================================
alias          address       what happens
=============  ============  ================================================================
good01, 02     127.0.3.1-2   plain nodes: the probe answers (``SetEnv DEPOT_PROBE_CPUINFO``)
floodout       127.0.3.3     endless ``y`` lines on stdout, like ``yes``
floodline      127.0.3.4     endless stdout without a single newline
flooderr       127.0.3.5     endless stderr, nothing on stdout
=============  ============  ================================================================
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixtures.sshd import PLAIN_CPUINFO, READY_POLLS, SSHD, _free_port, _keygen, _listens, _stop, _supports, _write

GOOD = {"good01": "127.0.3.1", "good02": "127.0.3.2"}
_WRITE_FOREVER = "import itertools, os; [os.write({fd}, {chunk}) for _ in itertools.count()]"
FLOOD = {
    "floodout": ("127.0.3.3", _WRITE_FOREVER.format(fd=1, chunk='b"y\\n" * 32768')),
    "floodline": ("127.0.3.4", _WRITE_FOREVER.format(fd=1, chunk='b"x" * 65536')),
    "flooderr": ("127.0.3.5", _WRITE_FOREVER.format(fd=2, chunk='b"no\\n" * 16384')),
}


@dataclass
class HostileSshd:
    config_path: str
    directory: Path
    good: list[str] = field(default_factory=lambda: list(GOOD))
    flood: list[str] = field(default_factory=lambda: list(FLOOD))


def _configs(d: Path, port: int, user: str, penalties: bool) -> tuple[str, str]:
    addresses = [*GOOD.values(), *(a for a, _ in FLOOD.values())]
    server = "".join(f"ListenAddress {a}:{port}\n" for a in addresses) + (
        f"HostKey {d}/ssh_host_ed25519_key\n"
        f"PidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\n"
        f"AllowUsers {user}\n"
        "UsePAM no\nStrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nMaxStartups 100:30:200\nAcceptEnv DEPOT_*\nPrintMotd no\n"
        "X11Forwarding no\n" + ("PerSourcePenalties no\n" if penalties else "")
        # Killed floods look like misbehaving clients: without this, OpenSSH >= 9.8 would soon
        # refuse every connection from loopback.
    )
    # The fixture dir in each flood's argv lets teardown find (and kill) what is left of them.
    for address, code in FLOOD.values():
        server += f"Match LocalAddress {address}\n    ForceCommand exec {sys.executable} -c '{code}' {d}/flood\n"
    client = "".join(
        f"Host {alias}\n    HostName {address}\n    SetEnv DEPOT_PROBE_CPUINFO={PLAIN_CPUINFO}\n"
        for alias, address in GOOD.items()
    )
    client += "".join(f"Host {alias}\n    HostName {address}\n" for alias, (address, _) in FLOOD.items())
    client += (
        f"Host *\n    Port {port}\n    User {user}\n    IdentitiesOnly yes\n    IdentityFile {d}/id_user\n"
        f"    UserKnownHostsFile {d}/known_hosts\n    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n    CheckHostIP no\n    PasswordAuthentication no\n"
        "    ControlMaster no\n    ControlPath none\n"
    )
    return server, client


@contextmanager
def running_hostile_sshd(d: Path) -> Iterator[HostileSshd]:
    """Keys and configs in ``d``, sshd started; yields once every address accepts, stops it after."""
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    user = getpass.getuser()
    host_key = _keygen(d / "ssh_host_ed25519_key")
    user_key = _keygen(d / "id_user")
    _write(d / "authorized_keys", " ".join(user_key) + "\n")
    addresses = [*GOOD.values(), *(a for a, _ in FLOOD.values())]
    penalties = _supports("PerSourcePenalties no", d)
    for _attempt in range(3):
        port = _free_port()
        server, client = _configs(d, port, user, penalties)
        _write(d / "sshd_config", server)
        _write(d / "ssh_config", client)
        _write(d / "known_hosts", "".join(f"[{a}]:{port} {' '.join(host_key)}\n" for a in addresses))
        with open(d / "sshd.log", "ab") as log:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        for _poll in range(READY_POLLS):
            if proc.poll() is not None:
                break
            if all(_listens(a, port) for a in addresses):
                try:
                    yield HostileSshd(str(d / "ssh_config"), d)
                finally:
                    _stop(proc, d)
                return
            time.sleep(0.01)
        _stop(proc, d)
    pytest.fail(f"hostile sshd did not start: {(d / 'sshd.log').read_text(errors='replace')[-300:]}")
