"""Responder models for people (scai.models.responders), without the real data.

* the marginal model (what NUTS samples) equals the explicit Pyro models: exactly for the norm
  mixture (norm and attention enumerated by Pyro), and to quadrature accuracy for the
  continuous envy (a fine numerical integral of the explicit model's likelihood);
* synthetic subjects simulated from a spec decide as the model says: their rejection rates
  match the model's probabilities, and the posterior predictive's replicates match the
  expected rejections given each draw;
* the shipped hypothesis files load (the loader itself: tests/test_hypothesis_files.py).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from scai.experiments.human_data.fitting import INEQUITY_FILE, NORMS_FILE, default_specs
from scai.models.data import validate_frame
from scai.models.human_data import rejection_by_offer
from scai.models.hypotheses import Hypothesis
from scai.models.hypothesis_files import load_hypothesis_file
from scai.models.responders import (
    DTYPE,
    InequitySpec,
    NormMixtureSpec,
    ResponderData,
    inequity_model,
    norm_mixture_model,
    responder_marginal_model,
    role_params,
    simulate_responders,
    subject_joint,
    subject_posterior,
)
from scai.models.responders.states import state_tables

#: Role-level parameters of the inequity hypothesis (self, other) for simulations.
INEQUITY_TRUTH = {
    "envy_mu": [-1.5, -0.7],
    "envy_sigma": [1.5, 0.8],
    "lam": [0.3, 0.15],
    "lam_spread": [0.5, 0.3],
    "lapse": [0.02, 0.01],
    "inattentive": [0.05, 0.1],
}


def small_table() -> pd.DataFrame:
    """6 subjects in two roles, 100-unit pots, a few offers each."""
    rng = np.random.default_rng(3)
    rows = []
    for s in range(6):
        role = "self" if s < 3 else "other"
        for t, offer in enumerate([5, 20, 35, 50, 10] if s % 2 else [5, 25, 45]):
            accepted = int(rng.random() < offer / 50)
            rows.append(
                {
                    "sim": role,
                    "epoch": 1,
                    "round": t,
                    "proposer": "",
                    "responder": f"p{s}",
                    "currency": "cents",
                    "pot": 100,
                    "offer": offer,
                    "accepted": accepted,
                    "proposer_tone": "",
                    "responder_tone": "",
                }
            )
    return pd.DataFrame(rows)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=DTYPE)


def test_norm_mixture_marginal_equals_enumerated_model():
    data = ResponderData.from_table(small_table())
    spec = NormMixtureSpec(
        Hypothesis.load(NORMS_FILE), rationality_spread_scale=0.0
    )  # lam_s = lam_r: every latent is discrete, so Pyro can enumerate them all
    K = len(spec.norms)
    fixed = {
        "pi": torch.softmax(torch.randn(2, K, dtype=DTYPE), -1),
        "lam": t(0.3, 0.7),
        "lapse": t(0.02, 0.1),
        "inattentive": t(0.05, 0.2),
    }
    model = pyro.poutine.condition(norm_mixture_model, data=fixed)
    elbo = TraceEnum_ELBO(max_plate_nesting=2)
    explicit = -elbo.loss(model, lambda *a, **k: None, data, spec)
    trace = pyro.poutine.trace(
        pyro.poutine.condition(responder_marginal_model, data=fixed)
    ).get_trace(data, spec)
    marginal = trace.log_prob_sum().item()
    assert marginal == pytest.approx(explicit, abs=1e-8)


def test_inequity_marginal_equals_integral_of_explicit_model():
    """``log p(y_s | theta)`` from the envy grid vs a fine trapezoid integral over log envy of
    the explicit model's likelihood (its ``reject`` site with ``envy`` conditioned)."""
    data = ResponderData.from_table(small_table())
    spec = InequitySpec(rationality_spread_scale=0.0)
    fixed = {
        "envy_mu": t(-1.5, -0.5),
        "envy_sigma": t(1.2, 0.8),
        "lam": t(0.4, 0.6),
        "lapse": t(0.02, 0.05),
        "inattentive": t(0.05, 0.1),
    }
    grid = torch.linspace(-10, 6, 641, dtype=DTYPE)
    r = data.role_index
    loglik = []
    for log_alpha in grid:
        envy = torch.full((data.n_subjects, 1), float(log_alpha.exp()), dtype=DTYPE)
        cond = {**fixed, "envy": envy, "attention": torch.zeros(data.n_subjects, 1)}
        tr = pyro.poutine.trace(pyro.poutine.condition(inequity_model, data=cond)).get_trace(
            data, spec
        )
        site = tr.nodes["reject"]
        loglik.append((site["fn"].log_prob(site["value"]) * data.mask).sum(-1))
    attentive = torch.stack(loglik, -1)  # [S, grid]
    mu, sigma = fixed["envy_mu"][r, None], fixed["envy_sigma"][r, None]
    log_density = torch.distributions.Normal(mu, sigma).log_prob(grid)
    integrand = torch.exp(attentive + log_density)
    p_attentive = torch.trapezoid(integrand, grid, dim=-1)
    rho = fixed["inattentive"][r]
    n = data.n_trials.sum(-1)
    expected = torch.log((1 - rho) * p_attentive + rho * 0.5**n)
    for bins, tol in ((60, 0.02), (400, 0.005)):
        joint = subject_joint(dataclasses.replace(spec, envy_bins=bins), data, fixed)
        got = torch.logsumexp(joint, -1)
        assert torch.allclose(got, expected, atol=tol), (bins, got, expected)


def test_the_shipped_hypothesis_files_load_as_responder_specs():
    norms, inequity = default_specs()
    assert isinstance(norms, NormMixtureSpec) and norms.name == "human_norms"
    assert norms.norms[0] == "selfish" and "fair" in norms.norms
    assert norms.hypothesis.rationality_is_latent
    assert isinstance(inequity, InequitySpec) and inequity.name == "human_inequity"
    assert inequity == load_hypothesis_file(INEQUITY_FILE)
    assert (inequity.envy_bins, inequity.lapse_b) == (60, 30.0)


def _reject_rate_by_integral(truth: dict, role: int, share: float) -> float:
    """``P(reject)`` of a random subject of ``role`` offered ``share`` of the pot, by direct
    numerical integration over log envy and the rationality spread (not the model's grid)."""
    log_alpha = np.linspace(-14, 8, 4001)
    zeta = np.linspace(-6, 6, 241)
    mu, sigma = truth["envy_mu"][role], truth["envy_sigma"][role]
    lam = truth["lam"][role] * np.exp(truth["lam_spread"][role] * zeta)[:, None]
    u = share - np.exp(log_alpha) * max(1 - 2 * share, 0)  # units of the pot
    p_norm = 1 / (1 + np.exp(np.clip(lam * u * 100, -700, 700)))  # [zeta, alpha]
    eps, rho = truth["lapse"][role], truth["inattentive"][role]
    p_attentive = eps / 2 + (1 - eps) * p_norm
    w_alpha = np.exp(-0.5 * ((log_alpha - mu) / sigma) ** 2)
    w_zeta = np.exp(-0.5 * zeta**2)
    mean = (w_zeta[:, None] * w_alpha * p_attentive).sum() / (w_zeta.sum() * w_alpha.sum())
    return rho / 2 + (1 - rho) * mean


def test_synthetic_subjects_reject_as_the_model_says():
    """2,000 subjects per role, 20 decisions each: the rejection rate per role and offer is
    the model's ``P(reject)`` (an independent integral over envy and rationality) within 4
    binomial standard errors plus the envy grid's quadrature error (0.01)."""
    spec = load_hypothesis_file(INEQUITY_FILE)
    sim = simulate_responders(spec, {"self": 2000, "other": 2000}, params=INEQUITY_TRUTH, seed=4)
    validate_frame(sim.table)
    assert len(sim.table) == 4000 * 20 and sim.data.n_subjects == 4000
    assert sim.data.roles == ("self", "other") and set(sim.roles.values()) == {"self", "other"}
    rates = rejection_by_offer(sim.table, sim.roles)
    assert len(rates) == 2 * 10
    for row in rates.itertuples(index=False):
        expected = _reject_rate_by_integral(
            INEQUITY_TRUTH, ("self", "other").index(row.role), row.offer_share
        )
        se = math.sqrt(expected * (1 - expected) / row.n)
        assert abs(row.observed - expected) <= 4 * se + 0.01, (row, expected)
    # reproducible for a seed, and the true states are the subjects'
    again = simulate_responders(spec, {"self": 2000, "other": 2000}, params=INEQUITY_TRUTH, seed=4)
    pd.testing.assert_frame_equal(sim.table, again.table)
    assert sim.state.shape == (4000,)


def test_synthetic_norm_mixture_subjects_follow_their_norm():
    """With no noise (huge rationality, no lapse, no inattention), a subject simulated under
    a named norm accepts exactly the offers its norm's utility makes positive (offers at a
    norm's threshold, utility 0, are coin flips and left out)."""
    norms = default_specs()[0]
    K = len(norms.norms)
    quiet = dataclasses.replace(norms, inattentive=dataclasses.replace(norms.inattentive, a=0.0))
    quiet = dataclasses.replace(quiet, lapse=dataclasses.replace(quiet.lapse, a=0.0))
    quiet = dataclasses.replace(quiet, rationality_spread_scale=0.0)
    params = {"pi": torch.full((2, K), 1 / K), "lam": torch.tensor([1e4, 1e4])}
    sim = simulate_responders(quiet, {"self": 300, "other": 300}, params=params, seed=1)
    alpha = np.array([p.alpha for p in norms.hypothesis.policies])
    threshold = alpha / (1 + 2 * alpha)  # reject below this share of the pot
    state = sim.state.numpy()
    assert set(state) == set(range(K))  # every norm drawn (pi uniform, 600 subjects)
    index = {s: i for i, s in enumerate(sim.data.subjects)}
    share = sim.table["offer"] / sim.table["pot"]
    k = state[sim.table["responder"].map(index)]
    decided = (share - threshold[k]).abs() > 1e-9
    assert decided.mean() > 0.9
    expected = (share > threshold[k]).astype(int)
    assert (sim.table["accepted"][decided] == expected[decided]).all()


DRAWS = 2000


@pytest.fixture
def inequity_draws():
    """12 subjects simulated from the inequity-aversion model and :data:`DRAWS` draws of its
    role-level sites around the truth (the envy's mean varied, so that theta varies)."""
    spec = load_hypothesis_file(INEQUITY_FILE)
    sim = simulate_responders(spec, {"self": 6, "other": 6}, params=INEQUITY_TRUTH, seed=2)
    D = DRAWS
    draws = {k: torch.as_tensor(v, dtype=DTYPE).expand(D, -1) for k, v in INEQUITY_TRUTH.items()}
    vary = 0.3 * torch.randn(D, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(3))
    draws["envy_mu"] = draws["envy_mu"] + vary  # theta varies across draws (a fixed seed)
    return spec, sim.data, role_params(spec, draws, sim.data.n_roles)


def test_replicates_have_the_expected_rejections(inequity_draws):
    """The posterior predictive (``subject_posterior``'s replicates: each subject's state
    drawn from its posterior per draw, then its decisions): the mean replicated rejections of
    every subject and cell equal ``sum_m P(m | theta_d, y_s) P(reject | m, theta_d) n`` averaged
    over draws, within 4 standard errors."""
    spec, data, params = inequity_draws
    D = DRAWS
    out = subject_posterior(spec, data, params, torch.Generator().manual_seed(0))
    assert out["replicated"].shape == (D, data.n_subjects, len(data.offers))
    assert out["loglik"].shape == out["state"].shape == out["envy"].shape == (D, 12)
    _, log_rej, _ = state_tables(spec, data, params)  # [D, R, M, C]
    post = torch.softmax(subject_joint(spec, data, params), -1)  # [D, S, M]
    p_rej = log_rej.exp()[:, data.role_index]  # [D, S, M, C]
    p = (post[..., None] * p_rej).sum(-2)  # [D, S, C]
    n = data.n_trials
    expected = (p * n).mean(0)
    var = (n * p * (1 - p)).mean(0) + (p * n).var(0)  # Var of one replicate
    got = out["replicated"].mean(0)
    se = (var / D).sqrt()
    assert torch.all((got - expected).abs() <= 4 * se + 1e-9), (got - expected) / se
    assert torch.all(out["replicated"] <= n) and torch.all(out["replicated"] >= 0)


def test_new_subject_replicates_follow_the_roles_distribution_not_the_subjects_data(
    inequity_draws,
):
    """``subject_posterior(new_subjects=...)``'s ``predictive``: a new subject of each role in
    each subject's cells, its state from ``P(m | role, theta_d)``, so its mean rejections are
    ``sum_m P(m | role, theta_d) P(reject | m, theta_d) n`` averaged over draws (4 standard
    errors), the same for two subjects of a role whatever they decided; and the same-subject
    replicates (and every other output) are unchanged by asking for it."""
    spec, data, params = inequity_draws
    D = DRAWS
    alone = subject_posterior(spec, data, params, torch.Generator().manual_seed(0))
    out = subject_posterior(
        spec,
        data,
        params,
        torch.Generator().manual_seed(0),
        new_subjects=torch.Generator().manual_seed(1),
    )
    for name, value in alone.items():
        assert torch.equal(out[name], value), name
    log_prior, log_rej, _ = state_tables(spec, data, params)  # [D, R, M], [D, R, M, C]
    prior = log_prior.softmax(-1)[:, data.role_index]  # [D, S, M]
    p = (prior[..., None] * log_rej.exp()[:, data.role_index]).sum(-2)  # [D, S, C]
    n = data.n_trials
    expected = (p * n).mean(0)
    var = (n * p * (1 - p)).mean(0) + (p * n).var(0)
    got = out["predictive"].float().mean(0)
    se = (var / D).sqrt()
    assert torch.all((got - expected).abs() <= 4 * se + 1e-9), (got - expected) / se
    # the subjects' own decisions pull their same-subject replicates away from this
    own = out["replicated"].float().mean(0)
    assert float(((own - expected).abs() / (se + 1e-9)).max()) > 8


def test_a_role_dependent_norm_responds_by_its_responder_parameters():
    """Subjects are responders: a type with ``responder = {alpha = 0.5}`` and ``norm =
    "selfish"`` (real_agents' selfish_rejecting, the template's) rejects small offers by its
    responder's envy; its proposer's parameters (selfish's) made it accept them as selfish does."""
    from scai.models.hypotheses import PRESETS
    from scai.models.responders.decision import norm_utilities

    spec = NormMixtureSpec(PRESETS["real_agents"])
    data = ResponderData.from_table(small_table())
    u = norm_utilities(spec, data)
    offers, pots = data.offers, data.pots
    rejecting = spec.norms.index("selfish_rejecting")
    expected = offers - 0.5 * torch.clamp(pots - 2 * offers, min=0)
    assert torch.allclose(u[rejecting], expected.to(u.dtype))
    assert torch.allclose(u[spec.norms.index("selfish")], offers.to(u.dtype))
