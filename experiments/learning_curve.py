"""The learning curve: the posterior probability of the true norm after each interaction, and
how many interactions it takes to reach a level."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scai.experiments.conditions import Condition
from scai.inference.exact import fit_exact
from scai.models.hypotheses import Hypothesis
from scai.models.layout import ASSISTANT, GroupData


def learning_curve(
    interactions: pd.DataFrame, hyp: Hypothesis, user_ids: dict, cond: Condition, truth
) -> pd.DataFrame:
    """Posterior probability of the true norm after each interaction with a user, for every
    simulation: all prefixes are fitted at once as separate groups of one exact fit
    (:meth:`GroupData.prefixes`)."""
    rows = interactions[
        ~((interactions.proposer == ASSISTANT) & (interactions.responder == ASSISTANT))
    ].reset_index(drop=True)
    users = {str(sim): user_ids[str(sim)] for sim in rows["sim"].unique()}
    data = GroupData.from_table(rows, users=users).prefixes()
    post = fit_exact(data, hyp, num_draws=10)
    k = hyp.policy_index(cond.true_policy)
    out = []
    for s, sim_id in enumerate(data.sim_ids):
        sim, n = sim_id.split("#")
        count = len(data.user_ids[s])
        out.append((int(sim), int(n), float(post.policy_probs[s, :count, k].mean())))
    return pd.DataFrame(out, columns=["sim", "interactions", "p_true"])


def interactions_to_reach(curve: pd.DataFrame, level: float = 0.95) -> pd.Series:
    """Per simulation: the first number of interactions after which ``p_true >= level``
    (NaN if never)."""

    def first(group):
        hit = group.loc[group.p_true >= level, "interactions"]
        return float(hit.min()) if len(hit) else np.nan

    return curve.groupby("sim").apply(first, include_groups=False)
