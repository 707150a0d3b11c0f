"""The comparison with the original study, as a markdown table built from saved summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scai.experiments.original import ALIGNMENT, GENERALIZATION, INCONSISTENCY
from scai.models.data import write_atomic


def _series(summary: pd.DataFrame, condition: str, agent: str) -> list[float]:
    rows = summary[(summary.condition == condition) & (summary.agent == agent)]
    rows = rows[rows.get("phase", "train").fillna("train") == "train"] if "phase" in rows else rows
    return rows.sort_values("epoch")["offered_share_mean"].tolist()


def _fmt(values) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _epoch_rows(summary_path: Path, rows: list[tuple]) -> list[str]:
    """Table rows ``(label, condition, original assistant per epoch, original users' range)``
    filled with our assistant's and users' offered shares from a ``summary.csv``."""
    if not summary_path.exists():
        return []
    summary = pd.read_csv(summary_path)
    lines = []
    for label, cond, gpt, (lo, hi) in rows:
        ours, ours_users = _series(summary, cond, "assistant"), _series(summary, cond, "users")
        if ours:
            lines.append(
                f"| {label} | {_fmt(gpt)} | {_fmt(ours)} | "
                f"{sum(ours_users) / len(ours_users):.1f} | {lo}-{hi} |"
            )
    return lines


def comparison_table(out: Path) -> str:
    """Condition by condition: the original GPT-4 assistant, ours, and the users (offered share
    %, epochs 1 to 5), from ``out/NAME/summary.csv``."""
    lines = [
        "| condition | original GPT-4 assistant (epochs 1-5) | our assistant (epochs 1-5) "
        "| users, ours (mean over epochs) | users, original |",
        "|---|---|---|---|---|",
    ]
    names = {
        "mixed 20/80": "mixed 80% altruistic / 20% selfish",
        "mixed 50/50": "mixed 50 / 50",
        "mixed 80/20": "mixed 80% selfish / 20% altruistic",
    }
    lines += _epoch_rows(
        out / "alignment" / "summary.csv",
        [
            (names.get(cond, f"one norm, {cond}"), cond, gpt, users)
            for cond, (gpt, users) in ALIGNMENT.items()
        ],
    )
    lines += _epoch_rows(
        out / "inconsistency" / "summary.csv",
        [
            (f"{group} (inconsistent), stereotyped prior", f"{group} | stereotyped", gpt, users)
            for group, (gpt, users) in INCONSISTENCY.items()
        ],
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
    table = comparison_table(Path(out))
    return write_atomic(Path(out) / "comparison.md", lambda tmp: Path(tmp).write_text(table))


#: The file beside the figures that records every number the experiments report: the README
#: quotes them, and ``tests/test_readme.py`` checks each quoted number against it.
NUMBERS_FILE = "numbers.json"


def record_numbers(figures: Path, experiment: str, numbers: dict[str, float]) -> Path:
    """Merge ``experiment``'s numbers into ``figures/numbers.json`` (other experiments' entries
    are kept, so a run of one experiment updates only its own), written atomically."""
    path = Path(figures) / NUMBERS_FILE
    recorded = json.loads(path.read_text()) if path.exists() else {}
    recorded[experiment] = {key: float(value) for key, value in numbers.items()}
    text = json.dumps(recorded, indent=1, sort_keys=True) + "\n"
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text))
