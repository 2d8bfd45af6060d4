"""Rewrite the README's configuration tables from their declarations.

``core.site.config.markdown_table()`` (``console.toml``) and ``core.node.root.node_config_table()``
(``node.toml``) are the source; ``tests/unit/test_config.py`` fails when the README lags behind.
Run after adding or changing a setting: ``python scripts/readme_tables.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.node.root import node_config_table  # noqa: E402
from core.site.config import markdown_table  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def _replace_table(text: str, heading: str, table: str) -> str:
    """Replace the first markdown table after ``heading`` with ``table``."""
    start = text.index(heading)
    lines = text[start:].split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    last = next(i for i in range(first, len(lines)) if not lines[i].startswith("|"))
    lines[first:last] = table.split("\n")
    return text[:start] + "\n".join(lines)


def main() -> None:
    text = README.read_text()
    text = _replace_table(text, "## Configuration (`console.toml`)", markdown_table())
    text = _replace_table(text, "### Node configuration (`node.toml`)", node_config_table())
    README.write_text(text)


if __name__ == "__main__":
    main()
