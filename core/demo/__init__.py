"""The demo site and synthetic depots."""
