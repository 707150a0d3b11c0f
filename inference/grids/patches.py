"""Grids laid along a mode's own axes (:class:`Patch`), for a posterior that is a thin
diagonal ridge between a box's points, and how they share the plane with the boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scai.inference.grids.boxes import Box

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
    """Which of the boxes' points ``u [T, d]`` (in the order of
    :func:`~scai.inference.grids.boxes.box_grid`) and of the patch's points
    (:meth:`Patch.points`) to keep, ``([T], [n^d])``, so that every region is gridded
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
