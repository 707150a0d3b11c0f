"""``import_logs``: a source of the original study's logs to scai's tables, and writing them.

Beside ``FILE.csv`` (the interactions, with the messages as written) go ``FILE.users.csv``,
``FILE.gpt4.csv``, ``FILE.runs.csv`` and ``FILE.report.md``; every file is written atomically
(:func:`scai.models.writing.write_atomic`), so an interrupted import leaves no half-written table.
A failed import (nothing converted, or ``--strict`` with problems) writes only its report, as
``FILE.failed-import.md``: the five files of an earlier import stay together, as they were.
"""

from __future__ import annotations

from pathlib import Path

from scai.models.companions import companion_path, users_path
from scai.models.data import write_interactions
from scai.models.errors import RunError
from scai.models.scai_logs.report import ImportReport
from scai.models.scai_logs.sources import read_runs
from scai.models.scai_logs.tables import ImportResult, build_tables
from scai.models.writing import write_atomic, write_csv_atomic, write_together


def import_logs(source: str | Path, progress: bool = False) -> ImportResult:
    """Read every run folder in ``source`` (a folder or a tar archive) and convert it
    (``progress``: a bar of the runs converted, on a terminal).

    Problems in the logs do not raise: they are in ``result.report``; a source that is not a
    folder or a readable archive raises ``ValueError``."""
    report = ImportReport(str(source))
    result = build_tables(read_runs(source, report), report, progress)
    starts = result.runs[["assistant_start_proposing", "assistant_start_deciding"]]
    differ = int((starts.iloc[:, 0] != starts.iloc[:, 1]).sum())
    if differ:
        report.notes.append(
            f"in {differ} of {len(result.runs)} runs the assistant's proposing and deciding "
            "agents start epoch 1 from different configured principles (initial_util)"
        )
    return result


def check_converted(result: ImportResult, source: str | Path) -> None:
    """A :class:`~scai.models.errors.RunError` naming ``source`` when no game converted (no
    run folders, or none readable): an empty table would pass for an import of it."""
    if not result.interactions.empty:
        return
    report = result.report
    found = (
        f"{len(report.problems)} problem(s), first: {report.problems[0]}"
        if report.problems
        else "no run folders (id_N_config with id_N_run_K.csv) found"
    )
    raise RunError(f"{source}: no game converted: {found}")


def output_paths(out: str | Path) -> dict[str, Path]:
    """Where :func:`write_import` puts each table, keyed by table."""
    out = Path(out)
    return {
        "interactions": out,
        "users": users_path(out),
        "gpt4": companion_path(out, "gpt4"),
        "runs": companion_path(out, "runs"),
        "report": companion_path(out, "report", ".md"),
    }


def failed_report_path(out: str | Path) -> Path:
    """Where a failed import to ``out`` writes its report: ``FILE.failed-import.md``, a name
    not to be taken for the report beside the tables (``FILE.report.md``), which a failed
    import leaves as it was, with the tables it describes."""
    return companion_path(out, "failed-import", ".md")


def write_failed_report(result: ImportResult, out: str | Path, failure: str) -> Path:
    """Write the report of an import that wrote no table (``failure`` says why) to
    :func:`failed_report_path`; return its path."""
    text = (
        f"**This import failed: {failure}. No table was written; any {Path(out).name} and "
        f"{output_paths(out)['report'].name} beside this file are an earlier import's.**\n\n"
        + result.report.markdown()
    )

    def write(tmp: str) -> None:
        Path(tmp).write_text(text)

    return write_atomic(failed_report_path(out), write)


def write_import(result: ImportResult, out: str | Path) -> dict[str, Path]:
    """Write every table and the report as one result (:func:`~scai.models.writing.
    write_together`: an interruption leaves the previous import's files or the new ones, never
    a new interactions table beside the previous users and report); return their paths. The
    report of an earlier failed import to ``out`` (:func:`failed_report_path`) is removed once
    they are written: it told of an attempt these files replace."""
    paths = output_paths(out)
    text = result.report.markdown()
    write_together(
        {
            paths["interactions"]: lambda p: write_interactions(result.interactions, p),
            paths["users"]: lambda p: write_csv_atomic(result.users, p),
            paths["gpt4"]: lambda p: write_csv_atomic(result.gpt4, p, quote_text=True),
            paths["runs"]: lambda p: write_csv_atomic(result.runs, p),
            paths["report"]: lambda p: Path(p).write_text(text),
        }
    )
    failed_report_path(out).unlink(missing_ok=True)
    return paths
