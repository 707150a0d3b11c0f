"""The exact engine's grid of a latent site in (0, 1): zoomed onto a posterior narrower than its
first, coarse step.

The lapse rate, stereotype strength and clone probability are first gridded 2 logit units
apart (:data:`scai.inference.exact_bounded.BOUNDED_POINTS`). A lapse rate of 0.1 that a
hundred games pin down has a posterior sd of ~0.4 logit units: on the coarse grid its mass
falls on a point or two (0.047 and 0.269), and its mean came out 0.06. The reference here is
the same engine on a fixed grid 30 times as fine (no zoom), whose error is far below the
tolerances.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import scai.inference.exact as exact
import scai.inference.exact_bounded as exact_bounded
import scai.inference.exact_budget as exact_budget
import scai.inference.exact_zoom as exact_zoom
from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.grids.bounded import (
    BOUNDED_ZOOM_POINTS,
    BoundedGrid,
    bounded_resolved,
    zoom_bounded,
)
from scai.inference.grids.resolution import resolution_threshold
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.simulate import simulate

#: Only the lapse rate latent besides pi (Beta(1, 30), as the real-agent presets), true 0.1.
HYPOTHESIS = PRESETS["neutral"].with_(lapse_prior=(1.0, 30.0))
TRUE_LAPSE = 0.1


@pytest.fixture(scope="module")
def data() -> GroupData:
    table = simulate(
        PRESETS["neutral"].with_(lapse=TRUE_LAPSE),
        policy="selfish=0.5,altruistic=0.5",
        users=10,
        rounds=10,
        epochs=12,
        sims=2,
        seed=4,
    ).interactions
    return GroupData.from_table(table)


def lapse_moments(posterior) -> tuple[torch.Tensor, torch.Tensor]:
    draws = posterior.draws["lapse"].double().reshape(-1, posterior.data.shape[0])
    return draws.mean(0), draws.std(0)


@pytest.fixture(scope="module")
def fits(data):
    default = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact_bounded, "MAX_BOUNDED_ZOOMS", 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiagnosticWarning)
            coarse = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
        patch.setattr(
            exact_bounded, "BOUNDED_POINTS", {**exact_bounded.BOUNDED_POINTS, "lapse": 240}
        )
        fine = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
    return default, coarse, fine


def test_a_narrow_lapse_posterior_is_zoomed_onto_and_matches_a_fine_grid(fits):
    """Means within 0.004 and sds within 15% of the fine grid's (the Monte Carlo error of
    20,000 draws of a 0.035 sd is 0.0003 on the mean); the coarse grid misses by more than
    that (what the zoom is for: its draws, placed within their cells by the posterior's shape
    there, come within 0.0045 of the mean but not of the sd, 29% and 40% off), and the
    diagnostics say how far the grid zoomed."""
    default, coarse, fine = fits
    mean, sd = lapse_moments(default)
    fine_mean, fine_sd = lapse_moments(fine)
    coarse_mean, coarse_sd = lapse_moments(coarse)
    assert float((fine_mean - TRUE_LAPSE).abs().max()) < 0.06  # the data pin it near 0.1
    assert float((mean - fine_mean).abs().max()) < 0.004, (mean, fine_mean)
    assert float(((sd - fine_sd) / fine_sd).abs().max()) < 0.15, (sd, fine_sd)
    assert float(((coarse_sd - fine_sd) / fine_sd).abs().max()) > 0.15, (coarse_sd, fine_sd)
    assert default.diagnostics["lapse_grid_zooms"] >= 1
    assert default.diagnostics["lapse_grid_step"] < 2.0
    assert "lapse_grid_zooms" not in coarse.diagnostics
    # pi moves little with the lapse grid, but the zoomed one is the fine one's
    assert float((default.pi_mean() - fine.pi_mean()).abs().max()) < 0.005


def test_zoom_keeps_the_posterior_and_makes_the_step_finer():
    """A Gaussian of sd 0.4 logit units at -2.2 on the coarse grid: unresolved; its zoom
    spans the posterior, keeps no open end, and resolves it."""
    coarse = BoundedGrid(8)
    x = torch.linspace(coarse.lo, coarse.hi, coarse.n, dtype=torch.float64)

    def mass(grid: BoundedGrid) -> torch.Tensor:
        x = torch.linspace(grid.lo, grid.hi, grid.n, dtype=torch.float64)
        return torch.exp(-0.5 * ((x + 2.2) / 0.4) ** 2).unsqueeze(0)  # [S=1, n]

    assert not bool(bounded_resolved(coarse, mass(coarse)).all())
    finer = zoom_bounded(coarse, mass(coarse))
    assert finer is not None and finer.n == BOUNDED_ZOOM_POINTS and finer.zooms == 1
    assert finer.step < coarse.step / 2
    # the cells holding it and one more on each side: far beyond +-3 sd
    assert finer.lo < -2.2 - 3 * 0.4 and finer.hi > -2.2 + 3 * 0.4
    assert finer.open_ends == (False, False)
    while not bool(bounded_resolved(finer, mass(finer)).all()):  # as fit_exact zooms again
        finer = zoom_bounded(finer, mass(finer))
        assert finer is not None and finer.lo < -2.2 - 3 * 0.4 and finer.hi > -2.2 + 3 * 0.4
    assert finer.zooms <= exact_bounded.MAX_BOUNDED_ZOOMS and finer.step <= 0.4
    assert float(x[0]) == -7.0  # (the coarse grid's points: logit -7 to 7)


def test_a_posterior_piled_in_an_open_end_cell_is_resolved_there():
    """A lapse rate the data put below 0.001: (nearly) all its mass in the first cell, which
    reaches 0; no zoom can say more (a resolution check that ignored this zoomed for ever)."""
    grid = BoundedGrid(8)
    piled = torch.tensor([[1.0, 1e-8, 0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    assert bool(bounded_resolved(grid, piled).all())
    closed = BoundedGrid(8, open_ends=(False, True))
    assert not bool(bounded_resolved(closed, piled).all())


def test_a_posterior_spanning_every_cell_is_not_zoomed():
    """Mass in every cell of a zoomed grid: its zoom would be the same grid (None); a grid of
    fewer points over the same range is refined to more."""
    grid = BoundedGrid(BOUNDED_ZOOM_POINTS, -1.0, 1.0, (False, False))
    flat = torch.ones(1, grid.n, dtype=torch.float64)
    assert zoom_bounded(grid, flat) is None
    few = BoundedGrid(4, -1.0, 1.0, (False, False))
    finer = zoom_bounded(few, torch.ones(1, 4, dtype=torch.float64))
    assert finer is not None and finer.step < few.step
    assert resolution_threshold(1) > 3.5


def test_a_site_the_data_say_nothing_about_keeps_its_coarse_grid():
    """Without tones the stereotype's strength changes no likelihood: its posterior is its
    prior, cell for cell, however narrow that prior is on the coarse grid, and a zoom would
    change nothing but the cost (16 points where 12 do)."""
    from scai.inference.exact_bounded import informed

    sim = simulate(
        PRESETS["stereotyped"], policy="selfish=0.5,fair=0.5", users=5, rounds=4, sims=2, seed=5
    )
    data = GroupData.from_table(sim.interactions.assign(proposer_tone="", responder_tone=""))
    posterior = exact.fit_exact(data, PRESETS["real_agents_stereotyped"], num_draws=100)
    assert "strength_grid_zooms" not in posterior.diagnostics
    log_prior = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    assert not bool(informed(log_prior.exp().repeat(2, 1), log_prior).any())
    tilted = log_prior.exp() * torch.tensor([1.0, 1.0, 10.0], dtype=torch.float64)
    assert bool(informed(tilted.unsqueeze(0), log_prior).all())  # the first cell: 1.3 nats


@pytest.mark.parametrize("lapse, epochs", [(0.047, 12), (0.1, 48)])
def test_a_lapse_posterior_within_one_coarse_cell_is_zoomed_too(lapse, epochs):
    """One simulation whose lapse posterior is much narrower than the coarse step: all its
    mass on one or two points of equal likelihood. The check of whether the data inform the
    site compared the posterior with the prior only where the posterior held mass, saw no
    difference there, and left the coarse grid (every draw 0.047, sd 0) without a warning.
    Now it matches a fixed 240-point grid: the mean within 0.002, the sd within 10%."""
    table = simulate(
        PRESETS["neutral"].with_(lapse=lapse),
        policy="selfish=0.5,altruistic=0.5",
        users=10,
        rounds=10,
        epochs=epochs,
        sims=1,
        seed=4,
    ).interactions
    data = GroupData.from_table(table)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticWarning)  # resolved, so nothing to say
        default = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            exact_bounded, "BOUNDED_POINTS", {**exact_bounded.BOUNDED_POINTS, "lapse": 240}
        )
        patch.setattr(exact_bounded, "MAX_BOUNDED_ZOOMS", 0)
        fine = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
    (mean, sd), (fine_mean, fine_sd) = lapse_moments(default), lapse_moments(fine)
    assert default.diagnostics["lapse_grid_zooms"] >= 1
    assert float(fine_sd) > 0.005  # a real spread, which a single grid point cannot show
    assert abs(float(mean - fine_mean)) < 0.002, (mean, fine_mean)
    assert abs(float(sd / fine_sd) - 1) < 0.1, (sd, fine_sd)


def test_a_posterior_in_one_cell_is_informed_where_the_prior_spreads():
    from scai.inference.exact_bounded import informed

    log_prior = torch.log(torch.tensor([0.3, 0.5, 0.2], dtype=torch.float64))
    one_cell = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    assert bool(informed(one_cell, log_prior).all())


def half_selfish_group(truth, users: int, rounds: int, epochs: int) -> GroupData:
    """One simulation of half selfish, half altruistic users under ``truth``."""
    policy = "selfish=0.5,altruistic=0.5"
    sim = simulate(truth, policy=policy, users=users, rounds=rounds, epochs=epochs, seed=1)
    return GroupData.from_table(sim.interactions)


def draws_at_the_points(grid, beta, cell, slope, uniform) -> torch.Tensor:
    """``exact.draw_within_cells`` replaced by each cell's point (draws at grid points)."""
    return torch.sigmoid(torch.linspace(grid.lo, grid.hi, grid.n, dtype=torch.float64)[cell])


def test_a_weakly_informed_site_s_draws_spread_as_a_fine_grid_s():
    """Four users in two games say little about the lapse: its coarse grid (2 logit units a
    step) is not zoomed, and its draws, placed within their cells by the posterior's shape
    there, have the fine grid's mean (within 0.002) and sd (5% off); drawn at the grid points
    themselves their sd is 12% off (the spread between points; 27% on a helper's 8-user
    real-agent group, where MCMC agreed with the fine grid)."""
    data = half_selfish_group(PRESETS["neutral"].with_(lapse=0.03), users=4, rounds=2, epochs=1)
    default = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
    assert "lapse_grid_zooms" not in default.diagnostics
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            exact_bounded, "BOUNDED_POINTS", {**exact_bounded.BOUNDED_POINTS, "lapse": 240}
        )
        fine = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact, "draw_within_cells", draws_at_the_points)
        at_points = exact.fit_exact(data, HYPOTHESIS, num_draws=20_000)
    (mean,), (sd,) = lapse_moments(default)
    (fine_mean,), (fine_sd,) = lapse_moments(fine)
    _, (points_sd,) = lapse_moments(at_points)
    assert abs(float(mean - fine_mean)) < 0.002, (mean, fine_mean)
    error, points_error = abs(float(sd / fine_sd) - 1), abs(float(points_sd / fine_sd) - 1)
    assert error < 0.06 and points_error > max(0.1, 2 * error), (sd, points_sd, fine_sd)


def test_a_posterior_held_by_an_open_end_cell_is_not_drawn_to_its_cut():
    """3,000 games without a lapse pin the lapse below 1e-3: the coarse grid's open end cell
    (logit -7 and below) holds all but 1e-6 of it, which resolves it (no zoom). Its draws are
    placed within that cell with the likelihood's tilt held flat beyond half a step: mean and
    median near a grid reaching logit -16 (2.3e-4 and 1.6e-4 there), where a tilt carried to
    the cell's cut at logit -26 put every draw near 6e-12 (a helper's review)."""
    hypothesis = PRESETS["neutral"].with_(lapse_prior=(1.0, 30.0), rationality=20.0)
    truth = PRESETS["neutral"].with_(lapse=0.0, rationality=20.0)
    data = half_selfish_group(truth, users=10, rounds=100, epochs=30)
    default = exact.fit_exact(data, hypothesis, num_draws=20_000)
    assert "lapse_grid_zooms" not in default.diagnostics  # resolved in the end cell
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact, "draw_within_cells", draws_at_the_points)
        reference = exact.fit_exact(
            data,
            hypothesis,
            num_draws=20_000,
            bounded_grids={"lapse": BoundedGrid(281, -16.0, -2.0)},
        )
    draws = default.draws["lapse"].double().flatten()
    truth = reference.draws["lapse"].double().flatten()
    assert 0.67 < float(draws.mean() / truth.mean()) < 1.5, (draws.mean(), truth.mean())
    assert 0.67 < float(draws.median() / truth.median()) < 1.5, (draws.median(), truth.median())


def test_arviz_log_likelihood_is_scored_at_the_draws(tmp_path):
    """A lapse drawn within its grid cell is not its grid point's value: the file's
    ``log_likelihood`` and ``lp`` were the point's (up to 0.24 nats a user off the stored draw's,
    a helper's review), so a posterior written, read back and written again (which scores the
    draws it reads) changed its ``log_likelihood`` and LOO. Now both score the stored draws;
    its type weights, the grid points (kept in ``sample_stats``), as the posterior saved."""
    from scai.inference import fit
    from scai.inference.posterior import Posterior

    hyp = PRESETS["neutral"].with_(lapse_prior=(2.0, 20.0))
    table = simulate(hyp, policy="selfish=0.6,altruistic=0.4", users=8, epochs=2, sims=2, seed=3)
    post = fit(table.interactions, hyp, engine="exact", seed=5, num_draws=200)
    at_points = post.user_loglik()
    post.save(tmp_path / "p.nc")
    again = Posterior.load(tmp_path / "p.nc")
    assert not torch.allclose(at_points, again.draws_loglik(), atol=1e-3)  # draws left points
    # the loaded posterior scored its users at the draws, where the saved one scores them at
    # the grid points (its type weights up to 0.6% apart, a red-team find): at the points
    torch.testing.assert_close(again.user_loglik(), at_points, rtol=0, atol=0)
    torch.testing.assert_close(again.type_weights(), post.type_weights(), rtol=0, atol=0)
    again.save(tmp_path / "again.nc")  # and so on, save after load
    torch.testing.assert_close(Posterior.load(tmp_path / "again.nc").user_loglik(), at_points)
    torch.testing.assert_close(post.pointwise_loglik(), again.pointwise_loglik())
    torch.testing.assert_close(post.log_joint(), again.log_joint())


def test_a_files_grid_points_that_do_not_fit_are_named(tmp_path):
    """The grid points a file keeps for a lapse drawn within its cells are read back only if
    they fit the draws: NaN, or another shape, is a PosteriorFileError naming them."""
    import h5py

    from scai.inference import fit
    from scai.inference.arviz_schema import PosteriorFileError
    from scai.inference.posterior import Posterior

    hyp = PRESETS["neutral"].with_(lapse_prior=(2.0, 20.0))
    table = simulate(hyp, policy="selfish=0.6,altruistic=0.4", users=8, epochs=2, seed=3)
    fit(table.interactions, hyp, engine="exact", seed=5, num_draws=50).save(tmp_path / "p.nc")
    with h5py.File(tmp_path / "p.nc", "r+") as f:
        f["sample_stats/lapse_grid_point"][0, 3, 0] = float("nan")
    with pytest.raises(PosteriorFileError, match=r"sample_stats.lapse_grid_point .* finite"):
        Posterior.load(tmp_path / "p.nc")


def test_a_loaded_posterior_of_a_learned_strength_keeps_its_dtype(tmp_path):
    """The grid points read back were float64 (the file's), which made a loaded posterior of
    a learned coupling strength score and weigh its users in float64 where the saved one does
    in float32 (a review's find): the default dtype, and the same numbers."""
    from scai.inference import fit
    from scai.inference.posterior import Posterior

    table = simulate(
        "real_agents_stereotyped", policy="selfish=0.6,altruistic=0.4", users=6, seed=2
    )
    post = fit(table.interactions, "real_agents_stereotyped", engine="exact", seed=1, num_draws=50)
    assert "strength_grid_point" in post.sample_stats
    post.save(tmp_path / "p.nc")
    again = Posterior.load(tmp_path / "p.nc")
    assert again.user_loglik().dtype == post.user_loglik().dtype == torch.get_default_dtype()
    torch.testing.assert_close(again.type_weights(), post.type_weights())


def test_a_grid_beyond_the_budget_advises_fewer_simulations_only_where_there_are_several(
    monkeypatch,
):
    """A bounded site that needs a finer grid than the budget allows was told "fit fewer
    simulations at once" even for one simulation (and in a sweep, whose cells fit two at the
    least), where only another engine can check it (a red-team find). The budget is made tiny
    here so that no zoom fits."""
    from scai.inference import fit
    from scai.inference.diagnostics import BoundedGridWarning

    zoom = exact_bounded.zoom_bounded_sites
    monkeypatch.setattr(
        exact,
        "zoom_bounded_sites",
        lambda prior, grids, b, weights, per_point: zoom(prior, grids, b, weights, 10**18),
    )
    told = {}
    for sims in (1, 2):
        table = simulate(
            "real_agents_stereotyped",
            policy="selfish=0.5,altruistic=0.5",
            users=60,
            epochs=2,
            sims=sims,
            seed=0,
        ).interactions
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit(table, "real_agents_stereotyped", engine="exact")
        told[sims] = [str(w.message) for w in caught if w.category is BoundedGridWarning]
    assert told[1] and told[2]
    assert all("fewer simulations" not in m and "engine='mcmc'" in m for m in told[1]), told[1]
    assert all("fit fewer simulations at once" in m and "engine='mcmc'" in m for m in told[2])


def test_a_lapse_its_grid_cannot_zoom_onto_is_warned_of_even_when_loosely_resolved():
    """Latent rationality and currency shifts leave no budget to zoom the lapse's grid: the
    lapse's posterior (4 selfish users, Beta(1, 30) prior) spans ~2 of its 2-logit-unit cells,
    'loosely resolved' by the Gaussian rule, and its mean came out 0.0152 against 0.0187 on a
    24-point grid (MCMC: 0.0180) with no warning (a review's find). Now a BoundedGridWarning
    names the lapse; the finer grid shows the error the warning is about."""
    from scai.inference.diagnostics import BoundedGridWarning
    from scai.inference.fit import fit, prepare

    hypothesis = PRESETS["pooled"].with_(rationality_scale=0.5, lapse_prior=(1.0, 30.0))
    table = simulate(hypothesis, policy="selfish", users=4, epochs=2, seed=1).interactions
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coarse = fit(table, hypothesis, engine="exact", seed=0)
    told = [str(w.message) for w in caught if w.category is BoundedGridWarning]
    assert len(told) == 1 and "posterior of lapse spans too few points" in told[0], told
    checked, group, hyp = prepare(table, hypothesis)
    fine = exact.fit_exact(
        group, hyp, table=checked, bounded_grids={"lapse": BoundedGrid(24)}, max_simplex_points=500
    )
    means = [float(p.draws["lapse"].double().mean()) for p in (coarse, fine)]
    assert abs(means[0] / means[1] - 1) > 0.1, means  # what the warning is about


def test_a_lattice_coarsened_for_the_budget_is_checked_as_one_asked_for(monkeypatch):
    """The bounded sites' grids multiply the lattice of pi, which the engine coarsens to fit
    its memory budget: to 1,330-1,540 points for four types in a review's fits, where the
    same lattice asked for (``max_simplex_points``) warns that pi's mean can be 0.013 off, and
    this one said nothing. It is now checked as the lattice used (the budget made small here:
    1,771 points), and a fit on the lattice asked for is not."""
    from scai.inference.fit import fit

    hypothesis = PRESETS["real_agents"]  # four types, concentration 0.5
    table = simulate(hypothesis, policy="selfish", users=3, epochs=1, seed=0).interactions
    told, default = {}, exact_budget.GRID_BUDGET
    for budget in (default, 96_000):
        for module in (exact_budget, exact_bounded, exact_zoom):  # each that looks it up
            monkeypatch.setattr(module, "GRID_BUDGET", budget)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            posterior = fit(table, hypothesis, engine="exact", seed=0)
        told[budget] = [str(w.message) for w in caught if "simplex lattice" in str(w.message)]
        assert posterior.diagnostics.get("lattice_coarsened_to") == (
            None if budget == default else posterior.diagnostics["grid_size"][1]
        )
    assert told[default] == []
    assert (
        len(told[96_000]) == 1 and "(1771 points for 4 types, coarsened to fit" in (told[96_000][0])
    )
