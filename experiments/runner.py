"""Running many conditions: each finished condition is cached on disk (:mod:`.cache`: keyed by
its settings and the code, checked before reuse), so an interrupted run resumes where it
stopped and a re-run is free; independent conditions run in parallel processes.

Workers compute a condition and write its files into the cache's staging folder; only this
process moves them into place and writes the manifest, so a worker that outlives its parent
(it exits within a fraction of a second: :mod:`scai.inference.workers`) can never leave a cache
entry. Ctrl-C cancels the conditions not started, kills the workers without waiting for the
ones running, removes their unfinished files and raises :class:`Interrupted`, whose one-line
message says how many conditions finished and how to resume.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, CancelledError, Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from scai.experiments.cache import (
    WARNINGS,
    ConditionCache,
    Entry,
    cache_key,
    code_version,
    known_here,
)
from scai.experiments.conditions import (
    Condition,
    Settings,
    assistant_hypothesis,
    condition_seed,
    fingerprint,
)
from scai.experiments.protocol import ConditionResult, run_condition
from scai.inference.workers import (
    Finished,
    HeldCtrlC,
    ctrl_c_deferred,
    exit_if_orphaned,
    stop_workers,
    worker_pool,
)
from scai.models.errors import RunError, ScaiError, ScaiWarning, scai_category, scai_warning
from scai.models.writing import write_atomic, write_csv_atomic
from scai.worker_start import ignoring_ctrl_c

if TYPE_CHECKING:
    from tqdm import tqdm


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_conditions`; its message is the one line to show the user.

    ``results``, ``errors`` and ``warned`` (by job index, as in :class:`Outcome`) are what
    :func:`run_jobs` had when it stopped: the jobs read from the cache or stored by this run,
    and the failed."""

    def __init__(
        self,
        finished: int,
        total: int,
        cache_dir: Path,
        results: dict[int, object] | None = None,
        errors: dict[int, str] | None = None,
        warned: dict[int, list[str]] | None = None,
    ):
        self.finished, self.total, self.cache_dir = finished, total, cache_dir
        self.results, self.errors = results or {}, errors or {}
        self.warned = warned or {}  # as Outcome.warned
        if finished == total:  # (Ctrl-C between the last condition stored and the report)
            told = f"all {total} conditions finished (kept in {cache_dir}), not yet reported"
            then = "run the same command again to report them"
        else:
            told = f"{finished} of {total} conditions finished (kept in {cache_dir})"
            then = "run the same command again to resume"
        super().__init__(f"interrupted: {told}; {then}")


def _compute(entry: Entry, settings: Settings, staging: Path | None) -> dict[str, bytes] | None:
    """Run one condition and write its files into ``staging``, named ``KEY.KIND``; in a worker
    whose parent has died, exit instead of writing. With ``staging=None`` (a remote worker,
    which may not see the cache's disk) write them into a private temporary folder and return
    their bytes, ``{file name: bytes}``, for the parent to stage: the same bytes either way.

    One torch thread, and one condition at a time per process (a lock): the model's random
    numbers are process-wide (``pyro.set_rng_seed``), so two conditions computed by threads of
    one process (a Dask worker with several threads) would draw from each other's streams.

    A condition of the exact engine is computed in torch's inference mode: it differentiates
    nothing (its NumPy density has gradients by hand), and each tensor operation then skips
    autograd's bookkeeping: the same numbers, 3-6% less CPU a condition in one process (not
    more than the noise of a whole `scai run all`'s time shows). (Its tensors stay in this call:
    the files are what it returns. A tensor an exact fit caches for the process, a grid, is
    only ever read, which is allowed outside the mode, by an SVI condition next.)"""
    with _ONE_AT_A_TIME, torch.inference_mode(settings.engine == "exact"):
        if staging is not None:
            (Path(staging) / STARTED).touch()  # not a cache file: store() moves only those
        torch.set_num_threads(1)
        if staging is None:
            with tempfile.TemporaryDirectory(prefix="scai-condition-") as private:
                _write_condition(entry, settings, Path(private))
                return {p.name: p.read_bytes() for p in sorted(Path(private).iterdir())}
        _write_condition(entry, settings, Path(staging))
        return None


_ONE_AT_A_TIME = threading.Lock()


def _write_condition(entry: Entry, settings: Settings, folder: Path) -> None:
    cond, key = entry.condition, entry.key
    # The entry's key holds the hypothesis as the run read it when it started; the worker
    # reads a hypothesis file again (from its own disk, on a remote worker). Computed from
    # another file's contents, the results would be stored under the key of the first.
    hypothesis = assistant_hypothesis(cond)  # read once: the one checked is the one used
    if fingerprint(cond, settings, entry.seed, hypothesis) != entry.fingerprint:
        raise RunError(
            f"condition {cond.name!r}: hypothesis {cond.hypothesis!r} is not what it was when "
            "the run started (the file changed, or this worker sees another copy at that "
            "path); nothing stored: run again to use the file as it is now"
        )
    if cache_key(entry.fingerprint, settings) != entry.key:  # checked per condition: a Dask
        # worker that joins a cluster mid-run is not among those checked when it started
        raise RunError(
            f"condition {cond.name!r}: this worker runs other scai code ({code_version()}) or "
            "another MCMC sampler (SCAI_COMPILED) than the run that asked for it; nothing "
            "stored: give every worker the run's code and settings"
        )
    # scai's own warnings are kept with the results (told by the run that reads them, naming
    # the condition: from the cache too), every one whatever the filters of the process that
    # computes it (a worker's are not its caller's); the caller's filters apply when they
    # are told. (Warnings are process-wide: another thread's, meanwhile, would be kept too;
    # conditions are computed one at a time per process, see _compute.)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.filterwarnings("always", category=ScaiWarning)
            result = run_condition(cond, settings, entry.seed, hypothesis)
    except BaseException:  # nothing is stored: what it warned of is shown (it may say why)
        show_warnings(caught, cond.name)
        raise
    warned = own_warnings(caught)
    tables = {"per_sim.csv": result.per_sim, "interactions.csv": result.interactions}
    if result.curve is not None:
        tables["curve.csv"] = result.curve
    for kind, table in tables.items():
        exit_if_orphaned()
        write_csv_atomic(table, folder / f"{key}.{kind}")
    if result.posterior is not None and cond.save_posterior:
        exit_if_orphaned()
        result.posterior.save(folder / f"{key}.nc")
    if warned:
        exit_if_orphaned()
        text = "".join(f"{line}\n" for line in warned)
        write_atomic(folder / f"{key}.{WARNINGS}", lambda tmp: Path(tmp).write_text(text))


def own_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """scai's own warnings among ``caught``, each once, in order, one line each
    (``Category: message``, :func:`tell_warning` gives it again); the others (which went
    through the filters when they were caught) are shown as Python would have shown them."""
    own: dict[str, None] = {}
    for w in caught:
        if scai_warning(w.category):
            own[f"{w.category.__name__}: {' '.join(str(w.message).split())}"] = None
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    return list(own)


def show_warnings(caught: list[warnings.WarningMessage], name: str) -> None:
    """The warnings ``caught`` while condition ``name`` was computed, given again: scai's own
    (recorded whatever the filters) each once, naming the condition, through this process's
    filters; the others (which went through them) shown as Python would have shown them."""
    for line in own_warnings(caught):
        tell_warning(line, f"condition {name!r}: ")


def tell_warning(line: str, prefix: str) -> None:
    """Give again a stored warning line (:func:`own_warnings`), in its category, its message
    after ``prefix`` (which says which condition or conditions gave it)."""
    name, _, message = line.partition(": ")
    warnings.warn(prefix + message, scai_category(name), 3)


def run_conditions(
    conditions: list[Condition],
    settings: Settings,
    cache_dir: Path,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, ConditionResult]:
    """Run (or reuse) every condition; independent conditions run in parallel processes.

    Each finished condition is written under ``cache_dir`` with a key made of its settings and
    the code's version, so an interrupted run resumes where it stopped and a re-run with the
    same settings is free; a cached entry is checked against its checksums before reuse, and a
    damaged or stale one is recomputed with a :class:`~scai.experiments.cache.CacheWarning`.
    Ctrl-C raises :class:`Interrupted`; a condition that fails raises its error. (The same
    runner as :func:`run_jobs`, which sweeps use, with one ``settings`` for every condition.)
    """
    outcome = run_jobs(
        [(c, settings) for c in conditions],
        cache_dir,
        workers=workers,
        progress=progress,
        say_reused=progress,
    )
    return {c.name: result for c, result in zip(conditions, outcome.results, strict=True)}


@dataclass(frozen=True)
class Plan:
    """What an experiment computes before it reports: its conditions, their settings and its
    cache folder (``OUT/NAME/cache``). ``scai run all`` runs every experiment's plan through
    one pool of workers (:func:`run_plans`) before the experiments report from the cache."""

    conditions: list[Condition]
    settings: Settings
    cache_dir: Path
    #: How many of the first conditions suffice for part of the report (``report_early``: an
    #: experiment's figure of its main conditions, drawn while the workers compute the rest).
    early: int = 0

    def run(self, workers: int | None = None) -> dict[str, ConditionResult]:
        return run_conditions(self.conditions, self.settings, self.cache_dir, workers)

    def first(self) -> Plan:
        """The plan of its :attr:`early` first conditions alone (same settings and cache)."""
        return Plan(self.conditions[: self.early], self.settings, self.cache_dir)


def run_plans(
    plans: Sequence[Plan],
    workers: int | None = None,
    progress: bool = True,
    on_plan_done: Callable[[int], None] | None = None,
    on_early_done: Callable[[int], None] | None = None,
) -> None:
    """Compute (or find cached) every condition of ``plans`` with one pool of workers, in the
    plans' order, but for the conditions after a plan's :attr:`Plan.early` ones, which go last;
    each is stored in its plan's cache, where the experiments then find it.

    ``on_plan_done(i)`` is called (in this thread) as soon as every condition of ``plans[i]``
    is stored, while the workers go on with the other plans' conditions: an experiment can
    report from its cache then (its cache may be opened again: :meth:`ConditionCache.open`).
    ``on_early_done(i)``, likewise, as soon as the first :attr:`Plan.early` conditions of
    ``plans[i]`` are (before ``on_plan_done(i)``; never for a plan whose ``early`` is 0)."""
    # (plan, position) of each job: a plan's conditions after its early ones go after every
    # other plan's, so that the report that waits for them is the last and the others, whole
    # or early part, are drawn while the workers compute
    order = sorted(
        ((i, j) for i, plan in enumerate(plans) for j in range(len(plan.conditions))),
        key=lambda at: 0 < plans[at[0]].early <= at[1],
    )
    jobs = [(plans[i].conditions[j], plans[i].settings) for i, j in order]
    folders = [plans[i].cache_dir for i, _ in order]
    plan_of = [i for i, _ in order]
    position = [j for _, j in order]
    left = [len(plan.conditions) for plan in plans]
    early_left = [min(plan.early, len(plan.conditions)) for plan in plans]

    def on_event(kind: str, indices: list[int], error: str | None) -> None:
        if kind not in ("cached", "done"):
            return
        for index in indices:
            i = plan_of[index]
            if position[index] < plans[i].early:
                early_left[i] -= 1
                if early_left[i] == 0 and on_early_done is not None:
                    on_early_done(i)
            left[i] -= 1
            if left[i] == 0 and on_plan_done is not None:
                on_plan_done(i)

    # its experiments tell what their conditions warned of, reading them from their caches
    run_jobs(
        jobs,
        folders,
        workers=workers,
        progress=progress,
        on_event=on_event,
        load=not_read,
        tell_warnings=False,
        say_reused=progress,
    )


def not_read(cond: Condition, entry: Entry) -> None:
    """A ``load`` for :func:`run_jobs` that reads nothing: for callers that read the cache
    themselves (the experiments of :func:`run_plans` report from it)."""
    return None


@dataclass
class Outcome:
    """What :func:`run_jobs` did: each job's result (``None`` if it failed), the failures'
    one-line errors by job index, and how many jobs came from the cache."""

    results: list[ConditionResult | None]
    errors: dict[int, str] = field(default_factory=dict)
    cached: int = 0
    #: Of the ``cached``, those an earlier run stored that this process had not told of yet.
    reused: int = 0
    #: What each job read warned of when it was computed (``Category: message`` lines,
    #: :func:`own_warnings`), by job index; a job with none is absent.
    warned: dict[int, list[str]] = field(default_factory=dict)


#: Jobs submitted ahead of the ones finished: enough to keep a pool or a cluster of a few
#: hundred workers busy, while a sweep of 40,000 conditions starts at once (submitting them
#: all took ~25 s first) and a Ctrl-C has few futures to cancel.
IN_FLIGHT = 1_000

#: Pools that may break in a row, none of their jobs finished, before the run stops: a pool
#: whose workers cannot start would otherwise be made afresh for every job.
POOL_BREAKS = 3

#: The file a local worker creates in a job's staging folder as it begins the job: when a pool
#: breaks, only the jobs that began can have killed its worker (the others waited in its queue).
STARTED = ".started"

#: Times a job may be failed by a broken pool before it began and go straight back to the
#: queue; then it is a suspect like a job that began (a worker that died as it received a job,
#: before its first line, never marked it STARTED).
UNSTARTED_BREAKS = 10

#: ``on_event(kind, job indices, error)``: ``"cached"`` (at the start, every job found in the
#: cache), ``"done"``, ``"retry"`` (failed, submitted again) or ``"failed"`` (given up).
OnEvent = Callable[[str, list[int], str | None], None]


def run_jobs(
    jobs: Sequence[tuple[Condition, Settings]],
    cache_dir: Path | Sequence[Path],
    workers: int | None = None,
    progress: bool = True,
    *,
    executor: Callable[[], Executor] | None = None,
    retries: int = 0,
    keep_going: bool = False,
    on_event: OnEvent | None = None,
    load: Callable[[Condition, Entry], object] | None = None,
    tell_warnings: bool = True,
    say_reused: bool = False,
) -> Outcome:
    """Run (or reuse from the cache in ``cache_dir``) every ``(condition, settings)`` job.
    (``cache_dir`` may also list one folder per job: several experiments' conditions then share
    one pool of workers, each stored in its own experiment's cache.)

    The condition runner behind ``scai run`` and ``scai sweep``: each job is a cache entry
    (:class:`~scai.experiments.cache.ConditionCache`, keyed by the condition, its settings,
    ``condition_seed(settings.seed, stream)`` and the code), computed once even if listed
    twice, stored only by this process. Where it is computed:

    - ``executor=None``: here, or with ``workers > 1`` in this program's process pool
      (:func:`scai.inference.workers.worker_pool`), whose workers write the files into the
      cache's staging folder;
    - on the :class:`concurrent.futures.Executor` that ``executor()`` returns (e.g. a Dask
      client's ``get_executor()``; called only if some condition is not cached): its workers
      return the files' bytes, which this process stages, so they need not share this disk.
      The bytes are the ones a local worker writes.

    A job that raises is submitted again up to ``retries`` times (unless its error cannot
    pass by itself: :func:`may_pass_again`); then, with ``keep_going``,
    it is recorded in :attr:`Outcome.errors` (one line: the error's type and message) and the
    others go on; without, its error is raised. ``on_event`` hears of every job as it ends.
    Each job's result is read back from the cache by ``load(condition, entry)`` (default:
    :func:`load_result`, every table; a sweep's measures need only :func:`load_curve`), and
    what its computation warned of (scai's own warnings, stored with it) is told again, in
    its category, naming the condition, whether this run computed it or found it in the cache,
    and kept in :attr:`Outcome.warned`: each warning the first time a condition gives it, and
    once more at the end with how many other conditions gave the same (a sweep over a sharp
    prior gives the same for every cell). With ``tell_warnings=False`` they are only kept (a
    caller that reads the conditions again tells them then). A warning that the filters make
    an error stops the run with it, as it would have stopped the condition.
    Ctrl-C cancels what has not started, stops local workers, removes unfinished files and
    raises :class:`Interrupted`. ``say_reused``: print how many conditions an earlier run
    stored (:attr:`Outcome.reused`; a resumed run said nothing of what it reused).
    """
    folders = (
        [Path(cache_dir)] * len(jobs)
        if isinstance(cache_dir, str | Path)
        else [Path(folder) for folder in cache_dir]
    )
    caches = {folder: ConditionCache(folder) for folder in dict.fromkeys(folders)}
    with contextlib.ExitStack() as opened:
        for cache in caches.values():
            opened.enter_context(cache.open())
        work = _JobRun(
            jobs,
            folders,
            caches,
            workers,
            executor=executor,
            retries=retries,
            keep_going=keep_going,
            on_event=on_event,
            read=load or load_result,
            tell_warnings=tell_warnings,
        )
        work.look_up(say_reused)
        return work.run(progress)


class _WarningTally:
    """The warnings that jobs read back warned of, told again (:func:`tell_warning`): each line
    the first time a condition gives it, naming that condition, and once more at the end
    (:meth:`tell_repeats`) with how many other conditions gave the same."""

    def __init__(self, labels: list[str], stems: list[Path], on: bool):
        self.labels = labels  # by job index: how a warning names its condition
        self.stems = stems  # by job index: its cache entry
        self.on = on  # off: kept only (tell_warnings=False), never told
        self.told: dict[str, list[str]] = {}  # a warning line: the conditions that gave it
        self.told_by: set[Path] = set()  # the entries whose warnings are told (a job listed twice)

    def tell_warned(self, at: list[int], warned: dict[int, list[str]]) -> None:
        """Tell what the jobs ``at``, just read, warned of (``warned``: by job index; outside
        the reading: a warning that the filters make an error is the run's error, not a
        failure to read)."""
        for i in at:
            if not self.on or i not in warned or self.stems[i] in self.told_by:
                continue
            self.told_by.add(self.stems[i])
            for line in warned[i]:
                self.told.setdefault(line, []).append(self.labels[i])
                if len(self.told[line]) == 1:
                    tell_warning(line, f"condition {self.labels[i]}: ")

    def tell_repeats(self, quietly: bool = False) -> None:
        """Once, at the end: each warning that other conditions gave too, with how many.
        ``quietly``: as the run stops on an error or a Ctrl-C, which a warning made an
        error (a filter) must not replace."""
        if quietly:
            with contextlib.suppress(Exception):
                self.tell_repeats()
            return
        for line, labels in self.told.items():  # empty unless on
            if len(labels) > 1:
                others = ", ".join(labels[1:4]) + (", ..." if len(labels) > 4 else "")
                tell_warning(
                    line, f"{len(labels) - 1} more condition(s) warned the same ({others}): "
                )


def _condition_labels(
    jobs: Sequence[tuple[Condition, Settings]], folders: list[Path], several_caches: bool
) -> list[str]:
    """How a warning names each job's condition: by its name, its experiment where several
    share one run's pool (``several_caches``), and its seed where others of its name and
    cache have another (a sweep's seeds)."""
    seeds = collections.defaultdict(set)
    for (c, s), folder in zip(jobs, folders, strict=True):
        seeds[folder, c.name].add(s.seed)
    return [
        repr(c.name)
        + (f" of {folder.parent.name}" if several_caches else "")
        + (f" (seed {s.seed})" if len(seeds[folder, c.name]) > 1 else "")
        for (c, s), folder in zip(jobs, folders, strict=True)
    ]


class _JobRun:
    """One call of :func:`run_jobs`, its caches open: the jobs' cache entries, what became of
    each (read, stored, failed), and the pool computing the others with its jobs in flight.

    A job is known by its index in ``jobs``; a cache entry, computed once for all the jobs
    that list it, by its key, the entry's stem (:attr:`by_key`). :meth:`look_up` first, then
    :meth:`run`, once."""

    def __init__(
        self,
        jobs: Sequence[tuple[Condition, Settings]],
        folders: list[Path],
        caches: dict[Path, ConditionCache],
        workers: int | None,
        *,
        executor: Callable[[], Executor] | None,
        retries: int,
        keep_going: bool,
        on_event: OnEvent | None,
        read: Callable[[Condition, Entry], object],
        tell_warnings: bool,
    ):
        self.jobs, self.folders, self.caches = jobs, folders, caches
        self.executor, self.remote = executor, executor is not None
        self.retries, self.keep_going, self.read = retries, keep_going, read
        self.tell = on_event or (lambda kind, indices, error: None)
        self.entries = [
            caches[folder].entry(c, s, condition_seed(s.seed, c.stream or c.name))
            for (c, s), folder in zip(jobs, folders, strict=True)
        ]
        self.by_key: dict[Path, list[int]] = {}  # an entry's key in its folder: its stem
        for index, entry in enumerate(self.entries):
            self.by_key.setdefault(entry.stem, []).append(index)
        self.workers = workers or min(os.cpu_count() or 1, len(self.by_key))
        self.tally = _WarningTally(
            _condition_labels(jobs, folders, several_caches=len(caches) > 1),
            [entry.stem for entry in self.entries],
            tell_warnings,
        )
        self.todo: list[Path] = []  # the keys to compute (look_up)
        self.cached: list[int] = []  # the jobs found in the cache (look_up)
        self.reused = 0  # of those, the entries an earlier run stored (look_up)
        self.attempts: dict[Path, int] = {}  # failed attempts by key (look_up: each to do, 0)
        self.results: dict[int, object] = {}  # by job index, read as found or stored
        self.warned: dict[int, list[str]] = {}  # as Outcome.warned
        self.errors: dict[int, str] = {}  # as Outcome.errors
        self.staged: dict[Path, Path] = {}  # a job's staging folder, made when it is started
        self.bar: tqdm | None = None  # (run)
        self.pool: Executor | None = None
        self.futures: dict[Future, tuple[Path, Executor]] = {}  # each job's key and its pool
        self.finishing = Finished()
        self.held: HeldCtrlC | None = None  # while the pool's loop holds Ctrl-C back
        self.breaks = 0  # pools broken since a job last finished
        # What the pool is given next (the rule: run_in_pool)
        self.waiting: Iterator[Path] = iter(())  # not submitted yet
        self.suspects: collections.deque[Path] = collections.deque()
        self.again: collections.deque[Path] = collections.deque()  # to submit again
        self.lone: Path | None = None  # the suspect in flight, alone
        self.unstarted = collections.Counter()  # breaks that failed a job not begun

    # -- the jobs' entries -------------------------------------------------------------------
    def entry_of(self, key: Path) -> Entry:
        return self.entries[self.by_key[key][0]]

    def settings_of(self, key: Path) -> Settings:
        return self.jobs[self.by_key[key][0]][1]

    def cache_of(self, key: Path) -> ConditionCache:
        return self.caches[self.entry_of(key).folder]

    def shown_folder(self) -> Path:
        """The cache folder to name to the user: the caches' common folder if several."""
        if len(self.caches) == 1:
            return self.folders[0]
        return Path(os.path.commonpath(list(self.caches)))

    def look_up(self, say_reused: bool) -> None:
        """Find the jobs cached (a damaged or stale entry is removed: to compute) and those to
        compute (:attr:`todo`); say how many an earlier run stored (``say_reused``) and tell
        ``on_event`` of the cached ones."""
        todo = [
            key
            for key, at in self.by_key.items()
            if not self.cache_of(key).lookup(self.entries[at[0]])
        ]
        to_compute = set(todo)  # membership in the list was quadratic: 47 s for 20,000 cells
        self.cached = [i for key, at in self.by_key.items() if key not in to_compute for i in at]
        self.reused = sum(
            not known_here(self.entries[at[0]], mark=True)
            for key, at in self.by_key.items()
            if key not in to_compute
        )
        self.todo, self.attempts = todo, dict.fromkeys(todo, 0)
        if say_reused and self.reused:  # before the "cached" event, whose hearers may report
            print(
                f"{self.reused} of {len(self.by_key)} conditions from an earlier run's cache "
                f"({self.shown_folder()})",
                flush=True,
            )
        if self.cached:
            self.tell("cached", self.cached, None)

    # -- the run -----------------------------------------------------------------------------
    def run(self, progress: bool) -> Outcome:
        """Compute every job to do, read every job's result and tell what they warned of; on
        Ctrl-C or an error, store what finished and stop (:meth:`stop_now`,
        :meth:`stop_on_error`)."""
        from scai.inference.progress import progress_bar

        self.bar = progress_bar(len(self.by_key), "conditions", disable=None if progress else True)
        self.bar.update(len(self.by_key) - len(self.todo))
        try:
            self.compute()
        except KeyboardInterrupt:
            with ignoring_ctrl_c():  # a second Ctrl-C must not cut this short
                self.stop_now()
            interrupted = self.interrupted()
            self.tally.tell_repeats(quietly=True)
            raise interrupted from None
        except BaseException:
            self.stop_on_error()
            raise
        finally:
            self.bar.close()
        self.tally.tell_repeats()
        return Outcome(
            [self.results.get(i) for i in range(len(self.jobs))],
            self.errors,
            len(self.cached),
            self.reused,
            self.warned,
        )

    def compute(self) -> None:
        """Compute the jobs to do where :meth:`start_pool` says, reading the cached ones
        meanwhile."""
        self.pool = self.start_pool()
        if self.pool is None:
            self.run_here()
        else:
            self.run_in_pool()

    def start_pool(self) -> Executor | None:
        """The pool to compute the jobs on: the executor's (only if some job is to do), this
        program's worker pool (``workers > 1`` and more than one job to do), or None: here.
        (Called within :meth:`run`'s ``try``: a Ctrl-C while it connects is an
        interruption.)"""
        if self.remote and self.todo:
            return self.executor()
        if not self.remote and self.workers > 1 and len(self.todo) > 1:
            return worker_pool(self.workers)
        return None

    def run_here(self) -> None:
        """Compute the jobs to do one after the other in this process, each failed one again
        at once (:meth:`finished` says whether)."""
        self.keep(self.cached)
        self.tally.tell_warned(self.cached, self.warned)
        for key in self.todo:
            again = True
            while again:
                try:
                    _compute(self.entry_of(key), self.settings_of(key), self.stage(key))
                except Exception as err:
                    again = self.finished(key, err)
                else:
                    again = self.finished(key, None)

    def run_in_pool(self) -> None:
        """Compute the jobs to do on :attr:`pool`, at most :data:`IN_FLIGHT` in flight, and
        store or record each as it comes back (reading the cached ones meanwhile).

        The rule of what is submitted (:meth:`top_up`): a dead worker fails every job of its
        pool, not only the one it ran. The jobs that had begun (:data:`STARTED`) are suspects:
        each runs again alone, once the pool has no other job, and nothing else is submitted
        meanwhile, so a pool that breaks then was broken by it, and only then does a job count
        an attempt for a broken pool (a job that kills its worker fails alone). Jobs that had
        not begun wait in :attr:`again` (and are suspects too after :data:`UNSTARTED_BREAKS`
        such breaks: a worker that died as it received one). With no suspect, the jobs to
        submit again go first, then those not submitted yet."""
        # Ctrl-C is raised only where check() is called: not while the pool starts a
        # worker, nor while this thread holds a future's lock (see Finished).
        with ctrl_c_deferred() as check:
            self.held = check
            self.waiting = iter(self.todo)
            self.top_up(check)
            self.keep(self.cached, check)  # while the workers compute the first jobs
            self.tally.tell_warned(self.cached, self.warned)
            while self.futures:
                self.take_back(self.finishing.next(check))
                self.top_up(check)

    def top_up(self, check: Callable[[], None]) -> None:
        """Submit what the rule of :meth:`run_in_pool` lets the pool have now."""
        if self.lone is not None:
            return
        if self.suspects:
            if not self.futures:
                self.lone = self.suspects.popleft()
                self.submit(self.lone)
            return
        while self.again and len(self.futures) < IN_FLIGHT:
            self.submit(self.again.popleft())
        for key in itertools.islice(self.waiting, max(0, IN_FLIGHT - len(self.futures))):
            self.submit(key)
            check()

    def take_back(self, future: Future) -> None:
        """The job of ``future``, finished: stored or recorded (:meth:`finished`), or queued
        again by the rule of :meth:`run_in_pool` (a new pool for one its worker's death
        broke)."""
        key, source = self.futures.pop(future)
        error = _error_of(future)
        if error is None and self.remote:
            _unpack(future.result(), self.staged[key])
        was_lone = key == self.lone
        if was_lone:
            self.lone = None
        broken = isinstance(error, BrokenExecutor) and not self.remote
        if broken and source is self.pool:  # once: its other jobs go to the new one
            self.pool = self.fresh_pool(blamed=was_lone)
        # A cluster's worker that died fails the tasks it held (Dask's
        # KilledWorker) as a broken pool does: those too run again alone.
        died = broken or (self.remote and _worker_died(error))
        if died and not was_lone:
            self.set_aside(key)
        elif self.finished(key, error):
            (self.suspects if died else self.again).append(key)

    def set_aside(self, key: Path) -> None:
        """Queue again, no attempt counted, a job failed by the death of a worker that was not
        its alone: a suspect if it had begun, else to submit again (a suspect too once
        :data:`UNSTARTED_BREAKS` such breaks have failed it before it began)."""
        # (a remote task leaves no STARTED file here: each is a suspect)
        began = self.remote or (self.staged[key] / STARTED).exists()
        self.unstarted[key] += not began
        if began or self.unstarted[key] > UNSTARTED_BREAKS:
            self.suspects.append(key)
        else:
            self.again.append(key)

    # -- one job -----------------------------------------------------------------------------
    def stage(self, key: Path) -> Path:
        """A fresh staging folder for the job ``key``, kept in :attr:`staged`."""
        self.staged[key] = self.cache_of(key).staging(self.entry_of(key))
        return self.staged[key]

    def submit(self, key: Path) -> None:
        """Stage the job ``key`` and submit it to :attr:`pool` (a new one in place of a local
        pool found broken)."""
        folder = self.stage(key)
        target = None if self.remote else folder  # a remote worker returns the files' bytes
        entry, settings = self.entry_of(key), self.settings_of(key)
        try:
            future = self.pool.submit(_compute, entry, settings, target)
        except BrokenExecutor:  # broken since its last job came back
            if self.remote:
                raise
            self.pool = self.fresh_pool()
            future = self.pool.submit(_compute, entry, settings, target)
        self.futures[self.finishing.watch(future)] = (key, self.pool)

    def fresh_pool(self, blamed: bool = False) -> Executor:
        """A new pool for a broken one. ``blamed``: a job that ran alone broke it (a job
        that fails, not workers that cannot start: not counted in POOL_BREAKS)."""
        if not blamed:
            self.breaks += 1
        if self.breaks > POOL_BREAKS:
            raise RuntimeError(
                f"the worker pool broke {self.breaks} times in a row with no condition "
                "finished: its workers cannot start, or are killed (out of memory?)"
            )
        stop_workers()  # a worker died: its pool is broken for good
        return worker_pool(self.workers)

    def finished(self, key: Path, error: BaseException | None) -> bool:
        """Store or record one finished job; True if it is to be submitted again."""
        if error is None:
            self.store(key)
            return False
        return self.failed(key, error)

    def store(self, key: Path) -> None:
        """Store the job ``key``, computed into its staging folder, read it back and tell of
        it; with ``keep_going``, one that cannot be read back is a failure (else its error is
        raised)."""
        at = self.by_key[key]
        self.breaks = 0
        self.cache_of(key).store(self.entry_of(key), self.staged[key])
        try:
            self.keep(at)
        except Exception as err:  # stored, unreadable now: with keep_going, one failure
            if not self.keep_going:
                raise
            for i in at:
                self.results.pop(i, None)
                self.warned.pop(i, None)
            self.give_up(at, f"stored, but reading it back failed: {_one_line(err)}")
            return
        self.tally.tell_warned(at, self.warned)
        self.bar.update()
        self.tell_now("done", at, None)

    def failed(self, key: Path, error: BaseException) -> bool:
        """Count a failed attempt of the job ``key``: True if it is to be submitted again
        (``retries`` left and :func:`may_pass_again`); else, with ``keep_going``, record it,
        and without, raise ``error`` (at once where the disk is full: :func:`no_room`)."""
        at = self.by_key[key]
        self.attempts[key] += 1
        if no_room(error):  # every other job would fail the same way: stop here
            raise error
        message = _failure_text(error)
        if self.attempts[key] <= self.retries and may_pass_again(error):
            self.tell_now("retry", at, message)
            return True
        if not self.keep_going:
            raise error
        self.give_up(at, message)
        return False

    def give_up(self, at: list[int], message: str) -> None:
        """Record the jobs ``at`` as failed, with the one-line ``message``."""
        self.errors.update(dict.fromkeys(at, message))
        self.bar.update()
        self.tell_now("failed", at, message)

    def keep(self, at: list[int], check: Callable[[], None] = lambda: None) -> None:
        """Read the results of the jobs ``at`` (stored) and what they warned of.

        Each job's result is read as it is found or stored, not all at the end: an
        interruption then has every finished one in hand (a sweep's partial table needs
        them), not tens of seconds of reading to do after the Ctrl-C."""
        for n, i in enumerate(at, 1):
            self.results[i] = self.read(self.jobs[i][0], self.entries[i])
            if lines := self.entries[i].warned():
                self.warned[i] = lines
            if n % 64 == 0:  # a long read (a resumed sweep's thousands) hears Ctrl-C
                check()

    def tell_now(self, kind: str, at: list[int], message: str | None) -> None:
        """Tell ``on_event`` of the jobs ``at``, Ctrl-C let through meanwhile."""
        # Ctrl-C goes through meanwhile: `scai run all` reports an experiment from here
        with self.held.released() if self.held is not None else contextlib.nullcontext():
            self.tell(kind, at, message)

    # -- stopping ----------------------------------------------------------------------------
    def store_finished(self) -> None:
        """Store every job that finished while this thread was busy elsewhere (``scai run
        all`` reports an experiment from ``on_event`` while the workers go on): an
        interruption or an error then loses no finished condition."""
        for future, (key, _) in list(self.futures.items()):
            if not future.done() or future.cancelled() or future.exception() is not None:
                continue
            try:
                if self.remote:
                    _unpack(future.result(), self.staged[key])
                self.cache_of(key).store(self.entry_of(key), self.staged[key])
            except Exception:  # (a full disk, say) discarded as unfinished, as before
                continue
            del self.futures[future]
            with contextlib.suppress(Exception):  # stored: read again by the next run
                self.keep(self.by_key[key])

    def stop_now(self) -> None:
        """After a Ctrl-C: store what finished, stop the rest and remove unfinished files."""
        # Kill the workers at once; their pool fails the tasks they ran and cancels the
        # others. (Not future.cancel() here: a pool that then breaks sets an exception on
        # the cancelled futures and its thread dies with InvalidStateError, Python 3.11.)
        self.store_finished()
        if self.remote:
            for future in self.futures:
                future.cancel()
        else:
            stop_workers()
        for folder, cache in self.caches.items():  # only a started job can have files
            cache.discard_unfinished(
                [e for key in self.staged if (e := self.entry_of(key)).folder == folder]
            )

    def interrupted(self) -> Interrupted:
        """The :class:`Interrupted` to raise after :meth:`stop_now`: what is stored, and what
        this run had."""
        stored = sum(self.entries[at[0]].done.exists() for at in self.by_key.values())
        return Interrupted(
            stored,
            len(self.by_key),
            self.shown_folder(),
            dict(self.results),
            dict(self.errors),
            dict(self.warned),
        )

    def stop_on_error(self) -> None:
        """As an error stops the run: store what finished and cancel what has not started
        (the conditions not started are not needed); tell the repeated warnings quietly."""
        self.store_finished()
        for future in self.futures:
            future.cancel()
        self.tally.tell_repeats(quietly=True)


def _error_of(future: Future) -> BaseException | None:
    """What a finished ``future`` raised, if anything (a task the executor cancelled: an
    error of its own)."""
    try:
        return future.exception()
    except CancelledError:  # by the executor (a cluster that went away)
        return RuntimeError("the cluster cancelled the task (did its scheduler stop?)")


def _unpack(files: dict[str, bytes], folder: Path) -> None:
    """Write a remote worker's files into the staging ``folder`` (names checked: a file name,
    no path)."""
    for name, data in files.items():
        if Path(name).name != name or name.startswith("."):
            raise RuntimeError(f"a worker returned a file named {name!r}")
        (folder / name).write_bytes(data)


#: What a job's failure says where the process computing it died (out of memory, killed): one
#: text whatever ran it, so that a failed sweep cell's status (sweep.csv) is the same bytes on
#: every backend (the local pool's BrokenProcessPool, Dask's KilledWorker with its random task
#: id and worker address).
WORKER_DIED = "WorkerDied: the process computing it died (out of memory, or killed)"


#: ``errno`` values of a disk that cannot take a job's files (full, over quota, read-only):
#: no job would be stored, so the first stops the run (those stored before are kept).
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def no_room(error: BaseException) -> bool:
    """Whether ``error`` says the disk cannot take what is written to it (:data:`NO_ROOM`)."""
    return isinstance(error, OSError) and error.errno in NO_ROOM


def may_pass_again(error: BaseException) -> bool:
    """Whether a job that failed with ``error`` may succeed if it runs again: not where its own
    inputs failed (a :class:`~scai.models.errors.ScaiError`: bad input, a grid beyond the
    exact engine's budget; the same each time), unless the error says so (a memory limit taken
    from the memory available); a worker that died, or any other error, may."""
    return not isinstance(error, ScaiError) or error.may_pass_again


def _worker_died(error: BaseException | None) -> bool:
    """Whether ``error`` says the worker process computing a job died: the local pool broken,
    or Dask's ``KilledWorker`` (Dask is not imported here: a local run has none)."""
    return isinstance(error, BrokenExecutor) or type(error).__name__ == "KilledWorker"


def _failure_text(error: BaseException) -> str:
    """A failed job's error on one line (:data:`WORKER_DIED` where its worker died)."""
    died = _worker_died(error)
    if died and "initializer" not in str(error):  # (a worker that could not start: its own)
        return WORKER_DIED
    return _one_line(error)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_curve(cond: Condition, entry: Entry) -> pd.DataFrame:
    """A cached condition's learning curve alone (``sim, interactions, p_true``): a third of
    what :func:`load_result` reads, for a sweep of tens of thousands of conditions."""
    return pd.read_csv(entry.path("curve.csv"))


def load_result(cond: Condition, entry: Entry | Path) -> ConditionResult:
    """A cached condition's results (``entry``: its cache entry, or the files' common stem)."""
    stem = entry.stem if isinstance(entry, Entry) else Path(entry)
    curve_path = stem.with_suffix(".curve.csv")
    return ConditionResult(
        cond,
        pd.read_csv(stem.with_suffix(".per_sim.csv")),
        pd.read_csv(
            stem.with_suffix(".interactions.csv"), dtype={"sim": str}, keep_default_na=False
        ),
        pd.read_csv(curve_path) if curve_path.exists() else None,
        None,
        {"posterior_path": stem.with_suffix(".nc")},
    )
