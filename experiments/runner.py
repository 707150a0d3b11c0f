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

import os
from concurrent.futures import as_completed
from pathlib import Path

import pandas as pd
import torch

from scai.experiments.cache import ConditionCache, Entry
from scai.experiments.conditions import Condition, Settings, condition_seed
from scai.experiments.protocol import ConditionResult, run_condition
from scai.inference.workers import exit_if_orphaned, stop_workers, worker_pool
from scai.models.data import write_csv_atomic


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_conditions`; its message is the one line to show the user."""

    def __init__(self, finished: int, total: int, cache_dir: Path):
        self.finished, self.total, self.cache_dir = finished, total, cache_dir
        super().__init__(
            f"interrupted: {finished} of {total} conditions finished (kept in {cache_dir}); "
            "run the same command again to resume"
        )


def _compute(entry: Entry, settings: Settings, staging: Path) -> str:
    """Run one condition and write its files into ``staging``, named ``KEY.KIND``; in a worker
    whose parent has died, exit instead of writing."""
    torch.set_num_threads(1)
    cond, key, folder = entry.condition, entry.key, Path(staging)
    result = run_condition(cond, settings, entry.seed)
    tables = {"per_sim.csv": result.per_sim, "interactions.csv": result.interactions}
    if result.curve is not None:
        tables["curve.csv"] = result.curve
    for kind, table in tables.items():
        exit_if_orphaned()
        write_csv_atomic(table, folder / f"{key}.{kind}")
    if result.posterior is not None and cond.save_posterior:
        exit_if_orphaned()
        result.posterior.save(folder / f"{key}.nc")
    return cond.name


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
    Ctrl-C raises :class:`Interrupted`.
    """
    from scai.inference.progress import progress_bar

    cache = ConditionCache(cache_dir)
    with cache.open():
        entries = {
            c.name: cache.entry(c, settings, condition_seed(settings.seed, c.stream or c.name))
            for c in conditions
        }
        todo = [entries[c.name] for c in conditions if not cache.lookup(entries[c.name])]
        staged = {entry.key: cache.staging(entry) for entry in todo}
        bar = progress_bar(len(conditions), "conditions", disable=None if progress else True)
        bar.update(len(conditions) - len(todo))
        workers = workers or min(os.cpu_count() or 1, len(conditions))
        futures = {}
        try:
            if workers > 1 and len(todo) > 1:
                pool = worker_pool(workers)
                futures = {pool.submit(_compute, e, settings, staged[e.key]): e for e in todo}
                for future in as_completed(futures):
                    future.result()
                    cache.store(futures[future], staged[futures[future].key])
                    bar.update()
            else:
                for entry in todo:
                    _compute(entry, settings, staged[entry.key])
                    cache.store(entry, staged[entry.key])
                    bar.update()
        except KeyboardInterrupt:
            # Kill the workers at once; their pool fails the tasks they ran and cancels the
            # others. (Not future.cancel() here: a pool that then breaks sets an exception on
            # the cancelled futures and its thread dies with InvalidStateError, Python 3.11.)
            stop_workers()
            cache.discard_unfinished(todo)  # no writer is left: unfinished files can go
            stored = sum(entry.done.exists() for entry in entries.values())
            raise Interrupted(stored, len(conditions), cache_dir) from None
        except BaseException:
            for future in futures:  # an error: the conditions not started are not needed
                future.cancel()
            raise
        finally:
            bar.close()
        return {c.name: load_result(c, entries[c.name]) for c in conditions}


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
