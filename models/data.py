"""The interaction table: one row per game, as CSV, with validation.

Columns (``proposer`` may be empty for responder-only human data; tones may be empty when no
message was observed)::

    sim, epoch, round, proposer, responder, currency, pot, offer, accepted,
    proposer_tone, responder_tone

and, beside a simulated table ``X.csv``, the users' true types in ``X.users.csv``::

    sim, user, policy, manner

Every reader checks its input and raises :class:`DataError` listing *every* problem found,
each naming the row (1-based data row; the header is line 1, so row ``r`` is line ``r + 1``),
the column, the value and what is allowed. No data error reaches torch.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scai.models.errors import DataError, Problem
from scai.models.game import CURRENCIES, MAX_POT
from scai.models.language import MANNERS, TONES

INTERACTION_COLUMNS: tuple[str, ...] = (
    "sim",
    "epoch",
    "round",
    "proposer",
    "responder",
    "currency",
    "pot",
    "offer",
    "accepted",
    "proposer_tone",
    "responder_tone",
)
USER_COLUMNS: tuple[str, ...] = ("sim", "user", "policy", "manner")
_OPTIONAL = {"proposer", "proposer_tone", "responder_tone"}
_ID_COLUMNS = ("sim", "proposer", "responder")
_INT_COLUMNS = ("epoch", "round", "pot", "offer", "accepted")


def _read_raw(path_or_buffer: str | Path | io.StringIO, source: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path_or_buffer, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(
            source, [Problem(None, None, None, "empty file; expected a header line and rows")]
        ) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(source, [Problem(None, None, None, f"cannot read as CSV: {err}")]) from None
    if not isinstance(df.index, pd.RangeIndex):
        # pandas makes the first column an index when the first row has one field more than
        # the header (e.g. trailing commas), silently shifting every value one column left.
        raise DataError(
            source,
            [
                Problem(
                    1,
                    None,
                    None,
                    f"more fields than the header's {len(df.columns)} columns "
                    "(a trailing comma?); each row needs one field per header column",
                )
            ],
        )
    df.columns = [c.strip() for c in df.columns]
    return df


def check_interactions(
    df: pd.DataFrame,
    currencies: Iterable[str] | None = None,
    tones: Iterable[str] = TONES,
) -> list[Problem]:
    """Every problem in a raw (all-string) interaction table; an empty list if it is valid."""
    currencies = tuple(CURRENCIES if currencies is None else currencies)
    tones = tuple(tones)
    problems: list[Problem] = []
    missing = [c for c in INTERACTION_COLUMNS if c not in df.columns]
    if missing:
        return [
            Problem(
                None,
                None,
                None,
                f"wrong header: missing column(s) {', '.join(missing)}; "
                f"expected: {','.join(INTERACTION_COLUMNS)}",
            )
        ]
    if len(df) == 0:
        return [Problem(None, None, None, "no rows: the table has a header but no interactions")]
    for i, rec in enumerate(df[list(INTERACTION_COLUMNS)].itertuples(index=False), start=1):
        row = rec._asdict()
        for col in INTERACTION_COLUMNS:
            if row[col] == "" and col not in _OPTIONAL:
                problems.append(Problem(i, col, "", "a value is required"))
        ints: dict[str, int] = {}
        for col in _INT_COLUMNS:
            text = row[col]
            if text == "":
                continue
            try:
                value = float(text)
            except ValueError:
                problems.append(Problem(i, col, text, "must be a whole number"))
                continue
            if not np.isfinite(value) or value != int(value):
                problems.append(Problem(i, col, text, "must be a whole number"))
                continue
            ints[col] = int(value)
        pot = ints.get("pot")
        if pot is not None and not 1 <= pot <= MAX_POT:
            problems.append(Problem(i, "pot", row["pot"], f"must be an integer in 1..{MAX_POT}"))
            pot = None
        offer = ints.get("offer")
        if offer is not None:
            if offer < 0:
                problems.append(Problem(i, "offer", row["offer"], "must be >= 0"))
            elif pot is not None and offer > pot:
                problems.append(
                    Problem(i, "offer", row["offer"], f"must be at most the pot ({pot})")
                )
        if "accepted" in ints and ints["accepted"] not in (0, 1):
            problems.append(Problem(i, "accepted", row["accepted"], "must be 0 or 1"))
        for col in ("epoch", "round"):
            if col in ints and ints[col] < 0:
                problems.append(Problem(i, col, row[col], "must be >= 0"))
        if row["currency"] != "" and row["currency"] not in currencies:
            problems.append(
                Problem(i, "currency", row["currency"], f"allowed: {', '.join(currencies)}")
            )
        for col in ("proposer_tone", "responder_tone"):
            if row[col] != "" and row[col] not in tones:
                problems.append(Problem(i, col, row[col], f"allowed: {', '.join(tones)} or empty"))
        if row["proposer"] != "" and row["proposer"] == row["responder"]:
            problems.append(
                Problem(i, "responder", row["responder"], "must differ from the proposer")
            )
    return problems


def _typed_interactions(df: pd.DataFrame) -> pd.DataFrame:
    out = df[list(INTERACTION_COLUMNS)].copy()
    for col in _INT_COLUMNS:
        out[col] = out[col].astype(float).astype(np.int64)
    return out


def read_interactions(path: str | Path, currencies: Iterable[str] | None = None) -> pd.DataFrame:
    """Read and validate an interaction table; raise :class:`DataError` listing every problem."""
    source = str(path)
    if not Path(path).exists():
        raise DataError(source, [Problem(None, None, None, "file does not exist")])
    df = _read_raw(path, source)
    problems = check_interactions(df, currencies)
    if problems:
        raise DataError(source, problems)
    return _typed_interactions(df)


def validate_frame(df: pd.DataFrame, source: str = "interactions") -> pd.DataFrame:
    """Validate an in-memory table (any dtypes) the same way a CSV is validated."""
    raw = df.copy()
    for col in raw.columns:
        raw[col] = raw[col].map(
            lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
        )
    problems = check_interactions(raw)
    if problems:
        raise DataError(source, problems)
    return _typed_interactions(raw)


def check_users(df: pd.DataFrame, policies: Iterable[str]) -> list[Problem]:
    """Every problem in a raw users table (``sim, user, policy, manner``)."""
    policies = tuple(policies)
    missing = [c for c in USER_COLUMNS if c not in df.columns]
    if missing:
        return [
            Problem(
                None,
                None,
                None,
                f"wrong header: missing column(s) {', '.join(missing)}; "
                f"expected: {','.join(USER_COLUMNS)}",
            )
        ]
    problems = []
    for i, rec in enumerate(df[list(USER_COLUMNS)].itertuples(index=False), start=1):
        for col in ("sim", "user"):
            if getattr(rec, col) == "":
                problems.append(Problem(i, col, "", "a value is required"))
        if rec.policy not in policies:
            problems.append(Problem(i, "policy", rec.policy, f"allowed: {', '.join(policies)}"))
        if rec.manner not in MANNERS:
            problems.append(Problem(i, "manner", rec.manner, f"allowed: {', '.join(MANNERS)}"))
    return problems


def read_users(path: str | Path, policies: Iterable[str]) -> pd.DataFrame:
    source = str(path)
    df = _read_raw(path, source)
    problems = check_users(df, policies)
    if problems:
        raise DataError(source, problems)
    return df[list(USER_COLUMNS)]


def users_path(interactions_path: str | Path) -> Path:
    """``X.csv`` -> ``X.users.csv``."""
    path = Path(interactions_path)
    return path.with_name(path.stem + ".users.csv")


def write_atomic(path: str | Path, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)``, then rename the file to ``path``: an interrupted run
    never leaves a half-written file behind. ``suffix`` is the temporary file's (writers such
    as matplotlib read the format from it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv_atomic(df: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV so that an interrupted run never leaves a half-written file behind."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            df.to_csv(handle, index=False, lineterminator="\n")

    write_atomic(path, write)
