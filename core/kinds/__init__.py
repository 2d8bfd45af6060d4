"""Everything Julia- or Python-specific: lock files, depot layouts, environments."""
