"""The marginal likelihood of :mod:`scai.models.marginal` in NumPy, with its gradient by hand.

The fast backend of :class:`scai.models.density.MarginalDensity`: one evaluation is a few dozen
NumPy operations on small arrays, where the torch reference records ~300 operations for
autograd (per-gradient times of both: ``benchmarks/README.md``, "Inference"); the loops that
NumPy would run as many small calls (the rational cells and their derivatives, the real-agent
users' mixture with clones) are compiled ones of :mod:`scai.models.kernels`. Tests
hold its value and gradient equal to the torch reference's autograd. Two classes, each for any
latent rationality and shifts (the cells' derivatives in them: :class:`RationalCells`):
:class:`NumpyMarginal` (no lapse, clones or learned coupling) and :class:`AgentMarginal` (any
of those: the real-agent presets).

The derivation, per simulation, for rationality ``lam`` and currency shifts ``delta_c``:

* A shift moves the weight on the other's payoff, so the utilities are linear in it:
  ``u_resp(delta) = u_resp(0) + delta (pot - o)`` and ``u_prop(delta) = u_prop(0) + delta o``.
* Actions (:func:`scai.models.policies.rational_tables`): a responder accepts with log-odds
  ``a = lam u_resp``; a proposer offers ``o`` with probability ``softmax_o(lam E_o)``,
  ``E = sigmoid(lam u_proj) u_prop`` (``u_proj``, the responder it expects, is ``u_resp``
  unless the norm is role-dependent). With ``sigma = sigmoid(lam u_proj)``:
  ``d(lam E)/d lam = E + lam sigma (1 - sigma) u_proj u_prop`` and
  ``d(lam E)/d delta = lam (lam sigma (1 - sigma) (pot - o) u_prop + sigma o)``; an offer's
  log-probability has derivative ``D_o - sum_o' q_o' D_o'`` for ``D = d(lam E)``, an accept
  cell's ``d log sigmoid(+-a)`` times ``u_resp`` (in ``lam``) or ``lam (pot - o)`` (in
  ``delta``).
* Users: ``L[u, k] = counts[u, :] @ cell_loglik[:, k] + tones[u, k]`` (cells of
  :class:`~scai.models.marginal.EventIndex`) and ``G = sum_u log sum_k pi_k exp(L[u, k])``, so
  ``dG / dL[u, k] = r[u, k]`` (the type responsibilities), ``dG / d cell_loglik = counts' r``
  and ``dG / d log pi_k = sum_u r[u, k]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
from scipy.special import log_expit

from scai.models.hypotheses import Hypothesis
from scai.models.language import coupling_table
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, manner_loglik
from scai.models.model import group_utilities
from scai.models.policies import rational_tables


def sparse_counts(index: EventIndex) -> tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
    """``index.counts`` (``[S * U, cells]``, torch CSR) as a SciPy CSR matrix in float64,
    and its transpose in CSR (for the gradient's products). Data without an event (a
    simulation whose only games are the assistant's with no one: MCMC fits each simulation
    alone) has no cell: its matrix is ``[S * U, 0]``, as ``cell_ll [0, K]`` is (torch's has a
    column of no entries, and SciPy refuses that product)."""
    csr = index.counts
    counts = scipy.sparse.csr_matrix(
        (
            csr.values().double().numpy(),
            csr.col_indices().numpy(),
            csr.crow_indices().numpy(),
        ),
        shape=(csr.shape[0], len(index.sim)),
    )
    return counts, counts.T.tocsr()


@dataclass
class GroupGradient:
    """``G [S]`` (each simulation's log-likelihood) and its derivatives: ``d_log_pi [S, K]``,
    ``d_lam [S]`` and ``d_shift [S, C]`` (``None`` where not asked for)."""

    value: np.ndarray
    d_log_pi: np.ndarray
    d_lam: np.ndarray | None
    d_shift: np.ndarray | None


class RationalCells:
    """Each cell's log-likelihood under rational actions ``[cells, K]`` (cells of
    :class:`~scai.models.marginal.EventIndex`) for any ``lam [S]`` and shifts ``[S, C]``, with
    its derivatives in ``lam`` and in the cell's currency's shift (module docstring)."""

    def __init__(self, data: GroupData, hypothesis: Hypothesis, index: EventIndex):
        self.n_sims = data.shape[0]
        self.n_currencies = len(data.currencies)
        dtype = torch.get_default_dtype()
        base = group_utilities(hypothesis, data.pots, torch.zeros((), dtype=dtype))
        self.u_resp = _array(base.u_resp)  # [K, P, O], shift 0
        # the responder the proposer expects: the same array (``is``) unless the norm is
        # role-dependent (``.numpy()`` makes a new array each call, so keep the object)
        self.u_proj = self.u_resp if base.u_proj is None else _array(base.u_proj)
        self.u_prop = _array(base.u_prop)
        self.valid = np.ascontiguousarray(base.valid.numpy())  # [P, O]
        self.pots = np.ascontiguousarray(data.pots.double().numpy())  # [P]
        self.cell = (
            index.sim.numpy(),
            index.currency.numpy(),
            index.pot.numpy(),
            index.offer.numpy(),
        )
        self.cell_group = self.cell[0] * self.n_currencies + self.cell[1]  # (sim, currency)
        # the compiled kernel's index: each proposal's row (sim, currency, pot), whose offers'
        # normaliser it computes once
        s, c, p, o = self.cell
        kind = index.kind.numpy()
        proposed = kind == 0
        rows, row_of = np.unique(np.stack([s, c, p], axis=1)[proposed], axis=0, return_inverse=True)
        row = np.zeros(len(s), dtype=np.int64)
        row[proposed] = row_of.reshape(-1)
        self.rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 3)
        self.kernel_cells = np.ascontiguousarray(
            np.stack([s, c, p, o, kind, row], axis=1), dtype=np.int64
        )

    def __call__(
        self, lam: np.ndarray, shift: np.ndarray, needs_lam: bool, needs_shift: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Each cell's log-likelihood ``[cells, K]`` and its derivatives in ``lam`` and in
        its currency's shift (``None`` when not needed)."""
        from scai.models.kernels import rational_cells

        cell_ll, d_lam, d_shift = rational_cells(
            np.ascontiguousarray(lam, dtype=np.float64),
            np.ascontiguousarray(shift, dtype=np.float64),
            self.u_resp,
            self.u_proj,
            self.u_prop,
            self.valid,
            self.pots,
            self.rows,
            self.kernel_cells,
            needs_lam,
            needs_shift,
        )
        return cell_ll, d_lam if needs_lam else None, d_shift if needs_shift else None

    def scalar_gradients(
        self, weight: np.ndarray, d_lam: np.ndarray | None, d_shift: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(dG/d lam [S], dG/d shift [S, C])`` from ``weight = dG / d cell_loglik [cells, K]``
        and the cells' derivatives (``None`` where not asked for)."""
        from scai.models.kernels import cell_sums

        S, C = self.n_sims, self.n_currencies
        out_lam = out_shift = None
        if d_lam is not None:
            out_lam = cell_sums(weight, d_lam, self.cell[0], S)
        if d_shift is not None:
            out_shift = cell_sums(weight, d_shift, self.cell_group, S * C).reshape(S, C)
        return out_lam, out_shift


class NumpyMarginal:
    """The marginal likelihood of a data set under a hypothesis, for any ``lam``, ``delta``
    and ``pi``, with its gradient (module docstring), without lapses, clones or a learned
    coupling."""

    def __init__(self, data: GroupData, hypothesis: Hypothesis, index: EventIndex, tones):
        self.n_sims = data.shape[0]
        self.cells = RationalCells(data, hypothesis, index)
        self.counts, self.counts_t = sparse_counts(index)
        # Users' arrays are [K, S, U]: sums over the few types are then sums of whole rows.
        self.tones_t = np.ascontiguousarray(tones.double().numpy().transpose(2, 0, 1))
        self.mask = data.user_mask.double().numpy()  # [S, U]
        self.padded = not np.all(self.mask == 1)  # some simulations have fewer users
        self._fixed_users: np.ndarray | None = None
        self._fixed_weights: np.ndarray | None = None  # E [S, U, K] of group_of_pi
        self._fixed_top = np.zeros(self.n_sims)

    def fix_users(self, loglik: np.ndarray) -> None:
        """Fix the users' log-likelihoods ``L [S, U, K]`` (``lam`` and the shifts never
        change: then only ``pi`` varies), in the product form of :meth:`group_of_pi`."""
        L = self._fixed_users = np.ascontiguousarray(loglik.transpose(2, 0, 1))  # [K, S, U]
        top = L.max(0)  # [S, U]: each user's best type
        self._fixed_weights = np.ascontiguousarray(np.exp(L - top).transpose(1, 2, 0))
        self._fixed_top = (top * self.mask).sum(-1)  # [S]

    def fixed_users(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """What :meth:`group_of_pi` reads, once :meth:`fix_users` has run (else
        ``None``): ``E [S, U, K]``, ``sum_u max_k L [S]`` (padding masked) and ``L [K, S,
        U]`` (for users whose product underflows)."""
        if self._fixed_weights is None:
            return None
        return self._fixed_weights, self._fixed_top, self._fixed_users

    def group_of_pi(self, log_pi: np.ndarray) -> GroupGradient:
        """:meth:`group` with ``L`` fixed (:meth:`fix_users`), in product form: with
        ``E[s, u, k] = exp(L[k, s, u] - max_k L)`` computed once, a user's likelihood is
        ``m = E pi`` (times ``exp(max_k L)``), so ``G = sum_u (max_k L + log m)`` and
        ``dG / d log pi_k = pi_k sum_u E[u, k] / m_u``: two products of ``E`` with a vector
        and a log per gradient, where the log-sum-exp form takes ~10 passes over ``[K, S,
        U]``. The same value and gradient to rounding, not bit for bit (tests hold both to
        the torch reference). ``m`` is at least ``max_k pi_k`` times the user's best type's
        1, so it underflows only where every type a user could be has ``pi_k`` below
        ~1e-300: there :meth:`group` answers instead."""
        pi = np.exp(log_pi)  # [S, K]
        m = self._fixed_weights @ pi[:, :, None]  # [S, U, 1]
        if not m.min() > 1e-300:  # (NaN included)
            return self.group(log_pi, None, None, False, False)
        inv = self.mask[:, None, :] / m.transpose(0, 2, 1)  # [S, 1, U], padding 0
        log_m = np.log(m[..., 0])
        if self.padded:
            log_m *= self.mask
        d_log_pi = pi * (inv @ self._fixed_weights)[:, 0, :]
        return GroupGradient(self._fixed_top + log_m.sum(-1), d_log_pi, None, None)

    def user_loglik(self, cell_ll: np.ndarray) -> np.ndarray:
        """``L [K, S, U]``: each user's log-likelihood under each type, of the cells'
        ``cell_ll [cells, K]`` (the tones' included)."""
        K = cell_ll.shape[-1]
        return (self.counts @ cell_ll).T.reshape(K, self.n_sims, -1) + self.tones_t

    def group(
        self,
        log_pi: np.ndarray,
        lam: np.ndarray,
        shift: np.ndarray,
        needs_lam: bool,
        needs_shift: bool,
    ) -> GroupGradient:
        """``G`` and its gradient at ``log_pi [S, K]``, ``lam [S]``, ``shift [S, C]``."""
        if self._fixed_users is None:
            cell_ll, d_lam, d_shift = self.cells(lam, shift, needs_lam, needs_shift)
            L = self.user_loglik(cell_ll)  # [K, S, U]
        else:
            L, d_lam, d_shift = self._fixed_users, None, None
        K = L.shape[0]
        joint = L + log_pi.T[:, :, None]
        top = joint.max(0)
        shifted = joint - top
        per_user = top + np.log(np.exp(shifted, out=shifted).sum(0))  # [S, U]
        r = joint - per_user
        r = np.exp(r, out=r)  # [K, S, U]
        if self.padded:  # (a product with a mask of ones changes nothing)
            per_user *= self.mask
            r *= self.mask
        value = per_user.sum(-1)
        out = GroupGradient(value, r.sum(-1).T, None, None)
        if d_lam is not None or d_shift is not None:
            weight = self.counts_t @ r.reshape(K, -1).T  # dG / d cell_loglik, [cells, K]
            out.d_lam, out.d_shift = self.cells.scalar_gradients(weight, d_lam, d_shift)
        return out


def _array(t: torch.Tensor) -> np.ndarray:
    """A tensor as a contiguous float64 array (one compiled kernel serves every call)."""
    return np.ascontiguousarray(t.double().numpy())


@dataclass
class AgentGradient:
    """``G [S]`` and its derivatives in ``log pi [S, K]``, in the bounded sites ``lapse``,
    ``strength``, ``clone`` ``[S]`` and in ``lam [S]`` and ``shift [S, C]`` (``None`` where
    the site is not latent)."""

    value: np.ndarray
    d_log_pi: np.ndarray
    d_lapse: np.ndarray | None
    d_strength: np.ndarray | None
    d_clone: np.ndarray | None
    d_lam: np.ndarray | None = None
    d_shift: np.ndarray | None = None


@dataclass
class Scalars:
    """``lam [S]`` and ``shift [S, C]`` at a point, and which of them are latent (their
    derivatives are wanted)."""

    lam: np.ndarray
    shift: np.ndarray
    needs_lam: bool
    needs_shift: bool


class AgentMarginal:
    """The marginal likelihood for any ``pi`` and latent ``lapse`` (``eps``), coupling
    ``strength`` (``s``) and ``clone`` (``c``), with its gradient: the real-agent presets
    (role-dependent norms, lapses, clones, a learned stereotype). With ``lam`` and the
    currency shifts fixed the rational action tables are constants, scored once per cell;
    with either latent (``varying``) each call scores them (:class:`RationalCells`), and the
    chain rule runs through the lapse.

    * Lapse (:func:`scai.models.policies.with_lapse`): a cell of rational probability ``p``
      and uniform probability ``v`` (``1 / (pot + 1)`` for an offer, ``1 / 2`` for a decision)
      has ``log P = log(eps v + (1 - eps) p)``, ``d log P / d eps = (v - p) / P`` and
      ``d log P / d log p = (1 - eps) p / P``.
    * Coupling: ``rho = (1 - s) / M + s rows``, so ``tones[u, k] = log sum_m rho[k, m]
      e^{l[u, m]} = log((1 - s) A[u] + s B[u, k])`` with ``A = sum_m e^{l[u, m]} / M`` and
      ``B = sum_m rows[k, m] e^{l[u, m]}``, and ``d tones / d s = (B - A) / ((1 - s) A + s
      B)``.
    * Clones (:func:`scai.models.marginal.group_loglik`): with ``own[u] = log sum_k pi_k
      e^{L[u, k]}``, ``log f[u, z] = log(c e^{L[u, z]} + (1 - c) e^{own[u]})``, ``B[z] = sum_u
      log f[u, z]`` and ``G = log sum_z pi_z e^{B[z]}``: with ``w = softmax(log pi + B)``,
      ``a[u, z] = c e^{L[u, z]} / f[u, z]``, ``r[u, k] = pi_k e^{L[u, k] - own[u]}`` and
      ``beta_u = sum_z w_z (1 - a[u, z])``: ``dG/dL[u, k] = w_k a[u, k] + beta_u r[u, k]``,
      ``dG/d log pi_k = w_k + sum_u beta_u r[u, k]`` and ``dG/dc = sum_z w_z sum_u (a[u, z]
      / c - (1 - a[u, z]) / (1 - c))``.
    """

    def __init__(
        self,
        data: GroupData,
        hypothesis: Hypothesis,
        index: EventIndex,
        tones,
        lam,
        shift,
        latent: tuple[str, ...],
        varying: bool = False,
    ):
        self.n_sims = data.shape[0]
        self.latent = latent
        self.lapse = hypothesis.lapse
        s, c, p, o = (t.numpy() for t in (index.sim, index.currency, index.pot, index.offer))
        self.cell_sim = s
        kind = index.kind.numpy()[:, None]
        proposed = kind == 0
        self.cells = RationalCells(data, hypothesis, index) if varying else None
        self.log_rational = None
        if not varying:
            rational = rational_tables(group_utilities(hypothesis, data.pots, shift), lam[:, None])
            offer_logp = rational.offer_logp.double().numpy()  # [S, C, K, P, O]
            accept_logit = rational.accept_logit.double().numpy()
            at = (s, c, slice(None), p, o)  # -> [cells, K]
            sign = np.where(kind == 1, 1.0, -1.0)
            self.log_rational = np.where(
                proposed, offer_logp[at], log_expit(sign * accept_logit[at])
            )
        pots = data.pots.double().numpy()[p][:, None]
        self.log_uniform = np.where(proposed, -np.log(pots + 1), -np.log(2.0))  # [cells, 1]
        self.log_uniform_cells = np.ascontiguousarray(self.log_uniform[:, 0])  # [cells]
        self.counts = sparse_counts(index)[0]
        self.mask = data.user_mask.double().numpy()  # [S, U]
        self.fixed_cells = None
        if not varying and "lapse" not in latent:
            self.fixed_cells = self._cells(np.full(1, self.lapse), self.log_rational)[0]
        self.tones = np.ascontiguousarray(tones.double().numpy())  # [S, U, K]
        if "strength" in latent:
            # rho is linear in s, so sum_m rho[k, m] e^{l[u, m]} is too: (1 - s) times the
            # uniform rows' sum plus s times the stereotype rows' (each scaled by e^{-top}).
            per_manner = manner_loglik(data, hypothesis).double().numpy()  # [S, U, M]
            top = per_manner.max(-1, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            like = np.exp(per_manner - top)  # [S, U, M]
            names = hypothesis.policy_names
            rows = coupling_table(names, hypothesis.stereotype, 1.0).double().numpy()  # [K, M]
            self.manner_top = np.ascontiguousarray(top)  # [S, U, 1]
            self.uniform_part = np.ascontiguousarray(like.mean(-1, keepdims=True))  # [S, U, 1]
            self.stereotype_part = np.ascontiguousarray(like @ rows.T)  # [S, U, K]
            self.heard = np.ascontiguousarray(data.tone_counts().sum(-1).numpy() > 0)[..., None]

    def _cells(
        self, eps: np.ndarray, log_rational: np.ndarray, chain: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Each cell's ``log P [cells, K]`` at lapse ``eps`` (``[S]`` or ``[1]``) of its
        rational ``log p`` ``log_rational``, its derivative in ``eps`` and, with ``chain``,
        ``d log P / d log p`` (``None``: 1, no lapse, or not asked for)."""
        from scai.models.kernels import lapse_cells

        if not np.any(eps[self.cell_sim] > 0 if len(eps) > 1 else eps > 0):
            return log_rational, np.zeros_like(log_rational), None
        log_p, d_eps, d_rational = lapse_cells(
            np.ascontiguousarray(log_rational, dtype=np.float64),
            np.ascontiguousarray(eps, dtype=np.float64),
            self.cell_sim,
            self.log_uniform_cells,
        )
        return log_p, d_eps, d_rational if chain else None

    def _tones(self, strength: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``tones [S, U, K]`` at coupling strength ``[S]`` and their derivative in it
        (compiled: :func:`scai.models.kernels.coupled_tones`)."""
        from scai.models.kernels import coupled_tones

        return coupled_tones(
            np.ascontiguousarray(strength, dtype=np.float64),
            self.uniform_part[..., 0],
            self.stereotype_part,
            self.manner_top[..., 0],
            self.heard[..., 0],
        )

    def _scored(self, bounded: dict[str, np.ndarray], scalars: Scalars | None = None):
        """``(cells' log P [cells, K], tones [S, U, K], cells' d log P / d eps, d tones / d s,
        cells' d log P / d lam and d shift)`` (``scalars``: where the tables vary, ``lam`` and
        the shifts; a derivative not needed is ``None``)."""
        d_lam_cell = d_shift_cell = None
        if self.fixed_cells is not None:
            cell_ll, d_eps_cell = self.fixed_cells, None
        else:
            log_rational = self.log_rational
            if self.cells is not None:
                log_rational, d_lam_cell, d_shift_cell = self.cells(
                    scalars.lam, scalars.shift, scalars.needs_lam, scalars.needs_shift
                )
            eps = bounded["lapse"] if "lapse" in bounded else np.full(1, self.lapse)
            chain = d_lam_cell is not None or d_shift_cell is not None
            cell_ll, d_eps_cell, d_rational = self._cells(eps, log_rational, chain)
            if "lapse" not in bounded:
                d_eps_cell = None
            if d_rational is not None:  # the chain rule through the lapse
                d_lam_cell = None if d_lam_cell is None else d_lam_cell * d_rational
                d_shift_cell = None if d_shift_cell is None else d_shift_cell * d_rational
        tones, d_tones = self.tones, None
        if "strength" in bounded:
            tones, d_tones = self._tones(bounded["strength"])
        return cell_ll, tones, d_eps_cell, d_tones, d_lam_cell, d_shift_cell

    def _mixture(
        self,
        cell_ll: np.ndarray,
        tones: np.ndarray,
        log_pi: np.ndarray,
        clone: np.ndarray | None,
        prototype: np.ndarray | None,
        d_tones: np.ndarray | None = None,
    ):
        """The users' and the clone mixture's part, compiled (:func:`scai.models.kernels.
        agent_group`): ``(G [S], dG/d log pi [S, K], dG/dc [S], w [Z, S], dG/d strength [S],
        dG/d cell_ll [cells, K])``."""
        from scai.models.kernels import agent_group

        S = self.n_sims
        return agent_group(
            np.ascontiguousarray(cell_ll, dtype=np.float64),
            np.ascontiguousarray(tones, dtype=np.float64),
            np.ascontiguousarray(log_pi, dtype=np.float64),
            self.mask,
            self.counts.indptr,
            self.counts.indices,
            self.counts.data,
            np.zeros(S) if clone is None else np.ascontiguousarray(clone, dtype=np.float64),
            clone is not None,
            np.zeros(S, dtype=np.int64) if prototype is None else np.asarray(prototype, np.int64),
            prototype is not None,
            self.tones if d_tones is None else d_tones,
            d_tones is not None,
        )

    def prototype(
        self, log_pi: np.ndarray, bounded: dict[str, np.ndarray], scalars: Scalars | None = None
    ) -> np.ndarray:
        """``P(z0 = z | theta, data)`` ``[S, Z]``: the prototype's posterior at ``log_pi [S,
        K]``, the bounded sites ``[S]`` (``clone`` among them) and ``scalars``: the value of
        :func:`scai.models.marginal.prototype_posterior`, without a gradient."""
        cell_ll, tones, *_ = self._scored(bounded, scalars)
        return self._mixture(cell_ll, tones, log_pi, bounded["clone"], None)[3].T

    def group(
        self,
        log_pi: np.ndarray,
        bounded: dict[str, np.ndarray],
        prototype: np.ndarray | None = None,
        scalars: Scalars | None = None,
    ) -> AgentGradient:
        """``G`` and its gradient at ``log_pi [S, K]``, the latent bounded sites ``[S]`` and
        ``scalars`` (where the tables vary); with clones and ``prototype [S]``, of ``log
        p(data, z0 = prototype | theta)`` instead (the same derivatives with ``w`` the
        prototype's indicator)."""
        from scai.models.kernels import cell_sums

        S = self.n_sims
        cell_ll, tones, d_eps_cell, d_tones, d_lam_cell, d_shift_cell = self._scored(
            bounded, scalars
        )
        clone = bounded.get("clone")
        value, d_log_pi, d_clone, _, d_strength, weight = self._mixture(
            cell_ll, tones, log_pi, clone, prototype, d_tones
        )
        out = AgentGradient(value, d_log_pi, None, None, None if clone is None else d_clone)
        if d_tones is not None:
            out.d_strength = d_strength
        if d_eps_cell is not None:
            out.d_lapse = cell_sums(weight, d_eps_cell, self.cell_sim, S)
        if self.cells is not None:
            out.d_lam, out.d_shift = self.cells.scalar_gradients(weight, d_lam_cell, d_shift_cell)
        return out
