"""``scai run original-logs``: the Bayesian assistant on the original study's GPT-4 users.

For every run of the study's logs (experiment 1: one norm with neutral manners; experiment 3:
each norm with neutral, rude and sycophantic manners; 20 runs each), the assistant is fitted
epoch by epoch on exactly the user-user games GPT-4 saw (:mod:`.assistant`), under each
hypothesis (``real_agents``: no stereotype; ``real_agents_stereotyped``: a stereotype learned
per group) and each way of hearing tones (:mod:`.tones`), and set beside the users and the
GPT-4 assistant in the same epochs.

Writes ``OUT/original-logs/summary.csv`` (one row per ``condition, hypothesis, tones, sim,
epoch, agent``; ``agent`` in users, gpt4, scai; columns ``offered_share`` (% of the pot),
``accept_agreement``, ``p_true_norm`` and ``pi_<norm>``, the last two for scai only),
``comparison.md`` (also beside the figures, as ``original_logs_comparison.md``), and a figure per
experiment. Each condition's fits are cached, so an
interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from scai.experiments.cache import CacheWarning, code_version, file_digest
from scai.experiments.common import ExperimentResult, figure_dir, format_checks, output_dir
from scai.experiments.original_logs.assistant import EPOCHS, run_condition, user_games
from scai.experiments.original_logs.tones import LOG_TONES, with_tones
from scai.experiments.shared_data import ORIGINAL_LOGS_DIR, shared_file
from scai.inference.progress import progress_bar
from scai.inference.workers import worker_pool
from scai.models.data import read_interactions, write_atomic, write_csv_atomic
from scai.models.hypotheses import get_hypothesis
from scai.models.scai_logs import import_logs, output_paths, write_import

NAME = "original-logs"
HYPOTHESES = ("real_agents", "real_agents_stereotyped")
QUICK_RUNS = 3  # runs per condition with --quick
QUICK_CONDITIONS = ("exp3/altruistic_rude", "exp3/altruistic_neutral", "exp3/selfish_sycophantic")


def imported(source: Path, folder: Path) -> dict[str, pd.DataFrame]:
    """The logs' tables, imported once into ``folder`` (reused while the source is the same)."""
    stamp = folder / "source.json"
    target = folder / "logs.csv"
    key = {"source": str(source.resolve()), "size": _size(source)}
    if not (stamp.exists() and json.loads(stamp.read_text()) == key and target.exists()):
        result = import_logs(source)
        write_import(result, target)
        stamp.write_text(json.dumps(key))
    paths = output_paths(target)
    return {
        "games": read_interactions(paths["interactions"]),
        "users": pd.read_csv(paths["users"], keep_default_na=False),
        "runs": pd.read_csv(paths["runs"], keep_default_na=False),
        "gpt4": pd.read_csv(paths["gpt4"], keep_default_na=False),
    }


def _size(source: Path) -> int:
    if source.is_dir():
        return sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    return source.stat().st_size


def reference_rows(games: pd.DataFrame, gpt4: pd.DataFrame) -> pd.DataFrame:
    """The users' and GPT-4's rows per ``sim, epoch``: offered share and, for GPT-4, how often
    its decision on a user's offer matched the user responders' decisions that epoch."""
    share = games.assign(share=games["offer"] / games["pot"] * 100)
    users = share.groupby(["sim", "epoch"])["share"].mean().rename("offered_share").reset_index()
    users["agent"] = "users"
    decided = gpt4.set_index(["sim", "epoch"])["assistant_accepted"]
    agree = []
    for (sim, epoch), part in games.groupby(["sim", "epoch"]):
        gpt = pd.to_numeric(decided.get((sim, epoch), np.nan), errors="coerce")
        agree.append((sim, epoch, float(np.mean(part["accepted"].to_numpy() == gpt))))
    agreement = pd.DataFrame(agree, columns=["sim", "epoch", "accept_agreement"])
    g = gpt4[["sim", "epoch"]].assign(
        offered_share=pd.to_numeric(gpt4["offered_share"], errors="coerce"), agent="gpt4"
    )
    g = g.merge(agreement, on=["sim", "epoch"], how="left")
    return pd.concat([users, g], ignore_index=True)


def run(
    source: Path,
    out: Path,
    figures: Path,
    *,
    seed: int = 0,
    quick: bool = False,
    hypotheses: tuple[str, ...] = HYPOTHESES,
    tones: tuple[str, ...] = LOG_TONES,
    reader=None,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[pd.DataFrame, list[Path]]:
    """Fit every condition (or, ``quick``, a few runs of three) and write the outputs; the fits
    not yet cached run in ``workers`` processes (default: one per core)."""
    logs = imported(source, out / "import")
    runs = logs["runs"].assign(cond=logs["runs"]["experiment"] + "/" + logs["runs"]["condition"])
    if quick:  # the study's three contrasted conditions (or the first three present)
        conds = list(runs["cond"].unique())
        chosen = [c for c in QUICK_CONDITIONS if c in conds] or conds[:3]
        runs = runs[runs["cond"].isin(chosen)].groupby("cond").head(QUICK_RUNS)
    games = user_games(logs["games"])
    if "read" in tones and reader is None:
        from scai.models.tone_reader import default_reader

        reader = default_reader()
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    reference = reference_rows(games, logs["gpt4"])
    jobs = [(c, h, t) for c in runs["cond"].unique() for h in hypotheses for t in tones]
    fits = []  # (cond, hypothesis, tones, sims, cache path, fit arguments)
    for cond, hyp_name, mode in jobs:
        in_cond = runs[runs["cond"] == cond]
        sims = set(in_cond["sim"])
        policy = dict(zip(in_cond["sim"], in_cond["policy"], strict=True))
        cond_games = games[games["sim"].isin(sims)]
        hypothesis = get_hypothesis(hyp_name)
        table, hyp = with_tones(mode, cond_games, logs["users"], hypothesis, reader)
        path = cache / f"{_key(table, hyp, seed)}.csv"
        fits.append((cond, hyp_name, mode, sims, path, (table, policy, hyp, seed, str(path))))
    bar = progress_bar(total=len(fits), desc="fits", disable=not progress)
    todo = [f[5] for f in fits if not cached(f[4])]
    bar.update(len(fits) - len(todo))
    workers = min(workers or os.cpu_count() or 1, len(todo))
    if workers > 1:
        pool = worker_pool(workers)
        for future in as_completed([pool.submit(_fit_to_cache, *job) for job in todo]):
            future.result()
            bar.update()
    else:
        for job in todo:
            _fit_to_cache(*job)
            bar.update()
    bar.close()
    parts = []
    for cond, hyp_name, mode, sims, path, _ in fits:
        rows = pd.read_csv(path)
        ref = reference[reference["sim"].isin(sims)]
        both = pd.concat([ref, rows], ignore_index=True)
        parts.append(both.assign(condition=cond, hypothesis=hyp_name, tones=mode))
    columns = ["condition", "hypothesis", "tones", "sim", "epoch", "agent", "offered_share"]
    summary = pd.concat(parts, ignore_index=True)
    rest = [c for c in summary.columns if c not in columns]
    summary = summary[columns + rest].sort_values(columns[:6]).reset_index(drop=True)
    write_csv_atomic(summary, out / "summary.csv")
    from scai.experiments.original_logs.report import write_figures

    return summary, write_figures(summary, figures)


def _fit_to_cache(table: pd.DataFrame, policy, hypothesis, seed: int, path: str) -> None:
    """One condition's fit (:func:`run_condition`), written to ``path``. Torch runs on one
    thread whether or not in a worker process: how many threads share a reduction can change
    its rounding, so the rows are the same for a seed whatever ``--workers`` is."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = run_condition(table, policy, hypothesis, seed).assign(agent="scai")
    finally:
        torch.set_num_threads(threads)
    write_csv_atomic(rows, Path(path))
    size, sha = file_digest(Path(path))  # written last: a fit without it is unfinished
    write_atomic(_checksum_path(Path(path)), lambda tmp: Path(tmp).write_text(f"{size} {sha}\n"))


def _checksum_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def cached(path: Path) -> bool:
    """Whether the fit at ``path`` is finished and intact: its rows match the size and SHA-256
    written after them. A damaged or unfinished fit is removed, with a
    :class:`~scai.experiments.cache.CacheWarning`, and refitted."""
    checksum = _checksum_path(path)
    if not path.exists() and not checksum.exists():
        return False
    problem = None
    if not checksum.exists():
        problem = "no checksum (unfinished)"
    elif not path.exists():
        problem = "its rows are missing"
    else:
        expected = checksum.read_text().split()
        if expected != [str(part) for part in file_digest(path)]:
            problem = "its rows do not match their checksum"
    if problem is None:
        return True
    warnings.warn(f"cache: {path.name}: {problem}; refitting", CacheWarning, stacklevel=2)
    path.unlink(missing_ok=True)
    checksum.unlink(missing_ok=True)
    return False


def _key(table: pd.DataFrame, hypothesis, seed: int) -> str:
    """The cache key of one fit: the games and tones, the hypothesis, the seed, the epochs and
    the code (:func:`scai.experiments.cache.code_version`: scai's source and its libraries'
    versions), so that other code refits instead of reusing its rows."""
    text = table.to_csv(index=False) + json.dumps(
        {
            "hypothesis": hypothesis.to_dict(),
            "seed": seed,
            "epochs": EPOCHS,
            "code": code_version(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: The comparison table's name beside the figures.
COMPARISON_FILE = "original_logs_comparison.md"


def gpt4_numbers(out: Path) -> dict[str, float]:
    """The GPT-4 assistant's curves recomputed from its logs beside the paper's
    (:func:`scai.experiments.gpt4_logs.reproduce_gpt4`), written to ``gpt4_curves.csv`` and
    ``gpt4_misparses.csv`` (the proposals the authors' parser misread); its numbers."""
    from scai.experiments.gpt4_logs import reproduce_gpt4

    reproduction = reproduce_gpt4(out / "import" / "logs.csv")
    write_csv_atomic(reproduction.curves, out / "gpt4_curves.csv")
    write_csv_atomic(reproduction.misparses, out / "gpt4_misparses.csv")
    numbers = {"GPT-4 proposals the authors' parser misread": float(len(reproduction.misparses))}
    curves = reproduction.curves
    published = curves[curves["paper"] != ""]
    misread = {sim.rsplit("/", 1)[0] for sim in reproduction.misparses["sim"]}
    agree = published[~published["condition"].isin(misread)]
    if len(agree):
        numbers["max |GPT-4 from logs - published|, curves without misreads"] = float(
            agree["difference"].abs().max()
        )
    for row in reproduction.endings.itertuples():
        if not pd.isna(row.published):  # the endings the paper counted
            numbers[f"GPT-4 {row.condition} runs ending {row.ending}, from the logs"] = row.ours
            numbers[f"GPT-4 {row.condition} runs ending {row.ending}, published"] = row.published
    for row in curves.itertuples():
        if row.paper:
            numbers[f"GPT-4 {row.paper}, epoch {row.epoch}, from the logs"] = float(row.ours)
    return numbers


def main(args):
    """``scai run original-logs`` (options: ``--logs --data-dir --out --figures --seed
    --quick --hypothesis --tones --workers``)."""
    import matplotlib

    matplotlib.use("Agg")
    from scai.experiments.original_logs.report import checks_and_numbers

    source = shared_file(args, "--logs", ORIGINAL_LOGS_DIR, "original-logs")
    hypotheses = (args.hypothesis,) if getattr(args, "hypothesis", None) else HYPOTHESES
    tones = tuple(getattr(args, "tones", None) or LOG_TONES)
    out = output_dir(args, NAME)
    summary, figures = run(
        source,
        out,
        figure_dir(args),
        seed=args.seed,
        quick=args.quick,
        hypotheses=hypotheses,
        tones=tones,
        workers=getattr(args, "workers", None),
    )
    checks, numbers, table = checks_and_numbers(summary)
    numbers.update(gpt4_numbers(out))
    # beside the figures too: the README shows the committed copy (tests/test_readme.py)
    for path in (out / "comparison.md", figure_dir(args) / COMPARISON_FILE):
        write_atomic(path, lambda tmp: Path(tmp).write_text(table))
    report = format_checks(NAME, checks, numbers, quick=args.quick)
    return ExperimentResult(NAME, summary, checks, numbers, figures, report)
