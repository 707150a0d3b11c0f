"""``scai run original-logs``: the Bayesian assistant on the original study's GPT-4 users.

For every run of the study's logs (experiment 1: one norm with neutral manners; experiment 3:
each norm with neutral, rude and sycophantic manners; 20 runs each), the assistant is fitted
epoch by epoch on exactly the user-user games GPT-4 saw (:mod:`.assistant`), under each
hypothesis (``real_agents``: no stereotype; ``real_agents_stereotyped``: a stereotype learned
per group) and each way of hearing tones (:mod:`.tones`), and set beside the users and the
GPT-4 assistant in the same epochs.

Writes ``OUT/original-logs/summary.csv`` (one row per ``condition, hypothesis, tones, sim,
epoch, agent``; ``agent`` in users, gpt4, scai; columns ``offered_share`` (% of the pot; for
scai the mean of the offers it may make), ``accept_agreement``, ``offer_within_5`` (the
probability that one offer drawn from scai's is within 5 points of the users' mean share),
``p_true_norm`` and ``pi_<norm>``, the last three for scai only; ``reply_agreement``, scai's
agreement with the users' replies to GPT-4's offers, held out, and ``reply_accepted``, GPT-4's
rows: whether the user accepted its offer),
``comparison.md`` (also beside the figures, as ``original_logs_comparison.md``), and a figure per
experiment; and, for the checks of :mod:`.report`: ``decision_bounds.csv`` (the agreement any
norm could reach with the users' decisions, :mod:`.decisions`), ``interaction_curves.csv``
(``p_true_norm`` after each user-user game of epoch 1, under the stereotype, for the conditions
the slowdown check compares, with its figure) and ``tone_gap.csv`` (where read tones move
``p_true_norm`` from the configured tones', the configured tones heard through the reader:
:func:`tone_gap`). Each fit is cached, so an interrupted run resumes.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scai.experiments.cache import CacheWarning, code_version, file_digest
from scai.experiments.common import ExperimentResult, figure_dir, format_checks, output_dir
from scai.experiments.original_logs.assistant import (
    EPOCHS,
    REPLY_COLUMNS,
    Policy,
    interaction_curve,
    run_condition,
    user_games,
)
from scai.experiments.original_logs.decisions import decision_bounds
from scai.experiments.original_logs.report import INCONSISTENT, READ_TOLERANCE, STEREOTYPED
from scai.experiments.original_logs.tones import (
    LOG_TONES,
    config_tones,
    cross_fitted_readers,
    with_tones,
)
from scai.experiments.runner import own_warnings, tell_warning
from scai.experiments.shared_data import ORIGINAL_LOGS_DIR, shared_file
from scai.inference.diagnostics import BoundedGridWarning
from scai.inference.nuts import one_torch_thread
from scai.inference.progress import progress_bar
from scai.inference.workers import Finished, ctrl_c_deferred, worker_pool
from scai.models.data import read_interactions
from scai.models.errors import RunError, ScaiWarning
from scai.models.hypotheses import get_hypothesis
from scai.models.scai_logs import import_logs, output_paths, write_import
from scai.models.scai_logs.importer import check_converted
from scai.models.writing import write_atomic, write_csv_atomic

NAME = "original-logs"
HYPOTHESES = ("real_agents", "real_agents_stereotyped")
QUICK_RUNS = 3  # runs per condition with --quick
QUICK_CONDITIONS = ("exp3/altruistic_rude", "exp3/altruistic_neutral", "exp3/selfish_sycophantic")
#: What a fit computes: rows per epoch (:func:`run_condition`) or per interaction of epoch 1
#: (:func:`interaction_curve`, for the conditions the slowdown check compares).
EPOCHS_KIND, CURVE_KIND = "epochs", "interactions"
CURVE_CONDITIONS = (*INCONSISTENT, *INCONSISTENT.values())
CURVES_FILE = "interaction_curves.csv"
BOUNDS_FILE = "decision_bounds.csv"
TONE_GAP_FILE = "tone_gap.csv"


def imported(source: Path, folder: Path) -> dict[str, pd.DataFrame]:
    """The logs' tables, imported once into ``folder``: reused while the source's files (their
    paths and contents) and the code that imports them are the same, imported again if either
    changed (an edit that keeps a file's size, a fixed parser)."""
    stamp = folder / "source.json"
    target = folder / "logs.csv"
    key = {"source": str(source.resolve()), "files": _digests(source), "code": code_version()}
    done = json.loads(stamp.read_text()) if stamp.exists() else {}
    if not (done.get("key") == key and target.exists()):
        result = import_logs(source)
        check_converted(result, source)  # before any table is written
        write_import(result, target)
        done = {
            "key": key,
            "problems": len(result.report.problems),
            "games_not_converted": sum(result.report.not_converted.values()),
        }
        write_atomic(stamp, lambda tmp: Path(tmp).write_text(json.dumps(done)))
    paths = output_paths(target)
    if done["problems"] or done["games_not_converted"]:
        warnings.warn(
            f"original logs: the import of {source} reported {done['problems']} problem(s) and "
            f"{done['games_not_converted']} game(s) not converted (see {paths['report']})",
            IncompleteLogsWarning,
            stacklevel=2,
        )
    return {
        "games": read_interactions(paths["interactions"]),
        "users": pd.read_csv(paths["users"], keep_default_na=False),
        "runs": pd.read_csv(paths["runs"], keep_default_na=False),
        "gpt4": pd.read_csv(paths["gpt4"], keep_default_na=False),
    }


def _digests(source: Path) -> dict[str, list]:
    """Every file of ``source`` (a folder, or one file), by its path within it: its size and
    SHA-256 (:func:`~scai.experiments.cache.file_digest`)."""
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    return {
        str(p.relative_to(source)) if source.is_dir() else p.name: list(file_digest(p))
        for p in files
    }


class IncompleteLogsWarning(ScaiWarning):
    """Runs of the logs that the import could not convert whole: left out, or fitted on the
    epochs present."""


def complete_runs(runs: pd.DataFrame, games: pd.DataFrame, report: Path) -> pd.DataFrame:
    """Of ``runs``, those the assistant can play: with user-user games in epoch 1 (where it
    acts from its prior; a run without was an internal KeyError). Runs left out, and runs with
    a gap in their epochs (fitted on the epochs present), are told in one
    :class:`IncompleteLogsWarning` naming the import's ``report``; a :class:`RunError` if no
    run is left. (A run that lost its last epochs has no gap: the import's own problems, told
    by :func:`imported`, name it.)"""
    played = games[games["sim"].isin(set(runs["sim"]))]
    epochs = played.groupby("sim")["epoch"].agg(lambda e: sorted(set(e)))
    first = {sim for sim, played in epochs.items() if played[0] == 1}
    gaps = [s for s, e in epochs.items() if s in first and e != list(range(1, len(e) + 1))]
    left_out = [str(s) for s in runs["sim"] if s not in first]
    if not first & set(runs["sim"]):
        raise RunError(
            f"no run of the logs has user-user games in epoch 1 to play from (see {report})"
        )
    told = []
    if left_out:
        told.append(
            f"{len(left_out)} run(s) left out, without user-user games in epoch 1 "
            f"(e.g. {left_out[0]})"
        )
    if gaps:
        told.append(f"{len(gaps)} run(s) miss an epoch, fitted on those present (e.g. {gaps[0]})")
    if told:
        warnings.warn(
            f"original logs: {'; '.join(told)}: the import could not convert them whole "
            f"(see {report})",
            IncompleteLogsWarning,
            stacklevel=2,
        )
    return runs[runs["sim"].isin(first)]


def configured_policies(
    users: pd.DataFrame, runs: pd.DataFrame, hypotheses: tuple[str, ...]
) -> dict[str, Policy]:
    """Per run, its users' configured policies (:data:`Policy`: one name where they share it,
    else a name per user; a mixed run's ``policy`` in the runs table is its mixture, no type's
    name). Refused (:class:`RunError`) where a user's policy names no norm of a hypothesis
    fitted: its ``p_true_norm`` would be 0 whatever the users did."""
    out: dict[str, Policy] = {}
    for sim, part in users[users["sim"].isin(set(runs["sim"]))].groupby("sim", sort=False):
        names = dict(zip(part["user"].astype(str), part["policy"].astype(str), strict=True))
        out[str(sim)] = next(iter(names.values())) if len(set(names.values())) == 1 else names
    for name in hypotheses:
        norms = set(get_hypothesis(name).norm_names)
        for sim in runs["sim"]:
            policy = out.get(str(sim))
            configured = {policy} if isinstance(policy, str) else set((policy or {}).values())
            if policy is None or not configured <= norms:
                found = "no users" if policy is None else ", ".join(sorted(configured - norms))
                raise RunError(
                    f"run {sim}: its users' configured policies ({found}) are not norms of "
                    f"hypothesis {name!r} ({', '.join(sorted(norms))}): p_true_norm scores "
                    "each user against their configured policy; fit a hypothesis whose types "
                    "include it"
                )
    return out


def gpt4_offers(gpt4: pd.DataFrame) -> pd.DataFrame:
    """The users' replies to GPT-4's offers (:data:`~.assistant.REPLY_COLUMNS`), one row per
    run and epoch where GPT-4's offer and the user's decision were read (the import names the
    others in its report)."""
    columns = list(REPLY_COLUMNS)
    numbers = gpt4[columns[1:]].apply(pd.to_numeric, errors="coerce")
    replies = pd.concat([gpt4[["sim"]].astype(str), numbers], axis=1).dropna()
    return replies.astype(dict.fromkeys(columns[1:], int)).reset_index(drop=True)


def reference_rows(games: pd.DataFrame, gpt4: pd.DataFrame) -> pd.DataFrame:
    """The users' and GPT-4's rows per ``sim, epoch``: offered share and, for GPT-4, how often
    its decision on a user's offer matched the user responders' decisions that epoch, and
    ``reply_accepted``: whether the user accepted GPT-4's offer."""
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
        offered_share=pd.to_numeric(gpt4["offered_share"], errors="coerce"),
        reply_accepted=pd.to_numeric(gpt4["accepted"], errors="coerce"),
        agent="gpt4",
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
    runs = complete_runs(runs, games, out / "import" / "logs.report.md")
    policies = configured_policies(logs["users"], runs, hypotheses)
    reader_of = _readers(logs, runs, tones, reader, progress)
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    reference = reference_rows(games, logs["gpt4"])
    replies = gpt4_offers(logs["gpt4"])  # held out: scored, not fitted
    jobs = [
        (c, h, t, EPOCHS_KIND) for c in runs["cond"].unique() for h in hypotheses for t in tones
    ]
    # the per-interaction curves of the conditions the slowdown check compares
    check_tones = "read" if "read" in tones else "config"
    jobs += [
        (c, STEREOTYPED, check_tones, CURVE_KIND)
        for c in runs["cond"].unique()
        if c in CURVE_CONDITIONS and STEREOTYPED in hypotheses and check_tones in tones
    ]
    fits = []  # (cond, hypothesis, tones, kind, sims, cache path, fit arguments)
    for cond, hyp_name, mode, kind in jobs:
        in_cond = runs[runs["cond"] == cond]
        sims = set(in_cond["sim"])
        policy = {sim: policies[sim] for sim in in_cond["sim"]}
        cond_games = games[games["sim"].isin(sims)]
        hypothesis = get_hypothesis(hyp_name)
        table, hyp = with_tones(mode, cond_games, logs["users"], hypothesis, reader_of(cond))
        held_out = replies[replies["sim"].isin(sims)] if kind == EPOCHS_KIND else None
        path = cache / f"{_key(table, hyp, seed, kind, policy, held_out)}.csv"
        args = (table, policy, hyp, seed, str(path), kind, held_out)
        fits.append((cond, hyp_name, mode, kind, sims, path, args))
    _run_fits([f[5:] for f in fits], workers, progress)
    parts, curves = [], []
    for cond, hyp_name, mode, kind, sims, path, _args in fits:
        rows = pd.read_csv(path).assign(condition=cond, hypothesis=hyp_name, tones=mode)
        if kind == CURVE_KIND:
            curves.append(rows)
            continue
        ref = reference[reference["sim"].isin(sims)]
        ref = ref.assign(condition=cond, hypothesis=hyp_name, tones=mode)
        parts.append(pd.concat([ref, rows], ignore_index=True))
    keys = ["condition", "hypothesis", "tones", "sim", "interactions"]
    # No curve fitted (no tones heard, or no experiment-3 condition): an empty table of its columns.
    empty = pd.DataFrame(columns=[*keys, "p_true_norm"])
    curve = pd.concat(curves, ignore_index=True) if curves else empty
    curve = curve[[*keys, "p_true_norm"]].sort_values(keys).reset_index(drop=True)
    write_csv_atomic(curve, out / CURVES_FILE)
    scored = games.merge(runs[["sim", "cond"]], on="sim").rename(columns={"cond": "condition"})
    write_csv_atomic(decision_bounds(scored), out / BOUNDS_FILE)
    columns = ["condition", "hypothesis", "tones", "sim", "epoch", "agent", "offered_share"]
    summary = pd.concat(parts, ignore_index=True)
    rest = [c for c in summary.columns if c not in columns]
    summary = summary[columns + rest].sort_values(columns[:6]).reset_index(drop=True)
    write_csv_atomic(summary, out / "summary.csv")
    if "read" in tones and "config" in tones:
        gap = tone_gap(
            summary, runs, games, logs["users"], policies, reader_of, seed, cache, workers, progress
        )
        write_csv_atomic(gap, out / TONE_GAP_FILE)
    else:  # not measured: no stale file from an earlier run
        (out / TONE_GAP_FILE).unlink(missing_ok=True)
    from scai.experiments.original_logs.report import write_figures

    return summary, write_figures(summary, figures, curve)


def _readers(
    logs: dict[str, pd.DataFrame], runs: pd.DataFrame, tones, reader, progress: bool = False
):
    """The tone reader of each condition (``experiment/condition``): ``reader`` if given;
    else, with ``read`` among ``tones``, a reader that never saw the condition
    (:func:`cross_fitted_readers`), or the shipped one where the logs hold a single condition."""
    if reader is not None or "read" not in tones:
        return lambda cond: reader
    held_out = cross_fitted_readers(logs, progress)
    if not held_out:
        from scai.models.tone_reader import default_reader

        shipped = default_reader()
        return lambda cond: shipped
    condition_of = dict(zip(runs["cond"], runs["condition"], strict=False))
    return lambda cond: held_out[condition_of[cond]]


def _run_fits(fits: list[tuple], workers: int | None, progress: bool) -> None:
    """Run the fits ``(cache path, arguments of _fit_to_cache)`` not yet cached, in ``workers``
    processes (default: one per core); then tell each of scai's warnings they gave once, with
    how many fits gave it (every fit of a condition's many groups on one grid gives the same)."""
    bar = progress_bar(total=len(fits), desc="fits", disable=None if progress else True)
    todo = [args for path, args in fits if not cached(path)]
    bar.update(len(fits) - len(todo))
    workers = min(workers or os.cpu_count() or 1, len(todo))
    told: collections.Counter[str] = collections.Counter()
    if workers > 1:
        pool, finishing = worker_pool(workers), Finished()
        with ctrl_c_deferred() as check:  # Ctrl-C raised between futures: see Finished
            for job in todo:
                finishing.watch(pool.submit(_fit_to_cache, *job))
                check()
            for _ in todo:
                told.update(finishing.next(check).result())
                bar.update()
    else:
        for job in todo:
            told.update(_fit_to_cache(*job))
            bar.update()
    bar.close()
    for line, fits_giving in told.items():
        tell_warning(line, f"{fits_giving} of {len(todo)} fits: ")


def tone_gap(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    games: pd.DataFrame,
    users: pd.DataFrame,
    policies: dict[str, Policy],
    reader_of,
    seed: int,
    cache: Path,
    workers: int | None,
    progress: bool,
) -> pd.DataFrame:
    """Where read tones move scai's mean ``p_true_norm`` more than :data:`READ_TOLERANCE` from
    the configured tones' (in any epoch), why: the configured tones are fitted once more as if
    the reader had reported them (the configured tone as the report, the reader's confusion in
    the hypothesis). One row per ``condition, hypothesis, epoch`` of those: ``read``,
    ``config`` and ``config_heard_by_reader`` (mean ``p_true_norm``); ``read -
    config_heard_by_reader`` is what the reader's mistakes cost, ``config_heard_by_reader -
    config`` what its channel costs (the tones it cannot report, e.g. polite). ``reader_of``
    gives each condition's reader."""
    scai = summary[summary["agent"] == "scai"]
    means = scai.groupby(["condition", "hypothesis", "tones", "epoch"])["p_true_norm"].mean()
    means = means.unstack("tones")
    gap = (means["read"] - means["config"]).abs().groupby(["condition", "hypothesis"]).max()
    fits, labels = [], []
    for cond, hyp_name in gap[gap > READ_TOLERANCE].index:
        in_cond = runs[runs["cond"] == cond]
        policy = {sim: policies[sim] for sim in in_cond["sim"]}
        table = config_tones(games[games["sim"].isin(set(in_cond["sim"]))], users)
        hyp = get_hypothesis(hyp_name).with_(reader_confusion=reader_of(cond).confusion)
        path = cache / f"{_key(table, hyp, seed, EPOCHS_KIND, policy)}.csv"
        fits.append((path, (table, policy, hyp, seed, str(path))))
        labels.append((cond, hyp_name))
    _run_fits(fits, workers, progress)
    rows = []
    for (cond, hyp_name), (path, _) in zip(labels, fits, strict=True):
        heard = pd.read_csv(path).groupby("epoch")["p_true_norm"].mean()
        for epoch, value in heard.items():
            rows.append(
                {
                    "condition": cond,
                    "hypothesis": hyp_name,
                    "epoch": epoch,
                    "read": means.loc[(cond, hyp_name, epoch), "read"],
                    "config": means.loc[(cond, hyp_name, epoch), "config"],
                    "config_heard_by_reader": float(value),
                }
            )
    columns = ["condition", "hypothesis", "epoch", "read", "config", "config_heard_by_reader"]
    return pd.DataFrame(rows, columns=columns)


def _fit_to_cache(
    table: pd.DataFrame,
    policy,
    hypothesis,
    seed: int,
    path: str,
    kind: str = "epochs",
    replies: pd.DataFrame | None = None,
) -> list[str]:
    """One condition's fit, written to ``path``, and scai's warnings it gave (one line each,
    :func:`~scai.experiments.runner.own_warnings`): by epoch (:func:`run_condition`) or, ``kind``
    ``"interactions"``, per interaction of epoch 1 (:func:`interaction_curve`); ``replies``: the
    users' replies to GPT-4's offers that the epochs' rows score, held out. Torch runs on one
    thread whether or not in a worker process: how many threads share a reduction can change
    its rounding, so the rows are the same for a seed whatever ``--workers`` is."""
    with one_torch_thread(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScaiWarning)  # each fit's kept, told once by the caller
        # These fits put all of a condition's runs and epochs on one grid of the lapse (and
        # the other sites in (0, 1)), too many groups for a zoomed grid to fit the engine's
        # budget; the lapse's own moments are not reported here: pi and the types, which
        # integrate over it, are (tests/test_engines_real_agents.py bounds that error).
        warnings.simplefilter("ignore", BoundedGridWarning)
        if kind == CURVE_KIND:
            rows = interaction_curve(table, policy, hypothesis, seed)
        else:
            rows = run_condition(table, policy, hypothesis, seed, replies=replies)
            rows = rows.assign(agent="scai")
    write_csv_atomic(rows, Path(path))
    size, sha = file_digest(Path(path))  # written last: a fit without it is unfinished
    write_atomic(_checksum_path(Path(path)), lambda tmp: Path(tmp).write_text(f"{size} {sha}\n"))
    return own_warnings(caught)


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


def _key(
    table: pd.DataFrame,
    hypothesis,
    seed: int,
    kind: str,
    policy: dict[str, Policy],
    replies: pd.DataFrame | None = None,
) -> str:
    """The cache key of one fit: the games and tones, the held-out ``replies`` it scores, the
    hypothesis, the seed, the epochs, the users' configured policies (what ``p_true_norm``
    scores against) and the code (:func:`scai.experiments.cache.code_version`: scai's source
    and its libraries' versions), so that other code refits instead of reusing its rows."""
    held_out = "" if replies is None else "replies\n" + replies.to_csv(index=False)
    text = (
        table.to_csv(index=False)
        + held_out
        + json.dumps(
            {
                "hypothesis": hypothesis.to_dict(),
                "policy": policy,
                "seed": seed,
                "epochs": EPOCHS,
                **({} if kind == EPOCHS_KIND else {"kind": kind}),
                "code": code_version(),
            },
            sort_keys=True,
            default=str,
        )
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
    extras = [out / name for name in (CURVES_FILE, BOUNDS_FILE, TONE_GAP_FILE)]
    curves, bounds, gap = (pd.read_csv(p) if p.exists() else None for p in extras)
    checks, numbers, table = checks_and_numbers(summary, curves, bounds, gap)
    numbers.update(gpt4_numbers(out))
    # beside the figures too: the README shows the committed copy (tests/test_readme.py)
    for path in (out / "comparison.md", figure_dir(args) / COMPARISON_FILE):
        write_atomic(path, lambda tmp: Path(tmp).write_text(table))
    report = format_checks(NAME, checks, numbers, quick=args.quick)
    return ExperimentResult(NAME, summary, checks, numbers, figures, report)
