"""SVI and MCMC agree with the exact engine on the quantities the assistant uses: each user's
posterior policy probabilities (``Posterior.policy_probs``) and the posterior mean of the group
mixture (``Posterior.pi_mean()``), within ``TOL = 0.03``.

Each case fits two simulated groups at once (``sims`` "one", a one-norm group, and "mixed", a
40/30/30 group; 20 users, types dealt in exact proportion, who play 2 games (SVI) or 4
games (MCMC) each):

* MCMC, latent rationality ``lam ~ LogNormal(log 1, 0.3)`` (data simulated at ``lam = 1``):
  with small pots (2-6 units) and low rationality the actions are noisy, so many users'
  types are uncertain (checked) and the per-user probabilities are a real comparison, not
  0 = 0 and 1 = 1;
* SVI, the ``essential_goods_shared`` preset (a latent per-currency shift of the weight on the
  other's payoff), in dollars.

The reference is the exact engine on a fine grid (simplex lattice of 15,000 points instead
of the default 1,500, scalar grids twice as dense). Why ``TOL = 0.03`` leaves room, error
source by error source:

* exact grid: the lattice error of ``pi``'s Dirichlet(0.5) prior shrinks like 1 / n (n + 1
  lattice steps per edge: 53 by default, 171 here), measured from fits at 1,500, 5,000 and
  15,000 points. On the MCMC case the default grid is within 0.0025 of the fine one (checked
  below, bound TOL / 10); on the SVI case a user of the one-norm group whose type hinges on
  ``pi``'s mass near the simplex edge moves by 0.011 from the default to the fine grid, which
  is why the fine grid is the reference (its own extrapolated error is ~0.005); see
  ``test_exact_default_grid_error_near_the_simplex_edge``;
* MCMC Monte Carlo error: the estimate of a posterior mean has standard error (MCSE)
  ``sd / sqrt(ESS)``. The posterior sd of a ``pi`` component is at most 0.11 for 20 users;
  ``policy_probs`` averages the per-draw ``P(z_u = k | theta, data)``, whose sd across draws
  reaches ~0.25 for users whose type hinges on ``lam`` and ``pi`` (measured with 2 games per
  user; 4 games per user keep it ~0.1). With ESS ~300-800 from 2 x 300 draws, the MCSE is
  ~0.005. The test computes every MCSE from the run (ArviZ, autocorrelation included) and
  requires ``TOL`` to be at least ``Z = 4`` of them, so a failed premise is reported as such,
  not as a disagreement. A 4-sigma excursion has probability 6e-5 per quantity, < 1% over
  the 126 quantities compared, at the worst-case MCSE;
* SVI: the 990 guide draws give a Monte Carlo error below 0.11 / sqrt(990) = 0.0035; the rest
  of any difference is the variational approximation (a mean-field normal in the
  unconstrained space) and the optimiser's last steps, which no sampling argument bounds:
  this is what the test measures. 1,000 steps at learning rate 0.03 (measured: 600 steps at
  0.05 leave the optimiser's jitter at ~0.04 in ``pi``).
"""

from __future__ import annotations

import time
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import torch

from inference import fit
from inference.exact import fit_exact
from inference.fit import prepare
from models.hypotheses import PRESETS, Hypothesis
from models.marginal import type_posterior
from models.simulate import simulate

TOL = 0.03
FINE_SIMPLEX = 15000
Z = 4.0
GROUPS = (("one", None), ("mixed", "selfish=0.4,fair=0.3,altruistic=0.3"))
USERS = 20
MCMC_HYPOTHESIS = Hypothesis(name="latent_lam_1", rationality=1.0, rationality_scale=0.3)
SVI_HYPOTHESIS = PRESETS["essential_goods_shared"]


def two_groups(truth: Hypothesis, one: str, currency: str, seed: int, epochs: int) -> pd.DataFrame:
    parts = []
    for i, (name, policy) in enumerate(GROUPS):
        sim = simulate(
            truth,
            policy=policy or one,
            users=USERS,
            rounds=USERS,
            epochs=epochs,
            assign="exact",
            currency=currency,
            seed=seed + i,
            pot_range=(2, 6),
        )
        table = sim.interactions.copy()
        table["sim"] = name
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


class Case:
    def __init__(self, table, hypothesis, engine, **options):
        self.table = table
        self.exact = fit(table, hypothesis, engine="exact", seed=0)
        _, data, _ = prepare(table, hypothesis)
        self.fine = fit_exact(
            data, hypothesis, max_simplex_points=FINE_SIMPLEX, grid_points=400, zoom_points=128
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            # the short runs' r_hat/ESS bars (400) are the engine's, not this test's premise
            warnings.simplefilter("ignore")
            self.post = fit(table, hypothesis, engine=engine, seed=1, **options)
        self.seconds = time.perf_counter() - start


@pytest.fixture(scope="module")
def mcmc_case() -> Case:
    table = two_groups(
        PRESETS["neutral"].with_(rationality=1.0), "fair", "dollars", seed=1, epochs=2
    )
    return Case(
        table, MCMC_HYPOTHESIS, "mcmc", warmup=300, samples=300, num_chains=2, parallel=False
    )


@pytest.fixture(scope="module")
def svi_case() -> Case:
    table = two_groups(SVI_HYPOTHESIS, "selfish", "dollars", seed=11, epochs=1)
    return Case(table, SVI_HYPOTHESIS, "svi", learning_rate=0.03, max_steps=1000, num_draws=990)


def assert_close(name, got: torch.Tensor, want: torch.Tensor, tol: float = TOL):
    diff = (got.double() - want.double()).abs()
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    assert float(diff.max()) <= tol, (
        f"{name}: max |difference| {float(diff.max()):.4f} > {tol} at {worst} "
        f"(engine {float(got[worst]):.4f}, exact {float(want[worst]):.4f})"
    )


def grid_error(case: Case) -> tuple[float, float]:
    """Default grid vs the fine one: ``pi_mean`` and ``policy_probs`` max differences."""
    pi = (case.exact.pi_mean() - case.fine.pi_mean()).abs().max()
    probs = (case.exact.policy_probs - case.fine.policy_probs).abs().max()
    return float(pi), float(probs)


@pytest.mark.slow
def test_mcmc_agrees_with_exact(mcmc_case):
    case = mcmc_case
    post = case.post
    print(f"MCMC: {case.seconds:.1f} s")
    assert max(grid_error(case)) <= TOL / 10, grid_error(case)
    exact = case.fine
    # the comparison is not trivial: a good share of users are not certain of their type
    top = exact.policy_probs.max(-1).values[exact.data.user_mask]
    assert (top < 0.99).float().mean() > 0.25
    # the premise: Monte Carlo standard errors at most TOL / Z
    per_draw = type_posterior(post.flat_draws("pi").clamp_min(1e-300).log(), post.user_loglik())
    per_draw = per_draw.reshape(post.n_chains, post.n_draws, *per_draw.shape[1:])
    draws = {
        "policy_prob": per_draw.double().numpy(),
        **{k: v.double().numpy() for k, v in post.draws.items()},
    }
    mcse = az.mcse(az.convert_to_dataset(draws), method="mean")
    assert float(mcse["pi"].max()) <= TOL / Z, float(mcse["pi"].max())
    assert float(mcse["policy_prob"].max()) <= TOL / Z, float(mcse["policy_prob"].max())
    # the agreement
    assert_close("pi_mean", post.pi_mean(), exact.pi_mean())
    assert_close("policy_probs", post.policy_probs, exact.policy_probs)
    # lam too (not asked, but it is what makes these users uncertain)
    lam_diff = post.flat_draws("lam").double().mean(0) - exact.flat_draws("lam").double().mean(0)
    assert torch.all(lam_diff.abs() <= Z * torch.as_tensor(mcse["lam"].values) + 0.01)


@pytest.mark.slow
def test_svi_agrees_with_exact_on_pi(svi_case):
    case = svi_case
    post, exact = case.post, case.fine
    print(f"SVI: {case.seconds:.1f} s, {post.diagnostics['steps']} steps")
    assert grid_error(case)[0] <= TOL / 10, grid_error(case)
    assert post.draws["pi"].shape[1] == 990
    assert "shift" in post.draws and post.draws["shift"].shape[-1] == 1
    assert_close("pi_mean", post.pi_mean(), exact.pi_mean())
    # both engines see the groups' norms: the one-norm group is mostly selfish
    assert float(exact.pi_mean()[0, 0]) > 0.8 and float(post.pi_mean()[0, 0]) > 0.8


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="inference/svi.py:1-12 (AutoNormal mean-field guide, said to be 'enough here'): on "
    "this data (seed fixed) a user of the mixed group whose type is uncertain gets "
    "P(fair) = 0.625 from SVI against 0.666 exact (|diff| 0.041 > 0.03) after 1,000 steps, "
    "while pi_mean agrees; the guide ignores the posterior correlation of pi and the "
    "currency shift that decides such users",
)
def test_svi_agrees_with_exact_on_policy_probs(svi_case):
    assert_close("policy_probs", svi_case.post.policy_probs, svi_case.fine.policy_probs)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="inference/exact.py (fit_exact, log_prior = Dirichlet density at the points of "
    "grids.simplex_lattice): quadrature of pi's Dirichlet(0.5) prior converges like 1/n near "
    "the simplex edge; in a one-norm group a user's policy_probs moves 0.0074 from 1,500 to "
    "5,000 lattice points and 0.011 to 15,000 (extrapolated default error ~0.016, half of "
    "TOL). Weighting each point by its cell's prior mass would fix it.",
)
def test_exact_default_grid_error_near_the_simplex_edge(svi_case):
    assert grid_error(svi_case)[1] <= TOL / 10, grid_error(svi_case)
