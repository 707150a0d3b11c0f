"""The model's likelihood with each user's policy and manner summed out by hand.

For a simulation ``s`` and continuous parameters ``theta = (lam, delta, eps, strength)``, user
``u``'s log-likelihood under type ``k`` is::

    L[s, u, k] = sum_{e: u proposed} log P_offer[k, pot_e, c_e](offer_e)
               + sum_{e: u responded} log Bernoulli(accept_e | P_accept[k, pot_e, c_e, offer_e])
               + log sum_m rho_strength[k, m] prod_t E[m, t] ** n[s, u, t]

(``n`` counts the user's messages of each tone; the action tables include the lapse ``eps``),
and the group's log-likelihood is ``sum_u log sum_k pi[s, k] exp(L[s, u, k])``. With clones
(a group prototype ``z0 ~ pi`` whose type each user copies with probability ``c``, else draws
its own from ``pi``), it is::

    log sum_z0 pi[z0] prod_u (c exp(L[u, z0]) + (1 - c) sum_k pi[k] exp(L[u, k]))

This is exactly the density the Pyro model computes with ``prototype``, ``policy`` and
``manner`` enumerated (a test checks it), computed from the same action tables but without
Pyro's enumeration machinery: it is the torch reference of every engine.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData, own_pot_values, simulation_pots
from scai.models.model import group_tables
from scai.models.policies import UtilityTables


@dataclass
class EventIndex:
    """Sufficient statistics of the actions, computed once per data set.

    Events that share a *cell* (simulation, currency, pot, offer, and what the user did:
    proposed it, accepted it, or rejected it) contribute the same log-probability, so a user's
    action log-likelihood is ``counts[user, cell] @ cell_loglik[cell, k]``: a sparse matrix
    product instead of a gather over every event.
    """

    sim: torch.Tensor  # [n_cells]
    currency: torch.Tensor
    pot: torch.Tensor
    offer: torch.Tensor
    kind: torch.Tensor  # 0 proposed, 1 accepted, 2 rejected
    counts: torch.Tensor  # sparse CSR [S * U, n_cells]
    n_flat_users: int
    counts_t: torch.Tensor | None = None  # its transpose, also CSR (for the backward pass)
    # Each simulation's own pots (scai.models.layout.simulation_pots): ``sim_pots [S, P_s]``,
    # indices into the data's pots, and the cells' slots among them, ``local_pot [n_cells]``.
    sim_pots: torch.Tensor | None = None
    local_pot: torch.Tensor | None = None

    def per_user(self, cell_values: torch.Tensor) -> torch.Tensor:
        """``counts @ cell_values`` (``[n_cells, B] -> [S * U, B]``), differentiable.

        The gradient is ``counts.T @ grad``; autograd would transpose the CSR matrix (a sort
        and a conversion, ~0.5 ms) on every backward pass, so the transpose is built once, when
        a gradient is first wanted (the exact engine never wants one).
        """
        if not (cell_values.requires_grad and torch.is_grad_enabled()):
            return self.counts @ cell_values
        if self.counts_t is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse CSR tensor support", UserWarning)
                self.counts_t = self.counts.to_sparse_coo().t().coalesce().to_sparse_csr()
        return _SparseProduct.apply(cell_values, self.counts, self.counts_t)

    @classmethod
    def from_data(cls, data: GroupData) -> EventIndex:
        S, U, E = data.shape
        s, u, e = torch.nonzero(data.event_mask, as_tuple=True)
        kind = torch.where(
            data.is_proposer[s, u, e],
            0,
            torch.where(data.accepted[s, u, e] > 0.5, 1, 2),
        )
        fields = [
            s,
            data.currency_index[s, u, e].long(),
            data.pot_index[s, u, e].long(),
            data.offer[s, u, e].long(),
            kind,
        ]
        # One integer key per event (mixed radix): a 1-D unique is ~50x faster than
        # torch.unique(dim=...) over the stacked fields, and NumPy's ~3x faster than torch's.
        sizes = [int(f.max()) + 1 if len(f) else 1 for f in fields]
        key = np.zeros(len(s), dtype=np.int64)
        for field, size in zip(fields, sizes, strict=True):
            key = key * size + field.numpy()
        unique_keys, cell_of_event = np.unique(key, return_inverse=True)
        cells = []
        for size in reversed(sizes):
            cells.append(torch.from_numpy(unique_keys % size))
            unique_keys = unique_keys // size
        cells.reverse()
        n_cells = max(len(cells[0]), 1)
        counts = user_cell_counts((s * U + u).numpy(), cell_of_event.reshape(-1), S * U, n_cells)
        sim_pots, local_pot = simulation_pots(cells[0], cells[2], S, len(data.pots))
        return cls(
            *cells, counts=counts, n_flat_users=S * U, sim_pots=sim_pots, local_pot=local_pot
        )


def user_cell_counts(user: np.ndarray, cell: np.ndarray, n_users: int, n_cells: int):
    """The sparse CSR ``[n_users, n_cells]`` matrix of how many events of each user fall in
    each cell, for events given as ``user`` and ``cell`` indices: the matrix a
    COO tensor of ones coalesces to (entries in row-major order, counts summed), its indices
    int64, without torch's coalescing sort (~4x slower on a learning curve's 50,000 events)."""
    flat_keys, per_entry = np.unique(user * n_cells + cell, return_counts=True)
    rows = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(flat_keys // n_cells, minlength=n_users), out=rows[1:])
    with warnings.catch_warnings():
        # torch flags sparse CSR as "beta" on every construction; the indices are built
        # here and valid by construction, so the invariant checks are skipped on purpose.
        warnings.filterwarnings("ignore", "Sparse CSR tensor support", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(rows),
            torch.from_numpy(flat_keys % n_cells),
            torch.from_numpy(per_entry).to(torch.get_default_dtype()),
            (n_users, n_cells),
            check_invariants=False,
        )


class _SparseProduct(torch.autograd.Function):
    """``A @ x`` for a constant sparse ``A`` whose transpose is given."""

    @staticmethod
    def forward(x: torch.Tensor, a: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:
        return a @ x

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.a_t = inputs[2]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.a_t @ grad, None, None


def manner_loglik(data: GroupData, hypothesis: Hypothesis) -> torch.Tensor:
    """``[S, U, M]``: ``sum_t n[s, u, t] log E[m, t]``, the log-probability of each user's
    tones given its manner (``-inf`` where the manner cannot produce one of them)."""
    counts = data.tone_counts().to(torch.get_default_dtype())  # [S, U, T]
    emission = hypothesis.emission()  # [M, T]
    never = emission == 0  # a tone reader that never reports t: a column of zeros of E @ R
    log_e = emission.log().masked_fill(never, 0.0)  # so that 0 messages * log 0 is 0, not NaN
    per_manner = counts @ log_e.T  # [S, U, M]
    if never.any():  # and a message of a tone the manner cannot produce is impossible
        impossible = counts @ never.T.to(counts.dtype) > 0
        per_manner = per_manner.masked_fill(impossible, -torch.inf)
    return per_manner


def _manner_joint(
    data: GroupData, hypothesis: Hypothesis, strength: torch.Tensor | None = None
) -> torch.Tensor:
    """``[..., S, U, K, M]``: ``log rho[k, m] + sum_t n[s, u, t] log E[m, t]`` (``strength
    [..., S]`` when the coupling is learned per group)."""
    per_manner = manner_loglik(data, hypothesis)
    log_rho = hypothesis.coupling(strength).log()  # [K, M] or [..., S, K, M]
    if strength is not None:
        log_rho = log_rho.unsqueeze(-3)  # [..., S, 1, K, M]
    return per_manner.unsqueeze(-2) + log_rho


def tone_loglik(
    data: GroupData, hypothesis: Hypothesis, strength: torch.Tensor | None = None
) -> torch.Tensor:
    """``[..., S, U, K]``: ``log sum_m rho[k, m] prod_t E[m, t] ** n[s, u, t]``; exactly 0
    for a user heard in no tone (``sum_m rho[k, m] = 1``: the sum in floating point can miss
    by an ulp, which would make a stereotype's strength seem to matter without tones)."""
    heard = data.tone_counts().sum(-1, keepdim=True) > 0  # [S, U, 1]
    return torch.logsumexp(_manner_joint(data, hypothesis, strength), dim=-1).masked_fill(
        ~heard, 0.0
    )


def manner_given_type(
    data: GroupData, hypothesis: Hypothesis, strength: torch.Tensor | None = None
) -> torch.Tensor:
    """``[..., S, U, K, M]``: ``P(m_u = m | z_u = k, tones_u)``, each user's manner given its
    type and the tones it was heard in."""
    return torch.softmax(_manner_joint(data, hypothesis, strength), dim=-1)


def action_loglik(
    data: GroupData,
    hypothesis: Hypothesis,
    lam: torch.Tensor,
    shift: torch.Tensor,
    index: EventIndex | None = None,
    utilities: UtilityTables | None = None,
    lapse: torch.Tensor | None = None,
    lapse_on_cells: bool = False,
) -> torch.Tensor:
    """``[..., S, U, K]``: the offers' and decisions' log-likelihood under each type, for
    ``lam [..., S]`` and ``shift [..., S, C]`` (or ``[..., 1]``, ``[..., 1, C]`` when shared by
    all simulations) and ``lapse`` (like ``lam``; default the hypothesis's fixed one).
    ``utilities``: precomputed for this shift (see ``group_utilities``).

    ``lapse_on_cells``: mix the lapse into the scored cells only (:func:`_lapsed_cells`), not
    into whole tables: the same values to rounding, for a ``lapse [B, S]`` of many values over
    ``lam`` and ``shift`` of batch 1 (a posterior's draws: the tables once, not per draw)."""
    index = index or EventIndex.from_data(data)
    S, U, _ = data.shape
    if lapse_on_cells and lapse is not None:  # the tables without any lapse, the fixed one too
        hypothesis, lapse_now = hypothesis.with_(lapse=0.0), None
    else:
        lapse_now = lapse
    pots, pot_at = data.pots, index.pot
    if utilities is not None:
        if utilities.pots.dim() > 1:  # computed over each simulation's own pots
            pot_at = index.local_pot
    elif _differ_by_simulation(lam, shift, lapse_now):
        own = own_pots(data, index)
        if own is not None:
            pots, pot_at = own, index.local_pot
    tables = group_tables(hypothesis, pots, lam, shift, utilities, lapse_now)
    # Move the type dimension last so the cell gather is one advanced index.
    offer_lp = tables.offer_logp.movedim(-3, -1)  # [..., S, C, P, O, K]
    accept_logit = tables.accept_logit.movedim(-3, -1)
    # Parameters shared by every simulation come with a simulation dimension of size 1.
    sim = index.sim if offer_lp.shape[-5] > 1 else torch.zeros_like(index.sim)
    at = (sim, index.currency, pot_at, index.offer)
    logit = accept_logit[(..., *at, slice(None))]  # [..., n_cells, K]
    kind = index.kind.unsqueeze(-1)
    cell_ll = torch.where(
        kind == 0,
        offer_lp[(..., *at, slice(None))],
        torch.nn.functional.logsigmoid(torch.where(kind == 1, logit, -logit)),
    )
    if lapse_on_cells and lapse is not None:
        cell_ll = _lapsed_cells(cell_ll, index, data.pots, lapse)
    batch = cell_ll.shape[:-2]
    K = cell_ll.shape[-1]
    if cell_ll.shape[-2] == 0:  # nothing scored (a simulation without events): no evidence
        return cell_ll.new_zeros(*batch, S, U, K)
    # [cells, batch * K] so that one sparse product serves every batch element.
    flat = cell_ll.movedim(-2, 0).reshape(cell_ll.shape[-2], -1)
    out = index.per_user(flat).reshape(index.n_flat_users, *batch, K).movedim(0, -2)
    return out.reshape(*batch, S, U, K)


def own_pots(data: GroupData, index: EventIndex) -> torch.Tensor | None:
    """``[S, 1, 1, P_s]``: each simulation's own pots (``index.sim_pots``), the pots of tables
    that differ by simulation, where the simulations play fewer pots each than the data hold
    (``None`` otherwise, and for one simulation): :func:`action_loglik` reads such tables, or
    utilities computed over these pots (:class:`~scai.models.density.MarginalDensity`), at
    each cell's slot ``index.local_pot``."""
    return None if index.sim_pots is None else own_pot_values(data.pots, index.sim_pots)


def _differ_by_simulation(
    lam: torch.Tensor, shift: torch.Tensor, lapse: torch.Tensor | None
) -> bool:
    """Whether tables of these parameters differ by simulation (a simulation dimension above
    1): then :func:`action_loglik` builds each simulation's over its own pots."""
    sizes = [lam.shape[-1], shift.shape[-2]] + ([] if lapse is None else [lapse.shape[-1]])
    return max(sizes) > 1


def _lapsed_cells(
    cell_ll: torch.Tensor, index: EventIndex, pots: torch.Tensor, lapse: torch.Tensor
) -> torch.Tensor:
    """:func:`~scai.models.policies.with_lapse` on the scored cells ``[..., n_cells, K]`` of
    rational tables, for ``lapse [..., S]`` (``[..., 1]``: shared): an offer ``o`` of pot ``p``
    has ``log(eps / (p + 1) + (1 - eps) P(o))``, a decision ``log(eps / 2 + (1 - eps) P)``."""
    dtype = cell_ll.dtype
    eps = torch.as_tensor(lapse, dtype=dtype)
    sim = index.sim if eps.shape[-1] > 1 else torch.zeros_like(index.sim)
    eps = eps[..., sim].unsqueeze(-1)  # [..., n_cells, 1]
    choices = torch.where(
        index.kind == 0, pots.to(dtype)[index.pot] + 1, torch.tensor(2.0, dtype=dtype)
    ).unsqueeze(-1)
    return torch.logaddexp(torch.log(eps / choices), torch.log1p(-eps) + cell_ll)


def shared_by_simulations(
    lam: torch.Tensor, shift: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam [..., S]`` and ``shift [..., S, C]`` with a simulation dimension of size 1 where
    every simulation holds the same values (fixed ones: the hypothesis's), so that
    :func:`action_loglik` builds one set of action tables, not one per simulation (each over
    every pot of the data: 5,000 simulations' copies took 3 GB); else as given."""
    if (
        lam.shape[-1] > 1
        and bool((lam == lam[..., :1]).all())
        and bool((shift == shift[..., :1, :]).all())
    ):
        return lam[..., :1], shift[..., :1, :]
    return lam, shift


def user_loglik(
    data: GroupData,
    hypothesis: Hypothesis,
    lam: torch.Tensor,
    shift: torch.Tensor,
    index: EventIndex | None = None,
    tones: torch.Tensor | None = None,
    utilities: UtilityTables | None = None,
    lapse: torch.Tensor | None = None,
    strength: torch.Tensor | None = None,
    lapse_on_cells: bool = False,
) -> torch.Tensor:
    """``L[..., s, u, k]`` (see the module docstring); padded users get 0. ``tones`` (from
    :func:`tone_loglik`) may be passed when the coupling's strength is fixed.
    ``lapse_on_cells``: see :func:`action_loglik`."""
    if tones is None:
        tones = tone_loglik(data, hypothesis, strength)
    total = action_loglik(
        data, hypothesis, lam, shift, index, utilities, lapse, lapse_on_cells=lapse_on_cells
    )
    total = total + tones
    return total * data.user_mask.unsqueeze(-1)


def _prototype_terms(
    log_pi: torch.Tensor, loglik: torch.Tensor, clone: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """With clones: ``log f[..., S, U, z0] = log(c e^L[u, z0] + (1 - c) sum_k pi_k e^L[u, k])``
    and ``log P(z_u = k | z0) = log(c [k = z0] + (1 - c) pi_k)`` ``[..., S, K0, K]``."""
    c = clone.unsqueeze(-1).unsqueeze(-1)  # [..., S, 1, 1]
    own = torch.logsumexp(log_pi.unsqueeze(-2) + loglik, dim=-1, keepdim=True)  # [..., S, U, 1]
    log_f = torch.logaddexp(c.log() + loglik, torch.log1p(-c) + own)
    K = log_pi.shape[-1]
    eye = torch.eye(K, dtype=log_pi.dtype)
    given = (c * eye + (1 - c) * log_pi.exp().unsqueeze(-2)).clamp_min(1e-300).log()
    return log_f, given


def prototype_loglik(
    log_pi: torch.Tensor, loglik: torch.Tensor, user_mask: torch.Tensor, clone: torch.Tensor
) -> torch.Tensor:
    """With clones: ``log p(data, z0 | theta)`` ``[..., S, K0]``, ``log pi[z0] + sum_u log(c
    e^L[u, z0] + (1 - c) sum_k pi_k e^L[u, k])``: each term of the prototype mixture."""
    log_f, _ = _prototype_terms(log_pi, loglik, clone)
    return _by_prototype(log_pi, log_f, user_mask)


def _by_prototype(log_pi: torch.Tensor, log_f: torch.Tensor, user_mask: torch.Tensor):
    """``log pi[z0] + sum_u log f[u, z0]`` ``[..., S, K0]`` (:func:`prototype_loglik`)."""
    return log_pi + (log_f * user_mask.unsqueeze(-1)).sum(-2)


def group_loglik(
    log_pi: torch.Tensor,
    loglik: torch.Tensor,
    user_mask: torch.Tensor,
    clone: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[..., S]``: ``sum_u log sum_k pi[s, k] exp(L[s, u, k])`` for ``log_pi [..., S, K]``;
    with ``clone [..., S]``, the prototype mixture of the module docstring."""
    if clone is None:  # independent users: the sum of their own terms
        return leave_one_out_loglik(log_pi, loglik, user_mask).sum(-1)
    return torch.logsumexp(prototype_loglik(log_pi, loglik, user_mask, clone), dim=-1)


def leave_one_out_loglik(
    log_pi: torch.Tensor,
    loglik: torch.Tensor,
    user_mask: torch.Tensor,
    clone: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[..., S, U]``: ``log p(y_u | y_-u, theta)``, each user's log-likelihood given the
    other users' data (0 for padding). Without clones the users are independent given
    ``theta``: ``log sum_k pi_k exp(L[u, k])``. With clones (``clone [..., S]``) they share a
    prototype, so a user's term is the group's log-likelihood minus the group's without it,
    ``log sum_z0 pi[z0] prod_v f_v(z0) - log sum_z0 pi[z0] prod_(v != u) f_v(z0)``
    (:func:`prototype_loglik`): the terms of a non-factorised leave-one-user-out (each a
    conditional, so they do not add up to the group's log-likelihood)."""
    if clone is None:
        per_user = torch.logsumexp(log_pi.unsqueeze(-2) + loglik, dim=-1)
        return per_user * user_mask
    by_prototype, without_user = _leave_one_out_terms(log_pi, loglik, user_mask, clone)
    whole = torch.logsumexp(by_prototype, dim=-1)  # [..., S]
    without = torch.logsumexp(without_user, dim=-1)  # [..., S, U]
    return (whole.unsqueeze(-1) - without) * user_mask


def prototype_given_others(
    log_pi: torch.Tensor, loglik: torch.Tensor, user_mask: torch.Tensor, clone: torch.Tensor
) -> torch.Tensor:
    """With clones: ``P(z0 | theta, y_-u)`` ``[..., S, U, K0]``, the prototype given every
    user's data but user ``u``'s: with ``z_u ~ c [z0] + (1 - c) pi`` the type of a new user
    in ``u``'s place, the predictive :func:`leave_one_out_loglik` scores."""
    _, without_user = _leave_one_out_terms(log_pi, loglik, user_mask, clone)
    return torch.softmax(without_user, dim=-1)


def _leave_one_out_terms(
    log_pi: torch.Tensor, loglik: torch.Tensor, user_mask: torch.Tensor, clone: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(z0, y | theta)`` ``[..., S, K0]`` and ``log p(z0, y_-u | theta)`` ``[..., S,
    U, K0]`` of the prototype mixture (:func:`prototype_loglik`)."""
    log_f, _ = _prototype_terms(log_pi, loglik, clone)
    by_prototype = _by_prototype(log_pi, log_f, user_mask)  # [..., S, K0]
    return by_prototype, by_prototype.unsqueeze(-2) - log_f * user_mask.unsqueeze(-1)


def type_posterior(
    log_pi: torch.Tensor,
    loglik: torch.Tensor,
    user_mask: torch.Tensor | None = None,
    clone: torch.Tensor | None = None,
) -> torch.Tensor:
    """``P(z_u = k | theta, data)`` ``[..., S, U, K]``: each user's type given the parameters
    (with clones, averaged over the prototype's posterior ``P(z0 | theta, data)``)."""
    if clone is None:
        # The softmax runs over types laid out [..., K, U]: over a last dimension of K = 3
        # entries torch's softmax costs ~3x as much (a user's row at a time).
        joint = (log_pi.unsqueeze(-1) + loglik.transpose(-1, -2)).contiguous()
        return torch.softmax(joint, dim=-2).transpose(-1, -2)
    prototype, given_z0 = prototype_posterior(log_pi, loglik, user_mask, clone)
    return (prototype.unsqueeze(-2).unsqueeze(-1) * given_z0).sum(-2)


def prototype_posterior(
    log_pi: torch.Tensor, loglik: torch.Tensor, user_mask: torch.Tensor, clone: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """With clones: ``P(z0 | theta, data)`` ``[..., S, K0]`` and each user's type given the
    prototype, ``P(z_u = k | z0, theta, data_u)`` ``[..., S, U, K0, K]``."""
    log_f, given = _prototype_terms(log_pi, loglik, clone)
    prototype = torch.softmax(_by_prototype(log_pi, log_f, user_mask), dim=-1)
    joint = given.unsqueeze(-3) + loglik.unsqueeze(-2) - log_f.unsqueeze(-1)
    return prototype, joint.exp()


def marginal_model(
    data: GroupData,
    hypothesis: Hypothesis,
    index: EventIndex | None = None,
    tones: torch.Tensor | None = None,
) -> None:
    """:func:`scai.models.model.social_contract_model` with ``policy`` and ``manner`` summed out by
    hand: the same continuous sites, then one factor ``sum_u log sum_k pi_k exp(L[u, k])`` per
    simulation. Its density equals the enumerated Pyro model's; gradient-based engines use it
    because it skips Pyro's enumeration bookkeeping."""
    import pyro

    from scai.models.model import group_parameters, in_plates

    S = data.shape[0]
    C = len(data.currencies)
    sims, sites = group_parameters(data, hypothesis)
    pi = sites["pi"]  # (a batch of it is taken by social_contract_model alone)
    in_plates("pi", pi, (S, 1, 1, pi.shape[-1]), model="marginal_model")
    flat = {k: v.reshape(S, -1).squeeze(-1) for k, v in sites.items() if v is not None}
    loglik = user_loglik(
        data,
        hypothesis,
        flat["lam"],
        sites["shift"].reshape(S, C),
        index,
        tones if sites["strength"] is None else None,
        lapse=flat.get("lapse"),
        strength=flat.get("strength"),
    )
    log_pi = pi.reshape(S, -1).clamp_min(torch.finfo(pi.dtype).tiny).log()
    group = group_loglik(log_pi, loglik, data.user_mask, flat.get("clone"))
    with sims:
        pyro.factor("users", group.reshape(S, 1, 1))
