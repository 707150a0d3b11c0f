"""``scai run original-logs``: the Bayesian assistant fitted on the original study's GPT-4
users, epoch by epoch, beside the users and the GPT-4 assistant (see :mod:`.experiment`).

The experiment is imported on first use of ``NAME``, ``main`` or ``run``: ``scai``'s command
line reads :data:`.tones.LOG_TONES` for its options, and importing the experiment with it
(its report draws with matplotlib) cost every command ~0.2 s before it started."""

from __future__ import annotations

from scai.experiments.lazy import lazy_names

__all__ = ["NAME", "main", "run"]
#: What an interrupted run keeps for the next (each fit, cached under ``OUT/original-logs``).
KEPT = "finished fits"
__getattr__ = lazy_names(__name__, dict.fromkeys(__all__, "experiment"))
