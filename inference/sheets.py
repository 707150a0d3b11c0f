"""The clone prototype as part of the sampler's state: NUTS on one sheet, Gibbs between sheets.

**The problem.** Under clones (:mod:`scai.inference.clones`) a user's type has distribution
``q = c e_z0 + (1 - c) pi`` given the prototype ``z0``. Each prototype ``z`` decomposes the
same ``q`` into its own ``(pi, c)`` (``c = u q_z``, ``pi_k = q_k / (1 - c)`` for ``k != z``):
a *sheet* of the density in ``(pi, c)``, the sheets meeting only at ``c -> 0``. Where ``c`` is
high the prototype is identified and one sheet holds the mass; where it is not, several do,
and NUTS, which moves continuously, crosses between them rarely. Measured on
``real_agents_stereotyped``, 200 users, data and sampler seed 3 (``c ~ 0.33``): ``P(z0 | theta,
data)`` is 1 (to 3 decimals) at the median draw, so the sheets are apart; 85% of the kept draws
sat on the ``altruistic`` sheet, 14% on the ``selfish`` one, and the two chains switched
sheets 2 and 9 times in 500 draws: bulk ESS 13 (``pi[selfish]``, ``pi[altruistic]``), r-hat
1.11. In the clone coordinates of the mode's prototype, the other sheet lies 7 sd away and is
2.5-5 times wider; in its own clone coordinates every sheet has the same shape (``q`` is the
same on each, only ``u``'s prior differs).

**The sampler** samples the joint ``p(theta, z0)`` (whose marginal is the density's ``p(theta)``,
:func:`scai.models.marginal.prototype_loglik`) as ``(psi, z)`` with ``theta = clones.theta(psi,
z)``, the clone map with prototype ``z``: for each ``z`` an exact change of variables with
Jacobian 1, so the density of ``(psi, z)`` is ``p(theta(psi, z), z0 = z)``. Each iteration:

1. NUTS on ``psi`` given ``z``: the potential ``-log p(theta(psi, z), z0 = z, data)`` (one
   sheet, in its own coordinates: no other sheet's mass to cross).
2. Gibbs on ``z`` given ``psi`` (:class:`Sheets`): ``P(z | psi)`` is proportional to ``p(theta_z,
   z0 = z)`` with ``theta_z = theta(psi, z)``, and ``p(theta, z0 = z) = prior(theta) pi_z prod_u
   (c e^{L[u, z]} + (1 - c) sum_j pi_j e^{L[u, j]}) = prior(theta) pi_z prod_u sum_j q_j
   e^{L[u, j]}``: the likelihood depends on ``theta_z`` only through ``q``, the same for every
   ``z``. So ``P(z | psi)`` is proportional to ``prior(theta_z) pi_z(theta_z)`` (the prior on
   the unconstrained coordinates, Jacobians included): no data (0.4 ms per chain and
   iteration, against 2 ms for one batched gradient of two chains, measured at load 3).

Both steps leave the joint invariant, so the chain's ``theta(psi, z)`` has the density's
posterior: the model, the prior and the reported draws are unchanged. A chain records each
iteration's ``theta`` in the coordinates of the mode's prototype (those of
:func:`scai.inference.mcmc.sampler_coordinates`), so that what reads the draws needs no
``z``; its ``lp`` is the joint's, ``log p(theta, z0 = z, data)``. The Gibbs step draws from a
generator of its own (:func:`scai.inference.nuts.move_rng`).

On the group above the chains switched sheets 126 and 152 times in 500 draws, with bulk ESS 595
and r-hat 1.00 at 6.9 leapfrog steps per draw; where the prototype is
identified the Gibbs step never moves (``benchmarks/README.md``).
"""

from __future__ import annotations

import numpy as np

from scai.inference.clones import CloneCoordinates
from scai.models.density import MarginalDensity
from scai.models.prior import Coordinates

__all__ = ["Sheets"]


def categorical(rng: np.random.Generator, log_w: np.ndarray) -> np.ndarray:
    """One draw per row of ``softmax(log_w) [S, K]`` (``-inf``: weight 0)."""
    p = np.exp(log_w - log_w.max(-1, keepdims=True))
    cdf = np.cumsum(p / p.sum(-1, keepdims=True), axis=-1)
    draws = (rng.random((len(cdf), 1)) > cdf).sum(-1)
    return np.minimum(draws, log_w.shape[-1] - 1)


class Sheets:
    """Each chain's prototypes ``z [chains, S]`` (starting at the mode's, ``clones.prototype``)
    and the Gibbs step on them (module docstring), for positions ``x`` in the sampler's
    coordinates, ``psi = white.theta(x)`` (``white``: a
    :class:`~scai.inference.mcmc.Whitening`)."""

    def __init__(self, density: MarginalDensity, clones: CloneCoordinates, white, chains: int = 1):
        self.density = density
        self.clones = clones
        self.white = white
        self.S, self.W = density.coords.n_sims, density.coords.width
        self.K = density.coords.n_policies
        self.z = np.tile(clones.prototype, (chains, 1))
        # The sheets differ only in pi and c: the prior of those, for K * S simulations at
        # once (the other sites' prior is the same on every sheet; pi's columns come first).
        columns = density.columns
        self.sheet_cols = np.r_[
            np.arange(columns["pi"].start, columns["pi"].stop), columns["clone"].start
        ]
        self.sheet_coords = Coordinates(self.K * self.S, self.K, 0, False, False, False, ("clone",))
        self.every = np.broadcast_to(np.arange(self.K)[:, None], (self.K, self.S))

    def log_weights(self, psi: np.ndarray) -> np.ndarray:
        """``log p(theta_z, z0 = z) + const [S, K]`` at ``psi [S * W]`` for every prototype
        ``z``, ``theta_z = clones.theta(psi, z)`` (the constant: each simulation's likelihood
        and its other sites' prior, the same for every ``z``; module docstring)."""
        mid = self.clones.clone_part(np.broadcast_to(psi, (self.K, psi.size)), self.every)
        cols = mid.reshape(self.K * self.S, self.W)[:, self.sheet_cols]
        log_prior, _ = self.density.prior.log_prob_unconstrained_np(
            cols, self.sheet_coords, np.zeros((len(cols), 0))
        )
        log_pi = self.density.log_pi(cols)[0].reshape(self.K, self.S, self.K)
        log_own = log_pi[np.arange(self.K), :, np.arange(self.K)]  # [K, S]: log pi_z(theta_z)
        return (log_prior.reshape(self.K, self.S) + log_own).T

    def step(
        self, chain: int, x: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """The Gibbs step of chain ``chain`` at ``x``: ``(x, or None where no simulation
        changed sheet (the potential is the same), the position to record: theta(psi, z) in
        the coordinates of the mode's prototype)``."""
        psi = self.white.theta(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_w = self.log_weights(psi)
        new = categorical(rng, np.nan_to_num(log_w, nan=-np.inf))
        changed = bool(np.any(new != self.z[chain]))
        self.z[chain] = new
        record = x
        if np.any(new != self.clones.prototype):
            record = self.white.phi(self.clones.phi(self.clones.theta(psi, new)))
        return (x.copy() if changed else None), record
