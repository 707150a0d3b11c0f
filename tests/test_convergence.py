"""scai.inference.convergence computes what ArviZ's summary computes, many parameters at once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scai.inference.convergence import bfmi, convergence

az = pytest.importorskip("arviz")


def _ar1(rng, chains: int, draws: int, params: int, phi: float) -> np.ndarray:
    x = np.zeros((chains, draws, params))
    noise = rng.normal(size=x.shape)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    nan = rng.normal(size=(2, 100, 2))
    nan[1, 5, 1] = np.nan
    return {
        "independent": rng.normal(size=(2, 500, 4)),
        "sticky": _ar1(rng, 2, 500, 3, 0.9),
        "very sticky, 4 chains, odd length": _ar1(rng, 4, 301, 2, 0.99),
        "antithetic": _ar1(rng, 2, 500, 2, -0.7),
        "ties (rounded draws)": np.round(rng.normal(size=(2, 400, 3)), 1),
        "repeated draws": np.repeat(rng.normal(size=(2, 50, 2)), 10, axis=1),
        "constant": np.ones((2, 100, 1)),
        "chains apart": _ar1(rng, 2, 200, 2, 0.5) + np.array([0.0, 3.0])[:, None, None],
        "one chain": _ar1(rng, 1, 200, 2, 0.5),
        "a NaN": nan,
        "too short": rng.normal(size=(2, 3, 2)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_equals_arviz_summary(name):
    draws = _cases()[name]
    ours = convergence(draws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = az.summary(
            az.from_dict(posterior={"x": draws}), kind="diagnostics", round_to="none"
        )
    for stat in ("r_hat", "ess_bulk", "ess_tail"):
        np.testing.assert_allclose(
            ours[stat], theirs[stat].to_numpy(), rtol=1e-9, equal_nan=True, err_msg=stat
        )


def test_flags_chains_that_disagree():
    """Not only equal to ArviZ: two chains 1.7 sd apart get an r-hat far above 1.01, and
    sticky chains a small ESS (against draws of the same length that mix)."""
    rng = np.random.default_rng(2)
    apart = convergence(_ar1(rng, 2, 400, 1, 0.5) + np.array([0.0, 2.0])[:, None, None])
    assert apart["r_hat"][0] > 1.1
    sticky, mixing = (
        convergence(_ar1(rng, 2, 1000, 1, 0.95)),
        convergence(rng.normal(size=(2, 1000, 1))),
    )
    assert sticky["ess_bulk"][0] < 100 < 1000 < mixing["ess_bulk"][0]


def test_bfmi_equals_arviz():
    energy = _ar1(np.random.default_rng(3), 3, 300, 1, 0.6)[..., 0]
    np.testing.assert_allclose(bfmi(energy), az.bfmi(energy), rtol=1e-9)


def test_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\[chains, draws, parameters\]"):
        convergence(np.zeros((2, 100)))
