"""``scai fit``: fit the model to an interaction table and save the posterior."""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
import warnings
from pathlib import Path

from scai.experiments.commands import (
    apply_tone_options,
    byte_size,
    check_outputs,
    command,
    count,
    currency_option,
    hypothesis_file,
    hypothesis_option,
    input_path,
    output_dir,
    register_currencies,
    seed_option,
    strict_option,
    tones_option,
    warnings_on_one_line,
)
from scai.experiments.locking import locked
from scai.models.data import read_interactions
from scai.models.errors import DuplicateGamesWarning, RunError, TableWarning
from scai.models.hypotheses import get_hypothesis
from scai.models.writing import write_csv_atomic, write_together

#: The options of one engine: name -> (the engine, its default: the engine function's own,
#: ``fit_mcmc``'s or ``fit_svi``'s, so that the command line and Python fit alike; a test
#: checks they are equal, as importing the engines here would slow every command's start).
ENGINE_OPTIONS: dict[str, tuple[str, object]] = {
    "warmup": ("mcmc", 300),
    "chains": ("mcmc", 2),
    "max_steps": ("svi", 3000),
    "guide": ("svi", "normal"),
    "correction": ("svi", "importance"),
    "init": ("svi", "laplace"),
    "subsample": ("svi", None),
}


def _add_fit(p: argparse.ArgumentParser) -> None:
    from scai.inference.draws import DEFAULT_DRAWS
    from scai.inference.fit import COUNT_OPTIONS, ENGINES

    p.add_argument(
        "--data",
        required=True,
        type=input_path,
        metavar="FILE.csv",
        help="interaction table to fit (see `scai validate`)",
    )
    hypothesis_option(p)
    tones_option(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="exact",
        help="exact (enumeration + grid), svi or mcmc (default exact)",
    )
    seed_option(p)
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        metavar="DIR",
        help="writes DIR/posterior.nc and DIR/policy_probs.csv",
    )
    p.add_argument(
        "--draws",
        type=count("--draws", *COUNT_OPTIONS["num_draws"]),
        default=None,
        help=(
            "posterior draws (exact, svi) or samples per chain (mcmc) (default "
            f"{DEFAULT_DRAWS['exact']} for exact, {DEFAULT_DRAWS['svi']} for svi, "
            f"{DEFAULT_DRAWS['mcmc']} per chain for mcmc)"
        ),
    )
    p.add_argument(
        "--warmup",
        type=count("--warmup", *COUNT_OPTIONS["warmup"]),
        default=None,
        help=f"mcmc warmup iterations per chain (default {ENGINE_OPTIONS['warmup'][1]})",
    )
    p.add_argument(
        "--chains",
        type=count("--chains", *COUNT_OPTIONS["num_chains"]),
        default=None,
        help=f"mcmc chains (default {ENGINE_OPTIONS['chains'][1]})",
    )
    p.add_argument(
        "--max-steps",
        type=count("--max-steps", *COUNT_OPTIONS["max_steps"]),
        default=None,
        help=f"svi step cap (default {ENGINE_OPTIONS['max_steps'][1]})",
    )
    p.add_argument(
        "--guide",
        choices=("normal", "mvn"),
        default=None,
        help="svi guide: mean-field normal (default) or full-covariance normal",
    )
    p.add_argument(
        "--correction",
        choices=("importance", "none"),
        default=None,
        help="svi: reweight the guide's draws by the exact posterior (default; Pareto k per "
        "simulation in the diagnostics) or keep the guide's own draws",
    )
    p.add_argument(
        "--init",
        choices=("laplace", "median"),
        default=None,
        help="svi: start the guide at the Laplace approximation, with step sizes scaled to "
        "it (default), or at the prior median (--guide mvn: only there)",
    )
    p.add_argument(
        "--subsample",
        type=count("--subsample", *COUNT_OPTIONS["subsample_size"]),
        default=None,
        metavar="B",
        help="svi: minibatches of B users per step (the likelihood scaled by users / B), for "
        "large groups; the step size decays to 1%% of its start over --max-steps. With "
        "--init median --correction none the fit reads only minibatches",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    strict_option(p)
    currency_option(p)
    p.add_argument(
        "--max-memory",
        type=byte_size,
        default=None,
        metavar="SIZE",
        help=max_memory_help(),
    )


def max_memory_help() -> str:
    """``--max-memory``'s help, from the shares the two checks use: the table's tensors
    (:data:`~scai.models.memory.MEMORY_SHARE`, leaving room for the engines' working memory)
    and the posterior's draws with their ArviZ form (:data:`~scai.inference.fit.DRAWS_SHARE`).
    A size given is the limit of each check."""
    from scai.inference.fit import DRAWS_SHARE
    from scai.models.memory import MEMORY_SHARE

    def percent(share: float) -> str:
        return f"{share:.0%}".replace("%", "%%")  # argparse formats help with %

    return (
        "most memory, e.g. 8G, that the model's tensors of the table may take, and, checked "
        "apart, the posterior's draws with their posterior.nc form (default: "
        f"{percent(MEMORY_SHARE)} of the available memory for the tensors, "
        f"{percent(DRAWS_SHARE)} for the draws); either above its limit is refused before any "
        "work"
    )


def engine_options(args: argparse.Namespace) -> None:
    """Refuse an option of another engine than ``--engine`` (it would be ignored without a
    word), and ``--init laplace`` with ``--guide mvn`` (that guide starts at the prior
    median), then fill in the defaults of the engine's own."""
    for name, (engine, _) in ENGINE_OPTIONS.items():
        value = getattr(args, name)
        if value is not None and engine != args.engine:
            option = "--" + name.replace("_", "-")
            raise RunError(
                f"{option} {value}: an option of --engine {engine}, not of --engine {args.engine}"
            )
    if args.guide == "mvn" and args.init == "laplace":
        raise RunError(
            "--init laplace: the Laplace start is the mean-field guide's (--guide normal); "
            "--guide mvn starts at the prior median (--init median, its default)"
        )
    for name, (_, default) in ENGINE_OPTIONS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.guide == "mvn":  # its one start (the Laplace one was refused above if asked for)
        args.init = "median"


@command("fit", "fit the model to an interaction table and save the posterior")(_add_fit)
def run_fit(args: argparse.Namespace) -> int:
    from scai.inference.exact_bounded import check_groups_fit
    from scai.inference.fit import fit
    from scai.models.data import tones_heard
    from scai.models.tone_reader.reading import unheard_text

    engine_options(args)
    register_currencies(args.add_currency)
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
            subsample_size=args.subsample,
            progress=not args.quiet,
        )
        if args.draws:
            options["num_draws"] = args.draws
    elif args.draws:
        options["num_draws"] = args.draws
    if args.out.suffix.lower() in (".nc", ".csv") and not args.out.is_dir():
        raise RunError(
            f"--out {args.out}: a folder, which gets posterior.nc and policy_probs.csv; this "
            f"name reads as a file's: give a folder, e.g. --out {args.out.with_suffix('')}"
        )
    check_outputs(
        "--out",
        args.out,
        [args.out / "posterior.nc", args.out / "policy_probs.csv"],
        reading=[args.data, hypothesis_file(args.hypothesis), args.reader],
    )
    start = time.perf_counter()
    data, hypothesis = args.data, get_hypothesis(args.hypothesis)
    with warnings_on_one_line():
        if args.tones != "given" or args.reader is not None:
            with warnings.catch_warnings():  # duplicates are reported once, by fit below
                warnings.simplefilter("ignore", DuplicateGamesWarning)
                table = read_interactions(args.data, strict=args.strict)
            if args.engine == "exact":  # before the messages are read (minutes on big logs)
                sims = table["sim"].nunique()
                check_groups_fit(hypothesis, sims, f"--data {args.data} ({sims:,} simulations)")
            data, hypothesis = apply_tone_options(args, table, hypothesis, str(args.data))
        posterior = fit(
            data,
            hypothesis,
            engine=args.engine,
            seed=args.seed,
            strict=args.strict,
            max_memory=args.max_memory,
            arviz=True,  # it is saved: its draws' ArviZ form must fit too
            **options,
        )
        if args.tones == "given" and (texts := unheard_text(posterior.table)):
            warnings.warn(
                f"{args.data}: no message has a tone but {texts} have text, so the model hears "
                "no manners; --tones read reads them from the text",
                TableWarning,
                stacklevel=1,
            )
    fitted = time.perf_counter() - start
    # The two files are one result: another scai process writing into the folder (a second
    # fit) writes its pair before or after this one, never between.
    with locked(args.out, wait=True, on_wait=lambda m: print(f"scai fit: {m}", file=sys.stderr)):
        start = time.perf_counter()
        save_pair(posterior, args.out, args.max_memory)
        saved = time.perf_counter() - start
    # Both times: the files (posterior.nc's predictive replicates and log-likelihood per draw)
    # can take far longer than the fit, and one number after the fit's told half the story.
    heard = tones_heard(posterior.table)
    tones = f"{args.tones}" + ("" if heard or args.tones != "given" else " (none in the table)")
    print(
        f"engine {args.engine}, hypothesis {posterior.hypothesis.name}, tones {tones}, "
        f"fit {fitted:.2f} s, files written in {saved:.2f} s"
    )
    print(posterior.summary().to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if posterior.pi_mean_exact is not None:
        draws = posterior.n_chains * posterior.n_draws
        print(
            f"(pi's mean: the lattice's exact sum; sd, q5, q95: from {draws:,} "
            f"draw{'s' if draws != 1 else ''})"
        )
    diag = {k: v for k, v in posterior.diagnostics.items() if k != "elbo_trace"}
    print(f"diagnostics (every value in posterior.nc): {diagnostics_line(diag)}")
    print(f"wrote {args.out / 'posterior.nc'} and {args.out / 'policy_probs.csv'}")
    return 0


def save_pair(posterior, out: Path, max_memory: int | None) -> None:
    """``out/posterior.nc`` and ``out/policy_probs.csv`` as one result (:func:`write_together`:
    an interruption leaves the previous pair, or none, or the new pair, never one of each)."""
    write_together(
        {
            out / "posterior.nc": lambda path: posterior.save(path, max_memory=max_memory),
            out / "policy_probs.csv": lambda path: write_csv_atomic(posterior.policy_table(), path),
        }
    )


#: Per-parameter diagnostics where the largest value is the one to read (else the smallest).
WORST_IS_LARGEST = ("r_hat", "pareto_k")


#: Diagnostics whose list is not a value per chain or simulation: what its entries are.
ENTRIES = {"grid_size": "grid points of the scalars and bounded sites, lattice points"}


def diagnostics_line(diagnostics: dict, prefix: str = "") -> str:
    """``diagnostics`` on one line a person can read: of a value per parameter or per
    simulation, the worst and whose it is (the largest r-hat or Pareto k, the smallest ESS);
    of a list of numbers, the numbers (their range if more than 4; what the entries are where
    they are not per simulation, :data:`ENTRIES`); nested entries with their parent's name."""
    parts = []
    for key, value in diagnostics.items():
        name = f"{prefix}{key}" + (f" ({ENTRIES[key]})" if key in ENTRIES else "")
        digits = 3 if key == "r_hat" else None  # as stored (diagnostics.shown_r_hat)
        if isinstance(value, dict) and value and all(_is_number(v) for v in value.values()):
            pick = max if key in WORST_IS_LARGEST else min
            # NaN (undefined) is the worst of all, whatever the order of the entries
            worst = pick(value, key=lambda k: (math.isnan(value[k]) == (pick is max), value[k]))
            word = "max" if pick is max else "min"
            parts.append(f"{name} {word} {_number(value[worst], digits)} ({worst})")
        elif isinstance(value, dict):
            parts.append(diagnostics_line(value, f"{name}."))
        elif isinstance(value, list | tuple) and value and all(_is_number(v) for v in value):
            if len(value) <= 4:
                shown = "[" + ", ".join(_number(v, digits) for v in value) + "]"
            else:
                low, high = _number(min(value), digits), _number(max(value), digits)
                shown = f"{low}..{high} ({len(value)} values)"
            parts.append(f"{name} {shown}")
        else:
            parts.append(f"{name} {_number(value, digits) if _is_number(value) else value}")
    return ", ".join(part for part in parts if part)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float, digits: int | None = None) -> str:
    if digits is not None:
        return f"{value:.{digits}f}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


#: The engines' Python options that ``scai fit`` sets from an option of its own (those whose
#: names could not be read as a word of a message).
COMMAND_OPTIONS = {
    "subsample_size": "--subsample",
    "num_draws": "--draws",
    "num_chains": "--chains",
    "max_steps": "--max-steps",
    "max_memory": "--max-memory",
}


def as_command_options(message: str) -> str:
    """An engine's message with its options named as ``scai fit``'s (``subsample_size=50``
    -> ``--subsample 50``, ``engine='mcmc'`` -> ``--engine mcmc``, ``max_memory`` ->
    ``--max-memory``). An option the message names both ways, ``samples=500 (scai fit
    --draws)``, ``samples=500, scai fit --draws 500`` or ``max_steps (scai fit --max-steps)``,
    is named once, as the command's
    (``--draws 500``; translated word by word it read ``--draws 500 (scai fit --draws)``, and
    MCMC's ``samples`` is no word to translate)."""
    message = re.sub(r"\b\w+=(\S+) \((?:scai fit )?(--[a-z][a-z-]*)\)", r"\2 \1", message)
    message = re.sub(r"\b\w+=(\d+), scai fit (--[a-z][a-z-]*) \1\b", r"\2 \1", message)
    python_names = "|".join([*COMMAND_OPTIONS, "samples"])
    message = re.sub(rf"\b(?:{python_names}) \(scai fit (--[a-z][a-z-]*)\)", r"\1", message)
    message = re.sub(r"\bengine='(\w+)' or '(\w+)'", r"--engine \1 or \2", message)
    message = re.sub(r"\bengine='(\w+)'", r"--engine \1", message)
    message = message.replace("max_memory=, --max-memory", "--max-memory")
    for name, option in COMMAND_OPTIONS.items():
        message = re.sub(rf"\b{name}=", f"{option} ", message)
        message = re.sub(rf"\b{name}\b", option, message)
    return message


def engine_spelling(message: str, source: type) -> str:
    """What an engine says (an :class:`EngineError`, the engines' warnings), its options named
    as ``scai fit``'s (:func:`as_command_options`); anything else as it is: a table's error or
    warning quotes the user's paths, columns and values, which are not options (a data file
    ``num_draws.csv`` would have been named ``--draws.csv``)."""
    from scai.inference.diagnostics import DiagnosticWarning
    from scai.inference.errors import EngineError
    from scai.inference.importance import ImportanceWarning
    from scai.inference.svi import ConvergenceWarning, MinibatchWarning, UncorrectedWarning

    engines = (
        EngineError,
        DiagnosticWarning,
        ImportanceWarning,
        ConvergenceWarning,
        MinibatchWarning,
        UncorrectedWarning,
    )
    return as_command_options(message) if issubclass(source, engines) else message


# ``scai``'s main tells this command's errors and warnings with its own names of the options
run_fit.spelling = engine_spelling  # type: ignore[attr-defined]
