"""The comparison with the original study, as a markdown table built from saved summaries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from scai.experiments.original import ALIGNMENT, GENERALIZATION, INCONSISTENCY
from scai.models.errors import RunError
from scai.models.writing import write_atomic


def _series(summary: pd.DataFrame, condition: str, agent: str) -> list[float]:
    rows = summary[(summary.condition == condition) & (summary.agent == agent)]
    rows = rows[rows.get("phase", "train").fillna("train") == "train"] if "phase" in rows else rows
    return rows.sort_values("epoch")["offered_share_mean"].tolist()


def _fmt(values) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _epoch_rows(summary_path: Path, rows: list[tuple], usual: str | None = None) -> list[str]:
    """Table rows ``(label, condition, original assistant per epoch, original users' range)``
    filled with our assistant's and users' offered shares from a ``summary.csv``; where the
    summary's hypothesis is not ``usual`` (a run with ``--hypothesis``), each label names it."""
    if not summary_path.exists():
        return []
    summary = pd.read_csv(summary_path)
    hypotheses = set(summary["hypothesis"]) if "hypothesis" in summary else set()
    named = f", `{min(hypotheses)}` prior" if usual and hypotheses - {usual} else ""
    lines = []
    for label, cond, gpt, (lo, hi) in rows:
        label += named
        ours, ours_users = _series(summary, cond, "assistant"), _series(summary, cond, "users")
        if ours:
            # the header says epochs 1-5 (the study's); a shorter run (--quick) says its own
            shown = _fmt(ours) if len(ours) == len(gpt) else f"{_fmt(ours)} (epochs 1-{len(ours)})"
            lines.append(
                f"| {label} | {_fmt(gpt)} | {shown} | "
                f"{sum(ours_users) / len(ours_users):.1f} | {lo}-{hi} |"
            )
    return lines


#: The study's experiments (:data:`scai.experiments.registry.STUDY`) in the table's order.
TABLE_ORDER = ("alignment", "inconsistency", "generalization")

HEADER = (
    "| condition | original GPT-4 assistant (epochs 1-5) | our assistant (epochs 1-5) "
    "| users, ours (mean over epochs) | users, original |\n|---|---|---|---|---|"
)
GENERALIZATION_LABEL = "OOD test, selfish on dollars, "
#: The mixed groups' conditions are named by their share of selfish users (alignment.MIXES).
MIXED_LABELS = {
    "mixed 20/80": "mixed 80% altruistic / 20% selfish",
    "mixed 50/50": "mixed 50 / 50",
    "mixed 80/20": "mixed 80% selfish / 20% altruistic",
}


def _alignment_rows() -> list[tuple]:
    return [
        (MIXED_LABELS.get(cond, f"one norm, {cond}"), cond, gpt, users)
        for cond, (gpt, users) in ALIGNMENT.items()
    ]


def _inconsistency_rows() -> list[tuple]:
    return [
        (f"{group} (inconsistent), stereotyped prior", f"{group} | stereotyped", gpt, users)
        for group, (gpt, users) in INCONSISTENCY.items()
    ]


#: The file of each compared experiment's results that its rows are built from.
COMPARED_FILES = {
    "alignment": "summary.csv",
    "inconsistency": "summary.csv",
    "generalization": "test_offers.csv",
}


def comparison_rows(out: Path) -> dict[str, list[str]]:
    """Each compared experiment's rows of the table, from ``out/NAME/``; an experiment with no
    results there has no entry. An experiment with results but none that compare (inconsistency
    under ``--hypothesis neutral``: the table compares the stereotyped prior's) has an empty
    entry: its results are these, and rows of an earlier run's are not to be kept for it."""
    from scai.experiments import alignment  # (it imports this module's labels)

    files = {name: Path(out) / name / file for name, file in COMPARED_FILES.items()}
    rows = {
        "alignment": _epoch_rows(files["alignment"], _alignment_rows(), alignment.HYPOTHESIS),
        "inconsistency": _epoch_rows(files["inconsistency"], _inconsistency_rows()),
        "generalization": [],
    }
    generalization = files["generalization"]
    if generalization.exists():
        t = pd.read_csv(generalization)
        for hyp, part in t.groupby("hypothesis", sort=False):
            id_share = part.loc[part.currency == "dollars", "share"].mean()
            ood_share = part.loc[part.currency != "dollars", "share"].mean()
            rows["generalization"].append(
                f"| {GENERALIZATION_LABEL}`{hyp}`: ID / OOD | "
                f"{GENERALIZATION['in_distribution']} / {GENERALIZATION['out_of_distribution']} "
                f"| {id_share:.1f} / {ood_share:.1f} | - | {GENERALIZATION['users']} |"
            )
    return {name: lines for name, lines in rows.items() if lines or files[name].exists()}


def _experiment_of(row: str) -> str | None:
    """The compared experiment a row of a written table belongs to (by its label)."""
    label = row.split("|")[1].strip() if row.count("|") > 1 else ""
    if label in {r[0] for r in _alignment_rows()}:
        return "alignment"
    if label in {r[0] for r in _inconsistency_rows()}:
        return "inconsistency"
    if label.startswith(GENERALIZATION_LABEL):
        return "generalization"
    return None


def comparison_table(
    out: Path, previous: str | None = None, only: Sequence[str] | None = None
) -> str:
    """Condition by condition: the original GPT-4 assistant, ours, and the users (offered share
    %, epochs 1 to 5), from ``out/NAME/summary.csv``. Rows of an experiment with no results
    in ``out``, or not in ``only`` (the experiments a run computed) if given, are taken from
    ``previous`` (a table written before), if given: a run of one experiment updates only its
    own rows."""
    rows = comparison_rows(Path(out))
    if only is not None and previous is not None:
        rows = {name: lines for name, lines in rows.items() if name in only}
    kept: dict[str, list[str]] = {}
    for line in (previous or "").splitlines():
        name = _experiment_of(line)
        if name is not None and name not in rows:
            kept.setdefault(name, []).append(line)
    lines = [HEADER]
    for name in TABLE_ORDER:
        lines += rows.get(name, kept.get(name, []))
    return "\n".join(lines) + "\n"


#: The comparison table's file, in ``--out`` and beside the figures.
COMPARISON = "comparison.md"


def write_comparison(
    out: Path, target: Path | None = None, only: Sequence[str] | None = None
) -> Path:
    """Write the table of ``out``'s results to ``target`` (default ``out/comparison.md``),
    keeping the rows ``target`` already holds for experiments with no results in ``out`` or
    not in ``only``."""
    target = Path(target or Path(out) / COMPARISON)
    previous = _read_merged(target)
    table = comparison_table(Path(out), previous, only)
    return write_atomic(target, lambda tmp: Path(tmp).write_text(table))


#: The file beside the figures that records every number the experiments report: the README
#: quotes them, and ``tests/test_readme.py`` checks each quoted number against it.
NUMBERS_FILE = "numbers.json"


#: Significant digits of each number in ``numbers.json``: more than any quote needs, and few
#: enough that the last bits a host's floating point moves leave the committed file as it is,
#: unless a number sits within that noise of a rounding boundary (rare). The models compute in
#: float32 where torch's default dtype rules: an Intel Xeon's vector maths and an AMD EPYC's
#: (AVX-512) put inconsistency's belief deficit 1.3e-7 apart (0.0691839050 against
#: 0.0691838960), so 6, not the 12 that float64's noise alone would allow.
NUMBER_DIGITS = 6


def as_recorded(value: float) -> float:
    """``value`` as ``numbers.json`` holds it: :data:`NUMBER_DIGITS` significant digits."""
    return float(f"{float(value):.{NUMBER_DIGITS}g}")


def record_numbers(figures: Path, experiment: str, numbers: dict[str, float]) -> Path:
    """Merge ``experiment``'s numbers, to :data:`NUMBER_DIGITS` significant digits, into
    ``figures/numbers.json`` (other experiments' entries are kept, so a run of one experiment
    updates only its own), written atomically."""
    path = Path(figures) / NUMBERS_FILE
    recorded = read_numbers(path)
    recorded[experiment] = {key: as_recorded(value) for key, value in numbers.items()}
    text = json.dumps(recorded, indent=1, sort_keys=True) + "\n"
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def read_numbers(path: Path) -> dict[str, dict[str, float]]:
    """The numbers recorded in ``path`` by experiment (``{}`` where there is no file); a
    :class:`RunError` naming it where it is not the file :func:`record_numbers` writes (a
    merge conflict's markers, say), which a run would otherwise find only at its end."""
    text = _read_merged(path)
    if text is None:
        return {}
    try:
        recorded = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: {NOT_OURS} (not JSON: {err})") from None
    if not isinstance(recorded, dict) or not all(isinstance(v, dict) for v in recorded.values()):
        raise RunError(f"{path}: {NOT_OURS} (a JSON object of experiments, each of numbers)")
    return recorded


#: What a file that a run merges its results into, and cannot read, is told to be.
NOT_OURS = "not the file scai writes here; move it away and run again"


def _read_merged(path: Path) -> str | None:
    """The text of a file a run merges its results into (``None`` where there is none); a
    :class:`RunError` naming it where it cannot be read as text."""
    if not path.exists():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunError(f"{path}: {NOT_OURS} (not UTF-8 text)") from None
    except OSError as err:
        raise RunError(f"{path}: cannot read it ({err.strerror or err})") from None


def check_merged_files(out: Path, figures: Path, comparison: bool) -> None:
    """Before any work: the files a run merges its results into (``numbers.json`` beside the
    figures; with ``comparison``, ``OUT/comparison.md`` and the one beside the figures) are
    absent or readable, so that a bad one fails the run now, not after its conditions are
    computed."""
    read_numbers(figures / NUMBERS_FILE)
    if comparison:
        _read_merged(out / COMPARISON)
        _read_merged(figures / COMPARISON)
