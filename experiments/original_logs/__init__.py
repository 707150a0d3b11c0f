"""``scai run original-logs``: the Bayesian assistant fitted on the original study's GPT-4
users, epoch by epoch, beside the users and the GPT-4 assistant (see :mod:`.experiment`).

The experiment is imported on first use of ``NAME``, ``main`` or ``run``: ``scai``'s command
line reads :data:`.tones.LOG_TONES` for its options, and importing the experiment with it
(its report draws with matplotlib) cost every command ~0.2 s before it started."""

from __future__ import annotations

import importlib

__all__ = ["NAME", "main", "run"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.experiment"), name)
