"""The MCMC potential with its gradient derived by hand, evaluated in NumPy.

Same density as :class:`scai.inference.potential.Potential` (tests check value and gradient), but
one evaluation is a few dozen NumPy operations on small arrays instead of ~300 torch
operations recorded for autograd: with a latent rationality on 200 users the torch potential
costs ~5 ms per gradient, almost all of it per-operation overhead.

The derivation, per simulation (``theta`` holds the unconstrained sites, see ``Potential``):

* ``pi`` by stick-breaking, ``t_j = x_j - log(K - 1 - j)``, ``z_j = sigmoid(t_j)``,
  ``pi_j = z_j prod_{i<j} (1 - z_i)``. Under ``pi ~ Dirichlet(alpha)`` the ``z_j`` are
  independent ``Beta(a_j, b_j)`` with ``a_j = alpha_j``, ``b_j = sum_{i>j} alpha_i``, so
  ``log p(x) = sum_j a_j log sigmoid(t_j) + b_j log sigmoid(-t_j) - log B(a_j, b_j)`` (the
  Dirichlet density and the transform's Jacobian in one), with derivative
  ``a_j (1 - z_j) - b_j z_j``. And ``d log pi_k / d x_j`` is ``1 - z_j`` (``k = j``),
  ``-z_j`` (``k > j``), 0 (``k < j``).
* ``ell = log lam ~ Normal(log lam_0, sigma)`` (the log-normal prior with its Jacobian).
* Currency shifts: ``shift_shared ~ N(0, s_0)``, ``shift_c ~ N(shift_shared + d e_c, s_c)``.
  A shift moves the weight on the other's payoff, so the utilities are linear in it:
  ``u_resp(shift) = u_resp(0) + shift (pot - o)`` and ``u_prop(shift) = u_prop(0) + shift o``.
* Actions (``scai.models.policies.rational_tables``): a responder accepts with log-odds
  ``a = lam u_resp``; a proposer offers ``o`` with probability ``softmax_o(lam E_o)``,
  ``E = sigmoid(a) u_prop``. With ``sigma = sigmoid(a)``:
  ``d(lam E)/d lam = E + lam sigma (1 - sigma) u_resp u_prop`` and
  ``d(lam E)/d shift = lam (lam sigma (1 - sigma) (pot - o) u_prop + sigma o)``; an offer's
  log-probability has derivative ``D_o - sum_o' q_o' D_o'`` for ``D = d(lam E)``.
* Users: ``L[u, k] = counts[u, :] @ cell_loglik[:, k] + tones[u, k]`` (``EventIndex``) and
  ``G = sum_u log sum_k pi_k exp(L[u, k])``, so ``dG / dL[u, k] = r[u, k]`` (the type
  responsibilities), ``dG / d cell_loglik = counts^T r`` and ``dG / d log pi_k = sum_u r[u, k]``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse
import torch
from scai.inference.potential import Potential
from scai.models.layout import GroupData
from scai.models.policies import policy_parameters, utility_tables
from scipy.special import betaln, expit, log_expit


class GradientPotential(Potential):
    """:class:`Potential` whose value and gradient come from :meth:`value_and_grad`; calling
    it returns a torch scalar whose backward pass hands autograd that gradient."""

    def __init__(self, data: GroupData, hypothesis):
        super().__init__(data, hypothesis)
        lay, hyp = self.layout, hypothesis
        alpha = np.asarray(hyp.pi_concentration, dtype=np.float64)
        K = lay.n_policies
        self.stick_a = alpha[:-1]
        self.stick_b = np.cumsum(alpha[::-1])[::-1][1:]  # sum_{i>j} alpha_i
        self.stick_offset = np.log(K - 1 - np.arange(K - 1, dtype=np.float64))
        self.stick_log_norm = float(betaln(self.stick_a, self.stick_b).sum())

        w, a, b = policy_parameters(hyp.policies)
        base = utility_tables(w, a, b, data.pots, 0.0)
        self.u_resp = base.u_resp.double().numpy()  # [K, P, O], shift 0
        self.u_prop = base.u_prop.double().numpy()
        self.valid = base.valid.numpy()  # [P, O]
        pots = data.pots.double().numpy()[:, None]
        offers = np.arange(self.u_resp.shape[-1], dtype=np.float64)
        self.other_of_responder = np.broadcast_to(pots - offers, self.valid.shape)
        self.other_of_proposer = np.broadcast_to(offers, self.valid.shape)
        self.essential_np = data.essential.double().numpy()

        idx = self.index
        self.cell = (
            idx.sim.numpy(),
            idx.currency.numpy(),
            idx.pot.numpy(),
            idx.offer.numpy(),
        )
        self.kind = idx.kind.numpy()
        self.cell_group = self.cell[0] * lay.n_currencies + self.cell[1]  # (sim, currency)
        csr = idx.counts
        self.counts = scipy.sparse.csr_matrix(
            (
                csr.values().double().numpy(),
                csr.col_indices().numpy(),
                csr.crow_indices().numpy(),
            ),
            shape=tuple(csr.shape),
        )
        self.counts_t = self.counts.T.tocsr()
        # Users' arrays are [K, S, U]: sums over the few types are then sums of whole rows.
        self.tones_t = np.ascontiguousarray(self.tones.double().numpy().transpose(2, 0, 1))
        self.mask = data.user_mask.double().numpy()  # [S, U]
        self.fixed_cells = None
        if not (self.layout.latent_lam or self.layout.latent_shared or self.layout.latent_shift):
            lam = np.full(self.layout.n_sims, hypothesis.rationality)
            shift = np.tile(hypothesis.essential_shift * self.essential_np, (lam.size, 1))
            self.fixed_cells = self._cell_loglik(lam, shift, False, False)[0]

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return _HandGradient.apply(theta, self)

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(U(theta), dU/dtheta)`` for a flat ``theta [S * width]`` (float64)."""
        lay, hyp = self.layout, self.hyp
        S, K, C = lay.n_sims, lay.n_policies, lay.n_currencies
        cols = theta.reshape(S, lay.width)
        grad = np.zeros_like(cols)

        # pi: the Dirichlet prior as independent Beta sticks on the unconstrained scale.
        t = cols[:, : K - 1] - self.stick_offset
        z = expit(t)
        log_p = (self.stick_a * log_expit(t) + self.stick_b * log_expit(-t)).sum(-1)
        log_p -= self.stick_log_norm
        grad[:, : K - 1] = self.stick_a * (1 - z) - self.stick_b * z
        log_rest = np.cumsum(log_expit(-t), axis=-1)  # log prod_{i<=j} (1 - z_i)
        log_pi = np.concatenate([log_expit(t), np.zeros((S, 1))], axis=-1)
        log_pi[:, 1:] += log_rest

        j = K - 1
        lam = np.full(S, hyp.rationality)
        if lay.latent_lam:
            ell = cols[:, j]
            lam = np.exp(ell)
            mu, sd = math.log(hyp.rationality), hyp.rationality_scale
            log_p += -0.5 * ((ell - mu) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))
            grad[:, j] = -(ell - mu) / sd**2
            j_lam, j = j, j + 1
        shared = np.zeros(S)
        if lay.latent_shared:
            shared = cols[:, j]
            sd = hyp.shared_scale
            log_p += -0.5 * (shared / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))
            grad[:, j] = -shared / sd**2
            j_shared, j = j, j + 1
        mean = shared[:, None] + hyp.essential_shift * self.essential_np  # [S, C]
        if lay.latent_shift:
            shift = cols[:, j : j + C]
            sd = hyp.currency_scale
            resid = (shift - mean) / sd
            log_p += (-0.5 * resid**2 - math.log(sd * math.sqrt(2 * math.pi))).sum(-1)
            grad[:, j : j + C] = -resid / sd
            if lay.latent_shared:
                grad[:, j_shared] += (resid / sd).sum(-1)
        else:
            shift = mean

        needs_lam = lay.latent_lam
        needs_shift = lay.latent_shift or lay.latent_shared
        if self.fixed_cells is None:
            cell_ll, d_lam, d_shift = self._cell_loglik(lam, shift, needs_lam, needs_shift)
        else:
            cell_ll, d_lam, d_shift = self.fixed_cells, None, None

        # Users: mix the types by pi; r = each user's type responsibilities.
        L = (self.counts @ cell_ll).T.reshape(K, S, -1) + self.tones_t  # [K, S, U]
        joint = L + log_pi.T[:, :, None]
        top = joint.max(0)
        per_user = top + np.log(np.exp(joint - top).sum(0))  # [S, U]
        log_p += (per_user * self.mask).sum(-1)
        r = np.exp(joint - per_user) * self.mask  # [K, S, U]

        R = r.sum(-1).T  # dG / d log pi, [S, K]
        tail = np.cumsum(R[:, ::-1], axis=-1)[:, ::-1]  # sum_{k>=j} R_k
        grad[:, : K - 1] += R[:, :-1] * (1 - z) - z * tail[:, 1:]
        if needs_lam or needs_shift:
            weight = self.counts_t @ r.reshape(K, -1).T  # dG / d cell_loglik, [cells, K]
            if needs_lam:
                per_cell = (weight * d_lam).sum(-1)
                grad[:, j_lam] += lam * np.bincount(self.cell[0], per_cell, minlength=S)
            if needs_shift:
                per_cell = (weight * d_shift).sum(-1)
                d_g = np.bincount(self.cell_group, per_cell, minlength=S * C).reshape(S, C)
                if lay.latent_shift:
                    grad[:, j : j + C] += d_g
                else:
                    grad[:, j_shared] += d_g.sum(-1)
        return -float(log_p.sum()), -grad.reshape(-1)

    def _cell_loglik(
        self, lam: np.ndarray, shift: np.ndarray, needs_lam: bool, needs_shift: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Each cell's log-likelihood ``[cells, K]`` and its derivatives in ``lam`` and in
        its currency's shift (``None`` when not needed)."""
        lam_ = lam[:, None, None, None, None]  # [S, 1(C), 1(K), 1(P), 1(O)]
        shift_ = shift[:, :, None, None, None]  # [S, C, 1, 1, 1]
        u_resp = self.u_resp + shift_ * self.other_of_responder  # [S, C, K, P, O]
        u_prop = self.u_prop + shift_ * self.other_of_proposer
        logit = lam_ * u_resp
        sig = expit(logit)
        gain = lam_ * sig * u_prop  # lam E
        gain = np.where(self.valid, gain, -np.inf)
        offer_lp = gain - _logsumexp(gain)
        q = np.exp(offer_lp)  # the offer distribution of each (type, pot)

        s, c, p, o = self.cell
        at = (s, c, slice(None), p, o)  # -> [cells, K]
        kind = self.kind[:, None]
        accept_logit = logit[at]
        sign = np.where(kind == 1, 1.0, -1.0)
        proposed = kind == 0
        cell_ll = np.where(proposed, offer_lp[at], log_expit(sign * accept_logit))
        # d log sigmoid(sign a) / d a
        d_logit = sign * expit(-sign * accept_logit)

        def derivative(d_gain: np.ndarray, d_accept_logit: np.ndarray) -> np.ndarray:
            """Cells' derivative from the tables' ``d(lam E)`` and the cells' ``d a``."""
            d_offer = d_gain[at] - (q * np.where(self.valid, d_gain, 0.0)).sum(-1)[s, c, :, p]
            return np.where(proposed, d_offer, d_logit * d_accept_logit)

        slope = sig * (1 - sig)
        d_lam = d_shift = None
        if needs_lam:
            d_gain = sig * u_prop + lam_ * slope * u_resp * u_prop
            d_lam = derivative(d_gain, u_resp[at])
        if needs_shift:
            d_gain = lam_ * (lam_ * slope * self.other_of_responder * u_prop)
            d_gain = d_gain + lam_ * sig * self.other_of_proposer
            d_shift = derivative(d_gain, (lam[s] * self.other_of_responder[p, o])[:, None])
        return cell_ll, d_lam, d_shift


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """``log sum exp`` over the last axis, kept (SciPy's costs ~0.3 ms a call in checks)."""
    top = x.max(-1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(-1, keepdims=True))


class _HandGradient(torch.autograd.Function):
    """``U(theta)`` as one autograd node: NumPy computes the value and the gradient together
    in the forward pass; the backward pass scales the stored gradient. (The ``forward(ctx,
    ...)`` form: with a separate ``setup_context``, torch binds the signature with ``inspect``
    on every call, ~0.1 ms.)"""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, potential: GradientPotential) -> torch.Tensor:
        value, grad = potential.value_and_grad(theta.detach().double().numpy())
        ctx.grad = torch.from_numpy(grad).to(theta.dtype)
        return torch.tensor(value, dtype=theta.dtype)

    @staticmethod
    def backward(ctx, grad_value: torch.Tensor):
        return grad_value * ctx.grad, None
