"""How well any responder could agree with the users' accept/reject decisions: upper bounds.

``accept_agreement`` (:mod:`.assistant`) is the probability that a responder's decision on a
user's offer matches the user responder's, averaged over each (run, epoch)'s games and then
over (run, epoch)s from the paper's epoch 2 on. It is linear in the responder's acceptance
probability ``p``: on a set of games of which a share ``q`` were accepted, ``q p + (1 - q)(1 - p)
<= max(q, 1 - q)``, reached by the majority decision. So the best agreement of any responder
whose decision depends only on some features of a game (a *stationary* policy: a norm) is that
of the majority decision within each cell of those features, known in hindsight; a random
responder (one that accepts with a learned probability ``q``) reaches only ``q^2 + (1 - q)^2``.

Bounds per condition (:func:`decision_bounds`), each the agreement of the hindsight majority
decision in cells of:

* ``epoch_oracle``: (run, epoch, offer): knows each epoch's decisions before they are made;
* ``stationary_run``: (run, offer): one norm per run, the same in every epoch;
* ``stationary_offer_pot``: (offer, pot): one norm for the condition, depending on the pot;
* ``stationary_offer_currency``: (offer, currency): one norm per currency;
* ``best_stationary``: the largest of the three stationary bounds.

and, for scale, one learner that uses no hindsight: ``past_majority`` decides on an offer as
the run's users decided on that offer in most of its earlier epochs (accepting when it has not
seen the offer or the earlier epochs tie).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The first epoch scored (the first the assistant plays after seeing one).
FIRST_SCORED = 2
#: The hindsight cells of each stationary bound, besides the condition.
STATIONARY = {
    "stationary_run": ("sim", "offer"),
    "stationary_offer_pot": ("offer", "pot"),
    "stationary_offer_currency": ("offer", "currency"),
}
BOUNDS = ("epoch_oracle", *STATIONARY, "best_stationary", "past_majority")


def _agreement(games: pd.DataFrame, decision: np.ndarray) -> pd.Series:
    """Per condition: the mean over (run, epoch) of the share of games whose decision matches
    the user responder's (the way ``accept_agreement`` averages)."""
    agree = games.assign(agree=(decision == games["accepted"].to_numpy()).astype(float))
    per_epoch = agree.groupby(["condition", "sim", "epoch"])["agree"].mean()
    return per_epoch.groupby("condition").mean()


def _majority(games: pd.DataFrame, cells: list[str]) -> np.ndarray:
    """The majority decision of each game's cell (ties accept)."""
    rate = games.groupby(cells)["accepted"].transform("mean").to_numpy()
    return (rate >= 0.5).astype(int)


def past_majority(games: pd.DataFrame) -> np.ndarray:
    """Per game: the decision its run's users took on the same offer in most earlier epochs
    (accept if none or a tie): a per-run norm learned from the past alone."""
    decision = np.ones(len(games), dtype=int)
    position = {index: i for i, index in enumerate(games.index)}
    for _, run in games.groupby("sim", sort=False):
        for epoch in sorted(run["epoch"].unique()):
            past = run[run["epoch"] < epoch].groupby("offer")["accepted"].mean()
            now = run[run["epoch"] == epoch]
            rate = now["offer"].map(past).fillna(1.0).to_numpy()
            for index, r in zip(now.index, rate, strict=True):
                decision[position[index]] = int(r >= 0.5)
    return decision


def decision_bounds(games: pd.DataFrame, first: int = FIRST_SCORED) -> pd.DataFrame:
    """One row per condition: the upper bounds and the past-majority learner of the module
    docstring on ``games`` (user-user games with a ``condition`` column), scored from epoch
    ``first`` on, and ``accept_rate`` (the share of those games accepted)."""
    learned = pd.Series(past_majority(games), index=games.index)
    scored = games[games["epoch"] >= first]
    columns = {"epoch_oracle": _agreement(scored, _majority(scored, ["sim", "epoch", "offer"]))}
    for name, cells in STATIONARY.items():
        columns[name] = _agreement(scored, _majority(scored, ["condition", *cells]))
    out = pd.DataFrame(columns)
    out["best_stationary"] = out[list(STATIONARY)].max(axis=1)
    out["past_majority"] = _agreement(scored, learned[scored.index].to_numpy())
    out["accept_rate"] = scored.groupby("condition")["accepted"].mean()
    return out.rename_axis("condition").reset_index()[["condition", *BOUNDS, "accept_rate"]]
