"""The simulator: mixtures, exact assignment, determinism, TOML-defined policies, manners and
transcripts, through :func:`scai.models.simulate.simulate` and the ``scai simulate`` command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference as ref

from scai.experiments.cli import main
from scai.models.companions import parameters_path, users_path
from scai.models.data import read_interactions
from scai.models.errors import SimulationWarning
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.simulate import make_schedule, parse_mixture, simulate, transcript
from scai.models.users_table import read_users

MIX = "selfish=0.8,altruistic=0.2"


def scai(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def test_sampled_mixture_proportions():
    sim = simulate(Hypothesis(), policy=MIX, users=1000, rounds=2, epochs=1, sims=1, seed=7)
    assert len(sim.users) == 1000
    share = (sim.users["policy"] == "selfish").mean()
    # Binomial(n=1000, p=0.8): sd = sqrt(0.8 * 0.2 / 1000) = 0.0126, so +-3% is ~2.4 sd.
    assert abs(share - 0.8) <= 0.03
    assert set(sim.users["policy"]) == {"selfish", "altruistic"}


@pytest.mark.parametrize("sims", [1, 3])
def test_exact_assignment_deals_exact_counts(sims):
    sim = simulate(
        Hypothesis(), policy=MIX, users=1000, rounds=2, epochs=1, sims=sims, seed=7, assign="exact"
    )
    counts = sim.users.groupby("sim")["policy"].value_counts().unstack()
    assert len(counts) == sims
    assert (counts["selfish"] == 800).all()
    assert (counts["altruistic"] == 200).all()


def test_exact_assignment_rounds_by_largest_remainder():
    thirds = {"selfish": 1 / 3, "fair": 1 / 3, "altruistic": 1 / 3}
    with pytest.warns(SimulationWarning, match="rounded: selfish 3.33333"):  # and says so
        sim = simulate(Hypothesis(), policy=thirds, users=10, seed=1, assign="exact")
    assert sorted(sim.users["policy"].value_counts().tolist()) == [3, 3, 4]


def test_users_most_of_whom_cannot_play_are_told(tmp_path, capsys):
    """``scai simulate --users 10000000`` with 8 rounds x 5 epochs wrote a 239 MB users table of
    users who play no game, unwarned (a review find): most users certain to play no game
    (each epoch's rounds pair 2 ceil(rounds / 2) of them) is told, with the rounds that let
    every user play; a few left out (the study's 10 users, 8 rounds an epoch) is not."""
    import warnings

    with pytest.warns(SimulationWarning, match="at most 8 of them play .* at least 9 play no"):
        sim = simulate(Hypothesis(), policy="fair", users=17, rounds=7, seed=1)
    assert sim.interactions[["proposer", "responder"]].stack().nunique() <= 8  # the bound
    with warnings.catch_warnings():
        warnings.simplefilter("error", SimulationWarning)
        simulate(Hypothesis(), policy="fair", users=16, rounds=7, seed=1)  # half can play
        simulate(Hypothesis(), policy="fair", users=10, rounds=8, seed=1)
        simulate(Hypothesis(), policy="fair", users=80, rounds=8, epochs=5, seed=1)
    args = ("simulate", "--policy", "fair", "--users", 100, "--out", tmp_path / "t.csv")
    assert scai(*args) == 0
    err = capsys.readouterr().err
    assert "at most 40 of them play" in err and "at least 20 for every user to be able" in err
    assert len(pd.read_csv(tmp_path / "t.users.csv")) == 100  # told, not refused


def test_exact_assignment_warns_when_it_rounds_and_of_a_type_it_deals_to_no_user(tmp_path, capsys):
    """Largest remainder gives 0.05 of 10 users (half a user) to no one: said, not silent;
    every type dealt at least once says nothing."""
    import warnings

    mix = "selfish=0.95,altruistic=0.05"
    left_out = (
        r"selfish 10, altruistic 0 \(rounded: selfish 9.5, altruistic 0.5 asked\): "
        "no user is altruistic"
    )
    with pytest.warns(SimulationWarning, match=left_out):
        sim = simulate(Hypothesis(), policy=mix, users=10, seed=1, assign="exact")
    assert set(sim.users["policy"]) == {"selfish"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SimulationWarning)
        simulate(Hypothesis(), policy=mix, users=20, rounds=20, seed=1, assign="exact")
        simulate(Hypothesis(), policy=mix, users=10, seed=1)  # sampled: nothing promised
    rounded = r"selfish 8, altruistic 2 \(rounded: selfish 7.5, altruistic 2.5 asked\) \(use"
    with pytest.warns(SimulationWarning, match=rounded):  # a type left out or not, it says
        simulate(Hypothesis(), policy="selfish=0.75,altruistic=0.25", users=10, assign="exact")
    args = ("simulate", "--policy", mix, "--users", 10, "--assign", "exact")
    assert scai(*args, "--out", tmp_path / "t.csv") == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("scai simulate: warning: assign='exact': 10 users")


def test_schedule_pairs_distinct_users_both_ways():
    rng = np.random.default_rng(0)
    df = make_schedule(users=5, rounds=8, epochs=3, sims=2, currency="apples", rng=rng)
    assert len(df) == 2 * 3 * 8
    assert (df["proposer"] != df["responder"]).all()
    # interaction 2j has a propose to b and 2j + 1 the reverse
    first, second = df.iloc[0::2].reset_index(), df.iloc[1::2].reset_index()
    assert (first["proposer"] == second["responder"]).all()
    assert (first["responder"] == second["proposer"]).all()
    # one pot per epoch, within 10..100
    assert (df.groupby(["sim", "epoch"])["pot"].nunique() == 1).all()
    assert df["pot"].between(10, 100).all()


def test_parse_mixture():
    names = ("selfish", "fair", "altruistic")
    assert parse_mixture("fair", names) == {"selfish": 0.0, "fair": 1.0, "altruistic": 0.0}
    assert parse_mixture("selfish=0.75,altruistic=0.25", names) == {
        "selfish": 0.75,
        "fair": 0.0,
        "altruistic": 0.25,
    }
    # weights that do not sum to 1 are an error naming the sum, not silently renormalised
    with pytest.raises(ValueError, match=r"sum to 4, not 1 .*selfish=0.75,altruistic=0.25"):
        parse_mixture("selfish=3,altruistic=1", names)
    with pytest.raises(ValueError, match="unknown policy 'greedy'; allowed: selfish"):
        parse_mixture("greedy=1", names)
    with pytest.raises(ValueError, match="not a number"):
        parse_mixture("selfish=lots", names)


# -- the command line ---------------------------------------------------------------------


def run_simulate(out: Path, seed: int, *extra: str | Path) -> int:
    return scai(
        "simulate",
        "--policy",
        MIX,
        "--users",
        6,
        "--rounds",
        6,
        "--epochs",
        3,
        "--sims",
        2,
        "--currency",
        "apples",
        "--seed",
        seed,
        "--out",
        out,
        "--transcript",
        out.with_suffix(".txt"),
        *extra,
    )


def outputs(out: Path) -> list[bytes]:
    paths = (out, users_path(out), parameters_path(out), out.with_suffix(".txt"))
    return [p.read_bytes() for p in paths]


def test_cli_same_seed_gives_identical_files(tmp_path, capsys):
    a, b = tmp_path / "a" / "sim.csv", tmp_path / "b" / "sim.csv"
    assert run_simulate(a, 3) == 0
    assert run_simulate(b, 3) == 0
    assert "wrote 36 interactions" in capsys.readouterr().out
    assert users_path(a).name == "sim.users.csv"
    files_a, files_b = outputs(a), outputs(b)
    assert all(len(f) > 0 for f in files_a)
    assert files_a == files_b
    # what was written is valid and typed
    table = read_interactions(a)
    assert len(table) == 36 and set(table["currency"]) == {"apples"}
    users = read_users(users_path(a), Hypothesis().policy_names)
    assert len(users) == 12


def test_cli_different_seeds_differ(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run_simulate(a, 1) == 0
    assert run_simulate(b, 2) == 0
    files_a, files_b = outputs(a), outputs(b)
    for fa, fb in zip(files_a, files_b, strict=True):
        # (the parameters: the mixture given, the same; the neutral preset draws nothing)
        assert (fa != fb) or fa.startswith(b"sim,parameter,value\n0,pi[selfish],0.8\n")


def test_simulate_function_is_deterministic():
    thirds = {"selfish": 1 / 3, "fair": 1 / 3, "altruistic": 1 / 3}
    kwargs = dict(policy=thirds, users=5, epochs=2, sims=3, seed=9)
    one, two = simulate(Hypothesis(), **kwargs), simulate(Hypothesis(), **kwargs)
    pd.testing.assert_frame_equal(one.interactions, two.interactions)
    pd.testing.assert_frame_equal(one.users, two.users)
    three = simulate(Hypothesis(), **{**kwargs, "seed": 10})
    assert not one.interactions.equals(three.interactions)


SPITE_TOML = """\
name = "with_spite"

[policies.selfish]
w = 0.0

[policies.spiteful]
w = -1.0
description = "values the other's loss"
"""


def spiteful_share(pots: np.ndarray, lam: float) -> np.ndarray:
    """Exact ``E[offer / pot | pot]`` of a spiteful proposer (w = -1), per pot."""
    shares = []
    for pot in pots:
        probs = np.exp(ref.offer_logps(int(pot), -1.0, 0.0, 0.0, lam))
        shares.append((probs * np.arange(pot + 1)).sum() / pot)
    return np.array(shares)


def test_cli_policy_defined_only_in_toml(tmp_path):
    hyp = tmp_path / "spite.toml"
    hyp.write_text(SPITE_TOML)
    common = ("--users", 10, "--rounds", 10, "--epochs", 5, "--sims", 10, "--hypothesis", hyp)
    spite, selfish = tmp_path / "spite.csv", tmp_path / "selfish.csv"
    assert scai("simulate", "--policy", "spiteful", "--out", spite, "--seed", 1, *common) == 0
    assert scai("simulate", "--policy", "selfish", "--out", selfish, "--seed", 2, *common) == 0

    names = ("selfish", "spiteful")
    assert set(read_users(users_path(spite), names)["policy"]) == {"spiteful"}
    assert set(read_users(users_path(selfish), names)["policy"]) == {"selfish"}
    sp, se = read_interactions(spite), read_interactions(selfish)
    assert len(sp) == len(se) == 500

    # U = x - y: a spiteful proposer keeps at least half (its own kind rejects the rest), and
    # offers ~ uniformly below half: E[share] ~ 0.25 (exact value from the scalar formula).
    share = (sp["offer"] / sp["pot"]).to_numpy()
    exact = spiteful_share(sp["pot"].to_numpy(), lam=4.0)
    se_share = np.std(share - exact, ddof=1) / math.sqrt(len(share))  # ~0.007
    assert abs(share.mean() - exact.mean()) < 4 * se_share
    assert share.mean() < 0.3
    assert (share <= 0.5).mean() > 0.99
    # A spiteful responder accepts only offers above half, so it rejects almost everything
    # its own kind offers; a selfish one accepts almost everything.
    reject_spite, reject_selfish = 1 - sp["accepted"].mean(), 1 - se["accepted"].mean()
    assert reject_spite > 0.9
    assert reject_selfish < 0.1


def test_cli_manner_fixes_every_users_manner(tmp_path):
    out = tmp_path / "rude.csv"
    argv = ("--users", 10, "--rounds", 10, "--epochs", 5, "--sims", 4, "--seed", 4)
    assert scai("simulate", "--policy", MIX, "--manner", "rude", "--out", out, *argv) == 0
    users = read_users(users_path(out), Hypothesis().policy_names)
    assert len(users) == 40
    assert set(users["manner"]) == {"rude"}
    table = read_interactions(out)
    tones = pd.concat([table["proposer_tone"], table["responder_tone"]])
    # 400 messages, each rude with P = tone_fidelity = 0.85: sd = 0.018, tolerance 4 sd
    assert abs((tones == "rude").mean() - 0.85) < 4 * math.sqrt(0.85 * 0.15 / len(tones))


def test_manners_drawn_from_stereotype_when_not_fixed():
    """Without --manner, a fully stereotyped hypothesis makes every selfish user rude."""
    hyp = Hypothesis(stereotype={"selfish": {"rude": 1.0}}, stereotype_strength=1.0)
    sim = simulate(hyp, policy="selfish", users=20, seed=3)
    assert set(sim.users["manner"]) == {"rude"}
    loose = simulate(Hypothesis(), policy="selfish", users=40, seed=3)
    assert loose.users["manner"].nunique() > 1


def test_transcript_is_deterministic_and_names_the_unit(tmp_path):
    sim = simulate(Hypothesis(), policy=MIX, users=4, rounds=4, currency="apples", seed=2)
    text = transcript(sim.interactions, seed=5)
    assert text == transcript(sim.interactions, seed=5)
    lines = text.splitlines()
    assert len(lines) == 2 * len(sim.interactions)  # a proposal and a reply per game
    assert "apples" in lines[0]
    first = sim.interactions.iloc[0]
    assert f"{first['offer']} of {first['pot']} apples" in lines[0]
    assert lines[0].startswith(f"[sim 0 epoch 1 round 1] {first['proposer']} -> ")
    # the wording is drawn from the seed: another seed words some line differently
    assert any(transcript(sim.interactions, seed=s) != text for s in range(6, 10))
    # through the CLI with another currency, the unit follows the currency
    out = tmp_path / "m.csv"
    assert (
        scai(
            "simulate",
            "--policy",
            "fair",
            "--currency",
            "medicine",
            "--users",
            4,
            "--epochs",
            1,
            "--out",
            out,
            "--transcript",
            tmp_path / "m.txt",
        )
        == 0
    )
    assert "grams of medicine" in (tmp_path / "m.txt").read_text()


def test_currency_list_must_match_sims():
    with pytest.raises(ValueError, match=r"one per simulation \(3\); got 2"):
        simulate(
            PRESETS["neutral"],
            policy="fair",
            users=2,
            rounds=1,
            epochs=1,
            sims=3,
            currency=["dollars", "apples"],
        )


def test_tables_of_one_stem_do_not_share_their_users_file(tmp_path):
    """``scai simulate --out a.csv`` then ``--out a.tsv``: both wrote ``a.users.csv``, and the
    second replaced the first's users (4 altruistic users paired with 6 selfish ones). A table
    not named ``.csv`` keeps its whole name in its companions' (the import's too)."""
    from scai.models.companions import companion_path
    from scai.models.scai_logs.importer import failed_report_path, output_paths

    assert users_path(tmp_path / "a.csv").name == "a.users.csv"
    assert users_path(tmp_path / "A.CSV").name == "A.users.csv"
    assert users_path(tmp_path / "a.tsv").name == "a.tsv.users.csv"
    assert companion_path(tmp_path / "a", "runs").name == "a.runs.csv"
    assert output_paths(tmp_path / "a.tsv")["report"].name == "a.tsv.report.md"
    assert failed_report_path(tmp_path / "a.csv").name == "a.failed-import.md"
    for out, policy, users in (("a.csv", "altruistic", 4), ("a.tsv", "selfish", 6)):
        argv = ["simulate", "--policy", policy, "--users", str(users), "--epochs", "1"]
        assert main([*argv, "--out", str(tmp_path / out)]) == 0
    names = Hypothesis().policy_names
    first = read_users(users_path(tmp_path / "a.csv"), names)
    assert len(first) == 4 and set(first["policy"]) == {"altruistic"}


@pytest.mark.parametrize(
    ("users", "rounds", "epochs", "sims", "measured"),
    [
        (10**7, 8, 5, 1, 4.3e9),  # the red-team's run: 4.3 GB over start-up (estimated 2.2)
        (2 * 10**6, 8, 5, 2, 1.76e9),  # /usr/bin/time, 2026-12-06
        (2 * 10**6, 1, 1, 1, 0.64e9),
    ],
)
def test_the_memory_check_estimates_at_least_a_simulations_measured_peak(
    users, rounds, epochs, sims, measured
):
    """``check_size`` counted the padded layout alone (3 x 72 B a user where a user has one
    event), not the users' tables and tensors: 10^7 users needed twice the estimate, and a run
    estimated just under the limit (half the memory available) could need all of it. Each
    peak measured (RSS over the start-up's) is now within the estimate: a limit at the peak
    refuses the run, and one at twice the peak lets it through."""
    from scai.models.errors import RunError
    from scai.models.simulate import check_size

    sizes = {"users": users, "rounds": rounds, "epochs": epochs, "sims": sims}
    with pytest.raises(RunError, match="needs about"):
        check_size(**sizes, max_bytes=int(measured))
    assert check_size(**sizes, max_bytes=int(2 * measured)) == sims * epochs * rounds


def test_an_output_named_as_another_tables_users_file_is_refused(tmp_path, capsys):
    """``--out a.users.csv`` beside a simulated ``a.csv`` replaced its users with an
    interaction table (a review): refused before any work, naming the table; without the table
    beside it the name is just a name, and the table's own run writes its users as before."""
    table, users = tmp_path / "a.csv", tmp_path / "a.users.csv"
    assert scai("simulate", "--policy", "fair", "--users", 4, "--out", table) == 0
    before = users.read_bytes()
    assert scai("simulate", "--policy", "fair", "--users", 4, "--out", users) != 0
    err = capsys.readouterr().err
    assert "a.users.csv is the users file of the table" in err and str(table) in err
    assert users.read_bytes() == before and not (tmp_path / "a.users.users.csv").exists()
    assert scai("simulate", "--policy", "fair", "--users", 4, "--seed", 1, "--out", table) == 0
    assert users.read_bytes() != before  # the table's own run replaces its users
    lone = tmp_path / "b.users.csv"
    assert scai("simulate", "--policy", "fair", "--users", 4, "--out", lone) == 0
    # a table of another case of suffix (C.CSV's users are C.users.csv; a review)
    assert scai("simulate", "--policy", "fair", "--users", 4, "--out", tmp_path / "C.CSV") == 0
    assert scai("simulate", "--policy", "fair", "--users", 4, "--out", tmp_path / "C.users.csv")
    assert "is the users file of the table" in capsys.readouterr().err
    # --out=--help wrote a table named "--help" (a review): a name that reads as an option
    assert scai("simulate", "--policy", "fair", "--out=--help") != 0
    assert "starts with '-' reads as an option" in capsys.readouterr().err


def test_transcript_checks_its_table_and_seed():
    """``transcript`` gave Python's AttributeError for a table without ``offer`` and took
    ``seed=-1`` (a review's finds): the table is checked as ``validate_frame`` checks one and
    the seed as every seed; the text of a good table is as before (the same for a seed)."""
    from scai.models.data import DataError
    from scai.models.errors import RunError

    sim = simulate(Hypothesis(), policy="fair", users=4, seed=1)
    with pytest.raises(DataError, match="missing column.*offer"):
        transcript(sim.interactions.drop(columns="offer"))
    with pytest.raises(RunError, match="a DataFrame\\), got list"):
        transcript([1])
    for seed in (-1, 1.5):
        with pytest.raises(RunError, match="seed: must be a whole number"):
            transcript(sim.interactions, seed=seed)
    assert transcript(sim.interactions, seed=2) == transcript(sim.interactions, seed=2)


def test_the_parameters_a_simulation_drew_are_kept_and_named_as_the_summary_names_them():
    """``simulate`` drew each group's latent values (rationality, currency shifts, lapse,
    strength, clone share) from the hypothesis's priors and threw them away: whether a fit
    recovers them could not be checked (a review). ``Simulation.parameters`` holds them, the
    values the model played under (a group with a higher drawn ``lam`` offers closer to its
    norm), named as ``Posterior.summary`` names its rows."""
    from scai.inference import fit

    hyp = PRESETS["real_agents"].with_(name="drawn", rationality_scale=0.5)
    sim = simulate(hyp, policy="selfish=0.5,fair=0.5", users=4, rounds=4, sims=3, seed=5)
    table = sim.parameters
    assert list(table.columns) == ["sim", "parameter", "value"]
    names = [f"pi[{name}]" for name in hyp.policy_names] + ["lam", "lapse", "clone"]
    assert list(table["parameter"]) == names * 3 and list(table["sim"]) == [
        s for s in ("0", "1", "2") for _ in names
    ]
    pivot = table.pivot(index="sim", columns="parameter", values="value")
    assert (pivot["pi[selfish]"] == 0.5).all() and (pivot["pi[altruistic]"] == 0).all()
    for site in ("lam", "lapse", "clone"):  # drawn per group, not one value for all
        assert pivot[site].nunique() == 3, site
    assert ((pivot["lapse"] > 0) & (pivot["lapse"] < 1)).all()
    # the same seed draws the same values; another seed others
    again = simulate(hyp, policy="selfish=0.5,fair=0.5", users=4, rounds=4, sims=3, seed=5)
    pd.testing.assert_frame_equal(again.parameters, table)
    other = simulate(hyp, policy="selfish=0.5,fair=0.5", users=4, rounds=4, sims=3, seed=6)
    assert not other.parameters["value"].equals(table["value"])
    # every name is a row of a fit's summary
    shifts = PRESETS["pooled"].with_(rationality_scale=0.3)
    two = simulate(
        shifts, policy="fair", users=5, rounds=4, sims=2, seed=1, currency=["dollars", "medicine"]
    )
    summary = fit(two.interactions, shifts, engine="exact").summary()
    merged = two.parameters.merge(summary, on=["sim", "parameter"], how="left")
    assert merged["mean"].notna().all(), merged
    assert {"lam", "shift_shared", "shift[dollars]", "shift[medicine]"} <= set(merged["parameter"])


def test_the_drawn_rationality_is_the_one_the_users_played_with():
    """The values kept are the ones the games came from: users of one norm under a latent
    rationality offer closer to the norm's offer in the groups whose kept ``lam`` is higher
    (Spearman correlation over 40 groups of the kept lam with the mean distance of offers from
    half the pot: -0.52 to -0.81 over seeds 0-3; values unrelated to the games would give 0
    with an sd of 0.16, so -0.4 is 2.5 sd from them). Rationality around 0.5: above ~2 a fair
    user's offers are all at half the pot."""
    from scipy import stats

    hyp = PRESETS["neutral"].with_(rationality=0.5, rationality_scale=1.0)
    sim = simulate(hyp, policy="fair", users=10, rounds=10, sims=40, seed=0)
    lam = sim.parameters.query("parameter == 'lam'").set_index("sim")["value"]
    games = sim.interactions
    distance = (games["offer"] / games["pot"] - 0.5).abs().groupby(games["sim"]).mean()
    rho = stats.spearmanr(lam.loc[distance.index], distance).statistic
    assert rho < -0.4, rho


def test_cli_writes_the_parameters_beside_the_users(tmp_path):
    out = tmp_path / "sim.csv"
    assert run_simulate(out, 3) == 0
    written = pd.read_csv(parameters_path(out), dtype={"sim": str})
    expected = simulate(
        "neutral", policy=MIX, users=6, rounds=6, epochs=3, sims=2, currency="apples", seed=3
    ).parameters
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)


def test_cli_simulates_one_currency_per_simulation(tmp_path, capsys):
    """``--currency`` took one name for every simulation, while ``simulate`` takes one per
    simulation: a group on several currencies (what currency shifts are fitted from) could not
    be made from the command line. A comma-separated list is one per simulation; a name
    outside the currencies, or a count other than the simulations', is refused naming it."""
    out = tmp_path / "two.csv"
    common = ["--policy", "selfish", "--users", 4, "--sims", 2, "--seed", 1, "--out", out]
    assert scai("simulate", *common, "--currency", "dollars,medicine") == 0
    table = read_interactions(out)
    assert table.groupby("sim")["currency"].unique().map(list).to_dict() == {
        "0": ["dollars"],
        "1": ["medicine"],
    }
    python = simulate(
        "neutral",
        policy="selfish",
        users=4,
        epochs=5,  # (the command's default)
        sims=2,
        seed=1,
        currency=["dollars", "medicine"],
    )
    pd.testing.assert_frame_equal(table, read_interactions(python_csv(python, tmp_path)))
    capsys.readouterr()
    for bad, said in (
        ("dollars,euros", "unknown currency 'euros'; allowed: apples, blankets, dollars"),
        ("dollars,medicine,apples", "one name, or one per simulation (2); got 3"),
    ):
        try:  # (argparse's refusal exits; simulate's is the command's error)
            code = scai("simulate", *common, "--currency", bad)
        except SystemExit as end:
            code = end.code
        assert code == 2 and said in capsys.readouterr().err, bad


def python_csv(sim, folder: Path) -> Path:
    path = folder / "python.csv"
    sim.interactions.to_csv(path, index=False)
    return path
