"""The engines agree on the real-agent presets, whose group-level sites are all latent Beta
sites: a lapse rate, a stereotype strength and a clone probability (with its prototype summed
out), plus a role-dependent type (``selfish_rejecting``).

Two groups of 10 users who play 10 games each (pots of 2-6 units, so types stay uncertain),
simulated from ``real_agents_stereotyped`` itself: rude altruists (the inconsistent group of
the original study) and a 50/50 selfish/altruistic mix. MCMC (2 chains of 150 warmup + 1,500
draws) is compared with the exact engine on ``pi_mean()``. Error budget per component:

* the exact engine's grid: the default grid against a finer one (every bounded site's grid
  1.5 times as dense); the difference bounds the default grid's error;
* MCMC's Monte Carlo error: MCSE from ArviZ (autocorrelation included). A component passes
  if it is within ``z`` MCSE plus the grid difference of the fine exact answer
  (:func:`agreement.assert_within_error`: ``z`` the normal quantile at 0.01 Bonferroni-split
  over the 8 components, so a correct sampler fails by chance with probability below 0.01).
  Every bound must be below 0.02 (checked), as in ``test_engines_mcmc``, so that a missed mode
  of 2% of the mass would fail: with 200 draws a chain the bounds were 0.028-0.051.
"""

from __future__ import annotations

import warnings

import agreement
import arviz as az
import pandas as pd
import pytest
import torch

import scai.inference.exact_bounded as exact_bounded
from scai.inference import fit
from scai.inference.diagnostics import DiagnosticWarning
from scai.models.hypotheses import PRESETS
from scai.models.simulate import simulate

HYPOTHESIS = PRESETS["real_agents_stereotyped"]
GROUPS = (("rude_altruists", "altruistic", "rude"), ("mixed", "selfish=0.5,altruistic=0.5", None))


def groups() -> pd.DataFrame:
    parts = []
    for i, (name, policy, manner) in enumerate(GROUPS):
        part = simulate(
            HYPOTHESIS,
            policy=policy,
            manner=manner,
            users=10,
            rounds=10,
            epochs=1,
            seed=11 + i,
            pot_range=(2, 6),
        ).interactions.copy()
        part["sim"] = name
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def fits():
    table = groups()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)  # what is needed is checked below
        mcmc = fit(table, HYPOTHESIS, engine="mcmc", seed=5, warmup=150, samples=1500, num_chains=2)
    default = fit(table, HYPOTHESIS, engine="exact", seed=0)
    dense = {site: 3 * n // 2 for site, n in exact_bounded.BOUNDED_POINTS.items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact_bounded, "BOUNDED_POINTS", dense)
        fine = fit(table, HYPOTHESIS, engine="exact", seed=0)
    return mcmc, default, fine


@pytest.mark.slow
def test_mcmc_agrees_with_exact_on_the_real_agent_preset(fits):
    mcmc, default, fine = fits
    assert mcmc.data.sim_ids == fine.data.sim_ids == [name for name, _, _ in GROUPS]
    grid = (default.pi_mean() - fine.pi_mean()).abs().double()
    pi = mcmc.draws["pi"].double().numpy()  # [chains, draws, S, K]
    mcse = torch.as_tensor(az.mcse(az.convert_to_dataset({"pi": pi}), method="mean")["pi"].values)
    assert float(mcse.max()) < 0.02, "the run is too short to test agreement"
    # not trivial: the posterior is spread over types (a real comparison, not 1 = 1)
    assert float(fine.pi_mean().max()) < 0.95
    bound = agreement.error_bound(mcse, grid)
    print(f"largest MCSE of pi {float(mcse.max()):.4f}, bound {float(bound.max()):.4f}")
    assert float(bound.max()) < 0.02, "the run is too short to test agreement"
    agreement.assert_within_error(
        "pi_mean", mcmc.pi_mean(), fine.pi_mean(), mcse, grid, engine="mcmc"
    )
