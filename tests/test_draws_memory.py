"""The draws a fit keeps, and their ArviZ form, are counted against the memory limit before any
inference runs: ``scai fit --draws 100000`` on 2,000 simulations ran for 98 s and was killed
at 24 GB (the whole machine), and 1,000,000 draws failed with torch's allocator error."""

from __future__ import annotations

import math
import sys
import time

import pytest

from scai.experiments.cli import main
from scai.inference import fit
from scai.inference.errors import EngineError
from scai.inference.fit import (
    BYTES_PER_DRAW_AND_ROW,
    BYTES_PER_DRAW_AND_SIM,
    DRAWS_SHARE,
    check_draws_memory,
    engine_draws,
)
from scai.models.hypotheses import PRESETS
from scai.models.simulate import simulate


@pytest.fixture(scope="module")
def table():
    sim = simulate(PRESETS["neutral"], policy="selfish", users=4, rounds=2, epochs=1, sims=50)
    return sim.interactions


def test_the_engines_draws_and_their_defaults():
    assert engine_draws("exact", {}) == (1000, 1000, "num_draws", 1000)
    assert engine_draws("exact", {"num_draws": 7}) == (7, 7, "num_draws", 7)
    # SVI's importance correction draws proposals first: max(2000, 2 * num_draws) by default
    assert engine_draws("svi", {"num_draws": 5000}) == (10_000, 5000, "num_draws", 5000)
    assert engine_draws("svi", {"num_draws": 5000, "correction": None})[0] == 5000
    assert engine_draws("mcmc", {"num_chains": 4}) == (2000, 2000, "samples", 500)


def test_fit_refuses_draws_above_the_limit_before_inferring(table):
    sims, rows = 50, len(table)
    fit_bytes = 100_000 * sims * BYTES_PER_DRAW_AND_SIM
    start = time.perf_counter()
    with pytest.raises(EngineError, match=r"num_draws=100000 .*100,000 draws for 50 simulation"):
        fit(table, "neutral", num_draws=100_000, max_memory=fit_bytes - 1)
    assert time.perf_counter() - start < 5
    # and how many would fit (a review: it said what one draw needs, not how many fit)
    with pytest.raises(EngineError, match=r"each: about 25,000 fit\) or raise the limit"):
        fit(table, "neutral", num_draws=100_000, max_memory=fit_bytes // 4)
    with pytest.raises(EngineError, match=r"each: not even one fits\)"):
        check_draws_memory("exact", {"num_draws": 9}, sims, rows, sims * BYTES_PER_DRAW_AND_SIM - 1)
    # Below the limit it fits; the ArviZ form is counted only where asked (scai fit saves)
    arviz_bytes = fit_bytes + 100_000 * rows * BYTES_PER_DRAW_AND_ROW
    posterior = fit(table, "neutral", num_draws=1000, max_memory=fit_bytes)
    assert posterior.n_draws == 1000
    with pytest.raises(EngineError, match=r"of \d[\d,]* rows in ArviZ's form"):
        fit(table, "neutral", num_draws=100_000, max_memory=arviz_bytes - 1, arviz=True)
    # the rows' term is what refused it: without it, and at its size, the same draws pass
    options = {"num_draws": 100_000}
    assert check_draws_memory("exact", options, sims, rows, arviz_bytes - 1) == fit_bytes
    assert check_draws_memory("exact", options, sims, rows, arviz_bytes, arviz=True) == arviz_bytes


def test_scai_fit_names_draws_and_the_limit(table, tmp_path, capsys):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    code = main(["fit", "--data", str(path), "--out", str(tmp_path / "f"), "--draws", "100000",
                 "--max-memory", "10M"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "samples" not in err, err
    assert "scai fit: error: --draws 100000: " in err and "above the limit of 10.0 MB" in err
    assert not (tmp_path / "f").exists()


def test_to_arviz_refuses_a_form_that_would_not_fit(table, monkeypatch):
    import scai.models.memory as memory

    posterior = fit(table, "neutral", num_draws=200)
    need = 200 * len(table) * BYTES_PER_DRAW_AND_ROW
    monkeypatch.setattr(memory, "available_memory", lambda: int(need / DRAWS_SHARE * 0.9))
    with pytest.raises(EngineError, match=r"to_arviz: 200 draws of \d+ rows .* fewer draws"):
        posterior.to_arviz()
    monkeypatch.setattr(memory, "available_memory", lambda: int(need / DRAWS_SHARE * 1.1))
    assert "posterior" in posterior.to_arviz().groups()
    # a limit given (scai fit --max-memory) is the one that counts, for saving too
    with pytest.raises(EngineError, match=r"above the limit of .*\(the limit given \(max_memory="):
        posterior.to_arviz(max_memory=need - 1)
    assert "posterior" in posterior.to_arviz(max_memory=need).groups()


def test_users_likelihoods_per_draw_count_where_draws_vary_them():
    """With a latent rationality each user's likelihood under each type is kept per draw: at
    10^6 users and 1,000 SVI draws that table outgrew memory at the end of the fit (a
    red-team). It is counted before inference: the same games and limit fit under `neutral`
    and are refused, naming the option, under a latent rationality."""
    t = simulate(PRESETS["neutral"], policy="selfish", users=200, rounds=400, seed=0).interactions
    fit(t, PRESETS["neutral"], engine="exact", max_memory=4_000_000, num_draws=1000)
    noisy = PRESETS["neutral"].with_(rationality_scale=0.5)
    with pytest.raises(EngineError, match="num_draws=1000.*each user's likelihood under each"):
        fit(t, noisy, engine="exact", max_memory=4_000_000, num_draws=1000)


def test_max_memory_help_states_both_limits_from_their_shares(monkeypatch, capsys):
    """The help said the default was 'a quarter of the available memory', but only the table's
    tensors are held to MEMORY_SHARE (25%); the draws (and their posterior.nc form) are held to
    DRAWS_SHARE (80%). It states both, from the constants."""
    monkeypatch.setattr("scai.models.memory.MEMORY_SHARE", 0.3)
    monkeypatch.setattr(sys.modules["scai.inference.fit"], "DRAWS_SHARE", 0.7)  # the module
    assert main(["fit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 30% of the available memory for the tensors, 70% for the draws)" in text
    assert "quarter" not in text


def test_a_layout_padded_by_one_busy_user_counts_its_event_slots():
    """The replicates are drawn per event slot of the layout (simulations x users x events of
    the busiest user): where one user plays most games, the slots far outnumber the rows, and
    the ArviZ form is counted by them (5,000 such rows, their busiest user in 1,265 games,
    passed the rows' count at 1,000 draws and ran out of memory while saving; 25,000 were
    killed at 22 GB). It is refused before inferring, and a posterior's ``to_arviz`` counts
    them too."""
    from scai.inference.fit import BYTES_PER_DRAW_AND_SLOT
    from scai.models.layout import GroupData

    sim = simulate(PRESETS["neutral"], policy="fair", users=60, rounds=480, epochs=5, seed=2)
    busy = sim.interactions.copy()
    busy.loc[busy["responder"] != "u0", "proposer"] = "u0"  # u0 proposes nearly every game
    rows, slots = len(busy), math.prod(GroupData.from_table(busy).shape)
    assert slots * BYTES_PER_DRAW_AND_SLOT > 8 * rows * BYTES_PER_DRAW_AND_ROW
    draws = 100
    by_rows = draws * (BYTES_PER_DRAW_AND_SIM + rows * BYTES_PER_DRAW_AND_ROW)
    with pytest.raises(EngineError, match=r"100 draws of 2,400 rows in ArviZ's form"):
        fit(busy, "neutral", num_draws=draws, max_memory=2 * by_rows, arviz=True)
    posterior = fit(busy, "neutral", num_draws=draws, max_memory=2 * by_rows)
    with pytest.raises(EngineError, match="to_arviz: 100 draws of 2,400 rows"):
        posterior.to_arviz(max_memory=2 * by_rows)


def test_an_exact_fit_whose_scalar_grid_would_pass_the_limit_is_refused_before_it_starts():
    """With a latent scalar the exact engine scores every user of a simulation at every point
    of the scalar's grid; its checks counted the layout and the draws only, and a large
    group's fit took gigabytes unchecked (a review: over 3 GB at 10^5 users with a latent
    rationality). A lower bound of that working memory is counted now: the refusal names the
    grid, and fewer grid points fit (the number it gives)."""
    from scai.inference.exact_budget import GRID_COPIES

    hypothesis = PRESETS["neutral"].with_(rationality_scale=0.5)
    sim = simulate(hypothesis, policy="selfish", users=40, rounds=40, epochs=1, seed=2)
    per_point = 40 * 3 * 8 * GRID_COPIES  # user slots x types x float64 x copies
    limit = 100 * per_point  # half of the default 200 points
    start = time.perf_counter()
    with pytest.raises(EngineError, match=r"first grid of lam \(200 point\(s\) per scalar\).*"
                       r"fewer grid_points \(about 100 fit\)"):  # fmt: skip
        fit(sim.interactions, hypothesis, num_draws=10, max_memory=limit)
    assert time.perf_counter() - start < 5
    posterior = fit(sim.interactions, hypothesis, num_draws=10, max_memory=limit, grid_points=100)
    assert posterior.n_draws == 10
