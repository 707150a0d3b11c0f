"""The learning curve: the posterior probability of the true norm after each interaction, and
how many interactions it takes to reach a level."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scai.experiments.conditions import Condition
from scai.inference.exact import fit_exact, policy_probabilities
from scai.inference.posterior import Posterior
from scai.models.hypotheses import Hypothesis
from scai.models.layout import ASSISTANT, GroupData


def prefix_data(rows: pd.DataFrame, user_ids: dict) -> tuple[GroupData, list[tuple[str, int]]]:
    """Every simulation's prefixes of ``rows`` (in table order) as separate groups
    (:meth:`GroupData.prefixes`): group ``"<sim>#<n>"`` holds the simulation's first ``n`` rows
    and all of its users ``user_ids[sim]`` (those not yet seen too). Returns the data and, per
    group in its order, ``(sim, n)``."""
    users = {str(sim): user_ids[str(sim)] for sim in rows["sim"].unique()}
    data = GroupData.from_table(rows, users=users).prefixes()
    groups = [(sim, int(n)) for sim, n in (g.rsplit("#", 1) for g in data.sim_ids)]
    return data, groups


def prefix_fit(
    rows: pd.DataFrame, hyp: Hypothesis, user_ids: dict, seed: int = 0, num_draws: int = 10
) -> tuple[GroupData, Posterior, list[tuple[str, int]]]:
    """:func:`prefix_data`'s groups fitted at once as separate groups of one exact fit.
    Returns the data, the posterior and, per group in the posterior's order, ``(sim, n)``."""
    data, groups = prefix_data(rows, user_ids)
    post = fit_exact(data, hyp, seed=seed, num_draws=num_draws)
    return data, post, groups


def learning_curve(
    interactions: pd.DataFrame, hyp: Hypothesis, user_ids: dict, cond: Condition, truth
) -> pd.DataFrame:
    """Posterior probability of the true norm after each interaction with a user, for every
    simulation: all prefixes (:func:`prefix_data`) as groups of the exact engine, which fits
    one group of each kind (:func:`policy_probabilities`)."""
    rows = interactions[
        ~((interactions.proposer == ASSISTANT) & (interactions.responder == ASSISTANT))
    ].reset_index(drop=True)
    data, groups = prefix_data(rows, user_ids)
    k = hyp.policy_index(cond.true_policy)
    counts = [len(ids) for ids in data.user_ids]
    probs = policy_probabilities(data, hyp)[..., k]  # [groups, U]
    if len(set(counts)) == 1:  # every group's mean at once, on the same strided rows as below
        p_true = probs[:, : counts[0]].mean(-1).tolist()
    else:
        p_true = [float(probs[s, :count].mean()) for s, count in enumerate(counts)]
    out = [(int(sim), n, float(p)) for (sim, n), p in zip(groups, p_true, strict=True)]
    return pd.DataFrame(out, columns=["sim", "interactions", "p_true"])


def interactions_to_reach(curve: pd.DataFrame, level: float = 0.95) -> pd.Series:
    """Per simulation: the first number of interactions after which ``p_true >= level``
    (NaN if never)."""
    sims, at = np.unique(curve["sim"].to_numpy(), return_inverse=True)
    hit = curve["p_true"].to_numpy() >= level
    first = np.full(len(sims), np.nan)  # fmin keeps the number over NaN: NaN stays "never"
    np.fmin.at(first, at[hit], curve["interactions"].to_numpy(float)[hit])
    return pd.Series(first, index=pd.Index(sims, name="sim"))
