"""What ``scai run original-logs`` checks, prints and draws.

The checks are the issue's, on the tones read from text (or, if that reader is not run, the
configured tones), from the paper's epoch 2 on (the first epoch the assistant plays after
seeing one):

* offers: scai's offered share within 5 points of the users' in at least 95% of (run, epoch);
* decisions: scai's decisions agree with the users' in at least 90% (mean agreement);
* beliefs: ``p_true_norm`` (the users' mean posterior probability that they propose by the
  configured policy) at least 0.9 in every epoch; under ``real_agents_stereotyped`` the
  inconsistent groups (altruistic + rude, selfish + sycophantic) from epoch 3, and they reach
  0.9 later than their neutral-manner counterparts, by epoch 3 at the latest;
* reading: with read tones, every condition's ``p_true_norm`` within 0.05 of the configured
  tones' run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scai.experiments.plots import save_figure

INCONSISTENT = {
    "exp3/altruistic_rude": "exp3/altruistic_neutral",
    "exp3/selfish_sycophantic": "exp3/selfish_neutral",
}
STEREOTYPED = "real_agents_stereotyped"


def _tones(summary: pd.DataFrame) -> str:
    return "read" if "read" in set(summary["tones"]) else "config"


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


def checks_and_numbers(summary: pd.DataFrame) -> tuple[dict, dict, str]:
    """The checks, the numbers behind them and the comparison table (markdown)."""
    tones = _tones(summary)
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
        numbers[f"{cond} | {hyp}: accept agreement"] = agree
        numbers[f"{cond} | {hyp}: epoch p_true_norm reaches 0.9"] = first_epoch_at(p_true)
        for epoch, value in p_true.items():
            numbers[f"{cond} | {hyp}: p_true_norm at epoch {epoch}"] = float(value)
        checks[f"{cond} | {hyp}: offers within 5 points in >= 95% (epochs 2-5)"] = close >= 0.95
        checks[f"{cond} | {hyp}: decisions agree >= 90% (epochs 2-5)"] = agree >= 0.9
        checks[f"{cond} | {hyp}: p_true_norm >= 0.9 from epoch {start}"] = bool(
            (p_true[p_true.index >= start] >= 0.9).all()
        )
    gpt4 = _gpt4_vs_users(summary)
    for cond, part in gpt4[gpt4["epoch"] >= 2].groupby("condition"):
        close = float((abs(part["offered_share"] - part["offered_share_users"]) <= 5).mean())
        numbers[f"{cond} | GPT-4: offers within 5 points (share of run-epochs)"] = close
    for cond, counterpart in INCONSISTENT.items():
        at = numbers.get(f"{cond} | {STEREOTYPED}: epoch p_true_norm reaches 0.9")
        base = numbers.get(f"{counterpart} | {STEREOTYPED}: epoch p_true_norm reaches 0.9")
        if at is not None and base is not None:
            checks[f"{cond} | {STEREOTYPED}: reaches 0.9 later than {counterpart}, by epoch 3"] = (
                bool(at > base and at <= 3)
            )
    if {"read", "config"} <= set(summary["tones"]):
        scai = summary[summary["agent"] == "scai"]
        means = scai.groupby(["condition", "hypothesis", "epoch", "tones"])["p_true_norm"].mean()
        gap = (means.xs("read", level="tones") - means.xs("config", level="tones")).abs()
        numbers["max |p_true_norm read - config| (condition-epochs)"] = float(gap.max())
        checks["read tones: p_true_norm within 0.05 of the configured tones'"] = bool(
            gap.max() <= 0.05
        )
    return checks, numbers, comparison_table(summary, tones)


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


def write_figures(summary: pd.DataFrame, figures: Path) -> list[Path]:
    """Per experiment: offered share by epoch (users, GPT-4, scai under each hypothesis) and
    scai's posterior on the true norm, one column per condition."""
    import matplotlib.pyplot as plt

    tones = _tones(summary)
    part = summary[summary["tones"] == tones].copy()
    part["experiment"] = part["condition"].str.split("/").str[0]
    paths = []
    for experiment, rows in part.groupby("experiment"):
        conds = sorted(rows["condition"].unique())
        fig, axes = plt.subplots(2, len(conds), figsize=(3.2 * len(conds), 5.6), squeeze=False)
        for j, cond in enumerate(conds):
            here = rows[rows.condition == cond]
            ax = axes[0, j]
            for label, agent, hyp, style in (
                ("users", "users", None, "k-"),
                ("GPT-4", "gpt4", None, "C3--"),
                ("scai", "scai", "real_agents", "C0-o"),
                ("scai, stereotyped", "scai", STEREOTYPED, "C1-s"),
            ):
                sel = here[here.agent == agent]
                if hyp is not None:
                    sel = sel[sel.hypothesis == hyp]
                else:
                    sel = sel.drop_duplicates(["sim", "epoch"])
                curve = sel.groupby("epoch")["offered_share"].mean()
                ax.plot(curve.index, curve.to_numpy(), style, label=label, ms=4)
            ax.set_title(cond.split("/")[1].replace("_", " + "), fontsize=9)
            ax.set_ylim(-3, 103)
            ax2 = axes[1, j]
            for hyp, style in (("real_agents", "C0-o"), (STEREOTYPED, "C1-s")):
                sel = here[(here.agent == "scai") & (here.hypothesis == hyp)]
                curve = sel.groupby("epoch")["p_true_norm"].mean()
                ax2.plot(curve.index, curve.to_numpy(), style, ms=4, label=hyp)
            ax2.axhline(0.9, color="grey", ls=":", lw=1)
            ax2.set_ylim(0, 1.02)
            ax2.set_xlabel("epoch")
        axes[0, 0].set_ylabel("offered share (% of pot)")
        axes[1, 0].set_ylabel("scai: P(true norm)")
        axes[0, 0].legend(fontsize=7)
        axes[1, 0].legend(fontsize=7)
        fig.suptitle(
            f"Original study's GPT-4 users ({experiment}): users, GPT-4 and scai ({tones} tones)"
        )
        fig.tight_layout()
        paths.append(save_figure(fig, figures / f"original_logs_{experiment}.png"))
        plt.close(fig)
    return paths
