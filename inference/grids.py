"""Quadrature grids for the exact engine.

* The group mixture ``pi`` lives on a lattice of the simplex: ``pi = (c + 1/K) / (n + 1)`` for
  every composition ``c`` of ``n`` into ``K`` non-negative parts. The points are interior (so a
  Dirichlet density with concentration < 1 stays finite) and evenly spaced, so each carries the
  same volume. Its prior weight is the Dirichlet density averaged over its cell
  (:func:`dirichlet_cell_log_weights`), not the density at the point: with concentration < 1
  the density diverges at the simplex's edges, and the point value alone converges only
  like ``1 / n`` there.
* A scalar with a continuous prior (rationality, a currency shift) gets a grid of ``n`` prior
  quantiles at probabilities ``(i + 1/2) / n``: each point carries prior mass ``1 / n``.
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


def dirichlet_cell_log_weights(points: torch.Tensor, concentration: torch.Tensor) -> torch.Tensor:
    """``[G]`` normalised log prior mass of each cell of a :func:`simplex_lattice`.

    A cell is approximated by the box ``x_k +- h`` (``h`` half the lattice step, clipped at 0),
    over which each factor ``x_k^(a_k - 1)`` of the Dirichlet density is averaged exactly:
    ``((x_k + h)^a_k - max(x_k - h, 0)^a_k) / (a_k * width_k)``. The product of these averages
    replaces the density at the point; it keeps the integrable singularity of a concentration
    below 1 at the edges, which the point value misses.
    """
    K = points.shape[-1]
    if K == 1:
        return torch.zeros(points.shape[0], dtype=points.dtype)
    a = concentration.to(points.dtype)
    h = 0.5 * K * float(points.min())  # the smallest coordinate is (1/K) / (n + 1)
    lo, hi = (points - h).clamp_min(0.0), points + h
    log_avg = torch.log((hi.pow(a) - lo.pow(a)) / (a * (hi - lo)))
    log_w = log_avg.sum(-1)
    return log_w - torch.logsumexp(log_w, 0)


def normal_quantiles(loc: float, scale: float, n: int) -> torch.Tensor:
    """``n`` quantiles of ``Normal(loc, scale)`` at probabilities ``(i + 1/2) / n``."""
    p = (torch.arange(n, dtype=torch.get_default_dtype()) + 0.5) / n
    return loc + scale * math.sqrt(2.0) * torch.erfinv(2 * p - 1)


def lognormal_quantiles(log_loc: float, scale: float, n: int) -> torch.Tensor:
    return normal_quantiles(log_loc, scale, n).exp()
