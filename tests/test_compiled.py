"""The compiled NUTS of the pi-only hypotheses (:mod:`scai.inference.compiled`).

* Its potential and gradient equal the NumPy backend's (``MarginalDensity.potentials_and_grad``
  through the Laplace whitening; other tests hold that equal to Pyro's density) at random
  points and random whitenings, on padded data, two currencies in one simulation, several
  simulations, and where the product form underflows.
* Its NUTS gives the Python NUTS's draws and statistics (to rounding: the two potentials
  differ in the last bits) for the same generator and start.
* ``fit_mcmc`` takes it where the hypothesis qualifies, not otherwise, and not with
  ``compiled=False`` or ``SCAI_COMPILED=0``; it is deterministic per seed; and its posterior
  means agree with the exact engine's within their Monte Carlo error.
* The struggle monitor's checks replayed after a run give the messages it gave live.

numba compiles on the first call (~1 min from scratch, once: ``cache=True`` keeps it on disk).
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import torch
from small_groups import padded_two_currency_groups, three_mixed_groups

from scai.inference.compiled import PiModel, pi_potential, sample_chains
from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.exact import fit_exact
from scai.inference.hmc import StruggleMonitor, sample_nuts
from scai.inference.mcmc import Whitening, fit_mcmc, sampler_coordinates
from scai.models.density import MarginalDensity
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.simulate import simulate

PI_ONLY = ("neutral", "stereotyped", "currency_invariant")


def random_whitening(density: MarginalDensity, rng: np.random.Generator) -> Whitening:
    """A whitening with a random mode and a random lower-triangular factor (positive
    diagonal), so every entry of the map is exercised."""
    S, W = density.coords.n_sims, density.coords.width
    chol = np.tril(rng.normal(0, 0.5, (S, W, W)))
    chol[:, np.arange(W), np.arange(W)] = rng.uniform(0.2, 1.5, (S, W))
    return Whitening(rng.normal(0, 1, (S, W)), chol)


def numpy_potential(density: MarginalDensity, white: Whitening, psi: np.ndarray):
    """What the Python NUTS runs on: ``U_s`` and ``dU/dpsi`` through the whitening."""
    values, grad = density.potentials_and_grad(white.theta(psi))
    return values, white.pull_back(grad)


@pytest.mark.parametrize("name", PI_ONLY)
@pytest.mark.parametrize("make", [three_mixed_groups, padded_two_currency_groups])
def test_potential_and_gradient_equal_the_numpy_backends(float64, name, make):
    data = make()
    density = MarginalDensity(data, PRESETS[name])
    rng = np.random.default_rng(len(name) + data.shape[0])
    for _ in range(4):
        white = random_whitening(density, rng)
        model = PiModel.of(density, *sampler_coordinates_identity(density, white))
        assert model is not None
        psi = rng.normal(0, 1.5, density.coords.size)
        values, grad = pi_potential(model, psi)
        want_values, want_grad = numpy_potential(density, white, psi)
        np.testing.assert_allclose(values, want_values, rtol=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-9)
    assert np.abs(grad).min() > 1e-6  # the comparison is not of zeros


def sampler_coordinates_identity(density: MarginalDensity, white: Whitening):
    """``(mapped, white)`` as :func:`sampler_coordinates` gives them for a pi-only density
    (no walls), with ``white`` instead of the Laplace whitening."""
    from scai.inference.walls import WallCoordinates

    return WallCoordinates(density, []), white


def test_potential_where_the_product_form_underflows(float64):
    """Sticks far out: some types' ``pi_k`` underflow, and users who fit only those types
    are summed in log-sum-exp form (as the NumPy backend's fallback)."""
    data = three_mixed_groups()
    density = MarginalDensity(data, PRESETS["neutral"])
    S, W = density.coords.n_sims, density.coords.width
    white = Whitening(np.zeros((S, W)), np.tile(np.eye(W), (S, 1, 1)))
    model = PiModel.of(density, *sampler_coordinates_identity(density, white))
    for psi in ([800.0, -3.0] * S, [-800.0, 750.0] * S, [-3.0, -760.0] * S):
        psi = np.array(psi)
        values, grad = pi_potential(model, psi)
        want_values, want_grad = numpy_potential(density, white, psi)
        assert np.all(np.isfinite(values))
        np.testing.assert_allclose(values, want_values, rtol=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-9)


def test_only_the_pi_only_hypotheses_qualify(float64):
    data = three_mixed_groups()
    for name, hyp in PRESETS.items():
        density = MarginalDensity(data, hyp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mapped, white = sampler_coordinates(density)
        assert (PiModel.of(density, mapped, white) is not None) == (name in PI_ONLY), name


def test_compiled_nuts_gives_the_python_nuts_draws(float64):
    """Same potential (to rounding), same generator, same start: the same trajectory
    choices, so the same draws and statistics (a short run: rounding differences grow)."""
    data = three_mixed_groups()
    density = MarginalDensity(data, PRESETS["stereotyped"])
    mapped, white = sampler_coordinates(density)
    model = PiModel.of(density, mapped, white)
    start = np.random.default_rng(1).normal(size=density.coords.size)

    def value_and_grad(psi):
        values, grad = numpy_potential(density, white, psi)
        return float(values.sum()), grad

    # a short run (one adaptation window, 9-53): the potentials' last-bit differences grow
    # (measured: 1e-9 here, 1e-3 after 120 + 60 iterations, the tree sizes still equal)
    warmup, samples = 60, 40
    want = sample_nuts(
        value_and_grad, start, rng=np.random.default_rng(7), warmup=warmup, samples=samples
    )
    (got,) = sample_chains(
        model, start[None], [np.random.default_rng(7)], warmup=warmup, samples=samples
    )
    np.testing.assert_allclose(got.draws, want.draws, rtol=0, atol=1e-7)
    for key in ("tree_depth", "n_steps", "diverging"):
        np.testing.assert_array_equal(got.stats[key], want.stats[key])
    for key in ("accept", "step_size", "energy", "lp"):
        np.testing.assert_allclose(got.stats[key], want.stats[key], rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(got.inv_mass, want.inv_mass, rtol=1e-7)
    assert got.step_size == pytest.approx(want.step_size, rel=1e-7)
    assert want.stats["n_steps"].max() > 1  # trees were built


def small_group() -> GroupData:
    sim = simulate(
        PRESETS["neutral"].with_(rationality=1.0),
        policy="selfish=0.4,fair=0.3,altruistic=0.3",
        users=20,
        rounds=20,
        epochs=2,
        sims=2,
        seed=2,
        pot_range=(2, 6),
    )
    return GroupData.from_table(sim.interactions)


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        return fit_mcmc(*args, **kwargs)


def test_fit_mcmc_runs_compiled_by_default_and_not_when_told(monkeypatch):
    data = small_group()
    hyp = PRESETS["neutral"]
    options = {"seed": 4, "warmup": 60, "samples": 40}
    compiled = quiet_fit(data, hyp, **options)
    again = quiet_fit(data, hyp, **options)
    python = quiet_fit(data, hyp, compiled=False, **options)
    monkeypatch.setenv("SCAI_COMPILED", "0")
    by_env = quiet_fit(data, hyp, **options)
    assert compiled.diagnostics["compiled"] and again.diagnostics["compiled"]
    assert not python.diagnostics["compiled"] and not by_env.diagnostics["compiled"]
    # deterministic per seed, and the Python NUTS's draws to rounding
    torch.testing.assert_close(compiled.draws["pi"], again.draws["pi"], rtol=0, atol=0)
    torch.testing.assert_close(compiled.draws["pi"], python.draws["pi"], rtol=0, atol=1e-7)
    torch.testing.assert_close(by_env.draws["pi"], python.draws["pi"], rtol=0, atol=0)
    np.testing.assert_array_equal(compiled.sample_stats["n_steps"], python.sample_stats["n_steps"])
    # a hypothesis with latent rationality runs the Python NUTS
    latent = quiet_fit(data, PRESETS["pooled"], seed=4, warmup=30, samples=20)
    assert not latent.diagnostics["compiled"]


def test_compiled_fit_agrees_with_the_exact_engine(float64):
    """Posterior means of ``pi`` within 4 Monte Carlo standard errors (ArviZ's, from the run)
    plus the exact lattice's error (bounded by its distance to a finer lattice) of the exact
    engine's: a correct sampler fails this with probability ~1e-4 per component."""
    data = small_group()
    hyp = PRESETS["neutral"]
    post = quiet_fit(data, hyp, seed=1, warmup=300, samples=1000)
    assert post.diagnostics["compiled"]
    coarse = fit_exact(data, hyp)
    fine = fit_exact(data, hyp, max_simplex_points=5000)
    grid = float((coarse.pi_mean() - fine.pi_mean()).abs().max())
    mcse = az.mcse(az.convert_to_dataset({"pi": post.draws["pi"].numpy()}), method="mean")
    bound = 4 * mcse["pi"].values + grid
    diff = (post.pi_mean() - fine.pi_mean()).abs().numpy()
    print("max |diff|", diff.max(), "bound", bound.min(), "grid", grid)
    assert np.all(diff <= bound), (diff, bound)
    assert float(post.draws["pi"].std((0, 1)).min()) > 0.02  # a posterior with some width


def test_monitor_replayed_gives_the_messages_it_gave_live():
    """A badly scaled Gaussian ridge (the monitor's test case of test_hmc): the live
    monitor's messages, and those of a fresh one replayed on the recorded iterations."""
    scales = np.array([1.0, 0.01])
    corr = 0.995
    cov = np.array([[1, corr], [corr, 1]]) * np.outer(scales, scales)
    precision = np.linalg.inv(cov)

    def value_and_grad(q):
        g = precision @ q
        return 0.5 * float(q @ g), g

    def monitor():
        return StruggleMonitor(names=["a", "b"], report=lambda _: None, every=50)

    live = monitor()
    positions = []

    def record(q):  # a move that only records every iteration's position
        positions.append(q.copy())
        return None, q

    warmup = 200
    run = sample_nuts(
        value_and_grad,
        np.array([0.5, 0.0]),
        rng=np.random.default_rng(3),
        warmup=warmup,
        samples=200,
        monitor=live,
        move=record,
    )
    replayed = monitor()
    replayed.replay(np.array(positions), run.stats, warmup)
    assert live.messages  # it struggled
    assert replayed.messages == live.messages


def test_a_cold_cache_is_announced_and_a_warm_one_is_not(tmp_path):
    """The first fit of an install compiles for ~1 min: it says so on stderr. ``_compiles``
    is true in a fresh process whose numba cache is empty, false once the sampler is
    compiled in this process (and so false in the fits after)."""
    import os
    import subprocess
    import sys

    from scai.inference.compiled import _compiles, _kernels

    probe = (
        "from scai.inference.compiled import _compiles, _kernels;"
        " print(_compiles(_kernels().chain))"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
    data = GroupData.from_table(
        simulate(
            PRESETS["neutral"], policy="fair", users=6, rounds=6, epochs=1, seed=0
        ).interactions
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        fit_mcmc(data, PRESETS["neutral"], warmup=10, samples=10)
    assert not _compiles(_kernels().chain)


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("0", False), ("False", False), ("OFF", False), (" no ", False), ("1", True)]
    + [("TRUE", True), ("On", True), ("", True), ("nein", None), ("2", None)],
)
def test_the_environment_switch_is_read_in_any_case_and_a_misspelt_value_refused(
    monkeypatch, value, enabled
):
    """``SCAI_COMPILED`` is read whatever its case (``False`` was taken as on); a value that is
    neither on nor off is an error naming the variable, the value and what is allowed (a fit is
    reproduced by its seed only with the same choice)."""
    from scai.inference.compiled import compiled_enabled
    from scai.inference.errors import EngineError

    monkeypatch.setenv("SCAI_COMPILED", value)
    if enabled is None:
        with pytest.raises(EngineError, match=rf"SCAI_COMPILED='{value}': allowed 0, false"):
            compiled_enabled()
    else:
        assert compiled_enabled() is enabled
