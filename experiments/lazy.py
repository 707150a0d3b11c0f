"""Packages whose names are imported on first use (PEP 562), so that importing one light
submodule of theirs (an option's choices, read by ``scai``'s parser) does not import the
heavy rest with the package."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], object]:
    """A package's module ``__getattr__``: name ``n`` of ``homes`` is looked up in submodule
    ``homes[n]`` of ``package``, imported then; any other name is an ``AttributeError``."""

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
