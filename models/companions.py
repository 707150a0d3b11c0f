"""The files that go with an interactions table (its users, its parameters): their names beside
the table, and the table a companion file belongs to."""

from __future__ import annotations

import contextlib
from pathlib import Path


def companion_path(table: str | Path, kind: str, suffix: str = ".csv") -> Path:
    """A file written beside a table: ``X.csv`` -> ``X.KIND.csv`` (``suffix``); a table of any
    other name keeps it whole, ``X.tsv`` -> ``X.tsv.KIND.csv``, so that ``X.csv`` and
    ``X.tsv`` beside each other do not share one (a second ``scai simulate --out X.tsv``
    replaced ``X.csv``'s users)."""
    path = Path(table)
    base = path.stem if path.suffix.lower() == ".csv" else path.name
    return path.with_name(f"{base}.{kind}{suffix}")


#: The files :func:`companion_path` names beside a table, by kind: their suffixes (the users
#: of a simulation; an import's runs, GPT-4 rows, report and failed-import report).
COMPANIONS = {
    "users": ".csv",
    "runs": ".csv",
    "gpt4": ".csv",
    "report": ".md",
    "failed-import": ".md",
}


def table_of_companion(path: str | Path) -> tuple[Path, str] | None:
    """``(table, kind)`` where ``path`` is the :func:`companion_path` of a ``table`` that
    exists (``X.users.csv`` beside ``X.csv`` or ``X.CSV``, ``X.tsv.users.csv`` beside
    ``X.tsv``); else ``None``."""
    path = Path(path)
    for kind, suffix in COMPANIONS.items():
        end = f".{kind}{suffix}"
        if not path.name.lower().endswith(end) or len(path.name) == len(end):
            continue
        base = path.name[: -len(end)]
        tables = [path.with_name(base)]
        with contextlib.suppress(OSError):  # a table's suffix in any case: a.CSV's users
            tables += [e for e in path.parent.iterdir() if e.name.lower() == f"{base}.csv".lower()]
        for table in tables:
            if table.is_file() and companion_path(table, kind, suffix).name == path.name:
                return table, kind
    return None


def users_path(interactions_path: str | Path) -> Path:
    """``X.csv`` -> ``X.users.csv`` (:func:`companion_path`)."""
    return companion_path(interactions_path, "users")


def parameters_path(interactions_path: str | Path) -> Path:
    """``X.csv`` -> ``X.parameters.csv`` (:func:`companion_path`): a simulation's group-level
    values (:attr:`~scai.models.simulate.Simulation.parameters`)."""
    return companion_path(interactions_path, "parameters")
