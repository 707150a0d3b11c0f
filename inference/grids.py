"""Quadrature grids for the exact engine: what it grids, and where.

* Which continuous quantities besides ``pi`` are latent (:func:`latent_scalars`): the engine
  integrates at most :data:`MAX_LATENT_SCALARS` of them (:func:`check_exact` refuses more) and
  maps grid coordinates to parameters with :func:`grid_parameters`.
* The scalars' grids: a uniform product grid over +-6 prior sd (:func:`uniform_grid`), then a
  finer one around every mode of the coarse marginal (:func:`zoom_modes`).
* The group mixture ``pi`` lives on a lattice of the simplex: ``pi = (c + 1/K) / (n + 1)`` for
every composition ``c`` of ``n`` into ``K`` non-negative parts. The points are interior (so a
Dirichlet density with concentration < 1 stays finite) and evenly spaced, so each carries the
same volume. Its prior weight is the Dirichlet density averaged over its cell
(:meth:`scai.models.prior.GroupPrior.pi_cell_log_weights`), not the density at the point.
"""

from __future__ import annotations

import itertools
import math

import torch

from scai.inference.errors import EngineError
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.prior import GroupPrior


def simplex_lattice(K: int, max_points: int = 3000) -> torch.Tensor:
    """``[G, K]`` interior lattice points of the simplex, the finest with at most
    ``max_points`` points, in lexicographic order of their counts ``c``.

    The compositions of ``n`` into ``K`` parts are enumerated directly (stars and bars: the
    ``K - 1`` bar positions among ``n + K - 1`` slots), so the cost is the number of points,
    not the ``(n + 1)^(K - 1)`` tuples a filtered product would visit."""
    if K == 1:
        return torch.ones(1, 1)
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
    counts = counts[key.argsort()]
    return (counts.to(torch.get_default_dtype()) + 1.0 / K) / (n + 1)


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


def check_exact(hypothesis: Hypothesis, data: GroupData) -> None:
    names = latent_scalars(hypothesis, data)
    if len(names) > MAX_LATENT_SCALARS:
        raise EngineError(
            f"engine 'exact' integrates at most {MAX_LATENT_SCALARS} latent scalars besides pi; "
            f"hypothesis {hypothesis.name!r} on this data has {len(names)} "
            f"({', '.join(names)}): use engine='svi' or engine='mcmc'"
        )


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


def zoom_modes(
    u: torch.Tensor,
    marginal: torch.Tensor,
    spacing: float,
    points: int,
    prior: torch.distributions.Distribution,
    margin: float = 200.0,
    keep_per_sim: int = 3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fine grid around the modes of the coarse marginal ``[T, S]``: for each simulation, its
    ``keep_per_sim`` best modes within ``margin`` nats of its best. A mode is a local maximum
    with the contiguous coarse points around it within 30 nats of a simulation's best (local
    maxima in the same run are one mode); its window spans that run plus one spacing either
    side, at >= ``points`` points and 4x the coarse resolution (windows that overlap are
    merged).

    The likelihood can have several sharp modes (an altruist in a currency shifted by -2
    behaves like a selfish user in an unshifted one) narrower than the coarse spacing: whichever
    mode's coarse point happens to fall nearer its peak would win, so every candidate is
    refined and the prior decides between them. Returns points ``[T', 1]`` and log weights
    (log prior density + log cell width).
    """
    best = marginal.max(0).values
    is_peak = torch.ones_like(marginal, dtype=torch.bool)
    is_peak[1:] &= marginal[1:] >= marginal[:-1]
    is_peak[:-1] &= marginal[:-1] >= marginal[1:]
    score = torch.where(is_peak & (marginal > best - margin), marginal, -torch.inf)
    # Each window covers its mode's contiguous run of coarse points within 30 nats of some
    # simulation's best (the bulk of a wide posterior), and at least one spacing either side.
    # Peaks are ranked by window, not one by one: on a fine coarse grid rounding makes several
    # "peaks" inside one mode's run, and ranking them singly let them crowd a second mode out
    # of the ``keep_per_sim`` best.
    near = (marginal > best - 30).any(-1).tolist()
    first, last = list(range(len(near))), list(range(len(near)))  # each point's run
    for i in range(1, len(near)):
        if near[i] and near[i - 1]:
            first[i] = first[i - 1]
    for i in range(len(near) - 2, -1, -1):
        if near[i] and near[i + 1]:
            last[i] = last[i + 1]
    run_score: dict[tuple[int, int], torch.Tensor] = {}
    for c in torch.isfinite(score).any(-1).nonzero().flatten().tolist():
        run = (first[c], last[c])
        run_score[run] = torch.maximum(run_score.get(run, score[c]), score[c])
    runs = list(run_score)
    scores = torch.stack([run_score[r] for r in runs])  # [runs, S]
    top = scores.topk(min(keep_per_sim, len(runs)), dim=0)  # [keep, S]
    chosen = top.indices[torch.isfinite(top.values)].unique().tolist()
    windows = [(float(u[runs[i][0]]) - spacing, float(u[runs[i][1]]) + spacing) for i in chosen]
    windows.sort()
    merged: list[list[float]] = []
    for a, b in windows:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    grids, log_w = [], []
    for a, b in merged:
        n = max(points, int(4 * (b - a) / spacing))  # at least 4x the coarse resolution
        grid = torch.linspace(a, b, n, dtype=torch.float64).unsqueeze(-1)
        grids.append(grid)
        log_w.append(prior.log_prob(grid) + math.log((b - a) / (n - 1)))
    return torch.cat(grids), torch.cat(log_w)


def uniform_grid(lo: torch.Tensor, hi: torch.Tensor, n: int) -> tuple[torch.Tensor, float]:
    """Product grid of ``n`` points per dimension on ``[lo, hi]``; returns points and the log
    volume of one cell."""
    bounds = list(zip(lo.tolist(), hi.tolist(), strict=True))
    axes = [torch.linspace(a, b, n, dtype=torch.float64) for a, b in bounds]
    points = torch.cartesian_prod(*axes).reshape(-1, len(axes))
    log_cell = sum(math.log(max(b - a, 1e-300) / (n - 1)) for a, b in bounds)
    return points, log_cell
