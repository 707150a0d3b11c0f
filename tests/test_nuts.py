"""The one NUTS runner (scai.inference.nuts) on a potential with a known answer: a Gaussian
site and a log-normal one reached through a Pyro transform.

It samples the right distribution (constrained draws), records one statistic per kept
iteration (``lp`` is the log density of the draw), is reproducible per ``(seed, chain)`` in
this process and in worker processes, and hands back chains in task order.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import torch
from pyro.distributions import constraints
from pyro.distributions.transforms import biject_to

from scai.inference.nuts import (
    STAT_NAMES,
    ChainProblem,
    ChainTask,
    RecordingNUTS,
    one_torch_thread,
    run_chain,
    run_chains,
    stack_chains,
)

MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
SD = torch.tensor([0.5, 2.0], dtype=torch.float64)
LOG_LOC, LOG_SCALE = 0.3, 0.4


def potential(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``x ~ Normal(MEAN, SD)``; ``s ~ LogNormal(LOG_LOC, LOG_SCALE)`` sampled as
    ``u = log s`` (the Jacobian makes ``u`` Normal)."""
    x, u = params["x"], params["u"]
    return 0.5 * (((x - MEAN) / SD) ** 2).sum() + 0.5 * (((u - LOG_LOC) / LOG_SCALE) ** 2).sum()


def gaussian_problem(start_scale: float) -> ChainProblem:
    """A random start (drawn under the chain's seed) and ``s = exp(u)`` as a transform."""
    return ChainProblem(
        potential_fn=potential,
        initial_params={
            "x": start_scale * torch.randn(2, dtype=torch.float64),
            "u": start_scale * torch.randn(1, dtype=torch.float64),
        },
        transforms={"u": biject_to(constraints.positive).inv},
        constrain=lambda draws: {"x": draws["x"], "s": draws["u"], "log_s": draws["u"].log()},
    )


def task(chain: int = 0, seed: int = 3, samples: int = 400) -> ChainTask:
    return ChainTask(gaussian_problem, (0.5,), seed=seed, chain=chain, warmup=200, samples=samples)


def test_a_chain_samples_the_target_with_constrained_draws_and_stats():
    result = run_chain(task(samples=800))
    assert set(result.draws) == {"x", "s", "log_s"}
    x, s = result.draws["x"], result.draws["s"]
    assert x.shape == (800, 2) and s.shape == (800, 1) and (s > 0).all()
    # Monte Carlo error from the chain's own ESS (ArviZ, autocorrelation included; 600-1,150
    # measured): 5 standard errors of a mean, sd / sqrt(ESS), and of an sd, ~sd / sqrt(2 ESS)
    log_s = result.draws["log_s"]
    values = torch.cat([x, log_s], -1).double().numpy()  # [800, 3]
    ess = np.array([az.ess(values[None, :, j]) for j in range(3)])
    assert np.all(ess > 200), ess  # the premise: enough draws for the bounds to be tight
    sd = np.array([*SD.tolist(), LOG_SCALE])
    target = np.array([*MEAN.tolist(), LOG_LOC])
    assert np.all(np.abs(values.mean(0) - target) < 5 * sd / np.sqrt(ess)), (values.mean(0), ess)
    assert np.all(np.abs(values.std(0) - sd) < 5 * sd / np.sqrt(2 * ess)), (values.std(0), ess)
    assert set(result.stats) == set(STAT_NAMES)
    assert all(len(v) == 800 for v in result.stats.values())
    # lp is the log density of the kept draw: -U(x, log s)
    lp = np.array([-float(potential({"x": x[i], "u": log_s[i]})) for i in range(800)])
    np.testing.assert_allclose(result.stats["lp"], lp, atol=1e-8)
    assert not result.stats["diverging"].any()
    assert (result.stats["n_steps"] >= 1).all() and result.seconds > 0


def test_chains_are_reproducible_per_seed_and_chain_and_come_back_in_order():
    tasks = [task(chain=c, samples=50) for c in range(2)]
    serial = run_chains(tasks, workers=1)
    again = run_chain(tasks[1])
    assert torch.equal(serial[1].draws["x"], again.draws["x"])
    assert not torch.equal(serial[0].draws["x"], serial[1].draws["x"])
    assert not torch.equal(run_chain(task(seed=4, samples=50)).draws["x"], serial[0].draws["x"])
    parallel = run_chains(tasks, workers=2)  # the program's worker processes
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a.draws["x"], b.draws["x"]) and torch.equal(a.draws["s"], b.draws["s"])
        np.testing.assert_array_equal(a.stats["lp"], b.stats["lp"])
    draws, stats = stack_chains(serial)
    assert draws["x"].shape == (2, 50, 2) and stats["energy"].shape == (2, 50)


def test_initial_inverse_mass_is_the_adaptation_start():
    """Without warmup the mass matrix is never adapted: it stays the one given."""
    from pyro.infer.mcmc import MCMC

    inverse_mass = torch.tensor([0.25, 4.0, 0.16], dtype=torch.float64)
    kernel = RecordingNUTS(potential_fn=potential, initial_inverse_mass=inverse_mass)
    start = {"x": MEAN.clone(), "u": torch.tensor([LOG_LOC], dtype=torch.float64)}
    MCMC(kernel, num_samples=3, warmup_steps=0, initial_params=start, disable_progbar=True).run()
    (matrix,) = kernel.inverse_mass_matrix.values()
    assert torch.equal(matrix, inverse_mass)
    assert len(kernel.stats["lp"]) == 3
    assert run_chains([]) == []


def test_acceptance_rate_is_each_iterations_statistic_behind_pyros_running_mean():
    """Pyro keeps only a running mean of NUTS's acceptance statistic (restarted after the
    warmup); the recorded per-iteration values average to it over each phase, lie in [0, 1],
    vary from iteration to iteration, and sit near the target the step size adapted to."""
    from pyro.infer.mcmc import MCMC

    running: list[float] = []  # Pyro's running mean after each iteration (reset at the end)

    class Watched(RecordingNUTS):
        def sample(self, params):
            out = super().sample(params)
            running.append(self._mean_accept_prob)
            return out

    torch.manual_seed(7)
    kernel = Watched(potential_fn=potential, target_accept_prob=0.8)
    start = {"x": MEAN.clone(), "u": torch.tensor([LOG_LOC], dtype=torch.float64)}
    MCMC(
        kernel, num_samples=300, warmup_steps=200, initial_params=start, disable_progbar=True
    ).run()
    rate = np.asarray(kernel.stats["acceptance_rate"])
    assert len(rate) == 500 and ((rate >= 0) & (rate <= 1)).all()
    assert rate[:200].mean() == pytest.approx(running[199], rel=1e-9)
    assert rate[200:].mean() == pytest.approx(running[-1], rel=1e-9)
    assert rate[200:].std() > 0.01
    assert 0.65 <= rate[200:].mean() <= 0.97  # ~0.8 after adaptation (dual averaging's target)


def test_one_torch_thread_restores_the_thread_count_even_after_an_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError), one_torch_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
