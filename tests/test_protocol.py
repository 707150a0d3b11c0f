"""The protocol's epoch schedule: who plays whom, in which order, and why the order matters only
to the per-interaction learning curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyro
import pytest

from scai.experiments.cli import build_parser
from scai.experiments.common import settings_from
from scai.experiments.conditions import SCHEDULES, Condition, Settings, fingerprint
from scai.experiments.protocol import epoch_schedule, run_condition
from scai.inference.exact import fit_exact
from scai.models.hypotheses import get_hypothesis
from scai.models.layout import ASSISTANT, GroupData
from scai.models.simulate import play

USERS = [f"u{i}" for i in range(10)]


def schedule(order: str, seed: int = 0, sims: int = 2):
    return epoch_schedule(
        epoch=1,
        users=USERS,
        pots=[40, 73][:sims],
        currencies=["dollars", "apples"][:sims],
        offers=[10, 30][:sims],
        rounds=8,
        variant="1v9",
        rng=np.random.default_rng(seed),
        schedule=order,
    )


def games(table, sim="0"):
    rows = table[table.sim == sim]
    return list(zip(rows.proposer, rows.responder, strict=True))


def test_grouped_plays_every_first_game_before_any_return_game():
    played = games(schedule("grouped"))
    first, back, with_assistant = played[:4], played[4:8], played[8:]
    assert back == [(b, a) for a, b in first]
    assert len({u for pair in first for u in pair}) == 8  # four pairs of distinct users
    partner = with_assistant[0][1]
    assert with_assistant == [(ASSISTANT, partner), (partner, ASSISTANT)]
    assert partner not in {u for pair in first for u in pair}


def test_alternating_plays_each_return_game_next():
    played = games(schedule("alternating"))
    for j in range(4):
        a, b = played[2 * j]
        assert played[2 * j + 1] == (b, a)


def test_both_orders_play_the_same_games():
    """The same random numbers give the same pairs; only the order differs."""
    grouped, alternating = schedule("grouped", seed=5), schedule("alternating", seed=5)
    for sim in ("0", "1"):
        assert sorted(games(grouped, sim)) == sorted(games(alternating, sim))
        assert games(grouped, sim)[8:] == games(alternating, sim)[8:]


def test_unknown_schedule_names_the_allowed_ones():
    with pytest.raises(ValueError, match="schedule must be one of grouped, alternating"):
        schedule("random")
    assert SCHEDULES == ("grouped", "alternating")


def test_epoch_posterior_does_not_depend_on_the_order_of_games():
    """Games are exchangeable given the users' types, so refitting the played games in the
    other order gives the same posterior; only the learning curve's prefixes differ."""
    hyp = get_hypothesis("stereotyped")
    pyro.set_rng_seed(0)
    table = play(
        schedule("grouped"),
        hyp,
        {"0": USERS, "1": USERS},
        policies=[["selfish"] * 10, ["altruistic"] * 10],
        manners=[["sycophantic"] * 10, ["rude"] * 10],
    ).interactions
    table = table[(table.proposer != ASSISTANT) | (table.responder != ASSISTANT)]
    order = np.random.default_rng(1).permutation(len(table))
    shuffled = table.iloc[order].reset_index(drop=True)
    shuffled["round"] = shuffled.groupby("sim").cumcount() + 1
    users = {"0": USERS, "1": USERS}
    a = fit_exact(GroupData.from_table(table, users=users), hyp, table=table, num_draws=10)
    b = fit_exact(GroupData.from_table(shuffled, users=users), hyp, table=shuffled, num_draws=10)
    np.testing.assert_allclose(a.policy_probs, b.policy_probs, atol=1e-10)
    assert not np.allclose(a.policy_probs[0, :, 0], a.policy_probs[0, 0, 0])  # not trivial


def test_both_orders_give_every_user_the_same_outcomes():
    """With the same random numbers, each user's offers, decisions and tones are the same under
    both orders: the contrast between orders is paired, as the one between tones is."""
    columns = ["proposer", "responder", "offer", "accepted", "proposer_tone", "responder_tone"]
    outcomes = []
    for order in SCHEDULES:
        pyro.set_rng_seed(7)
        table = play(
            schedule(order, seed=5),
            get_hypothesis("stereotyped"),
            {"0": USERS, "1": USERS},
            policies=[["fair"] * 10, ["selfish"] * 5 + ["altruistic"] * 5],
            manners=[["rude"] * 10, ["sycophantic"] * 10],
        ).interactions
        user_games = table[(table.proposer != ASSISTANT) & (table.responder != ASSISTANT)]
        outcomes.append(user_games.sort_values(["sim", "proposer"])[columns].to_numpy().tolist())
    assert outcomes[0] == outcomes[1]


def test_a_condition_learns_the_same_per_epoch_under_both_orders():
    """Through the real path (``run_condition``: a first fit, then ``update`` each epoch) the
    per-epoch records agree; only the per-interaction curve depends on the order."""
    cond = Condition(
        "t",
        "selfish",
        manner="sycophantic",
        hypothesis="stereotyped",
        users=10,
        true_policy="selfish",
    )
    runs = {
        order: run_condition(cond, Settings(sims=2, epochs=2, schedule=order, curve=True), 11)
        for order in SCHEDULES
    }
    grouped, alternating = runs["grouped"], runs["alternating"]
    pd.testing.assert_frame_equal(grouped.per_sim, alternating.per_sim, rtol=1e-6)
    assert not np.allclose(grouped.curve.p_true, alternating.curve.p_true)


def test_a_learning_curve_fitted_in_blocks_of_simulations_is_the_same_to_the_bit(monkeypatch):
    """The learning curve's prefix groups are fitted in blocks of simulations holding at most
    ``CURVE_SLOTS`` event slots (a sweep cell of 1,000 users and 1,000 simulations took all
    24 GB at once): each group is independent of the others, so three blocks (one or two
    simulations each) give the curve one block gives, bit for bit."""
    from scai.experiments import learning_curve

    cond = Condition(
        "t", "altruistic", manner="rude", hypothesis="stereotyped", users=6,
        true_policy="altruistic",
    )  # fmt: skip
    settings = Settings(sims=3, epochs=2, curve=True)
    whole = run_condition(cond, settings, 5).curve
    blocks: list[int] = []
    cut = learning_curve._simulation_blocks

    def counted(*args):
        found = cut(*args)
        blocks.append(len(found))
        return found

    monkeypatch.setattr(learning_curve, "CURVE_SLOTS", 1)  # every simulation a block
    monkeypatch.setattr(learning_curve, "_simulation_blocks", counted)
    parts = run_condition(cond, settings, 5).curve
    assert blocks == [3]
    pd.testing.assert_frame_equal(whole, parts, check_exact=True)


def test_the_order_is_part_of_the_settings_and_of_the_cache_key():
    args = build_parser().parse_args(["run", "inconsistency", "--schedule", "alternating"])
    assert settings_from(args).schedule == "alternating"
    default = build_parser().parse_args(["run", "inconsistency"])
    assert settings_from(default).schedule == "grouped"
    cond = Condition("t", "selfish")
    keys = {fingerprint(cond, Settings(schedule=order), 0) for order in SCHEDULES}
    assert len(keys) == 2  # a cached run of one order is never reused for the other


def test_interactions_to_reach_is_each_simulations_first_count_at_the_level():
    """Per simulation, in the simulations' order: the first number of interactions whose
    ``p_true`` reaches the level, rows in any order; NaN for a simulation that never does."""
    from scai.experiments.learning_curve import interactions_to_reach

    curve = pd.DataFrame(
        [(7, 3, 0.96), (2, 1, 0.5), (7, 1, 0.97), (2, 2, 0.95), (7, 2, 0.2), (4, 1, 0.9)],
        columns=["sim", "interactions", "p_true"],
    )
    reach = interactions_to_reach(curve, 0.95)
    assert reach.index.name == "sim" and list(reach.index) == [2, 4, 7]
    assert reach.loc[2] == 2 and np.isnan(reach.loc[4]) and reach.loc[7] == 1
    assert list(interactions_to_reach(curve, 0.5).fillna(-1)) == [1.0, 1.0, 1.0]
