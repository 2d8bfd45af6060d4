"""The node side: node root, hydrate, environment, smoke, probe. Never imports site code or SQLite."""
