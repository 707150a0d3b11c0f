"""``scai sweep``: one experiment's base condition over a grid of settings, every cell through
the cached, resumable condition runner of ``scai run``, on this machine or a Dask cluster.

- :mod:`.spec`: the TOML specification (base condition, axes, measure), checked first;
- :mod:`.cells`: the cells, their conditions and what each measures;
- :mod:`.backends`: where the conditions are computed (``local`` or ``dask``);
- :mod:`.report`: progress lines, the tidy ``sweep.csv`` and the heat-map;
- :mod:`.run`: :func:`run_sweep`, all of it.

Its names are imported on first use: ``scai``'s command line reads :data:`.backends.BACKENDS`
and :data:`.spec.AXES` for its options, and importing :mod:`.run` with them (the experiments,
matplotlib) cost every command ~0.2 s before it started.
"""

from __future__ import annotations

from scai.experiments.lazy import lazy_names

__all__ = ["SweepResult", "SweepSpec", "load_spec", "run_sweep"]
__getattr__ = lazy_names(
    __name__,
    {"SweepResult": "run", "run_sweep": "run", "SweepSpec": "spec", "load_spec": "spec"},
)
