"""Summaries over simulations: means with t-intervals, and the tidy per-epoch table every
experiment writes (``summary.csv``)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from scai.experiments.protocol import ConditionResult

# -- results: tidy summaries, caching, parallel conditions -------------------------------------

#: What an offered share (% of the pot) can be: its intervals are cut to it.
SHARE_RANGE = (0.0, 100.0)


def mean_interval(
    values: np.ndarray, bounds: tuple[float, float] = SHARE_RANGE
) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of the mean over simulations, cut to ``bounds`` (the values'
    range: a t-interval of a few simulations, or of shares near 100%, reaches past it)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(values.mean())
    if n == 1:
        return mean, mean, mean, 1
    half = float(_t_975(n - 1) * values.std(ddof=1) / np.sqrt(n))
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1]), n


@functools.cache
def _t_975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom (a report asks for the
    same few hundreds of times). ``scipy.special.stdtrit`` is what ``scipy.stats.t.ppf``
    computes (the same bits), without importing ``scipy.stats`` (~1 s of a run's CPU)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, 0.975))


def summarise(experiment: str, result: ConditionResult, hypothesis_name: str) -> pd.DataFrame:
    """Tidy rows: condition x epoch x agent with offered share (mean, 95% CI, n) and more."""
    rows = []
    for epoch, group in result.per_sim.groupby("epoch"):
        for agent, column in (("users", "users_share"), ("assistant", "assistant_share")):
            mean, lo, hi, n = mean_interval(group[column])
            row = {
                "experiment": experiment,
                "condition": result.condition.name,
                "hypothesis": hypothesis_name,
                "epoch": int(epoch),
                "agent": agent,
                "offered_share_mean": mean,
                "offered_share_lo": lo,
                "offered_share_hi": hi,
                "n": n,
            }
            if agent == "assistant":
                row["agreement_mean"] = float(group["agreement"].mean())
                if "p_true" in group:
                    row["p_true_mean"] = float(group["p_true"].mean())
                for col in group.columns:
                    if col.startswith("pi_"):
                        row[f"{col}_mean"] = float(group[col].mean())
            rows.append(row)
    return pd.DataFrame(rows)
