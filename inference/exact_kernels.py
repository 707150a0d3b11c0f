"""The exact engine's kernels: the group log-likelihood and the users' type probabilities on a
grid, with users the data have decided summed in closed form."""

from __future__ import annotations

import math

import torch

from scai.models.distinct import distinct_rows
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, action_loglik

#: Grid points times simulations whose scored cells are gathered at once.
POINTS_PER_CHUNK = 640
#: Undecided users' rows whose ``[rows, lattice]`` products the lattice kernels form at once:
#: ~6 MB on the 2,926-point lattice, where all of a learning curve's (thousands of rows) took
#: a fresh ~100 MB tensor, paid in page faults and cache misses (the same operations on the
#: same numbers, row by row in order: the same bits).
ROWS_PER_BLOCK = 256


def grid_action_loglik(
    data: GroupData,
    hypothesis: Hypothesis,
    lam_t: torch.Tensor,
    shift_t: torch.Tensor,
    chunk: int | None = None,
    lapse_t: torch.Tensor | None = None,
    index: EventIndex | None = None,
) -> torch.Tensor:
    """``[T, S, U, K]`` action log-likelihood at every grid point ``(lam_t[t], shift_t[t])``
    (and ``lapse_t[t]`` where the lapse is latent), ``chunk`` grid points at a time (by
    default ``640 // S``, at least 32: the scored cells gathered from the tables grow with the
    simulations, and stay about the size of 32 points' for 20 simulations). ``index``: the
    data's :class:`EventIndex`, where the caller scores the same data on several grids."""
    chunk = chunk or max(32, POINTS_PER_CHUNK // max(1, data.shape[0]))
    index = index or EventIndex.from_data(data)
    dtype = torch.get_default_dtype()
    parts = []
    for start in range(0, lam_t.shape[0], chunk):
        # Grid values are shared by all simulations: a simulation dimension of size 1.
        lam = lam_t[start : start + chunk].unsqueeze(-1).to(dtype)
        shift = shift_t[start : start + chunk].unsqueeze(-2).to(dtype)
        lapse = None
        if lapse_t is not None:
            lapse = lapse_t[start : start + chunk].unsqueeze(-1).to(dtype)
        parts.append(action_loglik(data, hypothesis, lam, shift, index, lapse=lapse).double())
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
    L: torch.Tensor, mask: torch.Tensor, pi_grid: torch.Tensor, clone: torch.Tensor | None = None
) -> torch.Tensor:
    """``[t, S, G]``: ``sum_u log sum_k pi_gk exp(L[t, s, u, k])`` over the real users (with
    clones ``clone [t]``: the prototype mixture, :func:`lattice_clone_loglik`). ``mask [S, U]``
    weights each user: 1 for a user, 0 for padding, ``n`` for one standing for ``n`` users with
    the same data (:func:`distinct_users`).

    A user decided at a grid point (:data:`DECIDED_NATS`) contributes ``L[best] + log
    pi_g[best]`` there, so those terms sum to a ``[K] @ [K, G]`` product; only the undecided
    (grid point, user) pairs need a row of the ``[pairs, G]`` matrix. With thousands of users
    whose type the data settle, this is what makes the engine fast.
    """
    if clone is not None:
        return lattice_clone_loglik(L, mask, pi_grid, clone)
    t, S, U, K = L.shape
    is_decided, best, top = decided_users(L, pi_grid)  # [t, S, U] each
    weight = (mask * is_decided).to(L.dtype)  # [t, S, U]
    n_best = count_by_type(best, weight, K)  # [t, S, K]
    # (The [t, S, G] and [N, G] tensors below are updated in place: the same operations in the
    # same order, without a fresh tensor of that size for each.)
    out = (n_best @ pi_grid.log().T).add_((top * weight).sum(-1, keepdim=True))  # [t, S, G]
    rest = (~is_decided) & mask.bool()
    if rest.any():
        pair, user = torch.nonzero(rest.reshape(t * S, U), as_tuple=True)
        rows = L.reshape(t * S, U, K)[pair, user]  # [N, K]
        top_r = top.reshape(t * S, U)[pair, user].unsqueeze(-1)
        count = mask.expand(t, S, U).reshape(t * S, U)[pair, user].unsqueeze(-1).to(L.dtype)
        flat = out.view(t * S, -1)
        first, which = _repeated_rows(torch.cat([rows, count], -1), pi_grid.shape[0])
        if first is None:  # [rows, G] at a time

            def terms_of(block: slice) -> torch.Tensor:
                return _user_terms(e[block], top_r[block], count[block], pi_grid)

            e = (rows - top_r).exp()
        else:  # each distinct row's terms once, taken where each copy sits
            top_r, count = top_r[first], count[first]
            distinct = _user_terms((rows[first] - top_r).exp(), top_r, count, pi_grid)

            def terms_of(block: slice) -> torch.Tensor:
                return distinct[which[block]]

        for a in range(0, len(pair), ROWS_PER_BLOCK):  # added in order
            block = slice(a, a + ROWS_PER_BLOCK)
            flat.index_add_(0, pair[block], terms_of(block))
    return out


#: Most entries of the ``[distinct rows, G]`` terms :func:`lattice_group_loglik` forms at once
#: when rows repeat (32 MB in float64).
REPEATED_TERMS_BUDGET = 2**22


def _repeated_rows(
    keys: torch.Tensor, G: int
) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
    """Where at most half of the undecided users' ``keys [N, K + 1]`` (log-likelihoods, count)
    are distinct (a learning curve's prefixes: a user's row is the same from one of its actions
    to the next) and their ``[distinct, G]`` terms fit :data:`REPEATED_TERMS_BUDGET`: the first
    index of each distinct row and every row's distinct row; else ``(None, None)``."""
    if len(keys) < 2 * ROWS_PER_BLOCK:  # few rows: their blocks cost little either way
        return None, None
    first, which, _ = distinct_rows(keys)
    if 2 * len(first) > len(keys) or len(first) * G > REPEATED_TERMS_BUDGET:
        return None, None
    return first, which


def _user_terms(
    e: torch.Tensor, top: torch.Tensor, count: torch.Tensor, pi_grid: torch.Tensor
) -> torch.Tensor:
    """``[rows, G]``: ``count (top + log sum_k pi_gk e_k)``, undecided users' terms of the group
    log-likelihood at every point of the lattice, for ``e = exp(L - top) [rows, K]``, ``top``
    and ``count`` ``[rows, 1]`` (each row's numbers do not depend on the other rows)."""
    return (e @ pi_grid.T).log_().add_(top).mul_(count)


def lattice_clone_loglik(
    L: torch.Tensor, mask: torch.Tensor, pi_grid: torch.Tensor, clone: torch.Tensor
) -> torch.Tensor:
    """``[t, S, G]``: ``log sum_z0 pi_g[z0] prod_u f_u(z0)``, ``f_u(z0) = c e^L[u, z0] + (1 - c)
    sum_k pi_gk e^L[u, k]`` (``c = clone[t]``), the group likelihood with clones.

    A decided user with best type ``b`` has ``log f_u(z0) = L[b] + log((1 - c) pi_gb + c [z0 =
    b])`` (the other types' terms are below ``e^-DECIDED_NATS`` of it), so the decided users of a
    type count together as in :func:`lattice_group_loglik`. The undecided need a ``[G, K0]``
    block each: the users that carry weight in ``mask`` (one per kind of clone, from
    :func:`distinct_users`) are gathered (``V`` the most such users in any simulation) and their
    ``[t, S, G, K0]`` terms added user by user in their order.
    """
    t, S, U, K = L.shape
    c = clone.to(L.dtype).reshape(t, 1, 1, 1)  # [t, 1(g), 1(z0), 1(b)]
    eye = torch.eye(K, dtype=L.dtype)
    log_m = ((1 - c) * pi_grid[:, None, :] + c * eye).log()  # [t, G, K0, K(b)]
    is_decided, best, top = decided_users(L, pi_grid)
    weight = (mask * is_decided).to(L.dtype)
    n_best = count_by_type(best, weight, K)  # [t, S, K]
    by_z0 = torch.einsum("tsb,tgzb->tsgz", n_best, log_m)  # [t, S, G, K0]
    by_z0 = by_z0 + (top * weight).sum(-1)[..., None, None]
    rest = (~is_decided) & mask.bool()  # [t, S, U]
    if rest.any():
        users, present = weighted_users(mask)  # [S, V]
        sims = torch.arange(S)[:, None]
        rows = L[:, sims, users]  # [t, S, V, K]
        top_r = top[:, sims, users].unsqueeze(-1)  # [t, S, V, 1]
        count = mask[sims, users].to(L.dtype) * present  # [S, V]
        undecided = rest[:, sims, users] & present  # [t, S, V]
        e = (rows - top_r).exp()
        own = (e @ pi_grid.T).unsqueeze(-1)  # [t, S, V, G, 1]
        c_r = c.reshape(t, 1, 1, 1, 1)
        # f = c e[z0] + (1 - c) own: both products on the small factors, then one user's
        # [t, S, G, K0] sum at a time (all users' at once: a block that outgrew the caches)
        clone_part, own_part = c_r * e.unsqueeze(-2), (1 - c_r) * own
        shift, weight = top_r.unsqueeze(-1), count[..., None, None]
        by_z0 = by_z0.contiguous()
        for v in range(users.shape[1]):  # user by user, in order (as one index_add would)
            if not bool(undecided[:, :, v].any()):
                continue  # decided wherever it counts: counted above
            term = torch.add(clone_part[:, :, v], own_part[:, :, v])  # [t, S, G, K0]
            term = term.log_().add_(shift[:, :, v]).mul_(weight[:, v])
            term.masked_fill_(~undecided[:, :, v, None, None], 0.0)
            by_z0.add_(term)
    return torch.logsumexp(pi_grid.log() + by_z0, dim=-1)


def weighted_users(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[S, V]`` indices of the users with weight in ``mask [S, U]``, in order, padded (with
    user 0) to the most any simulation has, and ``[S, V]`` whether an entry is real."""
    keep = mask > 0
    V = max(1, int(keep.sum(-1).max()))
    order = torch.sort((~keep).to(torch.int8), dim=-1, stable=True).indices[:, :V]
    present = torch.gather(keep, 1, order)
    return torch.where(present, order, 0), present


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
            # Users of one simulation with the same log-likelihoods at a grid point (clones,
            # users not yet seen) have the same probabilities there: each worked out once.
            at = torch.stack([step, sim], -1).to(rows.dtype)
            first, which, _ = distinct_rows(torch.cat([at, rows], -1))
            rows, step_, sim_ = rows[first], step[first], sim[first]
            like_k = (rows - rows.max(-1, keepdim=True).values).exp()
            by_pi = torch.empty_like(like_k)  # [N', K]: sum_g ratio[n, g] pi_gk
            for a in range(0, len(first), ROWS_PER_BLOCK):  # [rows, G] at a time
                block = slice(a, a + ROWS_PER_BLOCK)
                ratio = w[step_[block], sim_[block]].div_(like_k[block] @ pi_grid.T)
                torch.mm(ratio, pi_grid, out=by_pi[block])
            out.index_add_(0, sim * U + user, (like_k * by_pi)[which])
    out = out.reshape(S, U, K)
    return out / out.sum(-1, keepdim=True).clamp_min(1e-300)


def clone_policy_probs(
    weights: torch.Tensor,
    loglik: torch.Tensor,
    mask: torch.Tensor,
    pi_grid: torch.Tensor,
    clone: torch.Tensor,
    mass: float = 1 - 1e-6,
    max_points: int = 2000,
    tail_points: int = 20000,
) -> tuple[torch.Tensor, float, float]:
    """``[S, U, K]``: ``P(z_u = k | data)`` with clones, ``sum_{t,g} w[t,s,g] f_u(t, g)``,
    ``f_u(t, g) = sum_z0 P(z0 | t, g, data) P(z_u = k | z0, t, g, data_u)`` (users are coupled
    through the prototype: no closed form over the lattice applies, and evaluating ``f`` at all
    ``T x G`` points, millions with three bounded sites, is too slow).

    The heaviest points, those that hold ``mass`` of each simulation's posterior (at most
    ``max_points``), are summed exactly; the rest of the posterior, if any, by a systematic
    sample of ``tail_points`` points drawn in proportion to their weights (deterministic:
    midpoints of equal strata of the cumulative weight, in grid order; 0: the heaviest points
    alone, renormalised). Also returned: the
    least mass summed exactly over simulations, and the largest standard error of the
    sampled part, ``(1 - exact mass) sd(f) / sqrt(tail_points)`` over users and types (as if
    the sample were random; systematic sampling along the grid does no worse on smooth ``f``).

    Users with the same log-likelihoods at every grid point (clones, :func:`user_kinds`) have
    the same probabilities: each kind is worked out once, weighted by its number of users."""
    T, S, U, K = loglik.shape
    G = pi_grid.shape[0]
    out = torch.zeros(S, U, K, dtype=loglik.dtype)
    covered, tail_se = 1.0, 0.0
    kind = user_kinds(loglik, mask)  # [S, U]
    for s in range(S):
        w = weights[:, s].reshape(-1)  # [T * G]
        w = w / w.sum()
        top = w.topk(min(max_points, len(w)))  # the heaviest points, in descending order
        n = min(int((top.values.cumsum(0) < mass).sum()) + 1, max_points)
        keep = top.indices[:n]
        exact = float(w[keep].sum())
        covered = min(covered, exact)
        users, which = torch.unique(kind[s], return_inverse=True)  # one user of each kind
        n_users = torch.zeros(len(users), dtype=mask.dtype).index_add_(0, which, mask[s])

        kinds = (G, pi_grid, loglik[:, s][:, users], n_users, clone, loglik.dtype)
        probs = (w[keep, None, None] * _clone_type_probs(keep, *kinds)).sum(0)
        if tail_points == 0 or 1 - exact <= max(1 - mass, 1e-12):  # the heaviest, renormalised
            probs = probs / exact
        else:
            rest = w.clone()
            rest[keep] = 0
            cumulative = rest.cumsum(0)
            strata = (torch.arange(tail_points, dtype=w.dtype) + 0.5) / tail_points
            drawn = torch.searchsorted(cumulative, strata * cumulative[-1]).clamp_(max=len(w) - 1)
            points, counts = torch.unique(drawn, return_counts=True)
            sampled = _clone_type_probs(points, *kinds)
            share = counts.to(w.dtype) / tail_points
            mean = (share[:, None, None] * sampled).sum(0)
            sd = ((share[:, None, None] * (sampled - mean) ** 2).sum(0)).sqrt()
            probs = probs + (1 - exact) * mean
            tail_se = max(tail_se, float((1 - exact) * sd.max()) / tail_points**0.5)
        out[s] = probs[which]
    return out, covered, tail_se


def _clone_type_probs(
    points: torch.Tensor,
    G: int,
    pi_grid: torch.Tensor,
    loglik: torch.Tensor,
    n_users: torch.Tensor,
    clone: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``[N, V, K]``: each kind's ``P(z_u = k | t, g, data)`` at flat grid points ``t * G + g``
    (``loglik [T, V, K]`` of one simulation's kinds, ``n_users [V]``, ``clone [T]``)."""
    from scai.models.marginal import prototype_posterior

    t, g = points // G, points % G
    prototype, given = prototype_posterior(
        pi_grid[g].log().unsqueeze(-2),  # [N, 1, K]
        loglik[t].unsqueeze(-3),  # [N, 1, V, K]
        n_users.unsqueeze(0),
        clone[t].unsqueeze(-1).to(dtype),  # [N, 1]
    )
    return (prototype[:, 0, None, :, None] * given[:, 0]).sum(-2)


def user_kinds(L: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[S, U]``: for each user, the first user of its simulation with the same
    log-likelihoods ``L [t, S, U, K]`` at every grid point and the same presence in ``mask``
    (padding is a kind of its own)."""
    t, S, U, K = L.shape
    kind = torch.empty(S, U, dtype=torch.long)
    for s in range(S):
        present = (mask[s] > 0).to(L.dtype)[:, None]
        rows = torch.cat([L[:, s].permute(1, 0, 2).reshape(U, -1), present], -1)
        _, which = torch.unique(rows, dim=0, return_inverse=True)
        first = torch.full((int(which.max()) + 1,), U, dtype=torch.long)
        first = first.scatter_reduce(0, which, torch.arange(U), reduce="amin")
        kind[s] = first[which]
    return kind


def distinct_users(L: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[S, U]`` weights: users whose log-likelihoods ``L [t, S, U, K]`` are identical at
    every grid point (the same actions and tones: clones) are counted once, with their number
    as the weight of the first of them (0 for the others and for padding). The group
    likelihood is unchanged; the kernels then do the undecided users' work once per kind."""
    t, S, U, K = L.shape
    weights = torch.zeros(S, U, dtype=mask.dtype)
    sim, user = torch.nonzero(mask > 0, as_tuple=True)  # real users, simulation by simulation
    if len(sim) == 0:
        return weights
    # One unique over (simulation, log-likelihoods) rows finds every simulation's kinds at once.
    rows = torch.cat(
        [sim[:, None].to(L.dtype), L[:, sim, user].permute(1, 0, 2).reshape(len(sim), -1)], -1
    )
    first, _, counts = distinct_rows(rows)
    weights[sim[first], user[first]] = counts.to(mask.dtype)
    return weights
