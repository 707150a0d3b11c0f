"""The exact engine's grids of the latent sites in (0, 1): lapse, stereotype strength, clone
probability.

Each is first gridded coarsely (:data:`BOUNDED_POINTS` points, 2 logit units apart; every
combination of the sites' points: :func:`bounded_points`); a site the data inform
(:func:`informed`) whose posterior the grid does not resolve is zoomed onto it
(:func:`zoom_bounded_sites`), and :func:`check_groups_fit` tells before any work whether
groups that share one such grid fit the budget.
"""

from __future__ import annotations

import math
import warnings

import torch

from scai.inference.diagnostics import BoundedGridWarning
from scai.inference.errors import EngineError
from scai.inference.exact_budget import GRID_BUDGET, MIN_SIMPLEX_POINTS, coarsest_fits
from scai.inference.grids.bounded import BoundedGrid, bounded_resolved, zoom_bounded
from scai.inference.grids.simplex import simplex_lattice
from scai.models.errors import outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.prior import GroupPrior

#: Points per latent bounded site (lapse, stereotype strength, clone probability) on its
#: first, coarse grid (logit -7 to 7).
BOUNDED_POINTS = {"lapse": 8, "strength": 12, "clone": 6}
#: Zooms of a bounded site's grid (each onto its posterior, :func:`zoom_bounded`).
MAX_BOUNDED_ZOOMS = 3


def first_grids(
    prior: GroupPrior, grids: dict[str, BoundedGrid] | None = None
) -> dict[str, BoundedGrid]:
    """Each latent bounded site's grid: ``grids[site]`` where given, else its first, coarse
    one (:data:`BOUNDED_POINTS` points over logit -7 to 7)."""
    site_grids = {site: BoundedGrid(BOUNDED_POINTS[site]) for site in prior.beta}
    site_grids.update(grids or {})
    return site_grids


def bounded_points(
    prior: GroupPrior, median: bool = False, grids: dict[str, BoundedGrid] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([B, n] points, [B] log prior masses)``: every combination of the latent bounded
    sites' grids (:meth:`GroupPrior.bounded_grid`; ``grids[site]``, by default
    :data:`BOUNDED_POINTS` points over logit -7 to 7), or their medians; a single empty row
    when none is latent."""
    grids = grids or {}
    grids = [
        site_grid(prior, site, BoundedGrid(1))  # one point: the prior's median
        if median
        else site_grid(prior, site, grids.get(site, BoundedGrid(BOUNDED_POINTS[site])))
        for site in prior.beta
    ]
    if not grids:
        return torch.zeros(1, 0, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    points = torch.cartesian_prod(*[g[0] for g in grids]).reshape(-1, len(grids))
    log_mass = torch.cartesian_prod(*[g[1] for g in grids]).reshape(-1, len(grids)).sum(-1)
    return points, log_mass


def site_grid(prior: GroupPrior, site: str, grid: BoundedGrid) -> tuple[torch.Tensor, ...]:
    return prior.bounded_grid(site, grid.n, grid.lo, grid.hi, grid.open_ends)


def site_grid_diagnostics(grids: dict[str, BoundedGrid]) -> dict[str, float]:
    """The zooms of each site whose grid zoomed, ``"<site>_grid_zooms"``, and its step
    (logit units), ``"<site>_grid_step"``."""
    diagnostics: dict[str, float] = {}
    for site, grid in grids.items():
        if grid.zooms:
            diagnostics[f"{site}_grid_zooms"] = grid.zooms
            diagnostics[f"{site}_grid_step"] = float(grid.step)
    return diagnostics


#: A site's data are informative where its posterior over the grid's cells departs from its
#: prior (both normalised) by more than this many nats in a cell where either holds mass.
INFORMED_NATS = 1.0


def informed(mass: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """``[S]``: whether each simulation's posterior masses ``mass [S, n]`` of a bounded site
    differ from its prior masses ``log_prior [n]`` (both normalised over the grid) by more
    than :data:`INFORMED_NATS` in some cell where either holds over ``1e-6``. A posterior that
    is the prior (a stereotype's strength where no tone is heard) keeps the coarse grid: its
    cells' masses are the prior's own, and a finer grid would change no other site's
    posterior. (A posterior in one cell, where the prior spreads over several, departs from
    it by tens of nats in the others: informed.)"""
    w = mass / mass.sum(-1, keepdim=True)
    p = (log_prior - torch.logsumexp(log_prior, -1)).exp()
    held = (w > 1e-6) | (p > 1e-6)
    gap = (w.clamp_min(1e-300).log() - p.log()).abs()
    return torch.where(held, gap, 0.0).amax(-1) > INFORMED_NATS


def site_cells(b_site: torch.Tensor, mass_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One bounded site: each grid row's cell (``[T]``, an index into the site's points in
    ascending order; every point is on some row) and the site's posterior mass in each cell,
    ``[S, n]``, from the rows' masses ``mass_t [T, S]``."""
    points, cell = torch.unique(b_site, return_inverse=True)
    mass = mass_t.new_zeros(len(points), mass_t.shape[1]).index_add_(0, cell, mass_t)
    return cell, mass.T


#: A bounded site's grid step (logit units) from which the Gaussian rule of a loosely resolved
#: posterior (:func:`bounded_resolved`) is not trusted (:func:`zoom_bounded_sites`).
WIDE_STEP = 1.0


def zoom_bounded_sites(
    prior: GroupPrior,
    grids: dict[str, BoundedGrid],
    b: torch.Tensor,
    weights: torch.Tensor,
    per_point: int,
) -> dict[str, BoundedGrid] | None:
    """The bounded sites' grids with every site that some simulation's data inform
    (:func:`informed`) and whose posterior the grid does not resolve there
    (:func:`bounded_resolved`) zoomed onto its posterior (:func:`zoom_bounded`), or
    ``None`` when none needs it, or none can be zoomed further (:data:`MAX_BOUNDED_ZOOMS`, no
    finer step, or the finer grid times ``per_point`` entries beyond :data:`GRID_BUDGET`):
    then each site its grid still does not resolve (loosely, once zoomed) is a
    :class:`BoundedGridWarning`.
    ``b [T, sites]`` holds each grid row's point of every site and ``weights [T, S, G]`` the
    posterior weights."""
    mass_t = weights.sum(-1)  # [T, S]
    zoomed, unresolved, too_coarse = dict(grids), [], {}
    for i, (site, grid) in enumerate(grids.items()):
        _, mass = site_cells(b[:, i], mass_t)  # [S, n]
        fine = bounded_resolved(grid, mass) | ~informed(mass, site_grid(prior, site, grid)[1])
        if bool(fine.all()):
            continue
        finer = zoom_bounded(grid, mass) if grid.zooms < MAX_BOUNDED_ZOOMS else None
        # Worth a warning where the grid does not resolve it even loosely (half the step: a
        # Gaussian's moments then err by under 1%), or, on cells of WIDE_STEP or more (the
        # first grids': 2-3 logit units), where it does not resolve it: a Beta prior's skewed
        # posterior over two or three such cells (lapse under Beta(1, 30)) had its mean 20-30%
        # off.
        wide = grid.zooms == 0 and float(grid.step) >= WIDE_STEP
        coarse = ~fine if wide else ~fine & ~bounded_resolved(grid, mass, loose=True)
        too_coarse[site] = bool(coarse.any())
        if finer is not None:
            zoomed[site] = finer
        elif bool(coarse.any()):
            unresolved.append((site, grid, int(coarse.sum()), len(coarse)))
    size = math.prod(g.n for g in zoomed.values()) * per_point
    if zoomed != grids and size <= GRID_BUDGET:
        return zoomed
    refused = [site for site in zoomed if zoomed[site] != grids[site] and too_coarse[site]]
    unresolved += [(site, grids[site], None, None) for site in refused]
    for site, grid, bad, total in unresolved:
        where = f" in {bad} of {total} simulations" if bad is not None else ""
        if bad is not None:
            why = "use engine='mcmc' to check"
        elif weights.shape[1] > 1:
            why = (
                "fit fewer simulations at once (its grid is shared by them and a finer one would "
                "exceed the engine's memory budget), or use engine='mcmc' to check"
            )
        else:  # one simulation: the sites' grids multiply, and fewer simulations cannot help
            why = (
                "a finer grid would exceed the engine's memory budget (the latent sites' grids "
                "multiply); use engine='mcmc' to check"
            )
        warnings.warn(
            f"engine 'exact': the posterior of {site} spans too few points of its grid "
            f"({grid.step:.2g} logit units apart){where}; its moments, and those of the sites "
            "it moves (pi), are only as good as the step (a skewed posterior's mean can be off "
            "by a fifth): "
            f"{why}",
            BoundedGridWarning,
            stacklevel=outside_scai(),
        )
    return None


def check_groups_fit(hypothesis: Hypothesis, groups: int, what: str) -> None:
    """An :class:`EngineError` where ``groups`` groups (simulations, or a learning curve's
    prefixes) of ``hypothesis`` cannot be fitted at once within :data:`GRID_BUDGET` even on
    the coarsest lattice of pi (:func:`~scai.inference.exact_budget.fit_budget`): with no
    latent scalar they share one grid, the bounded sites' points times the groups (with one,
    each group is fitted alone).
    ``what`` names the setting that makes ``groups``, for a caller that can check this before
    any work (a sweep's cells)."""
    prior = GroupPrior(hypothesis)
    if not prior.beta or prior.latent_lam or prior.latent_shift or prior.latent_shared:
        return
    # the bounded sites' first grid (bounded_points' rows), counted without building it
    points = math.prod(BOUNDED_POINTS[site] for site in prior.beta) * groups
    lattice = len(simplex_lattice(len(hypothesis.policies)))
    if not coarsest_fits(points, lattice):
        lattice = min(lattice, MIN_SIMPLEX_POINTS)
        most = int(GRID_BUDGET // (lattice * (points // groups)))
        raise EngineError(
            f"{what}: the exact engine fits its {groups:,} groups of hypothesis "
            f"{hypothesis.name!r} ({', '.join(prior.beta)} latent) on one grid of {points:,} "
            f"points times the simplex lattice (at least {lattice}), beyond "
            f"{GRID_BUDGET:.0e}; allowed here: at most {most:,} groups"
        )
