"""The exact engine: enumeration plus quadrature.

Each user's policy and manner are summed out exactly (:mod:`scai.models.marginal`). The continuous
quantities are integrated on a grid: the group mixture ``pi`` on an interior simplex lattice
(:func:`scai.inference.grids.simplex_lattice`) and, where the hypothesis makes them latent, the
rationality ``lam`` and the currency shifts on prior-quantile grids.

Exact (up to the grid) for hypotheses with at most **two** latent scalars besides ``pi``:
a latent ``lam``, a shared currency shift ``shift_shared`` and one ``shift`` per currency in
the data count one each. With one currency in a group, every preset qualifies (``pooled``:
``shift_shared`` and ``shift[c]``). Larger hypotheses are refused: use ``svi`` or ``mcmc``.

Posterior draws are resampled from the grid's weights; means and per-user probabilities are
computed from the weights themselves, not from the draws.
"""

from __future__ import annotations

import math

import torch

from scai.inference.errors import EngineError
from scai.inference.grids import simplex_lattice
from scai.inference.posterior import Posterior, manner_probabilities
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, action_loglik, tone_loglik
from scai.models.prior import GroupPrior

MAX_LATENT_SCALARS = 2


def latent_scalars(hypothesis: Hypothesis, data: GroupData) -> list[str]:
    """Names of the latent scalars besides ``pi`` that the exact engine must grid over.

    The grid lives on what the data identify: ``log lam`` and the total shift ``delta_c`` of
    each currency in the data (a fully pooled hypothesis, ``currency_scale = 0``, has the one
    shared shift instead). The shared shift of a partially pooled hypothesis is Gaussian given
    the ``delta_c`` and is drawn from that conditional, not gridded.
    """
    prior = GroupPrior(hypothesis)
    names = []
    if prior.latent_lam:
        names.append("lam")
    if prior.latent_shift:
        names.extend(f"shift[{c}]" for c in data.currencies)
    elif prior.latent_shared:
        names.append("shift_shared")
    return names


def check_exact(hypothesis: Hypothesis, data: GroupData) -> None:
    names = latent_scalars(hypothesis, data)
    if len(names) > MAX_LATENT_SCALARS:
        raise EngineError(
            f"engine 'exact' integrates at most {MAX_LATENT_SCALARS} latent scalars besides pi; "
            f"hypothesis {hypothesis.name!r} on this data has {len(names)} "
            f"({', '.join(names)}): use engine='svi' or engine='mcmc'"
        )


def _parameters(u: torch.Tensor, prior: GroupPrior, data: GroupData):
    """Grid coordinates ``u [..., d]`` -> ``lam [...]`` and data-currency shifts ``[..., C]``
    (the coordinates of :meth:`GroupPrior.scalar_gaussian`)."""
    C = len(data.currencies)
    j = 0
    lam = torch.full(u.shape[:-1], math.exp(prior.lam_loc), dtype=torch.float64)
    if prior.latent_lam:
        lam = u[..., 0].exp()
        j = 1
    fixed = prior.shift_mean(torch.zeros(()), data.essential.double())
    if prior.latent_shift:
        shift = u[..., j : j + C]
    elif prior.latent_shared:
        shift = u[..., j : j + 1] + fixed
    else:
        shift = fixed.expand(*u.shape[:-1], C)
    return lam, shift


def _zoom_modes(
    u: torch.Tensor,
    marginal: torch.Tensor,
    spacing: float,
    points: int,
    prior: torch.distributions.Distribution,
    margin: float = 200.0,
    keep_per_sim: int = 3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fine grid around the modes of the coarse marginal ``[T, S]``: for each simulation, its
    ``keep_per_sim`` best modes within ``margin`` nats of its best. A mode is a local maximum
    with the contiguous coarse points around it within 30 nats of a simulation's best (local
    maxima in the same run are one mode); its window spans that run plus one spacing either
    side, at >= ``points`` points and 4x the coarse resolution (windows that overlap are
    merged).

    The likelihood can have several sharp modes (an altruist in a currency shifted by -2
    behaves like a selfish user in an unshifted one) narrower than the coarse spacing: whichever
    mode's coarse point happens to fall nearer its peak would win, so every candidate is
    refined and the prior decides between them. Returns points ``[T', 1]`` and log weights
    (log prior density + log cell width).
    """
    best = marginal.max(0).values
    is_peak = torch.ones_like(marginal, dtype=torch.bool)
    is_peak[1:] &= marginal[1:] >= marginal[:-1]
    is_peak[:-1] &= marginal[:-1] >= marginal[1:]
    score = torch.where(is_peak & (marginal > best - margin), marginal, -torch.inf)
    # Each window covers its mode's contiguous run of coarse points within 30 nats of some
    # simulation's best (the bulk of a wide posterior), and at least one spacing either side.
    # Peaks are ranked by window, not one by one: on a fine coarse grid rounding makes several
    # "peaks" inside one mode's run, and ranking them singly let them crowd a second mode out
    # of the ``keep_per_sim`` best.
    near = (marginal > best - 30).any(-1).tolist()
    first, last = list(range(len(near))), list(range(len(near)))  # each point's run
    for i in range(1, len(near)):
        if near[i] and near[i - 1]:
            first[i] = first[i - 1]
    for i in range(len(near) - 2, -1, -1):
        if near[i] and near[i + 1]:
            last[i] = last[i + 1]
    run_score: dict[tuple[int, int], torch.Tensor] = {}
    for c in torch.isfinite(score).any(-1).nonzero().flatten().tolist():
        run = (first[c], last[c])
        run_score[run] = torch.maximum(run_score.get(run, score[c]), score[c])
    runs = list(run_score)
    scores = torch.stack([run_score[r] for r in runs])  # [runs, S]
    top = scores.topk(min(keep_per_sim, len(runs)), dim=0)  # [keep, S]
    chosen = top.indices[torch.isfinite(top.values)].unique().tolist()
    windows = [(float(u[runs[i][0]]) - spacing, float(u[runs[i][1]]) + spacing) for i in chosen]
    windows.sort()
    merged: list[list[float]] = []
    for a, b in windows:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    grids, log_w = [], []
    for a, b in merged:
        n = max(points, int(4 * (b - a) / spacing))  # at least 4x the coarse resolution
        grid = torch.linspace(a, b, n, dtype=torch.float64).unsqueeze(-1)
        grids.append(grid)
        log_w.append(prior.log_prob(grid) + math.log((b - a) / (n - 1)))
    return torch.cat(grids), torch.cat(log_w)


def _uniform_grid(lo: torch.Tensor, hi: torch.Tensor, n: int) -> tuple[torch.Tensor, float]:
    """Product grid of ``n`` points per dimension on ``[lo, hi]``; returns points and the log
    volume of one cell."""
    bounds = list(zip(lo.tolist(), hi.tolist(), strict=True))
    axes = [torch.linspace(a, b, n, dtype=torch.float64) for a, b in bounds]
    points = torch.cartesian_prod(*axes).reshape(-1, len(axes))
    log_cell = sum(math.log(max(b - a, 1e-300) / (n - 1)) for a, b in bounds)
    return points, log_cell


def fit_exact(
    data: GroupData,
    hypothesis: Hypothesis,
    *,
    table=None,
    seed: int = 0,
    num_draws: int = 1000,
    grid_points: int | None = None,
    zoom_points: int | None = None,
    max_simplex_points: int = 3000,
    action_loglik: torch.Tensor | None = None,
) -> Posterior:
    """Exact posterior (up to the grid).

    The latent scalars (if any) are first gridded uniformly over +-6 prior sd
    (``grid_points`` per dimension: 200 for one, 40 for two), then refined: in one dimension
    around every local maximum (:func:`_zoom_modes`), in two over the region where any
    simulation's log posterior is within 30 nats of its best point (``zoom_points``: 32 for
    one, 24 for two). Their likelihood can be sharper than any fixed grid (a currency shift
    moves every decision), which is why the grid zooms. The simplex lattice of ``pi`` has
    at most ``max_simplex_points`` points.

    ``action_loglik [1, S, U, K]`` may be passed in when no scalar is latent: online updating
    accumulates it epoch by epoch.
    """
    check_exact(hypothesis, data)
    dims = len(latent_scalars(hypothesis, data))
    grid_points = grid_points or (200 if dims == 1 else 40)
    zoom_points = zoom_points or (32 if dims == 1 else 24)
    dtype = torch.float64
    S, U, _ = data.shape
    tones = tone_loglik(data, hypothesis).to(dtype)
    prior = GroupPrior(hypothesis)
    pi_grid = simplex_lattice(len(hypothesis.policies), max_simplex_points).to(dtype)  # [G, K]
    mask = data.user_mask.to(dtype)

    def evaluate(u: torch.Tensor, log_w: torch.Tensor, action=None, pi_grid=pi_grid):
        """``log p(theta_t, pi_g, data)`` ``[T, S, G]`` and ``L [T, S, U, K]`` on a grid."""
        log_prior = prior.pi_cell_log_weights(pi_grid)
        if action is None:
            lam_t, shift_t = _parameters(u, prior, data)
            action = grid_action_loglik(data, hypothesis, lam_t, shift_t)
        T = u.shape[0]
        loglik = (action + tones) * mask.unsqueeze(-1)
        log_joint = torch.empty(T, S, pi_grid.shape[0], dtype=dtype)
        step = max(1, int(2e7) // max(1, S * U * pi_grid.shape[0]))
        for start in range(0, T, step):
            log_joint[start : start + step] = _group_loglik(
                loglik[start : start + step], mask, pi_grid
            )
        log_joint += log_prior + log_w.reshape(T, 1, 1)
        return log_joint, loglik, action

    if dims == 0:
        u = torch.zeros(1, 0, dtype=dtype)
        log_joint, loglik, action_loglik = evaluate(u, torch.zeros(1, dtype=dtype), action_loglik)
    else:
        scalar_prior = prior.scalar_gaussian(data.essential)
        loc, sd = scalar_prior.loc, scalar_prior.covariance_matrix.diagonal().sqrt()
        lo, hi = loc - 6 * sd, loc + 6 * sd
        u, log_cell = _uniform_grid(lo, hi, grid_points)
        # The first pass only locates the scalars' posterior: a coarse lattice for pi will do.
        coarse = simplex_lattice(len(hypothesis.policies), 200).to(dtype)
        log_joint, _, _ = evaluate(u, scalar_prior.log_prob(u) + log_cell, pi_grid=coarse)
        marginal = torch.logsumexp(log_joint, -1)  # [T, S]
        spacing = (hi - lo) / (grid_points - 1)
        if dims == 1:
            u, log_w = _zoom_modes(u[:, 0], marginal, float(spacing[0]), zoom_points, scalar_prior)
        else:
            near = (marginal > marginal.max(0).values - 30).any(-1)
            lo = torch.maximum(u[near].min(0).values - spacing, lo)
            hi = torch.minimum(u[near].max(0).values + spacing, hi)
            u, log_cell = _uniform_grid(lo, hi, zoom_points)
            log_w = scalar_prior.log_prob(u) + log_cell
        log_joint, loglik, action_loglik = evaluate(u, log_w)
    T = u.shape[0]
    log_evidence = torch.logsumexp(log_joint.transpose(0, 1).reshape(S, -1), -1)
    weights = (log_joint - log_evidence.reshape(1, S, 1)).exp()  # [T, S, G]

    pi_mean = torch.einsum("tsg,gk->sk", weights, pi_grid)
    policy_probs = _policy_probs(weights, loglik, pi_grid)

    generator = torch.Generator().manual_seed(seed)
    # Draw grid points (t, g) by inverting each simulation's cumulative weights: one
    # searchsorted, where torch.multinomial would renormalise a row per draw (and caps the
    # categories at 2^24).
    cdf = weights.permute(1, 0, 2).reshape(S, -1).cumsum(-1)  # [S, T * G]
    uniform = torch.rand(S, num_draws, generator=generator, dtype=cdf.dtype) * cdf[:, -1:]
    flat = torch.searchsorted(cdf, uniform, right=True).clamp_max(cdf.shape[-1] - 1)
    G = pi_grid.shape[0]
    t_idx, g_idx = flat // G, flat % G  # [S, D]
    draws = {"pi": pi_grid[g_idx].transpose(0, 1)}  # [D, S, K]
    lam, shift = _parameters(u[t_idx.T], prior, data)  # [D, S], [D, S, C]
    if prior.latent_lam:
        draws["lam"] = lam
    if prior.latent_shift:
        draws["shift"] = shift
    if prior.latent_shared:
        draws["shift_shared"] = prior.shared_given_shifts(shift, data.essential, generator)
    draws = {k: v.unsqueeze(0).to(torch.get_default_dtype()) for k, v in draws.items()}
    posterior = Posterior(
        engine="exact",
        hypothesis=hypothesis,
        table=table,
        data=data,
        draws=draws,
        policy_probs=policy_probs.to(torch.get_default_dtype()),
        manner_probs=manner_probabilities(data, hypothesis, policy_probs).float(),
        diagnostics={"log_evidence": log_evidence.tolist(), "grid_size": [T, pi_grid.shape[0]]},
        settings={
            "num_draws": num_draws,
            "grid_points": grid_points,
            "zoom_points": zoom_points,
            "max_simplex_points": max_simplex_points,
        },
        seed=seed,
        pi_mean_exact=pi_mean.to(torch.get_default_dtype()),
        engine_state={"action_loglik": action_loglik} if dims == 0 else None,
    )

    def draw_loglik() -> torch.Tensor:
        """Each draw is a grid point whose user log-likelihoods are already known."""
        if T == 1:  # every draw shares the one grid point: a view, not D copies
            return loglik.to(torch.get_default_dtype()).expand(num_draws, S, U, -1)
        sims = torch.arange(S).unsqueeze(0)
        return loglik[t_idx.T, sims].to(torch.get_default_dtype())  # [D, S, U, K]

    posterior._lazy["user_loglik"] = draw_loglik  # gathered only if asked for
    return posterior


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


def update_exact(previous: Posterior, table, data: GroupData) -> Posterior:
    """The posterior given ``previous``'s data plus new interactions: ``table`` and ``data``
    hold all of them. With no latent scalar, action log-likelihoods add across epochs, so only
    the new interactions are scored; otherwise the grid adapts to the data and is rebuilt."""
    hyp = previous.hypothesis
    prior = GroupPrior(hyp)
    settings = {k: v for k, v in previous.settings.items() if k in _SETTINGS}
    state = previous.engine_state or {}
    if "action_loglik" not in state or tuple(data.currencies) != tuple(previous.data.currencies):
        return fit_exact(data, hyp, table=table, seed=previous.seed, **settings)
    new_rows = table.iloc[len(previous.table) :]
    new_data = GroupData.from_table(new_rows, currencies=data.currencies)
    u = torch.zeros(1, 0, dtype=torch.float64)
    total = torch.zeros(1, *data.shape[:2], len(hyp.policies), dtype=torch.float64)
    for part_data, part in (
        (previous.data, state["action_loglik"]),
        (new_data, grid_action_loglik(new_data, hyp, *_parameters(u, prior, new_data))),
    ):
        s_idx, u_idx = _positions(part_data, data)
        total[:, s_idx, u_idx] += part[:, *torch.nonzero(part_data.user_mask, as_tuple=True)]
    return fit_exact(data, hyp, table=table, seed=previous.seed, action_loglik=total, **settings)


_SETTINGS = ("num_draws", "grid_points", "zoom_points", "max_simplex_points")


def _positions(part: GroupData, whole: GroupData) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each real user of ``part`` sits in ``whole`` (by simulation and user id)."""
    sim_of = {s: i for i, s in enumerate(whole.sim_ids)}
    user_of = [{u: j for j, u in enumerate(ids)} for ids in whole.user_ids]
    s_idx, u_idx = [], []
    for s, sim in enumerate(part.sim_ids):
        for user in part.user_ids[s]:
            s_idx.append(sim_of[sim])
            u_idx.append(user_of[sim_of[sim]][user])
    return torch.tensor(s_idx, dtype=torch.long), torch.tensor(u_idx, dtype=torch.long)


#: A user whose best type beats every other by more than this many nats, plus what the
#: smallest ``pi`` on the lattice can take back (``-log min pi``), is *decided*: the other types
#: change ``log sum_k pi_k e^L_k`` by less than ``e^-DECIDED_NATS`` (~1e-20).
DECIDED_NATS = 45.0


def _decided(
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


def _count_by_type(best: torch.Tensor, weight: torch.Tensor, K: int) -> torch.Tensor:
    """``[..., K]``: ``sum_u weight[..., u] [best[..., u] == k]``, for ``[..., U]`` inputs."""
    out = torch.zeros(*best.shape[:-1], K, dtype=weight.dtype)
    return out.scatter_add_(-1, best, weight)


def _group_loglik(L: torch.Tensor, mask: torch.Tensor, pi_grid: torch.Tensor) -> torch.Tensor:
    """``[t, S, G]``: ``sum_u log sum_k pi_gk exp(L[t, s, u, k])`` over the real users.

    A user decided at a grid point (:data:`DECIDED_NATS`) contributes ``L[best] + log
    pi_g[best]`` there, so those terms sum to a ``[K] @ [K, G]`` product; only the undecided
    (grid point, user) pairs need a row of the ``[pairs, G]`` matrix. With thousands of users
    whose type the data settle, this is what makes the engine fast.
    """
    t, S, U, K = L.shape
    decided, best, top = _decided(L, pi_grid)  # [t, S, U] each
    weight = (mask * decided).to(L.dtype)  # [t, S, U]
    n_best = _count_by_type(best, weight, K)  # [t, S, K]
    out = (top * weight).sum(-1, keepdim=True) + n_best @ pi_grid.log().T  # [t, S, G]
    rest = (~decided) & mask.bool()
    if rest.any():
        pair, user = torch.nonzero(rest.reshape(t * S, U), as_tuple=True)
        rows = L.reshape(t * S, U, K)[pair, user]  # [N, K]
        top_r = top.reshape(t * S, U)[pair, user].unsqueeze(-1)
        terms = ((rows - top_r).exp() @ pi_grid.T).log() + top_r  # [N, G]
        out = out.reshape(t * S, -1).index_add(0, pair, terms).reshape(t, S, -1)
    return out


def _policy_probs(
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
        decided, best, _ = _decided(L, pi_grid)
        mass = (w.sum(-1, keepdim=True) * decided).to(L.dtype)  # [t, S, U]: where decided
        one_hot = torch.zeros(*best.shape, K, dtype=L.dtype)
        one_hot.scatter_(-1, best.unsqueeze(-1), mass.unsqueeze(-1))
        out += one_hot.sum(0).reshape(S * U, K)
        if (~decided).any():
            step, sim, user = torch.nonzero(~decided, as_tuple=True)
            rows = L[step, sim, user]  # [N, K]
            like_k = (rows - rows.max(-1, keepdim=True).values).exp()
            ratio = w[step, sim] / (like_k @ pi_grid.T)  # [N, G]
            out.index_add_(0, sim * U + user, like_k * (ratio @ pi_grid))
    out = out.reshape(S, U, K)
    return out / out.sum(-1, keepdim=True).clamp_min(1e-300)
