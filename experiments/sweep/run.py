"""Running a sweep: its cells through the one cached condition runner, then the table and
the figure (:func:`run_sweep`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from scai.experiments.commands import file_in_the_way
from scai.experiments.conditions import Condition, Settings
from scai.experiments.runner import Interrupted, Outcome, load_curve, run_jobs
from scai.experiments.sweep.backends import Backend, check_options, open_backend
from scai.experiments.sweep.cells import Cell, make_cells, measure, never_reached
from scai.experiments.sweep.report import (
    NEVER_REACHED,
    NOT_RUN,
    STATUS,
    WARNED,
    WARNED_MARK,
    Progress,
    heat_map,
    map_path,
    sweep_table,
    table_path,
    write_table,
)
from scai.experiments.sweep.spec import REACH_MEASURES, SweepSpec
from scai.inference.workers import ctrl_c_deferred
from scai.models.errors import RunError, check_path, error_text

#: How many times a failed condition is tried again before its cell is skipped.
RETRIES = 1


@dataclass
class SweepResult:
    """A finished sweep: its table (also in ``table_path``), figure and failed cells."""

    table: pd.DataFrame
    table_path: Path
    figure: Path
    failed: int
    cached: int


def _another_commands_table(path: Path) -> bool:
    """Whether ``path`` (``OUT/sweep.csv``) is there and is no sweep's table (it has no
    ``status`` column): ``scai run inconsistency`` writes a ``sweep.csv`` of its own, and a
    sweep pointed at that run's folder (to reuse its cells from the cache they share) replaced
    it without a word."""
    if not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as file:
        header = file.readline().rstrip("\r\n").split(",")
    return STATUS not in header


def run_sweep(
    spec: SweepSpec,
    out: Path,
    figures: Path | None = None,
    backend: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    tell: Callable[[str], None] = print,
    cells: list[Cell] | None = None,
) -> SweepResult:
    """Run every cell of ``spec`` and write ``OUT/sweep.csv`` and ``FIGURES/sweep.png``.

    The cells' conditions go through :func:`scai.experiments.runner.run_jobs` with the cache
    in ``OUT/cache`` (the one ``scai run`` uses: an interrupted sweep resumes, a finished cell
    is free), on ``backend``. A condition that fails is tried once more (unless its own inputs
    failed it: :func:`~scai.experiments.runner.may_pass_again`), then its cell is skipped:
    told on one line, kept in the table with status ``failed: ERROR``; the result's ``failed``
    counts them. Rows do not depend on the backend or the order cells finish in (each cell's
    random numbers come from its seed and stream), so the table is the same bytes on every
    backend. Ctrl-C writes the table of the cells finished so far (the others' status
    :data:`~scai.experiments.sweep.report.NOT_RUN`) and raises
    :class:`scai.experiments.runner.Interrupted`. ``cells``: ``make_cells(spec)``, if the
    caller has made them already (``scai sweep`` checks them before it makes ``out``).
    """
    out = _checked_folders(out, figures, backend, scheduler, workers)
    _tell_if_another_commands_table(out, tell)
    cells = make_cells(spec) if cells is None else cells
    if not cells:  # (a spec's axes have values: an empty list is the caller's)
        raise RunError("cells: none given; a sweep runs at least one cell (make_cells(spec))")
    sweep = _Sweep(spec, cells, out, figures, tell)
    jobs = [(cond, cell.settings) for cell in cells for cond in cell.conditions]
    progress = Progress(cells, tell)
    _remove_earlier_results(out, figures)
    try:
        written, cached = _run_and_write(sweep, jobs, progress, backend, scheduler, workers)
    except Interrupted as stop:
        _write_what_finished(sweep, stop)
        raise
    failed = int(written.table[STATUS].str.startswith("failed").sum())
    _tell_caveats(sweep, written.table)
    return SweepResult(written.table, written.path, written.figure, failed, cached)


class _Sweep(NamedTuple):
    """What the steps of :func:`run_sweep` share: the spec, its cells (their conditions are
    the jobs, in order), the folders written (``figures``: ``None`` for ``OUT/figures``) and
    where lines are told."""

    spec: SweepSpec
    cells: list[Cell]
    out: Path
    figures: Path | None
    tell: Callable[[str], None]


class _Written(NamedTuple):
    """The sweep's table, where it was written, and its heat-map's file."""

    table: pd.DataFrame
    path: Path
    figure: Path


def _checked_folders(
    out: Path, figures: Path | None, backend: str, scheduler: str | None, workers: int | None
) -> Path:
    """``out``, checked (:func:`~scai.models.errors.check_path`), once the backend's options
    are: a :class:`RunError` for bad options, or for ``out`` or ``figures`` where a file is in
    the way of the folder, before any file is touched (nothing could be made)."""
    check_options(backend, scheduler, workers)  # (before any file is touched)
    out = check_path(out, "out")
    for name, folder in (("out", out), ("figures", figures)):
        if folder is None:
            continue
        if place := file_in_the_way(check_path(folder, name)):  # (nothing could be made)
            raise RunError(f"{name}: {place} is a file; give a folder")
    return out


def _tell_if_another_commands_table(out: Path, tell: Callable[[str], None]) -> None:
    """Tell that ``OUT/sweep.csv`` is another command's table (:func:`_another_commands_table`)
    where it is, as this sweep will replace it."""
    if _another_commands_table(table_path(out)):
        tell(
            f"{table_path(out)}: another command's table (no {STATUS!r} column: scai run "
            "inconsistency's sweep table, whose cells this sweep reuses from the cache they "
            "share) is replaced by this sweep's; scai run writes its own again"
        )


def _remove_earlier_results(out: Path, figures: Path | None) -> None:
    """Remove an earlier run's table and map (``OUT/sweep.csv``, the map under ``figures``
    and under ``OUT/figures``), before this run computes."""
    # An earlier run's table and map go before this run computes: a run that ends without
    # writing its own (killed, or failing otherwise than by Ctrl-C) leaves none, not one of
    # another spec beside this run's cache (the same command resumes and writes both).
    # (the map under OUT's own figures folder too: an earlier run's, drawn without --figures)
    for earlier in {table_path(out), map_path(out, figures), map_path(out, None)}:
        earlier.unlink(missing_ok=True)


def _run_and_write(
    sweep: _Sweep,
    jobs: list[tuple[Condition, Settings]],
    progress: Progress,
    backend: str,
    scheduler: str | None,
    workers: int | None,
) -> tuple[_Written, int]:
    """Run the cells' ``jobs`` on the backend (``progress`` hears of them as they end), then
    write the table and the map; the written files and how many jobs came from the cache.
    Ctrl-C while the jobs run raises :class:`Interrupted` (``run_jobs``'); once every cell is
    done, it is held until the backend is closed and the table and map are written."""
    # Once every cell is done, a Ctrl-C is held while the backend closes (a Dask cluster:
    # seconds) and the table and map are written: it lost both, every cell finished.
    with ctrl_c_deferred() as held:
        with open_backend(backend, scheduler, workers, sweep.tell) as where:
            sweep.tell(f"{len(sweep.cells)} cells ({len(jobs)} conditions) on {where.description}")
            with held.released():
                outcome = _run_cells(jobs, sweep.out, where, progress)
        results = dict(enumerate(outcome.results))
        written = _write_table_and_map(
            sweep.spec,
            sweep.cells,
            results,
            outcome.errors,
            outcome.warned,
            sweep.out,
            sweep.figures,
        )
        if held.caught:  # nothing left to stop
            sweep.tell(
                f"{written.path}: every cell had finished when Ctrl-C came: the sweep is complete"
            )
            held.caught.clear()
    return written, outcome.cached


def _run_cells(
    jobs: list[tuple[Condition, Settings]], out: Path, where: Backend, progress: Progress
) -> Outcome:
    """The ``jobs`` through the cache in ``OUT/cache`` on the backend ``where``: a failed one
    tried :data:`RETRIES` times more, then given up while the others go on; their results
    read back as learning curves."""
    return run_jobs(
        jobs,
        out / "cache",
        workers=where.workers,
        progress=False,
        executor=where.executor,
        retries=RETRIES,
        keep_going=True,
        on_event=progress,
        load=load_curve,
    )


def _write_what_finished(sweep: _Sweep, stop: Interrupted) -> None:
    """After Ctrl-C (``stop``): write the table and map of the cells ``run_jobs`` had when it
    stopped and tell how far the sweep got; a second Ctrl-C or an error while they are written
    is told instead, never raised (the caller raises ``stop`` on)."""
    # The cells finished so far (stop.results: read as they finished) and the failed ones
    # go in the table, the others are marked NOT_RUN: sweep.csv is never an earlier run's
    # table beside this run's cache.
    try:
        table, path, _ = _write_table_and_map(
            sweep.spec,
            sweep.cells,
            stop.results,
            stop.errors,
            stop.warned,
            sweep.out,
            sweep.figures,
        )
        done = int((table[STATUS] == "ok").sum())
        sweep.tell(
            f"{path}: the {done} of {len(sweep.cells)} cells finished so far; the others say "
            f"{NOT_RUN!r} or why they failed"
        )
    except KeyboardInterrupt:  # a second Ctrl-C: told, and the first's news goes on
        sweep.tell(
            f"{sweep.out / 'sweep.csv'}: interrupted again while writing it and its map: either "
            "may be missing (none is left from before this run; the same command resumes "
            "and writes both)"
        )
    except Exception as err:  # the interruption is the news: this only goes with it
        sweep.tell(f"{sweep.out / 'sweep.csv'}: not updated ({type(err).__name__}: {err})")


def _tell_caveats(sweep: _Sweep, table: pd.DataFrame) -> None:
    """Tell how many cells warned while they were computed, and, for a measure of reaching a
    belief, how many hold a censored value (a simulation whose belief never reached 0.95)."""
    cells = len(sweep.cells)
    if warned := int(table[WARNED].notna().sum()):
        sweep.tell(
            f"{warned} of {cells} cells warned while they were computed (told above; "
            f"column {WARNED} of sweep.csv; on the map, their values are marked {WARNED_MARK})"
        )
    bounded = int((table[NEVER_REACHED].fillna(0) > 0).sum())
    if bounded and sweep.spec.measure in REACH_MEASURES:
        sweep.tell(
            f"{bounded} of {cells} cells hold simulations whose belief never reached 0.95: "
            f"their {sweep.spec.measure} counts each at its last interaction + 1, a censored "
            f"value, not a measurement (column {NEVER_REACHED} of sweep.csv)"
        )


def _write_table_and_map(
    spec: SweepSpec,
    cells: list[Cell],
    results: dict[int, object],
    errors: dict[int, str],
    warned: dict[int, list[str]],
    out: Path,
    figures: Path | None,
) -> _Written:
    """The table and the heat-map of the cells, from their jobs' ``results``, ``errors`` and
    warnings (by job index: the cells' conditions in order); a cell with a job in neither
    ``results`` nor ``errors`` was not run."""
    values, statuses, never, told = [], [], [], []
    at = 0
    for cell in cells:
        span = range(at, at + len(cell.conditions))
        at += len(cell.conditions)
        failed = [errors[i] for i in span if i in errors]
        told.append(list(dict.fromkeys(line for i in span for line in warned.get(i, []))))
        never.append(None)
        if failed:
            values.append(None)
            statuses.append(f"failed: {failed[0]}")
        elif all(i in results for i in span):
            try:
                curves = [results[i] for i in span]
                values.append(measure(cell, curves, spec.measure))
                never[-1] = never_reached(curves)
                statuses.append("ok")
            except (ValueError, TypeError, KeyError) as err:  # a cached curve edited by hand
                values.append(None)
                why = error_text(err)
                statuses.append(f"failed: its learning curves cannot be measured ({why})")
        else:
            values.append(None)
            statuses.append(NOT_RUN)
    table = sweep_table(cells, spec.measure, values, statuses, never, told)
    path = write_table(table, out)
    x, y = spec.figure
    figure = heat_map(
        table,
        spec.measure,
        x,
        y,
        map_path(out, figures),
        f"{spec.measure} over {x}" + (f" x {y}" if y else ""),
    )
    return _Written(table, path, figure)
