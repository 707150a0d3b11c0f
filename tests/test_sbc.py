"""Simulation-based calibration (SBC) of the exact engine (SVI's is in ``test_engines_svi``,
which shares one fit between SBC and agreement).

Each replication draws ``pi ~ Dirichlet`` (and, with latent rationality, ``lam ~ LogNormal``)
from the hypothesis's prior, simulates a small group from the model given them, fits the
posterior, and records the rank of the true value among ``L`` posterior draws. Under a correct
posterior the rank is uniform on ``0..L`` (Talts et al. 2018). The replications are the
``sims`` of one forward run of the model (see ``sbc_util``), fitted together: simulations share
no parameter, so that is the same as one fit per replication.

Decision rule, fixed before looking at any result: a chi-square test of uniformity of the
``L + 1`` rank counts for every statistic (each component of ``pi``, and ``lam``), at a
family-wise level ``ALPHA = 0.01`` per test function, Bonferroni-split over its statistics.

Ties: the exact engine's draws are grid points resampled by weight, so a posterior draw can
sit in the same grid cell as the truth. The truth is snapped to its cell's grid point (the
nearest lattice value for ``pi``; for ``lam``, the point of the replication's own grid whose
cell holds it: each replication's grid of ``log lam`` zooms onto its own posterior) and ties
are broken at random, the standard SBC treatment of a discrete posterior. SVI's draws are
continuous and never tie.

Ranks of ``pi`` mostly test the prior where the data move it little (a few games of small
pots): fitted with twice the users' rationality, 200 replications pass them (smallest p 0.196,
measured; 0.15-0.31 for rationalities from 0.5 to 2, and at 1,000 replications still above the
threshold, in a review's measurements). So the calibration of
the users' type probabilities, which the likelihood shapes, is checked too
(:func:`type_calibration_pvalue`: Brier score against its expectation).

Each test also checks the test's *power*: the same replications fitted under a wrong prior (and,
for the types, a wrong likelihood) must be rejected, so a pass means something.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from sbc_util import (
    prior_replications,
    ranks,
    snap_to_cells,
    snap_to_grid,
    thin,
    uniformity_pvalue,
)

from scai.inference import fit
from scai.models.hypotheses import PRESETS, Hypothesis

ALPHA = 0.01
# Low rationality, small pots and informative tones: types are uncertain, so the likelihood of
# actions *and* messages shapes every posterior (a clear-cut classification would reduce the
# check to Dirichlet-multinomial conjugacy).
STEREOTYPED = PRESETS["stereotyped"].with_(rationality=1.0)
LATENT_LAM = Hypothesis(name="latent_lam", rationality=2.0, rationality_scale=0.3)
SMALL_GROUP = dict(users=6, rounds=6, epochs=2, pot_range=(2, 8))
# The exact engine's grids for 200 replications with latent lam at their defaults (1,500
# lattice points, 200 + 64 lam points) cost ~5x more; SBC with snapped, tie-broken ranks is
# valid at any grid resolution, and this one is still much finer than the posteriors.
COARSER = dict(max_simplex_points=500, grid_points=100, zoom_points=64)

#: p-values seen in the last run, by test and statistic (printed with ``pytest -s``)
PVALUES: dict[str, dict[str, float]] = {}


def exact_ranks(post, reps, L: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ranks of the truths, snapped to their grid cells, among ``L`` draws of an exact
    posterior (its lattice is evenly spaced in ``pi``; each replication has its own cells of
    ``log lam``)."""
    out = {}
    pi_draws = post.draws["pi"][0].double().numpy()  # [D, S, K]
    for k, name in enumerate(post.hypothesis.policy_names):
        truth = snap_to_grid(reps.pi[:, k], pi_draws[:, :, k])
        out[f"pi[{name}]"] = ranks(thin(pi_draws[:, :, k].T, L), truth, rng)
    if "lam" in post.draws:
        lam_draws = post.draws["lam"][0].double().numpy()  # [D, S]
        truth = snap_to_cells(reps.lam, post.engine_state["scalar_cells"], log=True)
        out["lam"] = ranks(thin(lam_draws.T, L), truth, rng)
    return out


def pvalues(rank: dict[str, np.ndarray], L: int) -> dict[str, float]:
    return {name: uniformity_pvalue(r, L) for name, r in rank.items()}


def check_calibrated(name: str, p: dict[str, float]) -> None:
    PVALUES[name] = p
    print(f"SBC {name}: " + ", ".join(f"{k} p={v:.3g}" for k, v in p.items()))
    level = ALPHA / len(p)
    bad = {k: v for k, v in p.items() if v < level}
    assert not bad, f"{name}: rank histograms not uniform at {level:.4f}: {bad}"


def check_rejected(name: str, p: dict[str, float], statistic: str) -> None:
    PVALUES[name] = p
    print(f"SBC {name}: " + ", ".join(f"{k} p={v:.3g}" for k, v in p.items()))
    assert p[statistic] < ALPHA / len(p), f"{name}: a wrong prior was not detected: {p}"


def test_snap_and_ties():
    rng = np.random.default_rng(0)
    grid = np.array([[0.1, 0.2], [0.3, 0.6]])  # an evenly spaced grid, 0.4 and 0.5 undrawn
    truth = np.array([0.0, 0.149, 0.151, 0.44, 0.46, 0.9])
    np.testing.assert_array_equal(snap_to_grid(truth, grid), [0.1, 0.1, 0.2, 0.3, 0.6, 0.6])
    log_grid = np.exp(np.array([0.0, 0.1, 0.3]))
    np.testing.assert_allclose(
        snap_to_grid(np.exp([0.04, 0.06, 0.24]), log_grid, log=True), np.exp([0.0, 0.1, 0.3])
    )
    with pytest.raises(AssertionError, match="evenly spaced"):
        snap_to_grid(truth, np.array([0.1, 0.2, 0.35]))
    # cells of unequal widths: a value goes to the cell that holds it, not the nearest point
    # (1.1 is nearer 0.75 but in the cell of 1.5)
    cells = [(torch.tensor([0.0, 0.75, 1.5]), torch.tensor([1.0, 0.5, 1.0]))] * 3
    snapped = snap_to_cells(np.array([0.4, 0.6, 1.1]), cells)
    np.testing.assert_array_equal(snapped, [0.0, 0.75, 1.5])
    # all draws tie with the truth: the rank is uniform on 0..L
    draws = np.full((20000, 4), 0.2)
    r = ranks(draws, np.full(20000, 0.2), rng)
    assert set(np.unique(r)) == set(range(5))
    assert uniformity_pvalue(r, 4) > 1e-3
    r = ranks(np.array([[0.1, 0.2, 0.3]]), np.array([0.25]), rng)
    assert r.tolist() == [2]


def type_calibration_pvalue(post, reps) -> float:
    """Calibration of the users' type probabilities, which the likelihood shapes (``pi``'s
    ranks mostly test the prior: a few games of small pots move ``pi`` little). For user ``u``
    with posterior type probabilities ``p`` and true type ``z``, the Brier score ``B = sum_k
    (p_k - [z = k])^2`` has expectation ``sum_k p_k (1 - p_k)`` over ``z ~ p``, which a
    calibrated posterior is. Per replication the excess ``D = sum_u (B - E B)`` has mean 0
    (its users share ``pi``, so they are summed within a replication; replications are
    independent draws of the prior); the two-sided p-value of a z-test of mean 0 over the
    replications, with their own sd."""
    names = list(post.policy_names)
    table = post.policy_table().merge(reps.users, on=["sim", "user"], validate="one_to_one")
    p = table[names].to_numpy()
    truth = np.eye(len(names))[[names.index(t) for t in table["policy"]]]
    excess = ((p - truth) ** 2).sum(1) - (p * (1 - p)).sum(1)
    per_replication = pd.Series(excess).groupby(table["sim"].to_numpy()).sum()
    n = len(per_replication)
    z = per_replication.mean() / (per_replication.std(ddof=1) / math.sqrt(n))
    return float(math.erfc(abs(z) / math.sqrt(2)))


@pytest.mark.slow
def test_exact_sbc_pi():
    """200 replications of 6 users x 4 games, stereotyped language, noisy actions: ranks of
    ``pi`` and the calibration of the users' type probabilities (:func:`type_calibration_pvalue`).
    Power: a prior that pulls ``pi`` to the centre must fail ``pi``'s ranks, and a wrong
    likelihood (rationality 2 where the users act at 1) the types' calibration (p 1.8e-5,
    where ``pi``'s ranks pass it: smallest p 0.196; measured, seeds fixed)."""
    L, n = 19, 200
    reps = prior_replications(STEREOTYPED, n=n, seed=101, **SMALL_GROUP)
    post = fit(reps.table, STEREOTYPED, engine="exact", seed=7)
    assert post.data.sim_ids == [str(s) for s in range(n)]
    rng = np.random.default_rng(11)
    p = pvalues(exact_ranks(post, reps, L, rng), L)
    check_calibrated("exact pi", {**p, "types": type_calibration_pvalue(post, reps)})
    # power: the same data under a prior that pulls pi to the centre (Dirichlet(5, 5, 5))
    wrong = STEREOTYPED.with_(pi_concentration=(5.0, 5.0, 5.0))
    post = fit(reps.table, wrong, engine="exact", seed=7)
    p = pvalues(exact_ranks(post, reps, L, rng), L)
    p["types"] = type_calibration_pvalue(post, reps)
    check_rejected("exact pi, wrong prior", p, "pi[selfish]")
    # power: a wrong likelihood, the users' rationality taken for twice what it is
    post = fit(reps.table, STEREOTYPED.with_(rationality=2.0), engine="exact", seed=7)
    p = pvalues(exact_ranks(post, reps, L, rng), L)
    check_rejected(
        "exact types, wrong likelihood",
        {**p, "types": type_calibration_pvalue(post, reps)},
        "types",
    )


@pytest.mark.slow
def test_exact_sbc_latent_rationality():
    """200 replications with lam ~ LogNormal(log 2, 0.3) drawn by the model as well."""
    L, n = 19, 200
    reps = prior_replications(LATENT_LAM, n=n, seed=202, **SMALL_GROUP)
    lam_prior = np.log(reps.lam)
    # the replications' lam really come from the prior (a 4-sigma band on mean and sd)
    assert abs(lam_prior.mean() - math.log(2.0)) < 4 * 0.3 / math.sqrt(n)
    assert abs(lam_prior.std() - 0.3) < 4 * 0.3 / math.sqrt(2 * n)
    post = fit(reps.table, LATENT_LAM, engine="exact", seed=8, **COARSER)
    rng = np.random.default_rng(12)
    check_calibrated("exact pi+lam", pvalues(exact_ranks(post, reps, L, rng), L))
    # power: a prior on lam centred too high (log 3.5 instead of log 2) biases its posterior;
    # the effect is large, so half the replications show it (and cost half)
    half = reps.table[reps.table["sim"].astype(int) < n // 2]
    post = fit(half, LATENT_LAM.with_(rationality=3.5), engine="exact", seed=8, **COARSER)
    first = slice(0, n // 2)
    half_reps = replace(reps, table=half, pi=reps.pi[first], lam=reps.lam[first])
    p = pvalues(exact_ranks(post, half_reps, L, rng), L)
    check_rejected("exact lam, wrong prior (100 replications)", p, "lam")
