"""depot-console: the face (headless CLI and Textual TUI) over the ``core`` library."""

__version__ = "0.1.0"
