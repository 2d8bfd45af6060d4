"""Node sets and fan-out over them: SSH transport, fleet checks."""
