"""The lattice of the group mixture ``pi`` on the simplex: ``pi = (c + 1/K) / (n + 1)`` for every
composition ``c`` of ``n`` into ``K`` non-negative parts (:func:`simplex_lattice`). The points are
interior (so a Dirichlet density with concentration < 1 stays finite) and evenly spaced, so each
carries the same volume; its prior weight is the Dirichlet density averaged over its cell
(:meth:`scai.models.prior.GroupPrior.pi_cell_log_weights`), not the density at the point.

Where a simulation's posterior of ``pi`` is narrower than that lattice (from 1,000-2,000 users of
4 games each), :func:`zoom_simplex` moves the same lattice onto a sub-simplex around it. The
lattice is coarse for many types (``n`` = 4 for 12 types in 3,000 points) and cannot follow a
prior that piles its mass against the edges (concentration well below 1): :func:`check_lattice`
measures its error on groups whose answer is known and warns.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.grids.resolution import effective_points, resolution_threshold
from scai.models.errors import outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.prior import GroupPrior

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


#: A zoom of the simplex lattice keeps every point within this many nats of the heaviest one.
SIMPLEX_ZOOM_NATS = 20.0
#: Margins (in steps of the current lattice) tried in turn around those points: the next one
#: is tried when the posterior still reaches an inner face of the zoomed sub-simplex.
SIMPLEX_ZOOM_MARGINS = (2, 8, 32)
#: A zoom that does not shrink the sub-simplex's side to at most this share is not taken.
SIMPLEX_ZOOM_SHRINK = 0.5
#: Most zooms of one simulation's lattice (each shrinks the side ~5-15 fold).
MAX_SIMPLEX_ZOOMS = 8


def simplex_zoom_threshold(K: int) -> float:
    """The effective number of lattice points below which :func:`zoom_simplex` zooms:
    :func:`~scai.inference.grids.resolution.resolution_threshold` of the simplex's ``K - 1``
    dimensions.

    Why there: the lattice is ``step * Z^(K-1)`` in the first ``K - 1`` coordinates, and by
    Poisson summation a Gaussian's moments on it err by terms ``exp(-2 pi^2 m' Sigma m /
    step^2)``: below ``3e-9`` at sd = step, but ~1e-2 at sd = step / 2, and the posterior
    collapses onto one point well before sd = step / 10. The default 2,926-point lattice of
    three types (step 0.013) stays above it up to 1,000-2,000 users of 4 games each (measured;
    the experiments' groups of 10 users: at least 22 effective points)."""
    return resolution_threshold(K - 1)


def lattice_ess(log_joint: torch.Tensor) -> torch.Tensor:
    """``[...]``: :func:`~scai.inference.grids.resolution.effective_points` of the marginal of
    ``pi`` of ``log_joint [T, ..., G]`` (the first dimension summed out)."""
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
