"""The Textual face: app, screens, widgets, actions."""
