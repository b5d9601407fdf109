"""A package's public names, each loaded from its module on first use (PEP 562), so importing one
light module of the package (as the Ray registry does) does not load PyTorch through ``__init__``."""

from __future__ import annotations

import importlib


def exports(package: str, homes: dict[str, tuple[str, ...]]):
    """``(__getattr__, __all__)`` for ``package``, whose names live in the modules ``homes`` maps
    (relative module name -> names)."""
    module_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str):
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module_of[name], package), name)

    return __getattr__, sorted(module_of)
