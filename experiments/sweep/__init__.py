"""``scai sweep``: one experiment's base condition over a grid of settings, every cell through
the cached, resumable condition runner of ``scai run``, on this machine or a Dask cluster.

- :mod:`.spec`: the TOML specification (base condition, axes, measure), checked first;
- :mod:`.cells`: the cells, their conditions and what each measures;
- :mod:`.backends`: where the conditions are computed (``local`` or ``dask``);
- :mod:`.report`: progress lines, the tidy ``sweep.csv`` and the heat-map;
- :mod:`.run`: :func:`run_sweep`, all of it.
"""

from scai.experiments.sweep.run import SweepResult, run_sweep
from scai.experiments.sweep.spec import SweepSpec, load_spec

__all__ = ["SweepResult", "SweepSpec", "load_spec", "run_sweep"]
