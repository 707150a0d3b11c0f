"""Comparing an engine's estimates with the exact engine's, element by element."""

from __future__ import annotations

import numpy as np
import torch


def assert_close(name: str, got: torch.Tensor, want: torch.Tensor, tol: float, engine: str):
    """Assert ``max |got - want| <= tol``; the message names the worst element and both values
    (``engine`` labels ``got``; ``want`` is the exact engine's)."""
    diff = (got.double() - want.double()).abs()
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    print(f"{name}: max |difference| {float(diff.max()):.4f} at {worst}")
    assert float(diff.max()) <= tol, (
        f"{name}: max |difference| {float(diff.max()):.4f} > {tol} at {worst} "
        f"({engine} {float(got[worst]):.4f}, exact {float(want[worst]):.4f})"
    )


#: Allowed on top of every bound: below it a difference is not a disagreement. Draws estimate
#: the standard error too, and miss a region of the posterior rarer than 1 / draws: a user
#: certain of its type but in 1e-4 of the mass (the exact engine's lattice sum gives 0.99996,
#: SVI's draws 0.999999, and neither engine's draws vary: se 0). The bounds are 0.003-0.03.
FLOOR = 1e-4


def error_bound(se: torch.Tensor, grid: torch.Tensor, alpha: float = 0.01) -> torch.Tensor:
    """``z se + grid`` element by element (plus :data:`FLOOR`): ``se`` the standard error of
    an engine's Monte Carlo estimate, ``grid`` a bound on the reference's quadrature error, and
    ``z`` the two-sided normal quantile at ``alpha`` Bonferroni-split over the elements with a
    Monte Carlo error (a correct engine exceeds some element's bound with probability below
    ``alpha``)."""
    from statistics import NormalDist

    se, grid = se.double(), grid.double()
    m = max(1, int((se > 0).sum()))
    return NormalDist().inv_cdf(1 - alpha / (2 * m)) * se + grid + FLOOR


def assert_within_error(
    name: str,
    got: torch.Tensor,
    want: torch.Tensor,
    se: torch.Tensor,
    grid: torch.Tensor,
    engine: str,
    alpha: float = 0.01,
):
    """Assert ``|got - want| <=`` :func:`error_bound` element by element (``want``: the exact
    engine's)."""
    bound = error_bound(se, grid, alpha)
    diff = (got.double() - want.double()).abs()
    worst = np.unravel_index(int((diff - bound).argmax()), diff.shape)
    print(
        f"{name}: max |difference| {float(diff.max()):.4f}; bounds {float(bound.min()):.4f}-"
        f"{float(bound.max()):.4f}; the closest to its bound: {float(diff[worst]):.4f} <= "
        f"{float(bound[worst]):.4f}"
    )
    assert bool((diff <= bound).all()), (
        f"{name}: |difference| {float(diff[worst]):.3g} > {float(bound[worst]):.3g} "
        f"(se {float(se[worst]):.4f}, grid {float(grid[worst]):.4f}) at {worst} "
        f"({engine} {float(got[worst]):.4f}, exact {float(want[worst]):.4f})"
    )
