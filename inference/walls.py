"""Walls in the posterior of a currency shift, and the coordinates in which NUTS does not hit them.

**The wall.** A selfish proposer's offer of 0 is its best offer only while a responder of its
own norm accepts 0, i.e. while the responder's log-odds ``lam * delta * pot`` is well above 0
(:mod:`scai.models.policies`). Where it is not, the probability of every observed 0 offer
collapses: on the 64 games of issue 14 the potential climbs ~2,400 nats as the shift falls from
the mode (0.064) to 0.004, rising like ``exp(-kappa delta)`` with ``kappa ~ 180-280`` while the
posterior is ~0.08 wide and more. A second wall stands near ``delta ~ 1``, where a selfish
type starts to value the other's payoff like its own and 0 offers become impossible again.
Both are in the model (the NumPy and torch densities agree on them to 1e-12). The lower one
stands where ``v = lam * delta`` crosses a fixed value (measured on the 64 games: the
potential is 5 nats above its minimum at ``v = 0.155-0.160`` for every ``lam`` from 3 to 10),
so in ``(log lam, delta)`` it is a hyperbola that no linear map straightens. That is the wall
of offers of 0; where the selfish offer is ``o > 0``, a responder of its norm accepts it while
``lam (pot - o) (delta + o / (pot - o))`` is well above 0, and the wall stands at a fixed
``lam * (delta - base)``, ``base ~ -o / (pot - o)``: at a fixed ``delta`` as ``lam`` grows
(:func:`_lower_base` measures ``base``).

**The map** (:class:`WallCoordinates`), per simulation with a wall, on the unconstrained vector
``theta`` of :class:`~scai.models.prior.Coordinates`: a shift with a wall is sampled as ``w``
with ``delta = base + foot / lam + F(w)``, where ``foot`` is the lower wall's foot in ``v`` (so
the wall stands still at ``w ~ 0`` whatever ``lam``). Below, ``F = L(z) = scale * softplus(z) -
log(1 + softplus(-z - m)) / kappa`` with ``m = log(scale * kappa)``
(:func:`scai.models.kernels.wall_lower`): linear in the bulk (``F ~ scale * z``: untouched), a
log scale just above the foot (``F ~ scale * e^z``: the wall, a near-hard floor, seen from above
like a positive quantity's log), and logarithmic below the foot, so the wall ``e^{kappa (foot -
delta)}`` grows like ``|z|`` (like a power of it where it steepens beyond ``kappa``; a map
linear below the foot, where the wall grows like ``e^{|z|}``, diverged on walls that steepen:
`pooled` on one 200-user group, 127 divergences against 5). Every term of the potential in
``z``, the log Jacobian included, then has curvature of order 1 (a compression that turned
logarithmic at the knee itself, over ``1 / (scale * kappa) ~ 0.03`` sd, put a curvature spike of
40-500, growing like ``lam^2``, at the knee: what bounded NUTS's step). Above, ``z = H(w) = Y -
P(Y - w)``, the mirror image (``P`` the same map with ``scale = 1``, in units of the sd, the
rate ``scale * kappa_hi``), its foot ``Y`` where the upper wall's stands. The wall's foot is
where the likelihood has risen ``FOOT_RISE`` nats beyond its knee, the knee where the
likelihood's force times its rate of growth, both in units of the posterior's width ``scale``,
reaches ``STEEP`` (a Gaussian side's product is 1 at every distance: never a wall); ``kappa`` is
the wall's fastest rate from the knee on (:func:`find_walls`). The lower wall stands in ``lam *
delta``, so its rate follows ``lam`` (``kappa = kappa_mode * lam / lam_mode``); the upper one
stands at a fixed ``delta`` (measured on the 64 games: ``delta ~ 1`` for ``log lam`` from 1.2 to
2.4), so its foot stays there while the anchor moves with ``lam`` (its rate follows ``lam`` too:
the offers' utilities differ by ``lam (1 - delta) o``). The other shifts of the simulation move
with the anchor too (``delta = base + foot / lam + phi``); with currency shifts and a shared one
(``pooled``), the shared one is sampled given them, ``delta_0 = mean_c(delta_c - mu e_c) + (tau
/ sqrt(C)) xi``, which is how the prior ties it to them whatever the walls do to the currencies'
shifts.

Nothing is truncated: every ``theta`` has one ``phi``. The density in ``phi`` carries the
Jacobian, so the draws mapped back are draws of the same posterior; the model, the prior and
the reported sites are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from scai.models.density import MarginalDensity

__all__ = ["Wall", "WallCoordinates", "find_walls"]

#: The knee: where the likelihood's force ``f = |dU/d delta| * scale`` times its rate of growth
#: ``d log f / d delta * scale`` reaches this. A Gaussian side's stays 1 (``f = k``, rate ``1 /
#: k`` at ``k`` sd): never a wall; an exponential wall's reaches it where ``f ~ 10 / (kappa *
#: scale)``, below a typical force of the bulk.
STEEP = 10.0
#: Where a wall's force (times the posterior's width) passes this, its rate no longer matters.
WALL_END = 1e4
#: Walls are looked for up to this many posterior sd (Laplace) from the mode: the bulk beside
#: a wall is often flat and much wider than the mode's curvature says.
SEARCH_SD = 40.0
#: Walls on both sides whose knees stand closer than this many posterior sd (Laplace) are the
#: two sides of the mode itself, with no bulk beside either: no map (on one 200-user group of
#: ``pooled_latent_lam``, knees 0.02 sd apart at ``delta ~ 0.95``, the map turned the steep
#: sides into long flat tails: ESS 48 and 371 divergences, against 640 and none without it;
#: the gaps of every other group measured, in the tests and the benchmark, are 3.6-25 sd).
MIN_GAP = 1.0
#: A wall's foot, where the map below turns from a log scale to the wall's own
#: (:func:`scai.models.kernels.wall_lower`):
#: where the likelihood has risen this many nats beyond the knee.
FOOT_RISE = 1.0


#: The fields of :class:`Wall` that its map reads, in the order of the compiled kernels'
#: arrays (:func:`scai.models.kernels.wall_offset`).
WALL_FIELDS = ("knee", "kappa_lo", "kappa_hi", "distance", "scale", "lam")


@dataclass(frozen=True)
class Wall:
    """The wall(s) of one shift (column ``column`` of the flat ``theta``, simulation ``sim``):
    the foot it is anchored at, in ``v = lam * delta`` (field ``knee``: the lower wall's foot
    if there is one, else the upper one's), the rates of the walls below and above
    (``kappa_lo``, ``kappa_hi``, per unit of ``delta`` at the mode; 0: no wall), the upper
    foot's distance above the anchor (``distance``, in ``delta`` at the mode), the posterior's
    sd of ``delta`` (``scale``) and ``lam`` at the mode."""

    column: int
    sim: int
    knee: float
    kappa_lo: float
    kappa_hi: float
    distance: float
    scale: float
    lam: float
    #: the part of the anchor that stays put when ``lam`` moves: the anchor (in ``delta``)
    #: is ``base + knee / lam``; 0 for a wall at a fixed ``lam * delta`` (module docstring),
    #: the threshold ``-o / (pot - o)`` where the wall is a responder's accepting offer ``o``
    #: (the selfish norm shifted below 0): measured by :func:`find_walls` at two ``lam``
    base: float = 0.0

    def offset(self, w: np.ndarray, ratio: np.ndarray | float = 1.0):
        """``F(w) = L(H(w))`` (module docstring) when ``lam`` is ``ratio`` times its value at
        the mode: ``(F, log F', d log F' / dw, dF / d log lam, d log F' / d log lam)``, each
        of ``w``'s shape (compiled: :func:`scai.models.kernels.wall_offset`; below, ``L`` is
        :func:`~scai.models.kernels.wall_lower`, and above, ``H(w) = Y - P(Y - w)``, the
        mirror image in units of the sd, ``P`` the same map with ``a = 1``, its foot ``Y``
        ``distance`` above the anchor at the mode, moving as the anchor ``knee / lam``
        does)."""
        from scai.models.kernels import wall_offsets

        w, ratio = np.broadcast_arrays(np.asarray(w, dtype=np.float64), ratio)
        out = wall_offsets(
            np.ascontiguousarray(w, dtype=np.float64).reshape(-1),
            np.ascontiguousarray(ratio, dtype=np.float64).reshape(-1),
            self.fields(),
        )
        return tuple(row.reshape(w.shape) for row in out)

    def fields(self) -> np.ndarray:
        """``[6]``: :data:`WALL_FIELDS`' values."""
        return np.array([getattr(self, name) for name in WALL_FIELDS], dtype=np.float64)

    def w(self, offset: np.ndarray, ratio: np.ndarray | float = 1.0) -> np.ndarray:
        """The inverse of :meth:`offset` (bisection: ``F`` is increasing)."""
        target = np.asarray(offset, dtype=np.float64)
        lo, hi = np.full(target.shape, -1.0), np.full(target.shape, 1.0)
        for _ in range(2100):  # widen the bracket until it holds the target
            low = self.offset(lo, ratio)[0] > target
            high = self.offset(hi, ratio)[0] < target
            if not (low.any() or high.any()):
                break
            lo, hi = np.where(low, 2 * lo, lo), np.where(high, 2 * hi, hi)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            below = self.offset(mid, ratio)[0] < target
            new_lo, new_hi = np.where(below, mid, lo), np.where(below, hi, mid)
            # A step that changes nothing is a fixed point (every later step repeats it): the
            # bracket is down to neighbouring floats, typically after ~60 steps, not 200.
            if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
                break
            lo, hi = new_lo, new_hi
        return 0.5 * (lo + hi)


def _shift_columns(density: MarginalDensity) -> list[int]:
    """The columns (within a simulation's block) of the latent shifts: ``shift_shared`` and
    each ``shift[c]``."""
    cols = []
    for site in ("shift_shared", "shift"):
        if site in density.columns:
            cols.extend(range(density.columns[site].start, density.columns[site].stop))
    return cols


def _wall_columns(density: MarginalDensity) -> list[int]:
    """The shifts the data see directly (each currency's, else the shared one): where walls
    stand."""
    site = "shift" if "shift" in density.columns else "shift_shared"
    if site not in density.columns:
        return []
    return list(range(density.columns[site].start, density.columns[site].stop))


def _likelihood_slope(density: MarginalDensity, theta: np.ndarray) -> np.ndarray:
    """``d(-log likelihood)/dtheta`` (the potential's gradient without the prior's)."""
    S, W = density.coords.n_sims, density.coords.width
    _, grad = density.value_and_grad(theta)
    _, prior_grad = density.prior.log_prob_unconstrained_np(
        theta.reshape(S, W), density.coords, density._essential_np
    )
    return grad + prior_grad.reshape(-1)


def find_walls(
    density: MarginalDensity, mode: np.ndarray, sd: np.ndarray, lam: np.ndarray
) -> list[Wall]:
    """The walls of each simulation's shifts around the mode ``mode`` (flat ``theta``), where
    the posterior sd of ``theta`` is ``sd`` (flat, e.g. Laplace's) and the rationality is
    ``lam [S]``.

    For each shift the data see, on each side of the mode: step the shift away (the other
    coordinates kept) until the likelihood's force ``f = |dU/d delta| * scale`` times its rate
    of growth ``d log f / d delta * scale`` reaches ``STEEP`` (within ``SEARCH_SD`` sd), bisect
    for that knee, then follow the wall out until ``f`` passes ``WALL_END`` and keep its
    fastest rate ``kappa`` (compressing a wall as fast as it steepens, not slower: a rate
    measured at the knee alone left ~1 divergence per chain) and its foot, where the
    likelihood has risen ``FOOT_RISE`` nats beyond the knee."""
    S, W = density.coords.n_sims, density.coords.width
    walls = []
    for s in range(S):
        for j in _wall_columns(density):
            col = s * W + j
            scale = sd[col]
            below = _find_side(density, mode, col, 1, scale)
            above = _find_side(density, mode, col, -1, scale)
            if below is None and above is None:
                continue
            if below is not None and above is not None and above[0] - below[0] < MIN_GAP * scale:
                continue  # a narrow interval, not a wall beside a bulk (MIN_GAP)
            # anchored at the lower wall's foot (the map turns there), else the upper one's
            anchor = below[2] if below is not None else above[2]
            distance = 0.0 if below is None or above is None else above[2] - anchor
            base = _lower_base(density, mode, col, s, scale, lam[s], below)
            walls.append(
                Wall(
                    col,
                    s,
                    (anchor - base) * lam[s],
                    0.0 if below is None else below[1],
                    0.0 if above is None else above[1],
                    distance,
                    scale,
                    float(lam[s]),
                    base,
                )  # fmt: skip
            )
    return walls


#: How far (in log lam) from the mode :func:`_lower_base` measures the lower wall's foot again.
BASE_STEP = 0.3
#: How far beyond the span of the two kinds of wall (in shares of it) a second foot may lie and
#: still be taken for the same wall; farther, :func:`_lower_base` is 0.
BASE_SLACK = 0.25


def _lower_base(
    density: MarginalDensity, mode: np.ndarray, col: int, s: int, scale: float, lam: float, below
) -> float:
    """The fixed part ``base`` of the lower wall's foot ``base + c / lam``: the foot measured
    again at ``lam * exp(BASE_STEP)``. Between the two kinds of wall, the second foot lies
    between the first, ``f`` (a wall at a fixed ``delta``: ``base = f``), and ``f`` times the
    ratio of the two ``lam`` (a fixed ``lam * delta``: ``base = 0``); ``base`` is ``f`` times
    the share of the way from the latter to the former (a little beyond either end: the feet
    are measured, not solved for). 0 without a latent ``lam`` or a lower wall, where the
    second foot is not found, or where it lies far outside that span (the other sites held at
    the mode, it can be another feature: under ``pooled_latent_lam``, 200 users, a foot at 0.03
    was found again at -1.0, a base of -3.9, and NUTS diverged; a wall of both kinds at once,
    ``base`` and ``c`` of opposite signs beyond the slack, is left at 0 as well, as before).
    A selfish proposer's offer ``o`` is best while a responder of its norm accepts it,
    ``lam * (pot - o) * (delta + o / (pot - o))`` well above 0: the wall stands
    at a fixed ``lam * (delta - base)``, ``base = -o / (pot - o)``, which is 0 only for ``o = 0``
    (four selfish users offering 15 of 87 under ``pooled``: the wall at ``delta ~ -0.2`` for
    every ``lam``; anchored at ``knee / lam`` instead, the bulk at twice the mode's ``lam`` lay
    ~e^400 sd below the wall in ``phi``, and NUTS gave ``lam`` 7.1 (sd 0.5) where the posterior
    has 9.4 (sd 2.3))."""
    if below is None or not density.coords.latent_lam:
        return 0.0
    moved = mode.copy()
    moved[s * density.coords.width + density.columns["lam"].start] += BASE_STEP
    again = _find_side(density, moved, col, 1, scale)
    if again is None:
        return 0.0
    first, second = below[2], again[2]
    span = first * (np.exp(-BASE_STEP) - 1)  # the second foot's move for base = 0
    if abs(span) < 1e-12:  # a foot at 0: either kind of wall, base 0
        return 0.0
    toward_zero = (second - first) / span  # 0: a fixed delta; 1: a fixed lam * delta
    if not -BASE_SLACK <= toward_zero <= 1 + BASE_SLACK:
        return 0.0
    return float(first * (1 - toward_zero))


def _find_side(
    density: MarginalDensity, mode: np.ndarray, col: int, side: int, scale: float
) -> tuple[float, float, float] | None:
    """``(knee in delta, kappa per unit of delta, foot in delta)`` of a wall on ``side`` of
    the mode (+1: below), or ``None`` (:func:`find_walls`)."""
    h = 0.01 * scale

    def force(delta: float) -> float:
        theta = mode.copy()
        theta[col] = delta
        with np.errstate(all="ignore"):
            g = _likelihood_slope(density, theta)[col]
        # pushing back towards the mode, times the posterior's width
        return float(side * -g) * scale if np.isfinite(g) else np.inf

    def steepness(k: float) -> tuple[float, float]:
        """``(force * scale * rate * scale, rate)`` ``k`` sd from the mode."""
        delta = mode[col] - side * k * scale
        f0, f1 = force(delta), force(delta - side * h)
        if not (f0 > 0 and f1 > 0 and np.isfinite(f0) and np.isfinite(f1)):
            return (np.inf if not np.isfinite(f1) else 0.0), np.inf
        rate = np.log(f1 / f0) / h
        return f0 * rate * scale, rate

    steps = np.concatenate([np.arange(0.25, 4.01, 0.25), 4 * 1.1 ** np.arange(1, 100)])
    near, far = 0.0, None
    for k in steps[steps <= SEARCH_SD]:
        if steepness(k)[0] >= STEEP:
            far = k
            break
        near = k
    if far is None:
        return None
    for _ in range(40):
        mid = 0.5 * (near + far)
        if steepness(mid)[0] >= STEEP:
            far = mid
        else:
            near = mid
    knee = mode[col] - side * far * scale
    # The wall's rate: the fastest growth of its force from the knee on, until the force is
    # far beyond what any trajectory meets (walls steepen: on the 64 games of issue 14 the
    # lower one's rate climbs from ~170 at the knee to ~280).
    rate = steepness(far)[1]
    if not np.isfinite(rate):
        return None
    k, fastest = far, rate
    # The wall's foot: where the likelihood has risen FOOT_RISE nats from the knee.
    rise, f_prev, foot = 0.0, force(knee), None
    for _ in range(200):
        step = 0.5 / (fastest * scale)
        k += step
        f = force(mode[col] - side * k * scale)
        rise += 0.5 * (f + f_prev) * step
        f_prev = f
        if foot is None and rise >= FOOT_RISE:
            foot = mode[col] - side * k * scale
        if f >= WALL_END or k > 2 * SEARCH_SD:
            break
        local = steepness(k)[1]
        if np.isfinite(local):
            fastest = max(fastest, local)
    return float(knee), float(fastest), float(knee if foot is None else foot)


class WallCoordinates:
    """The marginal density on the coordinates ``phi`` of the module docstring. Same interface
    as the density where the Laplace approximation and NUTS read it (``value_and_grad``,
    ``coords``, ``initial``); :meth:`theta` and :meth:`phi` map between the two. Without
    walls it is the identity."""

    def __init__(self, density: MarginalDensity, walls: list[Wall]):
        self.density = density
        coords = self.coords = density.coords
        self.walls = walls
        S, W = coords.n_sims, coords.width
        cols = density.columns
        #: currency shifts and a shared one: the shared one is sampled given the others
        self.pooled = coords.latent_shared and coords.latent_shift
        shifts = _wall_columns(density) if self.pooled else _shift_columns(density)
        sims = sorted({w.sim for w in walls})
        # Every shift of a simulation with a wall moves with its knee: its own, else the mean.
        moved, knee = [], []
        for s in sims:
            own = {w.column: w.knee for w in walls if w.sim == s}
            mean = float(np.mean(list(own.values())))
            for j in shifts:
                moved.append(s * W + j)
                knee.append(own.get(s * W + j, mean))
        self.moved = np.array(moved, dtype=int).reshape(len(sims), len(shifts))
        self.knee = np.array(knee, dtype=np.float64).reshape(self.moved.shape)
        # the anchors' fixed parts (Wall.base): theta = the kernel's map of phi + offset, a
        # constant (the Jacobian and the gradient's pull-back are the kernel's)
        self.translation = np.zeros(coords.size)
        for s in sims:
            own = {w.column: w.base for w in walls if w.sim == s}
            mean = float(np.mean(list(own.values())))
            for j in shifts:
                self.translation[s * W + j] = own.get(s * W + j, mean)
        lam = cols["lam"].start if coords.latent_lam else 0
        self.lam_col = np.array([s * W + lam for s in sims], dtype=int)
        self.lam_of_sim = [s * W + lam for s in range(S)]
        self.lam_fixed = float(density.hypothesis.rationality)
        if self.pooled:
            self.shared_col = np.array([s * W + cols["shift_shared"].start for s in sims], int)
            prior = density.prior
            self.mean_shift = prior.essential_shift * density._essential_np  # [C]
            # delta_0 | delta_c ~ N(mean_c(delta_c - mu e_c), tau^2 / C), its own prior aside
            self.shared_sd = prior.currency_scale / np.sqrt(len(shifts))
            for s, col in zip(sims, self.shared_col, strict=True):  # delta_0: mean_c(delta_c)
                self.translation[col] = self.translation[[s * W + j for j in shifts]].mean()
        # the compiled map's arrays (scai.models.kernels.walls_forward)
        self._fields = np.array([w.fields() for w in walls], dtype=np.float64).reshape(-1, 6)
        self._wall_cols = np.array([(w.column, w.sim) for w in walls], dtype=np.int64)
        self._wall_cols = self._wall_cols.reshape(-1, 2)
        self._lam_of_sim = np.array(self.lam_of_sim, dtype=np.int64)
        self._moved = self.moved.astype(np.int64)
        self._lam_col = self.lam_col.astype(np.int64)
        self._shared_col = self.shared_col.astype(np.int64) if self.pooled else self._lam_col[:0]
        self._mean_shift = self.mean_shift if self.pooled else np.zeros(self.moved.shape[1])

    def _knee_shift(self, x: np.ndarray) -> np.ndarray:
        """``knee / lam`` of each moved column, ``[..., sims, shifts]`` (``lam`` read from
        ``x``, ``theta`` or ``phi``: its column is the same in both)."""
        if self.coords.latent_lam:
            return self.knee * np.exp(-x[..., self.lam_col])[..., None]
        return self.knee / self.lam_fixed

    def _ratio(self, x: np.ndarray, wall: Wall):
        """``lam / lam_mode`` in ``wall``'s simulation (``lam`` read from ``theta`` or ``phi``)."""
        if not self.coords.latent_lam:
            return 1.0
        return np.exp(x[..., self.lam_of_sim[wall.sim]]) / wall.lam

    def theta(self, phi: np.ndarray) -> np.ndarray:
        """``theta [..., S * W]`` of ``phi [..., S * W]``."""
        return self._forward(phi)[0]

    def _forward(self, phi: np.ndarray):
        """``theta`` and what the gradient needs: ``dtheta_j / dphi_j`` of the walls' columns,
        each simulation's log Jacobian ``[..., S]``, its derivative, and the walls' ``d theta_j
        / d log lam`` (compiled: :func:`scai.models.kernels.walls_forward`). Pooled,
        ``delta_0 = mean_c(delta_c - mu e_c) + shared_sd * xi``: its Jacobian is the constant
        ``shared_sd``, left out of the potential."""
        from scai.models.kernels import walls_forward

        phi = np.asarray(phi, dtype=np.float64)
        rows = np.ascontiguousarray(phi.reshape(-1, phi.shape[-1]))
        theta, slope, log_jac, d_log_jac, d_lam = walls_forward(
            rows,
            self._fields,
            self._wall_cols,
            self._lam_of_sim,
            self.coords.latent_lam,
            self.lam_fixed,
            self._moved,
            self.knee,
            self._lam_col,
            self.pooled,
            self._shared_col,
            self._mean_shift,
            self.shared_sd if self.pooled else 0.0,
        )
        batch = phi.shape[:-1]
        return (
            theta.reshape(phi.shape) + self.translation,
            slope.reshape(phi.shape),
            log_jac.reshape(*batch, -1),
            d_log_jac.reshape(phi.shape),
            d_lam.reshape(phi.shape),
        )

    def phi(self, theta: np.ndarray) -> np.ndarray:
        """The inverse: ``phi`` of ``theta [..., S * W]``."""
        theta = np.asarray(theta, dtype=np.float64) - self.translation
        phi = np.array(theta, dtype=np.float64, copy=True)
        if self.moved.size:
            if self.pooled:
                mean = (theta[..., self.moved] - self.mean_shift).mean(-1)
                phi[..., self.shared_col] = (theta[..., self.shared_col] - mean) / self.shared_sd
            phi[..., self.moved] -= self._knee_shift(theta)
        for wall in self.walls:
            phi[..., wall.column] = wall.w(phi[..., wall.column], self._ratio(theta, wall))
        return phi

    def initial(self):
        return self.density.initial()

    def tile(self, density: MarginalDensity, n: int) -> WallCoordinates:
        """The same map for ``density``, the density of this one's data tiled ``n`` times
        (:meth:`~scai.models.layout.GroupData.tile`: copy ``i`` of simulation ``s`` is
        simulation ``i * S + s``), each copy with the walls of its simulation."""
        S, W = self.coords.n_sims, self.coords.width
        walls = [
            replace(wall, column=wall.column + i * S * W, sim=wall.sim + i * S)
            for i in range(n)
            for wall in self.walls
        ]
        return WallCoordinates(density, walls)

    def value_and_grad(
        self, phi: np.ndarray, prototype: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """``(U'(phi), dU'/dphi)`` with ``U'(phi) = U(theta(phi)) - log |dtheta / dphi|`` (the
        map is triangular: ``lam`` first, then each shift from ``lam`` and its own ``phi``,
        then the shared shift from the others; ``prototype``: as
        :meth:`potentials_and_grad`)."""
        values, grad = self.potentials_and_grad(phi, prototype)
        return float(values.sum()), grad

    def potentials_and_grad(
        self, phi: np.ndarray, prototype: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(U'_s [S], dU'/dphi)``: :meth:`value_and_grad` per simulation (the map of a
        simulation reads only its own coordinates), the gradient of their sum (``prototype``:
        as :meth:`~scai.models.density.MarginalDensity.potentials_and_grad`)."""
        if not self.walls:  # the identity
            return self.density.potentials_and_grad(np.asarray(phi, dtype=np.float64), prototype)
        from scai.models.kernels import walls_pull_back

        phi = np.ascontiguousarray(phi, dtype=np.float64)
        theta, slope, log_jac, d_log_jac, d_lam = self._forward(phi)
        values, g = self.density.potentials_and_grad(theta, prototype)
        grad = walls_pull_back(
            np.ascontiguousarray(g, dtype=np.float64),
            phi,
            slope,
            d_log_jac,
            d_lam,
            self._wall_cols,
            self._lam_of_sim,
            self.coords.latent_lam,
            self._moved,
            self.knee,
            self._lam_col,
            self.pooled,
            self._shared_col,
            self.shared_sd if self.pooled else 0.0,
        )
        return values - log_jac, grad
