"""The exact engine's simplex lattice zooms onto a posterior of ``pi`` narrower than its step.

The default lattice of three types has step 0.013; with 20,000 users the posterior sd of ``pi``
is ~0.003, and without the zoom the engine's mean was 1.5 sd off and its sd 50% off (measured on
the group below). :func:`scai.inference.grids.simplex.zoom_simplex` moves the lattice onto a
sub-simplex around the posterior, per simulation, only where the posterior spans too few points.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from scai.inference.exact import fit_exact
from scai.inference.grids.simplex import (
    lattice_ess,
    simplex_lattice,
    simplex_zoom_threshold,
    zoom_simplex,
)
from scai.inference.laplace import laplace
from scai.models.density import MarginalDensity
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.layout import GroupData
from scai.models.prior import GroupPrior
from scai.models.simulate import simulate

NORM = "selfish=0.5,fair=0.3,altruistic=0.2"


def lattice_moments(points: torch.Tensor, log_joint: torch.Tensor):
    w = (log_joint - torch.logsumexp(log_joint, 0)).exp()
    mean = w @ points
    return mean, (w @ (points - mean) ** 2).sqrt(), float(torch.logsumexp(log_joint, 0))


@pytest.mark.parametrize("counts", [(10_000, 6_000, 4_000), (500_000, 300_000, 200_000)])
def test_zoomed_lattice_recovers_a_dirichlet_posterior(counts):
    """Users whose types the data decide: ``p(data | pi) = prod_k pi_k^n_k``, so the posterior
    is Dirichlet(a + n) and the evidence ``B(a + n) / B(a)``, in closed form.

    Tolerances: once the posterior spans the threshold's effective number of points its sd is
    about one lattice step or more, where Poisson summation bounds the lattice's error in a
    Gaussian's moments by ``exp(-2 pi^2) ~ 3e-9`` (relative); the cells' box-averaged prior
    errs at second order in ``step / pi_k`` (~1e-7 here). 1e-5 sd, 1e-5 relative and 1e-4 nats
    leave two orders of margin (measured: <5e-8 sd, <1e-9, <4e-6 nats). The default lattice
    fails them (means 0.1-3 sd off)."""
    prior = GroupPrior(PRESETS["neutral"])
    a = torch.tensor(prior.concentration, dtype=torch.float64)
    n = torch.tensor(counts, dtype=torch.float64)
    alpha = a + n
    mean = alpha / alpha.sum()
    sd = (mean * (1 - mean) / (alpha.sum() + 1)).sqrt()
    evidence = float(
        torch.lgamma(alpha).sum()
        - torch.lgamma(alpha.sum())
        - torch.lgamma(a).sum()
        + torch.lgamma(a.sum())
    )

    def log_lik(points):
        return (n * points.log()).sum(-1)[None]  # [T=1, G]

    unit = simplex_lattice(3, 3000).double()
    coarse = log_lik(unit) + prior.pi_cell_log_weights(unit)
    assert float(lattice_ess(coarse)) < simplex_zoom_threshold(3)
    zoom = zoom_simplex(unit, coarse, log_lik, prior)
    assert zoom.zooms >= 1 and float(lattice_ess(zoom.log_joint)) >= simplex_zoom_threshold(3)
    got_mean, got_sd, got_evidence = lattice_moments(zoom.points, zoom.log_joint[0])
    assert ((got_mean - mean) / sd).abs().max() < 1e-5, (got_mean - mean) / sd
    assert (got_sd / sd - 1).abs().max() < 1e-5, got_sd / sd - 1
    assert abs(got_evidence - evidence) < 1e-4, got_evidence - evidence
    coarse_mean, _, _ = lattice_moments(unit, coarse[0])
    assert ((coarse_mean - mean) / sd).abs().max() > 0.1  # what the zoom fixes


@pytest.fixture(scope="module")
def large_and_small():
    """Two simulations in one layout: 20,000 users (4 events each) and 10 users (5 epochs)."""
    hyp = Hypothesis()
    big = simulate(hyp, policy=NORM, users=20_000, rounds=20_000, epochs=2, seed=1).interactions
    small = simulate(hyp, policy=NORM, users=10, rounds=10, epochs=5, seed=2).interactions
    return hyp, big, small.assign(sim="1")


def test_a_large_group_gets_the_laplace_posterior_and_a_small_one_is_untouched(large_and_small):
    """The large group's lattice zooms, the small group's does not; the large group's ``pi``
    agrees with the Laplace approximation of the same density, the small group's results are
    those of its own fit.

    Tolerances (sd = the Laplace sd of each ``pi_k``, ~0.003): the Laplace mean from 100,000
    draws has Monte Carlo error 0.003 sd, and the Laplace approximation itself is off the true
    posterior by about its skewness, ~1/sqrt(4,000 users of the rarest type) = 0.016 sd: 0.1 sd
    for the mean. The exact sd from 20,000 draws has relative error ~1/sqrt(2 x 20,000) = 0.5%,
    Laplace's skewness again ~2%: 5% for the sd (measured: 0.002 sd and 1.2%; without the zoom
    1.5 sd and 58%)."""
    hyp, big, small = large_and_small
    data = GroupData.from_table(pd.concat([big, small], ignore_index=True))
    post = fit_exact(data, hyp, num_draws=20_000, seed=0)
    assert post.diagnostics["simplex_zooms"][0] >= 1
    assert post.diagnostics["simplex_zooms"][1] == 0

    density = MarginalDensity(data.select_sim(0), hyp)
    approx = laplace(density)
    normal = torch.distributions.MultivariateNormal(
        torch.as_tensor(approx.mode), torch.as_tensor(approx.covariance[0])
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        z = normal.sample((100_000,))
    pi = density.constrain(z.to(torch.get_default_dtype()))["pi"][:, 0].double()
    ref_mean, ref_sd = pi.mean(0), pi.std(0)
    mean = post.pi_mean_exact[0].double()
    sd = post.draws["pi"][0, :, 0].double().std(0)
    assert ((mean - ref_mean) / ref_sd).abs().max() < 0.1, (mean - ref_mean) / ref_sd
    assert (sd / ref_sd - 1).abs().max() < 0.05, sd / ref_sd - 1

    alone = fit_exact(GroupData.from_table(small), hyp, num_draws=20_000, seed=0)
    assert "simplex_zooms" not in alone.diagnostics
    torch.testing.assert_close(post.pi_mean_exact[1], alone.pi_mean_exact[0])
    torch.testing.assert_close(post.policy_probs[1, :10], alone.policy_probs[0])
    assert math.isclose(
        post.diagnostics["log_evidence"][1], alone.diagnostics["log_evidence"][0], rel_tol=1e-12
    )
