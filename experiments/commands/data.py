"""``scai simulate`` and ``scai validate``: make and check interaction tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scai.experiments.commands import (
    check_outputs,
    command,
    count,
    currency_option,
    hypothesis_file,
    hypothesis_option,
    input_path,
    output_in,
    output_table,
    register_currencies,
    seed_option,
    strict_option,
    warnings_on_one_line,
)
from scai.models.companions import parameters_path, users_path
from scai.models.data import DataError, check_some_user_acts, read_interactions
from scai.models.errors import RunError
from scai.models.game import CURRENCIES, get_currency
from scai.models.hypotheses import get_hypothesis
from scai.models.language import MANNERS
from scai.models.simulate import LIMITS
from scai.models.writing import write_atomic, write_csv_atomic, write_together


def _currencies(text: str) -> str | list[str]:
    """``--currency``: one currency's name, or a comma-separated list of them (one per
    simulation: the count is :func:`~scai.models.simulate.simulate`'s to check); each a
    registered currency's, checked once ``--add-currency`` has registered its own
    (:func:`_check_currencies`)."""
    names = [name.strip() for name in text.split(",")]
    return names[0] if len(names) == 1 else names


def _check_currencies(given: str | list[str]) -> None:
    """A :class:`RunError` naming a ``--currency`` that is not registered."""
    for name in [given] if isinstance(given, str) else given:
        try:
            get_currency(name)
        except RunError as err:
            raise RunError(
                f"--currency: {err} (one for every simulation, or one per simulation, "
                "comma-separated), or one of your own given with --add-currency"
            ) from None


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
        "--currency",
        type=_currencies,
        default="dollars",
        metavar="NAME[,NAME...]",
        help=f"what the pot is paid in: one of {', '.join(CURRENCIES)} for every simulation, "
        "or one per simulation, comma-separated (--sims 2 --currency dollars,medicine; "
        "default dollars)",
    )
    p.add_argument(
        "--users",
        type=count("--users", *LIMITS["users"]),
        default=10,
        help="users per simulation (default 10)",
    )
    p.add_argument(
        "--rounds",
        type=count("--rounds", *LIMITS["rounds"]),
        default=8,
        help="user-user interactions per epoch (default 8, as in the original study)",
    )
    p.add_argument(
        "--epochs",
        type=count("--epochs", *LIMITS["epochs"]),
        default=5,
        help="epochs; the pot is redrawn each one",
    )
    p.add_argument(
        "--sims",
        type=count("--sims", *LIMITS["sims"]),
        default=1,
        help="independent simulations (groups)",
    )
    p.add_argument(
        "--assign",
        choices=("sample", "exact"),
        default="sample",
        help="draw each user's policy from the mixture (sample) or deal policies in exact "
        "proportion (exact)",
    )
    seed_option(p, "random seed (same seed, same files)")
    p.add_argument(
        "--out",
        required=True,
        type=output_table,
        metavar="FILE.csv",
        help="interaction table to write; FILE.users.csv gets the users' true types and "
        "manners, FILE.parameters.csv each simulation's mixture pi and the values it drew "
        "from the hypothesis's priors (lam, shifts, lapse, strength, clone)",
    )
    p.add_argument(
        "--transcript",
        type=output_in("the transcript", ".txt"),
        default=None,
        metavar="FILE.txt",
        help="also write readable utterances for every game",
    )
    hypothesis_option(p)
    currency_option(p)


@command("simulate", "simulate groups of users playing the ultimatum game")(_add_simulate)
def run_simulate(args: argparse.Namespace) -> int:
    from scai.models.simulate import simulate, transcript

    register_currencies(args.add_currency)
    _check_currencies(args.currency)
    outputs = [args.out, users_path(args.out), parameters_path(args.out)]
    # resolved: "d/../d/x.users.csv" is the users' table too, and so is a link to it
    if args.transcript is not None and args.transcript.resolve() in [p.resolve() for p in outputs]:
        raise RunError(
            f"--transcript {args.transcript}: is one of the tables --out writes "
            f"({', '.join(map(str, outputs))}); give another file"
        )
    read = [hypothesis_file(args.hypothesis)]
    check_outputs("--out", args.out, outputs, reading=read)
    if args.transcript is not None:
        check_outputs("--transcript", args.transcript, [args.transcript], reading=read)
    hypothesis = get_hypothesis(args.hypothesis)
    with warnings_on_one_line():
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
    writes = {
        args.out: lambda path: write_csv_atomic(result.interactions, path),
        users_path(args.out): lambda path: write_csv_atomic(result.users, path),
        parameters_path(args.out): lambda path: write_csv_atomic(result.parameters, path),
    }
    if args.transcript is not None:
        text = transcript(result.interactions, seed=args.seed)
        writes[args.transcript] = lambda path: write_atomic(
            path, lambda tmp: Path(tmp).write_text(text)
        )
    write_together(writes)  # the users are the truth of these interactions: one result
    print(
        f"wrote {len(result.interactions)} interactions to {args.out}, "
        f"{len(result.users)} users to {users_path(args.out)} and the simulations' "
        f"parameters to {parameters_path(args.out)}"
    )
    return 0


def _add_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=input_path, metavar="FILE.csv", help="interaction table to check")
    strict_option(p)
    currency_option(p)


@command("validate", "check an interaction table and report every problem")(_add_validate)
def run_validate(args: argparse.Namespace) -> int:
    """Exit 0 for a valid table (duplicated games are a warning), 1 with the full report of
    every problem for an invalid one."""
    register_currencies(args.add_currency)
    try:
        with warnings_on_one_line():
            table = read_interactions(args.file, strict=args.strict)
        check_some_user_acts(table, str(args.file))  # or fit would find nothing to fit
    except DataError as err:
        print(err, file=sys.stderr)
        return 1
    games, sims = len(table), table["sim"].nunique()
    print(
        f"{args.file}: valid ({games} interaction{'s' * (games != 1)}, "
        f"{sims} simulation{'s' * (sims != 1)})"
    )
    return 0
