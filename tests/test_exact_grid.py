"""The exact engine's scalar grid: refining it must not lose a mode.

The engine grids a latent scalar coarsely, then zooms on the modes of each simulation
(:func:`scai.inference.grids.windows.zoom_modes`); only the zoomed windows are kept, so a mode
left without a window is dropped from the posterior altogether.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from sbc_util import prior_replications

from scai.inference.exact import fit_exact
from scai.inference.grids.windows import zoom_modes
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData


def covered(grid: torch.Tensor, x: float) -> bool:
    return bool(((grid[:, 0] - x).abs() < 1e-2).any())


def test_a_ragged_main_mode_does_not_crowd_out_a_second_mode():
    """A main mode whose top is ragged (rounding makes many local maxima on a fine grid) and
    a second, separate mode 5 nats lower: both get a window."""
    u = torch.linspace(-3.0, 3.0, 6001, dtype=torch.float64)
    main = -0.5 * ((u - 0.3) / 0.2) ** 2
    main = main + 1e-3 * torch.sin(u * 4000)  # ~hundreds of spurious peaks on the main mode
    second = -5.0 - 0.5 * ((u + 2.5) / 0.05) ** 2
    marginal = torch.logaddexp(main, second).unsqueeze(-1)  # [T, S=1]
    prior = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    grid, log_w, _ = zoom_modes(u, marginal, float(u[1] - u[0]), 32, prior)
    assert covered(grid, 0.3) and covered(grid, -2.5)
    assert grid.shape[0] == log_w.shape[0]


@pytest.fixture(scope="module")
def replication():
    """One small replication of the SVI calibration test (``essential_goods_shared``, seed 303,
    simulation 49) whose currency shift has a second mode near -1.5 with ~1% of the mass."""
    hyp = PRESETS["essential_goods_shared"]
    reps = prior_replications(hyp, n=50, users=6, rounds=6, epochs=2, seed=303, pot_range=(2, 8))
    return hyp, reps.table[reps.table.sim == "49"]


DRAWS = 200_000  # drawn from the grid's posterior: cheap beside the fine grid itself


def shift_posterior(replication, seed, grid_points=None, zoom_points=None):
    hyp, table = replication
    post = fit_exact(
        GroupData.from_table(table),
        hyp,
        table=table,
        num_draws=DRAWS,
        seed=seed,
        grid_points=grid_points,
        zoom_points=zoom_points,
    )
    shift = post.draws["shift"].reshape(-1).numpy()
    return float((shift < -1.0).mean()), float(post.diagnostics["log_evidence"][0])


def test_a_minor_mode_of_the_currency_shift_survives_a_finer_grid(replication):
    """A 100x finer grid agrees with the default on the minor mode's mass and on the log
    evidence. Before the fix the fine grid dropped the mode (its ranking of peaks let the
    main mode's rounding peaks take every slot)."""
    minor, evidence = shift_posterior(replication, seed=2)
    fine_minor, fine_evidence = shift_posterior(replication, 3, 20000, 4000)
    assert minor > 0.01  # the mode is there to lose (1.7% measured)
    # two independent binomial estimates (other seeds) of DRAWS draws each: 5 sd of their
    # difference is ~0.002, an eighth of the mass (0.017 and 0.0175 measured)
    tolerance = 5 * math.sqrt(2 * minor * (1 - minor) / DRAWS)
    assert abs(fine_minor - minor) < tolerance, (minor, fine_minor)
    assert abs(fine_evidence - evidence) < 1e-3, (evidence, fine_evidence)


def test_a_sharp_mode_ranked_below_broad_ones_on_the_coarse_grid_is_kept():
    """Ten selfish users on dollars under `pooled` (seed 7): the shift's true mode is sharper
    than the coarse step, so its coarse point ranks below three broad peaks that hold little
    mass once refined. Every candidate gets a window, and the posterior of pi equals a 30x
    finer grid's (when the engine refined only the three best peaks, pi's mean was 0.85 off).
    The difference is the grids' quadrature (1e-5 measured), not Monte Carlo: the means are
    exact sums over the grid."""
    from scai.models.simulate import simulate

    hyp = PRESETS["pooled"]
    sim = simulate(hyp, policy="selfish", users=10, rounds=8, sims=1, currency="dollars", seed=7)
    data = GroupData.from_table(sim.interactions)
    default = fit_exact(data, hyp, seed=0).pi_mean_exact
    fine = fit_exact(data, hyp, seed=0, grid_points=6000, zoom_points=64).pi_mean_exact
    assert float(fine[0, 0]) > 0.8  # selfish: the mode to keep
    assert float((default - fine).abs().max()) < 0.01, (default, fine)


LAM_AND_SHIFT = PRESETS["pooled"].with_(name="pooled_latent_lam", rationality_scale=0.5)


@pytest.mark.parametrize(("seed", "scale"), [(2, 2.0), (2, 1.0), (4, 1.0), (4, 2.0)])
def test_sharp_modes_of_a_shared_shift_between_the_coarse_points_are_found(seed, scale):
    """Selfish users with a latent shared shift: they act as selfish users unshifted and as
    altruists shifted by -2 (``w`` 0 and 2), two modes ~0.001 wide at a coarse step of 0.06-0.12.
    The coarse grid fell near one or neither; the default fit reported the altruists' mode
    alone (pi of selfish 0.09 where finer grids give 0.54, the evidence 1-9 nats low). With the
    prior's location and the peaks moved by the types' differences scored, the default grid
    gives the fine grids' posterior of pi and evidence."""
    from scai.models.hypotheses import Hypothesis
    from scai.models.simulate import simulate

    games = dict(users=4, rounds=4, epochs=2, seed=seed)
    data = GroupData.from_table(simulate(Hypothesis(), policy="selfish", **games).interactions)
    hypothesis = Hypothesis(shared_scale=scale)
    fitted = fit_exact(data, hypothesis, num_draws=10)
    fine = fit_exact(data, hypothesis, num_draws=10, grid_points=4000, zoom_points=128)
    torch.testing.assert_close(fitted.pi_mean(), fine.pi_mean(), rtol=0, atol=2e-3)
    evidence = fitted.diagnostics["log_evidence"][0] - fine.diagnostics["log_evidence"][0]
    assert abs(evidence) < 0.1, evidence


@pytest.mark.parametrize(
    "policy, seed, selfish",
    [
        # a sharp selfish mode whose coarse points rank below broad altruistic ones: one box
        # over every point within 30 nats (24 x 24 points, coarser than the coarse grid) put
        # pi on the altruistic mode, 0.85 off
        ("selfish", 2, (0.85, 1.0)),
        # two modes (selfish with the shift at +0.9, altruistic at -1.2; NUTS, started at one
        # mode, stays there: 0.89 selfish), the altruistic one a ridge narrow in the shift and
        # wide in lam: many points but under one step across, judged resolved by its
        # effective points alone (0.62, 0.025 off)
        ("selfish", 11, (0.5, 0.8)),
        # one box, smooth-looking on its points, whose mass moves to thin ridges at high
        # rationality as the step halves (0.387 on the box judged by its points, 0.01 off)
        ("selfish=0.5,fair=0.3,altruistic=0.2", 9, (0.3, 0.5)),
    ],
)
def test_two_latent_scalars_keep_every_mode_at_its_mass(policy, seed, selfish):
    """Rationality and the shift both latent (`pooled` with ``rationality_scale=0.5``), ten
    users: the default grid's posterior mean of pi equals a 3x finer grid's (whose own
    quadrature error, against a 5x finer one, is under 1e-3) within 0.01."""
    from scai.models.simulate import simulate

    sim = simulate(
        LAM_AND_SHIFT, policy=policy, users=10, rounds=8, sims=1, currency="dollars", seed=seed
    )
    data = GroupData.from_table(sim.interactions)
    default = fit_exact(data, LAM_AND_SHIFT, seed=0).pi_mean_exact
    fine = fit_exact(data, LAM_AND_SHIFT, seed=0, grid_points=120, zoom_points=48).pi_mean_exact
    assert selfish[0] < float(fine[0, 0]) < selfish[1]
    assert float((default - fine).abs().max()) < 0.01, (default, fine)


def test_two_latent_scalars_fit_each_simulation_on_its_own_boxes():
    """With two latent scalars the simulations are fitted one at a time: two simulations
    fitted together have each one's posterior mean, evidence and type probabilities of that
    simulation fitted alone, and draws of the right shape that differ between them."""
    from scai.models.simulate import simulate

    sim = simulate(
        LAM_AND_SHIFT, policy="selfish", users=6, rounds=6, sims=2, currency="dollars", seed=5
    )
    data = GroupData.from_table(sim.interactions)
    both = fit_exact(data, LAM_AND_SHIFT, seed=3, num_draws=200)
    assert both.draws["pi"].shape == (1, 200, 2, 3)
    assert both.draws["lam"].shape == (1, 200, 2)
    assert not torch.equal(both.draws["lam"][0, :, 0], both.draws["lam"][0, :, 1])
    assert both.user_loglik().shape[:2] == (200, 2)
    for s in range(2):
        alone = fit_exact(data.select_sim(s), LAM_AND_SHIFT, seed=0, num_draws=200)
        assert torch.equal(both.pi_mean_exact[s], alone.pi_mean_exact[0])
        assert torch.equal(both.policy_probs[s], alone.policy_probs[0])
        assert both.diagnostics["log_evidence"][s] == alone.diagnostics["log_evidence"][0]
    again = fit_exact(data, LAM_AND_SHIFT, seed=3, num_draws=200)
    assert torch.equal(both.draws["shift"], again.draws["shift"])  # one seed, one answer


def test_a_simulation_without_events_keeps_its_prior_beside_the_others():
    """Fitted one at a time, a simulation with nothing scored has no evidence: its posterior is
    the prior (pi's mean 1/3 each; lam's mean that of LogNormal(log 4, 0.5), within 4
    Monte Carlo standard errors of 4,000 grid draws), and the other is fitted as alone."""
    import dataclasses

    from scai.models.simulate import simulate

    sim = simulate(
        LAM_AND_SHIFT, policy="selfish", users=4, rounds=4, sims=2, currency="dollars", seed=5
    )
    data = GroupData.from_table(sim.interactions)
    kept = data.event_mask.clone()
    kept[1] = False
    empty = dataclasses.replace(
        data,
        event_mask=kept,
        tone_mask=data.tone_mask & kept,
        is_proposer=data.is_proposer & kept,
        is_responder=data.is_responder & kept,
    )
    post = fit_exact(empty, LAM_AND_SHIFT, seed=0, num_draws=4000)
    assert torch.allclose(post.pi_mean_exact[1], torch.full((3,), 1 / 3), atol=1e-4)
    alone = fit_exact(data.select_sim(0), LAM_AND_SHIFT, seed=0, num_draws=10)
    assert torch.equal(post.pi_mean_exact[0], alone.pi_mean_exact[0])
    lam = post.draws["lam"][0, :, 1].double()
    prior_mean = 4 * math.exp(0.5**2 / 2)
    prior_sd = prior_mean * math.sqrt(math.exp(0.5**2) - 1)
    assert abs(float(lam.mean()) - prior_mean) < 4 * prior_sd / math.sqrt(4000), float(lam.mean())


def test_a_box_with_its_mass_on_too_few_points_is_zoomed_again():
    """unresolved_boxes flags a box whose mass sits on one point, and one whose mass lies on
    a ridge one step wide (many points, enough effective points, but under a step across),
    not a box where a Gaussian spans several steps each way; zoom_boxes halves the flagged
    box's step and keeps the other box as it is."""
    from scai.inference.grids.boxes import Box, unresolved_boxes, zoom_boxes

    wide = Box((0.0, 0.0), (1.0, 1.0), (21, 21))
    x = wide.points()
    gaussian = -0.5 * (((x - 0.5) / 0.2) ** 2).sum(-1)
    spike = torch.full((wide.size,), -1e3, dtype=torch.float64)
    spike[wide.size // 2] = 0.0
    ridge = -0.5 * ((x[:, 1] - x[:, 0]) / 0.01) ** 2
    for marginal, flagged in [(gaussian, False), (spike, True), (ridge, True)]:
        assert unresolved_boxes([wide], marginal[:, None]) == [flagged]
    far = Box((5.0, 5.0), (6.0, 6.0), (21, 21))
    marginal = torch.cat([spike, gaussian - 3.0])[:, None]
    zoomed = zoom_boxes([wide, far], marginal, 8, which=[True, False])
    assert far in zoomed and len(zoomed) == 2
    (new,) = [b for b in zoomed if b != far]
    assert all(h <= 0.05 / 2 + 1e-12 for h in new.step)  # at least half the old step
    assert new.lo[0] <= 0.5 <= new.hi[0] and new.lo[1] <= 0.5 <= new.hi[1]


def test_a_shift_narrower_than_the_zoomed_grid_is_zoomed_again():
    """200 users of a mixed group in one currency pin the `pooled` shift to ~1e-4 (it scales
    payoffs of whole pots), below the first zoom's step (~2e-3): the engine zooms again until
    the posterior spans several points, and then agrees with NUTS on the same data (before,
    every draw sat on one grid point: sd 1e-10, mean 5 NUTS sds off)."""
    from scai.inference.mcmc import fit_mcmc
    from scai.models.simulate import simulate

    hyp = PRESETS["pooled"]
    sim = simulate(  # users without a currency shift
        PRESETS["neutral"],
        policy="selfish=0.5,fair=0.3,altruistic=0.2",
        users=200,
        rounds=200,
        epochs=5,
        sims=1,
        seed=1,
    )
    data = GroupData.from_table(sim.interactions)
    exact = fit_exact(data, hyp, num_draws=4000, seed=0)
    nuts = fit_mcmc(data, hyp, seed=0)
    assert exact.diagnostics.get("scalar_zooms", 0) >= 1
    x = exact.draws["shift"].reshape(-1).double()
    y = nuts.draws["shift"].reshape(-1).double()
    ess = next(v for k, v in nuts.diagnostics["ess_bulk"].items() if k.startswith("shift["))
    # The means: within 4 Monte Carlo standard errors of NUTS's (its ESS) and of the exact
    # draws' (4,000 independent draws); the sds within 15% (the sd of an sd estimate from
    # ESS ~800 draws is ~2.5%, plus the grid's step, half a posterior sd at most).
    mcse = math.sqrt(float(y.var()) / ess + float(x.var()) / 4000)
    assert abs(float(x.mean() - y.mean())) < 4 * mcse, (float(x.mean()), float(y.mean()), mcse)
    assert 0.85 < float(x.std() / y.std()) < 1.15, (float(x.std()), float(y.std()))


def test_a_patch_integrates_a_thin_diagonal_ridge_and_covers_its_own_cells():
    """A Gaussian ridge (correlation 0.999, conditional sd 1/22 of the marginal one), gridded
    by a :class:`Patch` at its Laplace covariance: its points and cell volume integrate the
    density to 1; its cells cover its points and end half a step beyond +-PATCH_SDS."""
    from scai.inference.grids.patches import PATCH_SDS, Patch

    mode = torch.tensor([1.5, -0.002], dtype=torch.float64)
    sd = torch.tensor([0.1, 0.004], dtype=torch.float64)
    corr = torch.tensor([[1.0, 0.999], [0.999, 1.0]], dtype=torch.float64)
    covariance = corr * sd[:, None] * sd[None, :]
    patch = Patch(mode, torch.linalg.cholesky(covariance), 24)
    u = patch.points()
    density = torch.distributions.MultivariateNormal(mode, covariance).log_prob(u).exp()
    assert abs(float(density.sum() * math.exp(patch.log_cell())) - 1) < 1e-3
    assert bool(patch.covers(u).all())
    axis = patch.chol[:, 0]  # one whitened unit along the first axis
    assert bool(patch.covers(mode + (PATCH_SDS + 0.4 * patch.step) * axis[None]).all())
    assert not bool(patch.covers(mode + (PATCH_SDS + 0.6 * patch.step) * axis[None]).any())


def test_needs_patch_when_no_box_resolves_the_mode_across_its_ridge():
    """The ridge above (conditional sd 0.0045 along lam, 0.00018 across the shift): a box
    holding the mode at steps of 0.025 and 0.001 does not resolve it, nor a box beside the
    mode; one stepping 0.001 and 0.00005 does."""
    from scai.inference.grids.boxes import Box
    from scai.inference.grids.patches import Patch, needs_patch

    mode = torch.tensor([1.5, -0.002], dtype=torch.float64)
    sd = torch.tensor([0.1, 0.004], dtype=torch.float64)
    corr = torch.tensor([[1.0, 0.999], [0.999, 1.0]], dtype=torch.float64)
    covariance = corr * sd[:, None] * sd[None, :]
    coarse = Box((1.0, -0.012), (2.0, 0.012), (41, 25))  # steps 0.025 and 0.001
    fine = Box((1.4, -0.003), (1.6, -0.001), (201, 41))  # steps 0.001 and 0.00005
    beside = Box((1.0, 0.0), (2.0, 0.01), (41, 41))
    patch = Patch(mode, torch.linalg.cholesky(covariance), 24)
    assert needs_patch([coarse], patch)
    assert needs_patch([beside], patch)
    assert not needs_patch([beside, fine], patch)


def test_where_a_patch_overlaps_a_box_the_finer_grid_keeps_the_region():
    """A patch (a cell of 0.9 x 0.9) beside two boxes: within the finer box (steps 0.01) the
    patch's points are dropped and the box's kept; within the coarser one (steps 2) the box's
    points are dropped and the patch's kept; no region keeps both."""
    from scai.inference.grids.boxes import Box, box_grid
    from scai.inference.grids.patches import Patch, patch_among_boxes

    patch = Patch(torch.zeros(2, dtype=torch.float64), 0.6 * torch.eye(2, dtype=torch.float64), 9)
    fine = Box((-4.0, -0.2), (-3.0, 0.2), (101, 41))
    coarse = Box((1.0, -4.0), (7.0, 4.0), (4, 5))
    prior = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 10.0)

    class Flat:  # box_grid's prior: its log density is not what is tested here
        log_prob = staticmethod(lambda u: prior.log_prob(u).sum(-1))

    u, _ = box_grid([fine, coarse], Flat)
    keep_box, keep_patch = patch_among_boxes([fine, coarse], u, patch)
    points = patch.points()
    assert bool(keep_box[: fine.size].all())  # the finer box keeps every point
    assert not bool(fine.covers(points[keep_patch]).any())
    assert bool(fine.covers(points[~keep_patch]).all()) and bool((~keep_patch).any())
    coarse_u = u[fine.size :]
    assert not bool(patch.covers(coarse_u[keep_box[fine.size :]]).any())
    assert bool((~keep_box[fine.size :]).any())
    assert bool(coarse.covers(points[keep_patch]).any())  # the patch keeps that region


def test_a_box_with_the_smaller_cell_that_steps_across_the_ridge_yields_to_the_patch():
    """A patch on a thin ridge (conditional sd 0.0136 across the shift, Laplace sd 0.47 along
    lam: a long cell) inside a box stepping 0.019 in both: the box's cell is the smaller, but
    it steps across the ridge at 1.4 of its width (:func:`needs_patch` would patch it): the
    patch keeps the region. The same box at a step of 0.01 resolves it and keeps it."""
    from scai.inference.grids.boxes import Box, box_grid
    from scai.inference.grids.patches import Patch, needs_patch, patch_among_boxes

    mode = torch.tensor([1.41, -0.1817], dtype=torch.float64)
    chol = torch.tensor([[0.4733, 0.0], [-0.00434, 0.01363]], dtype=torch.float64)
    patch = Patch(mode, chol, 24)

    class Flat:  # box_grid's prior: its log density is not what is tested here
        log_prob = staticmethod(lambda u: torch.zeros(len(u), dtype=u.dtype))

    coarse = Box((-1.6, -0.23), (4.16, 1.23), (301, 77))  # steps 0.0192 and 0.0192
    assert coarse.log_cell() < patch.log_cell()
    assert needs_patch([coarse], patch)
    u, _ = box_grid([coarse], Flat)
    keep_box, keep_patch = patch_among_boxes([coarse], u, patch)
    assert bool(keep_patch.all())
    assert not bool(patch.covers(u[keep_box]).any()) and bool((~keep_box).any())
    fine = Box((-1.6, -0.23), (4.16, 1.23), (577, 147))  # steps 0.01 and 0.01
    u, _ = box_grid([fine], Flat)
    keep_box, keep_patch = patch_among_boxes([fine], u, patch)
    assert bool(keep_box.all())
    assert not bool(fine.covers(patch.points()[keep_patch]).any())


def test_a_patch_is_not_dropped_for_a_box_that_does_not_resolve_the_mode():
    """``pooled`` with latent rationality, three selfish users, two games each: the best mode
    is a ridge 0.0136 wide across the shift, and the box holding it steps 0.019 (patched),
    but its cell is smaller than the patch's, and the patch was kept only outside it: the
    default grid's log evidence was 0.41 nats below a 3x finer grid's (-14.22 against
    -13.81) and E[log lam] 0.23 lower (1.26 against 1.49). With the patch over the ridge the
    two grids agree."""
    import warnings

    from scai.models.simulate import simulate

    hyp = PRESETS["pooled"].with_(name="pooled_latent_lam", rationality_scale=0.5)
    table = simulate(hyp, policy="selfish", users=3, rounds=2, seed=0).interactions
    data = GroupData.from_table(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = fit_exact(data, hyp, seed=0, num_draws=4000)
        fine = fit_exact(data, hyp, seed=0, num_draws=4000, grid_points=120, zoom_points=48)
    assert default.diagnostics.get("mode_patch") == 1
    gap = default.diagnostics["log_evidence"][0] - fine.diagnostics["log_evidence"][0]
    assert abs(gap) < 0.05, gap
    log_lam = [float(p.draws["lam"].double().log().mean()) for p in (default, fine)]
    assert abs(log_lam[0] - log_lam[1]) < 0.05, log_lam


def test_a_resolved_two_scalar_fit_is_left_as_the_boxes_give_it(monkeypatch):
    """Two currencies' shifts latent (``pooled``), one group playing both: the mode search's
    best mode sits on a ridge near a wall, where its Laplace sd (0.42) is twice the
    posterior's (0.21), and a box resolves it at 0.6 conditional sd a step. The fit is the
    boxes' alone, bit for bit (a patch over that ridge, on the Laplace scale, moved the
    shifts' mean by 0.025 and lost 0.08 nats of evidence)."""
    import warnings

    from scai.inference import exact_zoom
    from scai.models.simulate import simulate

    hyp = PRESETS["pooled"]
    table = simulate(
        hyp, policy="selfish=0.6,altruistic=0.4", users=8, rounds=6, sims=1,
        currency="dollars", seed=3,
    ).interactions  # fmt: skip
    table.loc[table.index % 2 == 0, "currency"] = "medicine"
    data = GroupData.from_table(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit_exact(data, hyp, seed=0, num_draws=200)
        monkeypatch.setattr(exact_zoom, "_mode_patch", lambda *args: None)
        boxes_alone = fit_exact(data, hyp, seed=0, num_draws=200)
    assert "mode_patch" not in fitted.diagnostics
    assert torch.equal(fitted.draws["shift"], boxes_alone.draws["shift"])
    assert fitted.diagnostics["log_evidence"] == boxes_alone.diagnostics["log_evidence"]


def test_a_patch_far_from_its_laplace_approximation_is_refined_until_it_converges(
    monkeypatch,
):
    """Latent rationality and shared shift (``essential_goods_shared``, ``rationality_scale``
    0.5), eight users half selfish, half fair (a review's group): the mode the search finds
    sits by a cliff, where the posterior is far from its Laplace approximation. A 24-point
    patch gave log evidence -28.19 and ``E[log lam]`` 1.31 (the boxes alone: -29.97, 0.61);
    halving its step until its mass and mean stop moving gives, within 0.02, what one uniform
    300 x 300 grid over the whole posterior gives (-27.98, 1.387: 800 x 800 over a wider
    region agrees to 3e-4)."""
    import warnings

    from scai.inference import exact_zoom
    from scai.inference.grids.boxes import Box, box_grid
    from scai.models.simulate import simulate

    hyp = PRESETS["essential_goods_shared"].with_(name="egs_lam", rationality_scale=0.5)
    table = simulate(hyp, policy="selfish=0.5,fair=0.5", users=8, rounds=6, seed=2).interactions
    data = GroupData.from_table(table)

    def summary(post):
        log_lam = post.draws["lam"].double().log()
        return post.diagnostics["log_evidence"][0], float(log_lam.mean())

    def one_uniform_box(boxes, marginal, pi_mean, locate, prior, points, budget_per_point):
        box = Box((-0.6, -1.1), (3.1, 1.1), (300, 300))
        u, log_w = box_grid([box], prior)
        parts = [locate(u[i : i + 20000], log_w[i : i + 20000]) for i in range(0, len(u), 20000)]
        marginal = torch.cat([part[0] for part in parts])
        return [box], 0, True, marginal, torch.cat([part[2] for part in parts])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit_exact(data, hyp, seed=0, num_draws=4000)
        monkeypatch.setattr(exact_zoom, "_zoom_boxes_until_resolved", one_uniform_box)
        monkeypatch.setattr(exact_zoom, "_mode_patch", lambda *args: None)
        reference = fit_exact(data, hyp, seed=0, num_draws=4000)
    assert fitted.diagnostics["mode_patch_points"] > exact_zoom.PATCH_POINTS
    (evidence, mean), (evidence_ref, mean_ref) = summary(fitted), summary(reference)
    assert abs(evidence - evidence_ref) < 0.02, (evidence, evidence_ref)
    assert abs(mean - mean_ref) < 0.02, (mean, mean_ref)


def test_a_sharp_mode_between_the_coarse_points_is_found_by_the_mode_search(tmp_path):
    """A review's group (``benchmarks/known_disagreements.py``, case 5, simulation 2): latent
    rationality and shared shift with a learned lapse and stereotype strength, ten rude users
    80% selfish. The shared shift's posterior is a ridge far thinner than the coarse grid's
    step; the boxes grown from the coarse points settled on another mode (``lam`` 2.05, sd
    0.11, 13.5 nats of evidence below; MCMC: 4.59, sd 0.59). The best mode a gradient search
    finds is gridded along its own axes (``diagnostics["mode_patch"]``): the posterior of
    ``log lam`` and of the shared shift is centred on that mode, within one posterior sd."""
    import importlib.util
    import warnings
    from pathlib import Path

    from scai.inference.laplace import find_best_mode
    from scai.models.density import MarginalDensity
    from scai.models.hypotheses import get_hypothesis
    from scai.models.simulate import simulate

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "known_disagreements.py"
    spec = importlib.util.spec_from_file_location("known_disagreements", script)
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    path = tmp_path / "lapse_and_two_scalars.toml"
    path.write_text(cases.LAPSE_AND_TWO_SCALARS)
    hyp = get_hypothesis(path)
    rude = simulate(
        "neutral", policy="selfish=0.8,altruistic=0.2", manner="rude", users=10, epochs=5,
        sims=3, seed=1,
    ).interactions  # fmt: skip
    data = GroupData.from_table(rude[rude["sim"] == "2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the boxes' zoom does not converge here (warned)
        post = fit_exact(data, hyp, seed=0)
    assert post.diagnostics.get("mode_patch") == 1
    density = MarginalDensity(data, hyp)
    mode = find_best_mode(density)
    for site, draws in (("lam", post.draws["lam"].double().log()),
                        ("shift_shared", post.draws["shift_shared"].double())):  # fmt: skip
        at = float(mode[density.columns[site]][0])
        assert abs(float(draws.mean()) - at) < float(draws.std()), (site, at, draws.mean())


def test_a_ridge_through_the_mode_thinner_than_the_box_step_is_gridded_along_its_length():
    """Two currencies' shifts latent (``essential_goods_shared``), eight users half selfish,
    half fair, four games in dollars (unshifted) and four in medicine (shifted by 1; a review's
    group): the dollars' shift is pinned to 0 within ~0.005, the medicine's spread over
    0.5-1, a ridge across the box's dollars step of 0.053. The mode search's best mode sits on
    it at (0, 0) with a Laplace sd of 0.002 both ways; its patch held 1% of the mass and the
    fit reported the region off the ridge (``E[shift]`` 0.77 and 0.81, log evidence -42.8,
    2.4% of the mass by dollars 0) where finer grids give the ridge ~90% (SVI's importance
    draws: 88%). A strip along the ridge at the patch's step across it
    (``diagnostics["mode_strip_points"]``) gives what a finer grid gives."""
    import warnings

    from scai.models.simulate import simulate

    table = simulate(
        PRESETS["neutral"].with_(essential_shift=1.0), policy="selfish=0.5,fair=0.5",
        users=8, seed=1,
    ).interactions.copy()  # fmt: skip
    table.loc[table["round"] % 2 == 0, "currency"] = "medicine"
    data = GroupData.from_table(table)
    hyp = PRESETS["essential_goods_shared"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = fit_exact(data, hyp, seed=0, num_draws=4000)
        fine = fit_exact(data, hyp, seed=0, num_draws=4000, grid_points=160, zoom_points=48)
    assert default.diagnostics["mode_strip_points"] > 0
    assert data.currencies == ("dollars", "medicine")
    dollars = [p.draws["shift"].double()[0, :, 0, 0] for p in (default, fine)]
    on_ridge = [float((d.abs() < 0.05).double().mean()) for d in dollars]
    assert min(on_ridge) > 0.8, on_ridge  # 4,000 draws: a Monte Carlo sd of ~0.005
    assert abs(float(dollars[0].mean() - dollars[1].mean())) < 0.03
    gap = default.diagnostics["log_evidence"][0] - fine.diagnostics["log_evidence"][0]
    assert abs(gap) < 0.1, gap


def test_a_fit_of_several_simulations_counts_the_ones_patched():
    """Two simulations, each fitted on a grid of its own: the group above (patched when fitted
    alone) and one of ten altruistic users (not patched). ``diagnostics["mode_patch"]``
    counts the simulations patched (it was left out of a fit of several: no sign of the
    patch at all)."""
    import warnings

    import pandas as pd

    from scai.models.simulate import simulate

    hyp = PRESETS["pooled"].with_(name="pooled_latent_lam", rationality_scale=0.5)
    patched = simulate(hyp, policy="selfish", users=3, rounds=2, seed=0).interactions
    other = simulate(hyp, policy="altruistic", users=10, rounds=8, seed=0).interactions
    data = GroupData.from_table(pd.concat([patched, other.assign(sim="1")], ignore_index=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [fit_exact(data.select_sim(s), hyp, seed=0, num_draws=100) for s in (0, 1)]
        both = fit_exact(data, hyp, seed=0, num_draws=100)
    assert [p.diagnostics.get("mode_patch", 0) for p in alone] == [1, 0]
    assert both.diagnostics.get("mode_patch") == 1


def test_refined_cells_partition_the_same_intervals():
    """refine_cells splits only the cells around the chosen simulation's mass, into cells that
    span exactly the same interval: the total width (and so a flat density's integral) is
    unchanged, the other simulation's cells far from it are kept as they were."""
    from scai.inference.grids.windows import refine_cells

    prior = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    u, log_w, step = zoom_modes(
        torch.linspace(-1, 1, 41, dtype=torch.float64),
        torch.zeros(41, 2).double(),
        0.05,
        32,
        prior,
    )
    u = u[:, 0]
    # simulation 0 has all its mass in cell 10, simulation 1 is broad
    marginal = torch.full((len(u), 2), -50.0, dtype=torch.float64)
    marginal[10, 0] = 0.0
    marginal[:, 1] = -0.5 * u**2
    grid, log_w2, width = refine_cells(u, step, marginal, torch.tensor([True, False]), 32, prior)
    assert torch.isclose(width.sum(), step.sum(), rtol=1e-12)
    assert len(grid) == len(u) - 3 + 32  # cells 9-11 became 32
    lo, hi = float(u[9] - step[9] / 2), float(u[11] + step[11] / 2)
    inside = (grid[:, 0] > lo) & (grid[:, 0] < hi)
    assert int(inside.sum()) == 32
    torch.testing.assert_close(grid[~inside, 0], torch.cat([u[:9], u[12:]]))
    torch.testing.assert_close(log_w2, prior.log_prob(grid[:, 0]) + width.log())


def test_a_currency_played_only_in_another_simulation_takes_no_grid_dimension():
    """Ten selfish users' games in dollars (a sharp mode: shift -0.49, sd ~0.006) fitted under
    ``pooled`` beside a group that plays in medicine. Each simulation is fitted alone, but its
    grid had a dimension for every currency of the table: a 40 x 40 grid whose step (~0.15)
    missed the sharp mode, and the fit landed on pi 0.48 / 0.05 / 0.46 with no warning (MCMC
    and SVI: 0.89 selfish). Now the group's fit is its fit alone, and its medicine shift, which
    no data touch, is drawn from the prior given its shared shift."""
    import pandas as pd

    from scai.inference import fit
    from scai.models.prior import GroupPrior
    from scai.models.simulate import simulate

    pooled = PRESETS["pooled"]

    def group(policy: str, seed: int, name: str, pots, currency: str) -> pd.DataFrame:
        table = simulate(
            pooled, policy=policy, users=10, rounds=8, epochs=1, seed=seed, pot_range=pots,
            currency=currency, assign="exact",
        ).interactions  # fmt: skip
        return table.assign(sim=name)

    beside = group("selfish=0.5,altruistic=0.3,fair=0.2", 25, "a", (2, 10), "medicine")
    alone = group("selfish", 26, "b", (10, 100), "dollars")
    together = fit(pd.concat([beside, alone], ignore_index=True), pooled, engine="exact", seed=3)
    solo = fit(alone, pooled, engine="exact", seed=3)
    torch.testing.assert_close(together.pi_mean_exact[1], solo.pi_mean_exact[0], rtol=0, atol=0)
    assert together.pi_mean_exact[1, 0] > 0.85  # selfish, as MCMC and SVI say
    currencies = together.data.currencies
    dollars, medicine = currencies.index("dollars"), currencies.index("medicine")
    shift = together.draws["shift"][..., 1, :].double()
    assert float(shift[..., dollars].mean()) == pytest.approx(-0.489, abs=0.01)
    prior = GroupPrior(pooled)
    mu = prior.essential_shift * float(together.data.essential[medicine])
    residual = shift[..., medicine] - together.draws["shift_shared"][..., 1].double() - mu
    n, tau = residual.numel(), prior.currency_scale
    assert abs(float(residual.mean())) < 4 * tau / math.sqrt(n)  # 4 standard errors
    assert float(residual.std()) == pytest.approx(tau, rel=4 / math.sqrt(2 * n))


def test_the_latent_scalars_are_counted_per_simulation_on_the_currencies_it_plays():
    """Latent rationality and per-currency shifts: two currencies in the table are fine when
    each simulation plays one (two scalars each); a simulation playing both has three, and
    the refusal names it."""
    import pandas as pd

    from scai.inference.errors import EngineError
    from scai.inference.grids.latent import check_exact
    from scai.models.simulate import simulate

    hyp = PRESETS["pooled"].with_(rationality_scale=0.3)
    parts = [
        simulate(hyp, policy="fair", users=4, rounds=4, epochs=1, seed=s, currency=c).interactions
        for s, c in ((1, "apples"), (2, "dollars"))
    ]
    one_each = pd.concat([parts[0].assign(sim="a"), parts[1].assign(sim="b")], ignore_index=True)
    check_exact(hyp, GroupData.from_table(one_each))
    both = pd.concat(
        [parts[0].assign(sim="a"), parts[1].assign(sim="a", round=lambda t: t["round"] + 4)]
    )
    with pytest.raises(EngineError, match=r"has 3 \(lam, shift\[apples\], shift\[dollars\]\)"):
        check_exact(hyp, GroupData.from_table(both.reset_index(drop=True)))
    # seven simulations over the budget beside one within it: the refusal counts them and
    # names the first five, not only the busiest
    many = pd.concat(
        [both.assign(sim=f"s{i}") for i in range(7)] + [parts[0].assign(sim="ok")],
        ignore_index=True,
    )
    with pytest.raises(EngineError) as refused:
        check_exact(hyp, GroupData.from_table(many))
    message = str(refused.value)
    assert "7 of 8 simulations have more than 2 (" in message
    named = re.findall(r"'(s\d)'", message)  # the busiest, then the first five
    assert named == ["s0", "s0", "s1", "s2", "s3", "s4"] and "and 2 more" in message
    assert "'ok'" not in message


def test_a_simulation_with_no_game_draws_its_shifts_from_the_prior():
    """A simulation listed with no event (``GroupData`` built with its users) beside two that
    play different currencies, under ``pooled``: it is fitted (it raised UnboundLocalError
    once its currencies were cut to none) and its shifts are the prior's, sd sqrt(s0^2 +
    tau^2) around 0 (4 standard errors)."""
    from dataclasses import replace

    import pandas as pd

    from scai.models.prior import GroupPrior
    from scai.models.simulate import simulate

    pooled = PRESETS["pooled"]
    table = pd.concat(
        [
            simulate(
                pooled, policy="fair", users=4, rounds=3, epochs=1, seed=s, currency=c
            ).interactions.assign(sim=name)
            for s, c, name in ((1, "medicine", "a"), (2, "dollars", "b"), (3, "apples", "c"))
        ],
        ignore_index=True,
    )
    data = GroupData.from_table(table)
    mask = data.event_mask.clone()
    mask[2] = False
    post = fit_exact(replace(data, event_mask=mask), pooled, seed=1)
    shift = post.draws["shift"][..., 2, :].double().flatten(0, 1)  # [draws, 3]
    prior = GroupPrior(pooled)
    sd = math.sqrt(prior.shared_scale**2 + prior.currency_scale**2)
    n = shift.shape[0]
    assert (shift.mean(0).abs() < 4 * sd / math.sqrt(n)).all()
    torch.testing.assert_close(
        shift.std(0), torch.full((3,), sd, dtype=torch.float64), rtol=4 / math.sqrt(2 * n), atol=0
    )


def test_the_scalar_cells_are_kept_only_when_every_simulation_grids_the_same_scalar():
    """Per-currency shifts, one currency per simulation: each simulation's one latent scalar is
    its own currency's shift, so the cells (read by calibration checks as one scalar's) are
    left out; with latent rationality alone they are kept and named."""
    import pandas as pd

    from scai.models.simulate import simulate

    tables = [
        simulate(
            PRESETS["pooled"], policy="fair", users=4, rounds=3, epochs=1, seed=s, currency=c
        ).interactions.assign(sim=name)
        for s, c, name in ((1, "apples", "a"), (2, "dollars", "b"))
    ]
    data = GroupData.from_table(pd.concat(tables, ignore_index=True))
    assert fit_exact(data, PRESETS["pooled"], seed=1).engine_state is None
    lam = PRESETS["neutral"].with_(rationality_scale=0.3)
    state = fit_exact(data, lam, seed=1).engine_state
    assert state["scalar"] == "lam" and len(state["scalar_cells"]) == 2


def test_a_posterior_at_the_edge_of_the_scalar_grid_is_warned_of():
    """One user offering a tenth of a 1,000 pot three times puts lam near 0.08 (SVI, MCMC and
    a profile of the density agree), but the exact grid stops 6 prior sd from the prior's
    centre, at 0.2: the engine's lam sat there with no word (a red-team). It now warns."""
    import warnings

    import pandas as pd

    from scai.inference import fit
    from scai.inference.diagnostics import DiagnosticWarning

    row = dict(sim=0, epoch=0, proposer="u0", responder="assistant", currency="dollars")
    row |= dict(pot=1000, offer=100, accepted=1, proposer_tone="", responder_tone="")
    table = pd.DataFrame([{**row, "round": r} for r in range(3)])
    noisy = PRESETS["neutral"].with_(rationality_scale=0.5)
    edge = "lam peaks at the edge of its grid.*pi, the users. types: all of it may be off"
    with pytest.warns(DiagnosticWarning, match=edge):
        fit(table, noisy, engine="exact", seed=0, num_draws=100)
    table["pot"], table["offer"] = 10, 1  # the same share of a small pot: inside the grid
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticWarning)
        fit(table, noisy, engine="exact", seed=0, num_draws=100)


def test_a_sharp_mode_the_zoomed_grid_misses_is_warned_of():
    """``pooled`` on selfish users with pots of 900-1000: the shift's posterior holds most of
    its mass in a mode ~1e-4 wide at 0, which the coarse pass scored (a translated peak) and
    the zoomed grid's points fell beside; the fit gave pi[selfish] 0.60 where a grid of 4,001
    points gives 0.82, without a word (a red-team find). Now it warns; pots of 10-100 (the
    experiments') do not."""
    import warnings

    import pandas as pd

    from scai.inference import fit
    from scai.inference.diagnostics import DiagnosticWarning
    from scai.models.hypotheses import Hypothesis
    from scai.models.simulate import simulate

    def table(pots):
        sim = simulate(Hypothesis(), policy="selfish", users=4, rounds=4, epochs=2, seed=2,
                       pot_range=pots)  # fmt: skip
        return sim.interactions

    with pytest.warns(DiagnosticWarning, match=r"misses a sharp mode of 1 of 1 simulation"):
        missed = fit(table((900, 1000)), PRESETS["pooled"], engine="exact")
    assert missed.diagnostics["lost_peak_nats"][0] > 5
    finer = fit(table((900, 1000)), PRESETS["pooled"], engine="exact", grid_points=4001)
    assert float((missed.pi_mean() - finer.pi_mean()).abs().max()) > 0.1  # what it warns of
    assert "lost_peak_nats" not in finer.diagnostics
    # three simulations (each fitted alone): one warning, told once; each one's gap kept
    three = pd.concat([table((900, 1000)).assign(sim=str(s)) for s in range(3)])
    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        post = fit(three, PRESETS["pooled"], engine="exact")
    told = [str(w.message) for w in heard if "misses a sharp mode" in str(w.message)]
    assert len(told) == 1 and "of 3 of 3 simulation(s) (e.g. '0')" in told[0], told
    assert len(post.diagnostics["lost_peak_nats"]) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticWarning)
        fit(table((10, 100)), PRESETS["pooled"], engine="exact")
