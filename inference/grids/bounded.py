"""The grid of a latent site in (0, 1) (a lapse rate, a stereotype strength, a clone
probability) on the logit scale: whether it resolves a posterior, its zoom onto it, and draws
placed within a cell by the posterior's shape there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scai.inference.grids.resolution import effective_points, resolution_threshold

#: A bounded site's first grid spans logit -COARSE_LOGIT to COARSE_LOGIT (0.0009 to 0.9991).
COARSE_LOGIT = 7.0


@dataclass(frozen=True)
class BoundedGrid:
    """The exact engine's grid of a latent site in (0, 1) (a lapse rate, a stereotype
    strength, a clone probability): ``n`` points evenly spaced on the logit scale from ``lo``
    to ``hi``, whose end cells reach 0 (or 1) where ``open_ends`` says so
    (:meth:`~scai.models.prior.GroupPrior.bounded_grid` gives its points and prior masses)."""

    n: int
    lo: float = -COARSE_LOGIT
    hi: float = COARSE_LOGIT
    open_ends: tuple[bool, bool] = (True, True)
    zooms: int = 0  # how many times :func:`zoom_bounded` made it

    @property
    def step(self) -> float:
        return (self.hi - self.lo) / max(1, self.n - 1)


#: Points of a bounded site's zoomed grid, over the coarse cells that hold its posterior and
#: one more on each side; each zoom (:func:`zoom_bounded`) narrows that range around the
#: posterior, until its step is under the posterior's sd (:func:`bounded_resolved`).
BOUNDED_ZOOM_POINTS = 16
#: A cell wholly in the last ``BOUNDED_TAIL`` of a simulation's posterior at either end (its
#: mass taken at its point) is not kept by a zoom, but the one next to the kept ones is.
BOUNDED_TAIL = 1e-7
#: A bounded site's grid is not zoomed below this step (logit units): finer cannot matter.
MIN_BOUNDED_STEP = 0.05
#: A posterior with this much of its mass in an open end cell whose point is at logit -7 or
#: beyond (the cell reaches 0, its other edge at most logit -6: 0.0025; the same at 1) is
#: resolved there: its moments are within 0.0025 of the cell's point.
END_CELL_MASS = 1 - 1e-6


def bounded_resolved(grid: BoundedGrid, mass: torch.Tensor, loose: bool = False) -> torch.Tensor:
    """``[S]``: whether ``grid`` resolves each simulation's posterior of its site, ``mass [S,
    n]`` its posterior mass at each point:
    :func:`~scai.inference.grids.resolution.resolution_threshold` effective points (a Gaussian
    posterior's sd at least the step; ``loose``: half the step, where a Gaussian's moments on
    the grid err by ``exp(-2 pi^2 sd^2 / step^2)``, under 1%), or (nearly) all the
    mass in an open end cell whose point is at logit -7 or 7 or beyond, or a step already below
    :data:`MIN_BOUNDED_STEP`."""
    w = mass / mass.sum(-1, keepdim=True)
    fine = effective_points(w) >= resolution_threshold(1) / (2 if loose else 1)
    if grid.step <= MIN_BOUNDED_STEP:
        return torch.ones_like(fine)
    if grid.open_ends[0] and grid.lo <= -COARSE_LOGIT:
        fine |= w[:, 0] >= END_CELL_MASS
    if grid.open_ends[1] and grid.hi >= COARSE_LOGIT:
        fine |= w[:, -1] >= END_CELL_MASS
    return fine


#: Sub-cells over which a draw is placed within its cell of a bounded site's grid
#: (:func:`draw_within_cells`); an open end cell is cut this far (logit units) beyond its
#: inner edge, where a Beta prior with both parameters at least 1 has under e^-20 of its mass.
WITHIN_CELL_POINTS = 64
OPEN_END_LOGIT = 20.0


def draw_within_cells(
    grid: BoundedGrid,
    beta: tuple[float, float],
    cell: torch.Tensor,
    slope: torch.Tensor,
    uniform: torch.Tensor,
) -> torch.Tensor:
    """Values in (0, 1) of a bounded site, each drawn within its cell ``cell`` of ``grid``
    (``grid.n >= 2``) from the posterior's shape there: on the logit scale ``z`` the density
    ``expit(z)^a (1 - expit(z))^b exp(slope z)``, the ``Beta(a, b)`` prior (``beta``) times the
    site's likelihood taken log-linear across the cell (``slope``, per draw: its change
    between neighbouring points; flat beyond half a step from the point, in an open end
    cell). Inverse CDF of ``uniform`` over
    :data:`WITHIN_CELL_POINTS` sub-cells, uniform within the sub-cell found.

    A grid point stands for its cell's posterior mass; a draw at the point itself gives the
    draws the spread between points (a weakly informed lapse's sd 27% too wide on the coarse
    grid, which is zoomed only where the data inform the site)."""
    a, b = beta
    z = torch.linspace(grid.lo, grid.hi, grid.n, dtype=torch.float64)
    half = grid.step / 2
    lo, hi = z[cell] - half, z[cell] + half
    if grid.open_ends[0]:
        lo = torch.where(cell == 0, z[0] + half - OPEN_END_LOGIT, lo)
    if grid.open_ends[1]:
        hi = torch.where(cell == grid.n - 1, z[-1] - half + OPEN_END_LOGIT, hi)
    width = (hi - lo) / WITHIN_CELL_POINTS
    centre = (torch.arange(WITHIN_CELL_POINTS, dtype=torch.float64) + 0.5) / WITHIN_CELL_POINTS
    sub = lo[..., None] + (hi - lo)[..., None] * centre  # [..., M]
    # The likelihood's log-linear tilt reaches half a step from the point: beyond that, in an
    # open end cell, it is held flat (on the logit scale a likelihood flattens as the site goes
    # to 0 or 1: d/dz = x (1 - x) d/dx), not extrapolated 20 logit units to the cut.
    offset = (sub - z[cell][..., None]).clamp(-half, half)
    log_p = (
        a * torch.nn.functional.logsigmoid(sub)
        + b * torch.nn.functional.logsigmoid(-sub)
        + slope[..., None] * offset
    )
    p = torch.softmax(log_p, -1)
    cdf = p.cumsum(-1)
    j = torch.searchsorted(cdf, uniform[..., None].contiguous()).clamp_max(WITHIN_CELL_POINTS - 1)
    p_j = p.gather(-1, j)
    within = ((uniform[..., None] - (cdf.gather(-1, j) - p_j)) / p_j).clamp(0.0, 1.0)
    return torch.sigmoid(lo + (j[..., 0] + within[..., 0]) * width)


def zoom_bounded(grid: BoundedGrid, mass: torch.Tensor) -> BoundedGrid | None:
    """``grid`` zoomed onto the cells that hold each simulation's posterior of its site, all
    but :data:`BOUNDED_TAIL` at either end (the union over the simulations, ``mass [S, n]``),
    and one more cell on each side (a cell's mass is taken at its point: the posterior within
    a dropped cell's half-step would otherwise be cut off), with :data:`BOUNDED_ZOOM_POINTS`
    points; an end cell stays open if it was and is kept. ``None`` if that would not make the
    step finer (the posterior spans every cell)."""
    w = mass / mass.sum(-1, keepdim=True)
    n = grid.n
    left = w.cumsum(-1) < BOUNDED_TAIL  # cells wholly in some simulation's left tail
    right = w.flip(-1).cumsum(-1).flip(-1) < BOUNDED_TAIL
    first = max(0, int((~left).float().argmax(-1).min()) - 1)
    last = min(n - 1, n - 1 - int((~right).flip(-1).float().argmax(-1).min()) + 1)
    x = np.linspace(grid.lo, grid.hi, n)
    half = grid.step / 2
    lo, hi = x[first] - half, x[last] + half  # the kept cells' outer edges
    step = (hi - lo) / BOUNDED_ZOOM_POINTS
    if step >= grid.step * (1 - 1e-9):
        return None
    open_ends = (grid.open_ends[0] and first == 0, grid.open_ends[1] and last == n - 1)
    return BoundedGrid(BOUNDED_ZOOM_POINTS, lo + step / 2, hi - step / 2, open_ends, grid.zooms + 1)
