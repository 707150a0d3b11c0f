"""Convergence diagnostics, and warnings that name the parameters concerned.

MCMC: split r_hat, bulk and tail ESS per parameter (ArviZ), divergences and E-BFMI per chain.
SVI: whether the ELBO converged, and its trace (in ``Posterior.diagnostics``).
A :class:`DiagnosticWarning` names every parameter with ``r_hat > 1.01`` or ``ESS < 400``,
and reports divergences.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

R_HAT_MAX = 1.01
ESS_MIN = 400


class DiagnosticWarning(UserWarning):
    """A sampler diagnostic crossed its threshold."""


def _posterior_dataset(posterior):
    import arviz as az

    variables = {k: v.detach().double().numpy() for k, v in posterior.draws.items()}
    dims = {
        "pi": ["sim", "policy"],
        "lam": ["sim"],
        "shift_shared": ["sim"],
        "shift": ["sim", "currency"],
    }
    coords = {
        "sim": posterior.data.sim_ids,
        "policy": list(posterior.policy_names),
        "currency": list(posterior.data.currencies),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(posterior=variables, coords=coords, dims=dims)


def mcmc_diagnostics(posterior, warn: bool = True) -> dict[str, Any]:
    """r_hat, ESS, divergences and BFMI of a :class:`~scai.inference.posterior.Posterior`;
    warns (naming parameters) when thresholds fail."""
    return chain_diagnostics(
        _posterior_dataset(posterior), posterior.sample_stats, warn=warn, stacklevel=4
    )


def chain_diagnostics(
    idata, sample_stats: dict[str, np.ndarray], warn: bool = True, stacklevel: int = 3
) -> dict[str, Any]:
    """r_hat, ESS, divergences and BFMI of any Markov chains: ``idata`` holds their
    ``posterior`` (ArviZ), ``sample_stats`` NUTS's ``energy`` and ``diverging``
    ``[chains, draws]``; warns (naming parameters) when thresholds fail."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(idata, kind="diagnostics")
    energy = sample_stats.get("energy")
    bfmi = (
        az.bfmi(np.asarray(energy)).tolist() if energy is not None and energy.shape[1] > 1 else []
    )
    n_div = int(np.sum(sample_stats.get("diverging", 0)))
    result = {
        "r_hat": summary["r_hat"].to_dict(),
        "ess_bulk": summary["ess_bulk"].to_dict(),
        "ess_tail": summary["ess_tail"].to_dict(),
        "divergences": n_div,
        "bfmi": bfmi,
    }
    if warn:
        problems = []
        high = summary.index[summary["r_hat"] > R_HAT_MAX].tolist()
        if high:
            problems.append(f"r_hat > {R_HAT_MAX} for {', '.join(high)}")
        low = summary.index[
            (summary["ess_bulk"] < ESS_MIN) | (summary["ess_tail"] < ESS_MIN)
        ].tolist()
        if low:
            problems.append(f"ESS < {ESS_MIN} for {', '.join(low)}")
        if n_div:
            problems.append(f"{n_div} divergent transition(s)")
        if problems:
            warnings.warn(
                "MCMC diagnostics: " + "; ".join(problems),
                DiagnosticWarning,
                stacklevel=stacklevel,
            )
    return result


def min_bulk_ess(posterior) -> float:
    return float(min(posterior.diagnostics["ess_bulk"].values()))
