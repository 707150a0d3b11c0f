"""The assistant's protocol: epochs of games, posterior updates, and what is measured.

An epoch ("1v9"): the group's users are paired at random for ``rounds`` (8) user-user games,
each pair playing both roles, and one more user plays the assistant twice: the assistant
proposes once and responds once. ("9v1": 8 assistant-assistant games and the 2 with a user.)
By default (``schedule="grouped"``) every pair plays its first game before any pair plays its
return game, the order the original study's code uses when pairs play both ways
(``generate_interactions`` appends the flipped user-user games after all first ones; the
study's published 1v9 runs did not take that path: each user played one game); with
``"alternating"`` each return game follows its first game at once. The per-epoch posterior
does not depend on the order (the games are exchangeable); the per-interaction learning curve
does: under ``alternating`` every user's offer comes one interaction after their first reply,
so a misleading tone can hold the belief down for one interaction only. (``scai simulate``'s
schedule, :func:`scai.models.simulate.make_schedule`, alternates too; it has no learning curve.)
Pots are drawn from 10-100 each epoch; each simulation trades in one currency. Before epoch 1
the assistant acts from its prior; after each epoch it updates its posterior with every user
action seen so far (:func:`scai.inference.online.update_as_fitted`) and acts from it in the next.

Measured per simulation and epoch: the users' and the assistant's offered share (% of the pot),
acceptance agreement (the probability that the assistant's decision on a user's offer matches
the group's: ``a p + (1 - a)(1 - p)``, ``p`` the group's true acceptance probability), the
posterior probability of the true norm (one-norm groups: the users' mean posterior probability
of their true policy) and the posterior mean of ``pi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyro
import torch

from scai.experiments.assistant import assistant_norms
from scai.experiments.conditions import (
    SCHEDULES,
    VARIANTS,
    Condition,
    Settings,
    assistant_hypothesis,
)
from scai.experiments.learning_curve import learning_curve
from scai.inference.fit import fit
from scai.inference.online import update_as_fitted
from scai.inference.posterior import Posterior
from scai.models.data import INTERACTION_COLUMNS
from scai.models.game import TRAINING_CURRENCIES
from scai.models.hypotheses import Hypothesis
from scai.models.language import MANNERS, check_manner
from scai.models.layout import ASSISTANT
from scai.models.policies import action_tables, policy_parameters
from scai.models.simulate import exact_assignment, parse_mixture, play


@dataclass
class ConditionResult:
    condition: Condition
    per_sim: pd.DataFrame  # one row per sim x epoch
    interactions: pd.DataFrame  # everything the users did
    curve: pd.DataFrame | None = None  # sim, interactions, p_true
    posterior: Posterior | None = None
    extras: dict = field(default_factory=dict)


def epoch_schedule(
    epoch: int,
    users: list[str],
    pots: list[int],
    currencies: list[str],
    offers: list[int],
    rounds: int,
    variant: str,
    rng: np.random.Generator,
    schedule: str = "grouped",
) -> pd.DataFrame:
    """The games of one epoch for every simulation; outcomes are filled in by ``play``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    rows = []
    for s, (pot, currency) in enumerate(zip(pots, currencies, strict=True)):
        order = [users[i] for i in rng.permutation(len(users))]
        partner = order[-1]
        players = order[:-1] if variant == "1v9" else []
        pairs = [
            (players[(2 * j) % len(players)], players[(2 * j + 1) % len(players)])
            if variant == "1v9"
            else (ASSISTANT, ASSISTANT)
            for j in range(rounds // 2)
        ]
        first, back = pairs, [(b, a) for a, b in pairs]
        if schedule == "grouped":
            games = first + back
        else:
            games = [game for pair in zip(first, back, strict=True) for game in pair]
        r = 0
        for prop, resp in games:
            r += 1
            rows.append([str(s), epoch, r, prop, resp, currency, pot, 0, 0, "", ""])
        rows.append([str(s), epoch, r + 1, ASSISTANT, partner, currency, pot, offers[s], 0, "", ""])
        rows.append([str(s), epoch, r + 2, partner, ASSISTANT, currency, pot, 0, 0, "", ""])
    return pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS))


def run_condition(
    cond: Condition, settings: Settings, seed: int, hypothesis: Hypothesis | None = None
) -> ConditionResult:
    """Play ``settings.epochs`` epochs of ``settings.sims`` simulations of one condition
    (the assistant's ``hypothesis``: ``assistant_hypothesis(cond)``, read here if not given)."""
    if cond.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {cond.variant!r}")
    if cond.manner is not None:
        check_manner(cond.manner)  # a ValueError naming it and the registry's manners
    rng = np.random.default_rng(seed)
    pyro.set_rng_seed(seed)
    S = settings.sims
    truth = Hypothesis(rationality=cond.rationality)
    hyp = hypothesis or assistant_hypothesis(cond)
    mixture = parse_mixture(cond.policy, truth.policy_names)
    users = [f"u{i}" for i in range(cond.users)]
    user_ids = {str(s): users for s in range(S)}
    types = [exact_assignment(mixture, cond.users, rng) for _ in range(S)]
    manners = [[cond.manner or str(rng.choice(list(MANNERS))) for _ in users] for _ in range(S)]
    currencies = [cond.currency or str(rng.choice(TRAINING_CURRENCIES)) for _ in range(S)]
    w, alpha, beta = policy_parameters(truth.policies)
    true_index = [[truth.policy_index(t) for t in row] for row in types]

    prior_generator = torch.Generator().manual_seed(seed)
    accept_tables: dict[int, torch.Tensor] = {}  # pot -> [K, 1, O]
    norm_tables: dict = {}  # the assistant's action tables, kept across epochs
    posterior: Posterior | None = None
    played: list[pd.DataFrame] = []
    records = []
    for epoch in range(1, settings.epochs + 1):
        lo, hi = settings.pot_range
        pots = [int(p) for p in rng.integers(lo, hi + 1, S)]
        norms = assistant_norms(
            posterior,
            hyp,
            pots,
            currencies,
            rng,
            settings.acting,
            prior_generator=prior_generator,
            table_cache=norm_tables,
        )
        offers = [int(rng.choice(len(p), p=p / p.sum())) for p in norms.offer_probs]
        schedule = epoch_schedule(
            epoch,
            users,
            pots,
            currencies,
            offers,
            settings.rounds,
            cond.variant,
            rng,
            settings.schedule,
        )
        games = play(schedule, truth, user_ids, policies=types, manners=manners).interactions
        if cond.variant == "9v1":  # the assistants' games among themselves: their own offers
            self_play = (games.proposer == ASSISTANT) & (games.responder == ASSISTANT)
            for idx in games.index[self_play]:
                s = int(games.at[idx, "sim"])
                p = norms.offer_probs[s]
                games.at[idx, "offer"] = int(rng.choice(len(p), p=p / p.sum()))
                games.at[idx, "accepted"] = int(
                    rng.random() < norms.accept_probs[s][games.at[idx, "offer"]]
                )  # noqa: E501
        # The assistant responds to its partner's offer: one uniform per such game, in table
        # order (the numbers a draw per game would give), written back as one column.
        to_assistant = np.flatnonzero(
            ((games.responder == ASSISTANT) & (games.proposer != ASSISTANT)).to_numpy()
        )
        uniforms = rng.random(len(to_assistant))
        accepted = games["accepted"].to_numpy().copy()
        sims, offers, game_pots = (games[c].to_numpy() for c in ("sim", "offer", "pot"))
        agreement = {}
        for i, row in enumerate(to_assistant):
            s, offer, pot = int(sims[row]), int(offers[row]), int(game_pots[row])
            a = int(uniforms[i] < norms.accept_probs[s][offer])
            accepted[row] = a
            if pot not in accept_tables:  # the users' true acceptance, once per pot
                t = action_tables(w, alpha, beta, torch.tensor([pot]), cond.rationality)
                accept_tables[pot] = t.accept_prob()
            p_group = float(accept_tables[pot][true_index[s], 0, offer].mean())
            agreement[s] = a * p_group + (1 - a) * (1 - p_group)
        games["accepted"] = accepted
        user_rows = games[(games.proposer != ASSISTANT) | (games.responder != ASSISTANT)]
        evidence = user_rows[
            ~((user_rows.proposer == ASSISTANT) & (user_rows.responder == ASSISTANT))
        ]
        posterior = (
            fit(evidence, hyp, engine=settings.engine, seed=seed)
            if posterior is None
            else update_as_fitted(posterior, evidence)
        )
        played.append(games)
        records.extend(_epoch_records(games, posterior, cond, agreement, epoch))
    interactions = pd.concat(played, ignore_index=True)
    curve = None
    if settings.curve and settings.engine == "exact":
        curve = learning_curve(interactions, hyp, user_ids, cond, truth)
    return ConditionResult(cond, pd.DataFrame(records), interactions, curve, posterior)


def _epoch_records(games, posterior, cond, agreement, epoch):
    share = (games.offer / games.pot * 100).to_numpy()
    assistant = (games.proposer == ASSISTANT).to_numpy()
    rows = games.groupby("sim", sort=False).indices
    pi = posterior.pi_mean()
    if cond.true_policy is not None:
        k = posterior.hypothesis.policy_index(cond.true_policy)
        mask = posterior.data.user_mask
        p_true = (posterior.policy_probs[..., k] * mask).sum(-1) / mask.sum(-1)
    out = []
    for s, sim in enumerate(posterior.data.sim_ids):
        record = {
            "sim": int(sim),
            "epoch": epoch,
            "users_share": _mean(share[rows[sim][~assistant[rows[sim]]]]),
            "assistant_share": _mean(share[rows[sim][assistant[rows[sim]]]]),
            "agreement": agreement.get(int(sim), np.nan),
        }
        if cond.true_policy is not None:
            record["p_true"] = float(p_true[s])
        for j, name in enumerate(posterior.policy_names):
            record[f"pi_{name}"] = float(pi[s, j])
        out.append(record)
    return out


def _mean(values: np.ndarray) -> float:
    """The mean, NaN for none (as pandas' ``Series.mean``)."""
    return float(values.mean()) if len(values) else float("nan")
