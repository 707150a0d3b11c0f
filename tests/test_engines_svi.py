"""The SVI engine: agreement with the exact engine, and simulation-based calibration (SBC).

SVI's cost is almost all Pyro's per-step overhead, nearly independent of how many simulations
are fitted at once, so both checks share **one** fit of 52 simulations (groups share no
parameter, so the posterior of each is what a fit of it alone would give):

* "one" and "mixed", the agreement groups (below);
* "0" ... "49", 50 SBC replications drawn from the prior.

Hypothesis: the ``essential_goods_shared`` preset, whose latent per-currency shift of the weight
on the other's payoff is the currency-shift case of issue 3, in dollars (``shift ~ N(0, 0.5)``).

The engine runs as by default: an ``AutoNormal`` guide started at the Laplace approximation
(at most 1,000 steps at learning rate 0.03; it stopped at 150, measured; from the prior median,
600 steps at 0.05 had left the optimiser's jitter at ~0.04 in ``pi``), then the
importance correction of :func:`scai.inference.importance.importance_correct`: 2,000 draws of a
proposal built from the guide (Student-t components at the guide and at the modes an L-BFGS
search of the exact log joint finds from the guide's mean, 4 prior draws and the best prior
draw in each tail of the shift (where it ends in a mode not found already), plus 10% prior),
weighted by the exact log joint, Pareto-smoothed, and 990 draws resampled per simulation.
Without it (``correction=None``, the guide's own draws) both checks below failed, for two
measured reasons: the mean-field guide ignores the posterior correlation of ``pi`` and the shift
(users whose type is uncertain got policy probabilities 0.045 from the exact engine's, ``pi``
0.026), and it misplaces the shift: in 11 of the 50 SBC replications its mean was more than one
exact-posterior sd from the exact engine's, in 8 more than three (a wrong mode; up to 25), and
its sd was 0.66x the exact one (median over replications; SBC of the shift: p = 6e-7).

Agreement, element by element on ``policy_probs`` and ``pi_mean()``: the reference is the
exact engine on a fine grid (simplex lattice of 15,000 points instead of the default 3,000).
Each element must be within ``z se + grid`` of it (:func:`agreement.assert_within_error`):

* ``se``, SVI's Monte Carlo error: the exact posterior sd of the element's per-draw value
  (``pi``, or each user's ``P(z_u = k | theta, data)``; over 20,000 draws of the fine grid)
  times ``sqrt(1 / ESS + 1 / 990)``: importance sampling with the group's measured effective
  sample size (at least ``ESS_MIN = 500``, checked), then 990 draws resampled. Not SVI's own
  sd: an engine that draws too wide widens its own bound (with the importance target tempered
  to ``p^0.75``, SVI's sd of ``pi`` was up to 1.46x the exact one, and with the larger of the
  two sds, as this test had it, bounds of 0.0065-0.0318 let ``pi_mean`` 0.028 off pass; now
  its bounds are 0.0055-0.0226 and it fails);
* ``z``: the two-sided normal quantile at 0.01 Bonferroni-split over the elements compared
  (3.1-3.5): a correct engine fails by chance with probability below 0.01;
* ``grid``: the default grid's difference from the fine one, a bound on the fine grid's own
  error. Each lattice point carries the Dirichlet(0.5) prior's mass of its cell
  (:meth:`scai.models.prior.GroupPrior.pi_cell_log_weights`); measured on these groups, a user
  of the one-norm group whose type hinges on ``pi``'s mass near the simplex edge moves by
  0.0206, 0.0056, 0.0016 and 0.0002 from 500, 1,500, 3,000 and 5,000 points to 15,000 (faster
  than 1 / n^2), so the default grid is within ``GRID_TOL = 0.003`` of the reference
  (``test_exact_default_grid_error_near_the_simplex_edge``). With the density at the point
  instead of the cell's mass the error was 0.011 at 1,500 points and shrank like 1 / n;
* for ``policy_probs`` also one draw's worth, ``1 / 990``: a user certain of its type but for
  a region of ~1e-5 of the mass is a 0-or-1 per-draw value there, which neither engine's draws
  resolve (the exact sd over 20,000 draws is ~1e-6); one of SVI's 990 draws landing in it moves
  the estimate by 1 / 990 (seen under a tempered target: 0.00101 against a bound of 0.0001).

The bounds come to 0.0053-0.022 on ``pi`` (the largest on the one-norm group's selfish share,
posterior sd 0.144) and 0.0011-0.029 on ``policy_probs`` (measured, seeds 1-5); they must stay
below ``PI_BOUND_MAX = 0.025`` and ``PROBS_BOUND_MAX = 0.032`` (checked): an error of 0.025 in
``pi`` fails. ``test_svi_agreement_detects_a_tempered_target`` checks that the criterion has
that power: with the importance target tempered to ``p^0.7`` (the one-norm group alone),
``pi_mean`` is 0.025 off against a bound of 0.021 and fails (seeds 1-5: 1.2-1.9x the bound);
a milder ``p^0.9`` (0.010 off, 0.44x the bound) is below what 990 draws resolve. A fixed
tolerance of 0.03 had hidden a real disagreement: the one-norm group has a second mode (a shift
near -1.4 under which its users read as altruists, ~2% of the mass) that the proposal missed,
leaving SVI's ``pi_mean`` 0.022 off the reference
(``test_svi_sees_the_minor_mode_of_the_one_norm_group`` checks that mode directly). Measured
now (seed fixed): ``pi_mean`` 0.0046 and ``policy_probs`` 0.0032 from the reference (0.33x and
0.20x their bounds); effective sample sizes 1,027 and 1,067, Pareto ``k`` 0.11 and -0.47
(checked: ``k`` at most 0.7).

SBC: see ``test_sbc`` for the method; here ``L = 9`` draws per replication (10 rank bins, 5
replications per bin), statistics ``pi`` (3 components) and ``shift[dollars]``, chi-square at
family-wise ``ALPHA = 0.01``, Bonferroni-split over the 4 statistics. The 990 draws of a
replication are resampled from 2,000 weighted proposal draws, in random order: every 110th is
taken, and two of the 9 can be copies of one proposal draw (more often where the effective
sample size is low); the true value is continuous, so it ties with none. Measured (seed fixed,
the guide started at the Laplace approximation): p = 0.98, 0.62, 0.49 for ``pi`` and 0.70 for
the shift, and under a wrong prior (``pi`` pulled to the centre, the shift to 0) p = 5e-12 or
less for each (``test_svi_sbc_detects_a_wrong_prior``); 5 of the 52 simulations have Pareto
``k`` > 0.7 (warned, all SBC replications of 6 users whose shift posterior is lumpy: the
likelihood of a few discrete offers changes in steps with the shift). Compared offline with the
exact engine on every replication (default grid), the corrected shift's mean was within 0.20
exact-posterior sd of the exact mean in all 50 (median sd ratio 0.99; measured with an Adam
mode search that L-BFGS has since replaced, same checks passing)."""

from __future__ import annotations

import math
import time
import warnings

import agreement
import numpy as np
import pandas as pd
import pytest
import torch
from sbc_util import prior_replications, ranks, thin, uniformity_pvalue
from small_groups import three_mixed_groups

from scai.inference import fit
from scai.inference.draws import latent_sites
from scai.inference.errors import EngineError
from scai.inference.exact import fit_exact
from scai.inference.fit import prepare
from scai.inference.importance import (
    ImportanceWarning,
    MixtureProposal,
    pareto_k_threshold,
)
from scai.inference.laplace import laplace
from scai.inference.svi import ConvergenceWarning, fit_svi
from scai.models.density import MarginalDensity
from scai.models.hypotheses import PRESETS
from scai.models.marginal import EventIndex, group_loglik, user_loglik
from scai.models.simulate import simulate

GRID_TOL = 0.003  # the default grid against the fine one (module docstring)
ALPHA = 0.01
HYPOTHESIS = PRESETS["essential_goods_shared"]
GROUPS = (("one", "selfish"), ("mixed", "selfish=0.4,fair=0.3,altruistic=0.3"))
N_SBC = 50
L = 9
ESS_MIN = 500
EXACT_DRAWS = 20_000  # the fine grid's draws, for the exact posterior sd of each element
PI_BOUND_MAX = 0.025  # the agreement bounds' caps (module docstring)
PROBS_BOUND_MAX = 0.032
#: The fixture's SVI fit, which the power check repeats on one group.
SVI_FIT = {"engine": "svi", "seed": 1, "learning_rate": 0.03, "max_steps": 1000, "num_draws": 990}


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImportanceWarning)
        # from the Laplace start the stopping rule fired at 150 steps (measured); from the
        # prior median it had run to the 1,000-step cap; the checks below are what matter
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = fit(table, HYPOTHESIS, **SVI_FIT)
    seconds = time.perf_counter() - start
    assert post.data.sim_ids == ["one", "mixed", *map(str, range(N_SBC))]
    flagged = [str(w.message) for w in caught if issubclass(w.category, ImportanceWarning)]
    return post, reps, seconds, flagged


@pytest.fixture(scope="module")
def exact():
    """The agreement groups under the exact engine: default and fine grids."""
    groups = agreement_groups()
    _, data, _ = prepare(groups, HYPOTHESIS)
    fine = fit_exact(
        data,
        HYPOTHESIS,
        max_simplex_points=15000,
        grid_points=400,
        zoom_points=128,
        num_draws=EXACT_DRAWS,
    )
    assert fine.data.sim_ids == [name for name, _ in GROUPS]
    return fit(groups, HYPOTHESIS, engine="exact", seed=0), fine


def assert_close(name, got: torch.Tensor, want: torch.Tensor, tol: float = GRID_TOL):
    agreement.assert_close(name, got, want, tol, engine="svi")


def monte_carlo_se(post, names: list[str], exact_draws: torch.Tensor) -> torch.Tensor:
    """The standard error of SVI's estimates, for the agreement groups ``names``, of the
    posterior means of a quantity whose per-draw values under the exact engine are
    ``exact_draws [D, len(names), ...]``: the exact posterior sd times ``sqrt(1 / ESS + 1 /
    990)``, importance sampling with the group's measured effective sample size, then 990 draws
    resampled (module docstring). The ESS must be at least ``ESS_MIN``."""
    report = post.diagnostics["importance"]["ess"]
    ess = torch.tensor([report[name] for name in names], dtype=torch.float64)
    assert bool((ess >= ESS_MIN).all()), f"importance ESS {ess.tolist()} < {ESS_MIN}"
    ess = ess.reshape(-1, *[1] * (exact_draws.dim() - 2))
    return exact_draws.double().std(0) * (1 / ess + 1 / post.n_draws).sqrt()


def assert_pi_agrees(post, exact) -> None:
    """SVI's ``pi_mean()`` against the fine grid's for each agreement group that ``post``
    fitted, within ``z se + grid`` (module docstring), every bound below ``PI_BOUND_MAX``."""
    default, fine = exact
    names = [name for name, _ in GROUPS if name in post.data.sim_ids]
    rows = [post.data.sim_ids.index(name) for name in names]
    cols = [fine.data.sim_ids.index(name) for name in names]
    se = monte_carlo_se(post, names, fine.flat_draws("pi")[:, cols])
    grid = (default.pi_mean() - fine.pi_mean()).abs()[cols]
    bound = agreement.error_bound(se, grid)
    print(f"pi_mean: ESS {[round(post.diagnostics['importance']['ess'][n]) for n in names]}")
    assert float(bound.max()) < PI_BOUND_MAX, f"bounds up to {float(bound.max()):.4f}: too loose"
    agreement.assert_within_error(
        "pi_mean", post.pi_mean()[rows], fine.pi_mean()[cols], se, grid, engine="svi"
    )


@pytest.mark.slow
def test_svi_agrees_with_exact_on_pi(svi, exact):
    post, _, seconds, _ = svi
    default, fine = exact
    assert_close("pi_mean, default grid", default.pi_mean(), fine.pi_mean(), GRID_TOL)
    print(f"SVI, 52 groups: {seconds:.1f} s, {post.diagnostics['steps']} steps")
    assert post.draws["pi"].shape == (1, 990, 2 + N_SBC, 3)
    assert post.draws["shift"].shape == (1, 990, 2 + N_SBC, 1)
    assert_pi_agrees(post, exact)
    # both engines see the groups' norms: the one-norm group is mostly selfish
    assert float(fine.pi_mean()[0, 0]) > 0.8 and float(post.pi_mean()[0, 0]) > 0.8


@pytest.mark.slow
def test_svi_agrees_with_exact_on_policy_probs(svi, exact):
    """Users whose type is uncertain hinge on the joint posterior of ``pi`` and the shift:
    0.045 off with the guide's own draws, 0.003 after the importance correction (measured)."""
    post, _, _, _ = svi
    default, fine = exact
    U = fine.policy_probs.shape[1]
    assert not post.policy_probs[:2, U:].any()  # padding only beyond the groups' 20 users
    se = monte_carlo_se(post, [name for name, _ in GROUPS], fine.type_probabilities())
    # the grid's error, and one of SVI's draws in a region too rare for either engine's draws
    grid = (default.policy_probs - fine.policy_probs).abs() + 1 / post.n_draws
    bound = agreement.error_bound(se, grid)
    assert float(bound.max()) < PROBS_BOUND_MAX, f"bounds up to {float(bound.max()):.4f}"
    agreement.assert_within_error(
        "policy_probs", post.policy_probs[:2, :U], fine.policy_probs, se, grid, engine="svi"
    )


@pytest.mark.slow
def test_svi_agreement_detects_a_tempered_target(exact, monkeypatch):
    """Power: the importance correction aimed at ``p^0.7`` instead of the posterior ``p`` (its
    log weights ``0.7 log p(theta, data) - log q(theta)``; the scout draws' scores, scaled
    too, only rank them) must fail ``assert_pi_agrees`` on the agreement itself, its premises
    holding. Fitted as in the ``svi`` fixture, the one-norm group alone (the mixed group's
    ``pi`` barely moves). Measured: ESS 719, ``pi_mean`` 0.025 off against a bound of 0.021
    (seeds 1-5: ESS 648-843, 1.2-1.9x the bound). Milder tempering, in the ``svi`` fixture's
    fit: ``p^0.75`` leaves ``pi_mean`` 0.028 off (1.3x the bound: the agreement tests fail);
    ``p^0.8`` 0.019 (0.87x; 1.4x for one seed of three, the two groups fitted alone) and
    ``p^0.9`` 0.010 (0.44x) are below what 990 draws resolve."""
    from scai.inference import importance

    exact_log_joint = importance._chunked_log_joint

    def tempered(density, theta, chunk=500):
        return 0.7 * exact_log_joint(density, theta, chunk)

    monkeypatch.setattr(importance, "_chunked_log_joint", tempered)
    groups = agreement_groups()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportanceWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = fit(groups[groups["sim"] == "one"], HYPOTHESIS, **SVI_FIT)
    assert post.data.sim_ids == ["one"]
    with pytest.raises(AssertionError, match=r"^pi_mean: \|difference\| .* > "):
        assert_pi_agrees(post, exact)


@pytest.mark.slow
def test_svi_sees_the_minor_mode_of_the_one_norm_group(svi, exact):
    """Ten selfish users read as altruists under a currency shift near -1.4: a second mode
    3.7 nats below the best, ~2% of the exact posterior (``shift < -1``). The proposal missed
    it until the mode search started from the tails of the shift's prior draws
    (:func:`scai.inference.importance._tail_starts`): SVI then put 0 draws there and its
    ``pi_mean`` was 0.022 off the exact engine's, with Pareto ``k`` -0.01 and ESS 1,205.
    Here SVI's share of draws below -1 must be within the Monte Carlo error of the exact one
    (binomial: the group's effective sample size and both engines' draws; z = 3.3, two-sided
    0.001)."""
    post, _, _, _ = svi
    exact = exact[1]
    share = float((exact.flat_draws("shift")[:, 0, 0] < -1).double().mean())
    got = float((post.flat_draws("shift")[:, 0, 0] < -1).double().mean())
    ess = post.diagnostics["importance"]["ess"]["one"]
    # SVI's error (importance sampling, then resampling) and the exact engine's 1,000 draws'
    se = math.sqrt(share * (1 - share) * (1 / ess + 1 / post.n_draws + 1 / exact.n_draws))
    print(f"shift < -1: exact {share:.4f}, SVI {got:.4f} (se {se:.4f})")
    assert share > 0.01  # the mode is there to be found
    assert abs(got - share) <= 3.3 * se, (got, share, se)


@pytest.mark.slow
def test_svi_importance_diagnostics(svi):
    """Every simulation has its Pareto ``k`` and effective sample size; the agreement groups'
    weights are reliable (the Monte Carlo bound of the module docstring); the warning names
    exactly the simulations above the threshold."""
    post, _, _, flagged = svi
    report = post.diagnostics["importance"]
    assert report["proposal_draws"] == 2000
    assert list(report["pareto_k"]) == post.data.sim_ids == list(report["ess"])
    bar = pareto_k_threshold(report["proposal_draws"])  # 0.697 at 2,000 draws
    for sim in ("one", "mixed"):
        print(f"{sim}: Pareto k {report['pareto_k'][sim]:.2f}, ESS {report['ess'][sim]:.0f}")
        assert report["pareto_k"][sim] <= bar, report["pareto_k"][sim]
        assert report["ess"][sim] >= ESS_MIN, report["ess"][sim]
    high = [s for s, k in report["pareto_k"].items() if k is None or k > bar]
    print(f"Pareto k > {bar:.3f}: {len(high)} of {len(report['pareto_k'])} ({high})")
    if high:
        assert len(flagged) == 1
        assert all(f" {s} (" in flagged[0] for s in high)
        assert "one (" not in flagged[0] and "mixed (" not in flagged[0]
    else:
        assert not flagged


def svi_sbc_pvalues(svi) -> dict[str, float]:
    post, reps, _, _ = svi
    return sbc_pvalues(post, reps, first=2)  # simulations 0 and 1 are the agreement groups


def sbc_pvalues(post, reps, first: int) -> dict[str, float]:
    """p-values of the SBC ranks of ``reps``' truths, fitted as simulations ``first...``."""
    rng = np.random.default_rng(13)
    pi = post.draws["pi"][0, :, first:].double().numpy()  # [D, n, K]
    shift = post.draws["shift"][0, :, first:, 0].double().numpy()  # [D, n]
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
def test_svi_sbc_detects_a_wrong_prior(svi):
    """Power: the same 50 replications fitted under a prior that pulls ``pi`` to the centre
    (Dirichlet(5, 5, 5) where they were drawn from Dirichlet(0.5)) and the shift to 0 (sd 0.1
    where they were drawn with 0.5) must be rejected on ``pi`` and on the shift, so that
    ``test_svi_sbc_pi`` and ``test_svi_sbc_shift`` passing means something (``test_sbc`` does
    the same for the exact engine). The decision rule is theirs: chi-square at ``ALPHA``
    Bonferroni-split over the 4 statistics; for ``pi``, any of its components."""
    _, reps, _, _ = svi
    wrong = HYPOTHESIS.with_(pi_concentration=(5.0, 5.0, 5.0), currency_scale=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportanceWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = fit(
            reps.table,
            wrong,
            engine="svi",
            seed=1,
            learning_rate=0.03,
            max_steps=1000,
            num_draws=990,
        )
    assert post.data.sim_ids == [str(s) for s in range(N_SBC)]
    p = sbc_pvalues(post, reps, first=0)
    level = ALPHA / len(p)
    assert any(v < level for k, v in p.items() if k.startswith("pi[")), p
    assert p["shift[dollars]"] < level, p


@pytest.mark.slow
def test_svi_sbc_shift(svi):
    """With the guide's own draws: p = 6e-7, U-shaped ranks (counts 11 7 3 1 1 5 1 4 1 16),
    sd ~0.77x the exact engine's and wrong modes (one replication at -1.37 where exact says
    0.41, truth 0.40); ``guide="mvn"`` alone: p = 0.027 after 1,000 steps, 0.0018 after 2,500.
    After the importance correction: p = 0.70 (measured, seed fixed); under a prior 5x too
    narrow, p = 2e-15 (``test_svi_sbc_detects_a_wrong_prior``)."""
    p = svi_sbc_pvalues(svi)
    assert p["shift[dollars]"] >= ALPHA / len(p), p


@pytest.mark.slow
def test_exact_default_grid_error_near_the_simplex_edge(exact):
    """The default lattice's quadrature error is at most ``GRID_TOL`` (module docstring)."""
    default, fine = exact
    assert_close("policy_probs, default grid", default.policy_probs, fine.policy_probs, GRID_TOL)


# -- the importance correction's parts, on small data -----------------------------------------


@pytest.mark.parametrize(
    "hypothesis",
    [
        PRESETS["neutral"],
        PRESETS["pooled"],  # shift_shared and shift
        HYPOTHESIS.with_(rationality_scale=0.4),  # lam and shift
    ],
    ids=lambda h: h.name,
)
def test_log_joint_minus_log_prior_is_the_group_loglik(float64, hypothesis):
    """``MarginalDensity.log_joint - log_prior`` is the group log-likelihood of
    :mod:`scai.models.marginal` (so the proposal's prior component is the model's prior)."""
    data = three_mixed_groups()
    density = MarginalDensity(data, hypothesis)
    theta = density.sample_prior(4, torch.Generator().manual_seed(0)).reshape(4, -1)
    sites = density.constrain(theta)
    S = data.shape[0]
    lam = sites.get("lam", torch.full((4, S), hypothesis.rationality))
    shared = sites.get("shift_shared", torch.zeros(4, S)).unsqueeze(-1)
    shift = sites.get("shift", shared + hypothesis.essential_shift * data.essential)
    loglik = group_loglik(
        sites["pi"].log(),
        user_loglik(data, hypothesis, lam, shift, EventIndex.from_data(data)),
        data.user_mask,
    )
    got = density.log_joint(theta) - density.log_prior(theta)
    torch.testing.assert_close(got, loglik, rtol=0, atol=1e-9)


def test_mixture_proposal_density_is_normalised(float64):
    """``E_q[f / q] = 1`` for a normalised density ``f`` (a standard normal here): the
    proposal's ``log_prob`` is the density of its ``sample``, mixture and prior included."""
    density = MarginalDensity(three_mixed_groups(), PRESETS["pooled"])
    S, W = density.coords.n_sims, density.coords.width
    generator = torch.Generator().manual_seed(1)
    locs = torch.randn(2, S, W, generator=generator) * 0.5
    tril = torch.linalg.cholesky(torch.eye(W) * 0.8 + 0.2).expand(2, S, W, W)
    proposal = MixtureProposal(locs, tril, df=3.0, density=density, defensive=0.3)
    theta = proposal.sample(200000, generator)
    log_f = torch.distributions.Normal(0.0, 1.0).log_prob(theta).sum(-1)
    ratio = (log_f - proposal.log_prob(theta)).exp()  # [n, S]
    err = ratio.std(0) / math.sqrt(len(ratio))
    assert ((ratio.mean(0) - 1).abs() < 4 * err).all(), (ratio.mean(0), err)


def test_mixture_proposal_scores_draws_in_chunks_as_all_at_once(float64, monkeypatch):
    """``log_prob`` solves for the draws a chunk at a time (``DIFF_BUDGET`` numbers): the
    same densities as one solve of every draw, weighted components too; and each draw is its
    component's location plus its factor times the draw's noise, as one gather per draw gives
    (the draws' components and noise come from the generator in the same order)."""
    from scai.inference import importance

    density = MarginalDensity(three_mixed_groups(), PRESETS["pooled"])
    S, W = density.coords.n_sims, density.coords.width
    generator = torch.Generator().manual_seed(2)
    locs = torch.randn(3, S, W, generator=generator)
    a = torch.randn(3, S, W, W, generator=generator)
    tril = torch.linalg.cholesky(a @ a.transpose(-1, -2) + torch.eye(W))
    weights = torch.tensor([[0.2], [0.5], [0.3]]).expand(3, S)
    proposal = MixtureProposal(locs, tril, df=3.0, density=density, defensive=0.0, weights=weights)
    theta = proposal.sample(500, torch.Generator().manual_seed(3))
    # the same stream, drawn by hand: component, noise, chi-square, then one factor per draw
    g = torch.Generator().manual_seed(3)
    component = torch.multinomial(weights.T.double(), 500, True, generator=g).T
    z = torch.randn(500, S, W, generator=g, dtype=theta.dtype)
    chi2 = 2 * torch._standard_gamma(torch.full((500, S, 1), 1.5, dtype=torch.float64), generator=g)
    z = z / (chi2 / 3.0).sqrt().to(theta.dtype)
    sims = torch.arange(S)
    by_hand = locs[component, sims] + (tril[component, sims] @ z.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(theta, by_hand, rtol=0, atol=1e-12)
    whole = proposal.log_prob(theta)
    monkeypatch.setattr(importance, "DIFF_BUDGET", 3 * S * W * 7)  # chunks of 7 draws
    # (the same solves; a BLAS may round a chunk of one draw otherwise, by ~1e-16)
    torch.testing.assert_close(proposal.log_prob(theta), whole, rtol=1e-14, atol=0)


def test_svi_correction_option():
    """``correction=None`` keeps the guide's own draws (no importance report); an unknown
    correction is refused before fitting."""
    table = simulate(
        PRESETS["neutral"], policy="selfish", users=4, rounds=4, epochs=1, seed=2
    ).interactions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ImportanceWarning)
        plain = fit(
            table, "neutral", engine="svi", seed=0, max_steps=5, num_draws=20, correction=None
        )
        corrected = fit(table, "neutral", engine="svi", seed=0, max_steps=5, num_draws=20)
    assert "importance" not in plain.diagnostics and plain.settings["correction"] is None
    assert corrected.settings["correction"] == "importance"
    assert set(corrected.diagnostics["importance"]["pareto_k"]) == set(corrected.data.sim_ids)
    assert corrected.draws["pi"].shape == plain.draws["pi"].shape == (1, 20, 1, 3)
    with pytest.raises(ValueError, match="correction='psis' .*allowed: 'importance', None"):
        fit(table, "neutral", engine="svi", seed=0, max_steps=5, correction="psis")


# -- the Laplace start ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hypothesis",
    [
        PRESETS["stereotyped"].with_(rationality_scale=0.5),  # pi, lam
        PRESETS["pooled"].with_(rationality_scale=0.5),  # pi, lam, shift_shared, 2 shifts
    ],
    ids=["pi+lam", "pi+lam+shifts"],
)
@pytest.mark.parametrize("init", ["laplace", "median"])
def test_svi_guide_starts_at_the_laplace_mode(init, hypothesis):
    """After one step from the Laplace start, every mean of the guide (3 simulations, every
    site, every currency) is within its step size (a tenth of the site's median mean-field
    scale ``1 / sqrt(H_ii)``, at most the learning rate) of the mode L-BFGS finds; from the
    prior median it is not."""
    data = three_mixed_groups()  # 3 simulations; dollars, medicine, dollars
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = fit_svi(
            data, hypothesis, seed=0, max_steps=1, correction=None, num_draws=5, init=init
        )
    assert post.diagnostics["start"] == init
    params = post.engine_state["params"]
    density = MarginalDensity(data, hypothesis)
    approx = laplace(density, min_precision=1.0)
    width = density.coords.width
    mode = torch.as_tensor(approx.mode).reshape(3, width)
    precision = np.linalg.inv(approx.covariance)
    scale = torch.as_tensor(np.diagonal(precision, axis1=1, axis2=2) ** -0.5).clamp(max=1.0)
    locs, steps, col = [], [], 0
    for name in latent_sites(hypothesis):
        loc = params[f"AutoNormal.locs.{name}"].reshape(3, -1).double()
        n = loc.shape[1]
        locs.append(loc)
        step = min(0.05, 0.1 * float(scale[:, col : col + n].median()))
        steps.append(torch.full((3, n), step, dtype=torch.float64))
        col += n
    assert col == width
    far = (torch.cat(locs, -1) - mode).abs() > torch.cat(steps, -1) * 1.001
    if init == "laplace":
        assert not far.any(), (torch.cat(locs, -1) - mode).abs() / torch.cat(steps, -1)
    else:
        assert far.any()


def test_a_narrow_mode_beside_a_zero_shift_is_found():
    """Six ``real_agents`` users in medicine under ``essential_goods_shared``: 84% of the exact
    posterior's mass sits in a mode about 1e-3 wide at shift ~2e-4 (where ``lam * delta``
    vanishes), the rest at 0.89. No prior draw's L-BFGS reached the narrow mode, so SVI's
    importance proposal had no component there and MCMC started at 0.89: both gave 0% below
    0.4 (a review). A start at the prior median with the shifts at 0 finds it: SVI's
    importance draws then match the exact share within 3.3 standard errors (two-sided 0.001;
    binomial, with the correction's measured effective sample size, 207 here, 197-207 over
    seeds 0-3: a bound of 0.10), and MCMC starts in the narrow mode (its chains cannot cross to
    the other: they report ~100% there). With the importance target tempered to ``p^0.9`` the
    share fell to 0.71 (4.6 standard errors off) and failed."""
    from scai.inference.laplace import find_best_mode
    from scai.models.density import MarginalDensity

    table = simulate(
        "real_agents", policy="selfish=0.5,fair=0.25,altruistic=0.25", users=6, epochs=2,
        sims=2, seed=4, currency=["dollars", "medicine"],
    ).interactions  # fmt: skip
    table = table[table["sim"] == "1"]

    def below(post) -> float:
        shift = post.draws["shift"].double().flatten(0, 1)[:, 0, -1]
        return float((shift < 0.4).double().mean())

    exact = fit(table, "essential_goods_shared", engine="exact")
    svi = fit(table, "essential_goods_shared", engine="svi")
    share, got = below(exact), below(svi)
    assert share > 0.8
    ess = svi.diagnostics["importance"]["ess"]["1"]
    assert ess >= 100, ess  # half the lowest measured
    # SVI's error (importance sampling, then resampling) and the exact engine's 1,000 draws'
    se = math.sqrt(share * (1 - share) * (1 / ess + 1 / svi.n_draws + 1 / exact.n_draws))
    print(f"shift < 0.4: exact {share:.4f}, SVI {got:.4f} (ESS {ess:.0f}, se {se:.4f})")
    assert abs(got - share) <= 3.3 * se, (got, share, se)
    density = MarginalDensity(svi.data, svi.hypothesis)
    mode = density.constrain(torch.as_tensor(find_best_mode(density)))["shift"]
    assert abs(float(mode[..., -1])) < 0.01


def test_an_svi_fit_leaves_the_callers_pyro_parameters_alone():
    """``fit(engine="svi")`` cleared Pyro's global parameter store: a notebook's own
    ``pyro.param`` was gone after it (KeyError), and scai's guide parameters sat in its place."""
    import pyro

    from scai.inference import fit
    from scai.models.simulate import simulate

    pyro.clear_param_store()
    mine = pyro.param("my_weight", torch.tensor([1.0, 2.0]))
    table = simulate("neutral", policy="selfish=0.5,fair=0.5", users=4, seed=1).interactions
    fit(table, "neutral", engine="svi", max_steps=100, num_draws=20, correction=None)
    assert list(pyro.get_param_store().keys()) == ["my_weight"]
    assert pyro.param("my_weight") is mine
    pyro.clear_param_store()


def test_svi_proposal_draws_without_correction_refused():
    """``proposal_draws`` sets the importance correction's proposals: with ``correction=None``
    it was accepted and ignored (the same draws as without it); now an :class:`EngineError`
    naming both options, before any fitting."""
    table = simulate(
        PRESETS["neutral"], policy="selfish", users=4, rounds=4, epochs=1, seed=2
    ).interactions
    with pytest.raises(EngineError, match=r"proposal_draws=5000.*correction=None"):
        fit(table, "neutral", engine="svi", correction=None, proposal_draws=5000)


@pytest.mark.parametrize(
    ("hypothesis", "guide", "learning_rate"),
    [("pooled", "normal", 10.0), ("neutral", "mvn", 10.0), ("pooled", "normal", 1000.0)],
)
def test_a_diverging_learning_rate_is_named(hypothesis, guide, learning_rate):
    """A learning rate that drives the guide out of range (allowed: any finite number above 0)
    was a ValueError of torch's argument checks from deep inside Pyro ("Expected parameter
    loc ... of distribution Normal ... to satisfy the constraint Real()", or a scale of 0 for
    GreaterThan(0.0)), naming a tensor and not the option: now an EngineError naming it."""
    from scai.inference.errors import EngineError

    table = simulate(
        "neutral", policy="selfish=0.5,altruistic=0.5", users=4, epochs=1, seed=4
    ).interactions
    with pytest.raises(EngineError) as caught:
        fit(
            table,
            hypothesis,
            engine="svi",
            max_steps=100,
            learning_rate=learning_rate,
            guide=guide,
            num_draws=20,
        )
    message = str(caught.value)
    assert f"learning_rate={learning_rate:g}" in message
    assert "diverged" in message and "lower learning_rate" in message
    assert "\n" not in message


def test_floored_inverse_gives_a_non_finite_curvature_the_widest_scale():
    """A block of the Hessian with a non-finite entry (a failed search's start where the log
    density's derivatives overflow) is ``I / floor``; the other blocks are their floored
    inverses as before (LAPACK's ``eigh`` did not converge on the whole stack)."""
    from scai.inference.laplace import floored_inverse

    good = np.array([[4.0, 1.0], [1.0, 3.0]])
    stack = np.stack([good, np.array([[np.nan, 0.0], [0.0, 1.0]]), np.full((2, 2), np.inf)])
    out = floored_inverse(stack, 0.5)
    np.testing.assert_allclose(out[0], np.linalg.inv(good))
    np.testing.assert_array_equal(out[1:], np.broadcast_to(np.eye(2) / 0.5, (2, 2, 2)))


def test_svi_with_a_clone_prior_of_parameters_near_zero():
    """``clone_prior = (0.01, 0.01)``: a prior draw the importance correction starts a search
    from sits where the Hessian overflows; the fit ran into numpy's LinAlgError ("Eigenvalues
    did not converge"). It now fits, its mean of pi within 3.3 Monte Carlo standard errors of
    the exact engine's (two-sided 0.001 per component, 0.003 for the three): the exact
    posterior sd (0.19-0.26) times ``sqrt(1 / ESS + 1 / 1000)``, with the correction's measured
    effective sample size (107 here, 91-110 over seeds 0-3): bounds 0.063-0.087. The exact
    grid's own error (0.0005 against a lattice of 15,000 points, measured) is left out."""
    hyp = PRESETS["neutral"].with_(clone_prior=(0.01, 0.01))
    table = simulate("neutral", policy="selfish", users=4, rounds=4, epochs=2, seed=2).interactions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit(table, hyp, engine="svi", seed=0)
        exact = fit(table, hyp, engine="exact", seed=0)
    assert torch.isfinite(post.draws["pi"]).all()
    (ess,) = post.diagnostics["importance"]["ess"].values()
    assert ess >= 50, ess  # half the lowest measured
    sd = exact.flat_draws("pi").double().std(0)
    bound = 3.3 * sd * math.sqrt(1 / ess + 1 / post.n_draws)
    diff = (post.pi_mean().double() - exact.pi_mean().double()).abs()
    print(f"pi_mean: ESS {ess:.0f}, |difference| {diff.tolist()}, bounds {bound.tolist()}")
    assert bool((diff <= bound).all()), (diff, bound)


def test_the_correction_sees_a_mode_the_guide_missed_by_a_shift():
    """Selfish users fit selfish types at a shift of 0 and altruists at -2 about equally well
    (a wide shared shift): the guide settles on one reading, and the correction's proposal,
    built from it, the prior's best draws and the tails, held that one alone for two seeds of
    three, Pareto k low (it cannot see a component that is not there; a red-team find). The
    guide's mean moved by each difference of two types' weights is a start too: every seed
    puts the exact posterior's share behind -1 within 3.3 standard errors (binomial, with the
    seed's measured effective sample size, 315-389, and both engines' draws; two-sided 0.001
    per seed, 0.003 for the three): bounds 0.11-0.12, differences 0.024-0.041 (measured; seeds 3
    and 4: ESS 515 and 327, 1.5 and 0.4 standard errors)."""
    from scai.models.hypotheses import Hypothesis

    data = simulate(Hypothesis(), policy="selfish", users=4, rounds=4, epochs=2, seed=2)
    hyp = Hypothesis(name="wide_shift", shared_scale=10.0)
    exact = fit(data.interactions, hyp, engine="exact", grid_points=4001)
    share = float((exact.shift("dollars") < -1).double().mean())
    assert 0.3 < share < 0.7  # both readings hold mass
    for seed in (0, 1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svi = fit(data.interactions, hyp, engine="svi", seed=seed)
        got = float((svi.shift("dollars") < -1).double().mean())
        (ess,) = svi.diagnostics["importance"]["ess"].values()
        assert ess >= 150, (seed, ess)  # half the lowest measured
        # SVI's error (importance sampling, then resampling) and the exact engine's draws'
        se = math.sqrt(share * (1 - share) * (1 / ess + 1 / svi.n_draws + 1 / exact.n_draws))
        print(f"seed {seed}: shift < -1: exact {share:.4f}, SVI {got:.4f} (ESS {ess:.0f})")
        assert abs(got - share) <= 3.3 * se, (seed, got, share, se)


def test_a_table_whose_enumeration_underflows_stops_at_the_first_check_and_says_why():
    """One user who offers 45 of 100 (fair-like) and accepts 20 and 42 of 50 (not fair-like):
    under the fixed rationality of 'neutral' Pyro's float32 enumeration underflows to zero
    density at every draw (each site's log-probabilities are shifted by their own largest
    term before the sum over types), so SVI's loss was -inf at every step; it ran to
    max_steps (1,000 steps, 40 s on a test drive's group) and advised raising them. It now
    stops at its first check, says why, and the importance correction (scai's own density)
    still gives the exact engine's mixture (here near the prior's: every type finds this user
    about as unlikely), within the correction's Monte Carlo error."""
    table = pd.DataFrame(
        {
            "sim": "0",
            "epoch": [0, 2, 3],
            "round": [1, 3, 4],
            "proposer": ["125", "121", "119"],
            "responder": ["124", "125", "125"],
            "currency": "dollars",
            "pot": [100, 50, 50],
            "offer": [45, 20, 42],
            "accepted": [1, 1, 1],
        }
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = fit(table, "neutral", engine="svi", seed=0, max_steps=1000)
    said = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(said) == 1 and said[0].startswith("SVI stopped: its loss was infinite"), said
    assert post.diagnostics["steps"] < 1000 and not post.diagnostics["converged"]
    exact = fit(table, "neutral", engine="exact").pi_mean()
    # pi's posterior sd is 0.21 per type; ~1,650 effective proposal draws resampled to 1,000:
    # se ~0.21 * sqrt(1 / 1650 + 1 / 1000) = 0.0083, and 4 se = 0.033 (seeds 0-3: at most 0.014)
    assert torch.allclose(post.pi_mean(), exact, atol=0.035), (post.pi_mean(), exact)
