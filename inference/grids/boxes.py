"""Product grids of the latent scalars (:class:`Box`) and their zooms in two dimensions: finer
boxes around every mode (:func:`zoom_boxes`), again where a box's mass moves as its step halves
(:func:`changed_boxes`) or it is too coarse for its mass (:func:`unresolved_boxes`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from scai.inference.grids.resolution import effective_points, resolution_threshold
from scai.models.prior import ScalarGaussian


def uniform_grid(lo: torch.Tensor, hi: torch.Tensor, n: int) -> tuple[torch.Tensor, float]:
    """Product grid of ``n`` points per dimension on ``[lo, hi]`` (one :class:`Box`); returns
    points and the log volume of one cell."""
    box = Box(tuple(lo.tolist()), tuple(hi.tolist()), (n,) * len(lo))
    return box.points(), box.log_cell()


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
    several dimensions what :func:`~scai.inference.grids.windows.zoom_modes` is in one.

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
    there has it on too few points: fewer effective points
    (:func:`~scai.inference.grids.resolution.effective_points`) than
    :func:`~scai.inference.grids.resolution.resolution_threshold` asks, or a thinnest
    direction (the smallest eigenvalue of its covariance there, in steps of the box) narrower
    than one step, as a ridge along which many points lie has. Judged box by box, since a broad
    mode's many points would hide a sharp one's few."""
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
