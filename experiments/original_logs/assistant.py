"""The Bayesian assistant on the original study's runs, epoch by epoch.

Before the paper's epoch ``e`` the assistant has seen the user-user games of epochs ``1 .. e-1``
of its run, and acts from its prior in epoch 1. All of a condition's runs and all four
prefixes are one exact fit (one group per run and prefix). GPT-4 saw the two games it played
with a user each epoch as well; the user's acts in those games (its reply to GPT-4's offer,
and the offer GPT-4 decided on) are not fitted here, where :mod:`scai.experiments.protocol`
scores a simulated user's acts in its games with the assistant: they answered another
assistant's acts, not scai's. The users' replies to GPT-4's offers are held out instead:
``reply_agreement`` scores scai's prediction of them.

What it does in epoch ``e`` is its acting distribution (:func:`scai.experiments.assistant.
assistant_norms` on the posterior predictive: a member's norm drawn per posterior draw), on
that epoch's pot and currency: ``offered_share`` is the expected share of the pot it offers,
``accept_agreement`` the probability that its decision on each of the epoch's user offers
matches the user responder's (averaged over those games), ``decision_agreement`` the same for
its more probable decision (accept when it would accept with probability at least 1/2: the
decision that maximises expected agreement; see :mod:`.decisions`). ``p_true_norm`` is the
users' mean posterior probability that their type proposes by the configured policy, and
``pi_<norm>`` the posterior mean share of each norm in the group. ``reply_agreement`` is
``accept_agreement`` on the epoch's held-out games in which GPT-4 proposed to a user (those of
the epoch's pot; NaN for none): how well scai's acting distribution, a member's norm, predicts
whether the users accept the offers GPT-4 made them.

:func:`interaction_curve` resolves learning finer than epochs: ``p_true_norm`` after each of
the first epoch's user-user games (every prefix of a run's games, one group of one exact fit,
as :func:`scai.experiments.learning_curve.learning_curve` does for simulated users).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from scai.experiments.assistant import assistant_norms
from scai.experiments.learning_curve import prefix_fit
from scai.inference import fit
from scai.models.hypotheses import Hypothesis
from scai.models.layout import ASSISTANT

EPOCHS = 5


def user_games(table: pd.DataFrame) -> pd.DataFrame:
    """The user-user games (neither side the assistant)."""
    keep = (table["proposer"] != ASSISTANT) & (table["responder"] != ASSISTANT)
    return table[keep].reset_index(drop=True)


def prefixes(games: pd.DataFrame, epochs: int = EPOCHS) -> pd.DataFrame:
    """Every run's games of epochs ``1..e`` as a group ``"<sim>#<e>"``, for ``e < epochs``
    where the run has an epoch ``e + 1`` to play (logs may hold fewer than ``epochs``)."""
    parts = []
    for e in range(1, epochs):
        played_next = games["sim"].isin(games.loc[games["epoch"] == e + 1, "sim"])
        part = games[(games["epoch"] <= e) & played_next].copy()
        part["sim"] = part["sim"] + f"#{e}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


#: The columns of the users' replies to GPT-4's offers that :func:`run_condition` scores.
REPLY_COLUMNS = ("sim", "epoch", "pot", "offer", "accepted")


def norm_share(probs: torch.Tensor, hypothesis: Hypothesis, norm: str) -> torch.Tensor:
    """``[..., K] -> [...]``: the probability of the types whose proposals follow ``norm``."""
    columns = [k for k, n in enumerate(hypothesis.norm_names) if n == norm]
    return probs[..., columns].sum(-1)


#: A run's configured policies: one name for every user, or a name per user (a mixed group).
Policy = str | dict[str, str]


def p_true_norm(
    probs: torch.Tensor, hypothesis: Hypothesis, policy: Policy, users: list[str]
) -> float:
    """The mean over ``users`` of the probability that their type proposes by their own
    configured ``policy``; ``probs`` is ``[len(users), K]``, or ``[K]`` for all alike."""
    names = [policy if isinstance(policy, str) else policy[u] for u in users]
    probs = probs.expand(len(users), -1) if probs.dim() == 1 else probs
    mask = torch.tensor([[n == name for n in hypothesis.norm_names] for name in names])
    return float((probs * mask.to(probs.dtype)).sum(-1).mean())


def run_users(games: pd.DataFrame) -> dict[str, list[str]]:
    """Per run, its users in the order they first play."""
    return {
        str(sim): list(dict.fromkeys(np.ravel(part[["proposer", "responder"]].to_numpy())))
        for sim, part in games.groupby("sim", sort=False)
    }


def run_condition(
    games: pd.DataFrame,
    policy: dict[str, Policy],
    hypothesis: Hypothesis,
    seed: int,
    epochs: int = EPOCHS,
    replies: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per ``sim, epoch`` for one condition's runs: the assistant's offered share,
    accept agreement, ``p_true_norm`` and ``pi_<norm>``. ``policy`` maps a run to its configured
    policies (:data:`Policy`); ``games`` are its user-user games with the tones to fit with;
    ``replies`` (:data:`REPLY_COLUMNS`), the users' decisions on GPT-4's offers, held out and
    scored as ``reply_agreement`` (none given: no such column)."""
    sims = list(dict.fromkeys(games["sim"]))
    first = games[games["epoch"] == 1]
    pots = first.groupby("sim")["pot"].first()
    currency = first.groupby("sim")["currency"].first()
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    records = []
    # epoch 1: the prior
    prior_norms = assistant_norms(
        None,
        hypothesis,
        [int(pots[s]) for s in sims],
        [currency[s] for s in sims],
        rng,
        acting="predictive",
        prior_generator=generator,
    )
    conc = torch.tensor(hypothesis.pi_concentration, dtype=torch.float64)
    prior_pi = conc / conc.sum()
    users = run_users(games)
    for i, sim in enumerate(sims):
        p_true = p_true_norm(prior_pi, hypothesis, policy[sim], users[sim])
        records.append(
            _record(sim, 1, games, prior_norms, i, p_true, replies)
            | _pi_columns(prior_pi, hypothesis)
        )
    stacked = prefixes(games, epochs)
    if stacked.empty:  # one epoch in the logs: the assistant never plays after seeing one
        return pd.DataFrame(records).sort_values(["sim", "epoch"]).reset_index(drop=True)
    posterior = fit(stacked, hypothesis, engine="exact", seed=seed)
    groups = posterior.data.sim_ids
    next_pots, next_currency = [], []
    for group in groups:
        sim, e = group.rsplit("#", 1)
        played = games[(games["sim"] == sim) & (games["epoch"] == int(e) + 1)]
        next_pots.append(int(played["pot"].iloc[0]))
        next_currency.append(str(played["currency"].iloc[0]))
    norms = assistant_norms(posterior, hypothesis, next_pots, next_currency, rng, "predictive")
    pi = posterior.pi_mean().double()
    for g, group in enumerate(groups):
        sim, e = group.rsplit("#", 1)
        ids = posterior.data.user_ids[g]
        probs = posterior.policy_probs[g, : len(ids)].double()
        true = p_true_norm(probs, hypothesis, policy[sim], ids)
        records.append(
            _record(sim, int(e) + 1, games, norms, g, true, replies)
            | _pi_columns(pi[g], hypothesis)
        )
    return pd.DataFrame(records).sort_values(["sim", "epoch"]).reset_index(drop=True)


def interaction_curve(
    games: pd.DataFrame,
    policy: dict[str, Policy],
    hypothesis: Hypothesis,
    seed: int,
    epochs: int = 1,
) -> pd.DataFrame:
    """One row per ``sim, interactions``: ``p_true_norm`` (the mean over all the run's users
    of the posterior probability that their type proposes by their configured policy,
    ``policy[sim]``) after the run's first ``interactions`` user-user games of epochs
    ``1..epochs``, in the order played. After a whole epoch ``e`` it is the ``p_true_norm`` of
    :func:`run_condition` in epoch ``e + 1`` up to the exact engine's grid, which is fitted to
    all of a fit's groups at once (on the logs: within 0.01 per run)."""
    played = games[games["epoch"] <= epochs].sort_values(["sim", "epoch", "round"], kind="stable")
    rows = played.reset_index(drop=True)
    data, posterior, groups = prefix_fit(rows, hypothesis, run_users(games), seed=seed)
    out = []
    for g, (sim, n) in enumerate(groups):
        ids = data.user_ids[g]
        probs = posterior.policy_probs[g, : len(ids)].double()
        out.append((sim, n, p_true_norm(probs, hypothesis, policy[sim], ids)))
    return pd.DataFrame(out, columns=["sim", "interactions", "p_true_norm"])


def _record(sim, epoch, games, norms, index, p_true, replies=None) -> dict:
    played = games[(games["sim"] == sim) & (games["epoch"] == epoch)]
    offer_probs = norms.offer_probs[index]
    accept_probs = norms.accept_probs[index]
    pot = len(offer_probs) - 1
    shares = np.arange(pot + 1) / pot * 100
    share = float((offer_probs * np.arange(pot + 1)).sum() / pot * 100)
    users = float((played["offer"] / played["pot"] * 100).mean()) if len(played) else np.nan
    p = accept_probs[played["offer"].to_numpy()]
    a = played["accepted"].to_numpy()
    record = {
        "sim": sim,
        "epoch": epoch,
        "offered_share": share,
        # what the offer one draws from it scores: GPT-4 made one offer, scai's share above is
        # the mean of the offers it may make
        "offer_within_5": float(offer_probs[np.abs(shares - users) <= 5].sum() / offer_probs.sum()),
        "accept_agreement": float(np.mean(a * p + (1 - a) * (1 - p))),
        # the assistant's more probable decision (the Bayes decision for agreement)
        "decision_agreement": float(np.mean((p >= 0.5) == a)),
        "p_true_norm": float(p_true),
    }
    if replies is not None:
        answered = replies[
            (replies["sim"] == sim) & (replies["epoch"] == epoch) & (replies["pot"] == pot)
        ]
        q = accept_probs[answered["offer"].to_numpy(int)]
        r = answered["accepted"].to_numpy(float)
        record["reply_agreement"] = float(np.mean(r * q + (1 - r) * (1 - q))) if len(r) else np.nan
    return record


def _pi_columns(pi: torch.Tensor, hypothesis: Hypothesis) -> dict[str, float]:
    norms = dict.fromkeys(hypothesis.norm_names)
    return {f"pi_{n}": float(norm_share(pi, hypothesis, n)) for n in norms}
