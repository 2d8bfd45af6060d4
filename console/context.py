"""What a headless verb receives and returns: ``Context`` in, ``Output`` out.

Verbs import this module, never ``console.cli``: the CLI imports the verbs (to register them) and,
lazily, the terminal console, so a verb that imported the CLI would close an import circle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.site.site import Site


@dataclass
class Output:
    """What a verb returns: a JSON document, the human text, an exit code.

    ``open_console`` asks the CLI to open the terminal console on that site directory before it
    prints anything (``console demo`` on a terminal); the console's exit code becomes the verb's.
    Verbs never import the TUI themselves.
    """

    data: Any = None
    text: str = ""
    exit_code: int = 0
    notes: list[str] = field(default_factory=list)
    open_console: Path | None = None


class Context:
    """Per-invocation context handed to verbs: parsed args and lazy site access."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json = bool(getattr(args, "json", False))
        self.read_only = bool(getattr(args, "read_only", False))
        self._site: Site | None = None

    @property
    def site_dir(self) -> Path:
        from core.site.site import default_site_dir

        s = getattr(self.args, "site", None)
        return Path(s) if s else default_site_dir()

    @property
    def site(self) -> Site:
        """The site, opened on first use (``--read-only`` applies) and closed by ``close``."""
        if self._site is None:
            from core.site.site import open_site

            self._site = open_site(self.site_dir, read_only=self.read_only)
        return self._site

    def use_site(self, site: Site) -> None:
        """Adopt a site the verb opened itself (``init`` creates one), so ``close`` closes it."""
        self._site = site

    def progress_enabled(self) -> bool:
        flag = getattr(self.args, "progress", None)
        return sys.stderr.isatty() if flag is None else flag

    def close(self) -> None:
        if self._site is not None:
            self._site.close()


Handler = Callable[[Context], Output]
