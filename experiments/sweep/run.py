"""Running a sweep: its cells through the one cached condition runner, then the table and
the figure (:func:`run_sweep`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scai.experiments.runner import load_curve, run_jobs
from scai.experiments.sweep.backends import open_backend
from scai.experiments.sweep.cells import make_cells, measure
from scai.experiments.sweep.report import Progress, heat_map, sweep_table, write_table
from scai.experiments.sweep.spec import SweepSpec

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


def run_sweep(
    spec: SweepSpec,
    out: Path,
    figures: Path | None = None,
    backend: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    tell: Callable[[str], None] = print,
) -> SweepResult:
    """Run every cell of ``spec`` and write ``OUT/sweep.csv`` and ``FIGURES/sweep.png``.

    The cells' conditions go through :func:`scai.experiments.runner.run_jobs` with the cache
    in ``OUT/cache`` (the one ``scai run`` uses: an interrupted sweep resumes, a finished cell
    is free), on ``backend``. A condition that fails is tried once more, then its cell is
    skipped: told on one line, kept in the table with status ``failed: ERROR``; the result's
    ``failed`` counts them. Rows do not depend on the backend or the order cells finish in
    (each cell's random numbers come from its seed and stream), so the table is the same
    bytes on every backend. Ctrl-C raises :class:`scai.experiments.runner.Interrupted`.
    """
    out = Path(out)
    cells = make_cells(spec)
    jobs = [(cond, cell.settings) for cell in cells for cond in cell.conditions]
    progress = Progress(cells, tell)
    with open_backend(backend, scheduler, workers) as where:
        tell(f"{len(cells)} cells ({len(jobs)} conditions) on {where.description}")
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
    values, errors = [], []
    at = 0
    for cell in cells:
        span = range(at, at + len(cell.conditions))
        at += len(cell.conditions)
        failed = [outcome.errors[i] for i in span if i in outcome.errors]
        if failed:
            values.append(None)
            errors.append(failed[0])
        else:
            values.append(measure(cell, [outcome.results[i] for i in span], spec.measure))
            errors.append(None)
    table = sweep_table(cells, spec.measure, values, errors)
    path = write_table(table, out)
    x, y = spec.figure
    figure = heat_map(
        table,
        spec.measure,
        x,
        y,
        Path(figures or out / "figures") / "sweep.png",
        f"{spec.measure} over {x}" + (f" x {y}" if y else ""),
    )
    failed = sum(e is not None for e in errors)
    return SweepResult(table, path, figure, failed, outcome.cached)
