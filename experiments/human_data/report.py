"""What ``scai run human-data`` found (:class:`HumanDataResult`), and the report it prints."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scai.experiments.human_data.figures import ROLE_PARAMETERS, role_label, role_parameters
from scai.experiments.human_data.fitting import ResponderFit
from scai.experiments.human_data.tables import (
    PARETO_K_LIMIT,
    arviz_k_threshold,
    explain_high_k,
    levels_inside,
)
from scai.models.human_data import HumanImport
from scai.models.responders import ResponderData

#: The largest ``|observed - predicted|`` rejection rate at any offer level that the better
#: hypothesis should reach.
MAX_ERROR = 0.03


@dataclass
class HumanDataResult:
    """What ``scai run human-data`` found; ``report`` is printed by the CLI. ``source`` says
    where the decisions came from (a file, or simulated), ``subsample`` which were fitted."""

    imported: HumanImport
    data: ResponderData
    fits: list[ResponderFit]
    compare: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    pareto: pd.DataFrame
    best: str
    max_error: dict[str, dict[str, float]]  # hypothesis -> role -> max |observed - predicted|
    paths: list[Path]
    # the same of new subjects' predicted rate (out of sample: a subject's own decisions unused)
    max_error_new: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = ""
    subsample: str = ""
    report: str = ""

    @property
    def numbers(self) -> dict[str, float]:
        """The numbers the README quotes: each hypothesis's elpd_loo, elpd_diff, dse, weight
        and max Pareto k, its role-level parameters (median and 95% interval per role), and
        the worst |observed - predicted| rejection rate per role, in-sample and of new
        subjects."""
        out: dict[str, float] = {}
        for row in self.compare.to_dict("records"):
            for column in ("elpd_loo", "p_loo", "elpd_diff", "dse", "weight"):
                out[f"{row['hypothesis']}: {column}"] = float(row[column])
        for name, part in self.pareto.groupby("hypothesis"):
            out[f"{name}: max Pareto k"] = float(part["pareto_k"].max())
        for fit in self.fits:  # the role-level parameters the roles figure compares
            for row in role_parameters(fit).itertuples():
                for stat in ("median", "lo", "hi"):
                    key = f"{fit.name}: {row.parameter}, {row.role}: {stat}"
                    out[key] = float(getattr(row, stat))
            for key, value in role_differences(fit).items():
                out[f"{fit.name}: {key}"] = value
            out[f"{fit.name}: posterior draws"] = float(fit.settings.chains * fit.settings.samples)
        for name, roles in self.max_error.items():
            for role, value in roles.items():
                out[f"{name}: worst rejection-rate gap ({role})"] = float(value)
        for name, roles in self.max_error_new.items():
            for role, value in roles.items():
                out[f"{name}: worst rejection-rate gap, new subjects ({role})"] = float(value)
        for name, table in self.tables.items():
            out[f"{name}: offer levels"] = float(len(table))
            out[f"{name}: offer levels inside the new subjects' 95% band"] = float(
                levels_inside(table)
            )
        return out


def role_differences(fit: ResponderFit) -> dict[str, float]:
    """With two roles, for each role-level parameter of :data:`ROLE_PARAMETERS` the fit has:
    ``P(site second > site first)``, the share of posterior draws in which the second role's
    value is the larger (a difference the overlap of two marginal intervals does not show)."""
    if len(fit.data.roles) != 2:
        return {}
    first, second = fit.data.roles
    out = {}
    for site in ROLE_PARAMETERS:
        if site in fit.draws:
            values = fit.draws[site].reshape(-1, 2)
            out[f"P({site} {second} > {site} {first})"] = float(
                (values[:, 1] > values[:, 0]).mean()
            )
    return out


#: How many standard errors of the difference the leading hypothesis's elpd must lead by
#: before the report calls it the better one.
LOO_SE = 2.0


def loo_verdict(compare: pd.DataFrame) -> str:
    """The comparison's first words: the better hypothesis by LOO where the leader's elpd is
    more than :data:`LOO_SE` standard errors of the difference above the next one's, else
    that none is (the quick run's 1.1 nats at a standard error of 2.9 was called better)."""
    lead = str(compare.iloc[0]["hypothesis"])
    if len(compare) < 2:
        return f"better hypothesis (LOO): {lead}"
    gap, se = float(compare.iloc[1]["elpd_diff"]), float(compare.iloc[1]["dse"])
    if not math.isfinite(se):
        return f"leading hypothesis (LOO; the difference's standard error unknown): {lead}"
    if gap > LOO_SE * se:
        return f"better hypothesis (LOO): {lead}"
    return (
        f"no hypothesis better by LOO ({lead} leads by {gap:.1f} nats, standard error "
        f"{se:.1f}: under {LOO_SE:g}); the leader, {lead}"
    )


def report_text(result: HumanDataResult) -> str:
    """The lines ``scai run human-data`` prints: data, fits, LOO comparison, fit to the data
    by offer, Pareto k (naming the subjects above the limits) and the files written."""
    data = result.data
    counts = ", ".join(
        f"{(data.role_index == r).sum().item()} {role_label(role)}"
        for r, role in enumerate(data.roles)
    )
    lines = [
        result.source,
        f"modelled {int(data.n_trials.sum())} decisions of {data.n_subjects} subjects: {counts}"
        + (f" ({result.subsample})" if result.subsample else ""),
    ]
    for fit in result.fits:
        div = int(fit.stats["diverging"].sum())
        diag = fit.diagnostics
        lines.append(
            f"{fit.name}: NUTS {fit.settings.chains} chains x {fit.settings.samples} draws "
            f"({fit.settings.warmup} warmup), {div} divergences, mean "
            f"{fit.stats['n_steps'].mean():.1f} leapfrog steps per draw, max r_hat "
            f"{max(diag['r_hat'].values()):.3f}, min bulk ESS "
            f"{min(diag['ess_bulk'].values()):.0f}, {fit.seconds:.1f} s "
            "(chains' wall time, summed, + post-processing)"
        )
        if diag.get("problems"):  # (the thresholds as MCMC's warning applies them)
            lines.append(
                f"  {fit.name}: short of scai's bars for MCMC: {'; '.join(diag['problems'])}"
            )
    cols = ["hypothesis", "rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse", "weight"]
    lines.append("PSIS-LOO comparison (one term per subject):")
    lines.append(result.compare[cols].to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    for name, errors in result.max_error.items():
        parts = ", ".join(f"{role} {e:.3f}" for role, e in errors.items())
        lines.append(f"max |observed - predicted| by offer, {name}: {parts}")
        if name in result.max_error_new:
            parts = ", ".join(f"{role} {e:.3f}" for role, e in result.max_error_new[name].items())
            table = result.tables[name]
            lines.append(
                f"  the same for new subjects (out of sample): {parts}; the observed rate inside "
                f"their 95% band at {levels_inside(table)} of {len(table)} levels (role x offer)"
            )
    worst = max(result.max_error[result.best].values())
    verdict = "meets" if worst <= MAX_ERROR else "does NOT meet"
    lines.append(
        f"{loo_verdict(result.compare)}; its worst offer level is off by {worst:.3f} in-sample: "
        f"{verdict} the {MAX_ERROR} criterion"
    )
    for fit in result.fits:
        if differences := role_differences(fit):
            draws = fit.settings.chains * fit.settings.samples
            lines.append(
                f"{fit.name}, share of {draws} posterior draws: "
                + ", ".join(f"{key} {value:.3f}" for key, value in differences.items())
            )
    high = explain_high_k(result.pareto)
    k_max = result.pareto.groupby("hypothesis")["pareto_k"].max()
    lines.append(
        "max Pareto k: "
        + ", ".join(f"{h} {k:.2f}" for h, k in k_max.items())
        + (f"; subjects above {PARETO_K_LIMIT}:" if high else f"; none above {PARETO_K_LIMIT}")
    )
    lines.extend(high)
    settings = result.fits[0].settings
    threshold = arviz_k_threshold(settings.chains * settings.samples)
    if threshold < PARETO_K_LIMIT:
        between = explain_high_k(result.pareto, limit=threshold, below=PARETO_K_LIMIT)
        if between:
            lines.append(
                f"between ArviZ's threshold for {settings.chains * settings.samples} draws "
                f"({threshold:.2f}; it flags a warning in compare.csv) and {PARETO_K_LIMIT}:"
            )
            lines.extend(between)
    lines.append("wrote " + ", ".join(str(p) for p in result.paths))
    return "\n".join(lines)
