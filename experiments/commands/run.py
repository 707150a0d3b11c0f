"""``scai run``: run one of the study's experiments, ``all`` of them, or ``everything``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scai.experiments.commands import command
from scai.experiments.registry import EXPERIMENTS, GROUPS, load

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
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="results go to DIR/NAME/ (default results/)",
    )
    p.add_argument("--sims", type=int, default=20, help="simulations per condition (default 20)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per simulation (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
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
        type=Path,
        default=Path("figures"),
        metavar="DIR",
        help="where figures go (default figures/)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel processes for independent conditions (default: cores)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="PATH|synthetic",
        help=f"human-data: the data file (default {DEFAULT_HUMAN_DATA}), or 'synthetic' for "
        "decisions simulated from the inequity-aversion model with known parameters (no file "
        "needed; a file named synthetic is ./synthetic)",
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
    if "human-data" in names and args.data is None:  # checked before anything runs
        if not DEFAULT_HUMAN_DATA.exists():
            raise ValueError(
                f"human-data: no --data and {DEFAULT_HUMAN_DATA} is absent; pass --data PATH "
                "(the Study 1 CSV, study1_ug.csv) or --data synthetic"
            )
        args.data = DEFAULT_HUMAN_DATA
    for name in names:
        start = time.perf_counter()
        result = load(name).main(args)
        print(f"{name}: done in {time.perf_counter() - start:.1f} s -> {args.out / name}")
        if getattr(result, "report", None):
            print(result.report)
    from scai.experiments.report import write_comparison

    print(f"comparison with the original study: {write_comparison(args.out)}")
    return 0
