"""Experiment ``generalization``: a norm learned on dollars, tested on essential goods.

A selfish group trades in dollars for 5 epochs; then the assistant proposes in dollars (in
distribution) and in grams of medicine, pints of blood and liters of baby formula (out of
distribution: currencies it never saw), 5 test games per simulation each. Three hypotheses
about currencies (the assistant's prior):

* ``currency_invariant``: a norm is the same whatever the currency;
* ``pooled``: currencies shift the norm by a shared amount plus a small deviation
  (hierarchical), so the dollars teach it about every currency;
* ``essential_goods_shared``: currencies unpooled, with a prior that essential goods are
  shared: the dollars teach nothing about medicine, so the prior decides there.

Checks: the out-of-distribution gap in offered share is under 3 points for the first two and
over 30 for the last (the original GPT-4 assistant: 59 points). The second figure shows why:
prior and posterior of the currency shift for dollars and for medicine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from scai.experiments.assistant import assistant_norms
from scai.experiments.common import (
    ExperimentResult,
    cache_dir,
    figure_dir,
    format_checks,
    keep_posterior,
    output_dir,
    remove_earlier,
    settings_from,
    write_summary,
)
from scai.experiments.conditions import Condition, condition_seed, hypothesis_label
from scai.experiments.original import GENERALIZATION
from scai.experiments.plots import TOP, figure_style, pyplot, save_figure, seaborn
from scai.experiments.runner import Plan
from scai.experiments.statistics import mean_interval, summarise
from scai.inference.posterior import Posterior
from scai.models.game import OOD_CURRENCIES, get_currency
from scai.models.hypotheses import get_hypothesis
from scai.models.prior import GroupPrior
from scai.models.writing import write_csv_atomic

NAME = "generalization"
HYPOTHESES = ("currency_invariant", "pooled", "essential_goods_shared")
TEST_CURRENCIES = ("dollars", *OOD_CURRENCIES)
TEST_GAMES = 5


def conditions(hypotheses) -> list[Condition]:
    """One condition per hypothesis, named (and so seeded) by :func:`hypothesis_label`."""
    return [
        Condition(
            f"selfish on dollars | {hypothesis_label(h)}",
            "selfish",
            currency="dollars",
            hypothesis=h,
            users=10,
            true_policy="selfish",
        )
        for h in hypotheses
    ]


def test_offers(posterior: Posterior, hypothesis, seed: int, games: int) -> pd.DataFrame:
    """The trained assistant's offers in each test currency (posterior sampling)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    S = posterior.data.shape[0]
    posterior.type_weights("member")  # every draw's at once: the games below ask 20 times each
    tables: dict = {}  # the action tables of each (pot, lam, shift) drawn, computed once
    rows = []
    for currency in TEST_CURRENCIES:
        for game in range(games):
            pots = [int(p) for p in rng.integers(10, 101, S)]
            norms = assistant_norms(
                posterior, hypothesis, pots, [currency] * S, rng, table_cache=tables
            )
            for s, (p, pot) in enumerate(zip(norms.offer_probs, pots, strict=True)):
                offer = int(rng.choice(len(p), p=p / p.sum()))
                rows.append((s, currency, game, pot, offer, 100 * offer / pot))
    return pd.DataFrame(rows, columns=["sim", "currency", "game", "pot", "offer", "share"])


def shift_samples(posterior: Posterior, hypothesis, currency: str, n: int, seed: int):
    """Prior and posterior draws of a currency's shift (of the weight on the other's payoff)."""
    gen = torch.Generator().manual_seed(seed)
    post = posterior.shift(currency, gen)[:, 0].numpy()
    essential = torch.tensor([float(get_currency(currency).essential)])
    prior = GroupPrior(hypothesis).sample((n,), essential, gen)["shift"][:, 0].numpy()
    return prior, post


def plan(args) -> Plan:
    """The conditions ``scai run generalization`` computes, with their settings and cache."""
    hypotheses = (args.hypothesis,) if args.hypothesis else HYPOTHESES
    return Plan(conditions(hypotheses), settings_from(args), cache_dir(args, NAME))


def main(args) -> ExperimentResult:
    out = output_dir(args, NAME)
    planned = plan(args)
    conds, settings = planned.conditions, planned.settings
    results = planned.run(args.workers)

    summaries, tests, shifts, kept = [], [], [], []
    checks, numbers = {}, {}
    for cond in conds:
        result = results[cond.name]
        hyp = get_hypothesis(cond.hypothesis)
        summaries.append(
            summarise(NAME, result, cond.hypothesis).assign(phase="train", currency="dollars")
        )
        posterior = Posterior.load(result.extras["posterior_path"])
        games = 2 if args.quick else TEST_GAMES
        test = test_offers(posterior, hyp, condition_seed(args.seed, cond.name), games)
        test["hypothesis"] = cond.hypothesis
        tests.append(test)
        # the users' share per simulation (its epochs' mean): simulations are the independent
        # unit, as for the assistant's, not the simulation x epoch rows
        users_share = result.per_sim.groupby("sim")["users_share"].mean().to_numpy()
        for currency, group in test.groupby("currency", sort=False):
            per_sim = group.groupby("sim")["share"].mean().to_numpy()
            mean, lo, hi, n = mean_interval(per_sim)
            for agent, values in (
                ("assistant", (mean, lo, hi, n)),
                ("users", mean_interval(users_share)),
            ):
                summaries.append(
                    pd.DataFrame(
                        [
                            {
                                "experiment": NAME,
                                "condition": f"test on {currency}",
                                "hypothesis": cond.hypothesis,
                                "epoch": settings.epochs + 1,
                                "agent": agent,
                                "offered_share_mean": values[0],
                                "offered_share_lo": values[1],
                                "offered_share_hi": values[2],
                                "n": values[3],
                                "phase": "test",
                                "currency": currency,
                            }
                        ]
                    )
                )
        id_share = test.loc[test.currency == "dollars", "share"].mean()
        ood_share = test.loc[test.currency != "dollars", "share"].mean()
        gap = float(ood_share - id_share)
        numbers[f"{cond.hypothesis}: ID share (dollars, %)"] = float(id_share)
        numbers[f"{cond.hypothesis}: OOD share (essential goods, %)"] = float(ood_share)
        numbers[f"{cond.hypothesis}: OOD gap (points)"] = gap
        if cond.hypothesis == "essential_goods_shared":
            checks[f"{cond.hypothesis}: OOD gap over 30 points (original: 59)"] = gap > 30
        elif cond.hypothesis in ("currency_invariant", "pooled"):
            checks[f"{cond.hypothesis}: |OOD gap| under 3 points"] = abs(gap) < 3
        for currency in ("dollars", "medicine"):
            prior, post = shift_samples(posterior, hyp, currency, 2000, args.seed)
            for kind, values in (("prior", prior), ("posterior", post)):
                shifts.append(
                    pd.DataFrame(
                        {
                            "hypothesis": cond.hypothesis,
                            "currency": currency,
                            "kind": kind,
                            "shift": values,
                        }
                    )
                )
        kept.append(keep_posterior(result, out, cond.hypothesis))

    # an earlier run's into this folder (--hypothesis another) is not this run's
    remove_earlier(out, ("posterior_*.nc",), [path for path in kept if path is not None])
    summary = pd.concat(summaries, ignore_index=True)
    write_summary(summary, out)
    test_table = pd.concat(tests, ignore_index=True)
    write_csv_atomic(test_table, out / "test_offers.csv")
    shift_table = pd.concat(shifts, ignore_index=True)
    figures = plot_generalization(test_table, shift_table, figure_dir(args))
    report = format_checks(NAME, checks, numbers, quick=args.quick)
    return ExperimentResult(NAME, summary, checks, numbers, figures, report)


def plot_generalization(test: pd.DataFrame, shifts: pd.DataFrame, fig_dir):
    plt = pyplot()

    sns = seaborn()

    from scai.experiments.plots import ORIGINAL_COLOR

    figure_style()
    test = test.assign(
        test=np.where(test.currency == "dollars", "dollars (ID)", test.currency + " (OOD)")
    )
    # one value per simulation (its test games' mean), as summary.csv's intervals: the
    # simulations are the independent unit, not their games
    per_sim = test.groupby(["hypothesis", "test", "sim"], sort=False)["share"].mean().reset_index()
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(
        per_sim,
        x="hypothesis",
        y="share",
        hue="test",
        errorbar=lambda values: mean_interval(values)[1:3],  # t 95%, cut to 0-100
        ax=ax,
    )
    ax.axhline(
        GENERALIZATION["in_distribution"],
        color=ORIGINAL_COLOR,
        ls=":",
        label="GPT-4 assistant, ID (2023)",
    )
    ax.axhline(
        GENERALIZATION["out_of_distribution"],
        color=ORIGINAL_COLOR,
        ls="--",
        label="GPT-4 assistant, OOD (2023)",
    )
    ax.set_ylabel("assistant's offered share (% of pot)")
    ax.set_xlabel("assistant's hypothesis about currencies")
    ax.set_title("A selfish norm learned on dollars, tested on essential goods", y=TOP)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    first = save_figure(fig, fig_dir / "generalization.png")

    grid = sns.catplot(
        shifts,
        x="currency",
        y="shift",
        hue="kind",
        col="hypothesis",
        kind="violin",
        split=True,
        inner="quart",
        height=3.3,
        aspect=1.0,
        cut=0,
        # each half as wide as the others: scaled by area, a posterior pinned to a point (the
        # shift of dollars, the training currency) left every other posterior half invisible
        density_norm="width",
    )
    grid.set_axis_labels("currency", "shift of weight on other's payoff")
    for hypothesis, ax in grid.axes_dict.items():
        part = shifts[shifts.hypothesis == hypothesis]
        fixed = bool((part["shift"] == 0).all())  # no currency effect in this hypothesis
        ax.set_title(f"{hypothesis}" + (": shift fixed at 0" if fixed else ""))
    grid.figure.suptitle("Why: prior vs posterior of the currency effect", y=1.03)
    second = save_figure(grid.figure, fig_dir / "generalization_shift.png", bbox_inches="tight")
    return [first, second]
