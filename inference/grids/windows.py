"""The grid of one latent scalar: windows around every mode of the coarse marginal
(:func:`zoom_modes`), then finer cells where the simulations' mass lies (:func:`refine_cells`)."""

from __future__ import annotations

import math

import torch

from scai.models.prior import ScalarGaussian

#: How far below a simulation's best coarse point (nats) a peak of the coarse marginal is still
#: a candidate mode (:func:`mode_candidates`).
MODE_MARGIN = 200.0


def mode_candidates(marginal: torch.Tensor, margin: float = MODE_MARGIN) -> torch.Tensor:
    """``[T]``: whether each point of a coarse grid (in order along one scalar) is a local
    maximum of some simulation's marginal ``[T, S]`` within ``margin`` nats of its best."""
    best = marginal.max(0).values
    is_peak = torch.ones_like(marginal, dtype=torch.bool)
    is_peak[1:] &= marginal[1:] >= marginal[:-1]
    is_peak[:-1] &= marginal[:-1] >= marginal[1:]
    return (is_peak & (marginal > best - margin)).any(-1)


def zoom_modes(
    u: torch.Tensor,
    marginal: torch.Tensor,
    spacing: float | torch.Tensor,
    points: int,
    prior: ScalarGaussian,
    margin: float = MODE_MARGIN,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fine grid around the modes of the coarse marginal ``[T, S]``: for each simulation,
    every mode within ``margin`` nats of its best. A mode is a local maximum with the
    contiguous coarse points around it within 30 nats of a simulation's best (local maxima in
    the same run are one mode); its window spans that run plus one spacing either side, at
    >= ``points`` points and 4x the coarse resolution (windows that overlap are merged).

    The likelihood can have several sharp modes (an altruist in a currency shifted by -2
    behaves like a selfish user in an unshifted one) narrower than the coarse spacing: whichever
    mode's coarse point happens to fall nearer its peak would win, so every candidate is
    refined and the prior decides between them. A sharp mode's coarse point can sit tens of
    nats below broad ones that hold little mass once refined (a group of ten users with the
    shift latent: the true mode's coarse point fourth of four, 15 nats below the best), so no
    candidate within the margin is left out by rank. ``spacing`` is the grid's step, one number
    or one per point of ``u`` (a grid this function made: its windows' steps differ). Returns
    points ``[T', 1]``, log weights (log prior density + log cell width) and each point's step
    ``[T']``, so that a posterior narrower than the new step can be zoomed again.
    """
    step_at = torch.as_tensor(spacing, dtype=torch.float64).expand(u.shape[0])
    best = marginal.max(0).values
    candidate = mode_candidates(marginal, margin)  # [T]: a peak of some simulation
    # Each window covers its mode's contiguous run of coarse points within 30 nats of some
    # simulation's best (the bulk of a wide posterior), and at least one spacing either side;
    # the peaks inside one run (on a fine coarse grid rounding makes several) share it.
    near = (marginal > best - 30).any(-1).tolist()
    first, last = list(range(len(near))), list(range(len(near)))  # each point's run
    for i in range(1, len(near)):
        if near[i] and near[i - 1]:
            first[i] = first[i - 1]
    for i in range(len(near) - 2, -1, -1):
        if near[i] and near[i + 1]:
            last[i] = last[i + 1]
    runs = list(dict.fromkeys((first[c], last[c]) for c in candidate.nonzero().flatten().tolist()))
    windows = []
    for first_i, last_i in runs:
        step = float(step_at[first_i : last_i + 1].min())
        a = float(u[first_i]) - float(step_at[first_i])
        b = float(u[last_i]) + float(step_at[last_i])
        windows.append((a, b, step))
    windows.sort()
    merged: list[list[float]] = []
    for a, b, step in windows:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2] = min(merged[-1][2], step)
        else:
            merged.append([a, b, step])
    grids, log_w, steps = [], [], []
    for a, b, step in merged:
        n = max(points, int(4 * (b - a) / step))  # at least 4x the coarse resolution
        grid = torch.linspace(a, b, n, dtype=torch.float64).unsqueeze(-1)
        grids.append(grid)
        log_w.append(prior.log_prob(grid) + math.log((b - a) / (n - 1)))
        steps.append(torch.full((n,), (b - a) / (n - 1), dtype=torch.float64))
    return torch.cat(grids), torch.cat(log_w), torch.cat(steps)


#: How far below a simulation's best cell (nats) :func:`refine_cells` still splits cells.
REFINE_WITHIN = 12.0


def refine_cells(
    u: torch.Tensor,
    step: torch.Tensor,
    marginal: torch.Tensor,
    which: torch.Tensor,
    points: int,
    prior: ScalarGaussian,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split the cells that hold the mass of the simulations ``which [S]`` into finer ones.

    ``u [T]`` are the centres of cells of widths ``step [T]`` (a grid of :func:`zoom_modes`
    or of this function) and ``marginal [T, S]`` the simulations' log mass on them. Each run of
    adjacent cells within :data:`REFINE_WITHIN` nats of one of those simulations' best (cells
    further down hold under 1e-5 of its mass each), with one cell either side (the mass can
    reach into the next cell), becomes ``points`` cells of equal width, or 4 per old cell if
    that is more, spanning exactly the same interval; every other cell is kept as it is, so
    the other simulations' quadrature is untouched where they have mass and no cell overlaps
    another. Returns points
    ``[T', 1]``, log weights (log prior density + log cell width) and the widths ``[T']``."""
    chosen = marginal[:, which]
    near = (chosen > chosen.max(0).values - REFINE_WITHIN).any(-1)
    grow = near.clone()
    grow[1:] |= near[:-1]
    grow[:-1] |= near[1:]
    # neighbours whose cells touch (not two windows with a gap between them)
    touch = ((u.diff() - (step[1:] + step[:-1]) / 2).abs() <= 1e-6 * step[1:]).tolist()
    grow = grow.tolist()
    centres, widths = [], []
    i = 0
    while i < len(grow):
        if not grow[i]:
            centres.append(u[i : i + 1])
            widths.append(step[i : i + 1])
            i += 1
            continue
        j = i
        while j + 1 < len(grow) and grow[j + 1] and touch[j]:
            j += 1
        a, b = u[i] - step[i] / 2, u[j] + step[j] / 2
        n = max(points, 4 * (j - i + 1))  # and at least 4x finer than the cells it splits
        h = (b - a) / n
        centres.append(a + h * (torch.arange(n, dtype=torch.float64) + 0.5))
        widths.append(h.expand(n))
        i = j + 1
    grid = torch.cat(centres).unsqueeze(-1)
    width = torch.cat(widths)
    return grid, prior.log_prob(grid).reshape(-1) + width.log(), width
