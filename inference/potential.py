"""The negative log posterior density on an unconstrained vector, written directly in torch.

Same density as :func:`scai.models.marginal.marginal_model` under Pyro's ``initialize_model`` (a
test checks it), without Pyro's per-call tracing, which cost about 60% of each NUTS step.

The vector holds, per simulation ``s``: ``K - 1`` stick-breaking coordinates of ``pi``, then
``log lam`` (latent rationality), ``shift_shared``, and one ``shift`` per currency, for the
sites the hypothesis makes latent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, group_loglik, tone_loglik, user_loglik
from scai.models.model import group_utilities
from torch.distributions import Dirichlet, LogNormal, Normal
from torch.distributions.transforms import StickBreakingTransform


@dataclass
class Layout:
    """Where each site lives in the unconstrained vector (columns of a ``[S, width]`` view)."""

    n_sims: int
    n_policies: int
    n_currencies: int
    latent_lam: bool
    latent_shared: bool
    latent_shift: bool

    @property
    def width(self) -> int:
        return (
            self.n_policies
            - 1
            + int(self.latent_lam)
            + int(self.latent_shared)
            + self.n_currencies * int(self.latent_shift)
        )

    @property
    def size(self) -> int:
        return self.n_sims * self.width


class Potential:
    """``U(theta) = -log p(theta, data)`` (with the Jacobian of the transforms), for NUTS."""

    def __init__(self, data: GroupData, hypothesis: Hypothesis):
        self.data = data
        self.hyp = hypothesis
        self.index = EventIndex.from_data(data)
        self.tones = tone_loglik(data, hypothesis)
        S = data.shape[0]
        self.layout = Layout(
            S,
            len(hypothesis.policies),
            len(data.currencies),
            hypothesis.rationality_is_latent,
            hypothesis.shared_scale > 0,
            hypothesis.currency_scale > 0,
        )
        self.stick = StickBreakingTransform()
        self.essential = data.essential
        dtype = torch.get_default_dtype()
        # Priors built once, without argument validation: NUTS calls this thousands of times
        # and the checks were ~10 small ops per call.
        self.dirichlet = Dirichlet(
            torch.tensor(hypothesis.pi_concentration, dtype=dtype), validate_args=False
        )
        self.lam_prior = LogNormal(
            math.log(hypothesis.rationality),
            max(hypothesis.rationality_scale, 1e-12),
            validate_args=False,
        )
        self.shared_prior = Normal(0.0, max(hypothesis.shared_scale, 1e-12), validate_args=False)
        if not (self.layout.latent_lam or self.layout.latent_shared or self.layout.latent_shift):
            lam = torch.full((S,), hypothesis.rationality)
            shift = (hypothesis.essential_shift * self.essential).expand(S, -1)
            self.fixed_loglik = user_loglik(data, hypothesis, lam, shift, self.index, self.tones)
        else:
            self.fixed_loglik = None
        # With the currency shifts fixed, only lam varies: the utilities are constants.
        self.utilities = None
        if not (self.layout.latent_shared or self.layout.latent_shift):
            shift = (hypothesis.essential_shift * self.essential).expand(S, -1)
            self.utilities = group_utilities(hypothesis, data.pots, shift)

    def constrain(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """``theta [..., S * width]`` -> sites ``pi [..., S, K]``, ``lam [..., S]``, ..."""
        lay = self.layout
        cols = theta.reshape(*theta.shape[:-1], lay.n_sims, lay.width)
        out = {"pi": self.stick(cols[..., : lay.n_policies - 1])}
        j = lay.n_policies - 1
        if lay.latent_lam:
            out["lam"] = cols[..., j].exp()
            j += 1
        if lay.latent_shared:
            out["shift_shared"] = cols[..., j]
            j += 1
        if lay.latent_shift:
            out["shift"] = cols[..., j : j + lay.n_currencies]
        return out

    def initial(self) -> torch.Tensor:
        """The prior median: uniform ``pi``, ``lam`` at its median, shifts at their means."""
        lay, hyp = self.layout, self.hyp
        cols = torch.zeros(lay.n_sims, lay.width)
        j = lay.n_policies - 1
        if lay.latent_lam:
            cols[:, j] = math.log(hyp.rationality)
            j += 1
        if lay.latent_shared:
            j += 1
        if lay.latent_shift:
            cols[:, j:] = hyp.essential_shift * self.essential
        return cols.reshape(-1)

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """``U(theta)``, a scalar (all simulations)."""
        return -self.log_joint(theta).sum()

    def log_joint(self, theta: torch.Tensor) -> torch.Tensor:
        """``[..., S]``: each simulation's ``log p(theta_s, data_s)`` in the unconstrained
        space (Jacobians included), for ``theta [..., S * width]`` with any batch shape."""
        lay, hyp = self.layout, self.hyp
        S = lay.n_sims
        batch = theta.shape[:-1]
        cols = theta.reshape(*batch, S, lay.width)
        sticks = cols[..., : lay.n_policies - 1]
        pi = self.stick(sticks)
        log_p = self.dirichlet.log_prob(pi) + self.stick.log_abs_det_jacobian(sticks, pi)
        j = lay.n_policies - 1
        lam = torch.full((*batch, S), hyp.rationality)
        if lay.latent_lam:
            log_lam = cols[..., j]
            lam = log_lam.exp()
            log_p = log_p + self.lam_prior.log_prob(lam) + log_lam
            j += 1
        shared = torch.zeros(*batch, S)
        if lay.latent_shared:
            shared = cols[..., j]
            log_p = log_p + self.shared_prior.log_prob(shared)
            j += 1
        mean = shared.unsqueeze(-1) + hyp.essential_shift * self.essential
        if lay.latent_shift:
            shift = cols[..., j : j + lay.n_currencies]
            deviation = Normal(mean, hyp.currency_scale, validate_args=False)
            log_p = log_p + deviation.log_prob(shift).sum(-1)
        else:
            shift = mean
        if self.fixed_loglik is not None:
            loglik = self.fixed_loglik
        else:
            loglik = user_loglik(self.data, hyp, lam, shift, self.index, self.tones, self.utilities)
        log_pi = pi.clamp_min(torch.finfo(pi.dtype).tiny).log()
        return log_p + group_loglik(log_pi, loglik, self.data.user_mask)
