"""What ``scai run original-logs`` checks, prints and draws.

The checks are the issue's, on the tones read from text (or, if that reader is not run, the
configured tones; with neither, no tones), from the paper's epoch 2 on (the first epoch the
assistant plays after seeing one):

* offers: scai's offered share (its expected offer) within 5 points of the users' in at least
  95% of (run, epoch) (and, a number beside it, how often one offer drawn from it would be);
* decisions: scai's decisions agree with the users' in at least 90% (mean agreement) where
  some norm can (:mod:`.decisions`: the best stationary policy's agreement, in hindsight, at
  least 0.9); where none can, within :data:`DECISION_TOLERANCE` of the best one's;
* beliefs: ``p_true_norm`` (the users' mean posterior probability that they propose by their
  configured policy) at least 0.9 in every epoch; under ``real_agents_stereotyped`` the
  inconsistent groups (altruistic + rude, selfish + sycophantic) from epoch 3, and they reach
  0.9 later than their neutral-manner counterparts (counted in user-user games seen, from the
  per-interaction curves of epoch 1), by epoch 3 at the latest;
* reading: with read tones, every condition's ``p_true_norm`` within :data:`READ_TOLERANCE` of
  the configured tones' run; and, where it is not, the reader's own mistakes (read tones
  against the configured ones heard through the reader's confusion matrix) within it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from scai.experiments.common import remove_earlier
from scai.experiments.original_logs.tones import LOG_TONES
from scai.experiments.plots import figure_style, pyplot, save_figure

INCONSISTENT = {
    "exp3/altruistic_rude": "exp3/altruistic_neutral",
    "exp3/selfish_sycophantic": "exp3/selfish_neutral",
}
STEREOTYPED = "real_agents_stereotyped"
#: The names of the figures :func:`write_figures` draws (one per experiment of the logs, and
#: the interaction curves): those it did not draw this run are removed.
FIGURES = ("original_logs_exp*.png", "original_logs_interactions.png")
#: How far read tones may move ``p_true_norm`` from the configured tones' run.
READ_TOLERANCE = 0.05
#: Where no norm agrees with 90% of the users' decisions: how far below the best one may be.
DECISION_TOLERANCE = 0.05
DECISION_TARGET = 0.9


def _tones(summary: pd.DataFrame) -> str:
    """The tones the checks and figures show: read where fitted, else the configured, else
    none (``--tones none`` alone gave no check, an empty table labelled config)."""
    fitted = set(summary["tones"])
    return next((t for t in LOG_TONES if t in fitted), "config")


def _scai_vs_users(summary: pd.DataFrame, tones: str) -> pd.DataFrame:
    """Per condition, hypothesis, sim and epoch: scai's and the users' share, agreement, belief."""
    part = summary[summary["tones"] == tones]
    scai = part[part["agent"] == "scai"]
    users = part[part["agent"] == "users"][
        ["condition", "hypothesis", "sim", "epoch", "offered_share"]
    ]
    return scai.merge(
        users, on=["condition", "hypothesis", "sim", "epoch"], suffixes=("", "_users")
    )


def _gpt4_vs_users(summary: pd.DataFrame) -> pd.DataFrame:
    """Per condition, sim and epoch: the GPT-4 assistant's offered share beside the users'."""
    keys = ["condition", "sim", "epoch"]
    gpt4 = summary[summary["agent"] == "gpt4"].drop_duplicates(keys)
    users = summary[summary["agent"] == "users"].drop_duplicates(keys)
    return gpt4[[*keys, "offered_share"]].merge(
        users[[*keys, "offered_share"]], on=keys, suffixes=("", "_users")
    )


def first_epoch_at(curve: pd.Series, level: float = 0.9) -> float:
    """The first epoch whose value reaches ``level`` and stays there (NaN if none)."""
    epochs = curve.index.to_numpy()
    ok = curve.to_numpy() >= level
    for i, epoch in enumerate(epochs):
        if ok[i:].all():
            return float(epoch)
    return float("nan")


def first_reached(curve: pd.DataFrame, level: float = 0.9) -> float:
    """The number of interactions after which the mean ``p_true_norm`` over runs reaches
    ``level`` and stays there; one more than the curve's length if it never does."""
    mean = curve.groupby("interactions")["p_true_norm"].mean()
    at = first_epoch_at(mean, level)
    return float(mean.index.max() + 1) if pd.isna(at) else at


def checks_and_numbers(
    summary: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    bounds: pd.DataFrame | None = None,
    gap: pd.DataFrame | None = None,
) -> tuple[dict, dict, str]:
    """The checks, the numbers behind them and the comparison table (markdown), from the
    summary, the per-interaction curves, the decision bounds (:mod:`.decisions`) and the
    decomposition of the read-versus-configured gap (``experiment.tone_gap``)."""
    tones = _tones(summary)
    best = (
        {} if bounds is None else dict(zip(bounds.condition, bounds.best_stationary, strict=True))
    )
    joined = _scai_vs_users(summary, tones)
    later = joined[joined["epoch"] >= 2]
    checks, numbers = {}, {}
    for (cond, hyp), part in later.groupby(["condition", "hypothesis"]):
        close = float((abs(part["offered_share"] - part["offered_share_users"]) <= 5).mean())
        agree = float(part["accept_agreement"].mean())
        curve = joined[(joined.condition == cond) & (joined.hypothesis == hyp)]
        p_true = curve.groupby("epoch")["p_true_norm"].mean()
        start = 3 if hyp == STEREOTYPED and cond in INCONSISTENT else 2
        numbers[f"{cond} | {hyp}: offers within 5 points (share of run-epochs)"] = close
        numbers[f"{cond} | {hyp}: a drawn offer within 5 points (expected share of run-epochs)"] = (
            float(part["offer_within_5"].mean())
        )
        numbers[f"{cond} | {hyp}: accept agreement"] = agree
        numbers[f"{cond} | {hyp}: epoch p_true_norm reaches 0.9"] = first_epoch_at(p_true)
        for epoch, value in p_true.items():
            numbers[f"{cond} | {hyp}: p_true_norm at epoch {epoch}"] = float(value)
        checks[
            f"{cond} | {hyp}: expected offer (mean of its offers) within 5 points of the users' "
            "in >= 95% (epochs 2-5)"
        ] = close >= 0.95
        numbers[f"{cond} | {hyp}: decision agreement (more probable decision)"] = float(
            part["decision_agreement"].mean()
        )
        bound = best.get(cond, 1.0)
        if bound >= DECISION_TARGET:
            checks[f"{cond} | {hyp}: decisions agree >= 90% (epochs 2-5)"] = agree >= 0.9
        else:
            checks[
                f"{cond} | {hyp}: decisions agree within {DECISION_TOLERANCE} of the best "
                f"norm's {bound:.3f} (no norm reaches 90%; epochs 2-5)"
            ] = agree >= bound - DECISION_TOLERANCE
        checks[f"{cond} | {hyp}: p_true_norm >= 0.9 from epoch {start}"] = bool(
            (p_true[p_true.index >= start] >= 0.9).all()
        )
    gpt4 = _gpt4_vs_users(summary)
    for cond, part in gpt4[gpt4["epoch"] >= 2].groupby("condition"):
        close = float((abs(part["offered_share"] - part["offered_share_users"]) <= 5).mean())
        numbers[f"{cond} | GPT-4: offers within 5 points (share of run-epochs)"] = close
    if bounds is not None:
        for row in bounds.itertuples():
            for name in ("best_stationary", "stationary_run", "past_majority"):
                numbers[f"{row.condition} | users' decisions: {name} agreement"] = float(
                    getattr(row, name)
                )
    reached = {}
    if curves is not None:
        here = curves[(curves.hypothesis == STEREOTYPED) & (curves.tones == tones)]
        for cond, curve in here.groupby("condition"):
            reached[cond] = first_reached(curve)
            key = f"{cond} | {STEREOTYPED}: interactions until p_true_norm reaches 0.9"
            numbers[key] = reached[cond]
    for cond, counterpart in INCONSISTENT.items():
        at = numbers.get(f"{cond} | {STEREOTYPED}: epoch p_true_norm reaches 0.9")
        if at is None or cond not in reached or counterpart not in reached:
            continue
        checks[
            f"{cond} | {STEREOTYPED}: reaches 0.9 later than {counterpart} (in interactions), "
            "by epoch 3"
        ] = bool(reached[cond] > reached[counterpart] and at <= 3)
    if {"read", "config"} <= set(summary["tones"]):
        scai = summary[summary["agent"] == "scai"]
        means = scai.groupby(["condition", "hypothesis", "epoch", "tones"])["p_true_norm"].mean()
        diff = (means.xs("read", level="tones") - means.xs("config", level="tones")).abs()
        numbers["max |p_true_norm read - config| (condition-epochs)"] = float(diff.max())
        checks[f"read tones: p_true_norm within {READ_TOLERANCE} of the configured tones'"] = bool(
            diff.max() <= READ_TOLERANCE
        )
        if gap is not None and len(gap):
            mistakes = float((gap["read"] - gap["config_heard_by_reader"]).abs().max())
            channel = float((gap["config_heard_by_reader"] - gap["config"]).abs().max())
            numbers["max |p_true_norm read - config heard by the reader| (reader's mistakes)"] = (
                mistakes
            )
            numbers["max |p_true_norm config heard by the reader - config| (its channel)"] = channel
            checks[f"read tones: the reader's mistakes move p_true_norm by <= {READ_TOLERANCE}"] = (
                mistakes <= READ_TOLERANCE
            )
    replies = _replies(summary, tones)
    for (cond, hyp), agree in replies["scai"].items():
        numbers[f"{cond} | {hyp}: agreement with the users' replies to GPT-4's offers"] = agree
    for cond, rate in replies["accepted"].items():
        numbers[f"{cond} | users accept GPT-4's offers"] = rate
    table = comparison_table(summary, tones)
    if bounds is not None:
        table += "\n" + decision_table(summary, bounds, tones)
    if len(replies["scai"]):
        table += "\n" + replies_table(replies)
    return checks, numbers, table


def _replies(summary: pd.DataFrame, tones: str) -> dict[str, pd.Series]:
    """Epochs 2-5, held out: per condition the share of GPT-4's offers the users accepted
    (``accepted``) and GPT-4's mean offered share (``offered``); per condition and hypothesis
    scai's mean ``reply_agreement`` (``scai``; none where the fits scored no reply)."""
    later = summary[(summary["epoch"] >= 2) & (summary["tones"] == tones)]
    gpt4 = later[later["agent"] == "gpt4"].drop_duplicates(["condition", "sim", "epoch"])
    scai = later[later["agent"] == "scai"]

    def mean(rows, keys, column):  # (a summary without GPT-4's rows: none)
        if column not in rows.columns:
            return pd.Series(dtype=float)
        return rows.groupby(keys)[column].mean().dropna()

    return {
        "accepted": mean(gpt4, "condition", "reply_accepted"),
        "offered": mean(gpt4, "condition", "offered_share"),
        "scai": mean(scai, ["condition", "hypothesis"], "reply_agreement"),
    }


def replies_table(replies: dict[str, pd.Series]) -> str:
    """Per condition, epochs 2-5: GPT-4's mean offered share, how often the users accepted its
    offers, and scai's agreement with those replies (held out: not fitted), markdown."""
    lines = [
        "Replies to GPT-4's offers, epochs 2-5 (held out: scai fits the user-user games only): "
        "GPT-4's offered share, how often the users accepted, and scai's agreement with their "
        "decisions (its acting probability).",
        "",
        "| condition | GPT-4 offered | users accept | scai, real_agents | scai, stereotyped |",
        "|---|---|---|---|---|",
    ]
    scai = replies["scai"]

    def cell(cond, hyp):
        return f"{scai.loc[(cond, hyp)]:.3f}" if (cond, hyp) in scai.index else ""

    for cond in sorted(replies["accepted"].index):
        lines.append(
            f"| {cond} | {replies['offered'][cond]:.1f} | {replies['accepted'][cond]:.3f} | "
            f"{cell(cond, 'real_agents')} | {cell(cond, STEREOTYPED)} |"
        )
    return "\n".join(lines) + "\n"


def decision_table(summary: pd.DataFrame, bounds: pd.DataFrame, tones: str) -> str:
    """Per condition, epochs 2-5: the users' acceptance rate, the best agreement any norm
    reaches in hindsight (:mod:`.decisions`), the past-majority learner's, and scai's (its
    acting probability, and its more probable decision), markdown."""
    part = summary[(summary.tones == tones) & (summary.agent == "scai") & (summary.epoch >= 2)]
    scai = part.groupby(["condition", "hypothesis"])[["accept_agreement", "decision_agreement"]]
    scai = scai.mean()
    lines = [
        "Decisions, epochs 2-5: agreement with the users' accept/reject decisions. Upper "
        "bounds: the best norm in hindsight (one decision per offer and run, per offer and "
        "pot, or per offer and currency); past majority: the run's earlier decisions.",
        "",
        "| condition | users accept | best norm | one norm per run | past majority | "
        "scai, real_agents | scai, stereotyped | more probable decision, real_agents | "
        "more probable decision, stereotyped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(cond, hyp, column):
        return f"{scai.loc[(cond, hyp), column]:.3f}" if (cond, hyp) in scai.index else ""

    for row in bounds.sort_values("condition").itertuples():
        c = row.condition
        lines.append(
            f"| {c} | {row.accept_rate:.3f} | {row.best_stationary:.3f} | "
            f"{row.stationary_run:.3f} | {row.past_majority:.3f} | "
            f"{cell(c, 'real_agents', 'accept_agreement')} | "
            f"{cell(c, STEREOTYPED, 'accept_agreement')} | "
            f"{cell(c, 'real_agents', 'decision_agreement')} | "
            f"{cell(c, STEREOTYPED, 'decision_agreement')} |"
        )
    return "\n".join(lines) + "\n"


def comparison_table(summary: pd.DataFrame, tones: str) -> str:
    """Condition by condition: users, GPT-4 and scai (each hypothesis) offered share per
    epoch, and scai's p_true_norm (markdown)."""
    lines = [
        f"Tones: {tones}. Offered share (% of the pot), mean over runs, epochs 1-5.",
        "",
        "| condition | users | GPT-4 | scai, real_agents | scai, stereotyped | "
        "p_true_norm, real_agents | p_true_norm, stereotyped |",
        "|---|---|---|---|---|---|---|",
    ]
    part = summary[summary["tones"] == tones]

    def series(cond, agent, column, hyp=None):
        rows = part[(part.condition == cond) & (part.agent == agent)]
        if hyp is not None:
            rows = rows[rows.hypothesis == hyp]
        values = rows.groupby("epoch")[column].mean()
        return ", ".join(f"{v:.1f}" if column == "offered_share" else f"{v:.2f}" for v in values)

    for cond in sorted(part["condition"].unique()):
        lines.append(
            f"| {cond} | {series(cond, 'users', 'offered_share')} | "
            f"{series(cond, 'gpt4', 'offered_share')} | "
            f"{series(cond, 'scai', 'offered_share', 'real_agents')} | "
            f"{series(cond, 'scai', 'offered_share', STEREOTYPED)} | "
            f"{series(cond, 'scai', 'p_true_norm', 'real_agents')} | "
            f"{series(cond, 'scai', 'p_true_norm', STEREOTYPED)} |"
        )
    return "\n".join(lines) + "\n"


def write_figures(
    summary: pd.DataFrame, figures: Path, curves: pd.DataFrame | None = None
) -> list[Path]:
    """Per experiment: offered share by epoch (users, GPT-4, scai under each hypothesis) and
    scai's posterior on the true norm, one column per condition; and, given ``curves``, the
    per-interaction curves of epoch 1 (:func:`interaction_figure`)."""
    plt = pyplot()

    figure_style()

    paths = []
    if curves is not None and len(curves):
        paths.append(interaction_figure(curves, figures))

    tones = _tones(summary)
    part = summary[summary["tones"] == tones].copy()
    part["experiment"] = part["condition"].str.split("/").str[0]
    scai_lines = (("real_agents", "C0-o"), (STEREOTYPED, "C1:s"))  # dotted: both show
    for experiment, rows in part.groupby("experiment"):
        conds = sorted(rows["condition"].unique())
        cols = min(3, len(conds))
        grid_rows = -(-len(conds) // cols)  # each condition: its shares above its beliefs
        fig, axes = plt.subplots(
            2 * grid_rows,
            cols,
            figsize=(4.2 * cols, 5.0 * grid_rows + 0.8),
            squeeze=False,
            sharex=True,
            gridspec_kw={"height_ratios": [3, 2] * grid_rows},
        )
        for j, cond in enumerate(conds):
            row, col = divmod(j, cols)
            here = rows[rows.condition == cond]
            ax, ax2 = axes[2 * row, col], axes[2 * row + 1, col]
            for label, agent, hyp, style in (
                ("users", "users", None, "k-"),
                ("GPT-4 assistant (its logs)", "gpt4", None, "C3--"),
                *((f"scai, {h}", "scai", h, st) for h, st in scai_lines),
            ):
                sel = here[here.agent == agent]
                if hyp is not None:
                    sel = sel[sel.hypothesis == hyp]
                else:
                    sel = sel.drop_duplicates(["sim", "epoch"])
                curve = sel.groupby("epoch")["offered_share"].mean()
                ax.plot(curve.index, curve.to_numpy(), style, label=label, ms=4)
            ax.set_title(cond.split("/")[1].replace("_", " + "), fontsize=10)
            ax.set_ylim(-3, 103)
            for hyp, style in scai_lines:
                sel = here[(here.agent == "scai") & (here.hypothesis == hyp)]
                curve = sel.groupby("epoch")["p_true_norm"].mean()
                ax2.plot(curve.index, curve.to_numpy(), style, ms=4)
            ax2.axhline(0.9, color="grey", ls=":", lw=1)
            ax2.set_ylim(0, 1.02)
            if col == 0:
                ax.set_ylabel("offered share (%)")
                ax2.set_ylabel("scai: P(true norm)")
            if row == grid_rows - 1 or j + cols >= len(conds):
                ax2.set_xlabel("epoch")
                ax2.xaxis.set_tick_params(labelbottom=True)
        for j in range(len(conds), grid_rows * cols):
            row, col = divmod(j, cols)
            axes[2 * row, col].set_visible(False)
            axes[2 * row + 1, col].set_visible(False)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False)
        fig.suptitle(
            f"Original study's GPT-4 users ({experiment}): users, GPT-4 and scai ({tones} tones); "
            "dotted: P = 0.9"
        )
        fig.tight_layout(rect=(0, 0.8 / (5.0 * grid_rows + 0.8), 1, 0.97))
        paths.append(save_figure(fig, figures / f"original_logs_{experiment}.png"))
        plt.close(fig)
    # an earlier run's figures of what this one did not fit (no curves with --tones none, no
    # experiment 1 with --quick) are not this run's: they would sit beside its tables
    remove_earlier(Path(figures), FIGURES, paths)
    return paths


def interaction_figure(curves: pd.DataFrame, figures: Path) -> Path:
    """scai's mean ``p_true_norm`` after each user-user game of epoch 1 under the stereotype,
    each inconsistent condition beside its neutral-manner counterpart."""
    plt = pyplot()

    figure_style()

    fig, axes = plt.subplots(
        1, len(INCONSISTENT), figsize=(4.2 * len(INCONSISTENT), 3.4), sharey=True
    )
    shown = curves[curves.hypothesis == STEREOTYPED].groupby(["condition", "interactions"])
    low = float(shown["p_true_norm"].mean().min())  # the axis starts near the lowest mean
    for ax, (cond, counterpart) in zip(axes, INCONSISTENT.items(), strict=True):
        for name, style in ((counterpart, "C0-o"), (cond, "C3-s")):
            rows = curves[(curves.condition == name) & (curves.hypothesis == STEREOTYPED)]
            mean = rows.groupby("interactions")["p_true_norm"].mean()
            label = name.split("/")[1].replace("_", " + ")
            ax.plot(mean.index, mean.to_numpy(), style, ms=4, label=label)
        ax.axhline(0.9, color="grey", ls=":", lw=1)
        ax.set_ylim(max(0.0, math.floor(low * 10) / 10 - 0.05), 1.01)
        ax.set_xlabel("user-user games seen (epoch 1)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("scai: P(true norm)")
    tones = ", ".join(sorted(curves["tones"].unique()))
    fig.suptitle(
        f"Original study's GPT-4 users: scai ({STEREOTYPED}) within epoch 1 ({tones} tones)",
        fontsize=12,
    )
    fig.tight_layout()
    path = save_figure(fig, figures / "original_logs_interactions.png")
    plt.close(fig)
    return path
