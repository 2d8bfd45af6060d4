"""The console host's side: config, state database, catalogue, channels, publish, verify, gc, keys."""
