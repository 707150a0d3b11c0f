"""The human-data experiment's tables: rejection by offer, Pareto k per subject, and the
subjects whose Pareto k is high.

* :func:`rejection_table`: per role and offer share, the observed rejection rate, the
  in-sample replicates' mean and 95% interval and the new subjects' (``rejection_by_offer*.csv``);
* :func:`pareto_table`: every subject's PSIS-LOO Pareto k under each hypothesis, with what
  makes a subject unusual (``pareto_k.csv``), and :func:`explain_high_k` naming the high ones;
* :func:`max_errors`: each hypothesis's largest ``|observed - predicted|`` per role, of either;
  :func:`levels_inside`: at how many offer levels the observed rate is inside a 95% band.
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
    "new_subject_mean",
    "new_subject_lo",
    "new_subject_hi",
)


def rejection_table(fit: ResponderFit, observed: pd.DataFrame) -> pd.DataFrame:
    """:data:`CSV_COLUMNS`: the observed rejection rate by role and offer share; the mean and
    95% interval of the in-sample replicates (``predicted_*``: each subject's decisions from
    its posterior state given its own decisions) and of new subjects' (``new_subject_*``: a
    new subject of the role in each subject's cells, its state drawn from the role's
    distribution; the file's ``posterior_predictive``), over the posterior draws."""
    rows = []
    rate = fit.replicated_rate.reshape(-1, *fit.replicated_rate.shape[2:])  # [draws, R, A]
    new = fit.new_subject_rate.reshape(rate.shape)
    share_index = {round(float(s), 10): a for a, s in enumerate(fit.shares)}
    role_index = {r: i for i, r in enumerate(fit.data.roles)}
    for row in observed.itertuples(index=False):
        r, a = role_index[row.role], share_index[round(float(row.offer_share), 10)]
        values, fresh = rate[:, r, a], new[:, r, a]
        rows.append(
            {
                "role": row.role,
                "offer_share": float(row.offer_share),
                "n": int(row.n),
                "observed": float(row.observed),
                "predicted_mean": float(values.mean()),
                "predicted_lo": float(np.quantile(values, 0.025)),
                "predicted_hi": float(np.quantile(values, 0.975)),
                "new_subject_mean": float(fresh.mean()),
                "new_subject_lo": float(np.quantile(fresh, 0.025)),
                "new_subject_hi": float(np.quantile(fresh, 0.975)),
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


def max_errors(
    tables: dict[str, pd.DataFrame], predicted: str = "predicted_mean"
) -> dict[str, dict[str, float]]:
    """``{hypothesis: {role: max |observed - predicted|}}`` over the offer levels, the
    prediction the column ``predicted`` (``"new_subject_mean"``: new subjects')."""
    return {
        name: {
            role: float((t[t.role == role].observed - t[t.role == role][predicted]).abs().max())
            for role in dict.fromkeys(t.role)
        }
        for name, t in tables.items()
    }


def levels_inside(table: pd.DataFrame, band: str = "new_subject") -> int:
    """The offer levels (rows, over both roles) whose observed rate lies inside the 95%
    interval ``{band}_lo`` to ``{band}_hi`` (``"predicted"``: the in-sample replicates')."""
    return int(table.observed.between(table[f"{band}_lo"], table[f"{band}_hi"]).sum())
