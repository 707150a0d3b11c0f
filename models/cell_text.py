"""A table cell's text as a value: whole numbers written in any plain way (``parse_whole``), the
characters an identifier may hold (``has_control``, :data:`ID_CHARACTERS`), and a cell of any
type as the text a CSV file holds (``column_as_text``)."""

from __future__ import annotations

import functools
import re
import unicodedata
from decimal import Decimal

import numpy as np
import pandas as pd

# Plain ASCII decimal notation: digits, an optional fraction and exponent. Python's int() and
# float() also read "5_3" (as 53), non-ASCII digits ("\u0665" as 5), "inf" and "nan".
DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


_HUGE = 10**30


def plain_decimal(text: str) -> bool:
    """Whether ``text`` is a number in plain ASCII decimal notation (``0.8``, ``1e-3``; not
    ``0.2_5``, non-ASCII digits, ``inf`` or ``nan``, which ``float`` also reads)."""
    return DECIMAL.fullmatch(text.strip()) is not None


def parse_whole(text: str) -> int | None:
    """The whole number ``text`` writes (``12``, ``12.0``, ``1.2e1``, ``-3``), or ``None``.

    Only plain ASCII decimal notation counts, so ``5_3``, ``\u0665``, ``inf``, ``nan``,
    ``0x10`` and ``12.5`` are not whole numbers. The value is exact (no float rounding); a
    magnitude above ``10**30`` comes back as ``+-10**31``, outside every allowed range (and
    ``1e999999999`` is never expanded into a billion-digit int).
    """
    # tables repeat their pots, offers, epochs and rounds: short texts are parsed once
    return _parse_short(text) if len(text) <= 40 else _parse_whole(text)


@functools.lru_cache(maxsize=65536)
def _parse_short(text: str) -> int | None:
    return _parse_whole(text)


def _parse_whole(text: str) -> int | None:
    text = text.strip()
    if text.isascii() and text.isdigit():  # the common case, fast
        return int(text) if len(text.lstrip("0")) <= 30 else 10 * _HUGE
    if not DECIMAL.fullmatch(text):
        return None
    value = Decimal(text)
    if value == 0:
        return 0
    if value.adjusted() > 30:
        return 10 * _HUGE if value > 0 else -10 * _HUGE
    if value != value.to_integral_value():
        return None
    return int(value)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control or an invisible character: a CSV cannot keep a bare
    carriage return, and "u2" followed by a zero-width or a non-breaking space looks like "u2"
    and would be another user. Refused: controls, surrogates, private and unassigned code
    points, line and paragraph separators, format characters but the (zero-width) joiners
    that some scripts and emoji need, and every space but the plain and the ideographic."""
    if text.isprintable():
        return False
    for c in text:
        kind = unicodedata.category(c)
        if kind in _REFUSED_CATEGORIES or (kind == "Cf" and c not in _JOINERS):
            return True
        if kind == "Zs" and c not in " \u3000":
            return True
    return False


#: What an id must not contain (the rule of :func:`has_control`), for its problems.
ID_CHARACTERS = (
    "must not contain control or invisible characters (line breaks, tabs, zero-width or "
    "non-breaking spaces)"
)


#: Unicode categories never allowed in an id; "Cf" and "Zs" are refused but for a few.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})


#: The zero-width non-joiner and joiner: part of Persian words and emoji sequences.
_JOINERS = "\u200c\u200d"


def as_text(value: object) -> str:
    """An in-memory cell as a CSV would hold it: a missing one empty, a whole float as the
    integer it is (pandas stores ids 1, 2 as 1.0, 2.0 in a column with a missing value: the
    user 1 of another column is the same user)."""
    if is_nan(value):
        return ""
    # beyond 2^53 a float is no exact integer: its own text (1e+300)
    if isinstance(value, float | np.floating) and value.is_integer() and abs(value) <= 2**53:
        return str(int(value))
    return str(value)


def column_as_text(column: pd.Series) -> pd.Series:
    """``column``'s cells as text, :func:`as_text` of each. Where the dtype makes distinct
    values distinct texts (NumPy's numbers and bools, pandas' strings; not objects, in which
    ``1``, ``1.0`` and ``True`` are one key of a hash table but three texts) each distinct
    value is converted once, the missing ones empty: a million-row table's column in a tenth
    of a second, not seconds."""
    dtype = column.dtype
    if (isinstance(dtype, np.dtype) and dtype.kind in "biuf") or isinstance(dtype, pd.StringDtype):
        codes, distinct = pd.factorize(column, use_na_sentinel=True)
        texts = np.array([*(as_text(v) for v in distinct), ""], dtype=object)  # -1: missing
        return pd.Series(texts[codes], index=column.index, dtype=object).astype(str)
    return column.map(as_text).astype(str)


def is_nan(value: object) -> bool:
    """Whether an in-memory cell is missing: ``None``, pandas' ``NA`` or ``NaT``, NumPy's
    ``NaT`` (``np.datetime64("NaT")``, which is not pandas'), or a float NaN of any width (an
    empty cell, as in a CSV)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return isinstance(value, float | np.floating) and bool(np.isnan(value))
