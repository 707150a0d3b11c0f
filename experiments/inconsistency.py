"""Experiment ``inconsistency``: language that contradicts the policy slows learning.

Groups whose manner contradicts the stereotype (altruistic but rude; selfish but sycophantic)
against the same policies with neutral manners, learned under the ``stereotyped`` hypothesis
(the assistant expects rude users to be selfish) and the ``neutral`` one (manners carry no
information). Per interaction with a user, the posterior probability of the true norm (the
users' mean posterior probability of their true policy), and the number of interactions it
takes to reach 0.95 (and, in ``slowdown_by_level.csv``, other levels). A sweep over stereotype
strength x the users' rationality shows when the slowdown appears and how large it is.

The count depends on the order of games within an epoch (``Settings.schedule``): in the
default order every pair plays its first game before any return game, so a user is heard
replying for several interactions before their own offer settles their type. With each
return game right after its first game (``alternating``), a tone can mislead for one
interaction only and the count is 7 or 8 in almost every run.

Checks: under ``stereotyped`` inconsistent groups need more interactions than consistent ones
(ratio of means with a paired bootstrap 95% interval above 1; the contrasted conditions
share their random numbers, so they differ only in the users' tones). Under ``neutral`` the
contrasted conditions are the same runs but for tones the hypothesis ignores: a ratio of exactly
1 and no belief deficit are checks that the tones are ignored, not statistical ones.
"""

from __future__ import annotations

from pathlib import Path

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
from scai.experiments.conditions import Condition, hypothesis_label
from scai.experiments.learning_curve import interactions_to_reach
from scai.experiments.original import INCONSISTENCY
from scai.experiments.plots import (
    TOP,
    figure_style,
    offered_share_panels,
    pyplot,
    save_figure,
    seaborn,
)
from scai.experiments.runner import Plan
from scai.experiments.statistics import summarise
from scai.models.writing import write_csv_atomic

NAME = "inconsistency"
GROUPS = {  # name -> (policy, manner, consistent counterpart)
    "altruistic + rude": ("altruistic", "rude", "altruistic + neutral"),
    "selfish + sycophantic": ("selfish", "sycophantic", "selfish + neutral"),
    "altruistic + neutral": ("altruistic", "neutral", None),
    "selfish + neutral": ("selfish", "neutral", None),
}
SWEEP_STRENGTHS = (0.0, 0.5, 0.8, 0.95)
SWEEP_RATIONALITIES = (0.5, 1.0, 2.0, 4.0)
LEVELS = (0.8, 0.9, 0.95, 0.97, 0.99)  # posterior levels of the sensitivity table


def label(group: str, hypothesis: str) -> str:
    """A main condition's name: its group and :func:`hypothesis_label`."""
    return f"{group} | {hypothesis_label(hypothesis)}"


def main_conditions(hypotheses) -> list[Condition]:
    # One random stream per policy: a group and its consistent counterpart, under either
    # hypothesis, meet the same users playing the same games; only the tones differ. Only the
    # first condition's posterior is kept beside the summary; the others' are not written.
    pairs = [(h, g) for h in hypotheses for g in GROUPS]
    return [
        Condition(
            label(g, h),
            GROUPS[g][0],
            manner=GROUPS[g][1],
            hypothesis=h,
            users=10,
            true_policy=GROUPS[g][0],
            stream=f"inconsistency: {GROUPS[g][0]}",
            save_posterior=(h, g) == pairs[0],
        )
        for h, g in pairs
    ]


def sweep_conditions(strengths, rationalities) -> list[Condition]:
    return [
        Condition(
            f"sweep s={s} lam={lam} {manner}",
            "altruistic",
            manner=manner,
            hypothesis="stereotyped",
            users=10,
            rationality=lam,
            stereotype_strength=s,
            assistant_rationality=lam,
            true_policy="altruistic",
            stream=f"sweep s={s} lam={lam}",
            save_posterior=False,  # only the learning curves are used
        )
        for s in strengths
        for lam in rationalities
        for manner in ("rude", "neutral")
    ]


def slowdown(
    slow: pd.Series, fast: pd.Series, rng: np.random.Generator, n_boot: int = 2000
) -> tuple[float, float, float]:
    """Ratio of mean interactions-to-95% (inconsistent / consistent) with a paired bootstrap
    95% interval over simulations (simulation ``i`` of both conditions shares its random
    numbers). Runs that never reached 95% count at their last interaction + 1."""
    slow, fast = slow.sort_index(), fast.sort_index()
    if not slow.index.equals(fast.index):
        raise ValueError("slowdown: the two conditions must have the same simulations")
    a, b = slow.to_numpy(float), fast.to_numpy(float)
    ratio = a.mean() / b.mean()
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = a[idx].mean(1) / b[idx].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(ratio), float(lo), float(hi)


def belief_deficit(
    slow: pd.DataFrame, fast: pd.DataFrame, horizon: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Mean over the first ``horizon`` interactions of ``p_true(consistent) - p_true
    (inconsistent)``, averaged over simulations, with a paired bootstrap 95% interval.

    The interactions-to-95% count moves in whole interactions, so a misleading tone only
    delays it when it holds the curve below 0.95 at the crossing; this measures the lost
    belief all along the curve.
    """
    key = ["sim", "interactions"]
    both = slow.merge(fast, on=key, suffixes=("_slow", "_fast"), validate="one_to_one")
    both = both[both["interactions"] <= horizon]
    per_sim = (both["p_true_fast"] - both["p_true_slow"]).groupby(both["sim"]).mean().to_numpy()
    idx = rng.integers(0, len(per_sim), size=(2000, len(per_sim)))
    lo, hi = np.percentile(per_sim[idx].mean(1), [2.5, 97.5])
    return float(per_sim.mean()), float(lo), float(hi)


def contrasts(hypotheses):
    """``(hypothesis, inconsistent group, its consistent counterpart)`` for every contrast."""
    for h in hypotheses:
        for group, (_, _, consistent) in GROUPS.items():
            if consistent is not None:
                yield h, group, consistent


def reach_by_condition(reach: pd.DataFrame) -> dict[str, pd.Series]:
    """:func:`reach_table` split by condition: interactions per simulation."""
    return {c: g.set_index("sim")["interactions_to_95"] for c, g in reach.groupby("condition")}


def reach_table(results, total_interactions: int, level: float = 0.95) -> pd.DataFrame:
    """Per condition and simulation: interactions to reach ``level`` (never: total + 1)."""
    rows = []
    for name, result in results.items():
        reach = interactions_to_reach(result.curve, level).fillna(total_interactions + 1)
        for sim, n in reach.items():
            rows.append({"condition": name, "sim": sim, "interactions_to_95": n})
    return pd.DataFrame(rows)


def slowdown_by_level(
    results, hypotheses, total_interactions: int, rng, schedule: str
) -> pd.DataFrame:
    """The slowdown ratio at other posterior levels than 0.95: does its direction depend on
    where the line is drawn? (At 0.99 every group gets there at interaction 10, once every
    user seen in the epoch has proposed, so the ratio is 1 by construction.) The bootstrap
    draws differ from :func:`slowdown`'s, so the 0.95 row's interval can differ from
    ``slowdown.csv``'s in the third decimal."""
    rows = []
    for level in LEVELS:
        by_cond = reach_by_condition(reach_table(results, total_interactions, level))
        for h, group, consistent in contrasts(hypotheses):
            r, lo, hi = slowdown(by_cond[label(group, h)], by_cond[label(consistent, h)], rng)
            rows.append(
                {
                    "level": level,
                    "hypothesis": h,
                    "group": group,
                    "ratio": r,
                    "lo": lo,
                    "hi": hi,
                    "schedule": schedule,
                }
            )
    return pd.DataFrame(rows)


def hypotheses_of(args) -> tuple[str, ...]:
    return (args.hypothesis,) if args.hypothesis else ("stereotyped", "neutral")


def sweep_axes(args) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The sweep's stereotype strengths and rationalities."""
    if args.quick:
        return (0.0, 0.8), (1.0, 4.0)
    return SWEEP_STRENGTHS, SWEEP_RATIONALITIES


def plan(args) -> Plan:
    """The conditions ``scai run inconsistency`` computes, with their settings and cache: the
    main conditions first, which suffice for the offered-share figure (:func:`report_early`),
    then the sweep's. The assistant fits exactly whatever ``--engine`` says (an option of the
    other experiments): what this one measures, the learning curves, are exact posteriors."""
    main = main_conditions(hypotheses_of(args))
    conds = main + sweep_conditions(*sweep_axes(args))
    settings = settings_from(args, curve=True, engine="exact")
    return Plan(conds, settings, cache_dir(args, NAME), early=len(main))


def report_early(args) -> Path:
    """The offered-share figure, of the main conditions alone: ``scai run all`` draws it as soon
    as they are stored, while the workers compute the sweep's, and :func:`main` takes it up
    (``early``) instead of drawing it after the last condition, when the workers sit idle."""
    first = plan(args).first()
    names = [c.name for c in first.conditions]
    return share_figure(args, main_summary(first.run(args.workers), names), names)


def main_summary(results, names: list[str]) -> pd.DataFrame:
    """The offered shares per epoch of the main conditions ``names``."""
    return pd.concat([summarise(NAME, results[n], n.split(" | ")[1]) for n in names])


def share_figure(args, summary: pd.DataFrame, names: list[str]) -> Path:
    """``inconsistency_share.png``: the offered shares of the main conditions ``names``."""
    original = {label(g, "stereotyped"): v for g, v in INCONSISTENCY.items()}
    titles = {n: "{} users\nassistant's prior: {}".format(*n.split(" | ")) for n in names}
    return offered_share_panels(
        summary,
        original,
        figure_dir(args) / "inconsistency_share.png",
        "Inconsistent language: offered share per epoch (95% CI over simulations)",
        conditions=names,
        titles=titles,
    )


def main(args, early: Path | None = None) -> ExperimentResult:
    """``scai run inconsistency``; ``early``: the offered-share figure, drawn already
    (:func:`report_early`)."""
    hypotheses = hypotheses_of(args)
    strengths, rationalities = sweep_axes(args)
    out = output_dir(args, NAME)
    planned = plan(args)
    settings = planned.settings
    results = planned.run(args.workers)
    total = settings.epochs * (settings.rounds + 2)
    reach = reach_table(results, total)
    write_csv_atomic(reach, out / "interactions_to_95.csv")
    rng = np.random.default_rng(args.seed)
    by_cond = reach_by_condition(reach)

    checks, numbers, ratios = {}, {}, []
    for h, group, consistent in contrasts(hypotheses):
        r, lo, hi = slowdown(by_cond[label(group, h)], by_cond[label(consistent, h)], rng)
        d, d_lo, d_hi = belief_deficit(
            results[label(group, h)].curve,
            results[label(consistent, h)].curve,
            settings.rounds + 2,
            rng,
        )
        ratios.append(
            {
                "hypothesis": h,
                "group": group,
                "ratio": r,
                "lo": lo,
                "hi": hi,
                "deficit": d,
                "deficit_lo": d_lo,
                "deficit_hi": d_hi,
                "schedule": settings.schedule,
            }
        )
        numbers[f"{group} | {h}: epoch-1 belief deficit"] = d
        numbers[f"{group} | {h}: slowdown ratio"] = r
        numbers[f"{group} | {h}: 95% interval low"] = lo
        numbers[f"{group} | {h}: 95% interval high"] = hi
        for who in (group, consistent):
            mean = float(by_cond[label(who, h)].mean())
            numbers[f"{who} | {h}: mean interactions to 95%"] = mean
        if h == "stereotyped":
            checks[f"{group}: slower under stereotyped (interval above 1)"] = lo > 1
            checks[f"{group}: less belief in the true norm under stereotyped"] = d_lo > 0
        elif h == "neutral":
            # the same runs but for the tones, which neutral ignores: exact, not statistical
            checks[f"{group}: no slowdown under neutral (tones ignored: ratio exactly 1)"] = (
                r == lo == hi == 1
            )
            checks[f"{group}: no belief deficit under neutral (tones ignored: exactly 0)"] = (
                abs(d) < 1e-12 and abs(d_lo) < 1e-12 and abs(d_hi) < 1e-12
            )
    sweep = []
    for s in strengths:
        for lam in rationalities:
            slow = by_cond[f"sweep s={s} lam={lam} rude"]
            fast = by_cond[f"sweep s={s} lam={lam} neutral"]
            r, lo, hi = slowdown(slow, fast, rng)
            sweep.append(
                {"stereotype_strength": s, "rationality": lam, "ratio": r, "lo": lo, "hi": hi}
            )
    ratio_table = pd.DataFrame(ratios)
    sweep_table = pd.DataFrame(sweep)
    write_csv_atomic(ratio_table, out / "slowdown.csv")
    main_results = {n: r for n, r in results.items() if "sweep" not in n}
    by_level = slowdown_by_level(main_results, hypotheses, total, rng, settings.schedule)
    write_csv_atomic(by_level, out / "slowdown_by_level.csv")
    write_csv_atomic(sweep_table, out / "sweep.csv")
    for row in by_level.itertuples():
        numbers[f"{row.group} | {row.hypothesis}: slowdown ratio at {row.level:g}"] = row.ratio
    for s, part in sweep_table.groupby("stereotype_strength"):
        numbers[f"sweep s={s:g}: lowest slowdown ratio"] = float(part["ratio"].min())
        numbers[f"sweep s={s:g}: highest slowdown ratio"] = float(part["ratio"].max())
    curves = pd.concat(
        [r.curve.assign(condition=name) for name, r in results.items() if "sweep" not in name]
    )
    write_csv_atomic(curves, out / "learning_curves.csv")

    main_names = [c.name for c in planned.first().conditions]
    summary = main_summary(results, main_names)
    write_summary(summary, out)
    keep_posterior(results[main_names[0]], out, main_names[0].split(" | ")[0])
    figures = [
        early if early is not None else share_figure(args, summary, main_names),
        plot_learning(
            curves,
            reach[reach.condition.isin(main_names)],
            sweep_table,
            figure_dir(args) / "inconsistency.png",
        ),
    ]
    report = format_checks(NAME, checks, numbers, quick=args.quick)
    report += f"\n  order of games within an epoch: {settings.schedule}"
    return ExperimentResult(NAME, summary, checks, numbers, figures, report)


def _split_label(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``group`` and ``hypothesis`` columns from a ``condition`` made by :func:`label`."""
    # split each distinct label once (a learning-curve table repeats 8 labels 8,000 times)
    names = frame.condition.unique()
    parts = {name: name.split(" | ") for name in names}
    return frame.assign(
        group=frame.condition.map({n: p[0] for n, p in parts.items()}),
        hypothesis=frame.condition.map({n: p[1] for n, p in parts.items()}),
    )


def plot_learning(curves: pd.DataFrame, reach: pd.DataFrame, sweep: pd.DataFrame, path):
    plt = pyplot()

    sns = seaborn()

    figure_style()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    curves = _split_label(curves)
    # The stereotyped prior's curves alone: under the neutral prior every group's curve lies
    # on its consistent counterpart's (the middle panel shows both priors). A run with one
    # hypothesis (--hypothesis) shows that one's.
    priors = curves.hypothesis.unique()
    shown = "stereotyped" if "stereotyped" in priors else priors[0]
    sns.lineplot(
        curves[curves.hypothesis == shown],
        x="interactions",
        y="p_true",
        hue="group",
        errorbar=("se", 1.96),  # normal 95% interval: a bootstrap per point takes ~20 s
        ax=axes[0],
    )
    axes[0].axhline(0.95, color="0.3", ls=":", lw=1)
    axes[0].set_xlim(0, 20)
    axes[0].set_ylabel("posterior probability of the true norm")
    axes[0].set_xlabel("interactions with users")
    axes[0].set_title(f"Learning curves, {shown} prior (mean, 95% CI)", y=TOP)
    axes[0].legend(fontsize=8, title="users", title_fontsize=8)
    reach = _split_label(reach)
    # The counts are small integers (4 to 8 at full size): means with intervals show the shift
    # that a box plot of a few values hides.
    sns.pointplot(
        reach,
        y="group",
        x="interactions_to_95",
        hue="hypothesis",
        errorbar=("se", 1.96),
        dodge=0.3 if reach.hypothesis.nunique() > 1 else False,  # seaborn divides by n - 1
        linestyle="none",
        capsize=0.2,
        ax=axes[1],
    )
    axes[1].set_xlabel("interactions to reach 95% on the true norm (mean, 95% CI)")
    axes[1].set_ylabel("")
    axes[1].set_title("Interactions needed, over simulations", y=TOP)
    pivot = sweep.pivot(index="stereotype_strength", columns="rationality", values="ratio")
    sns.heatmap(
        pivot.sort_index(ascending=False),
        annot=True,
        fmt=".2f",
        cmap="rocket_r",
        ax=axes[2],
        cbar_kws={"label": "slowdown (rude / neutral)"},
    )
    axes[2].set_xlabel("users' rationality (lambda)")
    axes[2].set_ylabel("stereotype strength s")
    axes[2].set_title("Altruistic users: when does rudeness slow learning?", y=TOP)
    fig.tight_layout()
    return save_figure(fig, path)
