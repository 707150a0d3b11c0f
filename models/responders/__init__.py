"""Responder-only models of people in the ultimatum game: two hypotheses about who rejects.

People in the human data only *respond*: subject ``s`` with role ``r = r(s)`` (``self``: the
responder; ``other``: an unaffected third party deciding whether to punish the proposer) sees
offers ``o`` of a pot ``N`` and rejects (punishes) or accepts. Utilities are in units of the pot
(cents in Study 1), as everywhere in :mod:`scai.models.policies`, so that a hypothesis's
``rationality`` means the same thing here as in the simulations (log-odds per unit); with the
100-cent pot of Study 1 this choice only rescales ``lam``. Both models share the decision rule
and noise model, and differ only in the norms::

    lam_r   ~ LogNormal(log lam0, sigma_lam)      median rationality of role r (lam0 if fixed)
    tau_r   ~ HalfNormal(tau_scale)               spread of rationality across subjects
    eps_r   ~ Beta(a_eps, b_eps)                  lapse: a decision made at random
    rho_r   ~ Beta(a_rho, b_rho)                  share of inattentive subjects
    lam_s   = lam_r exp(tau_r zeta_s),  zeta_s ~ Normal(0, 1)
    a_s     ~ Bernoulli(rho_r)                    1: subject s answers every trial at random
    P(reject o | U) = 1/2                                         if a_s = 1
                    = eps_r / 2 + (1 - eps_r) sigmoid(-lam_s U)   otherwise

Every role has its own parameters (a ``role`` plate), so one fit answers whether responders
and third-party punishers enforce the same norm.

**Norm mixture** (:func:`norm_mixture_model`; priors from a :class:`NormMixtureSpec`: a
:class:`~scai.models.hypotheses.Hypothesis`, e.g. ``experiments/hypotheses/human_norms.toml``, plus
the noise priors). Each subject follows one of ``K`` named norms, the social utilities
``U_k(x, y) = x + w_k y - alpha_k max(y - x, 0) - beta_k max(x - y, 0)``::

    pi_r ~ Dirichlet(a);   z_s ~ Categorical(pi_r(s));   U = U_{z_s}(o, N - o)

**Inequity aversion** (:func:`inequity_model`; priors from an :class:`InequitySpec`, e.g.
``experiments/hypotheses/human_inequity.toml``): a continuous Fehr-Schmidt envy per subject
(guilt never matters to a responder offered at most half the pot)::

    mu_r ~ Normal(mu_loc, mu_scale);   sigma_r ~ HalfNormal(sigma_scale)
    alpha_s ~ LogNormal(mu_r(s), sigma_r(s));   U = o - alpha_s max(N - 2 o, 0)

A subject with envy ``alpha`` rejects offers below the threshold share
``x* = alpha / (1 + 2 alpha)`` of the pot.

**Inference** runs on :func:`responder_marginal_model`, which sums each subject's latent state out:
``log p(y_s | theta) = logsumexp_m [log P(m | r) + sum_t log P(y_st | m)]`` over the states
``m``: (norm ``k`` or envy bin ``g``) x (rationality node ``h``), plus ``inattentive``. The norm
sum is exact; the envy integral uses ``G`` bins equally spaced in the threshold share ``x*``
(each with its exact LogNormal probability, the end bins holding the tails; see
:func:`envy_grid`), and the rationality integral Gauss-Hermite quadrature on ``H`` nodes.
Three reasons: NUTS moves in a dozen dimensions (fast, no funnel); the per-subject
log-likelihood used for PSIS-LOO is then the *leave-one-subject-out* predictive density of a
new subject's decisions (a per-subject parameter would make every Pareto k large); and both
hypotheses are compared on the same footing. Each subject's state is drawn per posterior draw
from its exact conditional posterior, and its decisions replicated from it
(:func:`subject_posterior`); :func:`simulate_responders` draws synthetic subjects the same way,
their states from the prior. Tests check the marginal against the explicit models: exactly
against Pyro's enumeration for the norms, and against a fine numerical integral for the envy.

Modules, one job each: :mod:`~scai.models.responders.data` (decisions as tensors),
:mod:`~scai.models.responders.specs` (the priors as data; TOML files are read by
:func:`scai.models.hypothesis_files.load_hypothesis_file`),
:mod:`~scai.models.responders.decision` (the decision rule, utilities and quadratures),
:mod:`~scai.models.responders.states` (latent states and their likelihoods),
:mod:`~scai.models.responders.pyro_models` (the Pyro models),
:mod:`~scai.models.responders.posterior` (each subject's state and replicated decisions per
draw) and :mod:`~scai.models.responders.simulate` (synthetic data).
"""

from scai.models.responders.data import DTYPE, ROLE_NAMES, ResponderData
from scai.models.responders.posterior import subject_posterior
from scai.models.responders.pyro_models import (
    inequity_model,
    norm_mixture_model,
    responder_marginal_model,
)
from scai.models.responders.simulate import SyntheticResponders, simulate_responders
from scai.models.responders.specs import (
    InequitySpec,
    NormMixtureSpec,
    Spec,
    as_responder_spec,
)
from scai.models.responders.states import role_params, subject_joint

__all__ = [
    "DTYPE",
    "ROLE_NAMES",
    "InequitySpec",
    "NormMixtureSpec",
    "ResponderData",
    "Spec",
    "SyntheticResponders",
    "as_responder_spec",
    "inequity_model",
    "norm_mixture_model",
    "responder_marginal_model",
    "role_params",
    "simulate_responders",
    "subject_joint",
    "subject_posterior",
]
