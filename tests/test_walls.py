"""The MCMC engine's wall coordinates (:mod:`scai.inference.walls`): an exact change of
variables, and a posterior equal to the exact engine's across a wall.

The groups are the issue-14 kind: 16 users, 8 games per epoch, 8 epochs (64 games), simulated
from the hypothesis that is fitted, with a selfish majority whose 0 offers put a wall under the
currency shift (checked: :func:`find_walls` finds it, so the map is not the identity here).

**The map.** Round trip ``phi -> theta -> phi`` to 1e-9; the potential's gradient equal to
central differences (relative 1e-5, the differences' own error at step 1e-6 being ~1e-7 of
gradients of order 1-100); and the potential in ``phi`` minus the density's equal to minus the
log Jacobian of ``theta(phi)`` computed by finite differences (up to a constant: the shared
shift's ``log(tau / sqrt(C))``), at points spread over the posterior (Laplace draws at 2 sd).

**The geometry**: along a wall's coordinate the potential's curvature stays below 10 (main's
map, which turned logarithmic at the knee over ~0.03 sd: 349 on the same data), and two knees
within 1 sd of each other (a 200-user group with its shift at ~0.95) are no wall.

**Agreement** (``latent_lam_shared``: latent rationality ``LogNormal(log 4, 0.5)`` and a shared
shift ``N(0, 0.5)``, i.e. ``pooled_latent_lam`` with the currency deviation pooled completely,
which is what the exact engine can grid: at most two latent scalars. ``pooled`` and
``pooled_latent_lam``, whose shared shift is sampled given the currency's, are held to the
change of variables above). The exact engine's posterior means come from 4,000 draws
resampled from its grid; each MCMC mean must lie within 4 of its Monte Carlo standard errors
(ArviZ, autocorrelation included) plus 4 of the exact draws' (``sd / sqrt(4000)``) plus the
grid's own error, bounded by the default grid's difference from a coarser one (measured here:
the error shrinks as the grid is refined). For a correct sampler a miss has probability below
1e-4 per quantity.

**The mode** the coordinates are built around: on one such group (``latent_lam_shared``,
simulation seed 2) L-BFGS from the prior median stops in a local mode 260 nats above the best
one; :func:`~scai.inference.laplace.find_best_mode` (the median and ``MODE_STARTS`` prior
draws) finds that best one, no mode from 8 other prior draws is lower, the sampler's
coordinates are centred in its basin (on the mode of the density in their own coordinates,
found from it), and on a group where the median's mode is the best it changes nothing
(bitwise).
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import torch

from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.exact import fit_exact
from scai.inference.laplace import find_best_mode, find_mode
from scai.inference.mcmc import _laplace, fit_mcmc, sampler_coordinates
from scai.inference.walls import MIN_GAP, _find_side, find_walls
from scai.models.density import MarginalDensity
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.simulate import simulate

MIX = {"selfish": 0.4, "fair": 0.3, "altruistic": 0.3}
HYPOTHESES = {
    "latent_lam_shared": PRESETS["pooled"].with_(
        name="latent_lam_shared", rationality_scale=0.5, currency_scale=0.0
    ),
    "pooled": PRESETS["pooled"],
    "pooled_latent_lam": PRESETS["pooled"].with_(name="pooled_latent_lam", rationality_scale=0.5),
}
EXACT_DRAWS = 4000


def group(name: str, seed: int = 1) -> GroupData:
    sim = simulate(HYPOTHESES[name], policy=MIX, users=16, rounds=8, epochs=8, seed=seed)
    return GroupData.from_table(sim.interactions)


def test_the_coordinates_are_centred_on_the_best_mode_not_the_first():
    name = "latent_lam_shared"
    density = MarginalDensity(group(name, seed=2), HYPOTHESES[name])
    potential = lambda theta: density.value_and_grad(theta)[0]  # noqa: E731
    first, best = find_mode(density), find_best_mode(density)
    assert potential(first) - potential(best) > 200
    assert potential(find_mode(density, best)) >= potential(best) - 1e-6  # converged
    draws = density.sample_prior(8, torch.Generator().manual_seed(99)).double().numpy()
    others = [find_mode(density, x.reshape(-1)) for x in draws]
    assert all(potential(best) <= potential(m) + 1e-6 for m in others if m is not None)
    mapped, white = sampler_coordinates(density)
    # the centre is the mode of the density in the sampler's coordinates (their Jacobian moves
    # it off the best mode of theta, by ~1e-3 nats here), found from the best mode: in its basin
    centre = mapped.theta(white.mode.reshape(-1))
    assert potential(find_mode(density, centre)) == pytest.approx(potential(best), abs=1e-6)
    # where the median's mode is the best, nothing changes
    density = MarginalDensity(group(name), HYPOTHESES[name])
    np.testing.assert_array_equal(find_best_mode(density), find_mode(density))


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_wall_coordinates_are_an_exact_change_of_variables(name):
    density = MarginalDensity(group(name), HYPOTHESES[name])
    mapped, white = sampler_coordinates(density)
    assert mapped.walls, "no wall found: the map would be the identity"
    assert all(w.kappa_lo * w.scale > 10 for w in mapped.walls)  # steep, below the mode
    rng = np.random.default_rng(0)
    d = density.coords.size
    offsets = []
    for _ in range(5):
        phi = white.theta(2.0 * rng.standard_normal(d))
        theta = mapped.theta(phi)
        np.testing.assert_allclose(mapped.phi(theta), phi, atol=1e-9)
        value, grad = mapped.value_and_grad(phi)
        eye = np.eye(d) * 1e-6
        numeric = np.array(
            [
                (mapped.value_and_grad(phi + e)[0] - mapped.value_and_grad(phi - e)[0]) / 2e-6
                for e in eye
            ]
        )
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5 * np.abs(grad).max())
        jacobian = np.stack(
            [(mapped.theta(phi + e) - mapped.theta(phi - e)) / 2e-6 for e in eye], 1
        )
        log_det = np.linalg.slogdet(jacobian)[1]
        offsets.append(value - density.value_and_grad(theta)[0] + log_det)
    np.testing.assert_allclose(offsets, offsets[0], atol=1e-5)


@pytest.mark.slow
def test_mcmc_agrees_with_exact_across_a_wall():
    name = "latent_lam_shared"
    h, data = HYPOTHESES[name], group(name)
    density = MarginalDensity(data, h)
    assert sampler_coordinates(density)[0].walls
    exact = fit_exact(data, h, num_draws=EXACT_DRAWS, seed=0)
    coarse = fit_exact(
        data, h, num_draws=EXACT_DRAWS, seed=1, max_simplex_points=1500, grid_points=30
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        post = fit_mcmc(data, h, seed=3)
    assert post.diagnostics["divergences"] == 0
    sites = [s for s in ("pi", "lam", "shift_shared", "shift") if s in post.draws]
    mcse = az.mcse(
        az.convert_to_dataset({s: post.draws[s].double().numpy() for s in sites}), method="mean"
    )
    for site in sites:
        got = post.flat_draws(site).double().mean(0).numpy().ravel()
        ref = exact.flat_draws(site).double()
        want = ref.mean(0).numpy().ravel()
        grid = np.abs(want - coarse.flat_draws(site).double().mean(0).numpy().ravel())
        bound = (
            4 * mcse[site].values.ravel() + 4 * ref.std(0).numpy().ravel() / EXACT_DRAWS**0.5 + grid
        )
        print(site, got, want, bound)
        assert np.all(np.abs(got - want) <= bound), (site, got, want, bound)


def test_the_potential_along_a_wall_coordinate_has_bounded_curvature():
    # The map turns at the wall's foot over ~1 sd (not over 1 / (scale * kappa) ~ 0.03 sd, where
    # the old map's log Jacobian put curvature 40-500 here): along the shift's coordinate the
    # potential's curvature stays of order 1, at the mode's rationality and 1 sd either side.
    name = "pooled_latent_lam"
    density = MarginalDensity(group(name), HYPOTHESES[name])
    mapped, white = sampler_coordinates(density)
    (wall,) = mapped.walls
    lam_col = density.columns["lam"].start
    lam_sd = white.cholesky[0, lam_col, lam_col]
    slope = lambda phi: mapped.value_and_grad(phi)[1][wall.column]  # noqa: E731
    curvatures = []
    for offset in (-lam_sd, 0.0, lam_sd):
        for w in np.linspace(-6, 8, 57):
            phi = white.mode[0].copy()
            phi[lam_col] += offset
            phi[wall.column] = w
            step = np.zeros_like(phi)
            step[wall.column] = 1e-4
            curvatures.append((slope(phi + step) - slope(phi - step)) / 2e-4)
    assert max(curvatures) < 10, max(curvatures)


def test_two_knees_within_one_sd_are_no_wall():
    # 200 users whose shift sits at ~0.95 between two walls 0.02 sd apart: the mode's own steep
    # sides, with no bulk beside either, so no map (with it, NUTS diverged hundreds of times).
    # That mode is a local one, 1,380 nats below the best that the mode search finds (shift
    # -0.12, lam 4.8), where MCMC now starts: the walls are looked for at it directly, found
    # from a start beside it (a search of 4 prior draws stopped there, before the search also
    # started from its shifts moved by the types' differences of w, which reach the best).
    h = HYPOTHESES["pooled_latent_lam"]
    sim = simulate(
        h, policy="selfish=0.5,fair=0.3,altruistic=0.2", users=200, rounds=200, epochs=5, seed=2
    )
    density = MarginalDensity(GroupData.from_table(sim.interactions), h)
    beside = find_best_mode(density, starts=0)
    beside[density.columns["lam"]] = 1.0
    beside[density.columns["shift"]] = beside[density.columns["shift_shared"]] = 0.95
    mode = find_mode(density, beside)
    assert mode[density.columns["shift"]][0] == pytest.approx(0.945, abs=0.01)
    sd = np.sqrt(_laplace(density, mode=mode).variance)
    lam = np.exp(mode[density.columns["lam"].start : density.columns["lam"].start + 1])
    assert find_walls(density, mode, sd, lam) == []
    col = density.columns["shift"].start
    below = _find_side(density, mode, col, 1, sd[col])
    above = _find_side(density, mode, col, -1, sd[col])
    assert below is not None and above is not None  # both walls are there
    assert above[0] - below[0] < MIN_GAP * sd[col]


# -- a wall at a fixed shift, whatever the rationality -------------------------------------------
#: Four selfish users, five epochs, ``pooled`` with latent rationality and a learned lapse: they
#: offer 15 of 87, so a responder of their norm accepts while ``lam (pot - o) (delta + o / (pot
#: - o))`` is well above 0, and the shift's lower wall stands at ``delta ~ -15 / 72`` for every
#: ``lam``, not at a fixed ``lam * delta``. An independent grid over (log lam, delta, logit
#: lapse), ``pi`` integrated in closed form, its steps halved until nothing moved at 4 decimals
#: (a review's, 2026-12-07), gave ``E[lam] = 9.407``, sd 2.348; the exact engine 9.39, sd 2.41;
#: MCMC, its anchor at ``knee / lam``, 7.1 (sd 0.5) with 4 chains, target_accept 0.99 and
#: 1,000 warm-up steps alike: the bulk at twice the mode's ``lam`` lay far below the wall in
#: ``phi``, out of the sampler's reach.
FIXED_WALL = PRESETS["pooled"].with_(rationality_scale=0.5, lapse_prior=(1.0, 30.0))


def fixed_wall_table():
    return simulate(FIXED_WALL, policy="selfish", users=4, seed=0, epochs=5).interactions


def test_a_wall_at_a_fixed_shift_is_found_there():
    from scai.inference.fit import prepare

    _, group, _ = prepare(fixed_wall_table(), FIXED_WALL)
    mapped, _ = sampler_coordinates(MarginalDensity(group, FIXED_WALL))
    (wall,) = mapped.walls
    assert wall.base == pytest.approx(-15 / 72, abs=0.01)


def test_mcmc_reaches_the_rationality_beyond_a_wall_at_a_fixed_shift():
    """MCMC's ``E[lam]`` equals the exact engine's within 4 Monte Carlo errors of each (MCMC's
    from ArviZ's ESS; the exact engine's draws are resampled, ``sd / sqrt(draws)``) plus the
    exact grid's own error, bounded by its difference from the independent grid above
    (0.02); its sd too, within a fifth."""
    from scai.inference import fit

    table = fixed_wall_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the exact grid's step and the lapse's grid: told)
        exact = fit(table, FIXED_WALL, engine="exact", seed=0, num_draws=4000)
        mcmc = fit(table, FIXED_WALL, engine="mcmc", seed=0, num_chains=4)
    lam_exact = exact.flat_draws("lam").double()
    draws = mcmc.draws["lam"].double()[..., 0]  # [chains, draws]
    ess = float(az.ess(draws.numpy()))
    error = 4 * draws.std() / ess**0.5 + 4 * lam_exact.std() / len(lam_exact) ** 0.5 + 0.02
    assert abs(float(draws.mean() - lam_exact.mean())) < error, (draws.mean(), lam_exact.mean())
    assert float(draws.std()) == pytest.approx(float(lam_exact.std()), rel=0.2)


def test_a_foot_found_elsewhere_at_the_second_rationality_moves_no_wall():
    """The second foot is sought with the other sites at the mode: under ``pooled`` with latent
    rationality, 200 users, 5 epochs (the benchmark's group), a foot at 0.03 was found again at
    -1.0, a base of -3.9 whose map made NUTS diverge 150 times. A second foot beyond the span
    of the two kinds of wall is not the same wall: the base is 0, as before."""
    hyp = PRESETS["pooled"].with_(rationality_scale=0.5)
    mix = "selfish=0.5,fair=0.3,altruistic=0.2"
    table = simulate(hyp, policy=mix, users=200, rounds=200, epochs=5, seed=1).interactions
    mapped, _ = sampler_coordinates(MarginalDensity(GroupData.from_table(table), hyp))
    assert len(mapped.walls) == 1
    assert mapped.walls[0].base == 0.0
