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

import torch

from scai.inference.exact_kernels import (
    grid_action_loglik,
    lattice_group_loglik,
    lattice_policy_probs,
)
from scai.inference.grids import (
    check_exact,
    grid_parameters,
    latent_scalars,
    simplex_lattice,
    uniform_grid,
    zoom_modes,
)
from scai.inference.posterior import Posterior, manner_probabilities
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import tone_loglik
from scai.models.prior import GroupPrior


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
    around every local maximum (:func:`zoom_modes`), in two over the region where any
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
            lam_t, shift_t = grid_parameters(u, prior, data)
            action = grid_action_loglik(data, hypothesis, lam_t, shift_t)
        T = u.shape[0]
        loglik = (action + tones) * mask.unsqueeze(-1)
        log_joint = torch.empty(T, S, pi_grid.shape[0], dtype=dtype)
        step = max(1, int(2e7) // max(1, S * U * pi_grid.shape[0]))
        for start in range(0, T, step):
            log_joint[start : start + step] = lattice_group_loglik(
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
        u, log_cell = uniform_grid(lo, hi, grid_points)
        # The first pass only locates the scalars' posterior: a coarse lattice for pi will do.
        coarse = simplex_lattice(len(hypothesis.policies), 200).to(dtype)
        log_joint, _, _ = evaluate(u, scalar_prior.log_prob(u) + log_cell, pi_grid=coarse)
        marginal = torch.logsumexp(log_joint, -1)  # [T, S]
        spacing = (hi - lo) / (grid_points - 1)
        if dims == 1:
            u, log_w = zoom_modes(u[:, 0], marginal, float(spacing[0]), zoom_points, scalar_prior)
        else:
            near = (marginal > marginal.max(0).values - 30).any(-1)
            lo = torch.maximum(u[near].min(0).values - spacing, lo)
            hi = torch.minimum(u[near].max(0).values + spacing, hi)
            u, log_cell = uniform_grid(lo, hi, zoom_points)
            log_w = scalar_prior.log_prob(u) + log_cell
        log_joint, loglik, action_loglik = evaluate(u, log_w)
    T = u.shape[0]
    log_evidence = torch.logsumexp(log_joint.transpose(0, 1).reshape(S, -1), -1)
    weights = (log_joint - log_evidence.reshape(1, S, 1)).exp()  # [T, S, G]

    pi_mean = torch.einsum("tsg,gk->sk", weights, pi_grid)
    policy_probs = lattice_policy_probs(weights, loglik, pi_grid)

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
    lam, shift = grid_parameters(u[t_idx.T], prior, data)  # [D, S], [D, S, C]
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
