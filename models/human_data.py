"""Import human responder-only ultimatum-game data into the interaction table.

Two CSV layouts are read (other columns are ignored; values may carry surrounding spaces).

**Generic layout** — one row per decision by a responder::

    subject, trial, pot, offer, accepted[, role][, currency]

``subject`` is any non-empty id (kept verbatim, so ``007`` stays ``007``); ``trial`` a whole
number >= 0; ``pot`` a whole number in 1..MAX_POT; ``offer`` the units offered to the subject,
0..pot; ``accepted`` 1 (or ``TRUE``, in any case) if the subject accepted, 0 (or ``FALSE``)
if it rejected. The optional ``role`` is any non-empty label (for example the experimental
condition); without it every subject gets role ``"0"``. The optional ``currency`` names a
currency of :data:`scai.models.game.CURRENCIES`; without it every row is paid in the
``currency`` argument (default ``cents``). Example::

    subject,trial,pot,offer,accepted,role
    p01,1,100,50,1,responder
    p01,2,100,10,0,responder

**Study 1 layout** — ``Study1_UG.csv`` from Study 1 of Heffner, Son & FeldmanHall (2021),
*Emotion prediction errors guide socially adaptive behaviour*, Nature Human Behaviour, as
distributed with van Baar's computational-modelling tutorial (see ``../shared/data/README.md``)::

    sub, role, trial, unfairness, choice[, choice_RT]

The pot is 100 cents; ``unfairness`` (0..100) is what the proposer kept, so the offer is
``100 - unfairness``; ``choice`` is 0 to accept and 1 to reject (punish), so
``accepted = 1 - choice``; ``role`` is ``self`` (the subject is the responder) or ``other``
(an unaffected third party decides whether to punish the split). ``choice_RT`` is not imported.

In both layouts each subject has one role and plays each trial number at most once.

Each row becomes one interaction: ``sim`` = the role, ``epoch`` = 1, ``round`` = the trial,
``proposer`` = "" (unknown), ``responder`` = the subject id, tones empty. Every bad row is
reported with its 1-based data row number, as the interaction table's are
(:mod:`scai.models.data`: blank lines are skipped and not counted, so row ``r`` is line
``r + 1`` only in a file with no blank line before it and no line break inside a quoted
value); by default the import then raises :class:`scai.models.data.DataError`, and with
``skip_invalid=True`` it keeps the good rows and reports what it skipped.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scai.models.cell_text import ID_CHARACTERS, has_control, parse_whole
from scai.models.data import (
    _INT_COLUMNS,
    INTERACTION_COLUMNS,
    MAX_INDEX,
    DataError,
    Problem,
    _read_raw,
    warn_unused_columns,
)
from scai.models.errors import (
    RunError,
    TableWarning,
    check_flag,
    check_path,
    missing,
    not_a_regular_file,
    outside_scai,
)
from scai.models.game import CURRENCIES, MAX_POT, get_currency

#: What the human data's pots are paid in where a file does not say (Study 1's: cents).
HUMAN_CURRENCY = "cents"


@dataclass(frozen=True)
class HumanDataLayout:
    """A CSV layout: the columns it needs and the ones it may have."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def header(self) -> str:
        """``a,b,c[,d,e]``: the expected header, optional columns in brackets."""
        extra = f"[,{','.join(self.optional)}]" if self.optional else ""
        return ",".join(self.required) + extra

    def missing(self, columns: list[str]) -> list[str]:
        return [c for c in self.required if c not in columns]


GENERIC = HumanDataLayout(
    "generic", ("subject", "trial", "pot", "offer", "accepted"), ("role", "currency")
)
STUDY1 = HumanDataLayout("study1", ("sub", "role", "trial", "unfairness", "choice"), ("choice_RT",))
LAYOUTS: dict[str, HumanDataLayout] = {layout.name: layout for layout in (GENERIC, STUDY1)}
FORMATS = ("auto", *LAYOUTS)

STUDY1_POT = 100
STUDY1_ROLES = ("self", "other")
NO_ROLE = "0"
MAX_TRIAL = MAX_INDEX


@dataclass
class HumanImport:
    """The imported interaction table and what the import found on the way."""

    table: pd.DataFrame
    roles: dict[str, str]  # subject id -> role (the ``sim`` its rows are in)
    skipped: int = 0  # bad rows left out (only with ``skip_invalid=True``)
    problems: list[Problem] = field(default_factory=list)  # why they were left out
    format: str = "generic"


class _Row:
    """One data row's cells, collecting every problem found while parsing it."""

    def __init__(self, number: int, cells: dict[str, str]):
        self.number = number
        self.cells = cells
        self.problems: list[Problem] = []

    def report(self, column: str, value: object, allowed: str) -> None:
        self.problems.append(Problem(self.number, column, value, allowed))

    def text(self, column: str) -> str | None:
        """A required non-empty text cell."""
        value = self.cells[column]
        if value == "":
            self.report(column, "", "a value is required")
            return None
        if has_control(value):  # as in an interaction table's ids
            self.report(column, value, ID_CHARACTERS)
            return None
        return value

    def choice(self, column: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(column)
        if value is not None and value not in allowed:
            self.report(column, value, f"allowed: {', '.join(allowed)}")
            return None
        return value

    def currency(self, column: str) -> str | None:
        """A currency of the registry as it is when the row is read: one registered after
        this module was imported too (:func:`~scai.models.game.register_currency`)."""
        return self.choice(column, tuple(CURRENCIES))

    def integer(self, column: str, low: int, high: int | None, allowed: str) -> int | None:
        """A required whole number in ``low..high`` (``high=None``: no upper bound)."""
        text = self.text(column)
        if text is None:
            return None
        value = parse_whole(text)
        if value is None or value < low or (high is not None and value > high):
            self.report(column, text, allowed)
            return None
        return value


#: Each layout's cells in the order a row is read (problems are listed in it): the column,
#: the :class:`_Row` method that reads it and that method's arguments. Optional columns are
#: read where the file has them.
_CELLS: dict[str, tuple[tuple[str, str, tuple], ...]] = {
    "generic": (
        ("subject", "text", ()),
        ("trial", "integer", (0, MAX_TRIAL, f"must be a whole number from 0 to {MAX_TRIAL}")),
        ("pot", "integer", (1, MAX_POT, f"must be a positive whole number up to {MAX_POT}")),
        ("offer", "integer", (0, None, "must be a whole number >= 0")),
        ("accepted", "integer", (0, 1, "must be 0 (rejected) or 1 (accepted), or FALSE/TRUE")),
        ("role", "text", ()),
        ("currency", "currency", ()),
    ),
    "study1": (
        ("sub", "text", ()),
        ("role", "choice", (STUDY1_ROLES,)),
        ("trial", "integer", (0, MAX_TRIAL, f"must be a whole number from 0 to {MAX_TRIAL}")),
        (
            "unfairness",
            "integer",
            (0, STUDY1_POT, f"must be a whole number from 0 to {STUDY1_POT}"),
        ),
        ("choice", "integer", (0, 1, "must be 0 (accept) or 1 (reject)")),
    ),
}


def _read_cells(row: _Row, layout: HumanDataLayout) -> dict[str, object]:
    """The row's cells of ``layout`` read by their rules (a problem's cell: ``None``)."""
    return {
        column: getattr(row, method)(column, *args)
        for column, method, args in _CELLS[layout.name]
        if column in row.cells
    }


def _fields(layout: HumanDataLayout, cells: dict[str, object], currency: str) -> tuple:
    """``(role, trial, subject, currency, pot, offer, accepted)`` of one row's read cells, or
    of whole columns' (NumPy arrays: the same arithmetic)."""
    if layout is GENERIC:
        role = cells.get("role", NO_ROLE)
        paid = cells.get("currency", currency)
        pot, offer, accepted = cells["pot"], cells["offer"], cells["accepted"]
        return (role, cells["trial"], cells["subject"], paid, pot, offer, accepted)
    offer, accepted = STUDY1_POT - cells["unfairness"], 1 - cells["choice"]
    return (cells["role"], cells["trial"], cells["sub"], currency, STUDY1_POT, offer, accepted)


def _parse(row: _Row, layout: HumanDataLayout, currency: str) -> tuple | None:
    """One row's :func:`_fields`, or ``None`` with its problems reported on ``row``."""
    cells = _read_cells(row, layout)
    if layout is GENERIC:
        offer, pot = cells["offer"], cells["pot"]
        if offer is not None and pot is not None and offer > pot:
            row.report("offer", row.cells["offer"], f"must be at most the pot ({pot})")
    if row.problems:
        return None
    return _fields(layout, cells, currency)


#: The fields of :func:`_fields`, as the interaction table's columns they fill.
_FIELD_COLUMNS = ("sim", "round", "responder", "currency", "pot", "offer", "accepted")


def _table(fields: tuple, rows: int) -> pd.DataFrame:
    """The interaction table of ``rows`` rows from :func:`_fields` (each a column or one value
    for every row), with :func:`scai.models.data.read_interactions`' dtypes: ``sim`` the role,
    ``epoch`` 1, ``round`` the trial, ``proposer`` unknown, ``responder`` the subject, no tones."""
    given = dict(zip(_FIELD_COLUMNS, fields, strict=True))
    columns = {}
    for column in INTERACTION_COLUMNS:
        ints = column in _INT_COLUMNS
        value = given.get(column, 1 if column == "epoch" else "")
        if np.ndim(value) == 0:
            value = [value] * rows
        columns[column] = pd.Series(value, dtype=np.int64 if ints else object).astype(
            np.int64 if ints else str
        )
    return pd.DataFrame(columns)


def _choose_layout(columns: list[str], format: str, source: str) -> HumanDataLayout:
    """The layout named by ``format``, or detected from the header for ``"auto"``."""
    if format != "auto":
        layout = LAYOUTS[format]
        missing = layout.missing(columns)
        if missing:
            raise DataError(
                source,
                [
                    Problem(
                        None,
                        None,
                        None,
                        f"wrong header for the {layout.name} layout: missing column(s) "
                        f"{', '.join(missing)}; expected: {layout.header}; "
                        f"{_header_read(columns)}",
                    )
                ],
            )
        return layout
    matching = [layout for layout in LAYOUTS.values() if not layout.missing(columns)]
    if len(matching) == 1:
        return matching[0]
    if matching:
        allowed = (
            "header matches several layouts; pass format= (scai run human-data: --format) "
            "one of " + ", ".join(LAYOUTS)
        )
    else:
        allowed = (
            "header matches no known layout; expected "
            + " or ".join(
                f"{layout.name}: {layout.header} (missing: {', '.join(layout.missing(columns))})"
                for layout in LAYOUTS.values()
            )
            + f"; {_header_read(columns)}"
        )
    raise DataError(source, [Problem(None, None, None, allowed)])


def _header_read(columns: list[str], most: int = 12) -> str:
    """The header as read, each name's invisible characters shown (``'subject\\u200b'``,
    ``'Subject'``: what makes a column "missing" where the file seems to have it)."""
    shown = ", ".join(repr(c) for c in columns[:most])
    return f"the header read: {shown}{', ...' if len(columns) > most else ''}"


def read_human_data(
    path: str | Path,
    format: str = "auto",
    skip_invalid: bool = False,
    currency: str = HUMAN_CURRENCY,
) -> HumanImport:
    """Read human responder data in either layout (see the module docstring).

    Raises :class:`DataError` listing every problem found; with ``skip_invalid=True`` row
    problems skip their rows instead (file-level problems and a file with no good row still
    raise). ``currency`` is what the pot is paid in when the file does not say.
    """
    if format not in FORMATS:
        raise RunError(f"format: unknown format {format!r}; allowed: {', '.join(FORMATS)}")
    get_currency(currency)
    check_flag("skip_invalid", skip_invalid)
    checked = check_path(path, "path")  # (not a path, or empty: said so)
    source, path = os.fsdecode(os.fspath(path)), checked  # (the name as given: ~ kept)
    if not path.exists():
        raise DataError(source, [Problem(None, None, None, missing(path))])
    if why := not_a_regular_file(path):
        raise DataError(source, [Problem(None, None, None, why)])
    raw = _read_raw(path, source).fillna("")
    layout = _choose_layout(list(raw.columns), format, source)
    if len(raw) == 0:
        raise DataError(source, [Problem(None, None, None, "no rows: a header but no data")])

    wanted = [c for c in (*layout.required, *layout.optional) if c in raw.columns]
    warn_unused_columns(source, raw.columns, wanted, layout.optional)
    if (clean := _read_clean(raw[wanted], layout, currency)) is not None:
        table, roles = clean
        _warn_of_roles_alike(source, set(roles.values()))
        return HumanImport(table, roles, 0, [], layout.name)
    read: list[tuple] = []
    roles: dict[str, str] = {}
    role_row: dict[str, int] = {}  # subject -> the row that gave its role
    first_row: dict[tuple[str, int], int] = {}  # (subject, trial) -> row it was first seen in
    problems: list[Problem] = []
    skipped = 0
    for number, cells in enumerate(raw[wanted].to_dict("records"), start=1):
        row = _Row(number, {c: str(v).strip() for c, v in cells.items()})
        fields = _parse(row, layout, currency)
        if fields is not None:
            role, trial, subject = fields[:3]
            if roles.get(subject, role) != role:
                had = roles[subject]
                since = role_row[subject]
                alike = "; the two differ only in case" if had.casefold() == role.casefold() else ""
                row.report(
                    "role",
                    role,
                    f"subject {subject!r} already has role {had!r} (row {since}){alike}",
                )
            elif (subject, trial) in first_row:
                row.report(
                    "trial",
                    row.cells["trial"],
                    f"subject {subject!r} already played trial {trial} "
                    f"(row {first_row[subject, trial]})",
                )
            if not row.problems:
                roles.setdefault(subject, role)
                role_row.setdefault(subject, number)
                first_row[subject, trial] = number
                read.append(fields)
                continue
        problems.extend(row.problems)
        skipped += 1

    if problems and not skip_invalid:
        raise DataError(source, problems)
    if not read:
        raise DataError(source, [*problems, Problem(None, None, None, "no valid rows to import")])
    _warn_of_roles_alike(source, set(roles.values()))
    table = _table(tuple(zip(*read, strict=True)), len(read))
    return HumanImport(table, roles, skipped, problems, layout.name)


def _read_clean(
    raw: pd.DataFrame, layout: HumanDataLayout, currency: str
) -> tuple[pd.DataFrame, dict[str, str]] | None:
    """The table and the subjects' roles of a file in which no row has a problem, read column
    by column (each distinct cell read once by its rule, the rules across cells and rows in
    NumPy and pandas); ``None`` where some row may have one: the row-by-row read then names
    every problem. The same table and roles as that read gives a file with none."""
    cells: dict[str, np.ndarray] = {}
    for column, method, args in _CELLS[layout.name]:
        if column not in raw.columns:
            continue
        codes, distinct = pd.factorize(raw[column].to_numpy(dtype=object), use_na_sentinel=False)
        read = []
        for value in distinct:
            row = _Row(0, {column: str(value).strip()})
            read.append(getattr(row, method)(column, *args))
            if row.problems:
                return None
        if method == "integer" and any(abs(n) > MAX_INDEX for n in read):
            return None  # an offer with no upper bound of its own, above every pot
        kind = np.int64 if method == "integer" else object
        cells[column] = np.array(read, dtype=kind)[codes]
    fields = _fields(layout, cells, currency)
    role, trial, subject, _, pot, offer, _ = fields
    if np.any(offer > pot):
        return None
    played = pd.DataFrame({"subject": subject, "trial": trial, "role": role})
    if played.duplicated(["subject", "trial"]).any():
        return None
    first = played.drop_duplicates("subject")  # in the order subjects first appear
    if len(played.drop_duplicates(["subject", "role"])) != len(first):
        return None  # a subject with two roles
    roles = dict(zip(first["subject"], first["role"], strict=True))
    return _table(fields, len(raw)), roles


def _warn_of_roles_alike(source: str, labels: set[str]) -> None:
    """A :class:`~scai.models.errors.TableWarning` where role labels differ only in case or
    spacing (``self`` and ``Self``): each is a role of its own, fitted apart, which a file
    whose roles were typed by hand seldom means."""
    groups: dict[str, list[str]] = {}
    for label in sorted(labels):
        groups.setdefault(" ".join(label.casefold().split()), []).append(label)
    alike = [names for names in groups.values() if len(names) > 1]
    if alike:
        shown = "; ".join(" and ".join(repr(name) for name in names) for names in alike[:5])
        warnings.warn(
            TableWarning(
                f"{source}: role labels that differ only in case or spacing are different "
                f"roles, fitted apart: {shown}; write each role one way if they are one"
            ),
            stacklevel=outside_scai(),
        )


def rejection_by_offer(table: pd.DataFrame, roles: dict[str, str]) -> pd.DataFrame:
    """Observed rejection rate per role and offer share (offer / pot, a fraction).

    Columns ``role, offer_share, n, observed``: one row per role and distinct offer share,
    sorted by both; ``n`` counts decisions and ``observed`` is the fraction rejected.
    """
    unknown = sorted(set(table["responder"]) - set(roles))
    if unknown:
        raise ValueError(f"no role for responder(s) {', '.join(map(repr, unknown[:10]))}")
    decisions = pd.DataFrame(
        {
            "role": table["responder"].map(roles).astype(str),
            "offer_share": table["offer"] / table["pot"],
            "rejected": 1 - table["accepted"],
        }
    )
    summary = (
        decisions.groupby(["role", "offer_share"], sort=True)["rejected"]
        .agg(n="size", observed="mean")
        .reset_index()
    )
    return summary.astype({"n": np.int64, "observed": float})
