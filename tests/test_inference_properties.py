"""Property-based tests (the Hypothesis library) of the inference engines: identities that hold
for any data, checked on generated groups against an oracle that shares none of the engine's
shortcuts (``tests/test_model_properties.py`` checks the model's own symmetries).

* No decisions, the prior: a simulation whose only games are the assistant's with no one
  keeps its prior in MCMC (which fits each simulation on a density of its own, and crashed on
  that one's), and a bounded site with no data is drawn from its Beta prior by the exact
  engine's within-cell draws, with a log evidence of 0.
* One lattice sum: the exact engine's log evidence, posterior mean of ``pi`` and users' type
  probabilities are the plain float64 sum over its lattice, whatever the users' copies (the
  kernels weight identical users by their count and sum decided users in closed form).
* Copies of users are copies of games where there is one type: each user copied ``n`` times
  and each game played ``n`` times are the same likelihood, fitted the same on every zoom.
* Seeds: a fit's draws are fixed by its seed alone, not by the caller's global generators,
  which it leaves as they were.
* ArviZ: each user's ``log_likelihood`` sums, over a simulation, to the float64 density's
  group log-likelihood at each draw; the posterior group holds the draws.

Every test runs on fixed examples (``derandomize=True``, no example database), so a failure is
the same on every run and machine.
"""

from __future__ import annotations

import math
import random

import arviz as az
import numpy as np
import pandas as pd
import pytest
import torch
from fixed_examples import SETTINGS, quietly
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch.distributions.transforms import StickBreakingTransform

from scai.inference import fit
from scai.inference.exact import fit_exact
from scai.inference.grids.simplex import simplex_lattice
from scai.inference.svi import float64_default
from scai.models import PRESETS, GroupData, simulate, validate_frame
from scai.models.density import MarginalDensity
from scai.models.marginal import group_loglik
from scai.models.prior import GroupPrior

#: A latent rationality, and a learned lapse (the exact engine's bounded-site grid).
LATENT_LAM = PRESETS["neutral"].with_(rationality_scale=0.5)
LEARNED_LAPSE = PRESETS["neutral"].with_(name="learned_lapse", lapse_prior=(2.0, 20.0))


def group(hypothesis, seed: int, users: int = 4, rounds: int = 6, **kwargs) -> pd.DataFrame:
    names = hypothesis.policy_names
    return validate_frame(
        quietly(
            simulate,
            hypothesis,
            policy=f"{names[0]}=0.5,{names[-1]}=0.5",
            users=users,
            rounds=rounds,
            seed=seed,
            **kwargs,
        ).interactions
    )


def copied_users(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """``table`` with every user's games played again by ``n - 1`` copies of the users."""

    def renamed(names: pd.Series, r: int) -> pd.Series:
        return names.where(names.isin(["", "assistant"]), names + f"_copy{r}")

    parts = [table] + [
        table.assign(
            proposer=renamed(table["proposer"], r), responder=renamed(table["responder"], r)
        )
        for r in range(1, n)
    ]
    return validate_frame(pd.concat(parts, ignore_index=True))


# -- no decisions: the prior ------------------------------------------------------------------


def test_mcmc_keeps_the_prior_of_a_simulation_where_no_user_acts():
    """Regression: a simulation whose only games are between an unknown proposer and the
    assistant is a valid table (another simulation has users), with nothing to score. MCMC
    fits each simulation on a density of its own, and that one's had no cell: the NumPy
    backend's ``[users, 1] @ [0, K]`` product raised ``ValueError: matmul: dimension
    mismatch`` in the mode search (the exact and SVI engines fitted it). Its posterior is
    the prior: ``pi`` Dirichlet(0.5, 0.5, 0.5) (mean 1/3, sd 0.298) and ``log lam``
    Normal(log 4, 0.5), each mean within 4 Monte Carlo standard errors (ArviZ's effective
    sample size of the chains)."""
    table = group(LATENT_LAM, seed=0, users=3, rounds=4)
    idle = table.iloc[:2].assign(
        sim="idle", proposer="", responder="assistant", proposer_tone="", responder_tone=""
    )
    both = validate_frame(pd.concat([table, idle], ignore_index=True))
    posterior = quietly(
        fit, both, LATENT_LAM, engine="mcmc", samples=300, warmup=150, num_chains=2, seed=2
    )
    s = posterior.data.sim_ids.index("idle")
    a = torch.tensor(GroupPrior(LATENT_LAM).concentration, dtype=torch.float64)
    pi_sd = (a / a.sum() * (1 - a / a.sum()) / (a.sum() + 1)).sqrt()
    pi = posterior.draws["pi"][:, :, s].double()
    log_lam = posterior.draws["lam"][:, :, s].double().log()
    for draws, mean, sd in ((pi, a / a.sum(), pi_sd), (log_lam[..., None], math.log(4.0), 0.5)):
        ess = torch.tensor([float(az.ess(x.numpy())) for x in draws.unbind(-1)])
        error = (draws.flatten(0, 1).mean(0) - mean).abs()
        assert (error < 4 * sd / ess.sqrt()).all(), (error, ess)


@settings(max_examples=4, **SETTINGS)
@given(a=st.floats(1.0, 30.0), b=st.floats(1.0, 30.0), seed=st.integers(0, 2**16))
def test_a_bounded_site_without_data_is_drawn_from_its_prior(a, b, seed):
    """With every event masked the exact engine's log evidence is 0 (the prior's cells are
    normalised) and its lapse draws, placed within the drawn cell of the logit grid by the
    posterior's shape there, are ``Beta(a, b)``: a Kolmogorov-Smirnov test of 2,000 draws
    (p above 1e-4: a fixed example that fails it would fail on every run) and their mean
    within 4 standard errors."""
    from dataclasses import replace

    hypothesis = LEARNED_LAPSE.with_(lapse_prior=(a, b))
    data = GroupData.from_table(group(hypothesis, seed=1, users=3, rounds=2))
    none = torch.zeros_like(data.event_mask)
    empty = replace(
        data, event_mask=none, tone_mask=data.tone_mask & none, is_proposer=none, is_responder=none
    )
    posterior = quietly(fit_exact, empty, hypothesis, num_draws=2000, seed=seed)
    assert posterior.diagnostics["log_evidence"][0] == pytest.approx(0.0, abs=1e-6)
    lapse = posterior.draws["lapse"].double().flatten().numpy()
    prior = stats.beta(a, b)
    assert stats.kstest(lapse, prior.cdf).pvalue > 1e-4
    assert abs(lapse.mean() - prior.mean()) < 4 * prior.std() / math.sqrt(len(lapse))


# -- the exact engine's lattice sum -----------------------------------------------------------


def lattice_posterior(data: GroupData, hypothesis) -> tuple[torch.Tensor, ...]:
    """The posterior on the default lattice of ``pi`` (nothing else latent) by a plain float64
    sum: every user's ``log sum_k pi_gk exp(L[u, k])`` at every point ``g``, the float64
    density's ``L``, no user decided or counted once. Log evidence ``[S]``, mean of ``pi``
    ``[S, K]`` and users' type probabilities ``[S, U, K]``."""
    with float64_default():
        L = MarginalDensity(data, hypothesis).fixed_loglik.double().reshape(*data.shape[:2], -1)
    points = simplex_lattice(L.shape[-1]).double()
    joint = points.log() + L[:, :, None, :]  # [S, U, G, K]
    per_user = torch.logsumexp(joint, -1)  # [S, U, G]
    mask = data.user_mask.double()[..., None]
    log_joint = GroupPrior(hypothesis).pi_cell_log_weights(points) + (per_user * mask).sum(1)
    evidence = torch.logsumexp(log_joint, -1)
    weights = (log_joint - evidence[:, None]).exp()  # [S, G]
    probs = (weights[:, None, :, None] * (joint - per_user[..., None]).exp()).sum(2)
    return evidence, weights @ points, probs


@settings(max_examples=6, **SETTINGS)
@given(
    name=st.sampled_from(["neutral", "stereotyped", "currency_invariant"]),
    seed=st.integers(0, 100),
    users=st.integers(2, 12),
    rounds=st.integers(2, 60),
    copies=st.integers(1, 4),
)
def test_the_exact_posterior_is_the_plain_sum_over_its_lattice(name, seed, users, rounds, copies):
    """The exact engine's kernels count identical users once (weighted by their number),
    sum users decided at a lattice point in closed form and score repeated rows once; none
    of this changes the sum. Its log evidence, ``pi`` and every user's type probabilities
    equal a plain float64 sum over the same lattice, for groups of two simulations whose
    users are copied 1 to 4 times. Tolerances: the engine scores the actions in float32
    (the users' log-likelihoods to ~1e-7 relative, up to ~3e-4 nats summed over the
    largest groups here); its outputs are float32."""
    hypothesis = PRESETS[name]
    table = group(
        hypothesis, seed, users=users, rounds=rounds, sims=2, currency=["dollars", "medicine"]
    )
    data = GroupData.from_table(copied_users(table, copies))
    posterior = quietly(fit_exact, data, hypothesis, num_draws=10)
    assert "simplex_zooms" not in posterior.diagnostics  # (the default lattice throughout)
    evidence, pi_mean, probs = lattice_posterior(data, hypothesis)
    got = torch.tensor(posterior.diagnostics["log_evidence"], dtype=torch.float64)
    torch.testing.assert_close(got, evidence, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(posterior.pi_mean().double(), pi_mean, rtol=0, atol=1e-6)
    real = data.user_mask
    torch.testing.assert_close(
        posterior.policy_probs.double()[real], probs[real], rtol=0, atol=1e-6
    )


@settings(max_examples=4, **SETTINGS)
@given(
    latent=st.sampled_from(["lam", "lapse"]),
    seed=st.integers(0, 100),
    n=st.integers(2, 4),
)
def test_with_one_type_copying_the_users_is_playing_every_game_again(latent, seed, n):
    """With a single policy type a user's likelihood is its games' product, so every user
    copied ``n`` times (``n`` times the users, the engine's count weights) and every game
    played ``n`` times (``n`` times each user's log-likelihood) are one likelihood, ``p(data |
    theta)^n``: the exact posteriors agree, on a latent rationality's zoomed window and on a
    learned lapse's zoomed logit grid (same seed, same grid, same draws), up to the float32
    rounding of the scored actions. Without tones: a user's tones share its manner."""
    base = LATENT_LAM if latent == "lam" else LEARNED_LAPSE
    one_type = base.with_(policies=base.policies[:1], pi_concentration=(1.0,))
    table = group(PRESETS["neutral"], seed, users=4, rounds=5, currency="medicine")
    table = table.assign(proposer_tone="", responder_tone="")
    again = pd.concat(
        [table.assign(epoch=table["epoch"] + 100 * r) for r in range(n)], ignore_index=True
    )
    by_users, by_games = (
        quietly(fit_exact, GroupData.from_table(validate_frame(t)), one_type, num_draws=500)
        for t in (copied_users(table, n), again)
    )
    assert by_users.diagnostics["log_evidence"] == pytest.approx(
        by_games.diagnostics["log_evidence"], rel=1e-6
    )
    assert by_users.diagnostics["grid_size"] == by_games.diagnostics["grid_size"]
    site = by_users.draws[latent].double()
    torch.testing.assert_close(site, by_games.draws[latent].double(), rtol=1e-5, atol=0)


# -- seeds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "options"),
    [
        ("exact", {"num_draws": 50}),
        ("mcmc", {"samples": 20, "warmup": 20, "num_chains": 2}),
    ],
)
def test_the_draws_depend_on_the_seed_alone_and_leave_the_global_generators(engine, options):
    """A fit seeded alike gives the same draws and type probabilities whatever torch's,
    NumPy's and Python's global generators were set to before it, and leaves them where they
    were (the next number each gives is the one it would have given without the fit)."""
    table = group(LATENT_LAM, seed=1, users=4, rounds=6)
    fits = []
    for state in (0, 12345):
        torch.manual_seed(state), np.random.seed(state), random.seed(state)
        fits.append(quietly(fit, table, LATENT_LAM, engine=engine, seed=7, **options))
        after = (torch.rand(1).item(), np.random.rand(), random.random())
        torch.manual_seed(state), np.random.seed(state), random.seed(state)
        assert after == (torch.rand(1).item(), np.random.rand(), random.random())
    first, second = fits
    assert first.draws.keys() == second.draws.keys()
    for site in first.draws:
        assert torch.equal(first.draws[site], second.draws[site])
    assert torch.equal(first.policy_probs, second.policy_probs)


# -- ArviZ -------------------------------------------------------------------------------------


def unconstrained(density: MarginalDensity, draws: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[D, S, width]``: the density's coordinates of flat draws ``[D, S, ...]``."""
    D, S = draws["pi"].shape[:2]
    cols = torch.zeros(D, S, density.coords.width, dtype=torch.float64)
    columns = density.columns
    cols[..., columns["pi"]] = StickBreakingTransform().inv(draws["pi"].double())
    if "lam" in columns:
        cols[..., columns["lam"]] = draws["lam"].double().log()[..., None]
    for site in density.coords.bounded:
        x = draws[site].double()
        cols[..., columns[site]] = (x.log() - (-x).log1p())[..., None]
    return cols


@pytest.mark.parametrize("engine", ["exact", "mcmc"])
@pytest.mark.parametrize("name", ["latent_lam", "learned_lapse"])
def test_arviz_log_likelihood_sums_to_the_float64_group_loglik(engine, name):
    """Given the draw, users without clones are independent, so their ``log_likelihood``
    (chain, draw, user) summed over each simulation's users (labelled ``sim:user``) is the
    group log-likelihood ``sum_u log sum_k pi_k exp(L[u, k])`` that the float64 density gives
    at the draw's ``pi``, ``lam`` or ``lapse`` (the exact engine's lapse drawn within its grid
    cell, scored there); the posterior group holds the draws. Tolerance: the file's values
    come from float32 tables (~1e-7 relative per game)."""
    hypothesis = {"latent_lam": LATENT_LAM, "learned_lapse": LEARNED_LAPSE}[name]
    table = group(hypothesis, seed=3, users=4, rounds=6, sims=2, currency=["dollars", "apples"])
    options = {"exact": {"num_draws": 30}, "mcmc": {"samples": 15, "warmup": 15}}[engine]
    posterior = quietly(fit, table, hypothesis, engine=engine, seed=1, **options)
    idata = posterior.to_arviz()
    for site, value in posterior.draws.items():
        np.testing.assert_array_equal(idata.posterior[site].values, value.double().numpy())
    loglik = idata.log_likelihood["user_actions"]
    assert loglik.dims == ("chain", "draw", "user")
    flat = {site: posterior.flat_draws(site) for site in posterior.draws}
    with float64_default():
        density = MarginalDensity(posterior.data, hypothesis)
        L = density.user_loglik(unconstrained(density, flat))
        want = group_loglik(flat["pi"].double().log(), L, posterior.data.user_mask, None)
    labels = [str(u).split(":")[0] for u in loglik.coords["user"].values]
    values = loglik.values.reshape(-1, loglik.shape[-1])
    for s, sim in enumerate(posterior.data.sim_ids):
        users = [i for i, label in enumerate(labels) if label == sim]
        assert len(users) == int(posterior.data.user_mask[s].sum())
        np.testing.assert_allclose(values[:, users].sum(-1), want[:, s].numpy(), atol=1e-4)
