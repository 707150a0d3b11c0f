"""What every experiment shares: settings from the command line, outputs, checks."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scai.experiments.conditions import Settings
from scai.experiments.protocol import ConditionResult
from scai.models.errors import check_count, check_seed
from scai.models.writing import safe_filename, write_atomic, write_csv_atomic

#: ``option: (low, high)`` of ``scai run``'s counts, checked on the command line and again by
#: :func:`settings_from`. Each condition fits ``sims`` groups for ``epochs`` epochs, so the
#: default run (20 x 5) takes about a minute; the bounds are 50 times that, per option. At
#: least two simulations: every result is a mean over them with an interval, and one
#: simulation's "interval" had zero width, which checks took for certainty.
RUN_LIMITS: dict[str, tuple[int, int]] = {
    "sims": (2, 1000),
    "epochs": (1, 250),
    "workers": (1, 256),
}


def check_run_options(args) -> None:
    """A :class:`RunError` naming the first bad ``scai run`` option (``--sims``, ``--epochs``,
    ``--seed``, ``--workers``) of ``args``, before any work."""
    for name in ("sims", "epochs"):
        check_count(f"--{name}", getattr(args, name), *RUN_LIMITS[name])
    check_seed(args.seed, "--seed")
    if getattr(args, "workers", None) is not None:
        check_count("--workers", args.workers, *RUN_LIMITS["workers"])


@dataclass
class ExperimentResult:
    name: str
    summary: pd.DataFrame
    checks: dict[str, bool] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    report: str = ""


def settings_from(args, quick_sims: int = 6, quick_epochs: int = 3, **extra) -> Settings:
    """Protocol settings from ``scai run`` options (``--quick`` shrinks them), checked first;
    ``extra`` settings are added, or replace an option's (an experiment's own engine)."""
    check_run_options(args)
    sims = min(args.sims, quick_sims) if args.quick else args.sims
    epochs = min(args.epochs, quick_epochs) if args.quick else args.epochs
    schedule = getattr(args, "schedule", "grouped")
    options = dict(sims=sims, epochs=epochs, seed=args.seed, engine=args.engine, schedule=schedule)
    return Settings(**{**options, **extra})


def output_dir(args, name: str) -> Path:
    """``OUT/NAME``, made if need be: where experiment ``name`` writes its results."""
    path = Path(args.out) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(args, name: str) -> Path:
    """Where an experiment caches its finished conditions: ``OUT/NAME/cache`` (made when the
    cache is opened: a plan is made to be checked too, before the run writes anything)."""
    return Path(args.out) / name / "cache"


def figure_path(args) -> Path:
    """``--figures``, or by default ``OUT/figures``: a run writes only under ``--out`` unless
    asked to refresh the committed figures (not made here: :func:`figure_dir`)."""
    figures = getattr(args, "figures", None)
    return Path(figures) if figures else Path(args.out) / "figures"


def figure_dir(args) -> Path:
    """:func:`figure_path`, made if needed."""
    path = figure_path(args)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_summary(summary: pd.DataFrame, out: Path) -> Path:
    path = out / "summary.csv"
    write_csv_atomic(summary, path)
    return path


def keep_posterior(result: ConditionResult, out: Path, label: str) -> Path | None:
    """Copy a representative run's posterior (NetCDF) next to the summary, as
    ``posterior_<label>.nc`` (the label made a safe file name; written atomically, never
    through a link)."""
    source = result.extras.get("posterior_path")
    if source is None or not Path(source).exists():
        return None
    name = safe_filename(label.replace(" ", "_").replace("/", "-").replace("+", "and"))
    target = out / f"posterior_{name}.nc"
    write_atomic(target, lambda tmp: shutil.copyfile(source, tmp), suffix=".nc")
    return target


def remove_earlier(out: Path, patterns: tuple[str, ...], written: list[Path]) -> list[Path]:
    """Remove the files of ``out`` matching ``patterns`` (the names a run gives its
    per-hypothesis outputs) that this run did not write (``written``): an earlier run's, into
    the same folder with other hypotheses, would sit beside this run's tables as if part of
    it. Returns the removed paths."""
    kept = {Path(path).resolve() for path in written}
    removed = [
        path
        for pattern in patterns
        for path in sorted(out.glob(pattern))
        if path.is_file() and path.resolve() not in kept
    ]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def format_checks(
    name: str,
    checks: dict[str, bool],
    numbers: dict[str, float],
    quick: bool = False,
    skipped: dict[str, str] | None = None,
) -> str:
    """The checks (PASS/FAIL) and numbers an experiment prints. The checks are the issue's
    full-size criteria; at ``--quick`` size they are only indicative, and the header says so.
    ``skipped``: checks the run's settings leave nothing to check on, each with why (SKIP)."""
    lines = [f"{name}:" + (" (--quick: checks are calibrated for full size)" if quick else "")]
    lines += [f"  {'PASS' if ok else 'FAIL'}  {what}" for what, ok in checks.items()]
    lines += [f"  SKIP  {what} ({why})" for what, why in (skipped or {}).items()]
    lines += [f"  {k} = {v:.3g}" for k, v in numbers.items()]
    return "\n".join(lines)
