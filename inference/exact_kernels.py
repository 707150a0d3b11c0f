"""The exact engine's kernels: the group log-likelihood and the users' type probabilities on a
grid, with users the data have decided summed in closed form."""

from __future__ import annotations

import math

import torch

from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, action_loglik


def grid_action_loglik(
    data: GroupData,
    hypothesis: Hypothesis,
    lam_t: torch.Tensor,
    shift_t: torch.Tensor,
    chunk: int = 32,
) -> torch.Tensor:
    """``[T, S, U, K]`` action log-likelihood at every grid point ``(lam_t[t], shift_t[t])``."""
    index = EventIndex.from_data(data)
    parts = []
    for start in range(0, lam_t.shape[0], chunk):
        # Grid values are shared by all simulations: a simulation dimension of size 1.
        lam = lam_t[start : start + chunk].unsqueeze(-1).to(torch.get_default_dtype())
        shift = shift_t[start : start + chunk].unsqueeze(-2).to(torch.get_default_dtype())
        parts.append(action_loglik(data, hypothesis, lam, shift, index).double())
    return torch.cat(parts)


#: A user whose best type beats every other by more than this many nats, plus what the
#: smallest ``pi`` on the lattice can take back (``-log min pi``), is *decided*: the other types
#: change ``log sum_k pi_k e^L_k`` by less than ``e^-DECIDED_NATS`` (~1e-20).
DECIDED_NATS = 45.0


def decided_users(
    L: torch.Tensor, pi_grid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For ``L [t, S, U, K]``: whether each user is decided at each grid point, its best type
    there and that type's log-likelihood (each ``[t, S, U]``)."""
    if L.shape[-1] == 1:
        ones = torch.ones(L.shape[:-1], dtype=torch.bool)
        return ones, torch.zeros(L.shape[:-1], dtype=torch.long), L[..., 0]
    top2 = L.topk(2, dim=-1)
    margin = DECIDED_NATS - math.log(float(pi_grid.min()))
    values = top2.values
    return values[..., 0] - values[..., 1] > margin, top2.indices[..., 0], values[..., 0]


def count_by_type(best: torch.Tensor, weight: torch.Tensor, K: int) -> torch.Tensor:
    """``[..., K]``: ``sum_u weight[..., u] [best[..., u] == k]``, for ``[..., U]`` inputs."""
    out = torch.zeros(*best.shape[:-1], K, dtype=weight.dtype)
    return out.scatter_add_(-1, best, weight)


def lattice_group_loglik(
    L: torch.Tensor, mask: torch.Tensor, pi_grid: torch.Tensor
) -> torch.Tensor:
    """``[t, S, G]``: ``sum_u log sum_k pi_gk exp(L[t, s, u, k])`` over the real users.

    A user decided at a grid point (:data:`DECIDED_NATS`) contributes ``L[best] + log
    pi_g[best]`` there, so those terms sum to a ``[K] @ [K, G]`` product; only the undecided
    (grid point, user) pairs need a row of the ``[pairs, G]`` matrix. With thousands of users
    whose type the data settle, this is what makes the engine fast.
    """
    t, S, U, K = L.shape
    is_decided, best, top = decided_users(L, pi_grid)  # [t, S, U] each
    weight = (mask * is_decided).to(L.dtype)  # [t, S, U]
    n_best = count_by_type(best, weight, K)  # [t, S, K]
    out = (top * weight).sum(-1, keepdim=True) + n_best @ pi_grid.log().T  # [t, S, G]
    rest = (~is_decided) & mask.bool()
    if rest.any():
        pair, user = torch.nonzero(rest.reshape(t * S, U), as_tuple=True)
        rows = L.reshape(t * S, U, K)[pair, user]  # [N, K]
        top_r = top.reshape(t * S, U)[pair, user].unsqueeze(-1)
        terms = ((rows - top_r).exp() @ pi_grid.T).log() + top_r  # [N, G]
        out = out.reshape(t * S, -1).index_add(0, pair, terms).reshape(t, S, -1)
    return out


def lattice_policy_probs(
    weights: torch.Tensor, loglik: torch.Tensor, pi_grid: torch.Tensor, chunk: int = 32
) -> torch.Tensor:
    """``P(z_u = k | data) = sum_{t,g} w[t,s,g] pi_gk e^L[t,s,u,k] / sum_j pi_gj e^L[t,s,u,j]``.

    The sum over the simplex lattice ``g`` is a matrix product, so no ``[t, g, u, k]`` tensor is
    ever formed; a user decided at a grid point (:data:`DECIDED_NATS`) has its best type with
    probability 1 there.
    """
    T, S, U, K = loglik.shape
    out = torch.zeros(S * U, K, dtype=loglik.dtype)
    for start in range(0, T, chunk):
        L = loglik[start : start + chunk]
        w = weights[start : start + chunk]  # [t, S, G]
        is_decided, best, _ = decided_users(L, pi_grid)
        mass = (w.sum(-1, keepdim=True) * is_decided).to(L.dtype)  # [t, S, U]: where decided
        one_hot = torch.zeros(*best.shape, K, dtype=L.dtype)
        one_hot.scatter_(-1, best.unsqueeze(-1), mass.unsqueeze(-1))
        out += one_hot.sum(0).reshape(S * U, K)
        if (~is_decided).any():
            step, sim, user = torch.nonzero(~is_decided, as_tuple=True)
            rows = L[step, sim, user]  # [N, K]
            like_k = (rows - rows.max(-1, keepdim=True).values).exp()
            ratio = w[step, sim] / (like_k @ pi_grid.T)  # [N, G]
            out.index_add_(0, sim * U + user, like_k * (ratio @ pi_grid))
    out = out.reshape(S, U, K)
    return out / out.sum(-1, keepdim=True).clamp_min(1e-300)
