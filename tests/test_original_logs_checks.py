"""original-logs' decision bounds, per-interaction reach and restated checks, on small tables
made here (the shared logs are read by tests/test_scai_logs_original.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from scai.experiments.original_logs.decisions import decision_bounds, past_majority
from scai.experiments.original_logs.report import (
    DECISION_TOLERANCE,
    STEREOTYPED,
    checks_and_numbers,
    first_reached,
)


def games_of(decisions: dict[str, list[int]], pots=None, currency=None) -> pd.DataFrame:
    """One condition ``c``; per run, one decision per epoch on 2 one-unit offers each."""
    rows = []
    for r, (sim, per_epoch) in enumerate(decisions.items()):
        for e, accepted in enumerate(per_epoch, start=1):
            pot = pots[r][e - 1] if pots else 10
            for _ in range(2):
                rows.append(
                    {
                        "condition": "c",
                        "sim": sim,
                        "epoch": e,
                        "offer": 1,
                        "pot": pot,
                        "currency": currency[r] if currency else "apples",
                        "accepted": accepted,
                    }
                )
    return pd.DataFrame(rows)


def test_bounds_by_hand():
    # run a: 1 | 0 1 1 ; run b: 0 | 0 0 1 (epochs 2-4 scored)
    games = games_of({"a": [1, 0, 1, 1], "b": [0, 0, 0, 1]}, currency=["apples", "dollars"])
    row = decision_bounds(games).iloc[0]
    assert row.epoch_oracle == 1.0
    assert row.stationary_run == pytest.approx(4 / 6)  # a accepts (2 of 3), b rejects (2 of 3)
    assert row.stationary_offer_currency == pytest.approx(4 / 6)  # one run per currency here
    assert row.stationary_offer_pot == pytest.approx(3 / 6)  # one pot: 3 of 6 accept, a tie
    assert row.best_stationary == pytest.approx(4 / 6)
    # past majority: a: e2 from [1] -> 1 (wrong), e3 from [1, 0] tie -> 1, e4 from [1,0,1] -> 1
    #                b: e2 from [0] -> 0, e3 from [0, 0] -> 0, e4 from [0,0,0] -> 0 (wrong)
    assert row.past_majority == pytest.approx(4 / 6)
    assert row.accept_rate == pytest.approx(3 / 6)


def test_a_pot_dependent_norm_is_found_when_the_pot_decides():
    # accept small pots, reject large ones, in every run: one norm per (offer, pot) is exact
    pots = [[10, 90, 10, 90], [90, 10, 90, 10]]
    games = games_of({"a": [1, 0, 1, 0], "b": [0, 1, 0, 1]}, pots=pots)
    row = decision_bounds(games).iloc[0]
    assert row.stationary_offer_pot == 1.0 and row.best_stationary == 1.0
    assert row.stationary_run == pytest.approx(2 / 3)


def test_no_random_responder_beats_the_best_norm():
    """Agreement is linear in the acceptance probability: a responder accepting with the
    users' own rate q reaches q^2 + (1 - q)^2, below the majority's max(q, 1 - q)."""
    rng = np.random.default_rng(0)
    decisions = {f"r{i}": list(rng.integers(0, 2, 5)) for i in range(6)}
    games = games_of(decisions)
    row = decision_bounds(games).iloc[0]
    q = row.accept_rate
    assert q**2 + (1 - q) ** 2 <= row.best_stationary + 1e-12
    assert row.past_majority <= row.epoch_oracle


def test_past_majority_uses_only_earlier_epochs():
    games = games_of({"a": [0, 1, 1, 1]})
    decided = past_majority(games)
    epoch = games["epoch"].to_numpy()
    assert (decided[epoch == 1] == 1).all()  # nothing seen: accept
    assert (decided[epoch == 2] == 0).all()  # [0]
    assert (decided[epoch == 3] == 1).all()  # [0, 1]: a tie accepts
    assert (decided[epoch == 4] == 1).all()  # [0, 1, 1]


def test_first_reached_counts_interactions_and_a_curve_that_never_reaches():
    up = pd.DataFrame({"interactions": [1, 2, 3, 1, 2, 3], "p_true_norm": [0.5, 0.95, 0.9] * 2})
    assert first_reached(up) == 2
    dip = up.assign(p_true_norm=[0.95, 0.5, 0.95] * 2)  # must stay at the level
    assert first_reached(dip) == 3
    never = up.assign(p_true_norm=0.5)
    assert first_reached(never) == 4


def summary_of(agreement: dict[str, float], p_true: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for cond, agree in agreement.items():
        for hyp in ("real_agents", STEREOTYPED):
            for e, p in enumerate(p_true[cond], start=1):
                base = {"condition": cond, "hypothesis": hyp, "tones": "config", "sim": "s"}
                rows.append(base | {"epoch": e, "agent": "users", "offered_share": 10.0})
                rows.append(
                    base
                    | {
                        "epoch": e,
                        "agent": "scai",
                        "offered_share": 10.0,
                        "offer_within_5": 0.75,
                        "accept_agreement": agree,
                        "decision_agreement": agree,
                        "p_true_norm": p,
                    }
                )
    return pd.DataFrame(rows)


def test_decisions_check_is_restated_only_where_no_norm_reaches_90_percent():
    conds = {"exp3/selfish_rude": 0.85, "exp3/selfish_neutral": 0.85}
    summary = summary_of(conds, {c: [0.5, 0.95, 0.95] for c in conds})
    bounds = pd.DataFrame({"condition": list(conds), "best_stationary": [0.888, 0.975]}).assign(
        stationary_run=0.8, past_majority=0.8, accept_rate=0.5
    )
    checks, numbers, table = checks_and_numbers(summary, bounds=bounds)
    restated = [k for k in checks if "best norm" in k and "selfish_rude" in k]
    assert len(restated) == 2 and all(checks[k] for k in restated)  # 0.85 >= 0.888 - 0.05
    assert 0.888 - DECISION_TOLERANCE <= 0.85
    kept = [k for k in checks if "agree >= 90%" in k and "selfish_neutral" in k]
    assert len(kept) == 2 and not any(checks[k] for k in kept)  # a norm reaches 0.975
    assert "| exp3/selfish_rude | 0.500 | 0.888 |" in table


def curves_of(rude: list[float], neutral: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"condition": c, "hypothesis": STEREOTYPED, "tones": "config", "sim": "s"}
            | {"interactions": n, "p_true_norm": p}
            for c, ps in (("exp3/altruistic_rude", rude), ("exp3/altruistic_neutral", neutral))
            for n, p in enumerate(ps, start=1)
        ]
    )


def test_the_slowdown_is_counted_in_interactions():
    conds = {c: 1.0 for c in ("exp3/altruistic_rude", "exp3/altruistic_neutral")}
    summary = summary_of(conds, {c: [0.5, 0.95, 0.95] for c in conds})  # the same epoch
    checks, numbers, _ = checks_and_numbers(
        summary, curves=curves_of([0.5, 0.6, 0.95], [0.5, 0.95, 0.95])
    )
    (name,) = [k for k in checks if "later than" in k]
    assert checks[name]
    key = f"exp3/altruistic_rude | {STEREOTYPED}: interactions until p_true_norm reaches 0.9"
    assert numbers[key] == 3
    checks, _, _ = checks_and_numbers(
        summary, curves=curves_of([0.5, 0.95, 0.95], [0.5, 0.6, 0.95])
    )
    assert not checks[name]
    late = summary_of(conds, {c: [0.5, 0.6, 0.6, 0.95] for c in conds})  # epoch 4: too late
    checks, _, _ = checks_and_numbers(late, curves=curves_of([0.5, 0.6, 0.95], [0.5, 0.95, 0.95]))
    assert not checks[name]


def test_the_interaction_curve_ends_where_the_next_epoch_starts():
    """After all of epoch 1's games, the per-interaction curve is the epoch fit's epoch 2."""
    from scai.experiments.original_logs.assistant import interaction_curve, run_condition
    from scai.models.hypotheses import get_hypothesis

    rows = []
    for epoch, pot in ((1, 10), (2, 12)):
        for r, (p, q) in enumerate((("u1", "u2"), ("u3", "u4"), ("u5", "u6")), start=1):
            rows.append(
                {
                    "sim": "run", "epoch": epoch, "round": r, "proposer": p, "responder": q,
                    "currency": "apples", "pot": pot, "offer": pot, "accepted": 1,
                    "proposer_tone": "rude", "responder_tone": "rude",
                }
            )  # fmt: skip
    games = pd.DataFrame(rows)
    hypothesis = get_hypothesis("real_agents_stereotyped")
    curve = interaction_curve(games, {"run": "altruistic"}, hypothesis, seed=0)
    assert curve["interactions"].tolist() == [1, 2, 3]
    epochs = run_condition(games, {"run": "altruistic"}, hypothesis, seed=0, epochs=2)
    at_2 = epochs.loc[epochs.epoch == 2, "p_true_norm"].item()
    assert curve["p_true_norm"].iloc[-1] == pytest.approx(at_2, abs=0.01)
    # altruistic proposals from rude users: belief in the configured norm grows game by game
    assert curve["p_true_norm"].is_monotonic_increasing


def test_a_drawn_offer_is_scored_beside_the_expected_one():
    """scai's ``offered_share`` is the mean of the offers it may make, GPT-4's the one offer it
    made: ``offer_within_5`` is the probability that one offer drawn from scai's lands within
    5 points of the users' mean share, reported beside the check (a review found the check's
    1.00 against GPT-4's 0.86 compared a mean with a draw)."""
    import numpy as np

    from scai.experiments.original_logs.assistant import _record

    class Norms:  # offers of a pot of 20: 2 units (10%) with 0.6, 10 units (50%) with 0.4
        offer_probs = [np.array([0.0, 0, 0.6, 0, 0, 0, 0, 0, 0, 0, 0.4] + [0.0] * 10)]
        accept_probs = [np.ones(21)]

    games = pd.DataFrame(
        {"sim": "s", "epoch": 1, "offer": [1, 2, 3], "pot": 20, "accepted": 1}
    )  # the users' mean share: 10%
    record = _record("s", 1, games, Norms, 0, 0.5)
    assert record["offered_share"] == 0.6 * 10 + 0.4 * 50  # a mean 16 points from theirs
    assert record["offer_within_5"] == 0.6  # but 60% of the offers it may make are within 5
    summary = summary_of({"exp1/fair_neutral": 1.0}, {"exp1/fair_neutral": [0.5, 0.95]})
    _, numbers, _ = checks_and_numbers(summary)
    key = "exp1/fair_neutral | real_agents: a drawn offer within 5 points"
    assert numbers[f"{key} (expected share of run-epochs)"] == 0.75


def test_a_mixed_run_scores_each_user_against_their_own_policy():
    """In a run of selfish and altruistic users (an import's mixed condition), ``p_true_norm``
    is each user's probability of their own configured policy: it was the probability of a
    norm named by the mixture (``"selfish=0.5,altruistic=0.5"``), no type's name, so 0 in every
    epoch, the prior's too. A policy that names no norm of the hypothesis is refused."""
    from scai.experiments.original_logs.assistant import p_true_norm, run_condition
    from scai.experiments.original_logs.experiment import configured_policies
    from scai.models.errors import RunError
    from scai.models.hypotheses import get_hypothesis

    mine = {"u1": "selfish", "u2": "altruistic", "u3": "selfish", "u4": "altruistic"}
    keeps = {"selfish": 1, "altruistic": 9}  # of 10: the offer each proposes
    rows = []
    for epoch in (1, 2):
        for r, (p, q) in enumerate((("u1", "u2"), ("u2", "u3"), ("u3", "u4"), ("u4", "u1")), 1):
            offer = keeps[mine[p]]
            rows.append(
                {
                    "sim": "run", "epoch": epoch, "round": r, "proposer": p, "responder": q,
                    "currency": "apples", "pot": 10, "offer": offer, "accepted": 1,
                    "proposer_tone": "neutral", "responder_tone": "neutral",
                }
            )  # fmt: skip
    games = pd.DataFrame(rows)
    hypothesis = get_hypothesis("real_agents")
    epochs = run_condition(games, {"run": mine}, hypothesis, seed=0, epochs=2)
    p = epochs.set_index("epoch")["p_true_norm"]
    prior = np.array(hypothesis.pi_concentration) / sum(hypothesis.pi_concentration)
    share = {n: prior[[k for k, m in enumerate(hypothesis.norm_names) if m == n]].sum()
             for n in ("selfish", "altruistic")}  # fmt: skip
    assert p[1] == pytest.approx((share["selfish"] + share["altruistic"]) / 2)
    assert p[2] > p[1] and p[2] > 0.5  # each user's own proposals point at their own norm
    import torch

    names = hypothesis.norm_names
    one = torch.eye(len(names))[[0, 2]]  # u1 certainly of type 0, u2 of type 2
    assert p_true_norm(one, hypothesis, {"u1": names[0], "u2": names[2]}, ["u1", "u2"]) == 1.0
    assert p_true_norm(one, hypothesis, {"u1": names[2], "u2": names[0]}, ["u1", "u2"]) == 0.0

    users = pd.DataFrame({"sim": "run", "user": list(mine), "policy": list(mine.values())})
    runs = pd.DataFrame({"sim": ["run"]})
    assert configured_policies(users, runs, ("real_agents",)) == {"run": mine}
    renamed = users.assign(policy=users["policy"].replace("altruistic", "generous"))
    with pytest.raises(RunError, match="run run:.*generous.*'real_agents'"):
        configured_policies(renamed, runs, ("real_agents",))


def test_runs_the_import_could_not_convert_whole_are_told_not_crashed_on(tmp_path):
    """A run without user-user games in epoch 1 (its first epoch file lost) was an internal
    KeyError of ``scai run original-logs``; a condition of such runs only, an IndexError; a run
    missing a later epoch was fitted without a word. The first are left out and the others
    fitted on the epochs present, both told in one warning naming the import's report."""
    from scai.experiments.original_logs.experiment import IncompleteLogsWarning, complete_runs
    from scai.models.errors import RunError

    games = pd.DataFrame({"sim": ["a", "a", "b", "b", "c", "c"], "epoch": [1, 2, 2, 3, 1, 3]})
    runs = pd.DataFrame({"sim": ["a", "b", "c"], "cond": "x"})
    report = tmp_path / "logs.report.md"
    with pytest.warns(IncompleteLogsWarning) as caught:
        kept = complete_runs(runs, games, report)
    assert kept["sim"].tolist() == ["a", "c"]
    said = str(caught[0].message)
    assert "1 run(s) left out, without user-user games in epoch 1 (e.g. b)" in said
    assert "1 run(s) miss an epoch, fitted on those present (e.g. c)" in said
    assert str(report) in said
    with pytest.raises(RunError, match="no run of the logs has user-user games in epoch 1"):
        complete_runs(runs[runs["sim"] == "b"], games, report)
    with warnings.catch_warnings():  # only the runs given are told of (not c's gap)
        warnings.simplefilter("error", IncompleteLogsWarning)
        assert complete_runs(runs[runs["sim"] == "a"], games, report)["sim"].tolist() == ["a"]


def test_the_offers_check_says_it_scores_the_expected_offer():
    """The offers check compares scai's expected offer (the mean of the offers it may make)
    with the users' mean; the assistant acts by one offer drawn from that distribution. The
    printed check said "offers within 5 points", which on the shared logs a drawn offer misses
    in three condition-hypotheses (expected shares 0.921 to 0.943, below the 95% asked): the
    check's wording names what it scores."""
    summary = summary_of({"exp1/fair_neutral": 1.0}, {"exp1/fair_neutral": [0.5, 0.95]})
    checks, _, _ = checks_and_numbers(summary)
    offers = [k for k in checks if "within 5 points" in k]
    assert len(offers) == 2  # one per hypothesis
    assert all("expected offer" in k and "drawn" not in k for k in offers), offers


def test_the_fits_warnings_are_told_once_each_with_how_many_fits_gave_them(monkeypatch):
    """Every fit of a condition's many groups on one grid gives the same warning (its lattice
    of pi coarsened for the memory budget): `scai run original-logs` printed it once per fit,
    21 times and counting. Each distinct one is told once, with how many fits gave it."""
    from scai.experiments.original_logs import experiment
    from scai.inference.diagnostics import DiagnosticWarning

    lines = {
        "a": ["DiagnosticWarning: the lattice is coarse"],
        "b": ["DiagnosticWarning: the lattice is coarse", "DiagnosticWarning: another"],
        "c": [],
    }
    monkeypatch.setattr(experiment, "cached", lambda path: False)
    monkeypatch.setattr(experiment, "_fit_to_cache", lambda name: lines[name])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        experiment._run_fits([(name, (name,)) for name in lines], workers=1, progress=False)
    told = [(w.category, str(w.message)) for w in caught]
    assert told == [
        (DiagnosticWarning, "2 of 3 fits: the lattice is coarse"),
        (DiagnosticWarning, "1 of 3 fits: another"),
    ]


def test_the_users_replies_to_gpt4s_offers_are_held_out_and_scored():
    """The users' decisions on GPT-4's offers were dropped unsaid (a review: GPT-4's altruistic
    and selfish users reject equal splits, which no type of the model explains): they are not
    fitted, and ``reply_agreement`` scores scai's acceptance probability on them; the report
    tabulates it beside how often the users accepted."""
    import numpy as np

    from scai.experiments.original_logs.assistant import _record
    from scai.experiments.original_logs.experiment import gpt4_offers, reference_rows

    class Norms:  # a pot of 4: accepts 2 units with 0.9, 4 units with 0.2
        offer_probs = [np.full(5, 0.2)]
        accept_probs = [np.array([0.0, 0.5, 0.9, 0.5, 0.2])]

    games = pd.DataFrame({"sim": "s", "epoch": 2, "offer": [1], "pot": 4, "accepted": 1})
    gpt4 = pd.DataFrame(
        {
            "sim": ["s", "s", "s", "t"],
            "epoch": [2, 3, 4, 2],
            "pot": [4, 4, 4, 4],
            "offer": [2, 4, 2, "?"],  # (a decision or offer not read: not scored)
            "accepted": [0, 1, 1, 1],
            "offered_share": [50.0, 100.0, 50.0, ""],
        }
    )
    replies = gpt4_offers(gpt4)
    assert replies["sim"].tolist() == ["s", "s", "s"]
    # rejected 2 units (p 0.9): 0.1; accepted 4 units (p 0.2): 0.2; another pot: not scored
    assert _record("s", 2, games, Norms, 0, 0.5, replies)["reply_agreement"] == pytest.approx(0.1)
    assert _record("s", 3, games, Norms, 0, 0.5, replies)["reply_agreement"] == pytest.approx(0.2)
    assert np.isnan(_record("s", 5, games, Norms, 0, 0.5, replies)["reply_agreement"])
    assert "reply_agreement" not in _record("s", 2, games, Norms, 0, 0.5)
    gpt4 = gpt4.assign(assistant_accepted=1)
    reference = reference_rows(games, gpt4)
    assert reference.loc[reference.agent == "gpt4", "reply_accepted"].tolist()[:3] == [0, 1, 1]
    summary = summary_of({"exp1/fair_neutral": 1.0}, {"exp1/fair_neutral": [0.5, 0.95]})
    summary.loc[summary.agent == "scai", "reply_agreement"] = 0.25
    gpt = summary[summary.agent == "users"].assign(
        agent="gpt4", offered_share=50.0, reply_accepted=0.0
    )
    checks, numbers, table = checks_and_numbers(pd.concat([summary, gpt]))
    assert numbers["exp1/fair_neutral | users accept GPT-4's offers"] == 0.0
    key = "exp1/fair_neutral | real_agents: agreement with the users' replies to GPT-4's offers"
    assert numbers[key] == 0.25
    assert "| exp1/fair_neutral | 50.0 | 0.000 | 0.250 | 0.250 |" in table
    assert not any("GPT-4's offers" in k for k in checks)  # a number, not a check
    plain = summary_of({"exp1/fair_neutral": 1.0}, {"exp1/fair_neutral": [0.5, 0.95]})
    assert "Replies to GPT-4's offers" not in checks_and_numbers(plain)[2]  # none scored
