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


#: Event slots (prefix groups x users x events per user) of the learning curve's groups
#: fitted at once: ~600 bytes each at their peak (1,000 users: ~60 MB a simulation, where a
#: sweep cell of 1,000 simulations took all 24 GB of the machine). ``scai run all``'s
#: conditions (20 simulations of 10 users: ~10^5 slots) fit in one block.
CURVE_SLOTS = 2_000_000


def learning_curve(
    interactions: pd.DataFrame, hyp: Hypothesis, user_ids: dict, cond: Condition, truth
) -> pd.DataFrame:
    """Posterior probability of the true norm after each interaction with a user, for every
    simulation: all prefixes (:func:`prefix_data`) as groups of the exact engine, which fits
    one group of each kind (:func:`policy_probabilities`), the simulations in blocks of at
    most :data:`CURVE_SLOTS` event slots (the groups are independent: a block's are what they
    are fitted with all the others)."""
    rows = interactions[
        ~((interactions.proposer == ASSISTANT) & (interactions.responder == ASSISTANT))
    ].reset_index(drop=True)
    k = hyp.policy_index(cond.true_policy)
    out = []
    for block in _simulation_blocks(rows, user_ids):
        data, groups = prefix_data(block.reset_index(drop=True), user_ids)
        counts = [len(ids) for ids in data.user_ids]
        probs = policy_probabilities(data, hyp)[..., k]  # [groups, U]
        if len(set(counts)) == 1:  # every group's mean at once, on the same strided rows
            p_true = probs[:, : counts[0]].mean(-1).tolist()
        else:
            p_true = [float(probs[s, :count].mean()) for s, count in enumerate(counts)]
        out += [(int(sim), n, float(p)) for (sim, n), p in zip(groups, p_true, strict=True)]
    return pd.DataFrame(out, columns=["sim", "interactions", "p_true"])


def _simulation_blocks(rows: pd.DataFrame, user_ids: dict) -> list[pd.DataFrame]:
    """``rows`` cut into consecutive runs of whole simulations (in table order) whose prefix
    groups hold at most :data:`CURVE_SLOTS` event slots together (a simulation alone may
    hold more): one block, ``rows`` itself, where all of them fit."""
    sims = rows["sim"].astype(str)
    names, counts = np.unique(sims.to_numpy(), return_counts=True)
    # a bound first (no user plays more games than its simulation has rows): all at once
    if sum(int(n) ** 2 * len(user_ids[s]) for s, n in zip(names, counts, strict=True)) <= (
        CURVE_SLOTS
    ):
        return [rows]
    # per simulation: its prefix groups (one per row) x its users x the most games one played
    players = pd.DataFrame(
        {
            "sim": np.concatenate([sims.to_numpy(), sims.to_numpy()]),
            "user": np.concatenate([rows.proposer.to_numpy(), rows.responder.to_numpy()]),
        }
    )
    most = players.groupby(["sim", "user"], sort=False).size().groupby(level=0).max()
    order = list(dict.fromkeys(sims))
    rows_of = dict(zip(names, counts.tolist(), strict=True))
    slots = {s: rows_of[s] * len(user_ids[s]) * int(most[s]) for s in order}
    if sum(slots.values()) <= CURVE_SLOTS:
        return [rows]
    blocks, current, size = [], [], 0
    for s in order:
        if current and size + slots[s] > CURVE_SLOTS:
            blocks.append(current)
            current, size = [], 0
        current.append(s)
        size += slots[s]
    blocks.append(current)
    return [rows[sims.isin(block).to_numpy()] for block in blocks]


def interactions_to_reach(curve: pd.DataFrame, level: float = 0.95) -> pd.Series:
    """Per simulation: the first number of interactions after which ``p_true >= level``
    (NaN if never)."""
    sims, at = np.unique(curve["sim"].to_numpy(), return_inverse=True)
    hit = curve["p_true"].to_numpy() >= level
    first = np.full(len(sims), np.nan)  # fmin keeps the number over NaN: NaN stays "never"
    np.fmin.at(first, at[hit], curve["interactions"].to_numpy(float)[hit])
    return pd.Series(first, index=pd.Index(sims, name="sim"))
