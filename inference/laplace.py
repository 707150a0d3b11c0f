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
from dataclasses import dataclass

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
    best = np.asarray(best, dtype=float).reshape(S, W)
    with np.errstate(all="ignore"):
        metric = hessian_blocks(density, best.reshape(-1))  # [S, W, W]

    def far(s: int, x: np.ndarray, y: np.ndarray) -> bool:
        d = x - y
        return bool(d @ metric[s] @ d > apart**2)

    def log_mass(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            u = density.potentials_and_grad(theta.reshape(-1))[0]
            sign, logdet = np.linalg.slogdet(hessian_blocks(density, theta.reshape(-1)))
        ok = (sign > 0) & np.isfinite(u) & np.isfinite(logdet)
        return np.where(ok, -u - 0.5 * logdet, -np.inf), u

    # the end points far from best and from each other, before polishing (fewer to polish)
    rough: list[list[np.ndarray]] = []
    for s in range(S):
        kept: list[np.ndarray] = []
        for x in found.get(s, []):
            if np.all(np.isfinite(x)) and far(s, x, best[s]) and all(far(s, x, y) for y in kept):
                kept.append(x)
        rough.append(kept)

    def ridge(ends: np.ndarray, which: list[int]) -> np.ndarray:
        """``[S]``: the highest potential above ``U(best)`` on the straight path from ``best``
        to ``ends`` (the simulations ``which``; the others stay at ``best``)."""
        top = np.full(S, -np.inf)
        for a in np.linspace(0.0, 1.0, 41):
            theta = best.copy()
            theta[which] = (1 - a) * best[which] + a * ends[which]
            with np.errstate(all="ignore"):
                top = np.fmax(top, density.potentials_and_grad(theta.reshape(-1))[0])
        return top - u_best

    base, u_best = log_mass(best)
    modes: list[list[tuple[float, float, np.ndarray]]] = [[] for _ in range(S)]
    for j in range(max((len(r) for r in rough), default=0)):  # every simulation's j-th at once
        theta = best.copy()
        for s in range(S):
            if j < len(rough[s]):
                theta[s] = rough[s][j]
        polished = find_mode(density, theta.reshape(-1))
        if polished is None:
            continue
        polished = polished.reshape(S, W)
        mass, u = log_mass(polished)
        which = [s for s in range(S) if j < len(rough[s])]
        height = ridge(polished, which)
        for s in which:
            if not np.isfinite(mass[s]) or u[s] - u_best[s] > within or height[s] <= barrier:
                continue
            x = polished[s]
            if far(s, x, best[s]) and all(far(s, x, y) for _, _, y in modes[s]):
                modes[s].append((float(mass[s]), float(u[s] - u_best[s]), x))
    for s, blocks in (known or {}).items():
        for x in blocks:
            theta = best.copy()
            theta[s] = x
            mass, u = log_mass(theta)
            if np.isfinite(mass[s]) and all(far(s, x, y) for _, _, y in modes[s]):
                modes[s].append((float(mass[s]), float(u[s] - u_best[s]), np.asarray(x, float)))
    out = []
    for s in range(S):
        if not modes[s] or not np.isfinite(base[s]):
            continue
        masses = np.array([m for m, _, _ in modes[s]])
        total = np.logaddexp(base[s], np.logaddexp.reduce(masses))
        shares = np.exp(masses - total)
        shift = sum(w * (x - best[s]) for w, (_, _, x) in zip(shares, modes[s], strict=True))
        with np.errstate(all="ignore"):
            sd = np.sqrt(np.diagonal(np.linalg.inv(metric[s])))
        moves = float(np.nanmax(np.abs(shift) / sd)) if np.all(sd > 0) else 0.0
        k = int(np.argmax(masses))
        _, gap, mode = modes[s][k]
        out.append(OtherModes(s, float(shares.sum()), gap, mode, moves, float(shares[k])))
    return out


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
