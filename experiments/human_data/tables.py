"""The human-data experiment's tables: rejection by offer, Pareto k per subject, and the
subjects whose Pareto k is high.

* :func:`rejection_table`: per role and offer share, the observed rejection rate and the
  posterior predictive's mean and 95% interval (``rejection_by_offer*.csv``);
* :func:`pareto_table`: every subject's PSIS-LOO Pareto k under each hypothesis, with what
  makes a subject unusual (``pareto_k.csv``), and :func:`explain_high_k` naming the high ones;
* :func:`max_errors`: each hypothesis's largest ``|observed - predicted|`` per role.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from scai.experiments.human_data.fitting import ResponderFit

PARETO_K_LIMIT = 0.7
CSV_COLUMNS = (
    "role",
    "offer_share",
    "n",
    "observed",
    "predicted_mean",
    "predicted_lo",
    "predicted_hi",
)


def rejection_table(fit: ResponderFit, observed: pd.DataFrame) -> pd.DataFrame:
    """``role, offer_share, n, observed, predicted_mean, predicted_lo, predicted_hi``: the
    observed rejection rate and the posterior predictive's mean and 95% interval."""
    rows = []
    rate = fit.replicated_rate.reshape(-1, *fit.replicated_rate.shape[2:])  # [draws, R, A]
    share_index = {round(float(s), 10): a for a, s in enumerate(fit.shares)}
    role_index = {r: i for i, r in enumerate(fit.data.roles)}
    for row in observed.itertuples(index=False):
        r, a = role_index[row.role], share_index[round(float(row.offer_share), 10)]
        values = rate[:, r, a]
        rows.append(
            {
                "role": row.role,
                "offer_share": float(row.offer_share),
                "n": int(row.n),
                "observed": float(row.observed),
                "predicted_mean": float(values.mean()),
                "predicted_lo": float(np.quantile(values, 0.025)),
                "predicted_hi": float(np.quantile(values, 0.975)),
            }
        )
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def pareto_table(fits: list[ResponderFit], idatas: dict[str, Any]) -> pd.DataFrame:
    """Every subject's Pareto k (PSIS-LOO) under each hypothesis, with what makes the subject
    unusual: its rejections, its rejections of an offer higher than one it accepted (pairs),
    and its posterior probability of being inattentive."""
    import arviz as az

    rows = []
    for fit in fits:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = az.loo(idatas[fit.name], pointwise=True)
        k = loo.pareto_k.values
        data = fit.data
        inattentive = fit.state_prob[:, -1] if fit.spec.inattentive.enabled else np.zeros(len(k))
        n_rej, n_tr = data.n_reject.numpy(), data.n_trials.numpy()
        offers = data.shares.numpy()
        loglik = fit.subjects["loglik"].reshape(-1, len(k)).mean(0)
        for s, subject in enumerate(data.subjects):
            rej = n_rej[s]
            acc = n_tr[s] - rej
            inverted = sum(
                rej[i] * acc[j]
                for i in range(len(offers))
                for j in range(len(offers))
                if offers[j] < offers[i]
            )
            rows.append(
                {
                    "hypothesis": fit.name,
                    "subject": subject,
                    "role": data.roles[int(data.role_index[s])],
                    "pareto_k": float(k[s]),
                    "rejections": int(rej.sum()),
                    "decisions": int(n_tr[s].sum()),
                    "inverted_pairs": int(inverted),
                    "p_inattentive": float(inattentive[s]),
                    "mean_loglik": float(loglik[s]),
                }
            )
    return pd.DataFrame(rows)


def arviz_k_threshold(n_draws: int) -> float:
    """ArviZ's sample-size-dependent Pareto k threshold, ``min(1 - 1 / log10(S), 0.7)``."""
    return min(1 - 1 / math.log10(n_draws), PARETO_K_LIMIT)


def explain_high_k(
    table: pd.DataFrame, limit: float = PARETO_K_LIMIT, below: float = math.inf
) -> list[str]:
    """One line per subject with Pareto k above ``limit`` (and at most ``below``), naming it
    and why."""
    lines = []
    chosen = (table["pareto_k"] > limit) & (table["pareto_k"] <= below)
    for row in table[chosen].itertuples(index=False):
        same = table[(table.hypothesis == row.hypothesis) & (table.role == row.role)]
        median = same["mean_loglik"].median()
        # High k: the posterior without the subject is far from the one with it, so PSIS
        # estimates its left-out term less reliably; it may fit worse than most (atypical) or
        # better (an extreme subject the population parameters bend towards).
        fitted = (
            "worse than"
            if row.mean_loglik < median
            else "better than"
            if row.mean_loglik > median
            else "as well as"
        )
        why = (
            f"rejected {row.rejections}/{row.decisions}, {row.inverted_pairs} inverted pairs "
            f"(rejected an offer higher than one it accepted), P(inattentive) "
            f"{row.p_inattentive:.2f}, log-likelihood {row.mean_loglik:.1f} vs the role's "
            f"median {median:.1f}: an influential subject, fitted {fitted} most, whose "
            "left-out term PSIS estimates less reliably"
        )
        lines.append(
            f"  {row.hypothesis}: subject {row.subject} ({row.role}), k = {row.pareto_k:.2f}: {why}"
        )
    return lines


def max_errors(tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """``{hypothesis: {role: max |observed - predicted_mean|}}`` over the offer levels."""
    return {
        name: {
            role: float((t[t.role == role].observed - t[t.role == role].predicted_mean).abs().max())
            for role in dict.fromkeys(t.role)
        }
        for name, t in tables.items()
    }
