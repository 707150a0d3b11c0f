"""Convergence diagnostics, and warnings that name the parameters concerned.

MCMC: rank-normalised split r_hat, bulk and tail ESS per parameter (as ArviZ computes them:
:mod:`scai.inference.convergence`), divergences and E-BFMI per chain.
SVI: whether the ELBO converged, and its trace (in ``Posterior.diagnostics``).
A :class:`DiagnosticWarning` names every parameter with ``r_hat > 1.01`` or ``ESS < 400``,
and reports divergences.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np

from scai.inference.convergence import bfmi, convergence
from scai.models.errors import ScaiWarning, outside_scai

R_HAT_MAX = 1.01
ESS_MIN = 400
#: E-BFMI below this says a chain explores its energy poorly (Betancourt 2016's threshold).
BFMI_MIN = 0.3


def shown_r_hat(values: np.ndarray) -> np.ndarray:
    """r-hat as scai shows and stores it: rounded up to 3 decimals, so that a value above
    :data:`R_HAT_MAX` never shows as it (1.0104 is 1.011, not 1.010), and the worst of many
    is not lost in a tie (ArviZ's 2 decimals show most troubled parameters as 1.01)."""
    return np.ceil(np.asarray(values, dtype=np.float64) * 1000) / 1000


def shown_ess(values: np.ndarray) -> np.ndarray:
    """ESS as scai shows and stores it: rounded to units as ArviZ's ``summary`` rounds it, but
    a value below :data:`ESS_MIN` never up to it (399.7 is 399, not 400: the warning "bulk ESS
    < 400 for lam (400)" and a stored 400 contradicted each other)."""
    values = np.asarray(values, dtype=np.float64)
    rounded = np.round(values)
    return np.where((values < ESS_MIN) & (rounded >= ESS_MIN), ESS_MIN - 1, rounded)


class DiagnosticWarning(ScaiWarning):
    """A sampler diagnostic crossed its threshold."""


class BoundedGridWarning(DiagnosticWarning):
    """The exact engine's grid of a latent site in (0, 1) (lapse, stereotype strength, clone
    probability) is coarser than its posterior and could not be zoomed: that site's moments
    are only as good as the grid's step."""


#: The dimensions after ``(chain, draw)`` of the sites that have names for them; other sites'
#: dimensions are numbered (ArviZ's ``{site}_dim_0``, ...).
SITE_DIMS: dict[str, tuple[str, ...]] = {
    "pi": ("sim", "policy"),
    "lam": ("sim",),
    "shift_shared": ("sim",),
    "shift": ("sim", "currency"),
    "lapse": ("sim",),
    "strength": ("sim",),
    "clone": ("sim",),
}


def dim_sizes(data, hypothesis) -> dict[str, int]:
    """The size of each named dimension (:data:`SITE_DIMS`' and the users' ``user`` and
    ``manner``) for ``data`` (a :class:`~scai.models.layout.GroupData`) under ``hypothesis``:
    the shapes a posterior's arrays must have."""
    from scai.models.language import MANNERS

    return {
        "sim": data.shape[0],
        "policy": len(hypothesis.policies),
        "currency": len(data.currencies),
        "user": int(data.user_mask.sum()),
        "manner": len(MANNERS),
    }


def in_site_order(sites) -> list[str]:
    """``sites`` in :data:`SITE_DIMS`' order (others after them, as given): every engine's
    summary and ArviZ file list the same quantities in the same order."""
    order = list(SITE_DIMS)
    return sorted(sites, key=lambda site: order.index(site) if site in order else len(order))


def mcmc_diagnostics(
    posterior, warn: bool = True, chains: list[int] | None = None
) -> dict[str, Any]:
    """r_hat, ESS, divergences and BFMI of a :class:`~scai.inference.posterior.Posterior`;
    warns (naming parameters, and chains by ``chains``, their numbers in the fit: a chain
    replaced or dropped leaves the others' positions unlike their numbers) when thresholds
    fail."""
    coords = {
        "sim": list(posterior.data.sim_ids),
        "policy": list(posterior.policy_names),
        "currency": list(posterior.data.currencies),
    }
    variables = {}
    for site, value in posterior.draws.items():
        value = value.detach().double().numpy()
        dims = SITE_DIMS.get(site, ())
        variables[site] = (
            value,
            [coords[dims[i]] if i < len(dims) else range(n) for i, n in enumerate(value.shape[2:])],
        )
    return _diagnostics(variables, posterior.sample_stats, warn=warn, chains=chains)


def _chain_variables(idata) -> dict[str, tuple[np.ndarray, list]]:
    """``idata``'s posterior as :func:`_diagnostics` takes variables."""
    return {
        name: (var.to_numpy(), [var[d].to_numpy().tolist() for d in var.dims[2:]])
        for name, var in idata.posterior.data_vars.items()
    }


#: Split r-hat halves each chain, and its rank normalisation needs a few draws per half.
MIN_DRAWS_FOR_R_HAT = 4


def chain_problems(idata, sample_stats: dict[str, np.ndarray]) -> tuple[dict[str, Any], list]:
    """r_hat, ESS, divergences and BFMI of any Markov chains (``idata`` holds their
    ``posterior``, ArviZ's; ``sample_stats`` NUTS's ``energy`` and ``diverging`` ``[chains,
    draws]``), and, without warning of them, the thresholds they fail: each a phrase naming
    the parameters, as MCMC's warning says it (none: ``[]``)."""
    result, problems, _ = _diagnostics_and_problems(_chain_variables(idata), sample_stats)
    return result, problems


def _diagnostics(
    variables: dict[str, tuple[np.ndarray, list]],
    sample_stats: dict[str, np.ndarray],
    warn: bool,
    chains: list[int] | None = None,
) -> dict[str, Any]:
    """The diagnostics of ``variables[name] = (draws [chains, draws, ...], coordinates of each
    further dimension)``, each parameter labelled as ArviZ's ``summary`` labels it
    (``pi[0, fair]``), ESS by :func:`shown_ess`, r-hat by :func:`shown_r_hat`; with
    ``warn``, a :class:`DiagnosticWarning` of the thresholds they fail (a chain named by its
    number in ``chains``, by position if ``None``)."""
    result, problems, lowest = _diagnostics_and_problems(variables, sample_stats, chains)
    if warn and problems:
        draws = next(iter(variables.values()))[0].shape[1]
        warnings.warn(
            "MCMC diagnostics: " + "; ".join(problems) + _more_draws(lowest, draws),
            DiagnosticWarning,
            stacklevel=outside_scai(),
        )
    return result


def _more_draws(lowest: float, draws: int) -> str:
    """Where an ESS is below :data:`ESS_MIN` (``lowest``, of ``draws`` per chain): how many
    draws per chain would reach it at the ESS per draw seen (ESS grows about in proportion
    to the draws), the remedy to try first (a review: the default 500 draws of 2 chains left
    the tail ESS of most small groups under 400, and the warning said nothing of what to do)."""
    if not 0 < lowest < ESS_MIN:
        return ""
    needed = math.ceil(draws * ESS_MIN / lowest * 1.1 / 100) * 100  # (a tenth to spare)
    return (
        f" (at this ESS per draw, about {needed:,} draws per chain would reach {ESS_MIN}: "
        f"samples={needed}, scai fit --draws {needed})"
    )


def _diagnostics_and_problems(
    variables: dict[str, tuple[np.ndarray, list]],
    sample_stats: dict[str, np.ndarray],
    chains: list[int] | None = None,
) -> tuple[dict[str, Any], list[str], float]:
    """:func:`_diagnostics`' result, the thresholds failed (on the values as computed) and
    the lowest ESS below :data:`ESS_MIN` of a parameter that can move (``inf``: none)."""
    labels, columns = [], []
    for name, (value, coords) in variables.items():
        C, N = value.shape[:2]
        columns.append(value.reshape(C, N, -1))
        if not coords:
            labels.append(name)
            continue
        for index in itertools.product(*coords):
            labels.append(f"{name}[{', '.join(str(c) for c in index)}]")
    stats = convergence(np.concatenate(columns, -1))
    # thresholds on the values as computed, not as shown (r-hat 1.0100004 shows as 1.011)
    raw = {k: dict(zip(labels, stats[k].tolist(), strict=True)) for k in stats}
    r_hat = dict(zip(labels, shown_r_hat(stats["r_hat"]).tolist(), strict=True))
    ess_bulk = dict(zip(labels, shown_ess(stats["ess_bulk"]).tolist(), strict=True))
    ess_tail = dict(zip(labels, shown_ess(stats["ess_tail"]).tolist(), strict=True))
    energy = sample_stats.get("energy")
    energy_bfmi = (
        bfmi(np.asarray(energy)).tolist() if energy is not None and energy.shape[1] > 1 else []
    )
    n_div = int(np.sum(sample_stats.get("diverging", 0)))
    result = {
        "r_hat": r_hat,
        "ess_bulk": ess_bulk,
        "ess_tail": ess_tail,
        "divergences": n_div,
        "bfmi": energy_bfmi,
    }
    problems: list[str] = []
    draws = np.concatenate(columns, -1).reshape(-1, len(labels))
    fixed = np.all(draws == draws[:1], axis=0)
    # A parameter that never moves while others do is constant by construction (pi of a
    # one-type hypothesis): NUTS moves every coordinate at once. All still: a stuck sampler.
    by_construction = set(np.array(labels)[fixed]) if not fixed.all() else set()
    undefined = [
        k
        for k in labels
        if k not in by_construction and not np.isfinite(r_hat[k] + ess_bulk[k] + ess_tail[k])
    ]
    if undefined:  # NaN passes every threshold below: say so instead
        C, N = columns[0].shape[:2]
        whys = []
        if not np.isfinite(draws).all():
            whys.append("some draws are not finite")
        elif fixed.all():
            whys.append("no parameter moves: the sampler is stuck")
        if C < 2:
            whys.append("r_hat needs at least 2 chains")
        if N < MIN_DRAWS_FOR_R_HAT:
            whys.append(f"r_hat needs at least {MIN_DRAWS_FOR_R_HAT} draws per chain")
        problems.append(
            f"r_hat or ESS undefined for {', '.join(undefined)} ({C} chain(s) of {N} "
            f"draw(s): {'; '.join(whys) or 'the parameters barely move'})"
        )
    high = [
        f"{k} ({shown_r_hat(v):.3f})"
        for k, v in raw["r_hat"].items()
        if k not in by_construction and v > R_HAT_MAX
    ]
    if high:
        problems.append(f"r_hat > {R_HAT_MAX} for {', '.join(high)}")
    lowest = math.inf  # the lowest ESS below the bar, of a parameter that can move
    for kind, ess in (("bulk", ess_bulk), ("tail", ess_tail)):
        # (a constant's ESS is ArviZ's count of draws: below 400 in a short run)
        low = [k for k in labels if k not in by_construction and raw[f"ess_{kind}"][k] < ESS_MIN]
        if low:
            problems.append(
                f"{kind} ESS < {ESS_MIN} for {', '.join(f'{k} ({ess[k]:.0f})' for k in low)}"
            )
            lowest = min(lowest, *(raw[f"ess_{kind}"][k] for k in low))
    if n_div:
        problems.append(f"{n_div} divergent transition(s)")
    numbers = chains if chains is not None else range(len(energy_bfmi))
    low = [
        f"chain {c} ({v:.2f})" for c, v in zip(numbers, energy_bfmi, strict=True) if v < BFMI_MIN
    ]
    if low:  # the chains' momenta resampling barely moves their energy
        problems.append(
            f"E-BFMI < {BFMI_MIN} for {', '.join(low)} (the energy explored poorly: heavy "
            "tails, or a mass matrix scaled unlike the posterior)"
        )
    return result, problems, lowest


def min_bulk_ess(posterior) -> float:
    return float(min(posterior.diagnostics["ess_bulk"].values()))
