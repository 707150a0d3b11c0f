"""The exact engine: enumeration plus quadrature.

Each user's policy and manner are summed out exactly (:mod:`models.marginal`). The continuous
quantities are integrated on a grid: the group mixture ``pi`` on an interior simplex lattice
(:func:`inference.grids.simplex_lattice`) and, where the hypothesis makes them latent, the
rationality ``lam`` and the currency shifts on prior-quantile grids.

Exact (up to the grid) for hypotheses with at most **two** latent scalars besides ``pi``:
a latent ``lam``, a shared currency shift ``shift_shared`` and one ``shift`` per currency in
the data count one each. With one currency in a group, every preset qualifies (``pooled``:
``shift_shared`` and ``shift[c]``). Larger hypotheses are refused: use ``svi`` or ``mcmc``.

Posterior draws are resampled from the grid's weights; means and per-user probabilities are
computed from the weights themselves, not from the draws.
"""

from __future__ import annotations

import itertools
import math

import torch

from inference.errors import EngineError
from inference.grids import lognormal_quantiles, normal_quantiles, simplex_lattice
from inference.posterior import Posterior, manner_probabilities
from models.hypotheses import Hypothesis
from models.layout import GroupData
from models.marginal import EventIndex, action_loglik, tone_loglik

MAX_LATENT_SCALARS = 2


def latent_scalars(hypothesis: Hypothesis, data: GroupData) -> list[str]:
    """Names of the latent scalars besides ``pi`` that the exact engine must grid over."""
    names = []
    if hypothesis.rationality_is_latent:
        names.append("lam")
    if hypothesis.shared_scale > 0:
        names.append("shift_shared")
    if hypothesis.currency_scale > 0:
        names.extend(f"shift[{c}]" for c in data.currencies)
    return names


def check_exact(hypothesis: Hypothesis, data: GroupData) -> None:
    names = latent_scalars(hypothesis, data)
    if len(names) > MAX_LATENT_SCALARS:
        raise EngineError(
            f"engine 'exact' integrates at most {MAX_LATENT_SCALARS} latent scalars besides pi; "
            f"hypothesis {hypothesis.name!r} on this data has {len(names)} "
            f"({', '.join(names)}): use engine='svi' or engine='mcmc'"
        )


def _theta_grid(hypothesis: Hypothesis, data: GroupData, points: int):
    """``(lam [T], shift [T, C], coords {site: [T, ...]})``: the product grid of the latent
    scalars, each point with prior mass ``1 / T``."""
    C = len(data.currencies)
    hyp = hypothesis
    axes: list[torch.Tensor] = []
    if hyp.rationality_is_latent:
        axes.append(lognormal_quantiles(math.log(hyp.rationality), hyp.rationality_scale, points))
    if hyp.shared_scale > 0:
        axes.append(normal_quantiles(0.0, hyp.shared_scale, points))
    if hyp.currency_scale > 0:
        axes.extend(normal_quantiles(0.0, hyp.currency_scale, points) for _ in range(C))
    grid = (
        torch.tensor(list(itertools.product(*[a.tolist() for a in axes])))
        if axes
        else torch.zeros(1, 0)
    )
    T = grid.shape[0]
    col = 0
    coords: dict[str, torch.Tensor] = {}
    lam = torch.full((T,), hyp.rationality)
    if hyp.rationality_is_latent:
        lam = coords["lam"] = grid[:, col]
        col += 1
    shared = torch.zeros(T)
    if hyp.shared_scale > 0:
        shared = coords["shift_shared"] = grid[:, col]
        col += 1
    shift = shared.unsqueeze(-1) + hyp.essential_shift * data.essential  # [T, C]
    if hyp.currency_scale > 0:
        shift = shift + grid[:, col : col + C]
        coords["shift"] = shift
    return lam, shift, coords


def fit_exact(
    data: GroupData,
    hypothesis: Hypothesis,
    *,
    table=None,
    seed: int = 0,
    num_draws: int = 1000,
    grid_points: int | None = None,
    max_simplex_points: int = 1500,
    action_loglik: torch.Tensor | None = None,
) -> Posterior:
    """Exact posterior (up to the grid). ``grid_points`` per latent scalar (default 32 for one,
    12 for two); the simplex lattice has at most ``max_simplex_points`` points.

    ``action_loglik [T, S, U, K]`` (the offers' and decisions' log-likelihood at each grid point)
    may be passed in when already known: online updating accumulates it epoch by epoch.
    """
    check_exact(hypothesis, data)
    if grid_points is None:
        grid_points = 32 if len(latent_scalars(hypothesis, data)) <= 1 else 12
    dtype = torch.float64
    S, U, _ = data.shape
    tones = tone_loglik(data, hypothesis).to(dtype)
    lam_t, shift_t, coords = _theta_grid(hypothesis, data, grid_points)
    T = lam_t.shape[0]
    if action_loglik is None:
        action_loglik = grid_action_loglik(data, hypothesis, lam_t, shift_t)

    pi_grid = simplex_lattice(len(hypothesis.policies), max_simplex_points).to(dtype)  # [G, K]
    conc = torch.tensor(hypothesis.pi_concentration, dtype=dtype)
    log_prior_pi = torch.distributions.Dirichlet(conc).log_prob(pi_grid)
    log_prior_pi = log_prior_pi - torch.logsumexp(log_prior_pi, 0)
    mask = data.user_mask.to(dtype)

    loglik_t = []  # [T, S, U, K]
    log_joint = torch.empty(T, S, pi_grid.shape[0], dtype=dtype)
    chunk = 32
    for start in range(0, T, chunk):
        L = (action_loglik[start : start + chunk] + tones) * mask.unsqueeze(-1)
        loglik_t.append(L)
        top = L.max(-1, keepdim=True).values  # [t, S, U, 1]
        like = (L - top).exp() @ pi_grid.T  # [t, S, U, G]
        per_user = (like.log() + top) * mask.unsqueeze(-1)
        log_joint[start : start + chunk] = per_user.sum(-2)
    loglik = torch.cat(loglik_t)
    log_joint = log_joint + log_prior_pi - math.log(T)  # [T, S, G]
    log_evidence = torch.logsumexp(log_joint.reshape(T, S, -1).transpose(0, 1).reshape(S, -1), -1)
    weights = (log_joint - log_evidence.reshape(1, S, 1)).exp()  # [T, S, G]

    pi_mean = torch.einsum("tsg,gk->sk", weights, pi_grid)
    policy_probs = _policy_probs(weights, loglik, pi_grid)

    generator = torch.Generator().manual_seed(seed)
    flat = weights.permute(1, 0, 2).reshape(S, -1)  # [S, T*G]
    picks = torch.multinomial(flat, num_draws, replacement=True, generator=generator)  # [S, D]
    t_idx, g_idx = picks // pi_grid.shape[0], picks % pi_grid.shape[0]
    draws = {"pi": pi_grid[g_idx].transpose(0, 1).unsqueeze(0)}  # [1, D, S, K]
    if "lam" in coords:
        draws["lam"] = coords["lam"][t_idx].T.unsqueeze(0)
    if "shift_shared" in coords:
        draws["shift_shared"] = coords["shift_shared"][t_idx].T.unsqueeze(0)
    if "shift" in coords:
        draws["shift"] = coords["shift"][t_idx].transpose(0, 1).unsqueeze(0)  # [1, D, S, C]
    draws = {k: v.to(torch.get_default_dtype()) for k, v in draws.items()}
    return Posterior(
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
            "max_simplex_points": max_simplex_points,
        },
        seed=seed,
        pi_mean_exact=pi_mean.to(torch.get_default_dtype()),
        engine_state={"action_loglik": action_loglik},
    )


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
    hold all of them. Action log-likelihoods add across epochs, so only the new interactions
    are scored; the grid, prior and settings are the previous fit's."""
    hyp = previous.hypothesis
    settings = previous.settings
    state = previous.engine_state or {}
    if "action_loglik" not in state or tuple(data.currencies) != tuple(previous.data.currencies):
        return fit_exact(data, hyp, table=table, seed=previous.seed, **settings)
    lam_t, shift_t, _ = _theta_grid(hyp, data, settings["grid_points"])
    new_rows = table.iloc[len(previous.table) :]
    new_data = GroupData.from_table(new_rows, currencies=data.currencies)
    total = torch.zeros(lam_t.shape[0], *data.shape[:2], len(hyp.policies), dtype=torch.float64)
    for part_data, part in (
        (previous.data, state["action_loglik"]),
        (new_data, grid_action_loglik(new_data, hyp, lam_t, shift_t)),
    ):
        s_idx, u_idx = _positions(part_data, data)
        total[:, s_idx, u_idx] += part[:, *torch.nonzero(part_data.user_mask, as_tuple=True)]
    return fit_exact(data, hyp, table=table, seed=previous.seed, action_loglik=total, **settings)


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


def _policy_probs(
    weights: torch.Tensor, loglik: torch.Tensor, pi_grid: torch.Tensor, chunk: int = 32
) -> torch.Tensor:
    """``P(z_u = k | data) = sum_{t,g} w[t,s,g] pi_gk e^L[t,s,u,k] / sum_j pi_gj e^L[t,s,u,j]``.

    The sum over the simplex lattice ``g`` is a matrix product, so no ``[t, g, u, k]`` tensor is
    ever formed.
    """
    T, S, U, K = loglik.shape
    out = torch.zeros(S, U, K, dtype=loglik.dtype)
    for start in range(0, T, chunk):
        L = loglik[start : start + chunk]
        like_k = (L - L.max(-1, keepdim=True).values).exp()  # [t, S, U, K]
        like = like_k @ pi_grid.T  # [t, S, U, G]
        ratio = weights[start : start + chunk].unsqueeze(-2) / like  # [t, S, U, G]
        out += (like_k * (ratio @ pi_grid)).sum(0)
    return out / out.sum(-1, keepdim=True).clamp_min(1e-300)
