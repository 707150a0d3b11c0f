"""The users table beside an interactions table: each user's policy and manner (the truth a
simulation knows), its rules and its reader."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from scai.models.data import USER_COLUMNS, _read_raw, wrong_header
from scai.models.errors import DataError, Problem
from scai.models.language import MANNERS


def check_users(df: pd.DataFrame, policies: Iterable[str]) -> list[Problem]:
    """Every problem in a raw users table (``sim, user, policy, manner``)."""
    policies = tuple(policies)
    if wrong := wrong_header(USER_COLUMNS, df.columns):
        return wrong
    problems = []
    first_row: dict[tuple[str, str], int] = {}
    for i, rec in enumerate(df[list(USER_COLUMNS)].itertuples(index=False), start=1):
        for col in ("sim", "user"):
            if getattr(rec, col) == "":
                problems.append(Problem(i, col, "", "a value is required"))
        seen = first_row.setdefault((rec.sim, rec.user), i)
        if seen != i:  # which row's policy and manner would be the user's is not said
            problems.append(
                Problem(
                    i,
                    "user",
                    rec.user,
                    f"listed again for sim {rec.sim!r} (row {seen}); each user once per simulation",
                )
            )
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
