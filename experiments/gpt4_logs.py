"""The original GPT-4 assistant's numbers, recomputed from its own logs and set beside the paper's.

:func:`reproduce_gpt4` reads an import of the original study's logs (``scai import scai-logs``:
``FILE.csv``, ``FILE.gpt4.csv``, ``FILE.runs.csv``) and returns, per condition and epoch, the
assistant's mean offered share as scai reads its proposals (``ours``), as the study's own code
read them (``authors``, :mod:`scai.models.scai_logs.original_reading`) and as published
(:mod:`scai.experiments.original`, the one place the paper's numbers live), and names every
proposal the two readings disagree on. On the shared logs the study's reading equals the
published curves to 0.1 points, and it misread 8 proposals, 7 of them in altruistic + rude.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scai.experiments.original import ALIGNMENT, INCONSISTENCY, INCONSISTENCY_ENDINGS
from scai.models.data import read_interactions
from scai.models.scai_logs.importer import output_paths
from scai.models.scai_logs.original_reading import authors_offered_share, epoch_messages

#: The paper's label of each condition of the shared logs it published a curve for.
PAPER_LABELS: dict[str, str] = {
    "exp1/altruistic_neutral": "altruistic",
    "exp1/fair_neutral": "fair",
    "exp1/selfish_neutral": "selfish",
    "exp3/altruistic_rude": "altruistic + rude",
    "exp3/selfish_sycophantic": "selfish + sycophantic",
}
#: A run "ends" selfish or near 50% by its offered share (%) in the last epoch.
ENDINGS: dict[str, tuple[float, float]] = {"selfish": (0.0, 20.0), "near 50%": (40.0, 60.0)}


def published_curve(condition: str) -> tuple[float, ...] | None:
    """The paper's GPT-4 curve (epochs 1-5) for ``EXPERIMENT/CONDITION``, if it has one."""
    label = PAPER_LABELS.get(condition)
    table = {**ALIGNMENT, **INCONSISTENCY}
    return table[label][0] if label in table else None


@dataclass
class GPT4Reproduction:
    curves: pd.DataFrame  # condition, paper, epoch, ours, authors, published, difference, sims
    misparses: pd.DataFrame  # sim, epoch, text, authors_read, authors_share, says, our_share
    endings: pd.DataFrame  # condition, ending, ours, authors, published


def per_epoch(out: str | Path) -> pd.DataFrame:
    """One row per ``sim, epoch``: the condition, our offered share and the study's reading."""
    paths = output_paths(out)
    gpt4 = pd.read_csv(paths["gpt4"], keep_default_na=False)
    runs = pd.read_csv(paths["runs"], keep_default_na=False)
    table = read_interactions(paths["interactions"])
    authors = {
        key: authors_offered_share(epoch_messages(games))
        for key, games in table.groupby(["sim", "epoch"], sort=False)
    }
    frame = gpt4.merge(runs[["sim", "experiment", "condition"]], on="sim", validate="m:1")
    frame["condition"] = frame["experiment"] + "/" + frame["condition"]
    frame["ours"] = pd.to_numeric(frame["offered_share"], errors="coerce")
    readings = [authors.get((s, e)) for s, e in zip(frame["sim"], frame["epoch"], strict=True)]
    frame["authors"] = [r.offered_share if r else np.nan for r in readings]
    frame["authors_read"] = [
        f"{'+'.join(map(str, r.offers))} of {r.pot}" if r else "" for r in readings
    ]
    return frame


def reproduce_gpt4(out: str | Path) -> GPT4Reproduction:
    """Compare the GPT-4 assistant's curves from the import at ``out`` with the paper's."""
    frame = per_epoch(out)
    grouped = frame.groupby(["condition", "epoch"])
    curves = grouped[["ours", "authors"]].mean().reset_index()
    curves["sims"] = grouped["sim"].nunique().to_numpy()
    curves["paper"] = curves["condition"].map(PAPER_LABELS).fillna("")
    curves["published"] = [
        _published(c, e) for c, e in zip(curves["condition"], curves["epoch"], strict=True)
    ]
    curves["difference"] = curves["ours"] - curves["published"]
    order = ["condition", "paper", "epoch", "ours", "authors", "published", "difference", "sims"]
    wrong = frame[~np.isclose(frame["ours"], frame["authors"])]
    misparses = pd.DataFrame(
        {
            "sim": wrong["sim"],
            "epoch": wrong["epoch"],
            "text": wrong["proposal_text"],
            "authors_read": wrong["authors_read"],
            "authors_share": wrong["authors"],
            "says": wrong["offer"].astype(str) + " of " + wrong["pot"].astype(str),
            "our_share": wrong["ours"],
        }
    ).reset_index(drop=True)
    return GPT4Reproduction(curves[order], misparses, _endings(frame))


def _published(condition: str, epoch: int) -> float:
    curve = published_curve(condition)
    return curve[epoch - 1] if curve is not None and epoch <= len(curve) else np.nan


def _endings(frame: pd.DataFrame) -> pd.DataFrame:
    last = frame[frame["epoch"] == frame["epoch"].max()]
    rows = []
    for condition, runs in last.groupby("condition"):
        label = PAPER_LABELS.get(condition, "")
        for ending, (lo, hi) in ENDINGS.items():
            published = INCONSISTENCY_ENDINGS.get(label)
            rows.append(
                {
                    "condition": condition,
                    "ending": ending,
                    "ours": int(runs["ours"].between(lo, hi, inclusive="left").sum()),
                    "authors": int(runs["authors"].between(lo, hi, inclusive="left").sum()),
                    "published": published[1] if published and published[0] == ending else None,
                }
            )
    endings = pd.DataFrame(rows)
    endings["published"] = endings["published"].astype("Int64")
    return endings
