"""The exact engine's zooms of the latent scalars' grid onto their posterior.

A first, coarse grid (:class:`CoarseGrid`: +-6 prior sd, a coarse lattice of pi, the bounded
sites at their medians) locates the posterior; then one scalar is zoomed by windows around its
modes and their translates (:func:`zoom_one_scalar`), two by boxes, a patch at the best mode a
gradient search finds and strips along its ridge (:func:`zoom_two_scalars`), until the
posterior is resolved. Each returns the log joint on its final grid (:class:`ScalarFit`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.exact_budget import GRID_BUDGET, fit_boxes
from scai.inference.exact_joint import log_marginal
from scai.inference.grids.boxes import (
    BOX_TOLERANCE,
    Box,
    box_grid,
    changed_boxes,
    unresolved_boxes,
    worth_evaluating,
    zoom_boxes,
)
from scai.inference.grids.latent import latent_scalars
from scai.inference.grids.patches import Patch, needs_patch, patch_among_boxes, ridge_strips
from scai.inference.grids.resolution import effective_points, resolution_threshold
from scai.inference.grids.windows import mode_candidates, refine_cells, zoom_modes
from scai.models.errors import outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.prior import GroupPrior, ScalarGaussian

#: A mode patch's points per dimension at first (:func:`_mode_patch`): a step of about half a
#: standard deviation, whatever ``zoom_points``; halved while the patch's mass or mean moves
#: (:func:`_with_patch`), up to :data:`MAX_PATCH_POINTS`.
PATCH_POINTS = 24
MAX_PATCH_POINTS = 93
#: How far (standard deviations of the mode's Laplace approximation) the patch's posterior
#: mean may move when its step halves, and the patch count as converged.
PATCH_MEAN_TOLERANCE = 0.05
#: Zooms of the scalars' grid beyond the first (in one dimension each ~10x finer; in two each
#: halves the step of the boxes that have not converged).
MAX_SCALAR_ZOOMS = 4
#: The points of two latent scalars' boxes evaluated on the whole lattice: those within this
#: many nats of some simulation's best (a point further down holds under 1e-9 of its mass).
KEEP_WITHIN = 20.0
#: A grid's scoring: ``(u, log_w[, action])`` to what the ``evaluate`` of
#: :func:`scai.inference.exact._grid_scoring` returns,
#: ``(log_joint, loglik, action, u2, b2, rest)``.
Scoring = Callable[..., tuple]


@dataclass
class CoarseGrid:
    """The first pass over the latent scalars: the uniform grid ``u [T, dims]`` (``points`` per
    scalar over ``[lo, hi]``, +-6 prior sd, ``spacing`` apart; each point's log cell volume
    ``log_cell``), the scalars' log marginal ``[T, S]`` on the coarse ``lattice`` of pi with
    the bounded sites at their medians, and the posterior mean of pi at each point ``[T, S, K]``
    (two scalars only); ``prior`` is the scalars' Gaussian prior."""

    u: torch.Tensor
    log_cell: torch.Tensor
    marginal: torch.Tensor
    pi_mean: torch.Tensor | None
    lo: torch.Tensor
    hi: torch.Tensor
    spacing: torch.Tensor
    points: int
    prior: ScalarGaussian
    lattice: torch.Tensor


class ScalarFit(NamedTuple):
    """The zoomed grid's log joint and what comes with it (``evaluate``'s six values), the
    lattice of pi it was scored on, whether the posterior is resolved, the zooms beyond the
    first, the zoom's diagnostics and (one scalar) its ``engine_state``."""

    scored: tuple
    pi_grid: torch.Tensor
    resolved: bool
    zooms: int
    diagnostics: dict
    engine_state: dict | None


def zoom_one_scalar(
    first: CoarseGrid,
    on_coarse_lattice: Scoring,
    on_whole_lattice: Scoring,
    data: GroupData,
    hypothesis: Hypothesis,
    prior: GroupPrior,
    points: int,
    n_bounded: int,
) -> ScalarFit:
    """One latent scalar: windows around the coarse grid's modes and their translates onto
    other types (:func:`translated_peaks`, scored on the coarse lattice), ``points`` each
    (:func:`zoom_modes`), scored on the whole lattice (``n_bounded`` points of the bounded
    sites each); finer cells where a simulation's posterior is still narrower than its step
    (:func:`refine_cells`), at most :data:`MAX_SCALAR_ZOOMS` times; a mode the zooms lost is
    told (:func:`tell_lost_peaks`). Its ``engine_state`` holds the scalar's cells."""
    S = data.shape[0]
    u, marginal, spacing, scalar_prior = first.u, first.marginal, first.spacing, first.prior
    # the coarse grid's modes translated onto other types
    loc = scalar_prior.loc.reshape(-1)
    extra = translated_peaks(u[:, 0], marginal, hypothesis, prior, loc, first.lo, first.hi)
    if len(extra):
        x = extra[:, None]
        more, *_ = on_coarse_lattice(x, scalar_prior.log_prob(x) + first.log_cell)
        u, marginal, spacing = _with_points(u, marginal, spacing, x, more.logsumexp(-1))
    # the highest density scored before the zooms, per simulation
    scored = (marginal - torch.as_tensor(spacing).log().reshape(-1, 1)).max(0)
    fine = torch.ones(S, dtype=torch.bool)  # which simulations' posteriors are resolved
    zooms = 0
    while True:
        if zooms == 0:
            u, log_w, step = zoom_modes(u[:, 0], marginal, spacing, points, scalar_prior)
        else:  # finer cells only where the narrow posteriors are
            u, log_w, step = refine_cells(u[:, 0], step, marginal, ~fine, points, scalar_prior)
        *joint, fitted = on_whole_lattice(u, log_w)
        marginal = log_marginal(joint[0].reshape(len(u), n_bounded, S, -1))
        mass = (marginal - marginal.max(0).values).exp().T  # [S, T]
        fine = effective_points(mass) >= resolution_threshold(1)  # [S]
        resolved = bool(fine.all())
        if resolved or zooms == MAX_SCALAR_ZOOMS:
            break
        spacing = step
        zooms += 1
    diagnostics = {}
    gaps = _lost_peaks(scored, marginal - step.log()[:, None])
    tell_lost_peaks(gaps, data.sim_ids, ", ".join(latent_scalars(hypothesis, data)))
    if max(gaps) > LOST_PEAK_NATS:  # per simulation: its gap where it lost one, else 0
        diagnostics["lost_peak_nats"] = [g if g > LOST_PEAK_NATS else 0.0 for g in gaps]
    # the scalar's cells: points and widths (for a check that needs them)
    (scalar,) = latent_scalars(hypothesis, data)
    engine_state = {"scalar_cells": [(u[:, 0].clone(), step.clone())], "scalar": scalar}
    return ScalarFit(tuple(joint), fitted, resolved, zooms, diagnostics, engine_state)


def zoom_two_scalars(
    first: CoarseGrid,
    on_coarse_lattice: Scoring,
    on_whole_lattice: Scoring,
    data: GroupData,
    hypothesis: Hypothesis,
    points: int,
    budget_per_point: int,
    patch_per_point: int,
) -> ScalarFit:
    """Two latent scalars: boxes around every mode, located on the coarse lattice and zoomed
    until resolved (:func:`_zoom_boxes_until_resolved`, ``points`` per dimension,
    ``budget_per_point`` entries a point); a patch at the best mode a gradient search finds
    where no box resolves it (:func:`_mode_patch`, :func:`_with_patch`) and strips along its
    ridge (:func:`_with_strips`), ``patch_per_point`` entries a point; the points within
    :data:`KEEP_WITHIN` nats of a simulation's best scored on the whole lattice."""
    scalar_prior, coarse = first.prior, first.lattice
    boxes = [Box(tuple(first.lo.tolist()), tuple(first.hi.tolist()), (first.points,) * 2)]

    def locate(u: torch.Tensor, log_w: torch.Tensor):
        log_joint, _, action, *_ = on_coarse_lattice(u, log_w)
        marginal = log_joint.logsumexp(-1)
        pi_mean = (log_joint - marginal[..., None]).exp() @ coarse  # [T, S, K]
        return marginal, pi_mean, action

    boxes, zooms, resolved, marginal, action = _zoom_boxes_until_resolved(
        boxes,
        first.marginal,
        first.pi_mean,
        locate,
        scalar_prior,
        points,
        budget_per_point=budget_per_point,
    )
    # Only the points that hold mass are evaluated on the whole lattice (a box spans
    # its mode's region within 30 nats, at the step its sharpest part needs).
    diagnostics = {}
    u, log_w = box_grid(boxes, scalar_prior)
    patch = _mode_patch(data, hypothesis, boxes)
    if patch is not None:  # where it overlaps a box, the finer of the two grids
        grid = (u, log_w, marginal, action)
        *grid, patch_points, converged = _with_patch(
            patch, boxes, grid, locate, scalar_prior, patch_per_point
        )
        u, log_w, marginal, action = grid
        if patch_points:
            diagnostics["mode_patch"] = 1
            diagnostics["mode_patch_points"] = patch_points
            resolved = resolved and converged
        strips = ridge_strips(boxes, patch)
        if strips:  # a ridge through the mode, thinner than the box's step across it
            grid = (u, log_w, marginal, action)
            kept = patch if patch_points else None
            *grid, added = _with_strips(strips, kept, grid, locate, scalar_prior, patch_per_point)
            u, log_w, marginal, action = grid
            if added:
                diagnostics["mode_strip_points"] = added
    keep = (marginal > marginal.max(0).values - KEEP_WITHIN).any(-1)
    u, log_w, action = u[keep], log_w[keep], action[keep]
    *joint, fitted = on_whole_lattice(u, log_w, action)
    return ScalarFit(tuple(joint), fitted, resolved, zooms, diagnostics, None)


def warn_at_grid_edge(
    u: torch.Tensor,
    marginal: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    spacing: torch.Tensor,
    names: list[str],
) -> None:
    """A :class:`DiagnosticWarning` where some simulation's posterior of the scalars (``u
    [T, dims]``, ``marginal [T, S]`` on the first grid) peaks on the grid's edge, 6 prior sd
    from the prior's centre: the data pull it beyond what the grid covers, and the posterior
    is cut off there (one user's three offers of a tenth of a large pot put ``lam`` at 0.08
    where the grid stops at 0.2, with no word: a red-team)."""
    best = u[marginal.argmax(0)]  # [S, dims]
    edge = ((best - lo).abs() < spacing / 2) | ((best - hi).abs() < spacing / 2)
    if bool(edge.any()):
        which = sorted({names[d] for d in torch.nonzero(edge)[:, 1].tolist()})
        warnings.warn(
            f"engine 'exact': the posterior of {', '.join(which)} peaks at the edge of its "
            "grid, 6 prior sd from the prior's centre: the data pull it further than the grid "
            "reaches, and the posterior is cut off there, and with it everything fitted beside "
            "it (pi, the users' types: all of it may be off; fit with engine='mcmc' or 'svi', "
            "or give the prior more room)",
            DiagnosticWarning,
            stacklevel=outside_scai(),
        )


def _with_patch(
    patch: Patch,
    boxes: list[Box],
    grid: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    locate: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    prior: ScalarGaussian,
    per_point: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, bool]:
    """The boxes' ``grid`` (points ``u``, log weights, scalar marginal ``[T, S]`` and action
    log-likelihoods, as ``locate`` gives them) with ``patch``'s points in place of the boxes'
    where the patch is the finer grid (:func:`patch_among_boxes`), its step halved while the
    patch's share of the posterior moves by more than :data:`BOX_TOLERANCE` or its mean by
    more than :data:`PATCH_MEAN_TOLERANCE` standard deviations when it does (a posterior far
    from its Laplace approximation, a cliff by a wall, needs a finer patch: 24 points a side
    put ``E[log lam]`` 0.07 from a fine uniform grid's, 47 within 0.01), up to
    :data:`MAX_PATCH_POINTS` a side and while the points within :data:`KEEP_WITHIN` nats,
    ``per_point`` entries each, fit :data:`GRID_BUDGET`. Returns the grid, the patch's points a
    side (0 if none is kept) and whether it converged."""
    u, log_w, marginal, action = grid
    previous = None
    while True:
        keep_box, keep_patch = patch_among_boxes(boxes, u, patch)
        u_patch = patch.points()[keep_patch]
        if not len(u_patch):
            return u, log_w, marginal, action, 0, True
        log_w_patch = prior.log_prob(u_patch) + patch.log_cell()
        marginal_patch, _, action_patch = locate(u_patch, log_w_patch)
        joint = torch.cat([marginal[keep_box], marginal_patch])  # [T, S]
        weights = (marginal_patch - joint.logsumexp(0)).exp()  # [P, S]
        share = weights.sum(0)  # [S]
        mean = weights.T @ patch.whiten(u_patch) / share.clamp_min(1e-300)[:, None]  # [S, d]
        converged = previous is not None and bool(
            ((share - previous[0]).abs() <= BOX_TOLERANCE).all()
            and ((mean - previous[1]).abs() <= PATCH_MEAN_TOLERANCE).all()
        )
        kept = int((joint > joint.max(0).values - KEEP_WITHIN).any(-1).sum())
        finer = patch.halved()
        fits = (kept + 3 * len(u_patch)) * per_point <= GRID_BUDGET  # ~4x the patch's points
        if converged or finer.n > MAX_PATCH_POINTS or not fits:
            grid = (
                torch.cat([u[keep_box], u_patch]),
                torch.cat([log_w[keep_box], log_w_patch]),
                joint,
                torch.cat([action[keep_box], action_patch]),
            )
            return *grid, patch.n, converged
        previous, patch = (share, mean), finer


def _with_strips(
    strips: list[Box],
    patch: Patch | None,
    grid: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    locate: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    prior: ScalarGaussian,
    per_point: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``grid`` (points, log weights, scalar marginal, action log-likelihoods: the boxes' and
    the ``patch``'s, :func:`_with_patch`) with the ``strips``' points (:func:`ridge_strips`) in
    place of the boxes' where a strip lies, each region gridded once: the patch keeps its own
    (finer along every axis), an earlier strip its region, and every other point inside a
    strip is left out. Strips whose points would not fit :data:`GRID_BUDGET` (``per_point``
    entries each) are not added. Returns the grid and the number of points added."""
    u, log_w, marginal, action = grid
    fresh: list[torch.Tensor] = []
    cells: list[torch.Tensor] = []
    taken: list[Box] = []
    for strip in strips:
        points = strip.points()
        keep = torch.ones(len(points), dtype=torch.bool)
        if patch is not None:
            keep &= ~patch.covers(points)
        for other in taken:
            keep &= ~other.covers(points)
        if not bool(keep.any()):
            continue
        if (len(u) + sum(map(len, fresh)) + int(keep.sum())) * per_point > GRID_BUDGET:
            continue
        fresh.append(points[keep])
        cells.append(torch.full((int(keep.sum()),), strip.log_cell(), dtype=u.dtype))
        taken.append(strip)
    if not fresh:
        return u, log_w, marginal, action, 0
    inside = torch.zeros(len(u), dtype=torch.bool)
    for strip in taken:
        inside |= strip.covers(u)
    if patch is not None:
        inside &= ~patch.covers(u)
    u_strip = torch.cat(fresh)
    log_w_strip = prior.log_prob(u_strip) + torch.cat(cells)
    marginal_strip, _, action_strip = locate(u_strip, log_w_strip)
    return (
        torch.cat([u[~inside], u_strip]),
        torch.cat([log_w[~inside], log_w_strip]),
        torch.cat([marginal[~inside], marginal_strip]),
        torch.cat([action[~inside], action_strip]),
        len(u_strip),
    )


def _mode_patch(data: GroupData, hypothesis: Hypothesis, boxes: list[Box]) -> Patch | None:
    """A :class:`Patch` (:data:`PATCH_POINTS` per dimension) at the best mode of two latent scalars
    that a mode search finds (:func:`~scai.inference.laplace.find_best_mode`: L-BFGS from
    the prior median and prior draws, as MCMC starts), if no box resolves it
    (:func:`needs_patch`); ``None`` if one does, or if the search finds no proper mode.

    The boxes grow from a coarse grid's points; a ridge thinner than its step, between its
    points, can be missed altogether, the boxes settling on a mode 12-14 nats lower
    (``benchmarks/known_disagreements.py``, case 5). A gradient search from several starts
    does not depend on where the points fall."""
    from scai.inference.laplace import find_best_mode, laplace
    from scai.models.density import MarginalDensity

    if not bool(data.event_mask.any()):  # nothing scored: the posterior is the prior
        return None
    density = MarginalDensity(data, hypothesis)
    coords = density.coords
    # the grid's coordinates (grid_parameters): log lam, then the shifts or the shared one
    gridded = ["lam"] * coords.latent_lam + ["shift" if coords.latent_shift else "shift_shared"]
    columns = [
        index
        for site in gridded
        if site in density.columns
        for index in range(density.columns[site].start, density.columns[site].stop)
    ]
    mode = find_best_mode(density)
    approx = laplace(density, mode=mode) if mode is not None else None
    if approx is None or len(columns) != len(boxes[0].n):
        return None
    at = torch.from_numpy(approx.mode[columns])
    covariance = torch.from_numpy(approx.covariance[0][:, columns][columns])
    patch = Patch(at, torch.linalg.cholesky(covariance), PATCH_POINTS)
    return patch if needs_patch(boxes, patch) else None


def _zoom_boxes_until_resolved(
    boxes: list[Box],
    marginal: torch.Tensor,
    pi_mean: torch.Tensor,
    scalar_marginal: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    prior: ScalarGaussian,
    points: int,
    budget_per_point: int,
) -> tuple[list[Box], int, bool, torch.Tensor, torch.Tensor]:
    """Zoom two latent scalars' boxes (:func:`zoom_boxes`) until they have converged: no
    box's share of a simulation's posterior, or its mean of pi, moves when its step is halved
    (:func:`changed_boxes`), and every mode spans enough points (:func:`unresolved_boxes`);
    at most :data:`MAX_SCALAR_ZOOMS` times beyond the first. ``marginal [T, S]`` is the
    scalars' log marginal on ``boxes`` (the coarse grid) and ``pi_mean [T, S, K]`` the
    posterior mean of pi at each point; ``scalar_marginal(u, log_w)`` computes both on
    other points (on a coarse lattice of pi: these passes only locate the posterior) with
    the action log-likelihoods there. Returns the boxes, the zooms beyond the first, whether
    they converged, and the last marginal and action log-likelihoods (on the boxes
    returned)."""
    (domain,) = boxes  # the coarse grid
    zooms, which, action = 0, None, None  # the first zoom: every box
    while True:
        zoomed = zoom_boxes(boxes, marginal, points, which=which, domain=domain)
        zoomed = fit_boxes(zoomed, budget_per_point, points)
        if zoomed == boxes and action is not None:  # nothing left to zoom into
            return boxes, max(zooms - 1, 0), False, marginal, action
        previous = boxes, marginal, pi_mean
        boxes = zoomed
        u, log_w = box_grid(boxes, prior)
        need = worth_evaluating(previous[0], previous[1], u)
        part, pi_part, action_part = scalar_marginal(u[need], log_w[need])
        marginal = part.new_full((len(u), part.shape[1]), -math.inf)
        marginal[need] = part
        pi_mean = pi_part.new_zeros((len(u), *pi_part.shape[1:]))
        pi_mean[need] = pi_part
        action = action_part.new_zeros((len(u), *action_part.shape[1:]))
        action[need] = action_part  # (the final pass keeps only points evaluated)
        changed = changed_boxes(*previous, boxes, marginal, pi_mean)
        which = [a or b for a, b in zip(changed, unresolved_boxes(boxes, marginal), strict=True)]
        if not any(which) or zooms == MAX_SCALAR_ZOOMS:
            return boxes, zooms, not any(which), marginal, action
        zooms += 1


def translated_peaks(
    u: torch.Tensor,
    marginal: torch.Tensor,
    hypothesis: Hypothesis,
    prior: GroupPrior,
    loc: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
) -> torch.Tensor:
    """Points of a latent shift's coarse grid ``u [T]`` where another mode may hide: the
    prior's location ``loc`` (its mean: no shift unless the currency is essential; where users
    who act as their type says have their mode, however sharp) and each peak of the coarse
    marginal ``[T, S]`` that :func:`~scai.inference.grids.windows.zoom_modes` zooms onto
    (:func:`~scai.inference.grids.windows.mode_candidates`), each as it is and moved by every
    difference ``w_j - w_k`` of two types' weights on the other's payoff; those within
    ``[lo, hi]`` and not on the grid. None for a latent rationality.

    A shift adds to every type's weight, so users of type ``k`` under shift ``d`` act as users
    of a type ``j`` that differs from ``k`` in ``w`` alone act under ``d + w_k - w_j``: a group of
    selfish users (``w = 0``) fits altruists (``w = 2``) shifted by -2 as well as selfish ones
    unshifted. Both modes are as sharp; the coarse grid's points fall near the one and between
    the other's (0.001 wide at a step of 0.12: a fit reported the altruists' alone, ``pi`` of
    selfish 0.09 where finer grids give 0.54). Scoring the translates finds the other."""
    if not prior.latent_shift and not prior.latent_shared:
        return u.new_zeros(0)
    weights = sorted({float(p.w) for p in hypothesis.policies})
    moves = {b - a for a in weights for b in weights if a != b}
    peaks = torch.cat([u[mode_candidates(marginal)], loc.reshape(1)])
    moved = (peaks[:, None] + torch.tensor([0.0, *sorted(moves)], dtype=u.dtype)).flatten()
    inside = (moved >= float(lo[0])) & (moved <= float(hi[0]))
    moved = torch.unique(moved[inside])
    if not len(moved):
        return moved
    gap = (moved[:, None] - u[None, :]).abs().min(-1).values
    return moved[gap > 1e-9 * (float(hi[0]) - float(lo[0]))]


#: How far (nats) the zoomed grid's highest density may lie below a point scored before it.
LOST_PEAK_NATS = 5.0


def _lost_peaks(scored, density: torch.Tensor) -> list[float]:
    """Per simulation, how far (nats) the highest log density scored before the zooms
    (``scored``: values and indices over the points, ``[S]``) lies above the zoomed grid's
    best (``density [T, S]``): more than :data:`LOST_PEAK_NATS`, a mode narrower than the
    zoomed grid's step fell between its points, and its mass is missing (a shift's mode at
    the prior's location, 1e-4 wide where pots are large, held 80% of the mass the zoomed grid
    gave a broad tail, unsaid)."""
    return (scored.values - density.max(0).values).tolist()


#: The start of :func:`tell_lost_peaks`' message (a fit of each simulation alone tells one).
LOST_PEAK_MESSAGE = "engine 'exact': the zoomed grid of"


def tell_lost_peaks(gaps: list[float], sim_ids, names: str) -> None:
    """A :class:`DiagnosticWarning` naming the simulations whose ``gaps``
    (:func:`_lost_peaks`) are above :data:`LOST_PEAK_NATS`, if any; ``names``: what the
    grid is of."""
    lost = [sim for sim, gap in zip(sim_ids, gaps, strict=True) if gap > LOST_PEAK_NATS]
    if not lost:
        return
    warnings.warn(
        f"{LOST_PEAK_MESSAGE} {names} misses a sharp mode of {len(lost)} of {len(gaps)} "
        f"simulation(s) (e.g. {lost[0]!r}): a point scored before the zooms lies more than "
        f"{LOST_PEAK_NATS:g} nats above its best density (diagnostics['lost_peak_nats']), so "
        "the posterior lacks that mode's mass; raise grid_points or check with engine='mcmc'",
        DiagnosticWarning,
        stacklevel=outside_scai(),
    )


def _with_points(
    u: torch.Tensor,
    marginal: torch.Tensor,
    spacing: torch.Tensor,
    x: torch.Tensor,
    at_x: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The coarse grid ``u [T, 1]`` and its marginal ``[T, S]`` with the points ``x [n, 1]`` and
    their marginal ``at_x [n, S]`` put in order, and each point's step ``[T + n]``: the coarse
    grid's for all (a window around an added peak spans one coarse step either side, as a
    coarse point's)."""
    points = torch.cat([u, x])
    order = points[:, 0].argsort(stable=True)
    step = torch.as_tensor(spacing, dtype=torch.float64).reshape(-1)[0]
    return points[order], torch.cat([marginal, at_x])[order], step.expand(len(order)).clone()
