"""Running a sweep: its cells through the one cached condition runner, then the table and
the figure (:func:`run_sweep`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scai.experiments.commands import file_in_the_way
from scai.experiments.runner import Interrupted, load_curve, run_jobs
from scai.experiments.sweep.backends import check_options, open_backend
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
    check_options(backend, scheduler, workers)  # (before any file is touched)
    out = check_path(out, "out")
    for name, folder in (("out", out), ("figures", figures)):
        if folder is None:
            continue
        if place := file_in_the_way(check_path(folder, name)):  # (nothing could be made)
            raise RunError(f"{name}: {place} is a file; give a folder")
    if _another_commands_table(table_path(out)):
        tell(
            f"{table_path(out)}: another command's table (no {STATUS!r} column: scai run "
            "inconsistency's sweep table, whose cells this sweep reuses from the cache they "
            "share) is replaced by this sweep's; scai run writes its own again"
        )
    cells = make_cells(spec) if cells is None else cells
    jobs = [(cond, cell.settings) for cell in cells for cond in cell.conditions]
    progress = Progress(cells, tell)
    # An earlier run's table and map go before this run computes: a run that ends without
    # writing its own (killed, or failing otherwise than by Ctrl-C) leaves none, not one of
    # another spec beside this run's cache (the same command resumes and writes both).
    # (the map under OUT's own figures folder too: an earlier run's, drawn without --figures)
    for earlier in {table_path(out), map_path(out, figures), map_path(out, None)}:
        earlier.unlink(missing_ok=True)
    try:
        # Once every cell is done, a Ctrl-C is held while the backend closes (a Dask cluster:
        # seconds) and the table and map are written: it lost both, every cell finished.
        with ctrl_c_deferred() as held:
            with open_backend(backend, scheduler, workers, tell) as where:
                tell(f"{len(cells)} cells ({len(jobs)} conditions) on {where.description}")
                with held.released():
                    outcome = run_jobs(
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
            results = dict(enumerate(outcome.results))
            table, path, figure = _write_table_and_map(
                spec, cells, results, outcome.errors, outcome.warned, out, figures
            )
            if held.caught:  # nothing left to stop
                tell(f"{path}: every cell had finished when Ctrl-C came: the sweep is complete")
                held.caught.clear()
    except Interrupted as stop:
        # The cells finished so far (stop.results: read as they finished) and the failed ones
        # go in the table, the others are marked NOT_RUN: sweep.csv is never an earlier run's
        # table beside this run's cache.
        try:
            table, path, _ = _write_table_and_map(
                spec, cells, stop.results, stop.errors, stop.warned, out, figures
            )
            done = int((table[STATUS] == "ok").sum())
            tell(
                f"{path}: the {done} of {len(cells)} cells finished so far; the others say "
                f"{NOT_RUN!r} or why they failed"
            )
        except KeyboardInterrupt:  # a second Ctrl-C: told, and the first's news goes on
            tell(
                f"{out / 'sweep.csv'}: interrupted again while writing it and its map: either "
                "may be missing (none is left from before this run; the same command resumes "
                "and writes both)"
            )
        except Exception as err:  # the interruption is the news: this only goes with it
            tell(f"{out / 'sweep.csv'}: not updated ({type(err).__name__}: {err})")
        raise
    failed = int(table[STATUS].str.startswith("failed").sum())
    if warned := int(table[WARNED].notna().sum()):
        tell(
            f"{warned} of {len(cells)} cells warned while they were computed (told above; "
            f"column {WARNED} of sweep.csv; on the map, their values are marked {WARNED_MARK})"
        )
    bounded = int((table[NEVER_REACHED].fillna(0) > 0).sum())
    if bounded and spec.measure in REACH_MEASURES:
        tell(
            f"{bounded} of {len(cells)} cells hold simulations whose belief never reached 0.95: "
            f"their {spec.measure} counts each at its last interaction + 1, a censored value, "
            f"not a measurement (column {NEVER_REACHED} of sweep.csv)"
        )
    return SweepResult(table, path, figure, failed, outcome.cached)


def _write_table_and_map(
    spec: SweepSpec,
    cells: list[Cell],
    results: dict[int, object],
    errors: dict[int, str],
    warned: dict[int, list[str]],
    out: Path,
    figures: Path | None,
) -> tuple[pd.DataFrame, Path, Path]:
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
    return table, path, figure
