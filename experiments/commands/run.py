"""``scai run``: run one of the study's experiments, ``all`` of them, or ``everything``."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from scai.experiments.cache import CacheWarning, nothing_left_on_failure
from scai.experiments.commands import (
    check_folder_writable,
    command,
    count,
    file_in_the_way,
    in_the_way,
    input_path,
    output_dir,
    seed_option,
    warnings_on_one_line,
)
from scai.experiments.common import RUN_LIMITS, check_run_options, figure_dir, figure_path
from scai.experiments.locking import LOCK_NAME, locked
from scai.experiments.original_logs.tones import LOG_TONES
from scai.experiments.registry import EXPERIMENTS, GROUPS, STUDY, load
from scai.experiments.report import (
    COMPARISON,
    check_merged_files,
    record_numbers,
    write_comparison,
)
from scai.experiments.shared_data import (
    DATA_DIR_ENV,
    HUMAN_DATA_FILE,
    ORIGINAL_LOGS_DIR,
    shared_file,
)
from scai.models.errors import HypothesisError, HypothesisWarning, RunError, UnusedColumnsWarning
from scai.models.hypotheses import check_name, get_hypothesis
from scai.models.table_file import TAR_ENDINGS

#: Options of some experiments alone: name -> (those experiments, the default). An option
#: given to a run none of whose experiments reads it is refused, not ignored.
EXPERIMENT_OPTIONS: dict[str, tuple[tuple[str, ...], object]] = {
    "sims": (STUDY, 20),
    "epochs": (STUDY, 5),
    "engine": (("alignment", "generalization"), "exact"),
    "schedule": (STUDY, "grouped"),
    "data": (("human-data",), None),
    "format": (("human-data",), "auto"),
    "skip_invalid": (("human-data",), False),
    "logs": (("original-logs",), None),
    "tones": (("original-logs",), None),
    "data_dir": (("human-data", "original-logs"), None),
}
#: Where ``--data-dir`` is looked in: experiment -> (the option naming its data instead, the
#: name it looks for in the folder). A run whose experiments all name theirs ignores the folder.
DATA_DIR_USERS = {
    "human-data": ("--data", HUMAN_DATA_FILE),
    "original-logs": ("--logs", f"{ORIGINAL_LOGS_DIR}/"),
}


def _add_run(p: argparse.ArgumentParser) -> None:
    from scai.experiments.conditions import SCHEDULES
    from scai.inference.fit import ENGINES

    p.add_argument(
        "experiment",
        choices=[*EXPERIMENTS, *GROUPS],
        help="an experiment; 'all' for the original study's three, 'everything' for every "
        "experiment (adds human-data and original-logs)",
    )
    p.add_argument(
        "--out",
        type=output_dir,
        default=Path("results"),
        metavar="DIR",
        help="results go to DIR/NAME/ (default results/)",
    )
    p.add_argument(
        "--sims",
        type=count("--sims", *RUN_LIMITS["sims"]),
        default=EXPERIMENT_OPTIONS["sims"][1],
        help="alignment, generalization, inconsistency: simulations per condition (default 20)",
    )
    p.add_argument(
        "--epochs",
        type=count("--epochs", *RUN_LIMITS["epochs"]),
        default=EXPERIMENT_OPTIONS["epochs"][1],
        help="alignment, generalization, inconsistency: epochs per simulation (default 5)",
    )
    seed_option(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=EXPERIMENT_OPTIONS["engine"][1],
        help="inference engine of alignment and generalization (inconsistency, whose "
        "learning curves are exact posteriors, and original-logs always fit exactly; human-data "
        "always samples with NUTS)",
    )
    p.add_argument(
        "--hypothesis",
        default=None,
        metavar="NAME|FILE.toml",
        help="override the hypotheses the experiment fits with this one (in alignment, "
        "generalization and inconsistency the assistant's: the simulated users stay the "
        "study's, its three utilities at the condition's rationality)",
    )
    p.add_argument("--quick", action="store_true", help="a small, fast version (for tests)")
    p.add_argument(
        "--wait",
        action="store_true",
        help=f"if another scai process is running into --out (it holds OUT/{LOCK_NAME}), wait "
        "for it to end; by default the run is refused",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=EXPERIMENT_OPTIONS["schedule"][1],
        help="alignment, generalization, inconsistency: order of the users' return games in an "
        "epoch: all first user-user games, then "
        "all return games (grouped: the order the original code uses when it flips games, a "
        "path its published runs did not take) or each right after its first (alternating)",
    )
    p.add_argument(
        "--figures",
        type=output_dir,
        default=None,
        metavar="DIR",
        help="where figures go (default OUT/figures; the README's command writes the committed "
        "ones with --figures figures)",
    )
    p.add_argument(
        "--workers",
        type=count("--workers", *RUN_LIMITS["workers"]),
        default=None,
        help="parallel processes for independent conditions (default: cores)",
    )
    p.add_argument(
        "--data",
        type=input_path,
        default=None,
        metavar="PATH|synthetic",
        help=f"human-data: the data file (default: {HUMAN_DATA_FILE} in --data-dir), or "
        "'synthetic' for decisions simulated from the inequity-aversion model with known "
        "parameters (no file needed; a file named synthetic is ./synthetic)",
    )
    p.add_argument(
        "--data-dir",
        type=input_path,
        default=None,
        metavar="DIR",
        help=f"the folder holding the data scai does not ship ({HUMAN_DATA_FILE}, "
        f"{ORIGINAL_LOGS_DIR}/; default ${DATA_DIR_ENV})",
    )
    p.add_argument(
        "--logs",
        type=input_path,
        default=None,
        metavar="SOURCE",
        help="original-logs: the original study's logs, a folder or a tar archive "
        f"({', '.join(TAR_ENDINGS)}; default: "
        f"{ORIGINAL_LOGS_DIR}/ in --data-dir)",
    )
    p.add_argument(
        "--tones",
        nargs="+",
        choices=LOG_TONES,
        default=None,
        help="original-logs: how the assistant hears tones (default: all of "
        f"{', '.join(LOG_TONES)})",
    )
    p.add_argument(
        "--format",
        choices=("auto", "generic", "study1"),
        default=EXPERIMENT_OPTIONS["format"][1],
        help="human-data: the file's layout",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="human-data: keep the good rows of a file with bad ones",
    )


@command("run", "run one of the study's experiments, 'all' of them, or 'everything'")(_add_run)
def run_experiment(args: argparse.Namespace) -> int:
    names = list(GROUPS.get(args.experiment, [args.experiment]))
    check_run_options(args)
    for option, (users, default) in EXPERIMENT_OPTIONS.items():
        given = getattr(args, option)
        if given != default and not set(users) & set(names):
            flag = "--" + option.replace("_", "-")
            value = " ".join(map(str, given)) if isinstance(given, list) else str(given)
            shown = flag if given is True else f"{flag} {value}"
            raise RunError(
                f"{shown}: an option of scai run {' or '.join(users)}, not of {args.experiment}"
            )
    check_data_dir(args, names)
    if args.tones is not None and len(set(args.tones)) < len(args.tones):
        given = " ".join(args.tones)
        raise RunError(f"--tones {given}: each of {', '.join(LOG_TONES)} at most once")
    if args.hypothesis is not None:
        check_hypothesis(args, names)
        if "original-logs" in names and "read" in (args.tones or LOG_TONES):
            from scai.models.tone_reader.reading import check_no_reader_confusion

            check_no_reader_confusion(get_hypothesis(args.hypothesis))
    # before any experiment runs: a missing file fails first
    if "human-data" in names:
        from scai.experiments.human_data.experiment import SYNTHETIC, check_synthetic_options

        if str(args.data) == SYNTHETIC:
            check_synthetic_options(args.data, args.format, args.skip_invalid)
        else:
            args.data = shared_file(args, "--data", HUMAN_DATA_FILE, "human-data")
    if "original-logs" in names:
        args.logs = shared_file(args, "--logs", ORIGINAL_LOGS_DIR, "original-logs")
    # One run at a time into --out: another is refused, or waited for with --wait.
    folders = [Path(args.out), figure_path(args), *(Path(args.out) / name for name in names)]
    with (
        nothing_left_on_failure(folders),
        locked(args.out, wait=args.wait, on_wait=_tell, merges_into=figure_path(args)),
        warnings_on_one_line((CacheWarning, UnusedColumnsWarning), _tell),
    ):
        # The folders the run writes into, checked before any work (not made: a run that
        # fails on its input writes nothing): a file in the way fails now, not after the
        # conditions are computed.
        figures = getattr(args, "figures", None)
        check_folder_possible(
            "--figures" if figures else "--out",
            figures or args.out,
            Path(figures) if figures else Path(args.out) / "figures",
        )
        for name in names:
            check_folder_possible("--out", args.out, Path(args.out) / name / "cache")
        check_merged_files(
            Path(args.out),
            Path(figures) if figures else Path(args.out) / "figures",
            comparison=bool(set(names) & set(STUDY)),
        )
        reports: dict[str, tuple[object, float]] = {}  # name -> (its result, seconds)
        # name -> (what its report_early drew, seconds): the report takes it up
        early: dict[str, tuple[object, float]] = {}

        def report(name: str) -> None:
            from scai.inference.workers import ctrl_c_deferred

            start = time.perf_counter()
            if name in early:
                drawn, before = early.pop(name)
                result = load(name).main(args, early=drawn)
            else:
                before, result = 0.0, load(name).main(args)
            reports[name] = result, before + time.perf_counter() - start
            # Its numbers and comparison rows as soon as its tables and figures are written,
            # Ctrl-C held back while they are (milliseconds): written at the run's end, an
            # interruption in between left a new seed's figures beside the numbers and
            # comparison of the run before (``scai run all`` reports while it computes).
            with merging(figure_dir(args), args.out), ctrl_c_deferred():
                record_numbers(figure_dir(args), name, getattr(result, "numbers", {}))
                if name in STUDY:
                    write_comparison(args.out)
                    # beside the figures too (the README quotes it), with the rows it holds
                    # for the experiments this run does not compute
                    write_comparison(args.out, figure_dir(args) / COMPARISON, only=[name])

        def report_early(name: str) -> None:
            start = time.perf_counter()
            early[name] = load(name).report_early(args), time.perf_counter() - start

        compute_together(names, args, report, report_early)
        for name in names:
            if name not in reports:
                report(name)
            result, seconds = reports[name]
            print(f"{name}: done in {seconds:.1f} s -> {args.out / name}")
            if getattr(result, "report", None):
                print(result.report)
        comparison = Path(args.out) / COMPARISON if set(names) & set(STUDY) else None
    if comparison is not None:
        print(f"comparison with the original study: {comparison}")
    return 0


def compute_together(
    names: list[str],
    args: argparse.Namespace,
    report: Callable[[str], None] | None = None,
    report_early: Callable[[str], None] | None = None,
) -> None:
    """With several experiments that compute conditions (each one's ``plan``), compute them all
    first with one pool of workers, so that no worker waits for an experiment's last condition
    while the next experiment's are still to come. The costliest conditions go first
    (generalization's latent currency shifts, then the inconsistency experiment's learning
    curves), so that the workers finish together, but for the conditions after a plan's
    ``early`` ones (inconsistency's sweep), which go last (:func:`run_plans`): the reports
    of the others are then drawn while the workers compute. ``report(name)``, if given, is
    called for each experiment as soon as its conditions are stored, while the workers compute
    the others' (it reports from the cache; what it prints is the caller's to order).
    ``report_early(name)``, if given, is called for an experiment whose plan has ``early``
    conditions and whose module a ``report_early``, as soon as those are stored: the last
    report then has less to draw while the workers sit idle."""
    from scai.experiments.runner import run_plans

    order = ("generalization", "inconsistency", "alignment")
    planned = sorted(
        (n for n in names if hasattr(load(n), "plan")),
        key=lambda n: order.index(n) if n in order else len(order),
    )
    if len(planned) > 1:
        start = time.perf_counter()
        reported: list[str] = []

        def done(i: int) -> None:
            if report is not None:
                report(planned[i])
                reported.append(planned[i])

        def early_done(i: int) -> None:
            if report_early is not None and hasattr(load(planned[i]), "report_early"):
                report_early(planned[i])

        run_plans(
            [load(n).plan(args) for n in planned],
            args.workers,
            on_plan_done=done,
            on_early_done=early_done,
        )
        meanwhile = f" (reported meanwhile: {', '.join(reported)})" if reported else ""
        print(
            f"{', '.join(planned)}: conditions computed in {time.perf_counter() - start:.1f} s"
            + meanwhile
        )


def merging(figures: Path, out: Path):
    """Hold the figures folder while a run merges its results into the files there (read,
    change, write): two runs into other ``--out`` folders but one ``--figures`` would each
    write the file as it read it, and one's numbers would be lost. (Not when it is ``--out``
    itself, which the run holds already.)"""
    if Path(figures).resolve() == Path(out).resolve():
        return contextlib.nullcontext()
    return locked(figures, what="--figures", wait=True, on_wait=_tell, held=out)


def check_data_dir(args: argparse.Namespace, names: list[str]) -> None:
    """A :class:`RunError` if ``--data-dir`` is given to a run whose experiments each name their
    data with their own option (``--data``, ``--logs``): the folder would be looked in by none."""
    if args.data_dir is None:
        return
    users = [name for name in DATA_DIR_USERS if name in names]
    options = [DATA_DIR_USERS[name][0] for name in users]
    given = [getattr(args, option[2:]) for option in options]
    if users and all(value is not None for value in given):
        where = " and ".join(
            f"{looked} when {option} is not given"
            for option, looked in (DATA_DIR_USERS[name] for name in users)
        )
        gives = " and ".join(
            f"{option} {value}" for option, value in zip(options, given, strict=True)
        )
        raise RunError(
            f"--data-dir {args.data_dir}: the folder scai run looks in for {where}; "
            f"this run gives {gives}"
        )


def check_folder_possible(option: str, given, folder: Path) -> None:
    """A :class:`RunError` if a file stands where ``folder`` or one of its parents would be (the
    nearest of them that exists must be a folder), or if that folder cannot be written in (an
    existing ``OUT/figures`` read-only or immutable: found only once the conditions were
    computed, a review); nothing is made."""
    if (blocking := file_in_the_way(folder)) is not None:
        raise RunError(f"{option} {given}: {in_the_way(blocking)}")
    check_folder_writable(folder, option, given)


def _tell(message: str) -> None:
    print(f"scai run: {message}", file=sys.stderr, flush=True)


def check_hypothesis(args: argparse.Namespace, names: list[str]) -> None:
    """Load ``--hypothesis`` as each experiment will before any runs: a bad file, a name that
    cannot be part of a file name (``posterior_<name>.nc``), or one without the type of a
    condition's users (an experiment's ``true_policy``), fails first."""
    source = args.hypothesis
    if "human-data" in names:
        from scai.experiments.human_data.fitting import specs_with

        for spec in specs_with(source):
            try:
                check_name(spec.name)
            except HypothesisError as err:
                raise HypothesisError(f"{source}: {err}") from None
    if any(name != "human-data" for name in names):
        get_hypothesis(source)
    # Each condition's users' one norm: its posterior probability is measured. (The plans read
    # the file again for each condition: its warnings were told above.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HypothesisWarning)
        conditions = [
            (name, cond)
            for name in names
            if hasattr(load(name), "plan")
            for cond in load(name).plan(args).conditions
        ]
        types = {c.hypothesis: get_hypothesis(c.hypothesis).policy_names for _, c in conditions}
    for name, cond in conditions:
        if cond.true_policy is not None and cond.true_policy not in types[cond.hypothesis]:
            raise HypothesisError(
                f"--hypothesis {source}: {name}'s condition {cond.name!r} simulates users "
                f"of the norm {cond.true_policy!r}, not a type of the hypothesis (its types: "
                f"{', '.join(types[cond.hypothesis])}), and measures the assistant's belief "
                "in it"
            )
