"""The lean NUTS (scai.inference.hmc) on targets with known answers, and its struggle monitor on
deliberately bad geometry.

* A Gaussian with scales 100-fold apart and a correlation of 0.5: the kept draws' means and
  sds match (tolerances from the Monte Carlo error: ``sd / sqrt(ESS)`` with ESS measured by
  ArviZ, 5 standard errors), and a seed gives the same draws twice.
* The monitor stays silent on that well-posed target, and speaks, *while the chain runs*, on
  a ridge (correlation 0.9999: a tiny step size and long trajectories, naming both
  coordinates and the correlation) and on Neal's funnel (divergences, gathered where the scale
  parameter is low).
* Chains in lockstep through one batched potential (``sample_nuts_lockstep``) are each the
  chain :func:`sample_nuts` runs alone with the same generator (bitwise), though their trees
  differ in length, and the batched potential is called once per gradient of the longest.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from scai.inference.hmc import (
    StruggleMonitor,
    _logaddexp,
    adaptation_windows,
    sample_nuts,
    sample_nuts_lockstep,
)

SCALES = np.array([10.0, 0.1])
CORR = 0.5


def gaussian(scales: np.ndarray, corr: float):
    cov = np.array([[1.0, corr], [corr, 1.0]]) * np.outer(scales, scales)
    precision = np.linalg.inv(cov)

    def value_and_grad(q: np.ndarray) -> tuple[float, np.ndarray]:
        g = precision @ q
        return 0.5 * float(q @ g), g

    return value_and_grad


def funnel(q: np.ndarray) -> tuple[float, np.ndarray]:
    """Neal's funnel: ``v ~ N(0, 3)``, ``x ~ N(0, exp(v / 2))`` (potential and gradient)."""
    v, x = q
    u = v**2 / 18 + 0.5 * x**2 * np.exp(-v) + 0.5 * v
    return u, np.array([v / 9 - 0.5 * x**2 * np.exp(-v) + 0.5, x * np.exp(-v)])


def run(value_and_grad, seed, warmup=300, samples=1000, monitor=None, start=(1.0, 0.5)):
    return sample_nuts(
        value_and_grad,
        np.array(start),
        rng=np.random.default_rng(seed),
        warmup=warmup,
        samples=samples,
        monitor=monitor,
    )


def recorder(names=("v", "x"), **kwargs):
    heard: list[str] = []
    return StruggleMonitor(names=list(names), report=heard.append, **kwargs), heard


def test_lean_nuts_samples_a_badly_scaled_gaussian_and_is_reproducible():
    monitor, heard = recorder(("a", "b"))
    result = run(gaussian(SCALES, CORR), seed=1, monitor=monitor)
    draws = result.draws
    assert draws.shape == (1000, 2)
    ess = np.array([az.ess(draws[None, :, j]) for j in range(2)])
    assert np.all(ess > 200), ess
    se_mean = SCALES / np.sqrt(ess)
    assert np.all(np.abs(draws.mean(0)) < 5 * se_mean)
    # sd of a sample sd ~ sd / sqrt(2 ESS)
    assert np.all(np.abs(draws.std(0) - SCALES) < 5 * SCALES / np.sqrt(2 * ess))
    assert abs(np.corrcoef(draws.T)[0, 1] - CORR) < 5 * (1 - CORR**2) / np.sqrt(ess.min())
    # the adapted inverse mass matrix is the posterior variance, estimated from the last
    # window's 100 autocorrelated draws (ESS ~30-100: relative sd up to ~0.26): within 2x
    ratio = result.inv_mass / SCALES**2
    assert np.all((ratio > 0.5) & (ratio < 2)), ratio
    assert not result.stats["diverging"][300:].any()  # none among the kept iterations
    # Until the first window's end (iteration 100) the metric is still the identity, 100x
    # off in one direction: trajectories of ~60-140 leapfrog steps (18 of seeds 1-20 average
    # more than MANY_STEPS there; which ones depends on the CPU's floating point, as every
    # chaotic trajectory does), and the monitor may say so then. Once the metric is adapted it
    # must be silent: nothing about the later windows or the kept iterations.
    assert result.stats["n_steps"][300:].mean() < 10
    assert all(m.startswith("iteration 100: sampler struggling: ") for m in heard), heard
    assert result.problems == heard  # what it said while running is what the result keeps
    again = run(gaussian(SCALES, CORR), seed=1)
    np.testing.assert_array_equal(again.draws, draws)
    assert not np.array_equal(run(gaussian(SCALES, CORR), seed=2).draws, draws)


@pytest.mark.parametrize("warmup", [5, 25, 60])
def test_a_short_warmup_leaves_a_step_size_the_chain_moves_with(warmup):
    """A warmup too short for dual averaging to settle after its last restart (Stan's
    terminal buffer of 10%: 2 iterations of 25) keeps the heuristic's step size: on a 3-d
    standard normal every seed's chain moves (the average of so few updates sat near 10
    times the heuristic's: 7-9, every draw the same, in 2 seeds of 4 at warmup 25): each
    seed's kept draws have ESS at least 20 and sd within 5 Monte Carlo errors of 1 (sd /
    sqrt(2 ESS), ESS by ArviZ)."""

    def standard_normal(q: np.ndarray) -> tuple[float, np.ndarray]:
        return 0.5 * float(q @ q), q.copy()

    for seed in range(8):
        result = sample_nuts(
            standard_normal, np.zeros(3), rng=np.random.default_rng(seed), warmup=warmup,
            samples=300,
        )  # fmt: skip
        ess = np.array([az.ess(result.draws[None, :, j]) for j in range(3)])
        assert np.all(ess >= 20), (seed, ess)
        sd = result.draws.std(0)
        assert np.all(np.abs(sd - 1) < 5 / np.sqrt(2 * ess)), (seed, sd, ess)


def test_monitor_names_the_correlated_pair_of_a_ridge_while_the_chain_runs():
    """Correlation 0.9999 with a diagonal mass matrix: trajectories of hundreds of steps."""
    calls = []
    monitor, heard = recorder(("delta_0", "delta_c"))
    result = sample_nuts(
        gaussian(np.array([1.0, 1.0]), 0.9999),
        np.zeros(2),
        rng=np.random.default_rng(3),
        warmup=150,
        samples=100,
        monitor=monitor,
        on_iteration=lambda: calls.append(len(heard)),
    )
    assert heard, "the monitor said nothing about a 0.9999 ridge"
    # said while running: the first message came before the last iteration
    first = next(i for i, n in enumerate(calls) if n > 0)
    assert first < len(calls) - 1
    message = heard[0]
    signs = ("step size", "leapfrog steps", "maximum tree depth")
    assert any(sign in message for sign in signs), message
    assert "delta_0 and delta_c are strongly correlated" in message or (
        "delta_c and delta_0 are strongly correlated" in message
    ), message
    assert result.problems == heard


@pytest.mark.parametrize("seed", range(3, 9))
def test_monitor_reports_the_funnels_divergences_and_never_blames_its_mouth(seed):
    """Neal's funnel diverges at its neck (v low). The monitor places divergences by the draws
    kept after them, which for one or two divergences lay as often at the mouth: seed 3 (with
    numpy 2.4) said 'divergences gather where v is high (+0.6 sd)' after 2 of them. Every run
    that diverges is told so, and no message points at the mouth."""
    monitor, heard = recorder()
    result = run(funnel, seed=seed, warmup=150, samples=300, monitor=monitor, start=(0.0, 1.0))
    divergence_messages = [m for m in heard if "divergent transition" in m]
    assert bool(divergence_messages) == bool(result.stats["diverging"][150:].sum()), heard
    assert not any("where v is high" in m for m in heard), heard


def test_monitor_says_a_stuck_chain_is_stuck_and_names_no_parameter():
    """A target_accept of 0.01 adapts a step far too large: the chain does not move after
    the warmup. The monitor said "divergent transition(s); x and v are strongly correlated (r =
    -1.000): a diagonal mass matrix cannot follow the ridge", a correlation of the few points
    the chain sat on, not of the posterior: now it says the chain is stuck, at what step size,
    and why, and names no parameter. A chain that moves (target_accept 0.8) is not stuck."""

    def told(target_accept: float) -> list[str]:
        monitor, heard = recorder(("v", "x"))
        sample_nuts(
            gaussian(np.array([1.0, 1.0]), 0.0),
            np.array([1.0, 0.5]),
            rng=np.random.default_rng(2),
            warmup=150,
            samples=200,
            target_accept=target_accept,
            monitor=monitor,
        )
        return heard

    heard = told(0.01)
    stuck = [m for m in heard if "the chain moved in" in m]
    assert stuck, heard
    assert "too large a step" in stuck[0] and "target_accept" in stuck[0], stuck[0]
    assert not any("strongly correlated" in m or "mixes slowest" in m for m in heard), heard
    assert all("too few distinct draws" in m for m in heard), heard
    heard = told(0.8)
    assert not any("the chain moved in" in m for m in heard), heard


@pytest.mark.parametrize("warmup", [10, 100, 300, 1000])
def test_adaptation_windows_fit_inside_the_warmup_and_double(warmup):
    windows = adaptation_windows(warmup)
    if warmup < 20:
        assert windows == []
        return
    assert windows[0][0] == (75 if warmup >= 150 else int(0.15 * warmup))
    assert windows[-1][1] == warmup - (50 if warmup >= 150 else int(0.1 * warmup)) - 1
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start == end + 1
    sizes = [b - a + 1 for a, b in windows]
    assert all(b >= 2 * a for a, b in zip(sizes[:-2], sizes[1:-1], strict=False))


def test_chains_in_lockstep_are_the_chains_run_alone():
    targets = {"gaussian": gaussian(SCALES, CORR), "funnel": funnel}
    starts = np.array([[1.0, 0.5], [0.0, 1.0], [-0.5, 0.2]])
    for name, value_and_grad in targets.items():
        calls = []

        def batched(qs: np.ndarray, value_and_grad=value_and_grad, calls=calls):
            calls.append(len(qs))
            out = [value_and_grad(q) for q in qs]
            return np.array([u for u, _ in out]), np.stack([g for _, g in out])

        seeds = (1, 7, 9)
        runs = sample_nuts_lockstep(
            batched,
            starts,
            rngs=[np.random.default_rng(seed) for seed in seeds],
            warmup=100,
            samples=100,
        )
        alone = [
            sample_nuts(
                value_and_grad, start, rng=np.random.default_rng(seed), warmup=100, samples=100
            )
            for start, seed in zip(starts, seeds, strict=True)
        ]
        n_grads = []
        for together, single in zip(runs, alone, strict=True):
            np.testing.assert_array_equal(together.draws, single.draws)
            for key in single.stats:
                np.testing.assert_array_equal(together.stats[key], single.stats[key])
            assert together.step_size == single.step_size
            n_grads.append(single.stats["n_steps"].sum())
        assert len(set(n_grads)) > 1, name  # the chains did differ in length
        assert set(calls) == {3}  # the batch keeps its shape to the end
        # one call per gradient of the longest chain (plus the start and step-size searches)
        assert max(n_grads) < len(calls) < max(n_grads) + 200, (name, len(calls), n_grads)


def test_float_logaddexp_gives_numpys_bits():
    """The trees' merge adds their weights with a float ``logaddexp``: it must give the bits
    of NumPy's (the draws depend on them), at ties, at ``-inf`` and far apart too."""
    rng = np.random.default_rng(0)
    scale = rng.choice([1e-3, 1.0, 30.0, 1e3], size=(2, 5000))
    a, b = (rng.standard_normal((2, 5000)) * scale).tolist()
    a[:50] = b[:50]
    a[50:60] = [-np.inf] * 10
    b[55:65] = [-np.inf] * 10
    ours = [_logaddexp(x, y) for x, y in zip(a, b, strict=True)]
    numpys = [float(np.logaddexp(x, y)) for x, y in zip(a, b, strict=True)]
    assert np.array_equal(ours, numpys)


def test_no_parameter_is_named_from_a_chain_that_alternates_between_two_points():
    """A chain that moves at every iteration but only between two points has two distinct
    draws: their correlation is +-1 whatever the posterior, so no parameter is named."""
    from scai.inference.hmc import _suspects

    positions = np.array([[0.0, 1.0], [1.0, 0.0]] * 50)
    said = _suspects(positions, positions, np.zeros(100, dtype=bool), ["a", "b"])
    assert said == "too few distinct draws to say which parameter"
