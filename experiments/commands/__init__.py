"""The subcommands of ``scai``: one module per family, each registering its commands here.

:data:`COMMANDS` maps a name to ``(help, add_arguments, run)``; :func:`command` registers one.
The registry lives in this module, not in :mod:`scai.experiments.cli`, so that the command
modules never import the entry point (under ``python -m scai.experiments.cli`` that module is
``__main__``, and commands registered into a second copy of it were lost).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import re
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from scai.models.cell_text import parse_whole
from scai.models.companions import table_of_companion
from scai.models.errors import (
    MAX_SEED,
    RunError,
    ScaiError,
    check_count,
    file_kind,
    missing,
    not_a_regular_file,
    not_replaceable,
    show_value,
)
from scai.models.hypotheses import PRESETS, is_hypothesis_file
from scai.models.table_file import compressed_name
from scai.models.writing import FORMAT_ENDINGS, other_format

COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}

#: The modules that define subcommands, in the order ``scai --help`` lists them.
MODULES = ("data", "importing", "fit", "run", "sweep", "tone_reader")


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


def _on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def as_said(message: str, source: type) -> str:
    """A message as its source (an error's or a warning's class) said it: the spelling of a
    command that names no option otherwise than scai's Python functions do."""
    return message


@contextlib.contextmanager
def warnings_on_one_line(
    categories: tuple[type[Warning], ...] = (UserWarning,),
    tell: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Show each warning of ``categories`` as it happens, every time, on one line
    (``warning: <message>``, through ``tell``; by default on standard error, after the
    command's name where ``scai``'s ``main`` runs one: ``scai fit: warning: ...``, as its
    other warnings and its errors); any other warning as Python would show it.

    The rule is the category's, never the file that warned: scai's own warnings come from files
    under a ``scai`` folder once installed, and must reach the user all the same."""
    show = warnings.showwarning
    spelling = getattr(show, "spelling", as_said)  # set by scai.experiments.cli.main, as "where"
    if tell is None:
        where = getattr(show, "where", None)
        tell = _on_stderr if where is None else lambda line: _on_stderr(f"{where}: {line}")

    def one_line(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, categories):
            tell(f"warning: {spelling(str(message), category)}")
        else:
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        for category in categories:
            warnings.simplefilter("always", category)
        warnings.showwarning = one_line
        yield


def hypothesis_option(parser: argparse.ArgumentParser, default: str = "neutral") -> None:
    parser.add_argument(
        "--hypothesis",
        default=default,
        metavar="NAME|FILE.toml",
        help=f"priors and fixed settings: a preset ({', '.join(PRESETS)}) or a TOML file "
        f"(default: {default})",
    )


def hypothesis_file(name_or_path: str) -> Path | None:
    """The file ``--hypothesis`` reads (a source no output may replace), ``None`` for a
    preset's name."""
    return Path(name_or_path) if is_hypothesis_file(name_or_path) else None


def tones_option(parser: argparse.ArgumentParser) -> None:
    """``--tones given|read|none`` and ``--reader FILE.json``: where the model's tones come
    from (:data:`scai.models.tone_reader.TONE_MODES`); see :func:`apply_tone_options`."""
    from scai.models.tone_reader.reading import TONE_MODES

    parser.add_argument(
        "--tones",
        choices=tuple(TONE_MODES),
        default="given",
        help="where the tones come from: "
        + "; ".join(f"{mode}: {meaning}" for mode, meaning in TONE_MODES.items()),
    )
    parser.add_argument(
        "--reader",
        type=input_path,
        default=None,
        metavar="FILE.json",
        help="with --tones read: a tone reader written by `scai tone-reader train` (default: the "
        "one shipped with scai, trained on the original study's logs)",
    )


def apply_tone_options(args: argparse.Namespace, table, hypothesis, source: str):
    """``(table, hypothesis)`` as ``--tones`` and ``--reader`` say (``table`` validated)."""
    from scai.models.tone_reader import apply_tones, load_reader

    if args.reader is not None and args.tones != "read":
        raise RunError(
            f"--reader {args.reader}: only used with --tones read, got --tones {args.tones}"
        )
    # reading needs the reader's confusion matrix: a file without one is named here
    reader = load_reader(args.reader, need_confusion=True) if args.reader is not None else None
    return apply_tones(table, hypothesis, args.tones, reader, source)


def strict_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse a table with duplicated games (identical rows); without it they are "
        "reported as a warning and each counts as a game",
    )


def currency_option(p: argparse.ArgumentParser) -> None:
    """``--add-currency NAME[:essential]``, repeated: currencies of one's own data, which the
    command registers (:func:`register_currencies`) before it reads a table."""
    p.add_argument(
        "--add-currency",
        action="extend",
        type=currency_definition,
        metavar="NAME[:essential][,NAME...]",
        help="a currency of your own data beside scai's (apples, ..., cents): its name (lower "
        "case letters, digits and underscores), with ':essential' if an 'essential goods are "
        "shared' hypothesis is to shift it; several comma-separated, or the option repeated",
    )


def register_currencies(definitions: Sequence[tuple[str, bool]] | None) -> None:
    """Register each ``--add-currency`` (its name and ``essential`` flag; ``None``: none
    given) in this process."""
    from scai.models.game import CURRENCIES, register_currency

    for name, essential in definitions or ():
        known = CURRENCIES.get(name)
        if known is not None and known.essential != essential:  # (register_currency's
            # message names itself and a unit the option has not)
            kind = "an essential good" if known.essential else "not an essential good"
            raise RunError(
                f"--add-currency {name}{':essential' if essential else ''}: {name!r} is a "
                f"currency already, {kind}: give it as --add-currency "
                f"{name}{':essential' if known.essential else ''}, or leave it out"
            )
        register_currency(name, essential=essential)


# -- option types: each checks a value at parse time, so a bad one fails before any work ------
def currency_definition(text: str) -> list[tuple[str, bool]]:
    """An argparse ``type``: ``NAME`` or ``NAME:essential``, or several comma-separated, as
    ``[(name, essential), ...]``."""
    from scai.models.game import CURRENCY_NAME

    definitions = []
    for given in text.split(","):
        name, colon, kind = given.strip().partition(":")
        if not CURRENCY_NAME.fullmatch(name) or (colon and kind != "essential"):
            raise argparse.ArgumentTypeError(
                f"{given.strip()!r}: allowed: NAME or NAME:essential, the name 1 to 40 lower "
                "case letters, digits and underscores, starting with a letter (points, "
                "water:essential), several comma-separated"
            )
        definitions.append((name, bool(colon)))
    return definitions


def count(option: str, low: int = 1, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number in ``low..high`` (:func:`check_count`, the check
    the Python API makes too)."""

    def parse(text: str) -> int:
        value = parse_whole(text)
        try:
            return check_count(option, text if value is None else value, low, high)
        except ScaiError as err:  # the message with the text as typed, not as parsed
            message = str(err).removeprefix(f"{option}: ").rsplit(", got ", 1)[0]
            raise argparse.ArgumentTypeError(f"{message}, got {show_value(text, 80)}") from None

    parse.__name__ = "whole number"  # argparse names the type in its own messages
    return parse


def seed_option(
    parser: argparse.ArgumentParser, help_text: str = "random seed", default: int | None = 0
) -> None:
    """``--seed`` (``default=None``: the command tells a seed given apart from none)."""
    parser.add_argument(
        "--seed",
        type=count("--seed", 0, MAX_SEED),
        default=default,
        help=f"{help_text} (0..2^32-1)",
    )


_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def byte_size(text: str) -> int:
    """An argparse ``type``: a number of bytes, ``500M``, ``8G`` or ``8000000000``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)b?", text.strip().lower(), re.ASCII)
    size = float(match[1]) * _UNITS[match[2]] if match else 0.0
    if not 0 < size < math.inf:  # (309 digits or more are an infinite float)
        raise argparse.ArgumentTypeError(
            f"expected a size such as 500M or 8G, got {show_value(text, 80)}"
        )
    return max(1, int(size))


def input_path(text: str) -> Path:
    """An argparse ``type``: a file, pipe or folder scai reads. An empty path is refused (it
    would mean the current folder), and so is a socket or device (reading ``/dev/zero`` never
    ends); a missing path is left to the command, which says what it expected."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file or folder")
    if (why := not_a_regular_file(text)) and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {why}")
    return Path(text)


def output_file(text: str) -> Path:
    """An argparse ``type``: a file path scai may create or replace: not a folder or a link,
    in a folder that exists or can be made, and is writable."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file path")
    if text.endswith(("/", os.sep)):  # Path() drops the slash: 'new/' would become a file 'new'
        raise argparse.ArgumentTypeError(f"{text}: ends with a slash, a folder; give a file path")
    path = Path(text)
    if path.is_symlink():
        raise argparse.ArgumentTypeError(f"{text}: is a symbolic link; give a file path")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file path")
    if why := not_replaceable(path):
        raise argparse.ArgumentTypeError(f"{text}: {why}")
    _check_writable_folder(path.parent, text)
    return path


def output_in(what: str, ending: str) -> Callable[[str], Path]:
    """An argparse ``type``: an :func:`output_file` that scai writes as ``what`` (uncompressed,
    in the format of :data:`~scai.models.writing.FORMAT_ENDINGS`' ``ending``): a name ending as
    compressed, or in another format's ending, is refused, naming the ending to give."""

    def check(text: str) -> Path:
        path = output_file(text)
        if not (named := other_format(path, ending)):
            return path
        raise argparse.ArgumentTypeError(
            f"{text}: a name ending {path.suffix} names {named}, and scai writes {what} here "
            f"as {FORMAT_ENDINGS[ending]}, uncompressed; give a name ending {ending}"
        )

    return check


def output_table(text: str) -> Path:
    """An argparse ``type``: an :func:`output_file` for a CSV table scai writes, which it writes
    uncompressed: a name the readers would take for compressed
    (:func:`~scai.models.table_file.compressed_name`) is refused."""
    path = output_file(text)
    if compressed_name(path):
        raise argparse.ArgumentTypeError(
            f"{text}: scai writes tables as plain CSV, and a name ending {path.suffix} would be "
            "read back as compressed; give a name ending .csv (compress the files afterwards "
            "if you like: the readers take .gz, .bz2 and .xz)"
        )
    return path


def file_in_the_way(folder: Path) -> Path | None:
    """The file standing where ``folder`` or one of its parents would be (the nearest of them
    that exists, if it is not a folder), or None."""
    for path in (folder, *folder.parents):
        if path.exists() or path.is_symlink():
            return None if path.is_dir() else path
    return None


def in_the_way(path: Path) -> str:
    """What to tell of a file in the way of a folder (:func:`file_in_the_way`)."""
    return f"{path} is a file where scai needs a folder; move it or choose another"


def output_dir(text: str) -> Path:
    """An argparse ``type``: a folder scai may create or write into."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a folder")
    path = Path(text)
    if path.is_symlink() and not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: {missing(path)}; give a folder")
    if path.exists() and not path.is_dir():
        mode = path.stat().st_mode
        kind = "a file" if stat.S_ISREG(mode) else file_kind(mode)  # /dev/null: a device
        raise argparse.ArgumentTypeError(f"{text}: is {kind}, not a folder")
    _check_writable_folder(path, text)
    return path


def check_outputs(
    option: str,
    given: Path,
    paths: list[Path],
    reading: Path | Sequence[Path | None] | None = None,
) -> None:
    """Before any work: every file a command will write for ``option given`` (``paths``) must be
    a path scai may create or replace (not a folder or a symbolic link, in no file's place),
    and none may be, or be inside, ``reading``, the sources the command reads (a path, or
    several: ``None`` for one not given): a failure half-way would leave some outputs
    written, and an output that is a source, or inside one, would overwrite what is being
    read (``scai fit --out fit --data fit/posterior.nc`` replaced its own table without a
    word); nor may one be the companion file of a table beside it that the command does not
    write (``--out a.users.csv`` replaced ``a.csv``'s users with a table). Raises
    :class:`RunError` naming the option and the path."""
    sources = [reading] if isinstance(reading, Path) else [r for r in reading or () if r]
    if str(given).startswith("-"):  # --out=--help wrote a table named "--help" (a review)
        raise RunError(
            f"{option} {given}: a name that starts with '-' reads as an option; to mean a file "
            f"of that name, give ./{given}"
        )
    for path in paths:
        if path.is_symlink():
            raise RunError(
                f"{option} {given}: {path} is a symbolic link; scai does not write through or "
                "replace links: remove it or choose another path"
            )
        if path.is_dir():
            raise RunError(f"{option} {given}: {path} is a folder; scai would write a file there")
        if why := not_replaceable(path):
            raise RunError(f"{option} {given}: {path} {why}")
        for read in sources:
            if read.is_symlink() and not read.exists():  # resolve() raises on a loop
                raise RunError(f"{read}: {missing(read)}; give the file itself")
            source, target = read.resolve(), path.resolve()
            if target == source or source in target.parents:
                where = "is" if target == source else "is inside"
                raise RunError(
                    f"{option} {given}: {path} {where} the source {read} it reads; write elsewhere"
                )
        if (found := table_of_companion(path)) and found[0] not in paths:
            table, kind = found
            raise RunError(
                f"{option} {given}: {path} is the {kind} file of the table {table} beside it, "
                "which this would replace; choose another name"
            )
        check_folder_writable(path.parent, option, given)


def check_folder_writable(folder: Path, option: str, given: Path) -> None:
    """A :class:`RunError` naming ``option`` and ``given`` unless files can be made in the
    nearest existing folder at or above ``folder``."""
    try:
        _check_writable_folder(folder, str(given))
    except argparse.ArgumentTypeError as err:
        raise RunError(f"{option} {err}") from None


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (where ``statvfs`` says)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # (no statvfs: Windows)
        return False


def _check_writable_folder(folder: Path, text: str) -> None:
    """The nearest existing folder at or above ``folder`` must be a writable folder."""
    existing = folder if str(folder) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):  # (False on a read-only mount too)
        why = "read-only file system" if _read_only(existing) else "permission denied"
        raise argparse.ArgumentTypeError(f"{text}: cannot write in {existing} ({why})")
    try:  # permissions are not all (a read-only or special file system, such as /proc)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise argparse.ArgumentTypeError(
            f"{text}: cannot create files in {existing} ({err.strerror or err})"
        ) from None
