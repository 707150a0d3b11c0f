"""Simulation: the model run forward over a schedule of games.

A *schedule* says who plays whom, with which pot and currency; the model fills in types,
manners, offers, decisions and tones. Each epoch redraws the pot (10-100 units by default) and
pairs users at random: interaction ``2j`` has user ``a`` propose to ``b`` and ``2j + 1`` the
reverse, as in the original study where each pair played both roles.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import torch

from scai.models.data import INTERACTION_COLUMNS, USER_COLUMNS
from scai.models.game import get_currency
from scai.models.hypotheses import Hypothesis
from scai.models.language import MANNERS, TONES, check_manner, render_proposal, render_reply
from scai.models.layout import GroupData
from scai.models.model import social_contract_model

DEFAULT_POT_RANGE = (10, 100)


def parse_mixture(text: str | Mapping[str, float], policies: Sequence[str]) -> dict[str, float]:
    """``"selfish"`` or ``"selfish=0.8,altruistic=0.2"`` -> weights over ``policies``."""
    if isinstance(text, Mapping):
        parts = dict(text)
    elif "=" not in text:
        parts = {text.strip(): 1.0}
    else:
        parts = {}
        for item in text.split(","):
            name, sep, weight = item.partition("=")
            try:
                parts[name.strip()] = float(weight)
            except ValueError:
                raise ValueError(
                    f"policy mixture {text!r}: weight {weight!r} of {name.strip()!r} "
                    "is not a number (expected e.g. selfish=0.8,altruistic=0.2)"
                ) from None
            if not sep:
                raise ValueError(f"policy mixture {text!r}: expected NAME=WEIGHT items")
    for name, weight in parts.items():
        if name not in policies:
            raise ValueError(f"unknown policy {name!r}; allowed: {', '.join(policies)}")
        if not (weight >= 0 and np.isfinite(weight)):
            raise ValueError(f"policy mixture: weight of {name!r} must be >= 0, got {weight}")
    total = sum(parts.values())
    if total <= 0:
        raise ValueError(f"policy mixture {text!r}: weights must not all be 0")
    return {p: parts.get(p, 0.0) / total for p in policies}


def exact_assignment(
    mixture: Mapping[str, float], n_users: int, rng: np.random.Generator
) -> list[str]:
    """Types in exact proportion (largest remainder), shuffled: for protocol experiments."""
    names = list(mixture)
    quota = np.array([mixture[n] * n_users for n in names])
    counts = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - counts), kind="stable")[: n_users - counts.sum()]:
        counts[i] += 1
    types = [n for n, c in zip(names, counts, strict=True) for _ in range(c)]
    rng.shuffle(types)
    return types


def make_schedule(
    *,
    users: int,
    rounds: int,
    epochs: int,
    sims: int,
    currency: str | Sequence[str],
    rng: np.random.Generator,
    pot_range: tuple[int, int] = DEFAULT_POT_RANGE,
    first_epoch: int = 1,
) -> pd.DataFrame:
    """An interaction table with who plays whom, pots and currencies, and outcomes blank."""
    if users < 2:
        raise ValueError(f"users must be at least 2 (a proposer and a responder), got {users}")
    for name, value in (("rounds", rounds), ("epochs", epochs), ("sims", sims)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    lo, hi = pot_range
    currencies = [currency] * sims if isinstance(currency, str) else list(currency)
    if len(currencies) != sims:
        raise ValueError(
            f"currency: one name, or one per simulation ({sims}); got {len(currencies)}: "
            f"{currencies}"
        )
    for c in currencies:
        get_currency(c)
    records = []
    for s in range(sims):
        for e in range(first_epoch, first_epoch + epochs):
            pot = int(rng.integers(lo, hi + 1))
            order: list[int] = []
            for r in range(rounds):
                j = r // 2
                while 2 * j + 1 >= len(order):
                    order.extend(int(u) for u in rng.permutation(users))
                a, b = order[2 * j], order[2 * j + 1]
                if a == b:  # a permutation boundary can pair a user with itself
                    b = order[2 * j + 2] if 2 * j + 2 < len(order) else (a + 1) % users
                prop, resp = (a, b) if r % 2 == 0 else (b, a)
                records.append((str(s), e, r + 1, f"u{prop}", f"u{resp}", currencies[s], pot))
    df = pd.DataFrame.from_records(
        records, columns=["sim", "epoch", "round", "proposer", "responder", "currency", "pot"]
    )
    df["offer"] = 0
    df["accepted"] = 0
    df["proposer_tone"] = TONES[0]
    df["responder_tone"] = TONES[0]
    return df


@dataclass
class Simulation:
    interactions: pd.DataFrame  # INTERACTION_COLUMNS
    users: pd.DataFrame  # USER_COLUMNS


def simulate(
    hypothesis: Hypothesis,
    *,
    policy: str | Mapping[str, float],
    users: int,
    rounds: int = 8,
    epochs: int = 1,
    sims: int = 1,
    currency: str | Sequence[str] = "dollars",
    manner: str | None = None,
    seed: int = 0,
    assign: str = "sample",
    pot_range: tuple[int, int] = DEFAULT_POT_RANGE,
) -> Simulation:
    """Simulate ``sims`` groups of ``users`` users playing ``epochs`` x ``rounds`` games.

    ``policy`` is a policy name or a mixture (``"selfish=0.8,altruistic=0.2"``): the group norm
    ``pi``. Types are drawn from it (``assign="sample"``) or dealt in exact proportion
    (``assign="exact"``). ``manner`` fixes every user's manner; otherwise manners are drawn from
    the hypothesis's coupling ``rho``. Deterministic for a seed.
    """
    mixture = parse_mixture(policy, hypothesis.policy_names)
    if manner is not None:
        check_manner(manner)
    if assign not in ("sample", "exact"):
        raise ValueError(f"assign must be 'sample' or 'exact', got {assign!r}")
    rng = np.random.default_rng(seed)
    schedule = make_schedule(
        users=users,
        rounds=rounds,
        epochs=epochs,
        sims=sims,
        currency=currency,
        rng=rng,
        pot_range=pot_range,
    )
    user_ids = {str(s): [f"u{u}" for u in range(users)] for s in range(sims)}
    policies = None
    if assign == "exact":
        policies = [exact_assignment(mixture, users, rng) for _ in range(sims)]
    manners = [[manner] * users for _ in range(sims)] if manner is not None else None
    pyro.set_rng_seed(seed)
    return play(schedule, hypothesis, user_ids, mixture=mixture, policies=policies, manners=manners)


def play(
    schedule: pd.DataFrame,
    hypothesis: Hypothesis,
    users: Mapping[str, Sequence[str]],
    *,
    mixture: Mapping[str, float] | None = None,
    policies: Sequence[Sequence[str]] | None = None,
    manners: Sequence[Sequence[str]] | None = None,
) -> Simulation:
    """Run the model forward over ``schedule``: the users' offers, decisions and tones.

    Each simulation's users (``users[sim]``) get the given ``policies`` and ``manners``
    (lists per simulation, in user order), or draw them from ``mixture`` and the hypothesis's
    coupling. Rows whose proposer is the assistant keep their offer (exogenous); rows whose
    responder is the assistant keep their decision. Uses Pyro's global random state.
    """
    data = GroupData.from_table(schedule, users=users)
    S, U, _ = data.shape
    fixed: dict[str, torch.Tensor] = {}
    if mixture is not None:
        pi = torch.tensor([mixture.get(p, 0.0) for p in hypothesis.policy_names])
        fixed["pi"] = pi.expand(S, 1, 1, -1)
    if policies is not None:
        fixed["policy"] = _per_user(policies, hypothesis.policy_index, data).unsqueeze(-1)
    if manners is not None:
        fixed["manner"] = _per_user(manners, MANNERS.index, data).unsqueeze(-1)
    with torch.no_grad():
        sampled = pyro.poutine.condition(social_contract_model, data=fixed)(
            data, hypothesis, observed=False
        )
    return _to_tables(schedule, data, sampled, hypothesis)


def _per_user(values: Sequence[Sequence[str]], to_index, data: GroupData) -> torch.Tensor:
    """``[S, U]`` indices from per-simulation lists of names (padding users get 0)."""
    S, U, _ = data.shape
    out = torch.zeros(S, U, dtype=torch.long)
    for s, row in enumerate(values):
        out[s, : len(row)] = torch.tensor([to_index(v) for v in row])
    return out


def _to_tables(
    schedule: pd.DataFrame, data: GroupData, sampled: dict[str, torch.Tensor], hyp: Hypothesis
) -> Simulation:
    table = schedule.copy()
    mask = data.event_mask
    rows = data.row[mask].numpy()
    prop = data.is_proposer[mask].numpy()
    offer = sampled["offer"][mask].long().numpy()
    accept = sampled["accept"][mask].long().numpy()
    tone = np.array(TONES)[sampled["tone"].expand(mask.shape)[mask].numpy()]
    table.loc[rows[prop], "offer"] = offer[prop]
    table.loc[rows[prop], "proposer_tone"] = tone[prop]
    table.loc[rows[~prop], "accepted"] = accept[~prop]
    table.loc[rows[~prop], "responder_tone"] = tone[~prop]

    policies = sampled["policy"].reshape(data.user_mask.shape)
    manners = sampled["manner"].reshape(data.user_mask.shape)
    records = [
        (sim, user, hyp.policy_names[int(policies[s, u])], MANNERS[int(manners[s, u])])
        for s, sim in enumerate(data.sim_ids)
        for u, user in enumerate(data.user_ids[s])
    ]
    users = pd.DataFrame.from_records(records, columns=list(USER_COLUMNS))
    return Simulation(interactions=table[list(INTERACTION_COLUMNS)], users=users)


def transcript(table: pd.DataFrame, seed: int = 0) -> str:
    """Readable utterances for every game, rendered from the observed tones."""
    rng = random.Random(seed)
    lines = []
    for row in table.itertuples(index=False):
        unit = get_currency(row.currency).unit
        head = f"[sim {row.sim} epoch {row.epoch} round {row.round}]"
        lines.append(
            f"{head} {row.proposer or '?'} -> {row.responder}: "
            + render_proposal(
                row.proposer_tone or "neutral", int(row.offer), int(row.pot), unit, rng
            )
        )
        lines.append(
            f"{head} {row.responder}: "
            + render_reply(row.responder_tone or "neutral", bool(row.accepted), rng)
        )
    return "\n".join(lines) + "\n"
