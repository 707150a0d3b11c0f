"""Quadrature grids for the exact engine.

The group mixture ``pi`` lives on a lattice of the simplex: ``pi = (c + 1/K) / (n + 1)`` for
every composition ``c`` of ``n`` into ``K`` non-negative parts. The points are interior (so a
Dirichlet density with concentration < 1 stays finite) and evenly spaced, so each carries the
same volume. Its prior weight is the Dirichlet density averaged over its cell
(:meth:`scai.models.prior.GroupPrior.pi_cell_log_weights`), not the density at the point.
"""

from __future__ import annotations

import itertools
import math

import torch


def simplex_lattice(K: int, max_points: int = 3000) -> torch.Tensor:
    """``[G, K]`` interior lattice points of the simplex, the finest with at most
    ``max_points`` points."""
    if K == 1:
        return torch.ones(1, 1)
    n = 1
    while math.comb(n + 1 + K - 1, K - 1) <= max_points:
        n += 1
    points = [c for c in itertools.product(range(n + 1), repeat=K - 1) if sum(c) <= n]
    counts = torch.tensor([[*c, n - sum(c)] for c in points], dtype=torch.get_default_dtype())
    return (counts + 1.0 / K) / (n + 1)
