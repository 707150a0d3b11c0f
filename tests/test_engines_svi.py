"""The SVI engine: agreement with the exact engine, and simulation-based calibration (SBC).

SVI's cost is almost all Pyro's per-step overhead, nearly independent of how many simulations
are fitted at once, so both checks share **one** fit of 52 simulations (groups share no
parameter, so the posterior of each is what a fit of it alone would give):

* "one" and "mixed", the agreement groups (below);
* "0" ... "49", 50 SBC replications drawn from the prior.

Hypothesis: the ``essential_goods_shared`` preset, whose latent per-currency shift of the weight
on the other's payoff is the currency-shift case of issue 3, in dollars (``shift ~ N(0, 0.5)``).

Agreement (``TOL = 0.03`` on ``policy_probs`` and ``pi_mean()``): the reference is the exact
engine on a fine grid (simplex lattice of 15,000 points instead of the default 3,000). Each
lattice point carries the Dirichlet(0.5) prior's mass of its cell
(:func:`inference.grids.dirichlet_cell_log_weights`); measured on these groups, a user of the
one-norm group whose type hinges on ``pi``'s mass near the simplex edge moves by 0.0206,
0.0056, 0.0016 and 0.0002 from 500, 1,500, 3,000 and 5,000 points to 15,000 (faster than
1 / n^2), so the default grid is within ``TOL / 10`` of the reference
(``test_exact_default_grid_error_near_the_simplex_edge``; with the density at the point
instead of the cell's mass the error was 0.011 at 1,500 points and shrank like 1 / n).
The 990 guide draws give a Monte Carlo error below ``0.11 / sqrt(990) = 0.0035`` (0.11: the
largest posterior sd of a ``pi`` component with 20 users); the rest of any difference is the
variational approximation (a mean-field normal in the unconstrained space) and the optimiser's
last steps, which no sampling argument bounds: this is what the test measures. 1,000 steps at
learning rate 0.03 (measured: 600 steps at 0.05 leave the optimiser's jitter at ~0.04 in
``pi``).

SBC: see ``test_sbc`` for the method; here ``L = 9`` draws per replication (10 rank bins, 5
replications per bin), statistics ``pi`` (3 components) and ``shift[dollars]``, chi-square at
family-wise ``ALPHA = 0.01``, Bonferroni-split over the 4 statistics (``pi`` and the shift are
separate tests, the shift's being a known failure). Guide draws are continuous and
independent: no ties, no thinning needed.
"""

from __future__ import annotations

import time
import warnings

import agreement
import numpy as np
import pandas as pd
import pytest
import torch
from sbc_util import prior_replications, ranks, thin, uniformity_pvalue

from inference import fit
from inference.exact import fit_exact
from inference.fit import prepare
from inference.svi import ConvergenceWarning
from models.hypotheses import PRESETS
from models.simulate import simulate

TOL = 0.03
ALPHA = 0.01
HYPOTHESIS = PRESETS["essential_goods_shared"]
GROUPS = (("one", "selfish"), ("mixed", "selfish=0.4,fair=0.3,altruistic=0.3"))
N_SBC = 50
L = 9


def agreement_groups() -> pd.DataFrame:
    parts = []
    for i, (name, policy) in enumerate(GROUPS):
        table = simulate(
            HYPOTHESIS,
            policy=policy,
            users=20,
            rounds=20,
            epochs=1,
            assign="exact",
            currency="dollars",
            seed=11 + i,
            pot_range=(2, 6),
        ).interactions.copy()
        table["sim"] = name
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def svi():
    groups = agreement_groups()
    reps = prior_replications(
        HYPOTHESIS, n=N_SBC, users=6, rounds=6, epochs=2, seed=303, pot_range=(2, 8)
    )
    table = pd.concat([groups, reps.table], ignore_index=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the ELBO rule (relative change < 1e-4 over 50-step windows) rarely fires with one
        # particle; the checks below are what matters here
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = fit(
            table,
            HYPOTHESIS,
            engine="svi",
            seed=1,
            learning_rate=0.03,
            max_steps=1000,
            num_draws=990,
        )
    seconds = time.perf_counter() - start
    assert post.data.sim_ids == ["one", "mixed", *map(str, range(N_SBC))]
    return post, reps, seconds


@pytest.fixture(scope="module")
def exact():
    """The agreement groups under the exact engine: default and fine grids."""
    groups = agreement_groups()
    _, data, _ = prepare(groups, HYPOTHESIS)
    fine = fit_exact(data, HYPOTHESIS, max_simplex_points=15000, grid_points=400, zoom_points=128)
    return fit(groups, HYPOTHESIS, engine="exact", seed=0), fine


def assert_close(name, got: torch.Tensor, want: torch.Tensor, tol: float = TOL):
    agreement.assert_close(name, got, want, tol, engine="svi")


@pytest.mark.slow
def test_svi_agrees_with_exact_on_pi(svi, exact):
    post, _, seconds = svi
    default, exact = exact
    assert_close("pi_mean, default grid", default.pi_mean(), exact.pi_mean(), TOL / 10)
    print(f"SVI, 52 groups: {seconds:.1f} s, {post.diagnostics['steps']} steps")
    assert post.draws["pi"].shape == (1, 990, 2 + N_SBC, 3)
    assert post.draws["shift"].shape == (1, 990, 2 + N_SBC, 1)
    assert_close("pi_mean", post.pi_mean()[:2], exact.pi_mean())
    # both engines see the groups' norms: the one-norm group is mostly selfish
    assert float(exact.pi_mean()[0, 0]) > 0.8 and float(post.pi_mean()[0, 0]) > 0.8


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="inference/svi.py:1-12 (AutoNormal mean-field guide, said to be 'enough here'): "
    "users of these groups whose type is uncertain get policy probabilities more than 0.03 "
    "away from the exact engine's (0.045 measured, seed fixed) after 1,000 steps, while "
    "pi_mean agrees; the guide ignores the posterior correlation of pi and the currency "
    "shift that decides such users. guide='mvn' (full covariance) is no robust fix: 0.075 "
    "after 1,000 steps, 0.028 after 2,500 (with pi then 0.023 off)",
)
def test_svi_agrees_with_exact_on_policy_probs(svi, exact):
    post, _, _ = svi
    exact = exact[1]
    U = exact.policy_probs.shape[1]
    assert not post.policy_probs[:2, U:].any()  # padding only beyond the groups' 20 users
    assert_close("policy_probs", post.policy_probs[:2, :U], exact.policy_probs)


def svi_sbc_pvalues(svi) -> dict[str, float]:
    post, reps, _ = svi
    rng = np.random.default_rng(13)
    pi = post.draws["pi"][0, :, 2:].double().numpy()  # [D, n, K]
    shift = post.draws["shift"][0, :, 2:, 0].double().numpy()  # [D, n]
    rank = {
        f"pi[{name}]": ranks(thin(pi[:, :, k].T, L), reps.pi[:, k], rng)
        for k, name in enumerate(HYPOTHESIS.policy_names)
    }
    rank["shift[dollars]"] = ranks(thin(shift.T, L), reps.shift[:, 0], rng)
    p = {name: uniformity_pvalue(r, L) for name, r in rank.items()}
    print("SBC svi: " + ", ".join(f"{k} p={v:.3g}" for k, v in p.items()))
    return p


@pytest.mark.slow
def test_svi_sbc_pi(svi):
    p = svi_sbc_pvalues(svi)
    level = ALPHA / len(p)
    bad = {k: v for k, v in p.items() if k.startswith("pi[") and v < level}
    assert not bad, f"rank histograms not uniform at {level}: {bad}"


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="inference/svi.py (AutoNormal guide, single ELBO particle): the currency shift is "
    "miscalibrated, chi-square p = 6e-7 with U-shaped ranks (counts 11 7 3 1 1 5 1 4 1 16 "
    "over 10 bins): SVI's sd is ~0.77x the exact engine's (median over replications) and "
    "some replications settle in a wrong mode of the shift (one at -1.37 where exact says "
    "0.41, truth 0.40). guide='mvn' gives p = 0.027 after 1,000 steps but 0.0018 after "
    "2,500: variational families cannot represent the shift's second mode",
)
def test_svi_sbc_shift(svi):
    p = svi_sbc_pvalues(svi)
    assert p["shift[dollars]"] >= ALPHA / len(p), p


@pytest.mark.slow
def test_exact_default_grid_error_near_the_simplex_edge(exact):
    """The default lattice's quadrature error is a tenth of the agreement tolerance."""
    default, fine = exact
    assert_close("policy_probs, default grid", default.policy_probs, fine.policy_probs, TOL / 10)
