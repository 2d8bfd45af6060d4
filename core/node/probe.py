"""The node probe (DESIGN §6): what a node is, as one JSON object, with nothing installed on it.

This file is sent as-is on stdin to ``python3 -`` on every node, so everything above the
console-side section stays stdlib-only, self-contained and valid on old node Pythons (3.6+: no
``from __future__ import annotations``, no walrus, typing-module hints). Run as a script it prints
ONE JSON object::

    python3 - [--root DIR]  <  core/probe.py

with hostname, machine, cpuinfo (vendor, model name, family/model, sorted flags; for aarch64
implementer, part and features), cpus, memory bytes, os (/etc/os-release + kernel release),
python version and ``channels``: the release each ``<root>/current/<channel>`` symlink points at
(node layout of DESIGN §5: ``current/<channel> -> ../releases/<id>/<arch>``).

``DEPOT_PROBE_CPUINFO=<path>`` makes the probe read that file instead of /proc/cpuinfo (tests, and
nodes whose /proc lies, e.g. under emulation): the node's test/override hook, which
``core.arch.host_microarch`` (the image ``node hydrate`` picks) honours as well. Classification
with archspec happens in ``core.arch``, over the shape ``parse_cpuinfo`` returns.

Console side: ``probe_source()`` (these bytes), ``run_probe()`` (probe this host in-process) and
``parse_probe_output()`` (strict validation of what a node printed).
"""

import json
import os
import platform
import socket
import sys
from typing import Any, Dict, List, Optional

PROBE_SCHEMA = "depot-probe/1"
CPUINFO_ENV = "DEPOT_PROBE_CPUINFO"

_CPUINFO_TEXT_KEYS = ("vendor", "model_name", "family", "model", "implementer", "part")
_CPUINFO_LIST_KEYS = ("flags", "features")
_OS_KEYS = ("id", "version_id", "pretty_name", "kernel")


def _first_cpu_block(text: str) -> Dict[str, str]:
    """Key/value pairs of the first processor block (all CPUs of a node are alike for our needs)."""
    data = {}  # type: Dict[str, str]
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if data:
                break
            continue
        data.setdefault(key.strip(), value.strip())
    return data


def parse_cpuinfo(text: str) -> Dict[str, Any]:
    """The probe's ``cpuinfo`` object from /proc/cpuinfo text: the one cpuinfo parser of the project.

    ``core.arch`` classifies this shape (``cpuinfo_from_probe``), for a remote probe and for text
    read on the console alike, so a node and the console can never read a CPU differently.
    """
    data = _first_cpu_block(text)
    return {
        "vendor": data.get("vendor_id", ""),
        "model_name": data.get("model name", ""),
        "family": data.get("cpu family", ""),
        "model": data.get("model", ""),
        "flags": sorted(set(data.get("flags", "").split())),
        "implementer": data.get("CPU implementer", ""),
        "part": data.get("CPU part", ""),
        "features": sorted(set(data.get("Features", "").split())),
    }


def count_processors(text: str) -> int:
    """How many ``processor`` entries cpuinfo text lists (at least 1)."""
    return max(sum(1 for line in text.splitlines() if line.partition(":")[0].strip() == "processor"), 1)


def read_cpuinfo(path: Optional[str] = None) -> Dict[str, Any]:
    """``parse_cpuinfo`` of ``path``, else of $DEPOT_PROBE_CPUINFO, else of /proc/cpuinfo.

    ``$DEPOT_PROBE_CPUINFO`` is the node's test/override hook: ``core.arch.host_microarch`` honours
    it too, so what a node reports and the image it picks for itself agree.
    """
    path = path or os.environ.get(CPUINFO_ENV) or "/proc/cpuinfo"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        text = ""
    return parse_cpuinfo(text)


def _memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _os_release() -> Dict[str, str]:
    fields = {}  # type: Dict[str, str]
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        for line in lines:
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                fields[key.strip()] = value.strip().strip("'\"")
        break
    return {
        "id": fields.get("ID", ""),
        "version_id": fields.get("VERSION_ID", ""),
        "pretty_name": fields.get("PRETTY_NAME", ""),
        "kernel": platform.release(),
    }


def _release_id(name: str) -> str:
    """Directory names under releases/ are the hex of the release id; report the full id."""
    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        return "sha256:" + name
    return name


def read_channels(root: Optional[str]) -> Dict[str, Dict[str, Any]]:
    """Current release per channel from ``<root>/current/<channel>`` symlinks; {} without a root."""
    if not root:
        return {}
    current = os.path.join(root, "current")
    try:
        names = sorted(os.listdir(current))
    except OSError:
        return {}
    channels = {}  # type: Dict[str, Dict[str, Any]]
    for name in names:
        link = os.path.join(current, name)
        if name.startswith(".") or not os.path.islink(link):
            continue  # half-made temp links of an in-flight switch, stray files
        target = os.readlink(link)
        parts = [p for p in os.path.normpath(os.path.join("current", target)).split(os.sep) if p]
        ok = len(parts) == 3 and parts[0] == "releases"
        channels[name] = {
            "release": _release_id(parts[1]) if ok else None,
            "arch": parts[2] if ok else None,
            "target": target,
            "exists": os.path.isdir(link),
        }
    return channels


def collect(root: Optional[str] = None) -> Dict[str, Any]:
    """Everything the probe reports, as a JSON-ready dict."""
    return {
        "schema": PROBE_SCHEMA,
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "cpuinfo": read_cpuinfo(),
        "cpus": os.cpu_count() or 0,
        "memory": _memory_bytes(),
        "os": _os_release(),
        "python": platform.python_version(),
        "channels": read_channels(root),
    }


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="probe", description="print this node's facts as JSON")
    parser.add_argument("--root", help="node root (DESIGN §5) whose current/ channels to report")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(collect(args.root), sort_keys=True) + "\n")
    return 0


# ---- console side (unused on a node; project imports stay inside these functions) ----


def probe_source() -> bytes:
    """The bytes of this module, to be sent on stdin to ``python3 -``."""
    with open(os.path.abspath(__file__), "rb") as fh:
        return fh.read()


def run_probe(root: Optional[str] = None) -> Dict[str, Any]:
    """Probe this host in-process (``console node probe``); same shape as a remote probe."""
    return collect(root)


def _fail(reason: str) -> "Exception":
    from core.errors import BadInput

    return BadInput("bad probe output: " + reason)


def _check_str_fields(obj: Any, keys: "tuple[str, ...]", where: str) -> None:
    if not isinstance(obj, dict):
        raise _fail(where + " is not an object")
    for key in keys:
        if not isinstance(obj.get(key), str):
            raise _fail("%s.%s missing or not a string" % (where, key))


def parse_probe_output(stdout: bytes) -> Dict[str, Any]:
    """Decode and strictly validate a probe's stdout (one JSON object); BadInput on anything else."""
    if not isinstance(stdout, bytes):
        raise _fail("not bytes")
    try:
        text = stdout.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _fail("not UTF-8") from None
    if not text:
        raise _fail("empty")
    if "\n" in text:
        raise _fail("more than one line")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _fail("not JSON (%s)" % str(exc).splitlines()[0]) from None
    if not isinstance(data, dict):
        raise _fail("not a JSON object")
    if data.get("schema") != PROBE_SCHEMA:
        raise _fail("unknown schema %r" % (data.get("schema"),))
    expected = {"schema", "hostname", "machine", "cpuinfo", "cpus", "memory", "os", "python", "channels"}
    if set(data) != expected:
        extra, missing = sorted(set(data) - expected), sorted(expected - set(data))
        raise _fail("fields differ (missing %s, unexpected %s)" % (missing, extra))
    _check_str_fields(data, ("hostname", "machine", "python"), "probe")
    for key in ("cpus", "memory"):
        if type(data[key]) is not int or data[key] < 0:
            raise _fail("%s is not a non-negative integer" % key)
    cpu = data["cpuinfo"]
    _check_str_fields(cpu, _CPUINFO_TEXT_KEYS, "cpuinfo")
    if set(cpu) != set(_CPUINFO_TEXT_KEYS + _CPUINFO_LIST_KEYS):
        raise _fail("cpuinfo fields differ")
    for key in _CPUINFO_LIST_KEYS:
        if not isinstance(cpu[key], list) or not all(isinstance(f, str) for f in cpu[key]):
            raise _fail("cpuinfo.%s is not a list of strings" % key)
    _check_str_fields(data["os"], _OS_KEYS, "os")
    if not isinstance(data["channels"], dict):
        raise _fail("channels is not an object")
    for name, entry in data["channels"].items():
        if not isinstance(entry, dict) or set(entry) != {"release", "arch", "target", "exists"}:
            raise _fail("channels.%s has the wrong fields" % name)
        for key in ("release", "arch"):
            if entry[key] is not None and not isinstance(entry[key], str):
                raise _fail("channels.%s.%s is not a string" % (name, key))
        if not isinstance(entry["target"], str) or not isinstance(entry["exists"], bool):
            raise _fail("channels.%s has wrong types" % name)
    return data


if __name__ == "__main__":
    sys.exit(main())
