"""Every pointer rejection rule is its own exception class (core.trust.pointers), named by ``rule``."""

from __future__ import annotations

import pytest

from core.errors import EXIT_TRUST, TrustError
from core.trust import pointers
from core.trust.pointers import RULES, Expired, PointerRejected, Replay, reject

RULE_NAMES = (
    "malformed",
    "untrusted",
    "revoked",
    "threshold",
    "channel mismatch",
    "replay",
    "same version",
    "expired",
    "missing",
)


def test_one_class_per_rule_name() -> None:
    assert sorted(RULES) == sorted(RULE_NAMES)
    assert len(set(RULES.values())) == len(RULE_NAMES)
    for name, cls in RULES.items():
        assert issubclass(cls, PointerRejected) and issubclass(cls, TrustError) and cls.rule == name


@pytest.mark.parametrize("name", RULE_NAMES)
def test_reject_builds_the_rule_class_with_the_message_prefix(name: str) -> None:
    exc = reject(name, "why")
    assert type(exc) is RULES[name] and exc.rule == name
    assert str(exc) == f"{name}: why" and exc.exit_code == EXIT_TRUST


def test_rule_constants_name_the_classes() -> None:
    assert Replay.rule == pointers.REPLAY and Expired.rule == pointers.EXPIRED
    with pytest.raises(KeyError):
        reject("no such rule", "x")
