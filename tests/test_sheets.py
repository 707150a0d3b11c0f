"""The clone prototype as part of the sampler's state (:mod:`scai.inference.sheets`): NUTS on
one sheet given the prototype ``z``, a Gibbs step on ``z`` between NUTS iterations.

The chain leaves the posterior invariant if (a) each sheet's map ``psi -> theta(psi, z)`` has
Jacobian 1, so that the density of ``(psi, z)`` is the joint ``p(theta(psi, z), z0 = z, data)``;
(b) NUTS's potential given ``z`` is that joint; (c) the Gibbs step draws ``z`` from it given
``psi``, which :class:`~scai.inference.sheets.Sheets` computes from the prior alone. Each is
checked here on one group of 40 users simulated from ``real_agents_stereotyped`` whose
prototype is not identified (data seed 3: at some points two sheets carry 38% and 60%), at
points spread over the posterior (the sampler's whitened coordinates, unit normal):

* (a) ``log |d theta / d psi|`` by central differences (step 1e-6) within 1e-6 of 0 for every
  prototype;
* (b) the potential with a prototype equals ``-log_joint(theta, prototype)`` of the torch
  reference (1e-12, both in float64: ``problem64``) and its gradient central differences
  (relative 1e-5);
* (c) the Gibbs weights equal the torch reference's joint ``log p(theta_z, z0 = z, data)`` up
  to a constant that does not depend on ``z`` (1e-8: the likelihood is the same on every
  sheet); the step's draws over 4,000 steps at one point have each sheet's frequency within
  4.5 binomial sd of its probability (a correct step fails with probability ~1e-5), and each
  records ``theta(psi, z)`` in the mode prototype's coordinates.

The NumPy prototype posterior is the torch reference's, and the engine gives each chain the
same draws in lockstep as alone (bitwise), the prototypes being per chain.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.mcmc import fit_mcmc, sampler_coordinates, sheets_of
from scai.inference.svi import default_dtype
from scai.models.density import MarginalDensity
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.marginal import prototype_posterior
from scai.models.simulate import simulate

H = PRESETS["real_agents_stereotyped"]
MIX = "selfish=0.5,fair=0.3,altruistic=0.2"
STEP = 1e-6


def build():
    sim = simulate(H, policy=MIX, users=40, rounds=40, epochs=5, seed=3)
    density = MarginalDensity(GroupData.from_table(sim.interactions), H)
    clones, white = sampler_coordinates(density)
    sheets = sheets_of(density, clones, white)
    rng = np.random.default_rng(3)
    points = [white.theta(rng.standard_normal(white.mode.size)) for _ in range(4)]
    return density, clones, white, sheets, points


@pytest.fixture(scope="module")
def problem():
    return build()


@pytest.fixture(scope="module")
def problem64():
    """The same group, built and scored with torch's default dtype float64: with float32, the
    tones' log-likelihood (in the default dtype) rounds to float32 in both the NumPy
    potential and the torch reference, summed in different orders, and the two part by a few
    float32 ulps of that sum (1.4e-8 of the potential on one Intel host, 6e-10 on another
    point); in float64 they agree to ~1e-16. (Only while built and scored: the other tests
    run at the default.)"""
    with default_dtype(torch.float64):
        return build()


def joint(density: MarginalDensity, theta: np.ndarray, z: int) -> float:
    """``log p(theta, z0 = z, data)`` of the torch reference (one simulation)."""
    with torch.no_grad():
        return float(density.log_joint(torch.as_tensor(theta), np.array([z])).sum())


def test_every_sheet_map_has_jacobian_one(problem):
    density, clones, _, _, points = problem
    n = density.coords.size
    for psi in points[:2]:
        for z in range(density.coords.n_policies):
            prototype = np.array([z])
            jac = np.empty((n, n))
            for i, step in enumerate(np.eye(n) * STEP):
                up, down = clones.theta(psi + step, prototype), clones.theta(psi - step, prototype)
                jac[:, i] = (up - down) / (2 * STEP)
            assert abs(np.linalg.slogdet(jac)[1]) < 1e-6


@pytest.mark.usefixtures("float64")
def test_the_potential_on_a_sheet_is_the_joint_with_the_prototype(problem64):
    density, clones, _, _, points = problem64
    for psi in points[:2]:
        for z in range(density.coords.n_policies):
            prototype = np.array([z])
            value, grad = clones.value_and_grad(psi, prototype)
            assert value == pytest.approx(-joint(density, clones.theta(psi, prototype), z), 1e-12)
            numeric = [
                (
                    clones.value_and_grad(psi + step, prototype)[0]
                    - clones.value_and_grad(psi - step, prototype)[0]
                )
                / (2 * STEP)
                for step in np.eye(psi.size) * STEP
            ]
            assert np.abs(np.array(numeric) - grad).max() < 1e-5 * np.abs(grad).max()


def test_the_gibbs_weights_are_the_joint_up_to_the_likelihood(problem):
    density, clones, _, sheets, points = problem
    K = density.coords.n_policies
    for psi in points:
        log_w = sheets.log_weights(psi)
        exact = np.array([joint(density, clones.theta(psi, np.array([z])), z) for z in range(K)])
        offset = exact - log_w[0]  # the likelihood of q (and more): the same on every sheet
        assert np.ptp(offset) < 1e-8 * np.abs(exact).max()


def test_the_numpy_prototype_posterior_is_the_torch_reference(problem):
    density, clones, _, _, points = problem
    for psi in points:
        theta = clones.theta(psi)
        x = torch.as_tensor(theta).reshape(1, -1)
        pi = density.stick(x[..., density.columns["pi"]])
        clone = density.bounded(x)["clone"]
        with torch.no_grad():
            want, _ = prototype_posterior(
                pi.log(), density.user_loglik(x), density.data.user_mask, clone
            )
        np.testing.assert_allclose(density.prototype_posterior(theta), want.numpy(), atol=1e-10)


def test_the_step_draws_the_prototype_from_its_conditional(problem):
    density, clones, white, sheets, points = problem
    K, n = density.coords.n_policies, 4000
    weights = []
    for psi in points:
        log_w = sheets.log_weights(psi)[0]
        weights.append(np.exp(log_w - log_w.max()) / np.exp(log_w - log_w.max()).sum())
    j = int(np.argmax([np.sort(w)[-2] for w in weights]))  # the point with two sheets
    p, psi = weights[j], points[j]
    assert np.sort(p)[-2] > 0.3
    x = np.linalg.solve(white.cholesky[0], psi - white.mode[0])
    rng = np.random.default_rng(7)
    counts = np.zeros(K)
    for i in range(n):
        before = sheets.z[0].copy()
        moved, record = sheets.step(0, x, rng)
        z = int(sheets.z[0, 0])
        counts[z] += 1
        assert (moved is None) == (z == before[0])
        if i < 20:  # the record: theta(psi, z) in the coordinates of the mode's prototype
            theta = clones.theta(white.theta(record))
            np.testing.assert_allclose(theta, clones.theta(psi, np.array([z])), atol=1e-9)
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) <= 4.5 * sd + 1e-9)


def sheet_of_each_draw(post, density: MarginalDensity) -> np.ndarray:
    """``argmax_z P(z0 = z | theta, data)`` of each draw ``[chains * draws]`` (one simulation)."""
    pi = post.draws["pi"].double().reshape(-1, density.coords.n_policies)
    cols = torch.zeros(len(pi), density.coords.width, dtype=torch.float64)
    cols[:, density.columns["pi"]] = density.stick.inv(pi)
    for site in density.coords.bounded:
        cols[:, density.columns[site]] = torch.logit(post.draws[site].reshape(-1, 1).double())
    return np.array([density.prototype_posterior(t).argmax() for t in cols.numpy()])


def test_chains_in_lockstep_are_the_chains_run_alone_with_their_prototypes():
    """A small group whose chains change sheets (data seed 3: 13 moves in 140 iterations)."""
    sim = simulate(H, policy=MIX, users=8, rounds=8, epochs=2, seed=3)
    data = GroupData.from_table(sim.interactions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        together = fit_mcmc(data, H, seed=5, warmup=40, samples=30)
        alone = fit_mcmc(data, H, seed=5, warmup=40, samples=30, parallel=False)
    assert together.diagnostics["lockstep"] and not alone.diagnostics["lockstep"]
    assert len(set(sheet_of_each_draw(together, MarginalDensity(data, H)))) > 1
    for site in together.draws:
        torch.testing.assert_close(together.draws[site], alone.draws[site], rtol=0, atol=0)
    for key in ("n_steps", "step_size", "lp"):
        np.testing.assert_array_equal(together.sample_stats[key], alone.sample_stats[key])


def test_chains_in_lockstep_are_alone_with_latent_rationality_and_shifts():
    """The same with the action tables varying (latent ``lam``, a shared and per-currency
    shifts: the cells rescored every call, a wall on a shift) on a group in two currencies:
    the tiled density's batched hand gradient serves each chain as its own would."""
    h = H.with_(rationality_scale=0.3, shared_scale=0.5, currency_scale=0.1)
    sim = simulate(h, policy=MIX, users=8, rounds=8, epochs=2, seed=3)
    table = sim.interactions.copy()
    table.loc[table["round"] % 2 == 0, "currency"] = "medicine"
    data = GroupData.from_table(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        together = fit_mcmc(data, h, seed=5, warmup=30, samples=20)
        alone = fit_mcmc(data, h, seed=5, warmup=30, samples=20, parallel=False)
    assert together.diagnostics["lockstep"] and not alone.diagnostics["lockstep"]
    assert {"lam", "shift_shared", "shift", "clone"} <= set(together.draws)
    for site in together.draws:
        torch.testing.assert_close(together.draws[site], alone.draws[site], rtol=0, atol=0)
    for key in ("n_steps", "step_size", "lp"):
        np.testing.assert_array_equal(together.sample_stats[key], alone.sample_stats[key])
