"""Modes and Laplace approximations of the posterior on the unconstrained vector.

Two engines use them. NUTS starts at the mode with the Laplace variances as its initial
inverse mass matrix: with a unit mass matrix its first adaptation window (75 iterations) must
serve coordinates whose posterior scales differ 30-fold (with 200 users, ``log lam`` has sd
~0.007 and ``pi``'s sticks ~0.2), and each of those iterations took ~40-50 leapfrog steps:
measured, half of a chain's gradients. SVI's importance correction puts proposal components
at the modes it finds from several starts.

Simulations share no parameter, so the Hessian is block-diagonal (one ``width x width`` block
per simulation) and ``2 * width`` gradients give every block at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from scai.models.density import MarginalDensity


@dataclass
class Laplace:
    """``N(mode, covariance)`` per simulation: ``mode [S * width]``, ``covariance [S, W, W]``."""

    mode: np.ndarray
    covariance: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """The marginal variances, ``[S * width]`` like ``mode``."""
        return np.diagonal(self.covariance, axis1=1, axis2=2).reshape(-1).copy()


#: :func:`find_mode`'s settings when it only has to find a basin (:func:`find_best_mode`).
ROUGH = {"max_iter": 60, "ftol": 1e-6, "gtol": 1e-3}


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded thread pools, found once per process (each
    ``threadpool_limits`` searches the loaded libraries again: ~6 ms, five times per fit);
    numpy's and SciPy's BLAS are loaded by then (imported here, ~50 ms)."""
    import scipy.optimize  # noqa: F401  (its BLAS loaded before the search)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def find_mode(
    density: MarginalDensity,
    start: np.ndarray | None = None,
    max_iter: int = 200,
    ftol: float = 1e-13,
    gtol: float = 1e-7,
) -> np.ndarray | None:
    """A mode of the log joint (a minimum of ``U``) by L-BFGS from ``start`` (default: the
    prior median), or ``None`` if the optimiser ends at a non-finite point."""
    import scipy.optimize  # here, not at the top: a third of a second that workers rarely need

    x0 = density.initial().double().numpy() if start is None else np.asarray(start, float)
    # One BLAS thread: L-BFGS-B calls BLAS on vectors of a few numbers, and OpenBLAS's threads
    # waking for each call made it ~30x slower per iteration on a busy 2-core machine (3.1 ms
    # against 0.11 ms), ~1 s of a fit's set-up. Same arithmetic, so the same mode.
    with np.errstate(all="ignore"), _blas_controller().limit(limits=1, user_api="blas"):
        result = scipy.optimize.minimize(
            density.value_and_grad,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "ftol": ftol, "gtol": gtol},
        )
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        return None
    return result.x


#: Prior draws L-BFGS starts from besides the prior median (:func:`find_best_mode`), for the
#: mode MCMC's chains start at and are whitened around. Every chain starts there and r-hat
#: cannot see a mode they all share: with 4, ten selfish users under
#: ``essential_goods_shared`` (``benchmarks/known_disagreements.py``) started in a mode 30 nats
#: below the best; with 16, not (~5 ms more on a 23 ms fit of 200 users).
MODE_STARTS = 16
#: :func:`find_best_mode` draws its starts this many at a time.
STARTS_BLOCK = 4
#: At most this many of :func:`mirrored_starts`' moves of the shifts, the smallest.
MIRRORED_STARTS = 8


def find_best_mode(
    density: MarginalDensity,
    starts: int = MODE_STARTS,
    seed: int = 0,
    margin: float = 1.0,
    found: dict[int, list[np.ndarray]] | None = None,
) -> np.ndarray | None:
    """:func:`find_mode` from the prior median, unless the median with every shift at 0
    (:meth:`MarginalDensity.unshifted`), one of ``starts`` draws of the prior (seeded by
    ``seed``), or the best so far with its shifts moved by a difference of two types' ``w``
    (:func:`mirrored_starts`) leads to a mode lower by more than ``margin`` nats (the same mode
    reached from two starts differs by far less, so it is never replaced by its own rounding).
    Each simulation's block is chosen apart (simulations share no parameter). From a draw
    L-BFGS runs loosely (``ROUGH``: enough to tell basins apart); a better basin is then
    polished by :func:`find_mode` from there.

    With several simulations, each is also searched alone, on its own block of the density
    (the table's currencies kept, so a currency it does not play has its prior's shift) with
    the starts a table of one group draws, and keeps the lower of its two modes: a group never
    starts in a worse mode than its own search finds for having other groups beside it (the
    joint search still wins for some groups, by a few nats). Searched only together, L-BFGS's
    shared line searches and the prior draws for the whole table tie each group's basin to the
    others': of 100 groups under ``pooled``, 97 found a better mode alone (up to 23 nats).

    Why several starts: from the prior median L-BFGS can stop in a local mode: on one 64-game
    group (issue 14's kind, latent rationality and a shared shift) 260 nats above the one a
    prior draw finds.

    ``found``, if given, receives every simulation's end points of the searches (``{s: [block
    [W], ...]}``), for :func:`other_modes`."""
    best = _search(density, starts, seed, margin, found)
    S, W = density.coords.n_sims, density.coords.width
    if best is None or S == 1 or starts <= 0:
        return best
    alone = best.reshape(S, W).copy()
    for s in range(S):
        one = MarginalDensity(density.data.sims_subset(torch.tensor([s])), density.hypothesis)
        alone_found: dict[int, list[np.ndarray]] = {}
        block = _search(one, starts, seed, margin, alone_found if found is not None else None)
        if found is not None:
            found.setdefault(s, []).extend(alone_found.get(0, []))
        if block is not None:
            alone[s] = block
    with np.errstate(all="ignore"):
        u_best = density.potentials_and_grad(best)[0]
        u_alone = density.potentials_and_grad(alone.reshape(-1))[0]
    better = np.isfinite(u_alone) & (u_alone < u_best)
    best = best.reshape(S, W)
    best[better] = alone[better]
    return best.reshape(-1)


def _search(
    density: MarginalDensity,
    starts: int,
    seed: int,
    margin: float,
    found: dict[int, list[np.ndarray]] | None = None,
) -> np.ndarray | None:
    """The search of :func:`find_best_mode` on ``density``'s simulations together (its end
    points into ``found``)."""
    S, W = density.coords.n_sims, density.coords.width

    def keep(x: np.ndarray) -> None:
        if found is not None:
            for s, block in enumerate(x.reshape(S, W)):
                found.setdefault(s, []).append(block.copy())

    best = find_mode(density)
    if best is None or starts <= 0:
        return best
    keep(best)
    best = best.reshape(S, W).copy()
    with np.errstate(all="ignore"):
        best_u = density.potentials_and_grad(best.reshape(-1))[0]
    # In blocks of STARTS_BLOCK from one generator: the first draws are the same whatever
    # ``starts``, so more starts search a superset of fewer's (a block of 16 at once would be 16
    # other draws, which here missed a mode 4 found).
    generator = torch.Generator().manual_seed(seed)
    blocks = [
        density.sample_prior(min(STARTS_BLOCK, starts - i), generator)
        for i in range(0, starts, STARTS_BLOCK)
    ]
    draws = list(torch.cat(blocks).double().numpy())
    # first: a narrow mode by a shift of 0 (MarginalDensity.unshifted_starts)
    unshifted = [x for x in density.unshifted_starts() if not torch.equal(x, density.initial())]
    draws[:0] = [x.double().numpy().reshape(S, W) for x in unshifted]

    def start(x: np.ndarray) -> None:  # [S, W]: a better basin polished, per simulation
        nonlocal best_u
        rough = find_mode(density, x.reshape(-1), **ROUGH)
        if rough is None:
            return
        keep(rough)
        with np.errstate(all="ignore"):
            u = density.potentials_and_grad(rough)[0]
        if not np.any(u < best_u - margin):
            return
        mode = find_mode(density, rough)
        if mode is None:
            return
        with np.errstate(all="ignore"):
            u = density.potentials_and_grad(mode)[0]
        better = np.isfinite(u) & (u < best_u - margin)
        best[better] = mode.reshape(S, W)[better]
        best_u = np.where(better, u, best_u)

    for x in draws:
        start(x)
    for x in mirrored_starts(density, best):
        start(x)
    return best.reshape(-1)


def mirrored_starts(density: MarginalDensity, best: np.ndarray) -> list[np.ndarray]:
    """``[S, W]`` starts: ``best`` with every latent currency shift (and the shared one) moved
    by each difference between two policy types' weights on the other's payoff (``w``). A
    shift moves every type's ``w`` alike, so a group read as one type under one shift reads
    as another under the shift moved by their difference: each reading is a mode, and which
    is the better can be missed by every other start (eight selfish users under
    ``essential_goods_shared`` with latent rationality: all ended at a shift of -2.69, where
    they read as altruists, 13.5 nats above the selfish reading at -0.69, which holds the
    posterior's mass; from -2.69 + 2 L-BFGS finds it)."""
    columns = [
        density.columns[site] for site in ("shift", "shift_shared") if site in density.columns
    ]
    if not columns:
        return []
    weights = {p.w for p in density.hypothesis.policies}
    moves = sorted({round(a - b, 9) for a in weights for b in weights if a != b}, key=abs)
    moves = sorted(moves[:MIRRORED_STARTS])  # (the nearest: twelve types of their own w make 132)
    starts = []
    for move in moves:
        x = best.copy()
        for cols in columns:
            x[:, cols] += move
        starts.append(x)
    return starts


@dataclass
class OtherModes:
    """Simulation ``sim``'s modes besides ``best`` that a mode search found: their share of
    the posterior mass by Laplace estimates, the heaviest one's gap (its potential's minimum
    less ``best``'s: negative where it peaks higher), block of ``theta`` and own share, and how
    far they move the posterior mean from ``best``: the largest over ``theta``'s coordinates of
    ``|sum_m share_m (mode_m - best)|`` in standard deviations of ``best``'s Laplace
    approximation (a mode holding 3% of the mass 40 sd away moves it by 1.2 sd, and makes the
    posterior sd ~7 times the mode's own)."""

    sim: int
    share: float
    gap: float
    mode: np.ndarray
    moves: float = 0.0
    #: the heaviest one's own share
    heaviest: float = 0.0


def other_modes(
    density: MarginalDensity,
    best: np.ndarray,
    found: dict[int, list[np.ndarray]],
    within: float = 30.0,
    apart: float = 4.0,
    barrier: float = 10.0,
    known: dict[int, list[np.ndarray]] | None = None,
) -> list[OtherModes]:
    """Per simulation, the modes other than ``best`` among the end points in ``found``
    (:func:`find_best_mode`), and their share of the posterior mass by Laplace estimates
    (``exp(-U) / sqrt(det H)`` at each mode); the result lists the simulations that have one.

    An end point is polished by :func:`find_mode` and counts as another mode if it is then
    more than ``apart`` sd from ``best`` and from the modes kept before it (Mahalanobis distance
    in ``best``'s Laplace metric: an end point that stopped early along a flat direction, an
    unplayed currency's shift, is the same mode), within ``within`` nats of it, a mode
    (positive definite Hessian), not a saddle, and behind a ridge: on the straight path from
    ``best`` the potential rises more than ``barrier`` nats above ``U(best)`` (NUTS crosses a
    ridge of a nat or two; known_disagreements' medicine group, 1.3 nats, sampled as the exact
    engine has it; a narrow mode by shift 0 behind 93 nats, never). An estimate: it flags a
    posterior whose chains, all started at ``best``, may never visit a mode that holds much of
    its mass. ``known`` (``{s: [block, ...]}``): modes counted as they are, without those tests
    (a mode the chains were moved away from: seen from the new start, a one-sided test can miss
    it)."""
    S, W = density.coords.n_sims, density.coords.width
    theta = np.asarray(best, dtype=float).reshape(S, W)
    metric = _laplace_metric(density, theta, apart)
    rough = _distinct_end_points(found, theta, metric)
    log_mass, u = _log_mass(density, theta)
    at = _Best(theta, metric, u, log_mass)
    modes = _polished_modes(density, at, rough, within, barrier)
    _add_known_modes(density, at, modes, known or {})
    return [
        _other_modes_of(s, modes[s], at)
        for s in range(S)
        if modes[s] and np.isfinite(at.log_mass[s])
    ]


class _Metric(NamedTuple):
    """``best``'s Laplace metric: each simulation's block ``H_s [S, W, W]`` of the Hessian of
    ``U`` at ``best``. Two blocks ``x, y`` of simulation ``s`` are apart when their Mahalanobis
    distance exceeds ``apart`` sd: ``(x - y)' H_s (x - y) > apart^2``."""

    blocks: np.ndarray
    apart: float

    def far(self, s: int, x: np.ndarray, y: np.ndarray) -> bool:
        """Whether ``x`` and ``y`` (blocks ``[W]`` of simulation ``s``) are apart."""
        d = x - y
        return bool(d @ self.blocks[s] @ d > self.apart**2)

    def far_from_all(self, s: int, x: np.ndarray, ys: Iterable[np.ndarray]) -> bool:
        """Whether ``x`` is apart from every one of ``ys`` (tested in turn, up to the first
        that is not)."""
        return all(self.far(s, x, y) for y in ys)


class _Best(NamedTuple):
    """The mode every other is measured from: ``theta [S, W]``, its Laplace metric, its
    potentials ``u = U(best) [S]`` and Laplace log masses ``log_mass [S]`` (:func:`_log_mass`)."""

    theta: np.ndarray
    metric: _Metric
    u: np.ndarray
    log_mass: np.ndarray

    def is_new(self, s: int, x: np.ndarray, modes: list[_Mode]) -> bool:
        """Whether ``x`` (a block of simulation ``s``) is apart from ``best`` and from each of
        the ``modes`` kept."""
        return self.metric.far(s, x, self.theta[s]) and self.metric.far_from_all(
            s, x, (mode.block for mode in modes)
        )


class _Mode(NamedTuple):
    """Another mode of one simulation: its Laplace log mass ``-U - log det H / 2``, its gap
    ``U - U(best)`` and its block of ``theta [W]``."""

    log_mass: float
    gap: float
    block: np.ndarray


def _laplace_metric(density: MarginalDensity, best: np.ndarray, apart: float) -> _Metric:
    """The metric of :func:`other_modes`: the Hessian blocks of ``U`` at ``best [S, W]``."""
    with np.errstate(all="ignore"):
        return _Metric(hessian_blocks(density, best.reshape(-1)), apart)  # [S, W, W]


def _log_mass(density: MarginalDensity, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log_mass [S], U [S])`` at ``theta [S, W]``: each simulation's Laplace estimate of the
    log posterior mass of the mode at ``theta``, ``-U - log det H_s / 2`` (``H_s`` its Hessian
    block), ``-inf`` where ``H_s`` is not positive definite or either term is not finite; and
    its potential ``U``."""
    with np.errstate(all="ignore"):
        u = density.potentials_and_grad(theta.reshape(-1))[0]
        sign, logdet = np.linalg.slogdet(hessian_blocks(density, theta.reshape(-1)))
    ok = (sign > 0) & np.isfinite(u) & np.isfinite(logdet)
    return np.where(ok, -u - 0.5 * logdet, -np.inf), u


def _distinct_end_points(
    found: dict[int, list[np.ndarray]], best: np.ndarray, metric: _Metric
) -> list[list[np.ndarray]]:
    """Per simulation of ``best [S, W]``, its finite end points in ``found`` (in their order)
    apart from ``best`` and from the ones kept before them."""
    # before polishing: fewer to polish
    rough: list[list[np.ndarray]] = []
    for s in range(len(best)):
        kept: list[np.ndarray] = []
        for x in found.get(s, []):
            if (
                np.all(np.isfinite(x))
                and metric.far(s, x, best[s])
                and metric.far_from_all(s, x, kept)
            ):
                kept.append(x)
        rough.append(kept)
    return rough


def _polished_modes(
    density: MarginalDensity,
    best: _Best,
    rough: list[list[np.ndarray]],
    within: float,
    barrier: float,
) -> list[list[_Mode]]:
    """Per simulation, the modes :func:`find_mode` polishes its ``rough`` end points to, in
    their order, kept where the mode's Laplace mass is finite, ``U - U(best) <= within``, the
    ridge on the path from ``best`` (:func:`_ridge`) is above ``barrier`` and the mode is apart
    from ``best`` and from the modes kept before it. Every simulation's ``j``-th end point is
    polished in one search (the others stay at ``best``); where that search ends at a
    non-finite point, none of them is kept."""
    S, W = best.theta.shape
    modes: list[list[_Mode]] = [[] for _ in range(S)]
    for j in range(max((len(r) for r in rough), default=0)):  # every simulation's j-th at once
        which = [s for s in range(S) if j < len(rough[s])]
        theta = best.theta.copy()
        for s in which:
            theta[s] = rough[s][j]
        polished = find_mode(density, theta.reshape(-1))
        if polished is None:
            continue
        polished = polished.reshape(S, W)
        mass, u = _log_mass(density, polished)
        height = _ridge(density, best, polished, which)
        for s in which:
            if not np.isfinite(mass[s]) or u[s] - best.u[s] > within or height[s] <= barrier:
                continue
            if best.is_new(s, polished[s], modes[s]):
                modes[s].append(_Mode(float(mass[s]), float(u[s] - best.u[s]), polished[s]))
    return modes


def _ridge(density: MarginalDensity, best: _Best, ends: np.ndarray, which: list[int]) -> np.ndarray:
    """``[S]``: the highest potential above ``U(best)`` on the straight path from ``best`` to
    ``ends [S, W]`` (the simulations ``which``; the others stay at ``best``), at 41 evenly
    spaced points ``(1 - a) best + a ends``, ``a`` in ``[0, 1]``."""
    top = np.full(len(best.theta), -np.inf)
    for a in np.linspace(0.0, 1.0, 41):
        theta = best.theta.copy()
        theta[which] = (1 - a) * best.theta[which] + a * ends[which]
        with np.errstate(all="ignore"):
            top = np.fmax(top, density.potentials_and_grad(theta.reshape(-1))[0])
    return top - best.u


def _add_known_modes(
    density: MarginalDensity,
    best: _Best,
    modes: list[list[_Mode]],
    known: dict[int, list[np.ndarray]],
) -> None:
    """Append to ``modes`` each block of ``known`` (``{s: [block, ...]}``) whose Laplace mass
    is finite and which is apart from the modes kept before it, without the other tests of
    :func:`_polished_modes`."""
    for s, blocks in known.items():
        for x in blocks:
            theta = best.theta.copy()
            theta[s] = x
            mass, u = _log_mass(density, theta)
            if np.isfinite(mass[s]) and best.metric.far_from_all(
                s, x, (mode.block for mode in modes[s])
            ):
                modes[s].append(
                    _Mode(float(mass[s]), float(u[s] - best.u[s]), np.asarray(x, float))
                )


def _other_modes_of(s: int, modes: list[_Mode], best: _Best) -> OtherModes:
    """Simulation ``s``'s summary of its other ``modes``: with ``m_0 = best``'s Laplace log
    mass and ``m_i`` theirs, each one's share ``exp(m_i) / (exp(m_0) + sum_j exp(m_j))``; their
    move of the mean, ``max_c |sum_i share_i (mode_i - best)_c| / sd_c`` with ``sd`` the
    square roots of the diagonal of ``H^-1`` (``best``'s Laplace covariance; 0 unless every
    ``sd`` is positive); and the heaviest mode's gap, block and share."""
    masses = np.array([mode.log_mass for mode in modes])
    total = np.logaddexp(best.log_mass[s], np.logaddexp.reduce(masses))
    shares = np.exp(masses - total)
    shift = sum(w * (mode.block - best.theta[s]) for w, mode in zip(shares, modes, strict=True))
    with np.errstate(all="ignore"):
        sd = np.sqrt(np.diagonal(np.linalg.inv(best.metric.blocks[s])))
    moves = float(np.nanmax(np.abs(shift) / sd)) if np.all(sd > 0) else 0.0
    k = int(np.argmax(masses))
    heaviest = modes[k]
    return OtherModes(s, float(shares.sum()), heaviest.gap, heaviest.block, moves, float(shares[k]))


def hessian_blocks(density: MarginalDensity, at: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """``[S, W, W]``: each simulation's block of the Hessian of ``U`` at ``at``, by central
    differences of the gradient, symmetrised."""
    S, W = density.coords.n_sims, density.coords.width
    hessian = np.empty((S, W, W))
    for j in range(W):
        delta = np.zeros((S, W))
        delta[:, j] = step
        up = density.value_and_grad(at + delta.reshape(-1))[1].reshape(S, W)
        down = density.value_and_grad(at - delta.reshape(-1))[1].reshape(S, W)
        hessian[:, :, j] = (up - down) / (2 * step)
    return 0.5 * (hessian + hessian.transpose(0, 2, 1))


def laplace(
    density: MarginalDensity,
    start: np.ndarray | None = None,
    min_precision: float | None = None,
    mode: np.ndarray | None = None,
) -> Laplace | None:
    """The Laplace approximation at the mode found from ``start`` (:func:`find_mode`), or at
    ``mode`` if given (found already, e.g. by :func:`find_best_mode`).

    ``min_precision=None``: ``None`` unless every block is positive definite (a proper mode).
    A number: the blocks' eigenvalues are floored at it, so flat or non-concave directions get
    a finite, wide scale (``sd <= min_precision ** -0.5``)."""
    if mode is None:
        mode = find_mode(density, start)
    if mode is None:
        return None
    hessian = hessian_blocks(density, mode)
    if min_precision is None:
        try:
            np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError:
            return None
        return Laplace(mode, np.linalg.inv(hessian))
    return Laplace(mode, floored_inverse(hessian, min_precision))


def floored_inverse(hessian: np.ndarray, floor: float) -> np.ndarray:
    """``[S, W, W]``: the inverse of each symmetric block with its eigenvalues first raised to
    at least ``floor``; a block with a non-finite entry (the curvature at a point where the
    log density's derivatives overflow: a start of a search that failed, drawn from a Beta
    prior of parameters near 0) is ``I / floor``, the widest scale the floor allows (LAPACK's
    ``eigh`` does not converge on it)."""
    finite = np.isfinite(hessian).all(axis=(-2, -1))
    safe = np.where(finite[:, None, None], hessian, np.eye(hessian.shape[-1]) * floor)
    values, vectors = np.linalg.eigh(safe)
    return (vectors / np.maximum(values, floor)[:, None, :]) @ vectors.transpose(0, 2, 1)
