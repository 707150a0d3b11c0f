"""The decision rule, the norms' utilities, and the two quadratures of the responder models.

A subject with rationality ``lam`` and lapse rate ``eps`` rejects an offer of utility ``U`` with
``P(reject) = eps / 2 + (1 - eps) sigmoid(-lam U)`` (:func:`reject_logprob`). Utilities are in
the pot's units (cents of a 100-cent pot in Study 1, so ``lam`` is per cent): a named norm's
social utility (:func:`norm_utilities`) or Fehr-Schmidt envy
``U = o - alpha max(N - 2 o, 0)`` (:func:`envy_utility`). Two integrals are done by quadrature:
over log envy, on bins equally spaced in the threshold share (:func:`envy_grid`,
:func:`envy_log_weights`), and over a subject's rationality ``lam_r exp(tau_r zeta)``,
``zeta ~ Normal(0, 1)``, with Gauss-Hermite nodes (:func:`rationality_nodes`).
"""

from __future__ import annotations

import numpy as np
import torch

from scai.models.policies import policy_parameters, responder_parameters, utility
from scai.models.responders.data import DTYPE, ResponderData
from scai.models.responders.specs import InequitySpec, NormMixtureSpec, Spec


def reject_logprob(
    lam: torch.Tensor, u: torch.Tensor, eps: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log P(reject), log P(accept))`` for utility ``u`` with
    ``P(reject) = eps / 2 + (1 - eps) sigmoid(-lam u)`` (``eps=None``: no lapse)."""
    x = lam * u
    log_rej, log_acc = torch.nn.functional.logsigmoid(-x), torch.nn.functional.logsigmoid(x)
    if eps is None:
        return log_rej, log_acc
    log_keep, log_half = torch.log1p(-eps), torch.log(eps / 2)
    return (
        torch.logaddexp(log_keep + log_rej, log_half),
        torch.logaddexp(log_keep + log_acc, log_half),
    )


def norm_utilities(spec: NormMixtureSpec, data: ResponderData) -> torch.Tensor:
    """``U[k, c] = U_k(o_c, N_c - o_c)`` of every norm in every cell, by each norm's responder
    parameters (a role-dependent type's ``responder``: the subjects are responders)."""
    policies = spec.hypothesis.policies
    params = responder_parameters(policies) or policy_parameters(policies)
    w, alpha, beta = (t.to(DTYPE)[:, None] for t in params)
    return utility(data.offers, data.pots - data.offers, w, alpha, beta)


def envy_grid(spec: InequitySpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The envy integral's grid: ``G`` bins equally spaced in the *threshold share*
    ``x* = alpha / (1 + 2 alpha)`` (the offer share below which a subject with envy ``alpha``
    rejects) between the thresholds of ``envy_min`` and ``envy_max``: offers are equally
    spaced shares, so every gap between two offers gets the same number of bins and no bin is
    spent where the data cannot tell envies apart. Returns the bins' midpoints (in ``x*``) as
    ``log alpha`` ``[G]`` and their inner edges as ``log alpha`` ``[G - 1]`` (the outer edges
    are 0 and infinity: the end bins hold the tails)."""
    G = int(spec.envy_bins)

    def share(alpha: float) -> float:
        return alpha / (1 + 2 * alpha)

    x = torch.linspace(share(spec.envy_min), share(spec.envy_max), G + 1, dtype=DTYPE)
    mid = (x[:-1] + x[1:]) / 2

    def log_alpha(t: torch.Tensor) -> torch.Tensor:
        return torch.log(t / (1 - 2 * t))

    return log_alpha(mid), log_alpha(x[1:-1])


def envy_log_weights(mu: torch.Tensor, sigma: torch.Tensor, spec: InequitySpec) -> torch.Tensor:
    """``log w_g = log P(log alpha in bin g)`` under ``Normal(mu, sigma)``: ``[..., G]``."""
    _, inner = envy_grid(spec)
    cdf = torch.special.ndtr((inner - mu[..., None]) / sigma[..., None])
    zeros, ones = torch.zeros_like(cdf[..., :1]), torch.ones_like(cdf[..., :1])
    mass = torch.diff(torch.cat([zeros, cdf, ones], dim=-1), dim=-1)
    return torch.log(mass.clamp_min(1e-300))


def envy_utility(alpha: torch.Tensor, data: ResponderData) -> torch.Tensor:
    """``U = o - alpha max(N - 2 o, 0)`` for envy ``alpha [..., 1]`` in every cell: ``[..., C]``."""
    return data.offers - alpha * torch.clamp(data.pots - 2 * data.offers, min=0)


# -- latent states: what a subject can be, and how likely each makes its decisions ----------
def rationality_nodes(spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Hermite nodes ``zeta_h`` and log-weights ``log v_h`` of ``zeta ~ Normal(0, 1)``
    (one node at 0 when the spread of rationality is off)."""
    H = int(spec.rationality_nodes) if spec.rationality_spread_scale > 0 else 1
    nodes, weights = np.polynomial.hermite_e.hermegauss(H)
    weights = weights / weights.sum()
    return torch.as_tensor(nodes, dtype=DTYPE), torch.as_tensor(np.log(weights), dtype=DTYPE)
