"""scai's warnings point at the caller's line, not scai's own (Python shows the line a
warning names)."""

from __future__ import annotations

import inspect
import warnings

from scai.inference import fit
from scai.inference.diagnostics import DiagnosticWarning
from scai.models.hypotheses import PRESETS
from scai.models.simulate import simulate


def test_mcmc_warnings_point_at_the_callers_line():
    """The diagnostics' warning pointed at scai's inference/fit.py; it names the line of the
    user's ``fit`` call now."""
    table = simulate(PRESETS["neutral"], policy="selfish", users=4, rounds=2, sims=3).interactions
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        fit(table, "neutral", engine="mcmc", num_chains=2, samples=20, warmup=20, progress=False)
    ours = [w for w in caught if issubclass(w.category, DiagnosticWarning)]
    assert ours, "20 draws per chain give ESS < 400: a diagnostics warning"
    assert all((w.filename, w.lineno) == (__file__, line) for w in ours), [
        (w.filename, w.lineno) for w in ours
    ]
