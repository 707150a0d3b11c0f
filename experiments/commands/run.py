"""``scai run``: run one of the study's experiments, ``all`` of them, or ``everything``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scai.experiments.commands import command, count, output_dir, seed_option
from scai.experiments.common import RUN_LIMITS, check_run_options
from scai.experiments.registry import EXPERIMENTS, GROUPS, load
from scai.models.errors import HypothesisError
from scai.models.hypotheses import check_name, get_hypothesis

DEFAULT_HUMAN_DATA = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "study1_ug.csv"
)


def _add_run(p: argparse.ArgumentParser) -> None:
    from scai.experiments.protocol import SCHEDULES
    from scai.inference.fit import ENGINES

    p.add_argument(
        "experiment",
        choices=[*EXPERIMENTS, *GROUPS],
        help="an experiment; 'all' for the original study's three, 'everything' adds human-data",
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
        default=20,
        help="simulations per condition (default 20)",
    )
    p.add_argument(
        "--epochs",
        type=count("--epochs", *RUN_LIMITS["epochs"]),
        default=5,
        help="epochs per simulation (default 5)",
    )
    seed_option(p)
    p.add_argument("--engine", choices=ENGINES, default="exact", help="inference engine")
    p.add_argument(
        "--hypothesis",
        default=None,
        metavar="NAME|FILE.toml",
        help="override the experiment's hypotheses with this one",
    )
    p.add_argument("--quick", action="store_true", help="a small, fast version (for tests)")
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="grouped",
        help="order of the users' return games in an epoch: all first user-user games, then "
        "all return games (grouped: the order the original code uses when it flips games, a "
        "path its published runs did not take) or each right after its first (alternating)",
    )
    p.add_argument(
        "--figures",
        type=output_dir,
        default=Path("figures"),
        metavar="DIR",
        help="where figures go (default figures/)",
    )
    p.add_argument(
        "--workers",
        type=count("--workers", *RUN_LIMITS["workers"]),
        default=None,
        help="parallel processes for independent conditions (default: cores)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"human-data: the data file (default {DEFAULT_HUMAN_DATA})",
    )
    p.add_argument(
        "--format",
        choices=("auto", "generic", "study1"),
        default="auto",
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
    if args.hypothesis is not None:
        check_hypothesis(args.hypothesis, names)
    for name in names:
        if name == "human-data" and args.data is None:
            if DEFAULT_HUMAN_DATA.exists():
                args.data = DEFAULT_HUMAN_DATA
            else:
                if args.experiment in GROUPS:
                    print(f"skipping human-data: no --data and {DEFAULT_HUMAN_DATA} is absent")
                    continue
                raise ValueError(f"--data is required ({DEFAULT_HUMAN_DATA} is absent)")
        start = time.perf_counter()
        result = load(name).main(args)
        print(f"{name}: done in {time.perf_counter() - start:.1f} s -> {args.out / name}")
        if getattr(result, "report", None):
            print(result.report)
    from scai.experiments.report import write_comparison

    print(f"comparison with the original study: {write_comparison(args.out)}")
    return 0


def check_hypothesis(source: str, names: list[str]) -> None:
    """Load ``--hypothesis`` as each experiment will before any runs: a bad file, or a name
    that cannot be part of a file name (``posterior_<name>.nc``), fails first."""
    if "human-data" in names:
        from scai.models.responders import load_responder_spec

        if str(source).endswith(".toml"):
            from scai.models.hypotheses import read_toml

            read_toml(source)  # names the file if it cannot be read
        spec = load_responder_spec(source)
        try:
            check_name(spec.name)
        except HypothesisError as err:
            raise HypothesisError(f"{source}: {err}") from None
    if any(name != "human-data" for name in names):
        get_hypothesis(source)
