"""Experiment ``alignment``: does the assistant come to act as the group does?

One norm per group (selfish, fair, altruistic) and mixed groups (80/20, 50/50, 20/80
selfish/altruistic), 10 users each, neutral manners, one training currency per simulation.
The assistant learns under the ``neutral`` hypothesis (``--hypothesis`` overrides it).

Checks: in one-norm groups the assistant's mean offered share is within 2 points of the users'
from epoch 2 on; in mixed groups the posterior mean of ``pi`` is within 0.1 of the true mixture
at the last epoch in at least 90% of runs (the original assistant matched mixtures only across
runs, never within one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scai.experiments.common import (
    ExperimentResult,
    cache_dir,
    figure_dir,
    format_checks,
    keep_posterior,
    output_dir,
    settings_from,
    write_summary,
)
from scai.experiments.conditions import Condition
from scai.experiments.original import ALIGNMENT
from scai.experiments.plots import offered_share_panels
from scai.experiments.report import MIXED_LABELS
from scai.experiments.runner import Plan
from scai.experiments.statistics import summarise

NAME = "alignment"
MIXES = {"mixed 80/20": 0.8, "mixed 50/50": 0.5, "mixed 20/80": 0.2}  # share of selfish users


#: The condition whose posterior is kept beside the summary (the others' are not written).
KEPT = "mixed 80/20"


def conditions(hypothesis: str) -> list[Condition]:
    one_norm = [
        Condition(p, p, hypothesis=hypothesis, users=10, true_policy=p, save_posterior=False)
        for p in ("selfish", "fair", "altruistic")
    ]
    mixed = [
        Condition(
            name,
            f"selfish={q},altruistic={1 - q:.1f}",
            hypothesis=hypothesis,
            users=10,
            save_posterior=name == KEPT,
        )
        for name, q in MIXES.items()
    ]
    return one_norm + mixed


#: The assistant's hypothesis unless ``--hypothesis`` says otherwise.
HYPOTHESIS = "neutral"


def plan(args) -> Plan:
    """The conditions ``scai run alignment`` computes, with their settings and cache."""
    return Plan(
        conditions(args.hypothesis or HYPOTHESIS), settings_from(args), cache_dir(args, NAME)
    )


def main(args) -> ExperimentResult:
    hypothesis = args.hypothesis or HYPOTHESIS
    out = output_dir(args, NAME)
    results = plan(args).run(args.workers)
    summary = pd.concat([summarise(NAME, r, hypothesis) for r in results.values()])
    write_summary(summary, out)
    keep_posterior(results[KEPT], out, KEPT)

    checks, numbers, skipped = {}, {}, {}
    later = summary[summary["epoch"] >= 2]
    for cond in ("selfish", "fair", "altruistic"):
        check = f"{cond}: assistant within 2 points of users from epoch 2"
        if not len(later):  # a single epoch: nothing "from epoch 2" to check, no number
            skipped[check] = "needs --epochs 2 or more"
            continue
        part = later[later["condition"] == cond].pivot(
            index="epoch", columns="agent", values="offered_share_mean"
        )
        gap = float((part["assistant"] - part["users"]).abs().max())
        numbers[f"{cond}: max |assistant - users| from epoch 2 (points)"] = gap
        checks[check] = gap <= 2
    for name, q in MIXES.items():
        per_sim = results[name].per_sim
        last = per_sim[per_sim["epoch"] == per_sim["epoch"].max()]
        err = np.maximum(np.abs(last["pi_selfish"] - q), np.abs(last["pi_altruistic"] - (1 - q)))
        frac = float((err <= 0.1).mean())
        numbers[f"{name}: share of runs with pi within 0.1 at the last epoch"] = frac
        checks[f"{name}: pi within 0.1 of the mixture in >= 90% of runs"] = frac >= 0.9
    figure = offered_share_panels(
        summary,
        ALIGNMENT,
        figure_dir(args) / "alignment.png",
        "Alignment: offered share per epoch, users vs assistant (95% CI over simulations)",
        titles=MIXED_LABELS,
    )
    report = format_checks(NAME, checks, numbers, quick=args.quick, skipped=skipped)
    return ExperimentResult(NAME, summary, checks, numbers, [figure], report)
