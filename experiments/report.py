"""The comparison with the original study, as a markdown table built from saved summaries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.original import ALIGNMENT, GENERALIZATION, INCONSISTENCY


def _series(summary: pd.DataFrame, condition: str, agent: str) -> list[float]:
    rows = summary[(summary.condition == condition) & (summary.agent == agent)]
    rows = rows[rows.get("phase", "train").fillna("train") == "train"] if "phase" in rows else rows
    return rows.sort_values("epoch")["offered_share_mean"].tolist()


def _fmt(values) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def comparison_table(out: Path) -> str:
    """Condition by condition: the original GPT-4 assistant, ours, and the users (offered share
    %, epochs 1 to 5), from ``out/NAME/summary.csv``."""
    lines = [
        "| condition | original GPT-4 assistant (epochs 1-5) | our assistant (epochs 1-5) "
        "| users, ours (mean over epochs) | users, original |",
        "|---|---|---|---|---|",
    ]
    alignment = out / "alignment" / "summary.csv"
    if alignment.exists():
        s = pd.read_csv(alignment)
        names = {
            "mixed 20/80": "mixed 80% altruistic / 20% selfish",
            "mixed 50/50": "mixed 50 / 50",
            "mixed 80/20": "mixed 80% selfish / 20% altruistic",
        }
        for cond, (gpt, users) in ALIGNMENT.items():
            ours, ours_users = _series(s, cond, "assistant"), _series(s, cond, "users")
            if ours:
                lines.append(
                    f"| {names.get(cond, 'one norm, ' + cond)} | {_fmt(gpt)} | {_fmt(ours)} | "
                    f"{sum(ours_users) / len(ours_users):.1f} | {users[0]}-{users[1]} |"
                )
    inconsistency = out / "inconsistency" / "summary.csv"
    if inconsistency.exists():
        s = pd.read_csv(inconsistency)
        for group, (gpt, users) in INCONSISTENCY.items():
            cond = f"{group} | stereotyped"
            ours, ours_users = _series(s, cond, "assistant"), _series(s, cond, "users")
            if ours:
                lines.append(
                    f"| {group} (inconsistent), stereotyped prior | {_fmt(gpt)} | {_fmt(ours)} "
                    f"| {sum(ours_users) / len(ours_users):.1f} | {users[0]}-{users[1]} |"
                )
    generalization = out / "generalization" / "test_offers.csv"
    if generalization.exists():
        t = pd.read_csv(generalization)
        for hyp, part in t.groupby("hypothesis", sort=False):
            id_share = part.loc[part.currency == "dollars", "share"].mean()
            ood_share = part.loc[part.currency != "dollars", "share"].mean()
            lines.append(
                f"| OOD test, selfish on dollars, `{hyp}`: ID / OOD | "
                f"{GENERALIZATION['in_distribution']} / {GENERALIZATION['out_of_distribution']} "
                f"| {id_share:.1f} / {ood_share:.1f} | - | {GENERALIZATION['users']} |"
            )
    return "\n".join(lines) + "\n"


def write_comparison(out: Path) -> Path:
    path = Path(out) / "comparison.md"
    path.write_text(comparison_table(Path(out)))
    return path
