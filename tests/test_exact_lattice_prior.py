"""The exact engine's Dirichlet prior on the simplex lattice: each cell's mass, edges included.

When every user's type is certain, the posterior of ``pi`` is a Dirichlet in closed form
(``a + counts``), so the lattice's posterior mean can be checked exactly. A cell at the
simplex's edge holds less of the simplex than an inner cell; weighted as a whole cell it pulled
the posterior towards the edges (0.8298 where the answer is 0.8125 for six users of four types,
0.8255 with 100,000 points). With each cell's mass counted over its part inside the simplex
the default lattice is within 0.003 of the closed form on these groups, and finer lattices come
closer; where it is not (many types, edge-heavy priors) ``fit`` warns."""

from __future__ import annotations

import pytest
import torch

from scai.inference import fit
from scai.inference.grids.simplex import simplex_lattice
from scai.models.hypotheses import PRESETS
from scai.models.prior import GroupPrior
from scai.models.simulate import simulate


def lattice_mean(K: int, counts: list[int], points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The lattice posterior mean of ``pi`` under ``Dirichlet(0.5)`` for users of certain
    types, ``counts`` of each, and the closed form."""
    hyp = PRESETS["neutral"].with_(
        policies=tuple(PRESETS["real_agents"].policies[:K]), pi_concentration=(0.5,) * K
    )
    grid = simplex_lattice(K, points).double()
    n = torch.tensor(counts, dtype=torch.float64)
    log_w = GroupPrior(hyp).pi_cell_log_weights(grid) + (n * grid.log()).sum(-1)
    mean = (torch.softmax(log_w, 0)[:, None] * grid).sum(0)
    return mean, (0.5 + n) / (0.5 * K + n.sum())


@pytest.mark.parametrize("K, counts", [(4, [6, 0, 0, 0]), (3, [10, 0, 0]), (3, [3, 2, 0])])
def test_lattice_posterior_mean_is_the_dirichlet_s(K, counts):
    errors = []
    for points in (3000, 20000):
        mean, truth = lattice_mean(K, counts, points)
        errors.append(float((mean - truth).abs().max()))
    assert errors[0] < 0.003, errors
    assert errors[1] < errors[0], errors  # converges


def test_the_engine_s_pi_for_a_group_of_certain_selfish_users():
    """Ten selfish users, each seen in 40 games at high rationality: their types are certain, so
    ``pi``'s posterior mean is ``(10.5, 0.5, 0.5) / 11.5`` (a lattice weighting edge cells as
    whole ones gave 0.9171 and 0.0415)."""
    hyp = PRESETS["neutral"].with_(rationality=20.0)
    sim = simulate(hyp, policy="selfish", users=10, rounds=40, epochs=5, seed=3)
    posterior = fit(sim.interactions, hyp, engine="exact", num_draws=200)
    assert float(posterior.policy_probs[0, :, 0].min()) > 1 - 1e-9  # certain
    truth = torch.tensor([10.5, 0.5, 0.5], dtype=torch.float64) / 11.5
    assert torch.allclose(posterior.pi_mean()[0].double(), truth, atol=0.002)


def test_a_prior_the_lattice_cannot_follow_is_a_warning_not_a_silent_error():
    """Concentration 0.01 piles the prior against the simplex's edges, where a cell's point
    stands for mass the likelihood sees elsewhere: four users of known types (one selfish,
    three altruistic) gave pi of selfish 0.11 for the closed form's 0.25, with no warning (a
    review). :func:`check_lattice` measures the lattice on such groups and warns; the presets
    (3-4 types, concentration 0.5) pass."""
    import warnings

    from scai.inference.diagnostics import DiagnosticWarning
    from scai.inference.grids.simplex import LATTICE_TOLERANCE, check_lattice

    sharp = PRESETS["neutral"].with_(rationality=20.0, pi_concentration=(0.01,) * 3)
    table = simulate(
        sharp, policy="selfish=0.25,altruistic=0.75", users=4, rounds=40, epochs=2, seed=3,
        assign="exact",
    ).interactions  # fmt: skip
    with pytest.warns(DiagnosticWarning, match=r"simplex lattice \(2926 points for 3 types\)"):
        post = fit(table, sharp)
    assert post.policy_probs[0].max(-1).values.min() > 0.999  # the types are known
    assert abs(float(post.pi_mean()[0, 0]) - 1.01 / 4.03) > LATTICE_TOLERANCE  # and it is off
    with pytest.warns(DiagnosticWarning, match=r"simplex lattice") as again:
        fit(table, sharp)  # every fit is off: each says so (Python's filters may show it once)
    assert len([w for w in again if issubclass(w.category, DiagnosticWarning)]) == 1  # once
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticWarning)
        for hypothesis in PRESETS.values():
            check_lattice(hypothesis, 3000)


def test_the_log_evidence_is_the_marginal_likelihood():
    """``diagnostics["log_evidence"]`` is each simulation's log marginal likelihood, as the
    README says (a log Bayes factor between two hypotheses): for a fixed rationality it is
    ``log sum_z prod_u L[u, z_u] DirMult(counts(z) | a)``, summed here over every assignment
    of types to a group's four users (81), each user's likelihood under each type taken from
    the fit (``user_loglik``). The lattice sums the same integral over cells: within 0.01
    nats."""
    import itertools
    import math

    hyp = PRESETS["neutral"]
    sim = simulate(hyp, policy="selfish=0.5,altruistic=0.5", users=4, rounds=6, sims=2, seed=4)
    post = fit(sim.interactions, hyp, engine="exact", num_draws=10)
    loglik = post.user_loglik()[0].double()  # [S, U, K]: the same in every draw here
    a = torch.tensor(hyp.pi_concentration, dtype=torch.float64)
    K = len(a)
    for s in range(2):
        terms = []
        for types in itertools.product(range(K), repeat=4):
            counts = torch.bincount(torch.tensor(types), minlength=K).double()
            log_dirmult = (
                torch.lgamma(a.sum())
                - torch.lgamma(a.sum() + counts.sum())
                + (torch.lgamma(a + counts) - torch.lgamma(a)).sum()
            )
            terms.append(float(loglik[s, torch.arange(4), torch.tensor(types)].sum() + log_dirmult))
        closed = max(terms) + math.log(sum(math.exp(t - max(terms)) for t in terms))
        assert abs(post.diagnostics["log_evidence"][s] - closed) < 0.01, (s, closed)
