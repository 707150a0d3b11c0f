"""The responder models in Pyro: the marginal model NUTS samples, and the explicit models.

:func:`role_sites` samples the role-level parameters (the ``role`` plate), the one place their
priors are written. :func:`responder_marginal_model` sums every subject's latent state out
(:mod:`scai.models.responders.states`) and is what inference runs on; the explicit models
:func:`norm_mixture_model` and :func:`inequity_model` sample each subject's norm or envy,
attention and rationality as sites, and are the reference the tests hold the marginal to.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex

from scai.models.responders.data import DTYPE, ResponderData
from scai.models.responders.decision import envy_utility, norm_utilities, reject_logprob
from scai.models.responders.specs import BetaPrior, InequitySpec, NormMixtureSpec, Spec
from scai.models.responders.states import subject_joint

ENUM = {"enumerate": "parallel"}
MAX_PLATE_NESTING = 2


def _lognormal(median: float, scale: float) -> dist.Distribution:
    return dist.LogNormal(
        torch.tensor(math.log(median), dtype=DTYPE), torch.tensor(scale, dtype=DTYPE)
    )


def _beta(prior: BetaPrior) -> dist.Distribution:
    return dist.Beta(torch.tensor(prior.a, dtype=DTYPE), torch.tensor(prior.b, dtype=DTYPE))


def role_sites(spec: Spec, data: ResponderData) -> dict[str, torch.Tensor]:
    """Sample the role-level sites (the ``role`` plate, dim -1): norm shares ``pi`` or envy
    ``envy_mu, envy_sigma``; ``lam`` (if latent), ``lapse`` and ``inattentive`` (if on)."""
    params: dict[str, torch.Tensor] = {}
    with pyro.plate("role", data.n_roles, dim=-1):
        if isinstance(spec, NormMixtureSpec):
            conc = torch.tensor(spec.hypothesis.pi_concentration, dtype=DTYPE)
            params["pi"] = pyro.sample("pi", dist.Dirichlet(conc))
        else:
            params["envy_mu"] = pyro.sample(
                "envy_mu",
                dist.Normal(
                    torch.tensor(spec.envy_mu_loc, dtype=DTYPE),
                    torch.tensor(spec.envy_mu_scale, dtype=DTYPE),
                ),
            )
            params["envy_sigma"] = pyro.sample(
                "envy_sigma", dist.HalfNormal(torch.tensor(spec.envy_sigma_scale, dtype=DTYPE))
            )
        if spec.rationality_scale > 0:
            params["lam"] = pyro.sample("lam", _lognormal(spec.rationality, spec.rationality_scale))
        else:
            params["lam"] = torch.full((data.n_roles,), float(spec.rationality), dtype=DTYPE)
        if spec.rationality_spread_scale > 0:
            params["lam_spread"] = pyro.sample(
                "lam_spread",
                dist.HalfNormal(torch.tensor(spec.rationality_spread_scale, dtype=DTYPE)),
            )
        if spec.lapse.enabled:
            params["lapse"] = pyro.sample("lapse", _beta(spec.lapse))
        if spec.inattentive.enabled:
            params["inattentive"] = pyro.sample("inattentive", _beta(spec.inattentive))
    return params


def responder_marginal_model(data: ResponderData, spec: Spec) -> None:
    """Either hypothesis with every subject's latent state summed out (exact for the norms,
    the envy grid for the envy): ``sum_s logsumexp_m J[s, m]`` as one factor, computed once
    per distinct subject pattern (:attr:`ResponderData.compressed`)."""
    params = role_sites(spec, data)
    patterns, weight, _ = data.compressed
    loglik = torch.logsumexp(subject_joint(spec, patterns, params), dim=-1)
    pyro.factor("subjects", (weight * loglik).sum())


def _decisions(
    data: ResponderData, log_rej: torch.Tensor, log_acc: torch.Tensor, inattentive
) -> None:
    """The ``reject`` site of the explicit models: ``log_rej, log_acc [..., S, T]`` per
    decision, replaced by 1/2 where ``inattentive`` is 1."""
    logits = log_rej - log_acc
    if inattentive is not None:
        logits = torch.where(inattentive > 0.5, torch.zeros_like(logits), logits)
    with pyro.poutine.mask(mask=data.mask):
        pyro.sample("reject", dist.Bernoulli(logits=logits), obs=data.rejected)


def _inattentive_site(spec: Spec, params: dict[str, torch.Tensor], data: ResponderData):
    if not spec.inattentive.enabled:
        return None
    rho = params["inattentive"][data.role_index].unsqueeze(-1)  # [S, 1]
    return pyro.sample("attention", dist.Bernoulli(rho), infer=ENUM)  # 1: inattentive


def _subject_rationality(spec: Spec, params: dict[str, torch.Tensor], data: ResponderData):
    """``lam_s = lam_r exp(tau_r zeta_s)`` with ``zeta_s`` a sampled site (if the spread is
    on), inside the subject plate: ``[S, 1]``."""
    r = data.role_index.unsqueeze(-1)
    lam = params["lam"][r]
    if spec.rationality_spread_scale > 0:
        zeta = pyro.sample("lam_zeta", dist.Normal(torch.zeros((), dtype=DTYPE), 1.0))
        lam = lam * torch.exp(params["lam_spread"][r] * zeta)
    return lam


def norm_mixture_model(data: ResponderData, spec: NormMixtureSpec) -> None:
    """The explicit norm-mixture model (module docstring) with each subject's ``norm`` and
    ``attention`` (1: inattentive) as enumerable sites and its rationality ``lam_zeta`` a
    sampled one. Plates: ``role`` (dim -1, outside the subjects), ``subject`` (dim -2) and
    ``trial`` (dim -1: a subject's own decisions, padding masked out)."""
    params = role_sites(spec, data)
    r = data.role_index.unsqueeze(-1)  # [S, 1]
    u = norm_utilities(spec, data)  # [K, C]
    eps = params.get("lapse")
    with pyro.plate("subject", data.n_subjects, dim=-2):
        lam = _subject_rationality(spec, params, data)
        inattentive = _inattentive_site(spec, params, data)
        z = pyro.sample("norm", dist.Categorical(params["pi"][r]), infer=ENUM)
        with pyro.plate("trial", data.cell.shape[1], dim=-1):
            u_st = Vindex(u)[z, data.cell]  # [..., S, T]
            log_rej, log_acc = reject_logprob(lam, u_st, None if eps is None else eps[r])
            _decisions(data, log_rej, log_acc, inattentive)


def inequity_model(data: ResponderData, spec: InequitySpec) -> None:
    """The explicit inequity-aversion model (module docstring): each subject's envy
    ``envy ~ LogNormal(mu_r, sigma_r)`` and rationality ``lam_zeta`` are sampled sites and
    ``attention`` (1: inattentive) an enumerable one. Plates as in
    :func:`norm_mixture_model`."""
    params = role_sites(spec, data)
    r = data.role_index.unsqueeze(-1)
    eps = params.get("lapse")
    with pyro.plate("subject", data.n_subjects, dim=-2):
        lam = _subject_rationality(spec, params, data)
        inattentive = _inattentive_site(spec, params, data)
        alpha = pyro.sample("envy", dist.LogNormal(params["envy_mu"][r], params["envy_sigma"][r]))
        with pyro.plate("trial", data.cell.shape[1], dim=-1):
            u = torch.gather(envy_utility(alpha, data), -1, data.cell)  # [S, T]
            log_rej, log_acc = reject_logprob(lam, u, None if eps is None else eps[r])
            _decisions(data, log_rej, log_acc, inattentive)


def explicit_model(spec: Spec):
    """The explicit Pyro model of a hypothesis."""
    return norm_mixture_model if isinstance(spec, NormMixtureSpec) else inequity_model
