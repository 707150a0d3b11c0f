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
action seen so far (:func:`scai.inference.online.update`) and acts from it in the next.

Measured per simulation and epoch: the users' and the assistant's offered share (% of the pot),
acceptance agreement (the probability that the assistant's decision on a user's offer matches
the group's: ``a p + (1 - a)(1 - p)``, ``p`` the group's true acceptance probability), the
posterior probability of the true norm (one-norm groups: the users' mean posterior probability
of their true policy) and the posterior mean of ``pi``.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyro
import torch

from scai.experiments.assistant import assistant_norms
from scai.inference.exact import fit_exact
from scai.inference.fit import fit
from scai.inference.online import update
from scai.inference.posterior import Posterior
from scai.inference.workers import worker_pool
from scai.models.data import INTERACTION_COLUMNS, write_csv_atomic
from scai.models.game import TRAINING_CURRENCIES
from scai.models.hypotheses import Hypothesis, get_hypothesis
from scai.models.layout import ASSISTANT, GroupData
from scai.models.policies import action_tables, policy_parameters
from scai.models.simulate import exact_assignment, parse_mixture, play

VARIANTS = ("1v9", "9v1")
SCHEDULES = ("grouped", "alternating")


@dataclass(frozen=True)
class Condition:
    """One experimental condition: who the users are and what the assistant assumes."""

    name: str
    policy: str  # the users' norm: a policy or a mixture "selfish=0.8,altruistic=0.2"
    manner: str | None = "neutral"  # every user's manner (None: drawn uniformly)
    currency: str | None = None  # None: a training currency drawn per simulation
    hypothesis: str = "neutral"  # the assistant's prior (preset name or TOML path)
    users: int = 9
    rationality: float = 4.0  # the users' true rationality
    stereotype_strength: float | None = None  # overrides the hypothesis's, for sweeps
    assistant_rationality: float | None = None  # overrides the hypothesis's, for sweeps
    variant: str = "1v9"
    true_policy: str | None = None  # the one norm, for one-norm groups
    # Conditions that share a stream share their random numbers (common random numbers): the
    # users' types, schedules, pots and actions are then the same, so a contrast between them
    # (rude vs neutral manners) is paired. Default: the condition's own name.
    stream: str | None = None
    save_posterior: bool = True  # write the last posterior (NetCDF) with the cached results


@dataclass(frozen=True)
class Settings:
    sims: int = 20
    epochs: int = 5
    seed: int = 0
    engine: str = "exact"
    acting: str = "sample"
    rounds: int = 8
    pot_range: tuple[int, int] = (10, 100)
    curve: bool = False  # per-interaction learning curve (exact engine)
    schedule: str = "grouped"  # order of the return games: see the module docstring


@dataclass
class ConditionResult:
    condition: Condition
    per_sim: pd.DataFrame  # one row per sim x epoch
    interactions: pd.DataFrame  # everything the users did
    curve: pd.DataFrame | None = None  # sim, interactions, p_true
    posterior: Posterior | None = None
    extras: dict = field(default_factory=dict)


def assistant_hypothesis(cond: Condition) -> Hypothesis:
    hyp = get_hypothesis(cond.hypothesis)
    if cond.stereotype_strength is not None:
        hyp = hyp.with_(stereotype_strength=cond.stereotype_strength)
    if cond.assistant_rationality is not None:
        hyp = hyp.with_(rationality=cond.assistant_rationality)
    return hyp


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


def run_condition(cond: Condition, settings: Settings, seed: int) -> ConditionResult:
    """Play ``settings.epochs`` epochs of ``settings.sims`` simulations of one condition."""
    if cond.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {cond.variant!r}")
    rng = np.random.default_rng(seed)
    pyro.set_rng_seed(seed)
    S = settings.sims
    truth = Hypothesis(rationality=cond.rationality)
    hyp = assistant_hypothesis(cond)
    mixture = parse_mixture(cond.policy, truth.policy_names)
    users = [f"u{i}" for i in range(cond.users)]
    user_ids = {str(s): users for s in range(S)}
    types = [exact_assignment(mixture, cond.users, rng) for _ in range(S)]
    manners = [
        [
            cond.manner or str(rng.choice(["neutral", "polite", "rude", "sycophantic"]))
            for _ in users
        ]
        for _ in range(S)
    ]
    currencies = [cond.currency or str(rng.choice(TRAINING_CURRENCIES)) for _ in range(S)]
    w, alpha, beta = policy_parameters(truth.policies)
    true_index = [[truth.policy_index(t) for t in row] for row in types]

    prior_generator = torch.Generator().manual_seed(seed)
    posterior: Posterior | None = None
    played: list[pd.DataFrame] = []
    records = []
    for epoch in range(1, settings.epochs + 1):
        lo, hi = settings.pot_range
        pots = [int(p) for p in rng.integers(lo, hi + 1, S)]
        norms = assistant_norms(
            posterior, hyp, pots, currencies, rng, settings.acting, prior_generator=prior_generator
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
        # The assistant responds to its partner's offer.
        to_assistant = (games.responder == ASSISTANT) & (games.proposer != ASSISTANT)
        agreement = {}
        for idx in games.index[to_assistant]:
            s = int(games.at[idx, "sim"])
            offer, pot = int(games.at[idx, "offer"]), int(games.at[idx, "pot"])
            a = int(rng.random() < norms.accept_probs[s][offer])
            games.at[idx, "accepted"] = a
            t = action_tables(w, alpha, beta, torch.tensor([pot]), cond.rationality)
            p_group = float(t.accept_prob()[true_index[s], 0, offer].mean())
            agreement[s] = a * p_group + (1 - a) * (1 - p_group)
        user_rows = games[(games.proposer != ASSISTANT) | (games.responder != ASSISTANT)]
        evidence = user_rows[
            ~((user_rows.proposer == ASSISTANT) & (user_rows.responder == ASSISTANT))
        ]
        posterior = (
            fit(evidence, hyp, engine=settings.engine, seed=seed)
            if posterior is None
            else update(posterior, evidence)
        )
        played.append(games)
        records.extend(_epoch_records(games, posterior, cond, agreement, epoch))
    interactions = pd.concat(played, ignore_index=True)
    curve = None
    if settings.curve and settings.engine == "exact":
        curve = learning_curve(interactions, hyp, user_ids, cond, truth)
    return ConditionResult(cond, pd.DataFrame(records), interactions, curve, posterior)


def _epoch_records(games, posterior, cond, agreement, epoch):
    share = games.offer / games.pot * 100
    by_user = games.proposer != ASSISTANT
    by_assistant = games.proposer == ASSISTANT
    pi = posterior.pi_mean()
    out = []
    for s, sim in enumerate(posterior.data.sim_ids):
        in_sim = games.sim == sim
        record = {
            "sim": int(sim),
            "epoch": epoch,
            "users_share": float(share[in_sim & by_user].mean()),
            "assistant_share": float(share[in_sim & by_assistant].mean()),
            "agreement": agreement.get(int(sim), np.nan),
        }
        if cond.true_policy is not None:
            k = posterior.hypothesis.policy_index(cond.true_policy)
            n = len(posterior.data.user_ids[s])
            record["p_true"] = float(posterior.policy_probs[s, :n, k].mean())
        for j, name in enumerate(posterior.policy_names):
            record[f"pi_{name}"] = float(pi[s, j])
        out.append(record)
    return out


def learning_curve(
    interactions: pd.DataFrame, hyp: Hypothesis, user_ids: dict, cond: Condition, truth
) -> pd.DataFrame:
    """Posterior probability of the true norm after each interaction with a user, for every
    simulation: all prefixes are fitted at once as separate groups of one exact fit."""
    rows = interactions[
        ~((interactions.proposer == ASSISTANT) & (interactions.responder == ASSISTANT))
    ].reset_index(drop=True)
    # Row positions of every prefix, stacked: prefix n of a simulation is its first n rows.
    positions, labels, users = [], [], {}
    for sim, where in rows.groupby("sim", sort=False).indices.items():
        for n in range(1, len(where) + 1):
            positions.append(where[:n])
            labels += [f"{sim}#{n}"] * n
            users[f"{sim}#{n}"] = user_ids[str(sim)]
    stacked = rows.iloc[np.concatenate(positions)].reset_index(drop=True)
    stacked["sim"] = labels
    data = GroupData.from_table(stacked, users=users)
    post = fit_exact(data, hyp, table=stacked, num_draws=10)
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


# -- results: tidy summaries, caching, parallel conditions -------------------------------------
def mean_interval(values: np.ndarray) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of the mean over simulations."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(values.mean())
    if n == 1:
        return mean, mean, mean, 1
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def summarise(experiment: str, result: ConditionResult, hypothesis_name: str) -> pd.DataFrame:
    """Tidy rows: condition x epoch x agent with offered share (mean, 95% CI, n) and more."""
    rows = []
    for epoch, group in result.per_sim.groupby("epoch"):
        for agent, column in (("users", "users_share"), ("assistant", "assistant_share")):
            mean, lo, hi, n = mean_interval(group[column])
            row = {
                "experiment": experiment,
                "condition": result.condition.name,
                "hypothesis": hypothesis_name,
                "epoch": int(epoch),
                "agent": agent,
                "offered_share_mean": mean,
                "offered_share_lo": lo,
                "offered_share_hi": hi,
                "n": n,
            }
            if agent == "assistant":
                row["agreement_mean"] = float(group["agreement"].mean())
                if "p_true" in group:
                    row["p_true_mean"] = float(group["p_true"].mean())
                for col in group.columns:
                    if col.startswith("pi_"):
                        row[f"{col}_mean"] = float(group[col].mean())
            rows.append(row)
    return pd.DataFrame(rows)


def fingerprint(cond: Condition, settings: Settings, seed: int) -> str:
    # The hypothesis's contents, not just its name: a changed preset or file invalidates.
    hypothesis = assistant_hypothesis(cond).to_dict()
    text = json.dumps(
        {
            "condition": asdict(cond),
            "settings": asdict(settings),
            "seed": seed,
            "hypothesis": hypothesis,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def condition_seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16)


def _run_cached(args) -> tuple[str, str]:
    cond, settings, cache_dir = args
    seed = condition_seed(settings.seed, cond.stream or cond.name)
    key = fingerprint(cond, settings, seed)
    stem = Path(cache_dir) / key
    done = stem.with_suffix(".done")
    if not done.exists():
        torch.set_num_threads(1)
        result = run_condition(cond, settings, seed)
        write_csv_atomic(result.per_sim, stem.with_suffix(".per_sim.csv"))
        write_csv_atomic(result.interactions, stem.with_suffix(".interactions.csv"))
        if result.curve is not None:
            write_csv_atomic(result.curve, stem.with_suffix(".curve.csv"))
        if result.posterior is not None and cond.save_posterior:
            result.posterior.save(stem.with_suffix(".nc"))
        done.write_text(json.dumps({"condition": asdict(cond), "seed": seed}, default=str))
    return cond.name, str(stem)


def run_conditions(
    conditions: list[Condition],
    settings: Settings,
    cache_dir: Path,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, ConditionResult]:
    """Run (or reuse) every condition; independent conditions run in parallel processes.

    Each finished condition is written under ``cache_dir`` with a fingerprint of its settings,
    so an interrupted run resumes where it stopped and a re-run with the same settings is free.
    """
    from scai.inference.progress import progress_bar

    cache_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(c, settings, str(cache_dir)) for c in conditions]
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    stems: dict[str, str] = {}
    bar = progress_bar(total=len(jobs), desc="conditions", disable=not progress)
    if workers > 1 and len(jobs) > 1:
        pool = worker_pool(workers)
        for fut in as_completed([pool.submit(_run_cached, j) for j in jobs]):
            name, stem = fut.result()
            stems[name] = stem
            bar.update()
    else:
        for job in jobs:
            name, stem = _run_cached(job)
            stems[name] = stem
            bar.update()
    bar.close()
    return {c.name: load_result(c, Path(stems[c.name])) for c in conditions}


def load_result(cond: Condition, stem: Path) -> ConditionResult:
    curve_path = stem.with_suffix(".curve.csv")
    return ConditionResult(
        cond,
        pd.read_csv(stem.with_suffix(".per_sim.csv")),
        pd.read_csv(
            stem.with_suffix(".interactions.csv"), dtype={"sim": str}, keep_default_na=False
        ),
        pd.read_csv(curve_path) if curve_path.exists() else None,
        None,
        {"posterior_path": stem.with_suffix(".nc")},
    )
