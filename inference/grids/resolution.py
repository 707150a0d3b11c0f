"""How many grid points a posterior sits on, and how many a grid must give it: the
exact engine's test of whether a grid resolves a posterior (every grid in this package uses it)."""

from __future__ import annotations

import math

import torch


def resolution_threshold(dims: int) -> float:
    """The effective number of points (:func:`effective_points`) of a posterior on a regular
    grid in ``dims`` dimensions below which the grid is too coarse for it: ``(2 sqrt(pi))^dims``,
    what a Gaussian posterior whose sd equals the step in every direction has (``1 / sum w^2
    ~ (4 pi)^(dims/2) sqrt(det Sigma) / step^dims``). Why there: see
    :func:`~scai.inference.grids.simplex.simplex_zoom_threshold`."""
    return (2 * math.sqrt(math.pi)) ** dims


def effective_points(mass: torch.Tensor) -> torch.Tensor:
    """``[...]``: the effective number of lattice points ``1 / sum_g w_g^2`` of the masses
    ``[..., G]`` (``w`` the masses normalised over ``G``)."""
    total = mass.sum(-1)
    return total * total / torch.linalg.vecdot(mass, mass)  # no [..., G] temporary
