"""Running many conditions: each finished condition is cached on disk under a fingerprint of
its settings, so an interrupted run resumes where it stopped and a re-run is free; independent
conditions run in parallel processes."""

from __future__ import annotations

import json
import os
from concurrent.futures import as_completed
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from scai.experiments.conditions import Condition, Settings, condition_seed, fingerprint
from scai.experiments.protocol import ConditionResult, run_condition
from scai.inference.workers import worker_pool
from scai.models.data import write_csv_atomic


def _run_cached(args) -> tuple[str, str]:
    cond, settings, cache_dir = args
    seed = condition_seed(settings.seed, cond.stream or cond.name)
    key = fingerprint(cond, settings, seed)
    stem = Path(cache_dir) / key
    done = stem.with_suffix(".done")
    if not done.exists():
        torch.set_num_threads(1)
        result = run_condition(cond, settings, seed)
        write_csv_atomic(result.per_sim, stem.with_suffix(".per_sim.csv"))
        write_csv_atomic(result.interactions, stem.with_suffix(".interactions.csv"))
        if result.curve is not None:
            write_csv_atomic(result.curve, stem.with_suffix(".curve.csv"))
        if result.posterior is not None and cond.save_posterior:
            result.posterior.save(stem.with_suffix(".nc"))
        done.write_text(json.dumps({"condition": asdict(cond), "seed": seed}, default=str))
    return cond.name, str(stem)


def run_conditions(
    conditions: list[Condition],
    settings: Settings,
    cache_dir: Path,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, ConditionResult]:
    """Run (or reuse) every condition; independent conditions run in parallel processes.

    Each finished condition is written under ``cache_dir`` with a fingerprint of its settings,
    so an interrupted run resumes where it stopped and a re-run with the same settings is free.
    """
    from scai.inference.progress import progress_bar

    cache_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(c, settings, str(cache_dir)) for c in conditions]
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    stems: dict[str, str] = {}
    bar = progress_bar(total=len(jobs), desc="conditions", disable=not progress)
    if workers > 1 and len(jobs) > 1:
        pool = worker_pool(workers)
        for fut in as_completed([pool.submit(_run_cached, j) for j in jobs]):
            name, stem = fut.result()
            stems[name] = stem
            bar.update()
    else:
        for job in jobs:
            name, stem = _run_cached(job)
            stems[name] = stem
            bar.update()
    bar.close()
    return {c.name: load_result(c, Path(stems[c.name])) for c in conditions}


def load_result(cond: Condition, stem: Path) -> ConditionResult:
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
