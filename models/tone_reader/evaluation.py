"""How well a reader reads: accuracy on messages it was not trained on.

Two ways of holding messages out (:data:`SCHEMES`), both grouped, because the messages of one
run are near-copies of each other (GPT-4 users at temperature 0 repeat themselves), so a
message-level split would test the reader on the very texts it learned:

- ``runs``: the runs are dealt at random (``seed``) into ``folds`` folds; each fold's messages
  are read by a reader trained on the other folds. Every message is read once, by a reader that
  never saw its run, but the runs of one condition share their prompts and repeat each other's
  messages: on the original study's logs 79% of the held-out rude messages and 74% of the
  sycophantic ones are, once masked (:func:`~scai.models.tone_reader.text.mask_text`), word
  for word in the training folds, and linking runs that share a masked text joins the 240
  runs into 5 groups, each condition inside one. This measures reading the template it was
  trained on.
- ``conditions``: each condition (``policy_manner``, experiments pooled: the same prompts) is
  read by a reader trained on all the others, e.g. sycophantic refusals of ``selfish +
  sycophantic`` by a reader that only saw the sycophancy of generous and fair users. What the
  reader learned of the tone rather than of a condition's wording: the confusion matrix a
  reader ships with is estimated this way where the messages name their conditions
  (:func:`~scai.models.tone_reader.training.train_reader`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scai.models.language import MANNERS
from scai.models.tone_reader.classifier import TrainingOptions, fit_classifier
from scai.models.tone_reader.interface import (
    DEFAULT_SMOOTHING,
    Matrix,
    confusion_counts,
    confusion_from_counts,
)

#: The hold-out schemes: name -> what is held out.
SCHEMES: dict[str, str] = {
    "runs": "runs held out (grouped k-fold over runs)",
    "conditions": "whole conditions held out (leave one condition out)",
}


def assign_folds(groups: pd.Series, folds: int, seed: int = 0) -> np.ndarray:
    """The fold of each message: its group's, groups dealt at random into ``folds`` folds
    (as even as the number of groups allows)."""
    names = np.array(sorted(set(groups)), dtype=object)
    if len(names) < 2:
        raise ValueError(
            f"held-out accuracy needs messages from at least 2 groups (runs or conditions) to "
            f"hold out in turn; these come from {len(names)}: give logs of more runs"
        )
    if not 2 <= folds <= len(names):
        held = {"sim": "runs", "condition": "conditions"}.get(groups.name, "groups")
        raise ValueError(
            f"folds: must be from 2 to the number of {held} held out in turn ({len(names)}), "
            f"got {folds}"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[j]: rank % folds for rank, j in enumerate(order)}
    return groups.map(fold_of).to_numpy()


@dataclass(frozen=True)
class Evaluation:
    """Held-out readings: ``predictions`` is the messages (``text``, ``tone`` and their
    ``sim``, ``condition``) with the ``fold`` that held each out and the ``reported`` tone;
    ``labels`` every tone the folds' readers could report; ``seconds`` training and reading
    time; ``readers`` each fold's reader (trained on the other folds' messages)."""

    scheme: str
    labels: tuple[str, ...]
    predictions: pd.DataFrame
    seconds: float
    readers: dict = field(default_factory=dict, repr=False)

    def held_out_readers(self, smoothing: float = DEFAULT_SMOOTHING) -> dict:
        """Per group held out (a ``sim`` under ``runs``, a ``condition`` under
        ``conditions``): the reader that never saw it, carrying this evaluation's confusion
        matrix (what its mistakes on unseen groups are measured to be). Reading a group's own
        text with its reader keeps the reads out of sample, where the shipped reader, trained
        on every message, would read its own training text; the matrix is pooled over every
        group's held-out reads, this group's own among them, so it is not wholly out of
        sample."""
        column = "condition" if self.scheme == "conditions" else "sim"
        confusion = self.confusion(smoothing)
        note = f"{SCHEMES[self.scheme]}; the reader trained without this group"
        fold_of = self.predictions.groupby(column, sort=True)["fold"].first()
        counts = self.counts
        return {
            group: self.readers[fold].with_confusion(confusion, counts, confusion_estimate=note)
            for group, fold in fold_of.items()
        }

    @property
    def counts(self) -> np.ndarray:
        """``[M, M]``: messages of tone ``MANNERS[i]`` reported as ``MANNERS[j]``."""
        p = self.predictions
        return confusion_counts(p["tone"].tolist(), p["reported"].tolist(), self.labels)

    def accuracy(self) -> dict[str, float]:
        """The share of each tone's messages read as that tone (tones with messages only)."""
        counts = self.counts
        return {m: counts[i, i] / counts[i].sum() for i, m in enumerate(MANNERS) if counts[i].sum()}

    def confusion(self, smoothing: float = DEFAULT_SMOOTHING) -> Matrix:
        return confusion_from_counts(self.counts, self.labels, smoothing)

    def by_group(self, column: str = "condition") -> pd.DataFrame:
        """Accuracy per ``column`` value and tone."""
        p = self.predictions.assign(
            correct=self.predictions["reported"] == self.predictions["tone"]
        )
        out = p.groupby([column, "tone"], sort=True)["correct"].agg(["size", "mean"])
        return out.rename(columns={"size": "messages", "mean": "accuracy"}).reset_index()

    def report(self) -> str:
        """Accuracy per tone, the confusion counts and matrix, as text."""
        counts = self.counts
        seen = [i for i in range(len(MANNERS)) if counts[i].sum()]
        cols = [MANNERS.index(label) for label in self.labels]
        width = max(len(m) for m in MANNERS) + 2
        lines = [
            f"{SCHEMES[self.scheme]}: {len(self.predictions)} messages, "
            f"{self.predictions['fold'].nunique()} folds, {self.seconds:.1f} s"
        ]
        lines.append("accuracy: " + ", ".join(f"{m} {a:.2%}" for m, a in self.accuracy().items()))
        lines.append("held-out counts (rows: tone as prompted, columns: tone as read):")
        lines.append(" " * width + "".join(f"{MANNERS[j]:>{width}}" for j in cols))
        for i in seen:
            lines.append(
                f"{MANNERS[i]:<{width}}" + "".join(f"{counts[i, j]:>{width}}" for j in cols)
            )
        lines.append("confusion P(read | tone) (smoothed; rows of unseen tones uniform):")
        lines.append(" " * width + "".join(f"{m:>{width}}" for m in MANNERS))
        for m, row in zip(MANNERS, self.confusion(), strict=True):
            lines.append(f"{m:<{width}}" + "".join(f"{v:>{width}.5f}" for v in row))
        return "\n".join(lines)


def lone_tones(tones: pd.Series, groups) -> dict[str, object]:
    """Each tone all of whose messages are in one group (a condition, a fold), with that
    group: holding the group out leaves the reader trained without it without the tone, and
    it reads none of them (an accuracy of 0 that measures nothing)."""
    per_tone = pd.Series(np.asarray(groups, dtype=object), index=tones.index).groupby(tones)
    return {tone: values[0] for tone, values in per_tone.unique().items() if len(values) < 2}


def _check_each_tone_is_taught(messages: pd.DataFrame, fold: np.ndarray, scheme: str) -> None:
    """A ``ValueError`` where all of a tone's messages are in one fold (:func:`lone_tones`):
    its accuracy would read 0, and a confusion matrix be built on it."""
    lone = sorted(lone_tones(messages["tone"], fold))
    if lone:
        held = "runs" if scheme == "runs" else "conditions"
        column = "sim" if scheme == "runs" else "condition"
        counts = messages[messages["tone"].isin(lone)].groupby("tone")[column].nunique()
        said = ", ".join(f"{tone} ({counts[tone]} of the {held})" for tone in lone)
        more = " (or other folds or seed)" if scheme == "runs" else ""
        raise ValueError(
            f"{SCHEMES[scheme]}: every message of a tone falls in one fold: {said}; a reader "
            f"trained without that fold cannot read it: give logs with more {held} of it{more}"
        )


def held_out(
    messages: pd.DataFrame,
    scheme: str = "runs",
    folds: int = 10,
    seed: int = 0,
    options: TrainingOptions | None = None,
    progress: bool = False,
) -> Evaluation:
    """Read every message with a reader trained without its run (``runs``, ``folds`` folds)
    or its condition (``conditions``; ``folds`` is ignored): see the module docstring.
    ``progress``: a bar of the readers trained, on a terminal (ten times the original logs
    take ~10 s a reader)."""
    from scai.inference.progress import progress_bar  # (the layer above, on first use)

    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if scheme == "conditions":
        if (messages["condition"] == "").any():
            raise ValueError("conditions: some messages have no condition (no runs table?)")
        fold = assign_folds(messages["condition"], messages["condition"].nunique(), seed)
    else:
        fold = assign_folds(messages["sim"], folds, seed)
    _check_each_tone_is_taught(messages, fold, scheme)
    start = time.perf_counter()
    reported = np.empty(len(messages), dtype=object)
    labels: set[str] = set()
    texts, tones = messages["text"].to_numpy(), messages["tone"].to_numpy()
    readers = {}
    held = np.unique(fold)
    bar = progress_bar(len(held), f"readers, {scheme} held out", None if progress else True)
    for k in held:
        test = fold == k
        readers[int(k)] = reader = fit_classifier(texts[~test], tones[~test], options)
        reported[test] = reader.read(texts[test].tolist())
        labels.update(reader.labels)
        bar.update()
    bar.close()
    predictions = messages.assign(fold=fold, reported=reported)
    return Evaluation(
        scheme,
        tuple(m for m in MANNERS if m in labels),
        predictions,
        time.perf_counter() - start,
        readers,
    )
