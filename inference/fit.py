"""One entry point for every engine: :func:`fit`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from scai.inference.errors import EngineError
from scai.inference.posterior import Posterior
from scai.models.data import DataError, Problem, read_interactions, validate_frame
from scai.models.hypotheses import Hypothesis, get_hypothesis
from scai.models.layout import GroupData

ENGINES = ("exact", "svi", "mcmc")


def _engine(name: str):
    from scai.inference.exact import fit_exact
    from scai.inference.mcmc import fit_mcmc
    from scai.inference.svi import fit_svi

    return {"exact": fit_exact, "svi": fit_svi, "mcmc": fit_mcmc}[name]


def prepare(
    data: pd.DataFrame | str | Path,
    hypothesis: Hypothesis | str | Path,
    users: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, GroupData, Hypothesis]:
    """Validate the inputs (before any inference runs) and build the model's tensors."""
    hypothesis = get_hypothesis(hypothesis)
    if isinstance(data, str | Path):
        table = read_interactions(data)
    elif isinstance(data, pd.DataFrame):
        table = validate_frame(data)
    else:
        raise TypeError(f"data must be a DataFrame or a CSV path, got {type(data).__name__}")
    if users is not None:
        bad = [
            Problem(i, "policy", p, f"allowed: {', '.join(hypothesis.policy_names)}")
            for i, p in enumerate(users["policy"], start=1)
            if p not in hypothesis.policy_names
        ]
        if bad:
            raise DataError(f"users (hypothesis {hypothesis.name!r})", bad)
    return table, GroupData.from_table(table), hypothesis


def fit(
    data: pd.DataFrame | str | Path,
    hypothesis: Hypothesis | str | Path = "neutral",
    engine: str = "exact",
    seed: int = 0,
    users: pd.DataFrame | None = None,
    **options: Any,
) -> Posterior:
    """Posterior over the group norms behind ``data`` (a validated interaction table or CSV).

    ``engine``: ``"exact"`` (enumeration and quadrature; see :mod:`scai.inference.exact` for the
    hypotheses it is exact for), ``"svi"`` (:mod:`scai.inference.svi`) or ``"mcmc"``
    (:mod:`scai.inference.mcmc`); ``options`` go to the engine. ``users`` (optional, the true types)
    is checked against the hypothesis's policies. Bad input fails before inference starts.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    table, group, hypothesis = prepare(data, hypothesis, users)
    if engine == "exact":
        from scai.inference.exact import check_exact

        check_exact(hypothesis, group)
    for key, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"option {key}={value!r} must be finite")
    return _engine(engine)(group, hypothesis, table=table, seed=seed, **options)
