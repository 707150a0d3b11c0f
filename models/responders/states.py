"""A subject's latent states, and how likely each makes its decisions.

State ``m = (h, k)``: norm ``k`` (or envy bin ``g``) at rationality node ``h``
(``m = h * K + k``), plus ``inattentive`` (``m = H * K``) when that class is on. For role-level
parameters ``theta``, :func:`state_tables` gives ``log P(m | role)`` and each state's decision
log-probabilities in every cell, and :func:`subject_joint` each subject's
``J[s, m] = log P(m | r(s)) + log p(y_s | m, theta)``: its log-likelihood is
``logsumexp_m J[s, m]`` and its state posterior ``softmax_m J[s, :]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scai.models.responders.data import DTYPE, ResponderData
from scai.models.responders.decision import (
    envy_grid,
    envy_log_weights,
    envy_utility,
    norm_utilities,
    rationality_nodes,
    reject_logprob,
)
from scai.models.responders.specs import NormMixtureSpec, Spec


def cell_loglik(log_rej: torch.Tensor, log_acc: torch.Tensor, data: ResponderData) -> torch.Tensor:
    """``L[..., s, m] = sum_c n_reject[s, c] log_rej[..., r(s), m, c]
    + (n_trials - n_reject)[s, c] log_acc[..., r(s), m, c]`` from ``[..., R, M, C]`` tables
    (subjects are sorted by role, so this is one small matrix product per role)."""
    n_acc = data.n_trials - data.n_reject
    blocks = []
    for r, (start, stop) in enumerate(data.role_slices):
        blocks.append(
            data.n_reject[start:stop] @ log_rej[..., r, :, :].transpose(-1, -2)
            + n_acc[start:stop] @ log_acc[..., r, :, :].transpose(-1, -2)
        )
    return torch.cat(blocks, dim=-2)


def n_norm_states(spec: Spec) -> int:
    """``K`` norms or ``G`` envy bins: the states a subject's norm can be in."""
    return len(spec.norms) if isinstance(spec, NormMixtureSpec) else int(spec.envy_bins)


def norm_state_names(spec: Spec) -> list[str]:
    """The norms (or envy bins, labelled by their envy ``alpha_g``), then ``inattentive``
    when that class is on: the columns of :func:`norm_probabilities`."""
    if isinstance(spec, NormMixtureSpec):
        names = list(spec.norms)
    else:
        names = [f"envy={math.exp(m):.4g}" for m in envy_grid(spec)[0].tolist()]
    return names + (["inattentive"] if spec.inattentive.enabled else [])


def norm_of_state(spec: Spec, state: torch.Tensor | np.ndarray):
    """The norm (or envy bin) index of states ``m`` (``K``, one past the last, for
    ``inattentive``)."""
    K = n_norm_states(spec)
    H = len(rationality_nodes(spec)[0])
    return np.where(np.asarray(state) >= H * K, K, np.asarray(state) % K)


def norm_probabilities(spec: Spec, state_prob: np.ndarray) -> np.ndarray:
    """``[..., K (+1)]``: state probabilities summed over the rationality nodes (the last
    column, if any, is ``inattentive``)."""
    K = n_norm_states(spec)
    H = len(rationality_nodes(spec)[0])
    body = state_prob[..., : H * K].reshape(*state_prob.shape[:-1], H, K).sum(-2)
    return np.concatenate([body, state_prob[..., H * K :]], axis=-1)


def state_tables(
    spec: Spec, data: ResponderData, params: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For role-level parameters ``params`` (each ``[..., R, ...]``; see :func:`role_params`):
    ``log_prior [..., R, M]`` (``log P(state m | role)``) and ``log_rej, log_acc
    [..., R, M, C]`` (each state's decision log-probabilities in every cell).

    State ``m = (h, k)``: norm ``k`` (or envy bin ``g``) with rationality
    ``lam_r exp(tau_r zeta_h)``. Norm mixture: ``P(m) = (1 - rho) v_h pi_rk``; inequity:
    ``P(m) = (1 - rho) v_h w_rg``; inattentive (if on): ``P = rho`` and ``P(reject) = 1/2``
    everywhere."""
    lam, eps = params["lam"], params.get("lapse")
    if isinstance(spec, NormMixtureSpec):
        log_norm = torch.log(params["pi"].clamp_min(1e-300))
        u = norm_utilities(spec, data)  # [K, C]
    else:
        log_norm = envy_log_weights(params["envy_mu"], params["envy_sigma"], spec)
        u = envy_utility(torch.exp(envy_grid(spec)[0])[:, None], data)  # [G, C]
    zeta, log_v = rationality_nodes(spec)
    if len(zeta) > 1:
        lam = lam[..., None] * torch.exp(params["lam_spread"][..., None] * zeta)  # [..., R, H]
    else:
        lam = lam[..., None]
    K, C = u.shape
    H = len(zeta)
    lead = lam.shape[:-1]  # [..., R]
    log_rej, log_acc = reject_logprob(
        lam[..., :, None, None], u, None if eps is None else eps[..., None, None, None]
    )  # [..., R, H, K, C]
    log_rej = log_rej.reshape(*lead, H * K, C)
    log_acc = log_acc.reshape(*lead, H * K, C)
    log_prior = (log_v[:, None] + log_norm[..., None, :]).reshape(*lead, H * K)
    if spec.inattentive.enabled:
        rho = params["inattentive"]
        log_prior = torch.cat(
            [torch.log1p(-rho)[..., None] + log_prior, torch.log(rho)[..., None]], dim=-1
        )
        half = torch.full_like(log_rej[..., :1, :], -math.log(2.0))
        log_rej = torch.cat([log_rej, half], dim=-2)
        log_acc = torch.cat([log_acc, half], dim=-2)
    return log_prior, log_rej, log_acc


def subject_joint(spec: Spec, data: ResponderData, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``J[..., s, m] = log P(state m | role r(s)) + log p(y_s | state m, theta)``; a subject's
    log-likelihood is ``logsumexp_m J[..., s, m]`` and its state posterior ``softmax_m J``."""
    log_prior, log_rej, log_acc = state_tables(spec, data, params)
    return log_prior[..., data.role_index, :] + cell_loglik(log_rej, log_acc, data)


def role_params(
    spec: Spec, draws: dict[str, torch.Tensor], n_roles: int
) -> dict[str, torch.Tensor]:
    """The sampled role-level sites (each ``[D, R, ...]``), with ``lam`` filled in when the
    hypothesis fixes it."""
    params = dict(draws)
    if "lam" not in params:
        key = "pi" if "pi" in draws else "envy_mu"
        batch = draws[key].shape[: -2 if key == "pi" else -1]
        params["lam"] = torch.full((*batch, n_roles), float(spec.rationality), dtype=DTYPE)
    return params
