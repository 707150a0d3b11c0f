"""The ``fit`` and ``run`` subcommands (``simulate`` and ``validate`` live in ``cli``)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from experiments.cli import command, hypothesis_option
from experiments.registry import EXPERIMENTS, GROUPS, load
from models.data import write_csv_atomic

DEFAULT_HUMAN_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "study1_ug.csv"
)


def _add_fit(p: argparse.ArgumentParser) -> None:
    from inference.fit import ENGINES

    p.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="FILE.csv",
        help="interaction table to fit (see `scai validate`)",
    )
    hypothesis_option(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="exact",
        help="exact (enumeration + grid), svi or mcmc (default exact)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="writes DIR/posterior.nc and DIR/policy_probs.csv",
    )
    p.add_argument(
        "--draws",
        type=int,
        default=None,
        help="posterior draws (exact, svi) or samples per chain (mcmc)",
    )
    p.add_argument("--warmup", type=int, default=500, help="mcmc warmup iterations per chain")
    p.add_argument("--chains", type=int, default=2, help="mcmc chains (default 2)")
    p.add_argument("--max-steps", type=int, default=3000, help="svi step cap")
    p.add_argument(
        "--guide",
        choices=("normal", "mvn"),
        default="normal",
        help="svi guide: mean-field normal (default) or full-covariance normal",
    )
    p.add_argument(
        "--correction",
        choices=("importance", "none"),
        default="importance",
        help="svi: reweight the guide's draws by the exact posterior (default; Pareto k per "
        "simulation in the diagnostics) or keep the guide's own draws",
    )
    p.add_argument(
        "--init",
        choices=("laplace", "median"),
        default="laplace",
        help="svi: start the guide at the Laplace approximation, with step sizes scaled to "
        "it (default), or at the prior median",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("fit", "fit the model to an interaction table and save the posterior")(_add_fit)
def run_fit(args: argparse.Namespace) -> int:
    from inference.fit import fit

    options: dict = {}
    if args.engine == "mcmc":
        options.update(num_chains=args.chains, warmup=args.warmup, progress=not args.quiet)
        if args.draws:
            options["samples"] = args.draws
    elif args.engine == "svi":
        options.update(
            max_steps=args.max_steps,
            guide=args.guide,
            correction=None if args.correction == "none" else args.correction,
            init=args.init,
            progress=not args.quiet,
        )
        if args.draws:
            options["num_draws"] = args.draws
    elif args.draws:
        options["num_draws"] = args.draws
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        posterior = fit(args.data, args.hypothesis, engine=args.engine, seed=args.seed, **options)
    elapsed = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    posterior.save(args.out / "posterior.nc")
    write_csv_atomic(posterior.policy_table(), args.out / "policy_probs.csv")
    print(f"engine {args.engine}, hypothesis {posterior.hypothesis.name}, {elapsed:.2f} s")
    print(posterior.summary().to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    diag = {k: v for k, v in posterior.diagnostics.items() if k != "elbo_trace"}
    print("diagnostics:", diag)
    for w in caught:
        if issubclass(w.category, UserWarning) and "scai" not in str(w.filename):
            print(f"warning: {w.message}", file=sys.stderr)
    print(f"wrote {args.out / 'posterior.nc'} and {args.out / 'policy_probs.csv'}")
    return 0


def _add_run(p: argparse.ArgumentParser) -> None:
    from experiments.protocol import SCHEDULES
    from inference.fit import ENGINES

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
    from experiments.report import write_comparison

    print(f"comparison with the original study: {write_comparison(args.out)}")
    return 0
