"""Simulation: the model run forward over a schedule of games.

A *schedule* says who plays whom, with which pot and currency; the model fills in types,
manners, offers, decisions and tones. Each epoch redraws the pot (10-100 units by default) and
pairs users at random: interaction ``2j`` has user ``a`` propose to ``b`` and ``2j + 1`` the
reverse, as in the original study where each pair played both roles.
"""

from __future__ import annotations

import numbers
import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import torch

from scai.models.cell_text import plain_decimal
from scai.models.data import INTERACTION_COLUMNS, USER_COLUMNS, validate_frame
from scai.models.errors import (
    RunError,
    SimulationWarning,
    check_count,
    check_seed,
    outside_scai,
    show_value,
)
from scai.models.game import MAX_POT, get_currency
from scai.models.hypotheses import Hypothesis, get_hypothesis
from scai.models.language import MANNERS, TONES, check_manner, render_proposal, render_reply
from scai.models.layout import GroupData
from scai.models.memory import check_memory
from scai.models.model import social_contract_model
from scai.models.prior import SITES, parameter_names
from scai.models.random_state import callers_random_state_kept
from scai.models.table_file import MAX_ROWS
from scai.models.table_memory import layout_bytes

DEFAULT_POT_RANGE = (10, 100)
#: ``option: (low, high)`` of :func:`simulate`'s counts (the command line reads them too).
LIMITS: dict[str, tuple[int, int]] = {
    "users": (2, 10_000_000),
    "rounds": (1, 10_000_000),
    "epochs": (1, 100_000),
    "sims": (1, 10_000),
}
# The most games one call simulates (``sims x epochs x rounds``) is MAX_ROWS, the most a table
# holds (:data:`scai.models.table_file.MAX_ROWS`). The schedule, the layout and the tables are built
# without per-game Python; 10^6 users x 2 games each as proposer and responder (2 x 10^6
# games) took 43 s and 1.6 GB peak RSS on 2 busy cores (``benchmarks/bench_large.py``); the
# memory check below guards larger calls.

#: Peak memory of a simulation over its padded layout
#: (:func:`scai.models.table_memory.layout_bytes`): about 2.3x measured at 2 x 10^6 games (the
#: offers' Gumbel noise is drawn in blocks).
PEAK_OVER_LAYOUT = 3
#: Bytes per user of each simulation beyond the layout's: the users' table (their ids, types
#: and manners as text), the per-user tensors of the model's run and the pairings. Measured
#: (``/usr/bin/time``, 2 x 10^6 users, 1 simulation): peak 320 B a user over start-up at 1
#: round of 1 epoch, 490 B at 8 rounds of 5, where the layout's share, 3 x 72 B, had been the
#: whole estimate (a red-team find: 10^7 users needed 4.3 GB, estimated at 2.2 GB).
USER_BYTES = 300
#: Weights of a mixture must sum to 1 within this tolerance.
MIXTURE_TOLERANCE = 1e-6


#: Words float() reads as a number that is not finite.
NOT_FINITE = ("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan")


def parse_mixture(text: str | Mapping[str, float], policies: Sequence[str]) -> dict[str, float]:
    """``"selfish"`` or ``"selfish=0.8,altruistic=0.2"`` -> weights over ``policies``.

    A single name means weight 1; the weights of a mixture must sum to 1 (within
    :data:`MIXTURE_TOLERANCE`), else a :class:`RunError` naming the sum."""
    typed: dict[str, str] = {}  # each weight as written in a text, to show it as typed
    shown = show_value(text, 80)  # (a value is shown cut to 80 characters)
    if isinstance(text, Mapping):
        parts = dict(text)
    elif not isinstance(text, str):
        raise RunError(f"policy: expected a name or NAME=WEIGHT,... text, got {text!r}")
    elif "=" not in text:
        parts = {text.strip(): 1.0}
    else:
        parts = {}
        for item in text.split(","):
            name, sep, weight = item.partition("=")
            if not sep:
                raise RunError(
                    f"policy mixture {shown}: expected NAME=WEIGHT items, got "
                    + show_value(item, 80)
                )
            if name.strip() in parts:
                raise RunError(
                    f"policy mixture {shown}: {show_value(name.strip(), 80)} appears twice"
                )
            try:
                # float() reads "0.2_5" and non-ASCII digits; inf and nan fail below, by name
                if not (plain_decimal(weight) or weight.strip().lower() in NOT_FINITE):
                    raise ValueError(weight)
                parts[name.strip()] = float(weight)
                typed[name.strip()] = weight.strip()
            except ValueError:
                raise RunError(
                    f"policy mixture {shown}: weight {show_value(weight, 80)} of "
                    f"{show_value(name.strip(), 80)} "
                    "is not a number (expected e.g. selfish=0.8,altruistic=0.2)"
                ) from None
    for name, weight in parts.items():
        if name not in policies:
            raise RunError(f"unknown policy {show_value(name, 80)}; allowed: {', '.join(policies)}")
        if isinstance(weight, bool | np.bool_) or not isinstance(weight, numbers.Real):
            raise RunError(f"policy mixture: weight of {name!r} must be a number, got {weight!r}")
        parts[name] = weight = float(weight)  # a NumPy float is a number too
        if not (weight >= 0 and np.isfinite(weight)):
            raise RunError(
                f"policy mixture: weight of {name!r} must be a finite number >= 0, got "
                f"{typed.get(name, weight)}"
            )
    total = sum(parts.values())
    if abs(total - 1) > MIXTURE_TOLERANCE:
        hint = ",".join(f"{n}={w / total:.4g}" for n, w in parts.items()) if total > 0 else ""
        raise RunError(
            f"policy mixture {shown}: the weights sum to {total:g}, not 1 (tolerance "
            f"{MIXTURE_TOLERANCE:g})" + (f"; e.g. {hint}" if hint else "")
        )
    return {p: parts.get(p, 0.0) / total for p in policies}


def check_size(*, users: int, rounds: int, epochs: int, sims: int, max_bytes=None) -> int:
    """Validate a simulation's counts (:data:`LIMITS`, :data:`MAX_ROWS`) and its memory
    before any work: a :class:`RunError` naming the option, or the estimated rows and bytes
    and what to do. Returns the number of games."""
    # Python ints from here: NumPy's (int32, uint8) would wrap in the products below
    counts = {"users": users, "rounds": rounds, "epochs": epochs, "sims": sims}
    users, rounds, epochs, sims = (check_count(k, v, *LIMITS[k]) for k, v in counts.items())
    rows = sims * epochs * rounds
    if rows > MAX_ROWS:
        raise RunError(
            f"sims x epochs x rounds = {sims:,} x {epochs:,} x {rounds:,} = {rows:,} games; at "
            f"most {MAX_ROWS:,} in one call, as in one table (about 20 s and 0.8 GB per "
            "million): use fewer sims, epochs or rounds, or simulate in parts (other --seed "
            "values)"
        )
    # Each user plays about 2 rounds / users games an epoch, as proposer and as responder.
    events = min(epochs * rounds, -(-epochs * 2 * rounds * 13 // (10 * users)))
    need = PEAK_OVER_LAYOUT * layout_bytes((sims, users, events), rows) + sims * users * USER_BYTES

    def error(text: str) -> RunError:
        return RunError(
            f"a simulation of {rows:,} games of {sims:,} x {users:,} users {text}: use fewer "
            "sims, users or epochs, or simulate in parts (other --seed values)"
        )

    check_memory(need, error, max_bytes=max_bytes, share=0.5)
    return rows


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


def _warn_if_not_exact(mixture: Mapping[str, float], dealt: Sequence[str], users: int) -> None:
    """A :class:`SimulationWarning` when exact assignment cannot deal ``mixture``'s shares
    exactly (a share times ``users`` not a whole number: largest remainders round it), with
    the counts dealt, naming each type with a positive share that no user got (every
    simulation is dealt the same counts)."""
    shares = {name: share for name, share in mixture.items() if share > 0}
    if all(abs(share * users - round(share * users)) < 1e-9 for share in shares.values()):
        return
    counts = ", ".join(f"{name} {dealt.count(name)}" for name in shares)
    missing = [name for name in shares if name not in dealt]
    left_out = f": no user is {' or '.join(missing)}" if missing else ""
    warnings.warn(
        f"assign='exact': {users} users dealt in proportion to "
        f"{', '.join(f'{n}={w:g}' for n, w in shares.items())} are {counts} (rounded: "
        f"{', '.join(f'{n} {w * users:g}' for n, w in shares.items())} asked){left_out} "
        "(use more users, or assign='sample' to draw types)",
        SimulationWarning,
        stacklevel=outside_scai(),
    )


def _warn_of_idle_users(users: int, rounds: int, epochs: int) -> None:
    """A :class:`SimulationWarning` when ``rounds`` x ``epochs`` games leave most of ``users``
    certain to play none: an epoch's rounds pair ``2 ceil(rounds / 2)`` users (each pair plays
    two rounds, one in each role), so at most that many per epoch take part. Such users are in
    the users table and tell a fit nothing (a large table of them costs memory and time). A
    few left out is the study's own design (10 users, 8 rounds an epoch): not told."""
    playing = min(users, 2 * -(-rounds // 2)) * epochs
    if users <= 2 * playing:
        return
    warnings.warn(
        f"users={users:,} per simulation, but rounds={rounds} per epoch and epochs={epochs} "
        f"let at most {playing:,} of them play (each pair of users plays two rounds): at "
        f"least {users - playing:,} play no game and tell a fit nothing (give fewer users, or "
        f"more rounds: at least {2 * -(-users // (2 * epochs)):,} for every user to be able "
        "to play)",
        SimulationWarning,
        stacklevel=outside_scai(),
    )


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
    check_size(users=users, rounds=rounds, epochs=epochs, sims=sims)
    lo, hi = check_pot_range(pot_range)
    check_count("first_epoch", first_epoch, 0, LIMITS["epochs"][1])
    if not isinstance(currency, str | Sequence):
        raise RunError(f"currency: one name, or one per simulation ({sims}); got {currency!r}")
    currencies = [currency] * sims if isinstance(currency, str) else list(currency)
    if len(currencies) != sims:
        raise RunError(
            f"currency: one name, or one per simulation ({sims}); got {len(currencies)}: "
            f"{currencies}"
        )
    for c in currencies:
        get_currency(c)
    # The random stream is the one of a game-by-game loop (per simulation and epoch: the pot,
    # then as many permutations of the users as its rounds need), so a seed gives the same
    # schedule at any size; the pairing itself is vectorised over rounds.
    j = np.arange(rounds) // 2
    n_perm = (2 * j[-1] + 1) // users + 1  # permutations until position 2j + 1 exists
    proposers, responders, pots = [], [], []
    for _ in range(sims * epochs):
        pots.append(int(rng.integers(lo, hi + 1)))
        order = np.concatenate([rng.permutation(users) for _ in range(n_perm)])
        a, b = order[2 * j], order[2 * j + 1]
        # a permutation boundary can pair a user with itself: take the next user in the order
        after = np.where(2 * j + 2 < len(order), order[np.minimum(2 * j + 2, len(order) - 1)], -1)
        b = np.where(a == b, np.where(after >= 0, after, (a + 1) % users), b)
        even = np.arange(rounds) % 2 == 0
        proposers.append(np.where(even, a, b))
        responders.append(np.where(even, b, a))
    n = sims * epochs * rounds
    sim_of_row = np.repeat(np.arange(sims), epochs * rounds)
    names = _user_names(users)
    df = pd.DataFrame(
        {
            "sim": np.array([str(s) for s in range(sims)], dtype=object)[sim_of_row],
            "epoch": np.tile(np.repeat(np.arange(first_epoch, first_epoch + epochs), rounds), sims),
            "round": np.tile(np.arange(1, rounds + 1), sims * epochs),
            "proposer": names[np.concatenate(proposers)] if n else names[:0],
            "responder": names[np.concatenate(responders)] if n else names[:0],
            "currency": np.array(currencies, dtype=object)[sim_of_row],
            "pot": np.repeat(np.array(pots, dtype=np.int64), rounds),
        }
    )
    df["offer"] = 0
    df["accepted"] = 0
    df["proposer_tone"] = TONES[0]
    df["responder_tone"] = TONES[0]
    return df


def _user_names(users: int) -> np.ndarray:
    """``["u0", "u1", ...]`` as an object array (Python strings, like the table's columns)."""
    return np.array(["u" + str(u) for u in range(users)], dtype=object)


def check_pot_range(pot_range: tuple[int, int]) -> tuple[int, int]:
    """``(low, high)`` pots, ``1 <= low <= high <= MAX_POT``, or a :class:`RunError`."""
    try:
        lo, hi = pot_range
    except (TypeError, ValueError):
        raise RunError(f"pot_range: expected (low, high), got {pot_range!r}") from None
    lo = check_count("pot_range low", lo, 1, MAX_POT)
    return lo, check_count("pot_range high", hi, lo, MAX_POT)


#: The columns of :attr:`Simulation.parameters`.
PARAMETER_COLUMNS = ("sim", "parameter", "value")


@dataclass
class Simulation:
    """What a simulation played (``interactions``), who played it (``users``: each user's
    true policy and manner) and the group-level values it played under (``parameters``: per
    simulation the mixture ``pi[type]`` and every site the hypothesis draws from its prior,
    ``lam``, ``shift[currency]``, ``shift_shared``, ``lapse``, ``strength``, ``clone``; named
    as :meth:`~scai.inference.posterior.Posterior.summary`'s rows, to compare a fit with the
    truth by ``merge(on=["sim", "parameter"])``)."""

    interactions: pd.DataFrame  # INTERACTION_COLUMNS
    users: pd.DataFrame  # USER_COLUMNS
    parameters: pd.DataFrame  # PARAMETER_COLUMNS


def simulate(
    hypothesis: Hypothesis | str,
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

    ``policy`` is a policy name or a mixture (``"selfish=0.8,altruistic=0.2"``, weights summing
    to 1): the group norm ``pi``. Types are drawn from it (``assign="sample"``) or dealt in
    exact proportion (``assign="exact"``). ``manner`` fixes every user's manner; otherwise
    manners are drawn from the hypothesis's coupling ``rho``. Deterministic for a seed. Every
    count, the seed and the memory needed are checked (:func:`check_size`) before any work.
    ``hypothesis``: a :class:`Hypothesis`, a preset's name or a TOML file's path.
    """
    hypothesis = get_hypothesis(hypothesis)
    check_size(users=users, rounds=rounds, epochs=epochs, sims=sims)
    users, rounds, epochs, sims = int(users), int(rounds), int(epochs), int(sims)  # checked
    seed = check_seed(seed)  # a plain int (a NumPy integer would fail in Python's random)
    mixture = parse_mixture(policy, hypothesis.policy_names)
    if manner is not None:
        try:
            check_manner(manner)
        except ValueError as err:  # the language module's own, for its renderers
            raise RunError(f"manner: {err}") from None
    if assign not in ("sample", "exact"):
        raise RunError(f"assign must be 'sample' or 'exact', got {assign!r}")
    _warn_of_idle_users(users, rounds, epochs)
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
        _warn_if_not_exact(mixture, policies[0], users)
    manners = [[manner] * users for _ in range(sims)] if manner is not None else None
    with callers_random_state_kept():
        pyro.set_rng_seed(seed)
        return play(
            schedule, hypothesis, user_ids, mixture=mixture, policies=policies, manners=manners
        )


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
        trace = pyro.poutine.trace(
            pyro.poutine.condition(social_contract_model, data=fixed)
        ).get_trace(data, hypothesis, observed=False)
    sampled = trace.nodes["_RETURN"]["value"]
    group = {site: trace.nodes[site]["value"] for site in SITES if site in trace.nodes}
    return _to_tables(schedule, data, sampled, hypothesis, group)


def _parameters(data: GroupData, hyp: Hypothesis, group: dict[str, torch.Tensor]) -> pd.DataFrame:
    """The group-level values each simulation played under (``group``: the model's sites of
    :data:`~scai.models.prior.SITES`, each ``[S, ...]``), simulation by simulation, one row
    per name."""
    S = data.shape[0]
    names = [n for site in group for n in parameter_names(site, hyp.policy_names, data.currencies)]
    values = [value.reshape(S, -1).numpy() for value in group.values()]  # (as sampled: float32)
    return pd.DataFrame(
        {
            "sim": np.repeat(np.array(data.sim_ids, dtype=object), len(names)),
            "parameter": np.tile(np.array(names, dtype=object), S),
            "value": np.concatenate(values, axis=1).reshape(-1) if values else [],
        },
        columns=list(PARAMETER_COLUMNS),
    )


def _per_user(values: Sequence[Sequence[str]], to_index, data: GroupData) -> torch.Tensor:
    """``[S, U]`` indices from per-simulation lists of names (padding users get 0)."""
    S, U, _ = data.shape
    out = torch.zeros(S, U, dtype=torch.long)
    for s, row in enumerate(values):
        out[s, : len(row)] = torch.tensor([to_index(v) for v in row])
    return out


def _to_tables(
    schedule: pd.DataFrame,
    data: GroupData,
    sampled: dict[str, torch.Tensor],
    hyp: Hypothesis,
    group: dict[str, torch.Tensor],
) -> Simulation:
    table = schedule.copy()
    mask = data.event_mask
    rows = data.row[mask].numpy()  # positions in the table (from_table resets its index)
    prop = data.is_proposer[mask].numpy()
    offer = sampled["offer"][mask].long().numpy()
    accept = sampled["accept"][mask].long().numpy()
    tone = np.array(TONES, dtype=object)[sampled["tone"].expand(mask.shape)[mask].numpy()]
    # Column by column in NumPy: label lookups of a million rows through .loc are slow.
    for column, where, values in (
        ("offer", prop, offer),
        ("proposer_tone", prop, tone),
        ("accepted", ~prop, accept),
        ("responder_tone", ~prop, tone),
    ):
        filled = table[column].to_numpy().copy()
        filled[rows[where]] = values[where]
        table[column] = filled

    policies = sampled["policy"].reshape(data.user_mask.shape)
    manners = sampled["manner"].reshape(data.user_mask.shape)
    # One row per real user, simulation by simulation in user order (vectorised: a million
    # users are a million rows).
    n_users = [len(ids) for ids in data.user_ids]
    real = data.user_mask.numpy()
    users = pd.DataFrame(
        {
            "sim": np.repeat(np.array(data.sim_ids, dtype=object), n_users),
            "user": np.array([u for ids in data.user_ids for u in ids], dtype=object),
            "policy": np.array(hyp.policy_names, dtype=object)[policies.numpy()[real]],
            "manner": np.array(MANNERS, dtype=object)[manners.numpy()[real]],
        },
        columns=list(USER_COLUMNS),
    )
    return Simulation(
        interactions=table[list(INTERACTION_COLUMNS)],
        users=users,
        parameters=_parameters(data, hyp, group),
    )


def transcript(table: pd.DataFrame, seed: int = 0) -> str:
    """Readable utterances for every game of an interaction ``table`` (checked as
    :func:`~scai.models.data.validate_frame` checks one), rendered from the observed tones;
    the same for a ``seed``."""
    rng = random.Random(check_seed(seed))
    if not isinstance(table, pd.DataFrame):
        raise RunError(
            f"transcript: table must be an interaction table (a DataFrame), got "
            f"{type(table).__name__}"
        )
    table = validate_frame(table, "transcript: table")
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
