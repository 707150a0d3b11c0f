"""``scai simulate`` and ``scai validate``: make and check interaction tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scai.experiments.commands import command, hypothesis_option
from scai.models.data import DataError, read_interactions, users_path, write_csv_atomic
from scai.models.game import CURRENCIES
from scai.models.hypotheses import get_hypothesis
from scai.models.language import MANNERS


def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--policy",
        required=True,
        metavar="NAME|MIX",
        help="the group norm: a policy name (selfish, fair, altruistic, or one a hypothesis "
        "file defines) or a mixture such as selfish=0.8,altruistic=0.2",
    )
    p.add_argument(
        "--manner",
        choices=MANNERS,
        default=None,
        help="every user's manner of speaking (default: drawn from the hypothesis's "
        "manner-policy coupling)",
    )
    p.add_argument(
        "--currency", choices=list(CURRENCIES), default="dollars", help="what the pot is paid in"
    )
    p.add_argument("--users", type=int, default=10, help="users per simulation (default 10)")
    p.add_argument(
        "--rounds",
        type=int,
        default=8,
        help="user-user interactions per epoch (default 8, as in the original study)",
    )
    p.add_argument("--epochs", type=int, default=5, help="epochs; the pot is redrawn each one")
    p.add_argument("--sims", type=int, default=1, help="independent simulations (groups)")
    p.add_argument(
        "--assign",
        choices=("sample", "exact"),
        default="sample",
        help="draw each user's policy from the mixture (sample) or deal policies in exact "
        "proportion (exact)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE.csv",
        help="interaction table to write; FILE.users.csv gets the users' true types",
    )
    p.add_argument(
        "--transcript",
        type=Path,
        default=None,
        metavar="FILE.txt",
        help="also write readable utterances for every game",
    )
    hypothesis_option(p)


@command("simulate", "simulate groups of users playing the ultimatum game")(_add_simulate)
def run_simulate(args: argparse.Namespace) -> int:
    from scai.models.simulate import simulate, transcript

    hypothesis = get_hypothesis(args.hypothesis)
    result = simulate(
        hypothesis,
        policy=args.policy,
        manner=args.manner,
        currency=args.currency,
        users=args.users,
        rounds=args.rounds,
        epochs=args.epochs,
        sims=args.sims,
        seed=args.seed,
        assign=args.assign,
    )
    write_csv_atomic(result.interactions, args.out)
    write_csv_atomic(result.users, users_path(args.out))
    if args.transcript is not None:
        args.transcript.parent.mkdir(parents=True, exist_ok=True)
        args.transcript.write_text(transcript(result.interactions, seed=args.seed))
    print(
        f"wrote {len(result.interactions)} interactions to {args.out} and "
        f"{len(result.users)} users to {users_path(args.out)}"
    )
    return 0


def _add_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE.csv", help="interaction table to check")


@command("validate", "check an interaction table and report every problem")(_add_validate)
def run_validate(args: argparse.Namespace) -> int:
    try:
        table = read_interactions(args.file)
    except DataError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.file}: valid ({len(table)} interactions, {table['sim'].nunique()} simulations)")
    return 0
