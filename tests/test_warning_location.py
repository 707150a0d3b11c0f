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


def test_update_and_simulate_warnings_point_at_the_callers_line():
    """``online.update``'s warnings and ``simulate``'s named a fixed frame: an epoch given
    twice pointed at ``online.py``'s ``update`` (a review), the idle users' warning at
    ``simulate``'s own line; they name the user's call now (here a lambda's one line)."""
    from scai.inference.online import update
    from scai.models.errors import DuplicateGamesWarning, SimulationWarning

    def assert_warns_at_the_call(category, call) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        places = {(w.filename, w.lineno) for w in caught if issubclass(w.category, category)}
        assert places == {(__file__, call.__code__.co_firstlineno)}, places

    table = simulate(PRESETS["neutral"], policy="selfish", users=4, rounds=2, sims=1).interactions
    posterior = fit(table, "neutral", engine="exact", num_draws=10)
    assert_warns_at_the_call(DuplicateGamesWarning, lambda: update(posterior, table))
    idle = lambda: simulate("neutral", policy="fair", users=400, rounds=2)  # noqa: E731
    assert_warns_at_the_call(SimulationWarning, idle)


def test_svi_warnings_point_at_the_callers_line():
    """SVI's warnings (here a :class:`ConvergenceWarning` and an :class:`UncorrectedWarning`)
    pointed at Python's ``contextlib.py``: ``fit_svi`` was decorated with a context manager,
    whose wrapper is a frame outside scai, so it was the line they named. They name the
    user's ``fit`` call now."""
    from scai.inference.svi import ConvergenceWarning, UncorrectedWarning

    table = simulate(PRESETS["pooled"], policy="selfish", users=4, rounds=2).interactions
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        fit(table, "pooled", engine="svi", max_steps=5, num_draws=10, correction=None)
    ours = [w for w in caught if issubclass(w.category, ConvergenceWarning | UncorrectedWarning)]
    assert {w.category for w in ours} == {ConvergenceWarning, UncorrectedWarning}
    assert all((w.filename, w.lineno) == (__file__, line) for w in ours), [
        (w.filename, w.lineno) for w in ours
    ]
