"""The experiment: read (or simulate) responder data, fit both hypotheses, compare, write.

:func:`run` takes a data file, or :data:`SYNTHETIC` for decisions simulated from the
inequity-aversion model with known parameters (:data:`SYNTHETIC_TRUTH`,
:func:`scai.models.responders.simulate_responders`), so that the experiment runs where the
real file is not. :func:`main` reads ``scai run human-data``'s options into it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scai.experiments.common import figure_dir, remove_earlier
from scai.experiments.human_data.figures import plot_norm_types, plot_rejection, plot_roles
from scai.experiments.human_data.fitting import (
    INEQUITY_FILE,
    HumanFitSettings,
    ResponderFit,
    check_fit_memory,
    fit_responders,
    run_responder_chains,
    specs_with,
)
from scai.experiments.human_data.inference_data import responder_inference_data
from scai.experiments.human_data.report import HumanDataResult, report_text
from scai.experiments.human_data.tables import max_errors, pareto_table, rejection_table
from scai.inference.arviz_schema import save_netcdf
from scai.models.data import DataError, Problem
from scai.models.errors import RunError, TableWarning
from scai.models.human_data import (
    HUMAN_CURRENCY,
    HumanImport,
    read_human_data,
    rejection_by_offer,
)
from scai.models.hypothesis_files import load_hypothesis_file
from scai.models.responders import ResponderData, simulate_responders
from scai.models.writing import write_csv_atomic

NAME = "human-data"
QUICK_SUBJECTS = 20  # per role
#: ``--data synthetic``: decisions simulated from the model instead of read from a file.
SYNTHETIC = "synthetic"
SYNTHETIC_SUBJECTS = 100  # per role, full size (--quick: QUICK_SUBJECTS)
#: The inequity-aversion parameters the synthetic decisions are simulated with, per role
#: (``self``, ``other``): median envy 0.22 and 0.37 (rejecting below 15% and 21% of the pot).
SYNTHETIC_TRUTH = {
    "envy_mu": [-1.5, -1.0],
    "envy_sigma": [1.5, 1.0],
    "lam": [0.3, 0.15],
    "lam_spread": [0.5, 0.5],
    "lapse": [0.01, 0.01],
    "inattentive": [0.03, 0.05],
}
#: The names of the files written once per hypothesis (``posterior_<name>.nc``,
#: ``rejection_by_offer_<name>.csv``): those of hypotheses this run did not fit are removed.
PER_HYPOTHESIS = ("posterior_*.nc", "rejection_by_offer_*.csv")
MISSING_FILE = (
    "file does not exist; point --data at the Study 1 CSV (study1_ug.csv, see "
    "../shared/data/README.md) or at a file in the generic layout, or pass --data synthetic "
    "for decisions simulated from the model"
)


def subset(imported: HumanImport, per_role: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """``per_role`` subjects of each role, drawn with ``seed``: the table and roles."""
    rng = np.random.default_rng(seed)
    keep: list[str] = []
    by_role: dict[str, list[str]] = {}
    for subject, role in imported.roles.items():
        by_role.setdefault(role, []).append(subject)
    for role in sorted(by_role):
        subjects = sorted(by_role[role])
        n = min(per_role, len(subjects))
        keep.extend(subjects[i] for i in sorted(rng.choice(len(subjects), n, replace=False)))
    table = imported.table[imported.table["responder"].isin(keep)].reset_index(drop=True)
    return table, {s: imported.roles[s] for s in keep}


def synthetic_import(per_role: int, seed: int) -> HumanImport:
    """Decisions of ``per_role`` subjects per role simulated from the inequity-aversion
    hypothesis with :data:`SYNTHETIC_TRUTH`, as an import (format ``synthetic``)."""
    spec = load_hypothesis_file(INEQUITY_FILE)
    sim = simulate_responders(
        spec, {"self": per_role, "other": per_role}, params=SYNTHETIC_TRUTH, seed=seed
    )
    return HumanImport(sim.table, sim.roles, format=SYNTHETIC)


def check_one_currency(table: pd.DataFrame, source: str) -> None:
    """The responder models weigh pots and offers as numbers: the currency column of a file
    (checked as a currency on import, and kept in its table) enters none of them. Several
    currencies in one file are refused (a pot of 10 dollars and one of 1,000 cents would be
    fitted as pots of 10 and 1,000); one other than cents is told (a red-team find: a file in
    dollars fitted as in cents, byte for byte, without a word)."""
    currencies = sorted(set(table["currency"].astype(str)))
    if len(currencies) > 1:
        raise RunError(
            f"{source}: decisions in {len(currencies)} currencies ({', '.join(currencies)}): "
            "the responder models read pots and offers as numbers, in no currency; give one "
            "file per currency, or convert the pots and offers to one unit"
        )
    if currencies and currencies[0] != HUMAN_CURRENCY:
        warnings.warn(
            TableWarning(
                f"{source}: the decisions are in {currencies[0]}; the responder models read pots "
                "and offers as numbers (the study's were cents): the currency enters none of them"
            ),
            stacklevel=1,
        )


def check_synthetic_options(data_path: Path | str, format: str, skip_invalid: bool) -> None:
    """A :class:`RunError` if ``--format`` or ``--skip-invalid`` is given with ``--data
    synthetic``: both say how to read a data file, and simulated decisions are read from none."""
    if str(data_path) != SYNTHETIC:
        return
    given = [f"--format {format}"] if format != "auto" else []
    given += ["--skip-invalid"] if skip_invalid else []
    if given:
        raise RunError(
            f"{given[0]}: applies to a data file (--data PATH), not to --data {SYNTHETIC} "
            "(decisions simulated from the model)"
        )


def run(
    data_path: Path | str,
    out: Path,
    figures: Path,
    *,
    format: str = "auto",
    skip_invalid: bool = False,
    seed: int = 0,
    quick: bool = False,
    hypothesis: str | None = None,
    settings: HumanFitSettings | None = None,
    workers: int | None = None,
) -> HumanDataResult:
    """The experiment (see :mod:`scai.experiments.human_data`) on the file ``data_path``, or
    on synthetic decisions when it is :data:`SYNTHETIC`."""
    import arviz as az

    check_synthetic_options(data_path, format, skip_invalid)
    subsample = ""
    if str(data_path) == SYNTHETIC:
        per_role = QUICK_SUBJECTS if quick else SYNTHETIC_SUBJECTS
        imported = synthetic_import(per_role, seed)
        table, roles = imported.table, imported.roles
        source = (
            f"simulated {len(table)} decisions from {INEQUITY_FILE.name} with known parameters "
            f"(SYNTHETIC_TRUTH, seed {seed})"
        )
    else:
        if not Path(data_path).exists():
            raise DataError(str(data_path), [Problem(None, None, None, MISSING_FILE)])
        imported = read_human_data(data_path, format=format, skip_invalid=skip_invalid)
        source = (
            f"imported {len(imported.table)} decisions from {data_path} ({imported.format} "
            f"layout); skipped {imported.skipped} bad row(s)"
        )
        if imported.problems:  # which rows, and why (--skip-invalid)
            source += ": " + DataError(str(data_path), imported.problems).one_line()
        if quick:
            table, roles = subset(imported, QUICK_SUBJECTS, seed)
            subsample = f"quick: {QUICK_SUBJECTS} per role"
        else:
            table, roles = imported.table, imported.roles
    check_one_currency(table, str(data_path))
    settings = settings or HumanFitSettings.for_run(quick, seed)
    specs = specs_with(hypothesis)
    check_fit_memory(table, roles, specs, settings, str(data_path))
    data = ResponderData.from_table(table, roles)
    observed = rejection_by_offer(table, roles)
    outdir = out / NAME
    fits, idatas, tables, paths = [], {}, {}, []
    chains = run_responder_chains(data, specs, settings, workers)
    for spec, spec_chains in zip(specs, chains, strict=True):
        fit = fit_responders(data, spec, settings, spec_chains)
        fits.append(fit)
        idatas[fit.name] = responder_inference_data(fit, table)
        path = outdir / f"posterior_{fit.name}.nc"
        save_netcdf(idatas[fit.name], path)
        tables[fit.name] = rejection_table(fit, observed)
        paths.append(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare = az.compare(idatas, ic="loo", method="stacking")
    compare = compare.rename_axis("hypothesis").reset_index()
    best = str(compare.iloc[0]["hypothesis"])
    pareto = pareto_table(fits, idatas)
    files = {
        "rejection_by_offer.csv": tables[best],
        "compare.csv": compare,
        "pareto_k.csv": pareto,
        **{f"rejection_by_offer_{name}.csv": t for name, t in tables.items()},
    }
    for name, frame in files.items():
        write_csv_atomic(frame, outdir / name)
        paths.append(outdir / name)
    # the folder describes this run: not an earlier run's hypotheses beside this one's
    remove_earlier(outdir, PER_HYPOTHESIS, paths)
    paths.extend(_figures(fits, tables, figures))
    result = HumanDataResult(
        imported=imported,
        data=data,
        fits=fits,
        compare=compare,
        tables=tables,
        pareto=pareto,
        best=best,
        max_error=max_errors(tables),
        max_error_new=max_errors(tables, "new_subject_mean"),
        paths=paths,
        source=source,
        subsample=subsample,
    )
    result.report = report_text(result)
    return result


def _figures(
    fits: list[ResponderFit], tables: dict[str, pd.DataFrame], figures: Path
) -> list[Path]:
    """The three figures (the norm-type and role figures when their hypothesis was fitted)."""
    paths = {
        "rejection_by_offer": figures / "human_data_rejection_by_offer.png",
        "norm_types": figures / "human_data_norm_types.png",
        "roles": figures / "human_data_roles.png",
    }
    plot_rejection(tables, paths["rejection_by_offer"])
    kinds = {fit.spec.kind: fit for fit in fits}
    if "norm_mixture" in kinds:
        plot_norm_types(kinds["norm_mixture"], paths["norm_types"])
    if "inequity_aversion" in kinds:
        plot_roles(kinds["inequity_aversion"], paths["roles"])
    return [p for p in paths.values() if p.exists()]


def main(args) -> HumanDataResult:
    """``scai run human-data`` (options: ``--data PATH|synthetic --format --skip-invalid
    --out --figures --seed --quick --hypothesis --workers``)."""
    if args.data is None:
        raise ValueError(f"human-data needs --data PATH or --data {SYNTHETIC}")
    return run(
        args.data if str(args.data) == SYNTHETIC else Path(args.data),
        Path(args.out),
        figure_dir(args),
        format=getattr(args, "format", "auto"),
        skip_invalid=getattr(args, "skip_invalid", False),
        seed=args.seed,
        quick=args.quick,
        hypothesis=getattr(args, "hypothesis", None),
        workers=getattr(args, "workers", None),
    )
