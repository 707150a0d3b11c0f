"""Quadrature grids for the exact engine: what it grids, and where.

* Which continuous quantities besides ``pi`` are latent (:func:`latent_scalars`): the engine
  integrates at most :data:`MAX_LATENT_SCALARS` of them (:func:`check_exact` refuses more) and
  maps grid coordinates to parameters with :func:`grid_parameters`.
* The scalars' grids: a uniform product grid over +-6 prior sd (:func:`uniform_grid`), then a
  finer one around every mode of the coarse marginal: windows in one dimension
  (:func:`zoom_modes`, then :func:`refine_cells`), boxes in two (:func:`zoom_boxes`, again
  where :func:`changed_boxes` sees a box's mass move as its step halves or
  :func:`unresolved_boxes` finds it too coarse for its mass).
* The group mixture ``pi`` lives on a lattice of the simplex: ``pi = (c + 1/K) / (n + 1)`` for
every composition ``c`` of ``n`` into ``K`` non-negative parts. The points are interior (so a
Dirichlet density with concentration < 1 stays finite) and evenly spaced, so each carries the
same volume. Its prior weight is the Dirichlet density averaged over its cell
(:meth:`scai.models.prior.GroupPrior.pi_cell_log_weights`), not the density at the point.
  Where a simulation's posterior of ``pi`` is narrower than that lattice (from 1,000-2,000
  users of 4 games each), :func:`zoom_simplex` moves the same lattice onto a sub-simplex around it.
  The lattice is coarse for many types (``n`` = 4 for 12 types in 3,000 points) and cannot
  follow a prior that piles its mass against the edges (concentration well below 1):
  :func:`check_lattice` measures its error on groups whose answer is known and warns.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.errors import EngineError
from scai.models.errors import outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.prior import GroupPrior, ScalarGaussian

#: The exact engine's default bound on the simplex lattice's points (``max_simplex_points``).
MAX_SIMPLEX_POINTS = 3000


def simplex_lattice(K: int, max_points: int = MAX_SIMPLEX_POINTS) -> torch.Tensor:
    """``[G, K]`` interior lattice points of the simplex, the finest with at most
    ``max_points`` points, in lexicographic order of their counts ``c`` (a new tensor each
    call; the counts are worked out once per ``K`` and ``max_points``)."""
    if K == 1:
        return torch.ones(1, 1)
    counts, n = _lattice_counts(K, max_points)
    return (counts.to(torch.get_default_dtype()) + 1.0 / K) / (n + 1)


@functools.lru_cache(maxsize=64)
def _lattice_counts(K: int, max_points: int) -> tuple[torch.Tensor, int]:
    """The counts ``c [G, K]`` of :func:`simplex_lattice` (each row sums to ``n``) and ``n``.

    The compositions of ``n`` into ``K`` parts are enumerated directly (stars and bars: the
    ``K - 1`` bar positions among ``n + K - 1`` slots), so the cost is the number of points,
    not the ``(n + 1)^(K - 1)`` tuples a filtered product would visit. Cached: every exact fit
    asks for the same few lattices, and a fit of one simulation takes a few milliseconds."""
    n = 1
    while math.comb(n + 1 + K - 1, K - 1) <= max_points:
        n += 1
    bars = torch.tensor(list(itertools.combinations(range(n + K - 1), K - 1)), dtype=torch.long)
    edges = torch.cat(
        [torch.full((len(bars), 1), -1), bars, torch.full((len(bars), 1), n + K - 1)], dim=1
    )
    counts = edges.diff(dim=1) - 1  # [G, K], each row sums to n
    # lexicographic in (c_1, ..., c_{K-1}): the order a product over them would give
    key = torch.zeros(len(counts), dtype=torch.long)
    for k in range(K - 1):
        key = key * (n + 1) + counts[:, k]
    return counts[key.argsort()], n


MAX_LATENT_SCALARS = 2


def latent_scalars(hypothesis: Hypothesis, data: GroupData) -> list[str]:
    """Names of the latent scalars besides ``pi`` that the exact engine must grid over.

    The grid lives on what the data identify: ``log lam`` and the total shift ``delta_c`` of
    each currency in the data (a fully pooled hypothesis, ``currency_scale = 0``, has the one
    shared shift instead). The shared shift of a partially pooled hypothesis is Gaussian given
    the ``delta_c`` and is drawn from that conditional, not gridded.
    """
    prior = GroupPrior(hypothesis)
    names = []
    if prior.latent_lam:
        names.append("lam")
    if prior.latent_shift:
        names.extend(f"shift[{c}]" for c in data.currencies)
    elif prior.latent_shared:
        names.append("shift_shared")
    return names


def busiest_scalars(hypothesis: Hypothesis, data: GroupData) -> tuple[int, list[str]]:
    """The simulation that plays the most currencies and its latent scalars, on its data cut
    to those currencies: the most any simulation fitted alone grids over."""
    busiest = int(data.played_currencies().sum(1).argmax()) if data.shape[0] else 0
    one = data.sims_subset(torch.tensor([busiest])) if data.shape[0] > 1 else data
    return busiest, latent_scalars(hypothesis, one.only_played_currencies())


def check_exact(hypothesis: Hypothesis, data: GroupData) -> None:
    """Refuse a hypothesis with more than :data:`MAX_LATENT_SCALARS` latent scalars in some
    simulation: the engine fits each simulation alone (with a latent scalar) on the data cut
    to the currencies it plays (:meth:`GroupData.only_played_currencies`; the other shifts are
    drawn from their prior: :func:`scai.inference.exact.fit_exact`), so the one that plays the
    most currencies is counted, cut the same way."""
    if len(latent_scalars(hypothesis, data)) <= MAX_LATENT_SCALARS:  # all its currencies: fits
        return
    busiest, names = busiest_scalars(hypothesis, data)
    if len(names) > MAX_LATENT_SCALARS:
        where = ""
        if data.shape[0] > 1:
            over = _over_budget(hypothesis, data)
            shown = ", ".join(repr(data.sim_ids[s]) for s in over[:SHOWN_SIMULATIONS])
            more = (
                f" and {len(over) - SHOWN_SIMULATIONS} more"
                if len(over) > SHOWN_SIMULATIONS
                else ""
            )
            where = (
                f" in simulation {data.sim_ids[busiest]!r}, and {len(over)} of {data.shape[0]} "
                f"simulations have more than {MAX_LATENT_SCALARS} ({shown}{more})"
            )
        raise EngineError(
            f"engine 'exact' integrates at most {MAX_LATENT_SCALARS} latent scalars besides pi; "
            f"hypothesis {hypothesis.name!r} on this data has {len(names)} "
            f"({', '.join(names)}){where}: use engine='svi' or engine='mcmc'"
        )


#: Simulations a refusal of :func:`check_exact` names (then how many more).
SHOWN_SIMULATIONS = 5


def _over_budget(hypothesis: Hypothesis, data: GroupData) -> list[int]:
    """The simulations with more than :data:`MAX_LATENT_SCALARS` latent scalars, in order. A
    simulation's count depends only on how many currencies it plays: one of each count is
    counted (:func:`latent_scalars` on it, cut to those currencies)."""
    played = data.played_currencies().sum(1)  # [S]
    over = torch.zeros(data.shape[0], dtype=torch.bool)
    for count in played.unique().tolist():
        at = played == count
        one = data.sims_subset(at.nonzero()[:1, 0]).only_played_currencies()
        if len(latent_scalars(hypothesis, one)) > MAX_LATENT_SCALARS:
            over |= at
    return over.nonzero()[:, 0].tolist()


#: The largest error in the posterior mean of ``pi`` that :func:`check_lattice` lets pass.
LATTICE_TOLERANCE = 0.01
#: :func:`check_lattice`'s groups: users of known types, their counts from one type on (each
#: placed at every type in turn).
LATTICE_PROBES = ((1,), (4,), (10,), (20,), (30,), (40,), (1, 3), (5, 5), (3, 1, 1), (2, 2, 2))


def check_lattice(hypothesis: Hypothesis, max_points: int, why: str = "") -> float:
    """A :class:`DiagnosticWarning` if the simplex lattice of at
    most ``max_points`` points misses the posterior mean of ``pi`` by more than
    :data:`LATTICE_TOLERANCE` on some group of :data:`LATTICE_PROBES` (users whose types are
    certain: the posterior is then the Dirichlet ``a + counts``, known in closed form).

    Measured with the default lattice (``benchmarks/lattice_error.py``): the presets err by at
    most 0.002 (3 types, concentration 0.5) and 0.008 (4 types); concentration 0.1 by 0.03 (3
    types) to 0.16 (12); 0.01 by 0.20-0.28; concentration 1 by 0.045 with 6 types and 0.18 with
    12. The probes give a lower bound: other groups can be further off.
    :func:`scai.inference.fit.fit` calls it, once per fit (the engine fits group by group and
    zooms: the warning would repeat). Every fit whose lattice is off says so, as every MCMC
    fit says what its diagnostics found (a run of conditions tells each warning once, with how
    many conditions gave it: :mod:`scai.experiments.runner`); remembering it across fits made
    what a condition warned of depend on the conditions its process had computed before.
    ``why``: said after the lattice's size (why it has that many points). Returns the error."""
    K = len(hypothesis.policies)
    if K == 1:
        return 0.0
    error = lattice_error(hypothesis, max_points)
    if error > LATTICE_TOLERANCE:
        points = len(_lattice_counts(K, max_points)[0])
        warnings.warn(
            f"engine 'exact': its simplex lattice ({points} points for {K} types{why}) follows the "
            f"prior of hypothesis {hypothesis.name!r} (pi_concentration down to "
            f"{min(hypothesis.pi_concentration):g}) poorly: on groups whose users' types are "
            f"known its posterior mean of pi is as much as {error:.3f} off the exact answer "
            "(others may be further off); compare with engine='mcmc'",
            DiagnosticWarning,
            stacklevel=outside_scai(),
        )
    return error


def lattice_error(hypothesis: Hypothesis, max_points: int = MAX_SIMPLEX_POINTS) -> float:
    """:func:`check_lattice`'s measured error for the prior of ``pi`` of ``hypothesis``, once
    per concentration and lattice: the largest over :data:`LATTICE_PROBES` (a lower bound of the
    lattice's error on other groups)."""
    concentration = tuple(hypothesis.pi_concentration)
    key = (concentration, max_points)
    if key not in _LATTICE_ERRORS:
        K = len(concentration)
        grid = simplex_lattice(K, max_points).double()
        log_prior = GroupPrior(hypothesis).pi_cell_log_weights(grid)
        a = torch.tensor(concentration, dtype=torch.float64)
        worst = 0.0
        for probe in LATTICE_PROBES:
            for first in range(K if len(probe) <= K else 0):
                counts = torch.zeros(K, dtype=torch.float64)
                for j, c in enumerate(probe):
                    counts[(first + j) % K] += c
                weights = torch.softmax(log_prior + (counts * grid.log()).sum(-1), 0)
                mean = (weights[:, None] * grid).sum(0)
                exact = (a + counts) / (a + counts).sum()
                worst = max(worst, float((mean - exact).abs().max()))
        _LATTICE_ERRORS[key] = worst
    return _LATTICE_ERRORS[key]


_LATTICE_ERRORS: dict[tuple, float] = {}


def grid_parameters(u: torch.Tensor, prior: GroupPrior, data: GroupData):
    """Grid coordinates ``u [..., d]`` -> ``lam [...]`` and data-currency shifts ``[..., C]``
    (the coordinates of :meth:`GroupPrior.scalar_gaussian`)."""
    C = len(data.currencies)
    j = 0
    lam = torch.full(u.shape[:-1], math.exp(prior.lam_loc), dtype=torch.float64)
    if prior.latent_lam:
        lam = u[..., 0].exp()
        j = 1
    fixed = prior.shift_mean(torch.zeros(()), data.essential.double())
    if prior.latent_shift:
        shift = u[..., j : j + C]
    elif prior.latent_shared:
        shift = u[..., j : j + 1] + fixed
    else:
        shift = fixed.expand(*u.shape[:-1], C)
    return lam, shift


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


def uniform_grid(lo: torch.Tensor, hi: torch.Tensor, n: int) -> tuple[torch.Tensor, float]:
    """Product grid of ``n`` points per dimension on ``[lo, hi]`` (one :class:`Box`); returns
    points and the log volume of one cell."""
    box = Box(tuple(lo.tolist()), tuple(hi.tolist()), (n,) * len(lo))
    return box.points(), box.log_cell()


#: A zoom of the simplex lattice keeps every point within this many nats of the heaviest one.
SIMPLEX_ZOOM_NATS = 20.0
#: Margins (in steps of the current lattice) tried in turn around those points: the next one
#: is tried when the posterior still reaches an inner face of the zoomed sub-simplex.
SIMPLEX_ZOOM_MARGINS = (2, 8, 32)
#: A zoom that does not shrink the sub-simplex's side to at most this share is not taken.
SIMPLEX_ZOOM_SHRINK = 0.5
#: Most zooms of one simulation's lattice (each shrinks the side ~5-15 fold).
MAX_SIMPLEX_ZOOMS = 8


def resolution_threshold(dims: int) -> float:
    """The effective number of points (:func:`effective_points`) of a posterior on a regular
    grid in ``dims`` dimensions below which the grid is too coarse for it: ``(2 sqrt(pi))^dims``,
    what a Gaussian posterior whose sd equals the step in every direction has (``1 / sum w^2
    ~ (4 pi)^(dims/2) sqrt(det Sigma) / step^dims``). Why there: see
    :func:`simplex_zoom_threshold`."""
    return (2 * math.sqrt(math.pi)) ** dims


def simplex_zoom_threshold(K: int) -> float:
    """The effective number of lattice points below which :func:`zoom_simplex` zooms:
    :func:`resolution_threshold` of the simplex's ``K - 1`` dimensions.

    Why there: the lattice is ``step * Z^(K-1)`` in the first ``K - 1`` coordinates, and by
    Poisson summation a Gaussian's moments on it err by terms ``exp(-2 pi^2 m' Sigma m /
    step^2)``: below ``3e-9`` at sd = step, but ~1e-2 at sd = step / 2, and the posterior
    collapses onto one point well before sd = step / 10. The default 2,926-point lattice of
    three types (step 0.013) stays above it up to 1,000-2,000 users of 4 games each (measured;
    the experiments' groups of 10 users: at least 22 effective points)."""
    return resolution_threshold(K - 1)


def effective_points(mass: torch.Tensor) -> torch.Tensor:
    """``[...]``: the effective number of lattice points ``1 / sum_g w_g^2`` of the masses
    ``[..., G]`` (``w`` the masses normalised over ``G``)."""
    total = mass.sum(-1)
    return total * total / torch.linalg.vecdot(mass, mass)  # no [..., G] temporary


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
    n]`` its posterior mass at each point: :func:`resolution_threshold` effective points (a
    Gaussian posterior's sd at least the step; ``loose``: half the step, where a Gaussian's
    moments on the grid err by ``exp(-2 pi^2 sd^2 / step^2)``, under 1%), or (nearly) all the
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


def lattice_ess(log_joint: torch.Tensor) -> torch.Tensor:
    """``[...]``: :func:`effective_points` of the marginal of ``pi`` of ``log_joint [T, ..., G]``
    (the first dimension summed out)."""
    log_mass = torch.logsumexp(log_joint, 0)
    return effective_points((log_mass - log_mass.max(-1, keepdim=True).values).exp())


@dataclass
class SimplexZoom:
    """One simulation's lattice of ``pi`` after :func:`zoom_simplex`: ``points = corner + side
    * unit`` (``[G, K]``), the log joint on them ``[T, G]``, and how many zooms it took."""

    points: torch.Tensor
    log_joint: torch.Tensor
    corner: torch.Tensor
    side: float
    zooms: int


def zoom_simplex(
    unit: torch.Tensor,
    log_joint: torch.Tensor,
    log_lik: Callable[[torch.Tensor], torch.Tensor],
    prior: GroupPrior,
    max_zooms: int = MAX_SIMPLEX_ZOOMS,
) -> SimplexZoom:
    """Zoom the simplex lattice ``unit [G, K]`` (:func:`simplex_lattice`) onto a posterior of
    ``pi`` narrower than its step, until the posterior's effective number of points
    (:func:`lattice_ess`) reaches :func:`simplex_zoom_threshold`.

    ``log_joint [T, G]`` is the log joint on ``unit`` (its prior mass from
    :meth:`GroupPrior.pi_cell_log_weights`); ``log_lik(points [G, K]) -> [T, G]`` gives the rest
    of it (the data's log likelihood plus the other sites' log weights) anywhere.

    A zoom keeps the points within :data:`SIMPLEX_ZOOM_NATS` of the heaviest and places the same
    lattice on the sub-simplex ``{x : x_k >= lo_k}``, ``lo_k`` their least ``x_k`` less a margin
    (clipped at 0), which contains every one of them. Its cells are the unit lattice's scaled
    by ``side = 1 - sum lo`` and carry their Dirichlet prior mass
    (:meth:`GroupPrior.pi_cell_log_mass`), so the log evidence (``logsumexp`` of the log joint)
    is the integral over the sub-simplex. (The default lattice renormalises its cells' masses
    to sum to 1; counted inside the simplex, as they are, they sum to 1 up to the lattice's
    error, so the two agree.) The
    posterior outside the sub-simplex (more than ``SIMPLEX_ZOOM_NATS`` below the heaviest point)
    is dropped; if the posterior still reaches an inner face of the sub-simplex, the next, wider
    margin of :data:`SIMPLEX_ZOOM_MARGINS` is tried instead. Zooming stops when a zoom would not
    shrink the side to :data:`SIMPLEX_ZOOM_SHRINK` of its last value (several separate modes),
    or after ``max_zooms``.

    The sub-simplex shrinks every direction alike: a type no user has, whose ``pi_k`` lies within
    ~1/U of 0, stays coarser than the other directions (measured on Dirichlet(0.5 + (20000, 20,
    0)): its mean 0.12 sd off, ~4e-6).
    """
    K = unit.shape[-1]
    start = SimplexZoom(unit, log_joint, torch.zeros(K, dtype=log_joint.dtype), 1.0, 0)
    # The lattice in float64 from its counts: a float32 lattice's rounding (~6e-8), scaled onto
    # a small sub-simplex, moves points by a share of the step that 10^6 users' log likelihood
    # turns into ~1e-3 nats.
    steps = round(1.0 / (K * float(unit.min())))  # n + 1
    unit = ((unit.double() * steps - 1.0 / K).round() + 1.0 / K) / steps
    h = 0.5 / steps  # half the unit lattice's step
    on_face = unit < 2 * unit.min()  # [G, K]: count c_k = 0, on the face x_k = lo_k
    threshold = simplex_zoom_threshold(K)
    zoom = start  # unzoomed: the points ``log_joint`` was computed on
    while zoom.zooms < max_zooms and float(lattice_ess(zoom.log_joint)) < threshold:
        log_mass = torch.logsumexp(zoom.log_joint, 0)  # [G]
        bulk = zoom.points[log_mass > log_mass.max() - SIMPLEX_ZOOM_NATS].min(0).values
        step = 2 * h * zoom.side
        zoomed = None
        for margin in SIMPLEX_ZOOM_MARGINS:
            corner = (bulk - margin * step).clamp_min(0.0)
            side = 1.0 - float(corner.sum())
            if side > SIMPLEX_ZOOM_SHRINK * zoom.side:
                break
            points = corner + side * unit
            joint = log_lik(points) + prior.pi_cell_log_mass(points, side * h)
            mass = torch.logsumexp(joint, 0)
            inner = (on_face & (corner > 0)).any(-1)  # faces inside the simplex
            if not bool((inner & (mass > mass.max() - SIMPLEX_ZOOM_NATS)).any()):
                zoomed = SimplexZoom(points, joint, corner, side, zoom.zooms + 1)
                break
        if zoomed is None:
            break
        zoom = zoomed
    return zoom


@dataclass(frozen=True)
class Box:
    """A regular grid of ``n[d]`` points per dimension on the box ``[lo, hi]``, ends
    included: :func:`uniform_grid` with a number of points for each dimension."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: tuple[int, ...]

    @property
    def step(self) -> tuple[float, ...]:
        return tuple((b - a) / (k - 1) for a, b, k in zip(self.lo, self.hi, self.n, strict=True))

    @property
    def size(self) -> int:
        return math.prod(self.n)

    def points(self) -> torch.Tensor:
        """The grid's points ``[size, d]``, the first dimension slowest."""
        axes = [
            torch.linspace(a, b, k, dtype=torch.float64)
            for a, b, k in zip(self.lo, self.hi, self.n, strict=True)
        ]
        return torch.cartesian_prod(*axes).reshape(-1, len(axes))

    def covers(self, u: torch.Tensor) -> torch.Tensor:
        """``[T]``: whether each point ``u [T, d]`` lies in the union of the box's cells (its
        points +- half a step)."""
        lo, hi = torch.tensor(self.lo, dtype=u.dtype), torch.tensor(self.hi, dtype=u.dtype)
        half = torch.tensor(self.step, dtype=u.dtype) / 2
        return ((u >= lo - half) & (u <= hi + half)).all(-1)

    def log_cell(self) -> float:
        """The log volume of one cell (a box of zero width along a dimension: 1e-300 there)."""
        return sum(
            math.log(max(b - a, 1e-300) / (k - 1))
            for a, b, k in zip(self.lo, self.hi, self.n, strict=True)
        )


def box_grid(boxes: list[Box], prior: ScalarGaussian) -> tuple[torch.Tensor, torch.Tensor]:
    """The boxes' points ``[T, d]`` one box after another, and their log weights ``[T]`` (log
    prior density + log cell volume)."""
    u = torch.cat([box.points() for box in boxes])
    log_cell = torch.cat([torch.full((box.size,), box.log_cell(), dtype=u.dtype) for box in boxes])
    return u, prior.log_prob(u) + log_cell


#: How far below a simulation's best point (nats) a box's zoom still keeps the region.
BOX_WITHIN = 30.0


def zoom_boxes(
    boxes: list[Box],
    marginal: torch.Tensor,
    points: int,
    margin: float = 200.0,
    which: list[bool] | None = None,
    domain: Box | None = None,
) -> list[Box]:
    """Finer boxes around the modes of the marginal ``[T, S]`` on ``boxes``: the grids in
    several dimensions what :func:`zoom_modes` is in one.

    In each box, every local maximum of some simulation (at least as high as its 3^d - 1
    neighbours) within ``margin`` nats of that simulation's best is a candidate mode. Its
    region is its connected set of points within :data:`BOX_WITHIN` nats of some
    simulation's best (or the point alone when it lies lower), and its new box spans that
    region plus one step on each side (within the old box), with ``points`` points per
    dimension or as many as halve the old step, if that is more: a zoom always refines, so
    that the two estimates of a region's mass can be compared (:func:`changed_boxes`). Boxes
    that overlap are merged into the box that holds both, at the finer of their steps. A
    sharp mode's coarse point can sit far below broad modes that hold little mass once
    refined, so every candidate is zoomed, not the best alone. A region that reaches its
    box's edge grows beyond it (by half its span, at least 4 steps), within ``domain``: a
    thin ridge the coarser grid saw only in part goes on past the points it saw. ``which``
    (one flag per box; all by default) says which boxes to zoom; the others are kept as
    they are."""
    from scipy import ndimage  # the regions: connected components of a boolean array

    best = marginal.max(0).values
    found: list[Box] = []
    offset = 0
    for k, box in enumerate(boxes):
        m = marginal[offset : offset + box.size].reshape(*box.n, -1).numpy()
        offset += box.size
        if which is not None and not which[k]:
            found.append(box)
            continue
        d = len(box.n)
        near = (m > (best - BOX_WITHIN).numpy()).any(-1)
        top = ndimage.maximum_filter(m, size=(3,) * d + (1,), mode="constant", cval=-math.inf)
        peaks = ((m >= top) & (m > (best - margin).numpy())).any(-1)
        labels, _ = ndimage.label(near, structure=np.ones((3,) * d))
        spans = ndimage.find_objects(labels)
        regions = set()
        for index in zip(*peaks.nonzero(), strict=True):
            label = labels[index]
            if label:
                regions.add(tuple((s.start, s.stop - 1) for s in spans[label - 1]))
            else:
                regions.add(tuple((int(i), int(i)) for i in index))
        for region in regions:
            lo, hi, n = [], [], []
            for d_, ((first, last), a, h, size) in enumerate(
                zip(region, box.lo, box.step, box.n, strict=True)
            ):
                # a region that reaches the box's edge may go on beyond it (a ridge the
                # coarser grid saw only in part): the box grows there, within the domain
                grow = max(4, (last - first) // 2)
                x = a + (first - 1 if first > 0 else -grow) * h
                y = a + (last + 1 if last < size - 1 else size - 1 + grow) * h
                if domain is not None:
                    x, y = max(x, domain.lo[d_]), min(y, domain.hi[d_])
                lo.append(x)
                hi.append(y)
                n.append(max(points, 2 * round((y - x) / h) + 1))
            found.append(Box(tuple(lo), tuple(hi), tuple(n)))
    return merge_boxes(found)


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Boxes that overlap replaced by the box that holds both, at the finer of their steps,
    until none overlap."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i, j in itertools.combinations(range(len(boxes)), 2):
            a, b = boxes[i], boxes[j]
            if all(
                min(ha, hb) > max(la, lb)
                for la, ha, lb, hb in zip(a.lo, a.hi, b.lo, b.hi, strict=True)
            ):
                lo = tuple(map(min, a.lo, b.lo))
                hi = tuple(map(max, a.hi, b.hi))
                step = tuple(map(min, a.step, b.step))
                spans = zip(lo, hi, step, strict=True)
                n = tuple(math.ceil((y - x) / h - 1e-9) + 1 for x, y, h in spans)
                boxes = [x for k, x in enumerate(boxes) if k not in (i, j)] + [Box(lo, hi, n)]
                merged = True
                break
    return sorted(boxes, key=lambda box: box.lo)


def unresolved_boxes(
    boxes: list[Box], marginal: torch.Tensor, min_mass: float = 1e-3
) -> list[bool]:
    """For each box, whether some simulation that puts at least ``min_mass`` of its posterior
    there has it on too few points: fewer effective points (:func:`effective_points`) than
    :func:`resolution_threshold` asks, or a thinnest direction (the smallest eigenvalue of
    its covariance there, in steps of the box) narrower than one step, as a ridge along
    which many points lie has. Judged box by box, since a broad mode's many points would
    hide a sharp one's few."""
    mass = (marginal - marginal.max(0).values).exp()
    mass = mass / mass.sum(0)  # [T, S]
    flags, offset = [], 0
    for box in boxes:
        part = mass[offset : offset + box.size]  # [t, S]
        offset += box.size
        share = part.sum(0)
        held = share >= min_mass
        if not held.any():
            flags.append(False)
            continue
        w = part[:, held] / share[held]
        ess = effective_points(w.T)
        f64 = torch.float64
        x = (box.points() - torch.tensor(box.lo, dtype=f64)) / torch.tensor(box.step, dtype=f64)
        mean = w.T @ x  # [s, d]
        second = torch.einsum("ts,td,te->sde", w, x, x)
        cov = second - mean[:, :, None] * mean[:, None, :]
        thinnest = torch.linalg.eigvalsh(cov)[:, 0]
        threshold = resolution_threshold(len(box.n))
        flags.append(bool(((ess < threshold) | (thinnest < 1.0)).any()))
    return flags


#: How much a box's share of a simulation's posterior, or that share times its posterior
#: mean of ``pi``, may move when its step is halved for the box to count as converged.
BOX_TOLERANCE = 0.005


def changed_boxes(
    old: list[Box],
    old_marginal: torch.Tensor,
    old_pi: torch.Tensor,
    new: list[Box],
    new_marginal: torch.Tensor,
    new_pi: torch.Tensor,
    min_mass: float = 1e-3,
) -> list[bool]:
    """For each box of ``new`` (a zoom of ``old``), whether the quadrature has not converged
    there: for some simulation that puts at least ``min_mass`` of its posterior in the box,
    the box's share of it, or that share times the box's posterior mean of ``pi``, moved by
    more than :data:`BOX_TOLERANCE` against the ``old`` points inside the box. The marginals
    ``[T, S]`` are log masses per point (log density + log cell volume) and ``*_pi [T, S, K]``
    the posterior mean of ``pi`` at each point. A likelihood can hold mass on ridges thinner
    than the step (at high rationality a shift flips near-deterministic choices): a box that
    looks smooth on the points it has can still be missing them."""
    old_u = torch.cat([box.points() for box in old])
    old_w = (old_marginal - old_marginal.logsumexp(0)).exp()  # [T, S], summing to 1
    new_w = (new_marginal - new_marginal.logsumexp(0)).exp()
    flags, offset = [], 0
    for box in new:
        w = new_w[offset : offset + box.size]
        share = w.sum(0)  # [S]
        moment = torch.einsum("ts,tsk->sk", w, new_pi[offset : offset + box.size])
        offset += box.size
        lo = torch.tensor(box.lo, dtype=torch.float64)
        hi = torch.tensor(box.hi, dtype=torch.float64)
        inside = ((old_u >= lo - 1e-12) & (old_u <= hi + 1e-12)).all(-1)
        before = old_w[inside].sum(0)
        moment_before = torch.einsum("ts,tsk->sk", old_w[inside], old_pi[inside])
        moved = ((share - before).abs() > BOX_TOLERANCE) | (
            (moment - moment_before).abs().max(-1).values > BOX_TOLERANCE
        )
        flags.append(bool((moved & (share >= min_mass)).any()))
    return flags


#: A zoom evaluates a new point only where the old grid, next to it, came within this many
#: nats of some simulation's best (the rest of a box around a narrow ridge is far below).
SKIP_BELOW = BOX_WITHIN + 20.0


def worth_evaluating(old: list[Box], old_marginal: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``[T']``: whether a point ``u`` of a zoom of ``old`` could hold mass: the highest of the
    old points around it (its nearest old point and that point's neighbours) is within
    :data:`SKIP_BELOW` nats of some simulation's best, or it lies outside every old box."""
    from scipy import ndimage

    best = old_marginal.max(0).values
    worth = torch.ones(u.shape[0], dtype=torch.bool)
    offset = 0
    for box in old:
        m = old_marginal[offset : offset + box.size].reshape(*box.n, -1).numpy()
        offset += box.size
        d = len(box.n)
        top = ndimage.maximum_filter(m, size=(3,) * d + (1,), mode="nearest")
        high = torch.from_numpy(top > (best - SKIP_BELOW).numpy()).any(-1)
        lo = torch.tensor(box.lo, dtype=torch.float64)
        step = torch.tensor(box.step, dtype=torch.float64)
        index = ((u - lo) / step).round().long()
        inside = ((index >= 0) & (index < torch.tensor(box.n))).all(-1)
        flat = torch.zeros(u.shape[0], dtype=torch.long)
        for dim in range(d):
            flat = flat * box.n[dim] + index[:, dim].clamp(0, box.n[dim] - 1)
        worth[inside] = high.reshape(-1)[flat[inside]]
    return worth


#: How far a :class:`Patch` reaches from its mode, in Laplace standard deviations.
PATCH_SDS = 6.0


@dataclass(frozen=True)
class Patch:
    """A grid laid along a mode's own axes: ``n`` points per dimension over
    ``[-PATCH_SDS, PATCH_SDS]`` in whitened coordinates ``z``, at ``u = mode + chol z``
    (``chol``: the lower Cholesky factor of the mode's Laplace covariance of the scalars).

    Boxes step along the coordinate axes; a posterior that is a thin diagonal ridge (rationality
    against a shift that scales every payoff) can fall between a box's points, however many
    zooms. Along the ridge's own axes ``n`` points resolve it (step ``2 * PATCH_SDS / (n - 1)``
    standard deviations)."""

    mode: torch.Tensor  # [d]
    chol: torch.Tensor  # [d, d], lower triangular
    n: int

    @property
    def step(self) -> float:
        """The step in whitened coordinates (standard deviations)."""
        return 2 * PATCH_SDS / (self.n - 1)

    def points(self) -> torch.Tensor:
        """The grid's points ``[n^d, d]`` in the grid's coordinates ``u``."""
        d = len(self.mode)
        z = Box((-PATCH_SDS,) * d, (PATCH_SDS,) * d, (self.n,) * d).points()
        return self.mode + z @ self.chol.T

    def log_cell(self) -> float:
        """The log volume of one cell in ``u``: the whitened cell's, times ``|det chol|``."""
        return len(self.mode) * math.log(self.step) + float(self.chol.diagonal().log().sum())

    def whiten(self, u: torch.Tensor) -> torch.Tensor:
        """``u [T, d]`` in the patch's whitened coordinates ``z`` (``u = mode + chol z``)."""
        return torch.linalg.solve_triangular(self.chol, (u - self.mode).T, upper=False).T

    def covers(self, u: torch.Tensor) -> torch.Tensor:
        """``[T]``: whether each point ``u [T, d]`` lies in the union of the patch's cells
        (another grid's point there would count that region's mass twice)."""
        return (self.whiten(u).abs() <= PATCH_SDS + self.step / 2).all(-1)

    def halved(self) -> Patch:
        """The same patch at half the step (its points among the new ones)."""
        return Patch(self.mode, self.chol, 2 * self.n - 1)

    def conditional_sd(self) -> torch.Tensor:
        """``[d]``: the mode's standard deviation along each dimension given the others (the
        width of a ridge across that axis)."""
        return torch.linalg.inv(self.chol @ self.chol.T).diagonal().rsqrt()

    def resolved_by(self, box: Box) -> bool:
        """Whether ``box`` steps at most the mode's conditional standard deviation along every
        dimension (the width of a diagonal ridge across that axis; a Gaussian sampled at one
        sd has its mass to ~1e-8)."""
        return bool((torch.tensor(box.step, dtype=torch.float64) <= self.conditional_sd()).all())


def needs_patch(boxes: list[Box], patch: Patch) -> bool:
    """Whether no box resolves ``patch``'s mode: it lies in no box, or in one that does not
    resolve it (:meth:`Patch.resolved_by`)."""
    for box in boxes:
        if bool(box.covers(patch.mode[None])[0]):
            return not patch.resolved_by(box)
    return True


def ridge_strips(boxes: list[Box], patch: Patch) -> list[Box]:
    """Boxes through ``patch``'s mode along the coordinate axes, where the box that holds the
    mode steps across it: for each dimension ``i`` along which that box's step exceeds the
    mode's conditional standard deviation, a strip spanning ``mode_i +- PATCH_SDS sd_i`` at
    the patch's points along ``i`` (``sd_i`` the mode's marginal standard deviation), and the
    box's extent and points along the other dimensions; none where the box holds no mode, or
    where the strip's step along ``i`` would not resolve the ridge either (a ridge along no
    axis: the patch's own axes follow it).

    The patch grids the mode's neighbourhood, ``PATCH_SDS`` standard deviations of its Laplace
    approximation; a posterior thin across one axis and broad along another (each currency's
    shift pinned by its own games: one pinned to a point by four games, the other spread
    over 0.5-1) goes on far beyond, between the box's points, and was missed (the patch's
    neighbourhood holding 1% of the mass, the ridge 90%)."""
    box = next((b for b in boxes if bool(b.covers(patch.mode[None])[0])), None)
    if box is None:
        return []
    across = patch.conditional_sd()
    sd = (patch.chol @ patch.chol.T).diagonal().sqrt()
    strips = []
    for i, (step, width) in enumerate(zip(box.step, across.tolist(), strict=True)):
        half = PATCH_SDS * float(sd[i])
        if step <= width or 2 * half / (patch.n - 1) > width:
            continue
        lo, hi, n = list(box.lo), list(box.hi), list(box.n)
        lo[i], hi[i], n[i] = float(patch.mode[i]) - half, float(patch.mode[i]) + half, patch.n
        strips.append(Box(tuple(lo), tuple(hi), tuple(n)))
    return strips


def patch_among_boxes(
    boxes: list[Box], u: torch.Tensor, patch: Patch
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of the boxes' points ``u [T, d]`` (:func:`box_grid`'s order) and of the patch's
    points (:meth:`Patch.points`) to keep, ``([T], [n^d])``, so that every region is gridded
    once: where the patch overlaps a box, by whichever of the two has the smaller cell (more
    points on the same area), provided the box also resolves the patch's mode
    (:meth:`Patch.resolved_by`). The Laplace covariance
    can be far wider than the posterior (a mode by a wall): the patch must not replace a
    finer box's points there. But a box with the smaller cell can still step across the
    ridge at more than its width (the patch is long along it): that box is what the patch is
    for, and it keeps no region the patch covers."""
    patch_points = patch.points()
    keep_box = torch.ones(len(u), dtype=torch.bool)
    keep_patch = torch.ones(len(patch_points), dtype=torch.bool)
    offset = 0
    for box in boxes:
        part = slice(offset, offset + box.size)
        offset += box.size
        if patch.resolved_by(box) and box.log_cell() <= patch.log_cell():  # it keeps its region
            keep_patch &= ~box.covers(patch_points)
        else:
            keep_box[part] = ~patch.covers(u[part])
    return keep_box, keep_patch
