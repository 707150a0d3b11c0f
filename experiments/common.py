"""What every experiment shares: settings from the command line, outputs, checks."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scai.experiments.protocol import ConditionResult, Settings
from scai.models.data import write_csv_atomic
from scai.models.errors import check_count, check_seed

#: ``option: (low, high)`` of ``scai run``'s counts, checked on the command line and again by
#: :func:`settings_from`. Each condition fits ``sims`` groups for ``epochs`` epochs, so the
#: default run (20 x 5) takes about a minute; the bounds are 50 times that, per option.
RUN_LIMITS: dict[str, tuple[int, int]] = {
    "sims": (1, 1000),
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
    """Protocol settings from ``scai run`` options (``--quick`` shrinks them), checked first."""
    check_run_options(args)
    sims = min(args.sims, quick_sims) if args.quick else args.sims
    epochs = min(args.epochs, quick_epochs) if args.quick else args.epochs
    schedule = getattr(args, "schedule", "grouped")
    return Settings(
        sims=sims, epochs=epochs, seed=args.seed, engine=args.engine, schedule=schedule, **extra
    )


def output_dir(args, name: str) -> Path:
    path = Path(args.out) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_dir(args) -> Path:
    path = Path(args.figures)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_summary(summary: pd.DataFrame, out: Path) -> Path:
    path = out / "summary.csv"
    write_csv_atomic(summary, path)
    return path


def keep_posterior(result: ConditionResult, out: Path, label: str) -> Path | None:
    """Copy a representative run's posterior (NetCDF) next to the summary."""
    source = result.extras.get("posterior_path")
    if source is None or not Path(source).exists():
        return None
    target = out / f"posterior_{label.replace(' ', '_').replace('/', '-').replace('+', 'and')}.nc"
    shutil.copyfile(source, target)
    return target


def format_checks(
    name: str, checks: dict[str, bool], numbers: dict[str, float], quick: bool = False
) -> str:
    """The checks (PASS/FAIL) and numbers an experiment prints. The checks are the issue's
    full-size criteria; at ``--quick`` size they are only indicative, and the header says so."""
    lines = [f"{name}:" + (" (--quick: checks are calibrated for full size)" if quick else "")]
    lines += [f"  {'PASS' if ok else 'FAIL'}  {what}" for what, ok in checks.items()]
    lines += [f"  {k} = {v:.3g}" for k, v in numbers.items()]
    return "\n".join(lines)
