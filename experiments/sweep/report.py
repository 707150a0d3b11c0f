"""What a sweep shows: its progress (cells done, failed, remaining), the tidy table
``sweep.csv`` and the heat-map of the measure over two axes."""

from __future__ import annotations

import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from scai.experiments.sweep.cells import Cell
from scai.experiments.sweep.spec import REACH_MEASURES
from scai.models.writing import write_csv_atomic

#: The table's columns after the axes: the measure (named after it), its 95% interval, how
#: many of the cell's simulations never reached 95% (:data:`NEVER_REACHED`), what its
#: computation warned of (:data:`WARNED`), and ``ok``, ``failed: ERROR`` or :data:`NOT_RUN`
#: (such a cell keeps its row, with empty numbers).
INTERVAL = ("lo", "hi")
#: The cell's simulations whose belief in the true norm never reached 0.95 in one of its
#: conditions: ``interactions_to_95`` and ``slowdown`` count each at its last interaction + 1,
#: so a cell with any holds a censored value, not a measurement.
NEVER_REACHED = "never_reached_95"
#: scai's warnings while the cell's conditions were computed (an engine's diagnostic, a grid
#: coarser than the posterior), each ``Category: message``, joined by :data:`WARNING_JOIN`;
#: empty where none. A cell that warned is still ``ok``: its value is there, to be read with
#: the warning in mind.
WARNED = "warnings"
WARNING_JOIN = " | "
STATUS = "status"
#: The status of a cell an interrupted sweep had not finished (its row's numbers are empty).
NOT_RUN = "not run: interrupted"
#: The columns after the measure: what the map does not take for axes.
RESULTS = (*INTERVAL, NEVER_REACHED, WARNED, STATUS)
#: The heat-map's marks of a value: a censored one (:data:`NEVER_REACHED`), one whose
#: computation warned (:data:`WARNED`).
CENSORED_MARK, WARNED_MARK = "*", "!"
#: ``(flag, mark, what it means)``: each mark, the column of the map's frame that sets it
#: (:func:`heat_map`) and the note's words. ``_partial``: a mean over axes the map does not
#: show, of which some cells have no value (failed, or not run by an interrupted sweep).
MARKS = (
    (
        "_censored",
        CENSORED_MARK,
        "some simulations never reached 95% (a censored value, not a measurement)",
    ),
    ("_warned", WARNED_MARK, "scai warned while computing it (sweep.csv: warnings)"),
    (
        "_partial",
        "~",
        "a mean over only some of the cells averaged: the others failed or were not run "
        "(sweep.csv: status)",
    ),
)
#: The heat-map's largest size in inches (at most ~2,000 x 1,400 pixels): a sweep of
#: thousands of values along an axis is drawn at this size, its cells narrower, not as a
#: figure of a million pixels across that takes minutes to draw.
MAX_WIDTH, MAX_HEIGHT = 16.0, 12.0


class Progress:
    """Counts cells as their conditions end and tells ``cells: D done, F failed, R remaining``
    (at most one such line a ``every`` seconds, and always the last); every retry and failure
    is told at once on its own line. Once a cell has been computed (not found in the cache),
    the line ends with the time left at the rate cells have been computed so far (``clock``:
    seconds, :func:`time.monotonic`)."""

    def __init__(
        self,
        cells: list[Cell],
        tell: Callable[[str], None],
        every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cells, self.tell, self.every, self.clock = cells, tell, every, clock
        #: job index -> cell index; the jobs are the cells' conditions in order
        self.cell_of = [i for i, cell in enumerate(cells) for _ in cell.conditions]
        self.waiting = [len(cell.conditions) for cell in cells]
        self.failed: set[int] = set()
        self.done = 0
        self.computed = 0  # cells finished (done or failed) by computing, not from the cache
        self._began = self._last = clock()
        self._retried: set[tuple[int, str | None]] = set()  # (cell, error) told once
        self._told = ""  # the last count line: not told twice in a row

    def __call__(self, kind: str, jobs: list[int], error: str | None) -> None:
        """A :data:`scai.experiments.runner.OnEvent`."""
        if kind == "cached":  # at the start: the time left counts from the first computation
            self._began = self.clock()
        for job in jobs:
            cell = self.cell_of[job]
            label = self.cells[cell].label()
            if kind == "retry":
                if (cell, error) not in self._retried:  # (a cell's conditions fail alike)
                    self._retried.add((cell, error))
                    self.tell(f"cell {label}: {error}; trying it once more")
                continue
            finished_before = self.done + len(self.failed)
            if kind == "failed" and cell not in self.failed:
                self.failed.add(cell)
                retried = any(c == cell for c, _ in self._retried)
                how = "failed again" if retried else "failed, not retried: its inputs fail it"
                self.tell(
                    f"cell {label}: {how} ({error}); skipped: its row in sweep.csv says "
                    "'failed', and the next run of the same command tries it again"
                )
            self.waiting[cell] -= 1
            if self.waiting[cell] == 0 and cell not in self.failed:
                self.done += 1
            if kind != "cached":
                self.computed += self.done + len(self.failed) - finished_before
        if kind != "retry":
            self.show(force=kind == "cached")

    def show(self, force: bool = False) -> None:
        now = self.clock()
        finished = self.done + len(self.failed)
        if force or finished == len(self.cells) or now - self._last >= self.every:
            self._last = now
            remaining = len(self.cells) - finished
            line = f"cells: {self.done} done, {len(self.failed)} failed, {remaining} remaining"
            if remaining and self.computed:
                left = remaining * (now - self._began) / self.computed
                line += f", {duration(left)} left at this pace"
            if line != self._told:  # (events after the last cell, a failed cell's other jobs)
                self._told = line
                self.tell(line)


def duration(seconds: float) -> str:
    """``seconds`` as a person reads a wait: ``under a minute``, ``about 12 min``, ``about 3 h
    05 min``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def sweep_table(
    cells: list[Cell],
    measure: str,
    values: list[tuple[float, float, float] | None],
    statuses: list[str],
    never_reached: list[int | None] | None = None,
    warned: list[list[str]] | None = None,
) -> pd.DataFrame:
    """One row per cell: its axis values, the measure, its interval, how many of its
    simulations never reached 95% (:data:`NEVER_REACHED`; empty where not measured), what it
    warned of (:data:`WARNED`; empty where nothing) and its status (``ok``, ``failed: ERROR``
    or :data:`NOT_RUN`)."""
    rows = []
    never_reached = never_reached or [None] * len(cells)
    warned = warned or [[]] * len(cells)
    for cell, value, status, never, told in zip(
        cells, values, statuses, never_reached, warned, strict=True
    ):
        row: dict[str, object] = dict(cell.values)
        number, lo, hi = value if value is not None else (np.nan, np.nan, np.nan)
        row.update({measure: number, INTERVAL[0]: lo, INTERVAL[1]: hi})
        row[NEVER_REACHED] = pd.NA if never is None else never
        row[WARNED] = WARNING_JOIN.join(told) if told else np.nan  # empty, as read back
        row[STATUS] = status
        rows.append(row)
    table = pd.DataFrame(rows)
    table[NEVER_REACHED] = table[NEVER_REACHED].astype("Int64")  # a count, empty where none
    return table


def table_path(out: Path) -> Path:
    """Where a sweep into ``out`` writes its table: ``OUT/sweep.csv``."""
    return Path(out) / "sweep.csv"


def map_path(out: Path, figures: Path | None) -> Path:
    """Where a sweep into ``out`` draws its heat-map: ``FIGURES/sweep.png`` (by default
    ``OUT/figures``)."""
    return Path(figures or Path(out) / "figures") / "sweep.png"


def write_table(table: pd.DataFrame, out: Path) -> Path:
    """``OUT/sweep.csv``, written atomically."""
    path = table_path(out)
    write_csv_atomic(table, path)
    return path


def heat_map(
    table: pd.DataFrame, measure: str, x: str, y: str | None, path: Path, title: str
) -> Path:
    """A seaborn heat-map of ``measure`` over axes ``x`` (columns) and ``y`` (rows, largest at
    the top); other axes are averaged (the title says so); failed cells are blank, and the
    note under the map counts them. A value
    with a simulation that never reached 95% (a censored value) is marked
    :data:`CENSORED_MARK`, one whose computation warned :data:`WARNED_MARK`, and a note under
    the map says so (on a map too large to write its values in: how many). A mean over cells
    of which some have no value (failed, not run) is marked too. Censoring is marked only
    for the measures that count a simulation's reach (``REACH_MEASURES``)."""
    from scai.experiments.plots import pyplot, save_figure, seaborn

    plt, sns = pyplot(), seaborn()

    axes = [c for c in table.columns if c not in (measure, *RESULTS)]
    averaged = [a for a in axes if a not in (x, y) and table[a].nunique() > 1]
    frame = table if y is not None else table.assign(_row=measure)
    valued = frame[measure].notna()  # a cell without a value shows no mark
    frame = frame.assign(
        _censored=frame[NEVER_REACHED].fillna(0).gt(0) & valued & (measure in REACH_MEASURES),
        _warned=frame[WARNED].notna() & valued,
        _missing=~valued,
    )
    rows = y if y is not None else "_row"

    def pivot(values: str, how: str) -> pd.DataFrame:
        grid = frame.pivot_table(index=rows, columns=x, values=values, aggfunc=how, dropna=False)
        return grid.sort_index(ascending=False)

    grid = pivot(measure, "mean")
    values = np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.2f}", otypes=[object])
    labels = values(grid.to_numpy(dtype=float))

    def marked(flag: str) -> np.ndarray:
        return pivot(flag, "max").eq(True).to_numpy(bool, na_value=False)

    flags = {flag: marked(flag) for flag in ("_censored", "_warned")}
    flags["_partial"] = marked("_missing") & grid.notna().to_numpy()  # a blank value: no mark
    for flag, mark, _ in MARKS:
        labels += np.where(flags[flag], mark, "")
    sns.set_theme(style="white", context="notebook")
    width, height = max(4.5, 1.0 + 0.9 * grid.shape[1]), max(3.0, 1.0 + 0.6 * grid.shape[0])
    # values written only where each has its room: not on a map shrunk to the largest size
    annotate = grid.size <= 400 and width <= MAX_WIDTH and height <= MAX_HEIGHT
    width, height = min(MAX_WIDTH, width), min(MAX_HEIGHT, height)
    fig, ax = plt.subplots(figsize=(width, height))
    with warnings.catch_warnings():
        # no cell finished yet (an interrupted sweep's table): an empty map, not NumPy's noise
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        sns.heatmap(
            grid,
            annot=labels if annotate else False,
            fmt="",
            cmap="rocket_r",
            ax=ax,
            cbar_kws={"label": measure},
        )
    ax.set_xlabel(x)
    ax.set_ylabel(y or "")
    if averaged:
        title += f" (mean over {', '.join(averaged)})"
    ax.set_title(textwrap.fill(title, int(width * 11)), fontsize=10)  # all of it, in the figure
    fig.tight_layout()
    blank = int(grid.isna().to_numpy().sum())
    if note := _marks_note(flags, annotate, int(width * 15), blank):
        # under the map, the figure grown to hold it (bbox_inches="tight")
        fig.text(0.01, 0.0, note, fontsize=7, ha="left", va="top")
        return save_figure(fig, path, bbox_inches="tight")
    return save_figure(fig, path)


def _marks_note(flags: dict[str, np.ndarray], annotated: bool, chars: int, blank: int = 0) -> str:
    """The note under the map on its marked values (``flags``: each mark's flag per value of
    the map): what the marks mean, or on a map without values how many values are which, and
    how many squares are blank (no value); one line each, wrapped at ``chars`` characters."""
    parts = [
        f"{mark} {what}" if annotated else f"{count} values: {what}"
        for flag, mark, what in MARKS
        if (count := int(flags[flag].sum()))
    ]
    if blank:  # (a failed cell was a blank square with no word)
        parts.append(f"{blank} blank: no value, every cell there failed or was not run "
                     "(sweep.csv: status)")  # fmt: skip
    return "\n".join(textwrap.fill(part, chars, subsequent_indent="  ") for part in parts)
