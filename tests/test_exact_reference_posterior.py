"""The exact engine's posterior of a tiny group against a brute-force one that shares no
engine or model code.

Four users, four games, hand-picked so that most users' types are uncertain (the engine's
combination of likelihood and prior then moves every number: tempering the likelihood by
0.9 moves ``pi_mean`` by up to 6e-3 and a user's type probability by up to 3e-2).

The brute force (``reference_posterior``): each user's log-likelihood ``L[u, k]`` were it of
type ``k``, from ``tests/reference.py``'s scalar formulas, checked against
``hand_log_density`` (``tests/test_model_logdensity.py``: ``log p(data, pi, lam)`` read off the
table rows); then the sum over all ``K^U = 81`` assignments of types to users, each a
Dirichlet-multinomial term: given the types, ``pi | z ~ Dirichlet(a + n(z))``, so

    p(z, data | lam)   = prod_u exp(L[u, z_u]) * B(a + n(z)) / B(a)
    E[pi | data, lam]  = sum_z p(z | data, lam) (a + n(z)) / (sum a + U)
    P(z_u = k | data)  = sum_(z: z_u = k) p(z | data)

exact in floating point (no grid over ``pi``, no Monte Carlo). A latent rationality is
integrated over ``log lam`` by the trapezoid rule on +-8 prior sd, whose error (smooth
integrand, Gaussian tails) is checked below 1e-9 by halving the step.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import reference as ref
from scipy.special import gammaln
from test_model_logdensity import hand_log_density, responder_of

from scai.inference import fit
from scai.models.data import validate_frame
from scai.models.hypotheses import PRESETS

#: (proposer, responder, pot, offer, accepted): under ``neutral`` (lam = 4) u0 is fair or
#: selfish, u1 altruistic or fair, u2 selfish or altruistic, u3 any of the three.
GAMES = [
    ("u0", "u1", 3, 1, 1),
    ("u1", "u2", 3, 3, 1),
    ("u2", "u3", 2, 1, 1),
    ("u3", "u0", 3, 2, 0),
]
COLUMNS = ["sim", "epoch", "round", "proposer", "responder", "currency", "pot", "offer",
           "accepted", "proposer_tone", "responder_tone"]  # fmt: skip
HYPOTHESES = {
    "neutral": PRESETS["neutral"],
    "latent_rationality": PRESETS["neutral"].with_(rationality_scale=0.5),
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    # no tones: under these hypotheses (no stereotype) a tone's likelihood is the same for
    # every type and would only add a constant to ``L[u, k]``
    rows = [
        ["0", 1, r + 1, p, q, "dollars", pot, o, a, "", ""]
        for r, (p, q, pot, o, a) in enumerate(GAMES)
    ]
    return validate_frame(pd.DataFrame(rows, columns=COLUMNS))


def user_logliks(table: pd.DataFrame, hyp, lam: float) -> tuple[list[str], np.ndarray]:
    """The users (sorted) and ``L [U, K]`` from ``tests/reference.py``'s formulas."""
    users = sorted(set(table["proposer"]) | set(table["responder"]))
    K = len(hyp.policies)
    L = {u: [0.0] * K for u in users}
    for row in table.itertuples(index=False):
        pot, offer = int(row.pot), int(row.offer)
        for k, p in enumerate(hyp.policies):
            L[row.proposer][k] += ref.offer_logps(pot, p.w, p.alpha, p.beta, lam, hyp.lapse)[offer]
            L[row.responder][k] += ref.log_response(
                int(row.accepted), pot, offer, responder_of(p), lam, hyp.lapse
            )
    return users, np.array([L[u] for u in users])


def log_beta(a: np.ndarray) -> np.ndarray:
    return gammaln(a).sum(-1) - gammaln(a.sum(-1))


def reference_posterior(table: pd.DataFrame, hyp, points: int = 401) -> dict:
    """``log_evidence``, ``pi_mean [K]`` and ``policy_probs [U, K]`` by enumerating every
    assignment of types (and, with a latent ``lam``, the trapezoid rule over ``log lam``)."""
    a = np.array(hyp.pi_concentration)
    K = len(a)
    if hyp.rationality_scale > 0:
        m, sd = math.log(hyp.rationality), hyp.rationality_scale
        x = np.linspace(m - 8 * sd, m + 8 * sd, points)
        # the trapezoid's end weights are halved; the ends hold ~e^-32 of the mass anyway
        log_dx = np.full(points, math.log(x[1] - x[0]))
        log_dx[[0, -1]] -= math.log(2)
        log_prior = np.array([ref.normal_logpdf(v, m, sd) for v in x]) + log_dx  # d log lam
        L = np.stack([user_logliks(table, hyp, math.exp(v))[1] for v in x])  # [T, U, K]
    else:
        log_prior = np.zeros(1)
        L = user_logliks(table, hyp, hyp.rationality)[1][None]
    U = L.shape[1]
    z = np.array(list(itertools.product(range(K), repeat=U)))  # [A, U] every assignment
    n = np.stack([(z == k).sum(1) for k in range(K)], 1)  # [A, K]
    log_w = L[:, np.arange(U), z].sum(-1) + log_beta(a + n) - log_beta(a)  # [T, A]
    log_w += log_prior[:, None]
    log_evidence = float(np.logaddexp.reduce(log_w.ravel()))
    p_z = np.exp(log_w - log_evidence).sum(0)  # [A]
    pi_mean = (p_z[:, None] * (a + n) / (a.sum() + U)).sum(0)
    policy_probs = np.array([[p_z[z[:, u] == k].sum() for k in range(K)] for u in range(U)])
    return {"log_evidence": log_evidence, "pi_mean": pi_mean, "policy_probs": policy_probs}


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_exact_posterior_equals_a_brute_force_sum_over_types(table, name):
    hyp = HYPOTHESES[name]
    latent = hyp.rationality_scale > 0

    # the brute force's log p(data, pi, lam) is the hand density read off the rows
    rng = np.random.default_rng(3)
    for _ in range(3):
        pi = rng.dirichlet([2.0] * len(hyp.policies)).tolist()
        lam = float(rng.uniform(1.0, 8.0)) if latent else hyp.rationality
        want = hand_log_density(table, hyp, {"0": pi}, {"0": lam}, {"0": 0.0}, {},
                                ("dollars",), ["0"])  # fmt: skip
        got = ref.dirichlet_logpdf(pi, hyp.pi_concentration)
        got += ref.mixture_loglik([math.log(v) for v in pi], user_logliks(table, hyp, lam)[1])
        if latent:
            got += ref.lognormal_logpdf(lam, math.log(hyp.rationality), hyp.rationality_scale)
        assert got == pytest.approx(want, abs=1e-9)

    want = reference_posterior(table, hyp)
    if latent:  # the quadrature over log lam has converged: its error is below 1e-9
        coarse = reference_posterior(table, hyp, points=201)
        assert coarse["log_evidence"] == pytest.approx(want["log_evidence"], abs=1e-9)
        np.testing.assert_allclose(coarse["pi_mean"], want["pi_mean"], atol=1e-9)
        np.testing.assert_allclose(coarse["policy_probs"], want["policy_probs"], atol=1e-9)

    # (a latent lam: a coarse first grid of 60 points, not 200, finds the same zoomed
    # posterior in a third of the time)
    post = fit(table, hyp, engine="exact", seed=0, num_draws=100,
               **({"grid_points": 60} if latent else {}))  # fmt: skip
    assert post.data.user_ids == [user_logliks(table, hyp, 1.0)[0]]
    # Tolerances: the brute force is exact to ~1e-9, so they bound the engine's own
    # quadrature (its lattice of pi, step 1/76, and its grid of lam). Measured: pi_mean within
    # 2e-4, policy_probs within 8e-4, log evidence within 5e-3 of the sums; the tolerances
    # are ~6x those, and at least ~3x below what tempering the likelihood by 0.9 does (6e-3,
    # 3e-2, 0.66 nats; 4e-3, 2e-2, 0.66 with a latent lam).
    assert post.diagnostics["log_evidence"][0] == pytest.approx(want["log_evidence"], abs=0.03)
    np.testing.assert_allclose(post.pi_mean()[0].double().numpy(), want["pi_mean"], atol=1.5e-3)
    np.testing.assert_allclose(
        post.policy_probs[0].double().numpy(), want["policy_probs"], atol=5e-3
    )
    # the data leave types uncertain: the comparison is not of near-0s and 1s
    assert want["policy_probs"][3].min() > 0.2 and want["policy_probs"][3].max() < 0.6
