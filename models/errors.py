"""The errors scai raises for bad input: one type per layer, all subclasses of :class:`ScaiError`.

::

    ScaiError (a ValueError, so ``except ValueError`` keeps working)
    |-- DataError        an interaction, users or human-data table   (scai.models.data)
    |-- HypothesisError  a hypothesis: a preset name, a TOML file, a Hypothesis's values
    |-- EngineError      an inference engine's options               (scai.inference.errors)
    `-- RunError         a run's options: counts, sizes, seeds, output paths

Every message names the option, file, row, column or key, the value and what is allowed. The
command line prints :meth:`ScaiError.one_line` and exits with code 2.

:func:`check_count` is the one check of a whole-number option (``sims``, ``epochs``, ``draws``,
``seed``, ...); the command line's argparse types call it too.
"""

from __future__ import annotations

import errno
import numbers
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Seeds reach ``numpy.random.seed`` (through ``pyro.set_rng_seed``), which takes 0..2**32 - 1.
MAX_SEED = 2**32 - 1


def not_a_regular_file(path: str | Path) -> str | None:
    """Why ``path``, which exists, cannot be read as a file: a folder, a socket or a device
    (``/dev/zero`` never ends; a terminal waits for typing); ``None`` for a regular file, a
    pipe (``cat table.csv | scai validate /dev/stdin``: reading it ends when the writer
    does) or a path that does not exist (each reader says that in its own words)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return None
    return f"is {file_kind(mode)}, not a regular file"


def missing(path: str | Path, what: str | None = "file") -> str:
    """Why ``path``, which does not lead to a file (``Path.exists()`` is false), cannot be
    read, in words: a loop of symbolic links, a symbolic link to nothing, or "``what`` does
    not exist" (``what`` None: "does not exist", after the path)."""
    try:
        os.stat(path)
    except OSError as err:
        if os.path.islink(path):
            if err.errno == errno.ELOOP:
                return "is a loop of symbolic links"
            return "is a symbolic link to nothing"
        if err.errno == errno.ELOOP:  # a folder on the way is one
            return "has a loop of symbolic links on its way"
    return "does not exist" if what is None else f"{what} does not exist"


def file_kind(mode: int) -> str:
    """What a file of ``mode`` (``os.stat``'s ``st_mode``) is, in words: "a folder", "a named
    pipe", "a socket", "a character device", ..."""
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a named pipe",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISLNK: "a symbolic link",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def not_replaceable(path: str | Path) -> str | None:
    """Why ``path``, if it exists, is no file for scai to write: a pipe, a socket or a device
    (scai writes an output beside it and renames it into its place: ``--out /dev/null`` would
    replace the system's null device with a file). ``None`` for a regular file or a path that
    does not exist; folders and links are refused by the callers in their own words."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        return None
    return (
        f"is {file_kind(mode)}; scai writes its outputs as regular files, replacing what is "
        "at the path: give a file path"
    )


class ScaiError(ValueError):
    """Bad input to scai; the message says where, what was given and what is allowed."""

    #: Whether the same call, made again unchanged, may succeed: not for bad input, nor for a
    #: limit its input exceeds (a grid beyond the exact engine's budget); where the machine's
    #: state decides (a memory limit taken from the memory available), the error says so
    #: (:func:`scai.models.memory.check_memory`). A sweep retries a cell that failed with a
    #: scai error only where it may pass (:func:`scai.experiments.runner.may_pass_again`).
    may_pass_again = False

    def one_line(self) -> str:
        """The message on one line (the command line prints this)."""
        return " ".join(part.strip() for part in str(self).splitlines() if part.strip())


@dataclass(frozen=True)
class Problem:
    """One problem in a table: where (1-based data row, column), the value, what is allowed."""

    row: int | None
    column: str | None
    value: object
    allowed: str
    whole: str = "file"  # what a problem of no row is in: a file, or a table in memory
    part: str = "column"  # what ``column`` names: a table's column, or a document's key

    #: Characters of a value shown: a 10 MB cell made a 10 MB "one line" of its error.
    SHOWN_CHARS = 80

    def __str__(self) -> str:
        return self.said(None if self.row is None else [self.row])

    def said(self, rows: list[int] | None) -> str:
        """The problem said of ``rows`` (the same problem in each; ``None``: of no row)."""
        where = self.whole if rows is None else _rows_said(rows)
        col = f", {self.part} {self.column!r}" if self.column else ""
        shown = show_value(self.value, self.SHOWN_CHARS + 3, length=True)
        val = f": value {shown}" if self.value is not None else ""
        return f"{where}{col}{val}: {self.allowed}"

    def same_but_row(self) -> tuple:
        """What the problem says but its row: a key equal for the same problem in two rows."""
        value = self.value
        if not isinstance(value, _PLAIN):  # (unhashable, or equal as it is not shown)
            value = show_value(value, self.SHOWN_CHARS + 3, length=True)
        elif value != value:  # NaN: equal to no NaN
            value = "nan"
        return (self.column, type(self.value), value, self.allowed, self.whole, self.part)


#: The values a problem's key holds as they are (hashable, and equal as they are shown): a
#: tuple, not ``str | int | ...``, which builds a union at every call (a million problems'
#: keys took 3 s, not 0.3).
_PLAIN = (str, int, float, bool, type(None))


#: Runs of rows said before "...": a problem in 10,000 scattered rows stays one line.
ROW_RUNS_SHOWN = 8


def _rows_said(rows: list[int]) -> str:
    """``row 7``, or ``rows 1-3, 7, 9-12 (8 rows)``: the rows in increasing order, each run
    of consecutive rows as its ends, at most :data:`ROW_RUNS_SHOWN` runs."""
    ordered = sorted(set(rows))
    if len(ordered) == 1:
        return f"row {ordered[0]}"
    runs: list[list[int]] = []
    for row in ordered:
        if runs and row == runs[-1][1] + 1:
            runs[-1][1] = row
        else:
            runs.append([row, row])
    said = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:ROW_RUNS_SHOWN]]
    if len(runs) > ROW_RUNS_SHOWN:
        said.append("...")
    return f"rows {', '.join(said)} ({len(ordered):,} rows)"


def show_value(value: object, limit: int = 60, length: bool = False) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (ending "...") if longer,
    and then, with ``length``, followed by how long the value was."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's limit of digits for text (4,300)
        if not isinstance(value, int):
            raise
        return f"an integer of {value.bit_length():,} bits"
    if len(text) <= limit:
        return text
    cut = text[: limit - 3] + "..."
    if not length:
        return cut
    size = f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} as text"
    return f"{cut} ({size})"


def utf8_writable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (a TOML or NetCDF file): not a lone
    surrogate (``"\\ud800"``), which no file holds."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def error_text(error: BaseException) -> str:
    """An error's message on one line (its type's name if it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


class DataError(ScaiError):
    """Invalid input data; ``problems`` lists every problem found."""

    SHOWN = 50  # lines of problems in the message (the same problem in many rows: one line)
    SHOWN_ON_ONE_LINE = 5

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(self._render(self.SHOWN, "\n  ", "\n  "))

    def _render(self, shown: int, first: str, separator: str) -> str:
        groups, count = self._same_problems()
        parts = [problem.said(rows) for problem, rows in groups[:shown]]
        if count > shown:
            said = sum(len(rows or (None,)) for _, rows in groups[:shown])
            parts.append(f"... and {len(self.problems) - said} more")
        return (
            f"{self.source}: {len(self.problems)} problem(s) found:{first}{separator.join(parts)}"
        )

    def one_line(self) -> str:
        return self._render(self.SHOWN_ON_ONE_LINE, " ", "; ")

    def _same_problems(self) -> tuple[list[tuple[Problem, list[int] | None]], int]:
        """The problems in order of first appearance, the same problem in several rows said
        once with its rows (a currency misspelt in every row of 100,000 was 50 lines alike):
        the first :data:`SHOWN` of these groups, and how many there are. Grouped once for
        the message and :meth:`one_line` (while ``problems`` is the list grouped), without a
        container per group (a million problems in a million groups: 2.6 s where it had them,
        the garbage collector's)."""
        cached = self.__dict__.get("_groups")
        if cached is not None and cached[0] is self.problems and cached[1] == len(self.problems):
            return cached[2]
        number: dict[object, int] = {}  # each problem's key: the number of its group
        group = [
            number.setdefault(i if p.row is None else p.same_but_row(), len(number))
            for i, p in enumerate(self.problems)
        ]
        shown = min(len(number), max(self.SHOWN, self.SHOWN_ON_ONE_LINE))
        firsts: list[Problem | None] = [None] * shown
        rows: list[list[int] | None] = [[] for _ in range(shown)]
        for g, problem in zip(group, self.problems, strict=True):
            if g < shown:
                if firsts[g] is None:
                    firsts[g] = problem
                if problem.row is None:
                    rows[g] = None
                else:
                    rows[g].append(problem.row)
        said = (list(zip(firsts, rows, strict=True)), len(number))
        self._groups = (self.problems, len(self.problems), said)
        return said


class HypothesisError(ScaiError):
    """An invalid hypothesis; the message names the key, the value and what is allowed."""


class RunError(ScaiError):
    """An invalid option of a run (simulation, experiment, command): a count, size, seed or
    path; the message names the option, the value and what is allowed."""


class ScaiWarning(UserWarning):
    """The base of scai's own warnings: the ones the command line tells on one line, and a run
    keeps with a condition's results (:mod:`scai.experiments.runner`)."""


#: scai's own source: the package's top-level files and its three folders (its tests, beside
#: them in a checkout, are callers like any other).
_SUBPACKAGES = ("models", "inference", "experiments")
_OWN_FILES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OWN_FOLDERS = tuple(os.path.join(_OWN_FILES, name) + os.sep for name in _SUBPACKAGES)


def _in_scai(filename: str) -> bool:
    return filename.startswith(_OWN_FOLDERS) or os.path.dirname(filename) == _OWN_FILES


def outside_scai(also: tuple[str, ...] = ()) -> int:
    """The ``stacklevel`` that makes a warning, raised by the function that calls this, point
    at the first line outside scai: the user's call of ``fit``, not the engine's own line
    (``warnings.warn(..., stacklevel=outside_scai())``); 1 where every frame is scai's (the
    command line, which shows no line). Frames of the files, or ``file:function``s, in
    ``also`` are passed over too (a dataclass's generated ``"<string>:__init__"``, between a
    user and scai's ``__post_init__``; not all of ``"<string>"``, a ``python -c`` user's)."""

    def passed_over(code) -> bool:
        name = code.co_filename
        return _in_scai(name) or name in also or f"{name}:{code.co_name}" in also

    frame, level = sys._getframe(1), 1
    while frame is not None and passed_over(frame.f_code):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 1


def scai_warning(category: type[Warning]) -> bool:
    """Whether a warning's category is one of scai's own."""
    return issubclass(category, ScaiWarning)


def scai_category(name: str) -> type[ScaiWarning]:
    """The category of scai's warnings named ``name`` (:class:`ScaiWarning` if none is: one
    defined in a module not imported yet)."""
    todo: list[type[ScaiWarning]] = [ScaiWarning]
    while todo:
        category = todo.pop()
        if category.__name__ == name:
            return category
        todo.extend(category.__subclasses__())
    return ScaiWarning


class TableWarning(ScaiWarning):
    """Something an interaction table holds that scai accepts but that may not be what was
    meant; the command line shows each on one line."""


class HypothesisWarning(ScaiWarning):
    """A hypothesis that is valid but cannot do what it seems to (e.g. two identical types)."""


class StereotypeStrengthWarning(HypothesisWarning):
    """A stereotype setting that changes nothing (a file's, or ``with_``'s): a ``[stereotype]``
    table with neither ``stereotype_strength`` nor ``stereotype_prior`` (at the default
    strength, 0, the table ties no manner to a type), or a strength or prior with no table to
    mix in; and (also of a hypothesis made in Python) a strength beside ``stereotype_prior``,
    which learns it. Not told where a condition sets the strength (a sweep's axis or
    [condition]): the sweep refuses a strength of no table, naming its key."""


class UnusedLapseWarning(HypothesisWarning):
    """A fixed ``lapse`` beside ``lapse_prior``: the fit learns the lapse and never reads it.
    Told where the two are set (a file, the constructor, ``with_`` of either); a sweep's
    lapse under a learned one is the sweep's to refuse, naming its key."""


class SimulationWarning(ScaiWarning):
    """A simulation that runs but may not be what was meant (a type of the mixture that exact
    assignment deals to no user, most users certain to play no game); the command line shows
    each on one line."""


class UnusedOptionWarning(ScaiWarning):
    """A command-line option given where the input makes the command not use it."""


class DuplicateGamesWarning(TableWarning):
    """An interaction table holds identical rows: each counts as a separate game. Under
    ``strict=True`` (``--strict``) they are a :class:`DataError` instead."""


class UnusedColumnsWarning(TableWarning):
    """An interaction file has columns scai does not read (a misspelt optional column such as
    ``responder_txt`` would otherwise be dropped without a word)."""


class RunsHeldOutWarning(ScaiWarning):
    """A tone reader's confusion matrix estimated with runs held out, not whole conditions: a
    condition's runs repeat each other's messages, so the matrix overstates what a report is
    worth on text of a new prompt."""


def check_count(
    name: str, value: object, low: int = 1, high: int | None = None, error: type = RunError
) -> int:
    """``value`` as an int if it is a whole number in ``low..high``, else ``error`` naming
    ``name``, the value and the range (``high=None``: no upper bound)."""
    allowed = (
        f"a whole number from {low:,} to {high:,}"
        if high is not None
        else f"a whole number >= {low:,}"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name}: must be {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise error(f"{name}: must be {allowed}, got {int(value)}")
    return int(value)


def check_flag(name: str, flag: object, error: type = RunError) -> bool:
    """``flag`` if it is True or False (a NumPy bool too), else ``error`` naming ``name`` and
    the value: a string ``'no'`` is true to Python, and would switch the option on."""
    if not isinstance(flag, bool | np.bool_):
        raise error(f"{name}: must be True or False, got {show_value(flag)}")
    return bool(flag)


def check_path(path: object, what: str, error: type = RunError) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it names a file path (a string, bytes or a path
    object, not empty), else ``error`` naming ``what`` (``"Posterior.save"``) and the value:
    Python's own errors (``expected str, bytes or os.PathLike object, not NoneType``) name
    neither, and an empty path reads as the current folder. A leading ``~`` is the home
    folder, as pandas and xarray read it (not a folder named ``~`` made in the current one)."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise error(f"{what}: expected a file path, got {show_value(path)}")
    text = os.fsdecode(os.fspath(path))
    if not text:
        raise error(f"{what}: the path is empty; give a file path")
    return Path(os.path.expanduser(text))  # (Path.expanduser raises for an unknown ~user)


def check_seed(value: object, name: str = "seed", error: type = RunError) -> int:
    """A random seed: a whole number in ``0..MAX_SEED``."""
    return check_count(name, value, 0, MAX_SEED, error)
