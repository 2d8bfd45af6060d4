"""Lazy imports for the verb modules.

Every ``console`` run builds the whole argument parser, so a verb module's top-level imports are
paid by every verb. Modules named here load on first attribute access instead, which keeps
``console diff`` from importing SSH fan-out, HTTP and build machinery it never uses.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """The module ``name``, executed only when one of its attributes is first used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
