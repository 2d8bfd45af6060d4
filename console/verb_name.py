"""Which verb a command line names, read before any parsing (builtins only: the launcher and
the CLI both need it before they import anything else)."""

from __future__ import annotations


def verb_of(argv: list[str]) -> str | None:
    """The verb a command line names (the first word that is not an option or ``--site``'s
    value); None when there is none, or when help or the version is asked before it."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help", "--version", "--"):
            return None
        if len(word) >= 3 and "--site".startswith(word):  # argparse takes --s, --si, --sit too
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None
