"""One entry point for every engine: :func:`fit`.

Everything is validated before any engine runs: the data (:class:`DataError`, including the
memory the model's tensors need), the hypothesis (:class:`HypothesisError`) and the engine and
its options (:class:`EngineError`: names, whole-number counts, finite positive rates, the seed).
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scai.inference.draws import latent_sites
from scai.inference.errors import EngineError
from scai.inference.posterior import DRAW_DEPENDENT_LOGLIK, Posterior
from scai.models.data import (
    TONE_COLUMNS,
    check_some_user_acts,
    read_interactions,
    validate_frame,
)
from scai.models.errors import (
    DataError,
    Problem,
    check_count,
    check_flag,
    check_path,
    check_seed,
)
from scai.models.hypotheses import Hypothesis, get_hypothesis
from scai.models.language import TONES
from scai.models.layout import GroupData
from scai.models.memory import check_memory, format_bytes, memory_limit
from scai.models.table_memory import check_table_memory

ENGINES = ("exact", "svi", "mcmc")

#: ``option: (low, high)`` of the engines' whole-number options (``None`` is left to the
#: engine's default). The upper bounds are far beyond any useful run and keep a typo
#: (``num_draws=10**9``) from exhausting memory or time.
COUNT_OPTIONS: dict[str, tuple[int, int]] = {
    "num_draws": (1, 1_000_000),
    "samples": (1, 1_000_000),
    "warmup": (0, 1_000_000),
    "num_chains": (1, 64),
    "max_steps": (1, 10_000_000),
    "min_steps": (1, 10_000_000),
    "window": (1, 1_000_000),
    "subsample_size": (1, 10_000_000),
    "proposal_draws": (2, 1_000_000),
    "grid_points": (2, 100_000),  # (a 1-D reference grid 100x the default: 20,000)
    "zoom_points": (2, 100_000),
    "max_simplex_points": (1, 1_000_000),
}
#: ``option: (low, high)``, both excluded, of the engines' real-valued options.
RATE_OPTIONS: dict[str, tuple[float, float]] = {
    "learning_rate": (0.0, math.inf),
    "rtol": (0.0, math.inf),
    "target_accept": (0.0, 1.0),
}


def _engine(name: str):
    from scai.inference.exact import fit_exact
    from scai.inference.mcmc import fit_mcmc
    from scai.inference.svi import fit_svi

    return {"exact": fit_exact, "svi": fit_svi, "mcmc": fit_mcmc}[name]


def check_options(
    engine: str,
    options: dict[str, Any],
    seed: object = 0,
    kept: dict[str, Any] | None = None,
    omit: tuple[str, ...] = (),
) -> tuple[int, dict[str, Any]]:
    """The seed and the options as the engines take them (whole numbers as Python ints: a
    NumPy integer is a whole number, but torch's and Python's generators refuse it as a seed),
    or an :class:`EngineError` naming the first bad engine option: an engine or option name
    the engine does not know, a flag that is not ``True``/``False``, a value not among an
    option's choices (:func:`_choices`), a count outside :data:`COUNT_OPTIONS`, a rate outside
    :data:`RATE_OPTIONS`, a non-finite number, or a seed outside ``0..2**32 - 1``. ``kept``:
    the settings the options go over (an update keeps the previous fit's), else the engine's
    defaults: ``min_steps`` is compared with the ``max_steps`` the engine will run with.
    ``omit``: options the caller sets itself (an update's ``warm_start``), unknown here."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    seed = check_seed(seed, "seed", EngineError)
    checked = dict(options)
    known = _option_names(_engine(engine))
    if known is not None:
        known = [name for name in known if name not in omit]
    flags, choices = _flags(_engine(engine)), _choices(engine)
    defaults = _defaults(_engine(engine))
    for key, value in options.items():
        if isinstance(value, np.bool_):  # NumPy's True is True
            checked[key] = value = bool(value)
        elif isinstance(value, np.floating):  # and its floats are floats
            checked[key] = value = float(value)
        if known is not None and key not in known:
            raise EngineError(
                f"unknown option {key!r} for engine {engine!r}; allowed: {', '.join(known)}"
            )
        if key in flags and not (isinstance(value, bool) or (value is None and flags[key])):
            allowed = "True, False or None" if flags[key] else "True or False"
            raise EngineError(f"option {key}={value!r} for engine {engine!r}; allowed: {allowed}")
        if key in choices and value not in choices[key]:
            allowed = ", ".join(repr(c) for c in choices[key])
            raise EngineError(f"option {key}={value!r} for engine {engine!r}; allowed: {allowed}")
        if value is None:
            allowed = key in flags or None in choices.get(key, ())
            if defaults.get(key, None) is not None and not allowed:
                raise EngineError(
                    f"option {key}=None for engine {engine!r}: this option needs a value "
                    f"(its default is {defaults[key]!r})"
                )
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise EngineError(f"option {key}={value!r} must be finite")
        if key in COUNT_OPTIONS:
            checked[key] = check_count(key, value, *COUNT_OPTIONS[key], error=EngineError)
        elif key in RATE_OPTIONS:
            low, high = RATE_OPTIONS[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and low < value < high):
                raise EngineError(
                    f"{key}: must be a number above {low:g}"
                    + (f" and below {high:g}" if math.isfinite(high) else "")
                    + f", got {value!r}"
                )
    check_step_range(checked, {**defaults, **(kept or {})})
    return seed, checked


def check_step_range(options: dict[str, Any], defaults: dict[str, Any]) -> None:
    """An :class:`EngineError` where ``min_steps`` is above ``max_steps`` (each from
    ``options``, else ``defaults``): SVI would run ``max_steps`` without one convergence
    check."""
    low = options.get("min_steps", defaults.get("min_steps"))
    high = options.get("max_steps", defaults.get("max_steps"))
    if low is not None and high is not None and low > high:
        raise EngineError(f"min_steps={low} is above max_steps={high}")


def checked_engine_options(engine: str, seed: object, options: dict[str, Any]) -> dict[str, Any]:
    """For an engine function called directly (not through :func:`fit`, which checks them
    first): its seed and options checked as :func:`check_options` checks them, as the engine
    takes them (``seed`` among them); an :class:`EngineError` names the first bad one."""
    seed, checked = check_options(engine, options, seed)
    return {**checked, "seed": seed}


@functools.cache  # (the engines check their options at every call: read once)
def _defaults(function) -> dict[str, Any]:
    """The engine function's keyword options' defaults."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


@functools.cache  # (the engines check their options at every call: read once)
def _option_names(function) -> tuple[str, ...] | None:
    """The keyword options of an engine function (``None`` if it takes ``**kwargs``)."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    skip = {"data", "hypothesis", "table", "seed", *INTERNAL_OPTIONS}
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in skip)


#: Keyword arguments of the engine functions that scai passes itself (online updates, the
#: bounded sites' zooms), not options of :func:`fit`: a tensor of another shape crashed deep in
#: the engine, a dict of the wrong kind was taken silently.
INTERNAL_OPTIONS = ("action_loglik", "bounded_grids")


@functools.cache  # (the engines check their options at every call: read once)
def _flags(function) -> dict[str, bool]:
    """The engine function's options that are ``True``/``False`` (annotated ``bool``, or
    ``bool | None``: the value says whether ``None`` is allowed)."""
    parameters = inspect.signature(function).parameters.values()
    kinds = {"bool": False, "bool | None": True}
    return {p.name: kinds[str(p.annotation)] for p in parameters if str(p.annotation) in kinds}


def _choices(engine: str) -> dict[str, tuple]:
    """The engine's options that take one of a few values, with those values."""
    if engine != "svi":
        return {}
    from scai.inference import svi

    return {"guide": tuple(svi.GUIDES), "correction": svi.CORRECTIONS, "init": svi.INITS}


def prepare(
    data: pd.DataFrame | str | Path,
    hypothesis: Hypothesis | str | Path,
    users: pd.DataFrame | None = None,
    *,
    strict: bool = False,
    max_memory: int | None = None,
) -> tuple[pd.DataFrame, GroupData, Hypothesis]:
    """Validate the inputs (before any inference runs) and build the model's tensors.

    ``strict``: identical rows are a :class:`DataError` (else a warning). ``max_memory``: the
    most bytes the model's tensors may take (default: :data:`~scai.models.memory.MEMORY_SHARE`
    of the available memory).
    """
    hypothesis = get_hypothesis(hypothesis)
    check_flag("strict", strict, EngineError)
    if isinstance(data, str | bytes | os.PathLike):
        check_path(data, "data", EngineError)  # (an empty one: not the current folder)
        table = read_interactions(data, strict=strict)
        source = os.fsdecode(os.fspath(data))
    elif isinstance(data, pd.DataFrame):
        table = validate_frame(data, strict=strict)
        source = "interactions"
    else:
        raise DataError(
            "data",
            [
                Problem(
                    None,
                    None,
                    None,
                    f"expected a DataFrame or a CSV path, got {type(data).__name__}",
                    whole="argument",
                )
            ],
        )
    if users is not None:
        if not isinstance(users, pd.DataFrame) or "policy" not in users.columns:
            raise DataError(
                "users",
                [
                    Problem(
                        None,
                        "policy",
                        None,
                        "expected a DataFrame with a 'policy' column",
                        whole="table",
                    )
                ],
            )
        bad = [
            Problem(i, "policy", p, f"allowed: {', '.join(hypothesis.policy_names)}")
            for i, p in enumerate(users["policy"], start=1)
            if p not in hypothesis.policy_names
        ]
        if bad:
            raise DataError(f"users (hypothesis {hypothesis.name!r})", bad)
        if "user" in users.columns:  # one true type per user (of a simulation): two contradict
            columns = [c for c in ("sim", "user") if c in users.columns]
            first: dict[tuple, int] = {}
            again = []
            rows = users[columns].astype(str).itertuples(index=False, name=None)
            for i, key in enumerate(rows, start=1):
                if key in first:
                    why = f"listed before, at row {first[key]}: one row per user" + (
                        "" if "sim" in columns else " (of several simulations: add a 'sim' column)"
                    )
                    again.append(Problem(i, "user", key[-1], why))
                first.setdefault(key, i)
            if again:
                raise DataError("users", again)
    check_reported_tones(table, hypothesis, source)
    check_some_user_acts(table, source)
    return table, lay_out(table, source, max_memory), hypothesis


def lay_out(table: pd.DataFrame, source: str, max_memory: int | None = None) -> GroupData:
    """The model's tensors of a validated ``table``, once they are known to fit in
    ``max_memory`` bytes (:func:`prepare`'s)."""
    if max_memory is not None:
        check_count("max_memory", max_memory, 1, error=EngineError)
    check_table_memory(table, source, max_memory)
    return GroupData.from_table(table)


def check_reported_tones(table: pd.DataFrame, hypothesis: Hypothesis, source: str) -> None:
    """A :class:`DataError` naming every tone the hypothesis's tone reader never reports (a
    column of zeros in its ``reader_confusion``): such a tone has probability 0 under every
    manner, and the posterior would be undefined."""
    if hypothesis.reader_confusion is None:
        return
    columns = zip(*hypothesis.reader_confusion, strict=True)
    never = {tone for tone, column in zip(TONES, columns, strict=True) if not any(column)}
    problems = [
        Problem(
            row,
            col,
            tone,
            f"hypothesis {hypothesis.name!r}: its tone reader never reports {tone!r} "
            "(reader_confusion column of zeros); read the tones with that reader or give a "
            "hypothesis without reader_confusion",
        )
        for col in TONE_COLUMNS
        for row, tone in enumerate(table[col].tolist(), start=1)
        if tone in never
    ]
    if problems:
        raise DataError(source, problems)


#: Peak memory per posterior draw, rounded up from measurements (``neutral``, exact engine,
#: 4 users per simulation, peak RSS less that before the fit): the fit keeps 81-120 B per draw
#: and simulation (200-2,000 simulations, 2,000-20,000 draws); its ArviZ form
#: (:meth:`Posterior.to_arviz`, then :meth:`Posterior.save`) 162-192 B more per draw and table
#: row (every row's predictive and log-likelihood per draw; 400-4,000 rows).
BYTES_PER_DRAW_AND_SIM = 128
BYTES_PER_DRAW_AND_ROW = 256
#: Bytes per draw and event slot of the layout (simulations x users x events of the busiest
#: user): the replicates are drawn per slot (43 B measured where one user played 1,265 of
#: 5,000 games: 227 slots a row; in a table whose users play alike, 2-4 slots a row, the
#: bytes per row above hold them).
BYTES_PER_DRAW_AND_SLOT = 48
#: The share of the available memory the draws may take by default: the bytes above are
#: measured peaks, not padded guesses (the layout's check keeps a quarter, for the engines'
#: working memory on top of it).
DRAWS_SHARE = 0.8

#: Bytes per draw, simulation, user slot and type of a posterior whose users' likelihoods vary
#: with the draws (latent rationality, shifts, lapses or stereotype strength): each user's
#: log-likelihood under each type per draw, and the type probabilities drawn from it (10.4 B
#: measured at 10^5 users, 100 and 1,000 SVI draws: 0.76 and 3.26 GB at peak).
BYTES_PER_DRAW_AND_USER_TYPE = 12


def arviz_bytes(draws: int, rows: int, slots: int = 0) -> int:
    """The memory the ArviZ form of ``draws`` draws of a table of ``rows`` rows needs, laid
    out in ``slots`` event slots (simulations x users x events of the busiest user)."""
    return draws * max(rows * BYTES_PER_DRAW_AND_ROW, slots * BYTES_PER_DRAW_AND_SLOT)


def engine_draws(engine: str, options: dict[str, Any]) -> tuple[int, int, str, int]:
    """The draws an engine makes while fitting (SVI's importance proposals included), the
    draws the posterior keeps (over all chains), the option that sets them and its value."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(_engine(engine)).parameters.items()
        if p.default is not inspect.Parameter.empty
    }

    def given(name: str) -> int:  # (0 where the engine declares no such option)
        value = options.get(name)
        return int(defaults.get(name, 0) if value is None else value)

    if engine == "mcmc":
        kept = given("num_chains") * given("samples")
        return kept, kept, "samples", given("samples")
    kept = given("num_draws")
    made = kept
    if engine == "svi" and options.get("correction", defaults.get("correction")) is not None:
        proposals = options.get("proposal_draws")
        made = max(kept, int(proposals) if proposals else max(2000, 2 * kept))
    return made, kept, "num_draws", kept


def draw_dependent_user_types(group: GroupData, hypothesis: Hypothesis) -> int:
    """Simulations x user slots x types where the users' likelihoods vary with the draws (a
    latent site in :data:`DRAW_DEPENDENT_LOGLIK`: the posterior keeps them per draw), else 0:
    :func:`check_draws_memory`'s ``user_types``."""
    if not DRAW_DEPENDENT_LOGLIK & set(latent_sites(hypothesis)):
        return 0
    return group.shape[0] * group.shape[1] * len(hypothesis.policies)


def check_draws_memory(
    engine: str,
    options: dict[str, Any],
    sims: int,
    rows: int,
    max_memory: int | None = None,
    arviz: bool = False,
    user_types: int = 0,
    slots: int = 0,
) -> int:
    """The bytes a fit's draws need (and, with ``arviz``, their ArviZ form's, for ``rows``
    table rows in ``slots`` event slots of the layout; with ``user_types``, the simulations
    x user slots x types of a posterior whose users' likelihoods vary with the draws, the
    table of them per draw); an
    :class:`EngineError` naming the option when that is above the memory limit
    (:func:`~scai.models.memory.memory_limit`), before any inference runs."""
    made, kept, option, value = engine_draws(engine, options)
    need = made * sims * BYTES_PER_DRAW_AND_SIM + (arviz_bytes(kept, rows, slots) if arviz else 0)
    need += kept * user_types * BYTES_PER_DRAW_AND_USER_TYPE
    what = f"{kept:,} draws" + (f" of {rows:,} rows in ArviZ's form" if arviz else "")
    if user_types:  # (10^6 users with a latent rationality ran out of memory at the end)
        what += ", with each user's likelihood under each type per draw,"

    def error(text: str) -> EngineError:
        per_draw = need / max(kept, 1)
        chains = kept // max(value, 1) if engine == "mcmc" else 1
        limit, _ = memory_limit(max_memory, DRAWS_SHARE)  # (known: it was exceeded)
        fitting = int(limit / per_draw) // chains  # (draws per chain: the option's own unit)
        most = (
            f"about {fitting:,} fit" + (" per chain" if engine == "mcmc" else "")
            if fitting
            else "not even one fits"
        )
        return EngineError(
            f"{option}={value} (scai fit --draws)"
            + (f" x num_chains={chains} (--chains)" if engine == "mcmc" else "")
            + (f" and {made:,} importance proposals" if made > kept else "")
            + f": the posterior's {what} for {sims:,} "
            f"simulation(s) {text}; ask for fewer draws (about {format_bytes(per_draw)} each: "
            f"{most}) or raise the limit (max_memory=, --max-memory)"
        )

    check_memory(need, error, max_memory, DRAWS_SHARE)
    return need


def fit(
    data: pd.DataFrame | str | Path,
    hypothesis: Hypothesis | str | Path = "neutral",
    engine: str = "exact",
    seed: int = 0,
    users: pd.DataFrame | None = None,
    *,
    strict: bool = False,
    max_memory: int | None = None,
    arviz: bool = False,
    **options: Any,
) -> Posterior:
    """Posterior over the group norms behind ``data`` (a validated interaction table or CSV).

    ``engine``: ``"exact"`` (enumeration and quadrature; see :mod:`scai.inference.exact` for the
    hypotheses it is exact for), ``"svi"`` (:mod:`scai.inference.svi`) or ``"mcmc"``
    (:mod:`scai.inference.mcmc`); ``options`` go to the engine. ``users`` (optional, the true types)
    is checked against the hypothesis's policies, one row per user (of a simulation, with a
    ``sim`` column); it is not used in the fit. ``strict`` and ``max_memory``: see
    :func:`prepare`; the limit bounds the draws too (:func:`check_draws_memory`), and with
    ``arviz`` their ArviZ form as well (``to_arviz``, ``save``: ``scai fit`` saves every
    posterior). Bad input fails before inference starts: :class:`EngineError` for the
    engine and its options, :class:`DataError` for the data, :class:`HypothesisError` for the
    hypothesis.
    """
    seed, options = check_options(engine, options, seed)
    check_flag("strict", strict, EngineError)
    check_flag("arviz", arviz, EngineError)
    table, group, hypothesis = prepare(
        data, hypothesis, users, strict=strict, max_memory=max_memory
    )
    check_draws_memory(
        engine,
        options,
        group.shape[0],
        len(table),
        max_memory,
        arviz,
        user_types=draw_dependent_user_types(group, hypothesis),
        slots=math.prod(group.shape),
    )
    if engine == "exact":
        from scai.inference.exact_budget import check_grid_memory
        from scai.inference.grids.latent import check_exact
        from scai.inference.grids.simplex import (
            LATTICE_TOLERANCE,
            MAX_SIMPLEX_POINTS,
            check_lattice,
        )

        check_exact(hypothesis, group)
        check_grid_memory(hypothesis, group, options.get("grid_points"), max_memory)
        # here, not in the engine (which fits group by group, and again per zoom): said once,
        # at the caller's line
        error = check_lattice(hypothesis, options.get("max_simplex_points") or MAX_SIMPLEX_POINTS)
    posterior = _engine(engine)(group, hypothesis, table=table, seed=seed, **options)
    coarsened = posterior.diagnostics.get("lattice_coarsened_to")
    if engine == "exact" and coarsened and error <= LATTICE_TOLERANCE:  # (not said twice)
        why = ", coarsened to fit the memory budget beside the latent sites' grids"
        check_lattice(hypothesis, coarsened, why)
    return posterior
