"""The ``scai`` command line (also ``python -m scai``).

``scai --help`` lists the subcommands (registered in :mod:`scai.experiments.commands`) and
``scai NAME --help`` explains every option. Whatever a user types or supplies, an error ends in
one line on standard error, never a Python traceback: a bad option or input (a
:class:`~scai.models.errors.ScaiError`, an argparse error, a path that cannot be read or
written) exits with code 2, an interruption with 130, anything else (a bug) with 1.
``scai --debug COMMAND ...`` re-raises instead, to show the traceback.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

from scai import __version__

# The commands (and with them torch, Pyro, pandas) are imported when main() runs, not with this
# module: a Ctrl-C during those seconds of start-up is then one line, not a traceback.

#: Whether :func:`console` turned cyclic garbage collection off for :func:`main`'s imports.
_collection_paused = False


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (argparse's own print the usage first)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key in (None, "store"):  # the default action, and the one named "store"
            self.register("action", key, _StoreOnce)

    def parse_known_args(self, args=None, namespace=None):
        self._given: dict[str, object] = {}  # each option's value so far (_StoreOnce)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        # a value argparse quotes in full (an invalid choice of 5,000 characters) is cut to 80,
        # as scai's own messages show values (scai.models.errors.show_value)
        message = re.sub(r"'[^'\n]{80,}'", lambda found: found[0][:77] + "...", message)
        if message.startswith("unrecognized arguments:") and "--debug" in message.split():
            message += " (--debug is scai's, before the command: scai --debug COMMAND ...)"
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _StoreOnce(argparse._StoreAction):
    """An option that takes a value, given once: given twice, argparse kept the last in silence
    (``scai simulate --policy fair --policy selfish`` simulated selfish users)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(parser, "_given", None)
        if given is not None:
            if self.dest in given:  # (not the values: converted, they are not what was typed)
                parser.error(f"{option_string}: given twice; give it once")
            given[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="scai",
        description="Bayesian Social Contract AI: simulate groups playing the ultimatum game, "
        "infer their implicit norms, and run the original study's experiments.",
    )
    parser.add_argument("--version", action="version", version=f"scai {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show the Python traceback instead of one line (to report a bug)",
    )
    from scai.experiments.commands import load_commands

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _) in load_commands().items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        show_defaults(command)
    return parser


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """End each option's help with its default where the help does not say it already (flags
    and options without a default aside)."""
    for action in parser._actions:
        default = action.default
        if (
            not action.option_strings
            or not action.help
            or action.help == argparse.SUPPRESS
            or "default" in action.help
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
        ):
            continue
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        action.help += f" (default {shown})".replace("%", "%%")


def main(argv: list[str] | None = None) -> int:
    """Run ``scai`` with ``argv`` (default: the process's) and return its exit code."""
    from scai.worker_start import keep_freed_memory

    keep_freed_memory()  # as the workers do: the reports' grids reuse freed memory too
    # Idle OpenMP threads sleep instead of spinning (set before torch is imported: OpenMP reads
    # it once). Spinning, this process's intra-op threads burned the cores its workers and
    # other programs were computing on: generalization's report took 15.5 s instead of 6.5 s
    # beside two busy processes. The same threads do the same work: the numbers are unchanged.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if _computes_in_workers(sys.argv[1:] if argv is None else argv):
        from scai.worker_start import start_worker_server  # imports nothing heavy

        # it imports the workers' modules while this process imports its
        start_worker_server(arviz=_workers_need_arviz(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line parse error
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:  # while starting up: nothing has been done yet
        print("scai: interrupted", file=sys.stderr)
        return 130
    from scai.experiments.commands import as_said, load_commands

    _collect_from_here()
    where = f"scai {args.command}"
    # ArviZ announces its 1.0 refactor on import: noise on every command's standard error.
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    run = load_commands()[args.command][2]
    # the command's own names for its engines' Python options, in its errors and warnings
    spelling = getattr(run, "spelling", None) or as_said
    show = warnings.showwarning
    warnings.showwarning = _one_line_for_scai(where, show, spelling)
    try:
        return run(args)
    except BrokenPipeError as err:
        if args.debug:
            raise
        if not _stdout_closed():  # another pipe (a worker's): an error
            code, message = _describe(err, args)
            message = spelling(message, type(err))
        else:  # `scai fit ... | head`: the reader has all it wanted
            # (Python's advice: no more writes to the closed pipe, not even at exit)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    except Exception as err:
        if args.debug:
            raise
        code, message = _describe(err, args)
        message = spelling(message, type(err))
    except KeyboardInterrupt as interrupt:
        from scai.worker_start import ignoring_ctrl_c  # imports nothing heavy

        with ignoring_ctrl_c():  # a second Ctrl-C while the workers stop: no traceback
            _stop_workers()
        if args.debug:
            raise
        # One line, no "error": what was interrupted, how far it got, how to resume (a run's
        # condition loop says how many conditions finished: scai.experiments.runner).
        message = str(interrupt) or "interrupted" + _resume_hint_of(args)
        print(f"{where}: {message}", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = show
    print(f"{where}: error: {message}", file=sys.stderr)
    return code


def _resume_hint_of(args) -> str:
    """How to resume the interrupted command, where it keeps what it finished."""
    if args.command == "run":
        return _resume_hint(args.experiment)
    if args.command == "sweep":  # (its condition loop says how far it got, where it can)
        cache = Path(args.out) / "cache"
        if not any(cache.glob("*.done")):  # (a large sweep's cells take seconds to lay out)
            return "; no cell had finished: the same command starts afresh"
        return f"; run the same command again to resume (finished cells are in {cache})"
    return ""


def _resume_hint(experiment: str) -> str:
    """What running ``scai run EXPERIMENT`` again after an interruption redoes: what each
    experiment keeps comes from its cache (the finished conditions of those with a ``plan``
    through the cached runner, or what its ``KEPT`` names: original-logs' finished fits);
    human-data's fits start afresh (it keeps none)."""
    from scai.experiments.registry import GROUPS, load

    names = list(GROUPS.get(experiment, [experiment]))
    kept = {name: _kept_by(load(name)) for name in names}
    if len(set(kept.values())) == 1 and kept[names[0]]:  # all keep the same
        return f"; run the same command again to resume ({kept[names[0]]} are cached)"
    if not any(kept.values()):
        return f"; nothing of {experiment} is cached: the same command starts afresh"
    by_what: dict[str | None, list[str]] = {}
    for name, what in kept.items():
        by_what.setdefault(what, []).append(name)
    parts = [
        f"{', '.join(group)}: " + (f"{what} are cached" if what else "start afresh")
        for what, group in sorted(by_what.items(), key=lambda item: item[0] is None)
    ]
    return f"; run the same command again to resume ({'; '.join(parts)})"


def _kept_by(experiment) -> str | None:
    """What an interrupted run of ``experiment`` (its module) keeps for the next, or None."""
    return (
        "finished conditions" if hasattr(experiment, "plan") else getattr(experiment, "KEPT", None)
    )


def _one_line_for_scai(where: str, show, spelling: Callable[[str, type], str]):
    """A ``warnings.showwarning`` that tells scai's own warnings (a
    :class:`~scai.models.errors.ScaiWarning`) as ``scai COMMAND: warning: MESSAGE``, as the
    commands' errors are told (``spelling(message, category)`` naming options as the command
    does), and leaves others' to ``show``: Python's form names the scai source line that
    warned, which says nothing to a user of the command."""
    from scai.models.errors import scai_warning  # imported by the parser already

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        if scai_warning(category):
            print(
                f"{where}: warning: {spelling(str(message), category)}", file=sys.stderr, flush=True
            )
        else:
            show(message, category, filename, lineno, file, line)

    # the commands' one-line warnings use them
    one_line.where = where  # type: ignore[attr-defined]
    one_line.spelling = spelling  # type: ignore[attr-defined]
    return one_line


def _stdout_closed() -> bool:
    """Whether the standard output is a pipe whose reader has gone (``poll`` reports an error
    on the writing end of a pipe with no reader)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or no real stdout
        return False


def console(argv: list[str] | None = None) -> NoReturn:
    """The ``scai`` console script and ``python -m scai``: :func:`main`, then the process ends
    without the interpreter's teardown, which took 0.7-1.1 s after every command's work was
    done (freeing torch's, pandas' and matplotlib's modules one by one). What an exit must do
    is done first, as the interpreter would: the threads' exit hooks and the wait for
    non-daemon threads (``threading._shutdown``, which stops the worker pools' threads), the
    ``atexit`` handlers (the pools' shutdown, temporary folders, logging), the streams'
    buffers (should that fail, a closed pipe or a full disk, Python's own exit reports it, with
    exit code 120). It exits the usual way where Python lacks those hooks or the process is not
    the program's alone to end (:func:`_owns_process`), and only there imports the commands
    without cyclic garbage collection (:func:`_collect_from_here`): a host program's own objects
    are never frozen, nor its collection turned on or off."""
    global _collection_paused
    owns_process = _owns_process(sys._getframe(1))
    if owns_process:
        # The program's figures go to files: drawn with Agg whatever window backend the shell
        # names (without a display, that one would fail). A host program's choice is its own.
        os.environ["MPLBACKEND"] = "Agg"
        gc.disable()  # while main imports the commands: _collect_from_here
        _collection_paused = True
        _terminate_as_ctrl_c()
    try:
        code = main(argv)
    finally:
        if _collection_paused:  # main ended before it
            gc.enable()
            _collection_paused = False
    shutdown_threads = getattr(threading, "_shutdown", None)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if shutdown_threads is None or run_exit_handlers is None or not owns_process:
        sys.exit(code)

    # Ctrl-C or SIGTERM once the work is done ends the process at once with the work's exit
    # code: raised in the wait for the threads or in an exit handler (which prints what it
    # catches), it gave a traceback and exit 130 after every file was written
    def leave(*_) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # (a write it interrupted: reentrant)
                stream.flush()
        os._exit(code)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, leave)
    for step in (shutdown_threads, run_exit_handlers):
        with contextlib.suppress(KeyboardInterrupt):  # one raised before the line above
            step()
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


def _terminate_as_ctrl_c() -> None:
    """SIGTERM (``kill``, or a cluster's scheduler at a job's time limit) is handled as Ctrl-C:
    forwarded as SIGINT to whatever handles Ctrl-C at that moment (held back where a Ctrl-C
    would be), the same tidy stop, exit code 130, no finished condition lost. It ended the
    program at once: the conditions finished but not yet stored were lost, and the staging
    folder and a semaphore were left behind. Not where Ctrl-C is ignored from the start (a
    background job of a non-interactive shell): there SIGTERM still ends the program."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return
    signal.signal(signal.SIGTERM, _on_terminate)


def _on_terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as a Ctrl-C; where Ctrl-C is ignored for the moment (while a stop cleans up),
    as SIGTERM: the program ends, as it did before, rather than the signal being lost. (While
    a local Dask cluster starts Ctrl-C is held, not ignored: a SIGTERM stops the sweep as the
    cluster is up.)"""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    else:
        signal.raise_signal(signal.SIGINT)


def _collect_from_here() -> None:
    """With the commands imported: if :func:`console` turned cyclic garbage collection off
    while they were (in a process of its own: those imports' collections cost ~0.3 s of CPU),
    freeze what was imported, so that no later collection walks it, and turn it on. The little
    garbage those imports left (~9,000 objects) is frozen with them, never freed: a collection
    first would cost ~0.1 s more."""
    global _collection_paused
    if _collection_paused:
        gc.freeze()
        gc.enable()
        _collection_paused = False


def _owns_process(caller: FrameType) -> bool:
    """Whether :func:`console`, called from ``caller``, may end the process: called by the
    program itself (at the top level of the console script, or of the module that ``python -m``
    runs), with no host program around it (``runpy.run_module``, IPython's ``%run``), no
    debugger, profiler or tracer (``python -m pdb``, ``python -m cProfile``: each expects the
    program to return, the profiler to write its file) and no interactive prompt to follow
    (``python -i``)."""
    if sys.flags.inspect or os.environ.get("PYTHONINSPECT"):
        return False
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return False
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+: profilers, debuggers
    if monitoring is not None and any(monitoring.get_tool(i) is not None for i in range(6)):
        return False
    outer = []
    frame = caller.f_back
    while frame is not None:
        outer.append(frame.f_code.co_name)
        frame = frame.f_back
    return outer in ([], ["_run_code", "_run_module_as_main"])


def _computes_in_workers(argv: list[str]) -> bool:
    """Whether ``argv`` is a ``scai run`` that computes in worker processes (``--workers``
    over 1, or unset on a machine of several cores): a quick look before the real parse,
    which alone reports errors (a bad command line here is "no")."""
    words = [w for w in argv if not w.startswith("-")][:1]
    if words != ["run"] or {"-h", "--help"} & set(argv):
        return False
    look = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    look.add_argument("--workers", type=int, default=None)
    try:
        workers = look.parse_known_args(argv)[0].workers
    except (argparse.ArgumentError, SystemExit):
        return False
    return (workers or os.cpu_count() or 1) > 1


#: The experiments whose workers fit by ``--engine`` alone (no diagnostics by ArviZ).
_ENGINE_ONLY = ("all", "alignment", "generalization", "inconsistency")


def _workers_need_arviz(argv: list[str]) -> bool:
    """Whether the workers of the ``scai run`` in ``argv`` may import ArviZ, so that the worker
    server must (:data:`scai.worker_start.ARVIZ_MODULES`): all but the study's
    experiments by the exact engine (the default). In doubt (the experiment not right after
    ``run``, an unreadable ``--engine``), yes."""
    after = argv[argv.index("run") + 1 :] if "run" in argv else []
    look = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    look.add_argument("--engine", default="exact")
    try:
        engine = look.parse_known_args(after)[0].engine
    except (argparse.ArgumentError, SystemExit):
        return True
    return not (after[:1] and after[0] in _ENGINE_ONLY and engine == "exact")


def _stop_workers() -> None:
    """On Ctrl-C, end the worker processes (if any were started) now: they ignore the signal,
    and at exit Python would wait for the tasks they are running."""
    workers = sys.modules.get("scai.inference.workers")
    if workers is not None:
        workers.stop_workers()


def _describe(err: Exception, args: argparse.Namespace) -> tuple[int, str]:
    """The exit code and one line for an error."""
    from scai.models.errors import ScaiError

    if isinstance(err, ScaiError):
        return 2, err.one_line()
    if isinstance(err, OSError):
        return 2, _describe_os_error(err, args)
    if isinstance(err, ValueError):
        return 2, " ".join(str(err).split())
    if isinstance(err, MemoryError):
        return 1, "out of memory; use smaller settings (fewer simulations, users or epochs)"
    text = " ".join(str(err).split())
    return 1, (
        f"internal error: {type(err).__name__}: {text} (a bug in scai: please report it with "
        "the command; 'scai --debug ...' shows the traceback)"
    )


def _describe_os_error(err: OSError, args: argparse.Namespace) -> str:
    """``--out PATH: reason``: the option whose path the failing file is (or is under)."""
    reason = err.strerror or str(err)
    failed = err.filename2 or err.filename  # a rename's destination, not its temporary file
    if failed is None:
        return reason
    failed_path = Path(os.fsdecode(failed)).absolute()
    if isinstance(err, FileExistsError | NotADirectoryError):
        # mkdir where a file is ('File exists'), or a file in a path's folders ('Not a
        # directory'): name the file in the way
        from scai.experiments.commands import file_in_the_way, in_the_way

        if (blocking := file_in_the_way(failed_path)) is not None:
            reason = in_the_way(blocking)
    where = "" if reason.startswith(str(failed_path)) else f" ({os.fsdecode(failed)})"
    for key, value in vars(args).items():
        if not isinstance(value, str | Path) or key in ("command", "experiment"):
            continue
        given = Path(value).absolute()
        if failed_path == given or given in failed_path.parents or failed_path in given.parents:
            option = key.upper() if key == "file" else "--" + key.replace("_", "-")
            return f"{option} {value}: {reason}{where}"
    return f"{os.fsdecode(failed)}: {reason}" if where else reason


if __name__ == "__main__":
    console()
