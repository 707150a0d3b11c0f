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
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyro
import torch

from scai.experiments.assistant import Norms, assistant_norms
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
    _check_condition(cond)
    rng = np.random.default_rng(seed)
    pyro.set_rng_seed(seed)
    groups = _draw_groups(cond, settings.sims, hypothesis, rng)
    assistant = _Assistant(groups.hypothesis, torch.Generator().manual_seed(seed))
    played: list[pd.DataFrame] = []
    records = []
    for epoch in range(1, settings.epochs + 1):
        games, agreement = _play_epoch(epoch, cond, settings, groups, assistant, rng)
        assistant.learn(_evidence(games), settings.engine, seed)
        played.append(games)
        records.extend(_epoch_records(games, assistant.posterior, cond, agreement, epoch))
    interactions = pd.concat(played, ignore_index=True)
    curve = None
    if settings.curve and settings.engine == "exact":
        curve = learning_curve(interactions, groups.hypothesis, groups.user_ids, cond, groups.truth)
    return ConditionResult(cond, pd.DataFrame(records), interactions, curve, assistant.posterior)


def _check_condition(cond: Condition) -> None:
    """A ``ValueError`` for a condition's unknown variant or manner, before anything is drawn."""
    if cond.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {cond.variant!r}")
    if cond.manner is not None:
        check_manner(cond.manner)  # a ValueError naming it and the registry's manners


@dataclass
class _TrueAcceptance:
    """The users' true acceptance probabilities: their policies' action tables at the
    condition's ``rationality`` (policy parameters ``w, alpha, beta [K]``), computed once per
    pot and kept (``tables``: pot -> ``[K, 1, O]``)."""

    w: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor
    rationality: float
    tables: dict[int, torch.Tensor] = field(default_factory=dict)

    def of_group(self, policies: list[int], pot: int, offer: int) -> float:
        """A group's true probability of accepting ``offer`` of ``pot``: its users' mean
        (``policies``: each user's policy index)."""
        if pot not in self.tables:
            t = action_tables(self.w, self.alpha, self.beta, torch.tensor([pot]), self.rationality)
            self.tables[pot] = t.accept_prob()
        return float(self.tables[pot][policies, 0, offer].mean())


class _Groups(NamedTuple):
    """A condition's simulated groups, fixed across epochs: the users' true hypothesis
    ``truth`` and the assistant's ``hypothesis``; the user names (every simulation's, and
    ``user_ids``: per simulation id); per simulation, each user's policy type (``types``, and
    its index in ``truth``: ``true_index``) and manner, and the currency; and the users' true
    acceptance."""

    truth: Hypothesis
    hypothesis: Hypothesis
    users: list[str]
    user_ids: dict[str, list[str]]
    types: list[list[str]]
    manners: list[list[str]]
    currencies: list[str]
    true_index: list[list[int]]
    acceptance: _TrueAcceptance


def _draw_groups(
    cond: Condition, sims: int, hypothesis: Hypothesis | None, rng: np.random.Generator
) -> _Groups:
    """``sims`` groups of ``cond``: from ``rng``, every simulation's users' types (the exact
    mixture of ``cond.policy``), then every simulation's manners (drawn where ``cond.manner``
    is ``None``), then every simulation's currency (drawn where ``cond.currency`` is
    ``None``); the assistant's hypothesis is ``hypothesis``, else the condition's."""
    truth = Hypothesis(rationality=cond.rationality)
    hyp = hypothesis or assistant_hypothesis(cond)
    mixture = parse_mixture(cond.policy, truth.policy_names)
    users = [f"u{i}" for i in range(cond.users)]
    user_ids = {str(s): users for s in range(sims)}
    types = [exact_assignment(mixture, cond.users, rng) for _ in range(sims)]
    manners = [[cond.manner or str(rng.choice(list(MANNERS))) for _ in users] for _ in range(sims)]
    currencies = [cond.currency or str(rng.choice(TRAINING_CURRENCIES)) for _ in range(sims)]
    acceptance = _TrueAcceptance(*policy_parameters(truth.policies), cond.rationality)
    true_index = [[truth.policy_index(t) for t in row] for row in types]
    return _Groups(truth, hyp, users, user_ids, types, manners, currencies, true_index, acceptance)


@dataclass
class _Assistant:
    """The assistant across epochs: its ``hypothesis``, the generator of its prior draws
    before its first posterior, the action tables it has computed (kept across epochs) and
    its ``posterior`` (``None`` before the first epoch's update)."""

    hypothesis: Hypothesis
    prior_generator: torch.Generator
    norm_tables: dict = field(default_factory=dict)
    posterior: Posterior | None = None

    def norms(
        self, pots: list[int], currencies: list[str], rng: np.random.Generator, acting: str
    ) -> Norms:
        """How it acts this epoch (:func:`~scai.experiments.assistant.assistant_norms`)."""
        return assistant_norms(
            self.posterior,
            self.hypothesis,
            pots,
            currencies,
            rng,
            acting,
            prior_generator=self.prior_generator,
            table_cache=self.norm_tables,
        )

    def learn(self, evidence: pd.DataFrame, engine: str, seed: int) -> None:
        """Its posterior given every user action seen so far: a first fit, then updates
        (:func:`~scai.inference.online.update_as_fitted`) with each epoch's ``evidence``."""
        self.posterior = (
            fit(evidence, self.hypothesis, engine=engine, seed=seed)
            if self.posterior is None
            else update_as_fitted(self.posterior, evidence)
        )


def _play_epoch(
    epoch: int,
    cond: Condition,
    settings: Settings,
    groups: _Groups,
    assistant: _Assistant,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[int, float]]:
    """One epoch's games, played (the users' by :func:`~scai.models.simulate.play`, the
    assistant's from its norms), and per simulation the acceptance agreement of the
    assistant's last decision on a user's offer. From ``rng``, in this order: the pots, the
    assistant's norms and offers, the schedule, the assistants' games among themselves
    (``9v1``) and the assistant's responses."""
    lo, hi = settings.pot_range
    pots = [int(p) for p in rng.integers(lo, hi + 1, settings.sims)]
    norms = assistant.norms(pots, groups.currencies, rng, settings.acting)
    offers = [_drawn_offer(p, rng) for p in norms.offer_probs]
    schedule = epoch_schedule(
        epoch,
        groups.users,
        pots,
        groups.currencies,
        offers,
        settings.rounds,
        cond.variant,
        rng,
        settings.schedule,
    )
    games = play(
        schedule, groups.truth, groups.user_ids, policies=groups.types, manners=groups.manners
    ).interactions
    if cond.variant == "9v1":
        _play_assistants_games(games, norms, rng)
    agreement = _respond_to_users(games, norms, groups, rng)
    return games, agreement


def _drawn_offer(probs: np.ndarray, rng: np.random.Generator) -> int:
    """An offer drawn from ``probs [pot + 1]`` (normalised)."""
    return int(rng.choice(len(probs), p=probs / probs.sum()))


def _play_assistants_games(games: pd.DataFrame, norms: Norms, rng: np.random.Generator) -> None:
    """The assistants' games among themselves (``9v1``) in ``games``, in table order: each an
    offer drawn from the assistant's norms (:func:`_drawn_offer`), then its response."""
    self_play = (games.proposer == ASSISTANT) & (games.responder == ASSISTANT)
    for idx in games.index[self_play]:
        s = int(games.at[idx, "sim"])
        games.at[idx, "offer"] = _drawn_offer(norms.offer_probs[s], rng)
        games.at[idx, "accepted"] = int(
            rng.random() < norms.accept_probs[s][games.at[idx, "offer"]]
        )


def _respond_to_users(
    games: pd.DataFrame, norms: Norms, groups: _Groups, rng: np.random.Generator
) -> dict[int, float]:
    """The assistant's responses to its partners' offers, written into ``games``; per
    simulation, the agreement of its (last) decision ``a`` with the group's, ``a p + (1 - a)
    (1 - p)``, ``p`` the group's true probability of accepting the offer."""
    # The assistant responds to its partner's offer: one uniform per such game, in table
    # order (the numbers a draw per game would give), written back as one column.
    to_assistant = np.flatnonzero(
        ((games.responder == ASSISTANT) & (games.proposer != ASSISTANT)).to_numpy()
    )
    uniforms = rng.random(len(to_assistant))
    accepted = games["accepted"].to_numpy().copy()
    sims, offers, pots = (games[c].to_numpy() for c in ("sim", "offer", "pot"))
    agreement = {}
    for i, row in enumerate(to_assistant):
        s, offer, pot = int(sims[row]), int(offers[row]), int(pots[row])
        a = int(uniforms[i] < norms.accept_probs[s][offer])
        accepted[row] = a
        p_group = groups.acceptance.of_group(groups.true_index[s], pot, offer)
        agreement[s] = a * p_group + (1 - a) * (1 - p_group)
    games["accepted"] = accepted
    return agreement


def _evidence(games: pd.DataFrame) -> pd.DataFrame:
    """The games the assistant learns from: those with a user in them (not the assistants'
    games among themselves)."""
    return games[(games.proposer != ASSISTANT) | (games.responder != ASSISTANT)]


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
