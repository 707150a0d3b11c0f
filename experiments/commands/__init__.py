"""The subcommands of ``scai``: one module per family, each registering its commands here.

:data:`COMMANDS` maps a name to ``(help, add_arguments, run)``; :func:`command` registers one.
The registry lives in this module, not in :mod:`scai.experiments.cli`, so that the command
modules never import the entry point (under ``python -m scai.experiments.cli`` that module is
``__main__``, and commands registered into a second copy of it were lost).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from scai.models.hypotheses import PRESETS

COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}

#: The modules that define subcommands, in the order ``scai --help`` lists them.
MODULES = ("data", "importing", "fit", "run")


def command(name: str, help_text: str):
    """Register ``add_arguments`` for a subcommand; the decorated function runs it."""

    def wrap(add_arguments: Callable):
        def register(run: Callable):
            COMMANDS[name] = (help_text, add_arguments, run)
            return run

        return register

    return wrap


def load_commands() -> dict[str, tuple[str, Callable, Callable]]:
    """Import every command module (registering its commands) and return the registry."""
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return COMMANDS


def hypothesis_option(parser: argparse.ArgumentParser, default: str = "neutral") -> None:
    parser.add_argument(
        "--hypothesis",
        default=default,
        metavar="NAME|FILE.toml",
        help=f"priors and fixed settings: a preset ({', '.join(PRESETS)}) or a TOML file "
        f"(default: {default})",
    )
