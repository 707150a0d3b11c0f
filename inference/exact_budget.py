"""The exact engine's budgets: how large its grids may be.

The ``[grid points x simulations x lattice]`` log joint is held within :data:`GRID_BUDGET`
entries (the lattice of pi coarsened to fit: :func:`fit_budget`), two latent scalars' boxes
within :data:`BOX_BUDGET` (:func:`fit_boxes`), and an option asking for a larger grid, or a
first grid beyond the memory limit, is refused before any work (:func:`check_grid_size`,
:func:`check_grid_memory`).
"""

from __future__ import annotations

import torch

from scai.inference.errors import EngineError
from scai.inference.grids.boxes import Box
from scai.inference.grids.latent import MAX_LATENT_SCALARS, busiest_scalars
from scai.inference.grids.simplex import simplex_lattice
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData

#: Entries of the ``[grid points x simulations x lattice]`` log joint the engine holds at once.
GRID_BUDGET = 4e7
#: The coarsest lattice of pi the engine accepts when it must coarsen it.
MIN_SIMPLEX_POINTS = 200
#: The lattice of pi of the first pass over the scalars' grid, which only locates them.
COARSE_SIMPLEX_POINTS = 200
#: The first grid's points per latent scalar, by how many there are (``grid_points``).
GRID_POINTS = {1: 200, 2: 40}
#: A lower bound on the ``[grid points x users x types]`` float64 tables one pass over a
#: scalar grid holds at once (the actions' and the tones' log-likelihoods, their sum, the
#: distinct users' copy; a review measured ~6 at 7 x 10^4 users): :func:`check_grid_memory`.
GRID_COPIES = 4
#: Entries of the ``[grid points x simulations x lattice]`` log joint a zoom of two latent
#: scalars aims to stay within (its boxes are made coarser, not below ``zoom_points`` per
#: dimension, when their halved steps would need more): 800 MB of doubles.
BOX_BUDGET = 1e8


def fit_budget(pi_grid: torch.Tensor, K: int, points: int, max_points: int) -> torch.Tensor:
    """The simplex lattice, coarsened so that ``points x G`` stays within :data:`GRID_BUDGET`
    (grids over several bounded sites multiply the points); an error naming svi and mcmc when
    even a coarse lattice would not fit."""
    if points * pi_grid.shape[0] <= GRID_BUDGET:
        return pi_grid
    if not coarsest_fits(points, pi_grid.shape[0]):
        raise EngineError(
            f"engine 'exact': its grid would need {points} points of the scalars times the "
            f"simplex lattice (at least {MIN_SIMPLEX_POINTS}), beyond {GRID_BUDGET:.0e}: fit "
            "fewer simulations at once, or use engine='svi' or engine='mcmc'"
        )
    target = int(GRID_BUDGET // points)
    return simplex_lattice(K, min(target, max_points)).to(pi_grid.dtype)


def coarsest_fits(points: int, lattice: int) -> bool:
    """Whether ``points`` grid points times the coarsest lattice of pi the engine may take
    (``lattice`` points, coarsened to :data:`MIN_SIMPLEX_POINTS` at most) fit
    :data:`GRID_BUDGET` (:func:`fit_budget`,
    :func:`~scai.inference.exact_bounded.check_groups_fit`)."""
    return points * min(lattice, MIN_SIMPLEX_POINTS) <= GRID_BUDGET


def check_grid_memory(
    hypothesis: Hypothesis, data: GroupData, grid_points: int | None, max_memory: int | None
) -> None:
    """An :class:`EngineError` before any work where the first pass over the latent scalars'
    grid would hold more than the memory limit: it scores every user of a simulation at every
    point of the grid (a simulation with a latent scalar is fitted alone), and the engine's
    other checks count only the layout and the draws (10^5 users with a latent rationality
    took over 3 GB unchecked; 10^6 would have run out of memory)."""
    from scai.models.memory import check_memory, format_bytes, memory_limit

    _, names = busiest_scalars(hypothesis, data)  # (check_exact's count)
    if not names:
        return
    dims = min(len(names), MAX_LATENT_SCALARS)
    per_point = data.shape[1] * len(hypothesis.policies) * 8 * GRID_COPIES
    side = grid_points or GRID_POINTS[dims]
    need = side**dims * per_point
    # the engine's own budget of the grid first (one simulation's, on the coarse lattice):
    # its refusal says how many points it allows
    check_grid_size("grid_points", side, dims, COARSE_SIMPLEX_POINTS, names)

    def error(text: str) -> EngineError:
        limit, _ = memory_limit(max_memory)
        most = int((limit / per_point) ** (1 / dims)) if limit else 0
        return EngineError(
            f"engine 'exact': the first grid of {', '.join(names)} ({side} point(s) per "
            f"scalar) over a simulation's {data.shape[1]:,} user slots {text} (at least "
            f"{format_bytes(per_point)} a point); fit by engine='svi' (with subsample_size: "
            f"minibatches), with fewer grid_points (about {most:,} fit), or raise the limit "
            "(max_memory=, --max-memory)"
        )

    check_memory(need, error, max_memory)


def check_grid_size(option: str, points: int, dims: int, per_point: int, names: list[str]) -> None:
    """An :class:`EngineError` naming ``option`` where one pass over the latent scalars' grid
    (``grid_points``: the first grid's points per scalar; ``zoom_points``: one zoomed window's
    or box's) would hold more than :data:`GRID_BUDGET` entries: ``points ** dims`` points of
    ``per_point`` entries each (simulations x points of pi's lattice). With two scalars,
    ``grid_points=10000`` asked torch for 1.6 GB and 100,000 for 80 GB (a raw allocation
    error); with one, ``zoom_points=100000`` for 9 GB."""
    if dims == 0 or points**dims * per_point <= GRID_BUDGET:
        return
    most = int((GRID_BUDGET / per_point) ** (1 / dims))
    raise EngineError(
        f"{option}={points}: with {dims} latent scalar(s) ({', '.join(names)}) a grid of "
        f"{points**dims:,} points of {per_point:,} entries each (simulations x points of pi's "
        f"lattice) is beyond the exact engine's budget of {GRID_BUDGET:,.0f} entries; allowed "
        f"here: at most {most:,}"
    )


def fit_boxes(boxes: list[Box], per_point: int, points: int) -> list[Box]:
    """``boxes`` with fewer points per dimension (at least ``points``) when their grid times
    ``per_point`` entries would exceed :data:`BOX_BUDGET`."""
    total = sum(box.size for box in boxes) * per_point
    if total <= BOX_BUDGET:
        return boxes
    scale = (BOX_BUDGET / total) ** (1 / len(boxes[0].n))
    return [Box(b.lo, b.hi, tuple(max(points, int(k * scale)) for k in b.n)) for b in boxes]
