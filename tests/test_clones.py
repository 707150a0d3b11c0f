"""The MCMC engine's clone coordinates (:mod:`scai.inference.clones`): an exact change of
variables with Jacobian 1, used exactly where a clone probability is latent.

One group of 40 users (10 events each) simulated from each real-agent preset (whose groups
mostly copy one prototype). At points spread over the posterior (the sampler's whitened
coordinates at 2 sd): the round trip ``psi -> theta -> psi`` to 1e-9; ``log |d theta / d
psi|`` by central differences (step 1e-6: their error is ~1e-9) within 1e-6 of 0 (whatever the
order of ``q``'s sticks, which only flips the determinant's sign), which is
what lets the potential in ``psi`` be the density's at the mapped point, checked too; and its
gradient equal to central differences (relative 1e-5 of the largest component).
"""

from __future__ import annotations

import numpy as np
import pytest

from scai.inference.clones import CloneCoordinates, preferred_prototype
from scai.inference.mcmc import sampler_coordinates
from scai.inference.walls import WallCoordinates
from scai.models.density import MarginalDensity
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.simulate import simulate

MIX = "selfish=0.5,fair=0.3,altruistic=0.2"
STEP = 1e-6


def density(name: str, policy: str = MIX, seed: int = 1) -> MarginalDensity:
    h = PRESETS[name]
    sim = simulate(h, policy=policy, users=40, rounds=40, epochs=5, seed=seed)
    return MarginalDensity(GroupData.from_table(sim.interactions), h)


@pytest.fixture(scope="module", params=["real_agents", "real_agents_stereotyped"])
def coordinates(request):
    d = density(request.param)
    mapped, white = sampler_coordinates(d)
    rng = np.random.default_rng(3)
    points = [white.theta(2 * rng.standard_normal(white.mode.size)) for _ in range(3)]
    return d, mapped, points


def test_the_map_is_a_bijection_with_jacobian_one(coordinates):
    d, mapped, points = coordinates
    assert isinstance(mapped, CloneCoordinates)
    n = d.coords.size
    for psi in points:
        theta = mapped.theta(psi)
        assert np.abs(mapped.phi(theta) - psi).max() < 1e-9
        jac = np.empty((n, n))
        for i, step in enumerate(np.eye(n) * STEP):
            jac[:, i] = (mapped.theta(psi + step) - mapped.theta(psi - step)) / (2 * STEP)
        assert abs(np.linalg.slogdet(jac)[1]) < 1e-6  # |det| = 1 (its sign: q's stick order)
        assert mapped.value_and_grad(psi)[0] == d.value_and_grad(theta)[0]
    batch = np.stack(points)  # draws are mapped as a batch
    assert np.array_equal(mapped.theta(batch), np.stack([mapped.theta(p) for p in points]))


def test_the_gradient_is_the_potentials(coordinates):
    _, mapped, points = coordinates
    for psi in points:
        _, grad = mapped.value_and_grad(psi)
        numeric = [
            (mapped.value_and_grad(psi + step)[0] - mapped.value_and_grad(psi - step)[0])
            / (2 * STEP)
            for step in np.eye(psi.size) * STEP
        ]
        assert np.abs(np.array(numeric) - grad).max() < 1e-5 * np.abs(grad).max()


def test_the_prototype_is_the_type_the_group_copies():
    d = density("real_agents", policy="altruistic")
    mapped, white = sampler_coordinates(d)
    altruistic = d.hypothesis.policy_names.index("altruistic")
    prototype, order = preferred_prototype(d, white.mode)
    assert prototype.tolist() == mapped.prototype.tolist() == [altruistic]
    assert order[0, 0] == altruistic and sorted(order[0]) == list(range(d.coords.n_policies))


def test_no_clone_map_without_a_latent_clone_probability():
    h = PRESETS["neutral"]
    sim = simulate(h, policy=MIX, users=40, rounds=40, epochs=5, seed=1)
    mapped, _ = sampler_coordinates(MarginalDensity(GroupData.from_table(sim.interactions), h))
    assert type(mapped) is WallCoordinates


def test_each_users_loo_term_is_the_group_with_it_minus_the_group_without_it():
    """With clones the users are not independent given theta: ArviZ's ``log_likelihood`` term
    of a user is ``log p(y_u | y_-u, theta)``, the group's log-likelihood minus the group's
    with that user masked out (checked user by user against :func:`group_loglik`); with the
    clone probability at 0 it is each user's own ``log sum_k pi_k e^L[u, k]``; padding is 0."""
    import torch

    from scai.models.marginal import group_loglik, leave_one_out_loglik

    gen = torch.Generator().manual_seed(0)
    D, S, U, K = 4, 3, 5, 4
    log_pi = torch.softmax(torch.randn(D, S, K, generator=gen, dtype=torch.float64), -1).log()
    loglik = -5 * torch.rand(D, S, U, K, generator=gen, dtype=torch.float64)
    mask = torch.ones(S, U, dtype=torch.float64)
    mask[2, 3:] = 0.0  # a smaller group
    clone = torch.rand(D, S, generator=gen, dtype=torch.float64)
    terms = leave_one_out_loglik(log_pi, loglik, mask, clone)
    whole = group_loglik(log_pi, loglik, mask, clone)
    for u in range(U):
        without = mask.clone()
        without[:, u] = 0.0
        expected = (whole - group_loglik(log_pi, loglik, without, clone)) * mask[:, u]
        torch.testing.assert_close(terms[..., u], expected, rtol=0, atol=1e-10)
    assert float((terms.sum(-1) - whole).abs().max()) > 1e-3  # conditionals: no sum rule
    independent = torch.logsumexp(log_pi.unsqueeze(-2) + loglik, -1) * mask
    torch.testing.assert_close(
        leave_one_out_loglik(log_pi, loglik, mask, torch.zeros(D, S, dtype=torch.float64)),
        independent,
        rtol=0,
        atol=1e-12,
    )
    assert torch.equal(leave_one_out_loglik(log_pi, loglik, mask), independent)


def test_replicated_types_with_clones_are_a_new_users_in_each_users_place():
    """The posterior predictive's types with clones: per draw, the prototype given the other
    users' data (the group's prototype mixture with the user masked out), then ``c [z0] +
    (1 - c) pi``: the predictive the clone ``log_likelihood`` terms score. Frequencies over
    4,000 copies of one draw within 4 standard errors of those probabilities."""
    from types import SimpleNamespace

    import torch

    from scai.inference.replicates import types_in_place_of_each_user
    from scai.models.marginal import prototype_loglik

    gen = torch.Generator().manual_seed(1)
    S, U, K, D = 2, 4, 3, 4000
    log_pi = torch.softmax(torch.randn(S, K, generator=gen, dtype=torch.float64), -1).log()
    loglik = -3 * torch.rand(S, U, K, generator=gen, dtype=torch.float64)
    mask = torch.ones(S, U, dtype=torch.float64)
    clone = torch.tensor([0.8, 0.3], dtype=torch.float64)
    posterior = SimpleNamespace(
        flat_draws=lambda name: log_pi.exp().expand(D, S, K),
        user_loglik=lambda: loglik.expand(D, S, U, K),
        data=SimpleNamespace(user_mask=mask),
    )
    z = types_in_place_of_each_user(posterior, clone.expand(D, S), seed=3)  # [D, S, U]
    for u in range(U):
        without = mask.clone()
        without[:, u] = 0.0
        prototype = torch.softmax(prototype_loglik(log_pi, loglik, without, clone), -1)  # [S, K0]
        c = clone[:, None, None]
        given = c * torch.eye(K, dtype=torch.float64) + (1 - c) * log_pi.exp()[:, None, :]
        expected = (prototype[:, :, None] * given).sum(1)  # [S, K]
        observed = torch.nn.functional.one_hot(z[:, :, u], K).double().mean(0)
        se = (expected * (1 - expected) / D).sqrt()
        assert torch.all((observed - expected).abs() <= 4 * se + 1e-12), (observed, expected)
