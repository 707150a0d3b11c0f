"""Tones for the model from a table: as given, read from the text, or none (:data:`TONE_MODES`).

:func:`read_tones` fills ``proposer_tone`` and ``responder_tone`` from ``proposer_text`` and
``responder_text`` with a reader (an empty text gives an empty tone: no message heard).
:func:`apply_tones` is what ``scai fit --tones MODE`` does: with ``read``, the tones are read
(by the shipped reader unless another is given) and the hypothesis gets the reader's confusion
matrix (:attr:`scai.models.hypotheses.Hypothesis.reader_confusion`), so that what the model
scores is what the reader reported, mistakes included.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from scai.models.data import TEXT_COLUMNS
from scai.models.errors import (
    DataError,
    HypothesisError,
    Problem,
    RunsHeldOutWarning,
    TableWarning,
    outside_scai,
)
from scai.models.hypotheses import Hypothesis
from scai.models.tone_reader.interface import ToneReader, check_reader

#: Where the model's tones come from: mode -> what it means (``--tones`` on the command line).
TONE_MODES: dict[str, str] = {
    "given": "the table's tone columns as they are (default)",
    "read": "read from the text columns by a tone reader (the shipped one unless --reader), "
    "whose confusion matrix enters the model",
    "none": "no tones: the model hears no language",
}
_ROLES = ("proposer", "responder")


def _written(column: pd.Series) -> pd.Series:
    """Which cells of a tone or text column hold something (not empty, NaN or blank)."""
    return column.fillna("").astype(str).str.strip() != ""


def unheard_text(table: pd.DataFrame) -> int:
    """How many messages of ``table`` have text while none has a tone (0 if any tone is
    given): such a table, fitted with its tones as given, tells the model no manners at all
    (the original study's logs as ``scai import scai-logs`` writes them)."""
    for role in _ROLES:
        column = table.get(f"{role}_tone")
        if column is not None and _written(column).any():
            return 0
    return sum(int(_written(table[c]).sum()) for c in TEXT_COLUMNS if c in table)


def read_tones(
    table: pd.DataFrame, reader: ToneReader, source: str = "interactions"
) -> pd.DataFrame:
    """A copy of ``table`` whose tone columns are ``reader``'s reading of its text columns
    (every row: a row without text, or whose speaker is unknown, gets no tone). A
    :class:`DataError` if the table has no text column or the reader reports a tone outside
    its labels."""
    check_reader(reader, need_confusion=False)
    present = [c for c in TEXT_COLUMNS if c in table.columns]
    if not present:
        raise DataError(
            source,
            [Problem(None, None, None, f"no text to read: needs {' or '.join(TEXT_COLUMNS)}")],
        )
    out = table.copy()
    unknown = 0
    for role in _ROLES:
        tones = pd.Series("", index=out.index, dtype=object)
        if f"{role}_text" in out.columns:
            text = out[f"{role}_text"].map(lambda v: v if isinstance(v, str) else "")
            heard = text.str.strip() != ""
            if role in out.columns:  # an unknown proposer's words: no one to attribute them to
                heard &= out[role].fillna("").astype(str) != ""
            if hasattr(reader, "knows"):  # nothing the reader reads: no evidence of a tone
                known = _known(reader, text[heard].tolist(), role, source)
                unknown += int((~known).sum())
                heard[heard] = known
            answer = reader.read(text[heard].tolist())
            if isinstance(answer, str) or not isinstance(answer, Iterable):
                what = f"the reader's read() returned {type(answer).__name__}; expected a list"
                raise DataError(source, [Problem(None, f"{role}_text", None, what)])
            read = list(answer)
            if len(read) != int(heard.sum()):
                raise DataError(
                    source,
                    [
                        Problem(
                            None,
                            f"{role}_text",
                            None,
                            f"the reader returned {len(read)} tones for {int(heard.sum())} texts",
                        )
                    ],
                )
            stray = sorted(set(read) - set(reader.labels))
            if stray:
                raise DataError(
                    source,
                    [
                        Problem(
                            None,
                            f"{role}_tone",
                            stray[0],
                            f"the reader reported a tone outside its labels {list(reader.labels)}",
                        )
                    ],
                )
            tones[heard] = read
        out[f"{role}_tone"] = tones
    if unknown:
        warnings.warn(
            TableWarning(
                f"{source}: {unknown} message(s) hold nothing the tone reader reads (no word or "
                "character sequence it knows: emoji, another script; or only numbers, currency "
                "words and punctuation): left unread, as unheard"
            ),
            stacklevel=outside_scai(),
        )
    return out


def _known(reader: ToneReader, texts: list[str], role: str, source: str) -> np.ndarray:
    """The reader's ``knows(texts)`` as a boolean array; a :class:`DataError` if it does not
    give one flag per text."""
    answer = reader.knows(texts)
    flags = [] if isinstance(answer, str) or not isinstance(answer, Iterable) else list(answer)
    if len(flags) != len(texts) or not all(isinstance(f, bool | np.bool_) for f in flags):
        what = f"the reader's knows() must return one True/False per text ({len(texts)})"
        raise DataError(source, [Problem(None, f"{role}_text", None, what)])
    return np.asarray(flags, dtype=bool)


def check_no_reader_confusion(hypothesis: Hypothesis) -> None:
    """A :class:`HypothesisError` if ``hypothesis`` sets ``reader_confusion``: reading the tones
    sets it to the reader's own matrix, and the hypothesis's would be lost unseen."""
    if hypothesis.reader_confusion is not None:
        raise HypothesisError(
            f"tones read: hypothesis {hypothesis.name!r} sets reader_confusion, and reading "
            "the tones sets it to the reader's own matrix (measured when it was trained); "
            "remove reader_confusion from the hypothesis, or give the tones with the table"
        )


def apply_tones(
    table: pd.DataFrame,
    hypothesis: Hypothesis,
    mode: str = "given",
    reader: ToneReader | None = None,
    source: str = "interactions",
) -> tuple[pd.DataFrame, Hypothesis]:
    """The table and hypothesis the model should see under tone ``mode`` (:data:`TONE_MODES`):
    ``given`` returns them unchanged; ``none`` empties the tone columns; ``read`` reads the
    text with ``reader`` (default: :func:`~scai.models.tone_reader.serialise.default_reader`)
    and sets the hypothesis's ``reader_confusion`` to the reader's."""
    if mode not in TONE_MODES:
        raise DataError(
            source,
            [
                Problem(
                    None,
                    None,
                    mode,
                    f"unknown tones mode; allowed: {', '.join(TONE_MODES)}",
                    whole="mode",
                )
            ],
        )
    if mode == "given":
        return table, hypothesis
    if mode == "none":
        return table.assign(proposer_tone="", responder_tone=""), hypothesis
    check_no_reader_confusion(hypothesis)
    if reader is None:
        from scai.models.tone_reader.serialise import default_reader

        reader = default_reader()
    check_reader(reader)
    given = sum(
        int(_written(table[f"{role}_tone"]).sum()) for role in _ROLES if f"{role}_tone" in table
    )
    if given:  # (replaced without a word: a review)
        warnings.warn(
            TableWarning(
                f"{source}: the {given} tone(s) the table gives are replaced by the reader's "
                "reading of the text (tones 'given', scai fit's default, keeps them)"
            ),
            stacklevel=outside_scai(),
        )
    from scai.models.tone_reader.training import RUNS_HELD_OUT_COST, held_out_by_runs

    if held_out_by_runs(reader):  # (told when it was trained; a fit reading with it says so)
        warnings.warn(
            f"{source}: the tone reader's confusion matrix was estimated with runs held out, "
            f"not whole conditions: {RUNS_HELD_OUT_COST}, and the fit counts its reports as "
            "that reliable",
            RunsHeldOutWarning,
            stacklevel=outside_scai(),
        )
    return read_tones(table, reader, source), hypothesis.with_(reader_confusion=reader.confusion)
