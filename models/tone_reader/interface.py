"""What a tone reader is: :class:`ToneReader`, and the confusion matrix every reader carries.

A reader turns messages into reported tones, each one of its ``labels`` (a subset of
:data:`scai.models.language.MANNERS`), and knows how often it is wrong: ``confusion[m][t] =
P(it reports t | the message's tone is m)``, a ``MANNERS x MANNERS`` matrix estimated on
messages it was not trained on. :func:`confusion_from_counts` is the one estimate every reader
shipped with scai uses:

- a row the reader has held-out messages of: their counts plus ``smoothing`` (0.5, Jeffreys'
  prior) on each of its labels, normalised, so that a mistake never seen in ``n`` messages has
  probability about ``0.5 / n``, unlikely rather than impossible;
- a row it has none of (``polite`` for a reader trained on the original study's logs): uniform
  over its labels (it says nothing about such a message's tone);
- a column it never reports: 0 (the model then refuses a table holding that tone, see
  :func:`scai.inference.fit.prepare`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from scai.models.errors import DataError, Problem
from scai.models.language import MANNERS, check_confusion

#: Pseudo-count added to each of a reader's labels in a row of held-out counts.
DEFAULT_SMOOTHING = 0.5

Matrix = tuple[tuple[float, ...], ...]


@runtime_checkable
class ToneReader(Protocol):
    """Anything that reads tones from text (a trained classifier, a lexicon, an LLM).

    ``labels``: the tones it can report, each in :data:`~scai.models.language.MANNERS`.
    ``confusion``: ``P(reported | tone)``, rows and columns in ``MANNERS`` order, the columns
    of tones it never reports 0 (see the module docstring); ``None`` if not estimated.
    ``read(texts)``: one reported tone per text, each one of ``labels``, in order.

    Optionally ``knows(texts)``: per text, whether it holds anything the reader reads (the
    shipped reader: any n-gram of its vocabulary). A text it does not know (an emoji, an
    empty-looking zero-width space) gets a report that does not depend on its tone, so its
    likelihood is the same under every manner: :func:`~scai.models.tone_reader.reading.read_tones`
    leaves it unread (no tone), where the confusion matrix would take the report for evidence.
    """

    labels: tuple[str, ...]
    confusion: Matrix | None

    def read(self, texts: Sequence[str]) -> list[str]: ...


def check_reader(reader: object, need_confusion: bool = True) -> ToneReader:
    """``reader`` if it is a :class:`ToneReader` whose labels are manners and whose confusion
    (required unless ``need_confusion`` is false) is a valid matrix that never reports a tone
    outside its labels and reports each of its labels with some probability; else a
    :class:`DataError` saying what is wrong."""

    def error(what: str) -> DataError:
        reader_name = f"tone reader {type(reader).__name__}"
        return DataError(reader_name, [Problem(None, None, None, what, whole="reader")])

    if not isinstance(reader, ToneReader):
        raise error("must have labels, confusion and read(texts) (see scai.models.tone_reader)")
    labels = tuple(reader.labels)
    unknown = [label for label in labels if label not in MANNERS]
    if not labels or unknown or len(set(labels)) != len(labels):
        raise error(f"labels must be distinct manners ({', '.join(MANNERS)}), got {labels}")
    if reader.confusion is None:
        if need_confusion:
            raise error("has no confusion matrix: estimate one on held-out messages")
        return reader
    try:
        matrix = check_confusion(reader.confusion, "confusion")
    except ValueError as err:
        raise error(str(err)) from None
    stray = [m for j, m in enumerate(MANNERS) if m not in labels and any(r[j] for r in matrix)]
    if stray:
        raise error(f"confusion reports {', '.join(stray)}, which is not among its labels")
    # A label it reads but its matrix never reports: every message read so is impossible under
    # every manner, and the data's rows were blamed for it, one problem each.
    unreported = [m for m in labels if not any(r[MANNERS.index(m)] for r in matrix)]
    if unreported:
        raise error(
            f"confusion never reports {', '.join(unreported)}, which it reads (a label): its "
            "column must hold some probability"
        )
    return reader


def confusion_counts(
    true: Sequence[str], reported: Sequence[str], labels: Sequence[str]
) -> np.ndarray:
    """``[M, M]`` counts of messages of tone ``MANNERS[i]`` reported as ``MANNERS[j]``."""
    counts = np.zeros((len(MANNERS), len(MANNERS)), dtype=np.int64)
    index = {m: i for i, m in enumerate(MANNERS)}
    for t, r in zip(true, reported, strict=True):
        if r not in labels:
            raise ValueError(f"reported tone {r!r} is not one of the reader's labels {labels}")
        counts[index[t], index[r]] += 1
    return counts


def confusion_from_counts(
    counts: np.ndarray, labels: Sequence[str], smoothing: float = DEFAULT_SMOOTHING
) -> Matrix:
    """``P(reported | tone)`` from held-out ``counts`` (module docstring: smoothed rows,
    uniform rows for tones never seen, zero columns for tones never reported)."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing!r}")
    columns = [MANNERS.index(label) for label in labels]
    rows = []
    for i in range(len(MANNERS)):
        row = np.zeros(len(MANNERS))
        seen = counts[i, columns].astype(float)
        if counts[i].sum() == 0:
            row[columns] = 1.0 / len(columns)
        else:
            row[columns] = (seen + smoothing) / (seen.sum() + smoothing * len(columns))
        rows.append(tuple(float(v) for v in row))
    return check_confusion(tuple(rows))
