"""The clone mixture in the coordinates its data identify: the type distribution of a user.

**The model** (:func:`scai.models.marginal.group_loglik`): a prototype ``z0 ~ pi``, then each
user copies its type with probability ``c``, else draws from ``pi``, so given ``z0`` a user's
type has distribution ``q = c e_z0 + (1 - c) pi``. When most users copy one prototype ``z*``,
the data pin down ``q`` (each user's type is well seen) but not how it splits into ``c`` and
``pi``: ``pi_k = q_k / (1 - c)`` for ``k != z*`` and ``c`` anywhere in ``(0, q_z*)``, a curved
ridge in the density's coordinates (the sticks of ``pi`` and ``logit c``). Measured on
``real_agents`` (200 users): ``logit c`` correlates 0.73-0.75 with two of the sticks, one
stick has skew -1.6; whitening by the posterior's own covariance left NUTS at step 0.41-0.50
and 7-9 leapfrog steps per draw.

**The map** (:class:`CloneCoordinates`), per simulation, with ``z*`` the prototype the
posterior prefers at the mode: NUTS samples the sticks ``y`` of ``q`` (torch's
stick-breaking, as ``pi``'s, with the types in the order ``z*`` first, then the others by
decreasing ``q`` at the mode) and ``v = logit u`` with ``u = c / q_z*`` in ``(0, 1)``: the
share of ``q_z*`` that is copying. The order puts the rarest types last, so that their split is
one stick of its own (on ``real_agents``, ``selfish`` and ``selfish_rejecting``, told apart only
by a few responders' decisions: in ``pi``'s order the pair makes an L-shaped ridge of ``log
q_selfish`` against ``log q_selfish_rejecting``, one stick with skew -3.2 and excess kurtosis
15 even after the rest of this map; in this order the smallest ESS rose from 214 to 689 on one
group). Then ``c = u q_z*`` and ``pi = p / sum(p)`` with ``p = q`` except
``p_z* = q_z* (1 - u)`` (so ``1 - c = sum(p)``), and the density's coordinates are::

    x_j = log p_j - log sum_{i>j} p_i + log(K - 1 - j)     (pi's sticks: ratios of p)
    logit c = log u + log q_z* - log sum(p)

and back: ``q = c e_z* + (1 - c) pi``, ``v = logit c - log pi_z*``. Every ``(pi, c)`` in the
open simplex times ``(0, 1)`` has one ``(q, u)`` and back, whatever ``z*``; ``z*`` only decides
how well the coordinates fit the posterior. **The Jacobian is 1**: the stick-breaking map's
log determinant is ``sum_k log pi_k``, and ``d(pi, c) / d(q, u)`` has determinant ``q_z* / (1 -
c)^(K - 1)``, so ``log |d theta / d psi| = sum_k log q_k + log u (1 - u) + log q_z* - (K - 1)
log(1 - c) - sum_k log pi_k - log c (1 - c) = 0`` (in any order of the sticks: a test checks it
by finite differences):
the potential in the new coordinates is the density's, at the mapped point. The model, the
prior and the reported draws are unchanged. The other coordinates (lapse, coupling strength,
and whatever the inner map does: :class:`~scai.inference.walls.WallCoordinates`) pass through.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit, log_expit

from scai.inference.walls import WallCoordinates
from scai.models.density import MarginalDensity

__all__ = ["CloneCoordinates", "preferred_prototype"]


def preferred_prototype(
    density: MarginalDensity, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each simulation's most probable prototype ``argmax_z P(z0 = z | theta, data)`` at
    ``theta`` (flat, e.g. the mode), ``[S]``, and the order of ``q``'s sticks ``[S, K]``: the
    prototype, then the other types by decreasing ``q = c e_z* + (1 - c) pi`` at ``theta``."""
    S, W = density.coords.n_sims, density.coords.width
    cols = torch.as_tensor(np.asarray(theta, dtype=np.float64)).reshape(S, W)
    cols = cols.to(torch.get_default_dtype())
    with torch.no_grad():
        pi = density.stick(cols[..., density.columns["pi"]])
        clone = density.bounded(cols)["clone"]
    best = density.prototype_posterior(theta).argmax(-1)
    # q at theta given the preferred prototype: c e_z* + (1 - c) pi
    q = (1 - clone[:, None]) * pi + clone[:, None] * torch.eye(pi.shape[-1])[best]
    q = q.double().numpy()
    q[np.arange(len(best)), best] = np.inf  # the prototype first
    return best, np.argsort(-q, axis=-1, kind="stable")


def _sticks(log_p: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stick-breaking coordinates of ``p / sum(p)`` from ``log p [..., K]`` (``p`` need not
    sum to 1), and ``log sum_{i>=j} p_i [..., K]``."""
    tail = np.logaddexp.accumulate(log_p[..., ::-1], axis=-1)[..., ::-1]
    return log_p[..., :-1] - tail[..., 1:] + offset, tail


def _log_simplex(x: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log pi [..., K]`` of sticks ``x [..., K - 1]``, and the fractions ``z = sigmoid(x -
    offset)``."""
    t = x - offset
    shape = (*x.shape[:-1], 1)
    log_pi = np.concatenate([log_expit(t), np.zeros(shape)], axis=-1)
    log_pi[..., 1:] += np.cumsum(log_expit(-t), axis=-1)
    return log_pi, expit(t)


class CloneCoordinates:
    """The density on the coordinates ``psi`` of the module docstring, around the map ``inner``
    (a :class:`~scai.inference.walls.WallCoordinates`, the identity without walls):
    ``theta = inner.theta(clone_map(psi))``. Same interface as ``inner``."""

    def __init__(self, inner: WallCoordinates, prototype: np.ndarray, order: np.ndarray):
        self.inner = inner
        self.order = np.asarray(order, dtype=int)  # [S, K]: q's types in stick order
        sims = np.arange(len(self.order))[:, None]
        # x[..., S, K] reordered per simulation: x[..., sims, order]
        self.to_sticks = (sims, self.order)
        self.density = inner.density
        self.coords = inner.coords
        self.prototype = np.asarray(prototype, dtype=int)
        columns = self.density.columns
        self.pi_cols = np.arange(columns["pi"].start, columns["pi"].stop)
        self.clone_col = columns["clone"].start
        self.offset = self.density.prior.stick_offset
        K = self.coords.n_policies
        self.onehot = np.eye(K)[self.prototype]  # [S, K]
        self._order = np.ascontiguousarray(self.order, dtype=np.int64)

    def _split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cols [..., S, W] (a copy), sticks [..., S, K - 1], clone column [..., S])``."""
        cols = np.array(x, dtype=np.float64).reshape(*x.shape[:-1], self.coords.n_sims, -1)
        return cols, cols[..., self.pi_cols], cols[..., self.clone_col].copy()

    def _onehot(self, prototype: np.ndarray | None) -> np.ndarray:
        """``[..., S, K]``: this map's prototype, or ``prototype [..., S]`` instead."""
        return self.onehot if prototype is None else np.eye(self.coords.n_policies)[prototype]

    def _forward(self, psi: np.ndarray, prototype: np.ndarray | None = None):
        """``theta`` before ``inner`` (of ``psi``'s shape) and what the gradient needs: ``log
        p``, ``log sum_{i>=j} p_i`` ``[..., S, K]``, q's stick fractions ``z`` and ``v``
        (compiled: :func:`scai.models.kernels.clones_forward`)."""
        from scai.models.kernels import clones_forward

        S, W = self.coords.n_sims, self.coords.width
        psi = np.asarray(psi, dtype=np.float64)
        batch = psi.shape[:-1]
        rows = np.ascontiguousarray(psi.reshape(-1, S, W))
        star = self.prototype if prototype is None else prototype
        # a writeable copy: one compiled signature (numba types read-only arrays apart)
        star = np.array(np.broadcast_to(star, (*batch, S)).reshape(-1, S), dtype=np.int64)
        mid, log_p, tail, z = clones_forward(rows, star, self._order, self.clone_col, self.offset)
        v = rows[..., self.clone_col]
        return mid.reshape(psi.shape), tuple(a.reshape(*batch, S, -1) for a in (log_p, tail, z)) + (
            v.reshape(*batch, S),
            star.reshape(*batch, S),
        )

    def clone_part(self, psi: np.ndarray, prototype: np.ndarray | None = None) -> np.ndarray:
        """``[..., S * W]``: the clone map alone, before ``inner`` (whose map leaves the
        ``pi`` and ``clone`` columns as they are: there they are already ``theta``'s)."""
        return self._forward(psi, prototype)[0]

    def theta(self, psi: np.ndarray, prototype: np.ndarray | None = None) -> np.ndarray:
        """``theta [..., S * W]`` of ``psi [..., S * W]``; with ``prototype [..., S]``, the map
        with that prototype instead (the same ``q`` and ``u``, another sheet:
        :mod:`scai.inference.sheets`; Jacobian 1 too)."""
        return self.inner.theta(self._forward(psi, prototype)[0])

    def phi(self, theta: np.ndarray, prototype: np.ndarray | None = None) -> np.ndarray:
        """The inverse: ``psi`` of ``theta [..., S * W]`` (with ``prototype``, as
        :meth:`theta`)."""
        onehot = self._onehot(prototype)
        inner = self.inner.phi(theta)
        cols, x, logit_c = self._split(inner)
        log_pi, _ = _log_simplex(x, self.offset)
        log_c, log_not_c = log_expit(logit_c), log_expit(-logit_c)
        log_q = log_not_c[..., None] + log_pi  # q = c e_z* + (1 - c) pi
        star = np.logaddexp(log_c[..., None], log_q)
        log_q = np.where(onehot > 0, star, log_q)
        cols[..., self.pi_cols] = _sticks(log_q[(..., *self.to_sticks)], self.offset)[0]
        cols[..., self.clone_col] = logit_c - (log_pi * onehot).sum(-1)
        return cols.reshape(inner.shape)

    def initial(self):
        return self.density.initial()

    def tile(self, density: MarginalDensity, n: int) -> CloneCoordinates:
        """The same map for ``density``, this one's data tiled ``n`` times (as
        :meth:`~scai.inference.walls.WallCoordinates.tile`)."""
        return CloneCoordinates(
            self.inner.tile(density, n), np.tile(self.prototype, n), np.tile(self.order, (n, 1))
        )

    def value_and_grad(
        self, psi: np.ndarray, prototype: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """``(U(theta(psi)), dU/dpsi)``: no Jacobian term (module docstring; ``prototype``: as
        :meth:`potentials_and_grad`)."""
        values, grad = self.potentials_and_grad(psi, prototype)
        return float(values.sum()), grad

    def potentials_and_grad(
        self, psi: np.ndarray, prototype: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(U_s [S], dU/dpsi)``, as :meth:`WallCoordinates.potentials_and_grad`; with
        ``prototype [S]``, of ``U_s = -log p(theta_s, z0 = prototype_s, data_s)`` at ``theta =
        theta(psi, prototype)`` (the joint with the prototype, on its own sheet:
        :mod:`scai.inference.sheets`)."""
        from scai.models.kernels import clones_pull_back

        S, W = self.coords.n_sims, self.coords.width
        mid, (log_p, tail, z, v, star) = self._forward(psi, prototype)
        values, g = self.inner.potentials_and_grad(mid, prototype)
        grad = clones_pull_back(
            np.ascontiguousarray(g, dtype=np.float64).reshape(S, W),
            log_p,
            tail,
            z,
            np.ascontiguousarray(v),
            star,
            self._order,
            self.clone_col,
        )
        return values, grad.reshape(g.shape)
