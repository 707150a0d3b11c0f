"""The ``scai`` command line (also ``python -m scai``).

``scai --help`` lists the subcommands (registered in :mod:`scai.experiments.commands`) and
``scai NAME --help`` explains every option. Errors in what a user typed or supplied end in one
line on standard error and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from scai import __version__
from scai.experiments.commands import load_commands
from scai.models.data import DataError
from scai.models.hypotheses import HypothesisError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scai",
        description="Bayesian Social Contract AI: simulate groups playing the ultimatum game, "
        "infer their implicit norms, and run the original study's experiments.",
    )
    parser.add_argument("--version", action="version", version=f"scai {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _) in load_commands().items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return load_commands()[args.command][2](args)
    except (DataError, HypothesisError, ValueError) as err:
        print(f"scai {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
