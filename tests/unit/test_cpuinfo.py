"""One cpuinfo parser (core.node.probe.parse_cpuinfo), consumed by core.arch; the $DEPOT_PROBE_CPUINFO hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.arch import classify, classify_cpuinfo, cpuinfo_from_probe, host_microarch, parse_cpuinfo
from core.errors import BadInput
from core.node.probe import CPUINFO_ENV, read_cpuinfo

CPUINFO = Path(__file__).parents[1] / "fixtures" / "cpuinfo"


@pytest.mark.parametrize("fixture", sorted(p.stem for p in CPUINFO.glob("*.txt")))
def test_text_and_probe_classify_alike(fixture: str) -> None:
    path = CPUINFO / f"{fixture}.txt"
    from_probe = cpuinfo_from_probe({"cpuinfo": read_cpuinfo(str(path)), "cpus": 2})
    assert from_probe == parse_cpuinfo(path.read_text())
    assert classify(from_probe) == classify_cpuinfo(path.read_text())


def test_host_microarch_honours_the_probe_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CPUINFO_ENV, str(CPUINFO / "haswell_e5_2680v3.txt"))
    assert host_microarch() == "haswell"
    monkeypatch.setenv(CPUINFO_ENV, str(CPUINFO / "neoverse_v1_graviton3.txt"))
    assert host_microarch() == "neoverse_v1"
    monkeypatch.setenv(CPUINFO_ENV, str(tmp_path / "missing"))
    with pytest.raises(BadInput, match=f"^\\${CPUINFO_ENV}=.*missing: cannot read it"):
        host_microarch()
