"""The exact engine's per-user type probabilities with clones cover the whole posterior.

With clones ``P(z_u = k | data)`` is a sum over every grid point ``(t, g)`` of a function worked
out point by point (users are coupled through the prototype). The engine once summed only the
2,000 heaviest points, renormalised: on a real-agent group whose posterior spreads over millions
of points (three bounded sites times the lattice) that was 24% of the posterior, and the users'
probabilities were off by up to 0.06 from the same posterior's draws. Now the heaviest points are
summed exactly and the rest by a systematic sample of it; here, on a posterior spread so thin
that the heaviest points hold under a third of it, the result is the sum over all points to
within a few standard errors the engine reports (and far outside them heaviest-only)."""

from __future__ import annotations

import torch

from scai.inference.exact_kernels import clone_policy_probs
from scai.inference.grids.simplex import simplex_lattice

T, U, K = 40, 6, 3


def spread_posterior(seed: int = 0):
    """A posterior over ``T`` clone probabilities x a ``K = 3`` lattice, two simulations."""
    gen = torch.Generator().manual_seed(seed)
    pi_grid = simplex_lattice(K, 600).double()
    G = pi_grid.shape[0]
    clone = torch.linspace(0.02, 0.98, T, dtype=torch.float64)
    loglik = -3 * torch.rand(T, 2, U, K, generator=gen, dtype=torch.float64)
    loglik += torch.linspace(0, 5, T, dtype=torch.float64)[:, None, None, None] * torch.tensor(
        [1.0, 0.0, -1.0], dtype=torch.float64
    )  # the types' likelihoods move with the clone probability: f varies over the grid
    mask = torch.ones(2, U, dtype=torch.float64)
    mask[1, -2:] = 0  # the second simulation has fewer users
    log_w = (pi_grid.log() @ torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64))[None, None, :]
    log_w = log_w + 0.05 * torch.randn(T, 2, G, generator=gen, dtype=torch.float64)
    weights = torch.softmax(log_w.reshape(-1, 2, 1).transpose(0, 1).reshape(2, -1), -1)
    weights = weights.reshape(2, T, G).transpose(0, 1)  # [T, S, G], each simulation sums to 1
    return weights, loglik, mask, pi_grid, clone


def test_the_sampled_rest_makes_the_sum_over_every_point():
    weights, loglik, mask, pi_grid, clone = spread_posterior()
    every = T * pi_grid.shape[0]
    truth, covered_all, se_all = clone_policy_probs(
        weights, loglik, mask, pi_grid, clone, max_points=every
    )
    assert covered_all > 1 - 1e-5 and se_all == 0.0
    got, covered, se = clone_policy_probs(weights, loglik, mask, pi_grid, clone)
    assert covered < 0.3  # the heaviest 2,000 points hold under a third: the rest is sampled
    assert 0 < se < 2e-3
    error = float((got - truth)[mask > 0].abs().max())
    assert error < 4 * se, (error, se)
    heaviest, _, _ = clone_policy_probs(weights, loglik, mask, pi_grid, clone, tail_points=0)
    assert float((heaviest - truth)[mask > 0].abs().max()) > 5 * se  # what it would miss
    assert torch.allclose(got.sum(-1)[mask > 0], torch.ones(()).double())
