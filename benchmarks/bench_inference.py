"""Inference speed: gradient cost, SVI, MCMC ESS/s and the exact engine, at 200 and 10,000 users.

Each data set is one group simulated under the default hypothesis with a mixed norm
(``simulate(..., users=U, rounds=U, epochs=5)``: ``5 U`` games, so every user takes part in
exactly 10 events, 5 as proposer and 5 as responder). Two hypotheses are fitted: ``neutral``
(only ``pi`` latent) and ``latent_lam`` (``Hypothesis(rationality_scale=0.3)``: ``pi`` and
``lam`` latent). Sections (``--sections``):

* ``grad``: milliseconds per gradient of the log density. ``marginal``: the potential energy
  of :func:`scai.models.marginal.marginal_model` made by ``pyro.infer.mcmc.util.initialize_model``
  exactly as :mod:`scai.inference.mcmc` makes it, differentiated by
  ``pyro.ops.integrator.potential_grad`` (what NUTS calls once per leapfrog step).
  ``enumerated``: one ``loss_and_grads`` of ``TraceEnum_ELBO`` (or ``JitTraceEnum_ELBO``) on
  :func:`scai.models.model.social_contract_model` with the ``AutoNormal`` guide of
  :mod:`scai.inference.svi` (one ELBO particle: what one SVI step differentiates).
* ``svi``: :func:`scai.inference.svi.fit_svi` with its default settings, without and with JIT:
  wall time to convergence (the whole call) and steady-state steps per second (time inside
  ``SVI.step``, the first step, which traces the JIT, excluded).
* ``mcmc``: :func:`scai.inference.mcmc.fit_mcmc` with 2 chains, ``parallel=True`` and ``False``:
  ESS/s = the smallest bulk ESS over the continuous sites (``scai.inference.diagnostics
  .min_bulk_ess``) divided by the wall time of the whole call (warmup included).
* ``profile``: one MCMC chain run in this process with ``potential_grad`` timed: the share
  of NUTS wall time spent computing the potential and its gradient, and the rest (Pyro's
  per-step overhead).
* ``exact``: :func:`scai.inference.exact.fit_exact` (default grid), median of ``--repeats`` calls
  after one warm-up call.

Prints markdown tables and, unless ``--quick``, writes them to
``benchmarks/results_inference.md`` with the command, machine, versions and date. Run from the
project root::

    .venv/bin/python benchmarks/bench_inference.py            # the full run (~20-40 min)
    .venv/bin/python benchmarks/bench_inference.py --quick    # smoke run (~1-2 min)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import inspect
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyro
import torch

from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.simulate import simulate

# The marginal model's sparse counts matrix warns (beta API) in every process, chains included.
warnings.filterwarnings("ignore", message=".*[Ss]parse", category=UserWarning)

MIXTURE = "selfish=0.5,fair=0.3,altruistic=0.2"
EVENTS_PER_USER = 10  # epochs=5 x 2 games per user per epoch (rounds = users)
HYPOTHESES = {
    "neutral": Hypothesis(),
    "latent_lam": Hypothesis(name="latent_lam", rationality_scale=0.3),
}
# The targets.
TARGET_EXACT_S = 1.0  # exact posterior for 10,000 users
TARGET_SVI_S = 5.0  # SVI to convergence on 200 users
TARGET_ESS_PER_S = 30.0  # MCMC on 200 users
RESULTS = Path(__file__).with_name("results_inference.md")


def _mcmc_defaults() -> dict[str, int]:
    from scai.inference.mcmc import fit_mcmc

    params = inspect.signature(fit_mcmc).parameters
    return {k: params[k].default for k in ("warmup", "samples")}


MCMC_DEFAULTS = _mcmc_defaults()


# -- data and machine -------------------------------------------------------------------------
@dataclass
class Dataset:
    users: int
    table: object  # pandas.DataFrame
    data: GroupData

    @property
    def games(self) -> int:
        return len(self.table)


def make_dataset(users: int, seed: int = 1) -> Dataset:
    """One group of ``users`` users, each in ``EVENTS_PER_USER`` events, mixed norm."""
    sim = simulate(
        Hypothesis(), policy=MIXTURE, users=users, rounds=users, epochs=5, sims=1, seed=seed
    )
    return Dataset(users, sim.interactions, GroupData.from_table(sim.interactions))


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


def machine_lines() -> list[str]:
    model = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
            model,
        )
    versions = f"Python {platform.python_version()}, torch {torch.__version__}, pyro-ppl "
    versions += pyro.__version__
    return [
        f"- machine: {model}, `nproc` = {os.cpu_count()}",
        f"- software: {versions}",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
    ]


# -- timing helpers ---------------------------------------------------------------------------
def per_call(fn: Callable[[], object], repeats: int, block_s: float = 0.3) -> list[float]:
    """Seconds per call of ``fn``: ``repeats`` blocks of calls, each block at least
    ``block_s`` long, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-6)
    n = max(1, int(block_s / one))
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - start) / n)
    return out


class CallTimer:
    """Replaces ``owner.name`` (a function or method) by a wrapper that records the wall time
    of each call, for the duration of a ``with`` block."""

    def __init__(self, *targets: tuple[object, str]):
        self.targets = targets
        self.times: list[float] = []
        self._saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> CallTimer:
        for owner, name in self.targets:
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._wrap(original))
        return self

    def _wrap(self, original):
        times = self.times

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times.append(time.perf_counter() - start)

        return timed

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)


@dataclass
class Table:
    title: str
    header: list[str]
    align: str  # one of "l" / "r" per column
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "|".join("---:" if a == "r" else "---" for a in self.align) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += self.notes
        return "\n".join(lines)


def fmt(x: float, digits: int = 2) -> str:
    if x != x:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def short_error(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:64].replace("|", "/") + "..."


# -- sections ---------------------------------------------------------------------------------
def marginal_gradient(data: GroupData, hyp: Hypothesis, jit: bool) -> Callable[[], object]:
    """``potential_grad`` of the marginal model's potential, built as inference.mcmc does."""
    from pyro.infer.autoguide.initialization import init_to_median
    from pyro.infer.mcmc.util import initialize_model
    from pyro.ops.integrator import potential_grad

    from scai.models.marginal import EventIndex, marginal_model, tone_loglik

    index = EventIndex.from_data(data)
    tones = tone_loglik(data, hyp)
    pyro.set_rng_seed(0)
    init, potential_fn, _, _ = initialize_model(
        marginal_model,
        model_args=(data, hyp, index, tones),
        jit_compile=jit,
        skip_jit_warnings=True,
        init_strategy=init_to_median(num_samples=15),
    )
    params = {k: v.detach() for k, v in init.items()}
    return lambda: potential_grad(potential_fn, params)


def potential_gradient(data: GroupData, hyp: Hypothesis, jit: bool) -> Callable[[], object]:
    """``potential_grad`` of the torch reference of :class:`scai.models.density.MarginalDensity`
    (``log_joint``, autograd)."""
    from scai.models.density import MarginalDensity

    density = MarginalDensity(data, hyp)
    return _potential_grad_of(lambda theta: -density.log_joint(theta).sum(), density, jit)


def hand_gradient(data: GroupData, hyp: Hypothesis, jit: bool) -> Callable[[], object]:
    """``potential_grad`` of :class:`scai.models.density.MarginalDensity` (its NumPy backend,
    the gradient by hand), as NUTS in inference.mcmc calls it."""
    from scai.models.density import MarginalDensity

    density = MarginalDensity(data, hyp)
    return _potential_grad_of(density, density, jit)


def _potential_grad_of(potential, density, jit: bool) -> Callable[[], object]:
    from pyro.ops.integrator import potential_grad

    if jit:
        raise NotImplementedError("inference.mcmc runs this potential eagerly only")
    params = {"theta": density.initial()}
    return lambda: potential_grad(lambda z: potential(z["theta"]), params)


def enumerated_gradient(data: GroupData, hyp: Hypothesis, jit: bool) -> Callable[[], object]:
    """One ``loss_and_grads`` of (Jit)TraceEnum_ELBO with inference.svi's guide."""
    from pyro.infer import JitTraceEnum_ELBO, TraceEnum_ELBO
    from pyro.infer.autoguide import AutoNormal, init_to_median

    from scai.inference.draws import latent_sites
    from scai.models.model import MAX_PLATE_NESTING, social_contract_model

    pyro.clear_param_store()
    pyro.set_rng_seed(0)

    def model():
        return social_contract_model(data, hyp)

    guide = AutoNormal(
        pyro.poutine.block(model, expose=list(latent_sites(hyp))), init_loc_fn=init_to_median
    )
    guide()
    elbo = (JitTraceEnum_ELBO if jit else TraceEnum_ELBO)(
        max_plate_nesting=MAX_PLATE_NESTING, ignore_jit_warnings=True
    )
    store = pyro.get_param_store()
    params = [store.get_param(name).unconstrained() for name in store.get_all_param_names()]

    def step():
        elbo.loss_and_grads(model, guide)
        for p in params:
            p.grad = None

    return step


def section_grad(datasets: list[Dataset], repeats: int) -> Table:
    table = Table(
        "Per-gradient cost of the log density",
        ["users", "hypothesis", "log density", "JIT", "ms / gradient", "min", "max"],
        "rlllrrr",
    )
    builders = (
        ("MarginalDensity, NumPy backend (inference.mcmc: gradient by hand)", hand_gradient),
        ("MarginalDensity, torch reference (autograd)", potential_gradient),
        ("marginal_model via initialize_model", marginal_gradient),
        ("enumerated (TraceEnum_ELBO)", enumerated_gradient),
    )
    for ds in datasets:
        for hname, hyp in HYPOTHESES.items():
            for label, build in builders:
                for jit in (False, True):
                    if jit and build in (potential_gradient, hand_gradient):
                        continue
                    row = [str(ds.users), hname, label, "yes" if jit else "no"]
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            times = per_call(build(ds.data, hyp, jit), repeats)
                        ms = [t * 1e3 for t in times]
                        row += [fmt(statistics.median(ms)), fmt(min(ms)), fmt(max(ms))]
                    except Exception as err:  # report, do not stop the run
                        row += [f"fails ({short_error(err)})", "", ""]
                    table.rows.append(row)
                    print("  grad:", " | ".join(row), flush=True)
    return table


def _svi_step_kwarg(step):
    """``SVI.step(None)`` -> ``SVI.step()``: JitTraceEnum_ELBO cannot trace a ``None``
    positional argument, which ``fit_svi`` passes when it does not subsample."""

    def step_without_none(self, *args, **kwargs):
        if args == (None,):
            args = ()
        return step(self, *args, **kwargs)

    return step_without_none


def run_svi(ds: Dataset, hyp: Hypothesis, jit: bool, opts: dict, shim: bool):
    """``(wall s, first step s, steady steps/s, steps, converged)`` of one fit_svi call."""
    from pyro.infer import SVI

    from scai.inference.svi import ConvergenceWarning, fit_svi

    original = SVI.step
    if shim:
        SVI.step = _svi_step_kwarg(original)
    try:
        with CallTimer((SVI, "step")) as timer, warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            post = fit_svi(ds.data, hyp, table=ds.table, seed=0, jit=jit, **opts)
            wall = time.perf_counter() - start
    finally:
        SVI.step = original
    rest = timer.times[1:]
    rate = len(rest) / sum(rest) if rest else float("nan")
    return wall, timer.times[0], rate, post.diagnostics["steps"], post.diagnostics["converged"]


def section_svi(datasets: list[Dataset], options: dict[int, dict], repeats: int) -> Table:
    table = Table(
        "SVI (inference.svi.fit_svi)",
        [
            "users",
            "hypothesis",
            "JIT",
            "steps",
            "converged",
            "first step (ms)",
            "steps/s",
            "time to convergence (s)",
        ],
        "rllrlrrr",
    )
    # Warm-up: the first SVI step of a process pays one-off costs (about 2 s here).
    warm = {"max_steps": 2, "min_steps": 1, "window": 1, "num_draws": 10}
    for jit in (False, True):
        with contextlib.suppress(Exception):
            run_svi(datasets[0], Hypothesis(), jit, warm, shim=jit)
    shimmed = False
    for ds in datasets:
        opts = options.get(ds.users, {})
        for hname, hyp in HYPOTHESES.items():
            for jit in (False, True):
                label = "yes" if jit else "no"
                runs = []
                try:
                    runs = [run_svi(ds, hyp, jit, opts, shim=False) for _ in range(repeats)]
                except Exception as err:  # report, then time the workaround
                    if not jit:
                        raise
                    row = [str(ds.users), hname, label, f"fails ({short_error(err)})"]
                    table.rows.append(row + [""] * 4)
                    print("  svi:", " | ".join(row), flush=True)
                    label, shimmed = "yes*", True
                    runs = [run_svi(ds, hyp, jit, opts, shim=True) for _ in range(repeats)]
                walls, firsts, rates, steps, converged = zip(*runs, strict=True)
                row = [
                    str(ds.users),
                    hname,
                    label,
                    str(steps[-1]),
                    "yes" if converged[-1] else "no",
                    fmt(statistics.median(firsts) * 1e3, 1),
                    fmt(statistics.median(rates), 1),
                    fmt(statistics.median(walls)),
                ]
                table.rows.append(row)
                print("  svi:", " | ".join(row), flush=True)
        if opts:
            shown = ", ".join(f"{k}={v}" for k, v in opts.items())
            table.notes.append(f"- {ds.users} users: fit_svi({shown}) instead of the defaults.")
    table.notes.append(
        "- steps/s: steady state, time inside `SVI.step` without the first step (which traces "
        "the JIT); time to convergence: the whole `fit_svi` call (guide set-up, every step, "
        "1,000 posterior draws and per-user type probabilities)."
    )
    if shimmed:
        table.notes.append(
            "- JIT `yes*`: `fit_svi(jit=True)` fails as shipped (it calls `svi.step(None)` and "
            "`JitTraceEnum_ELBO` cannot trace a `None` argument); timed here with `SVI.step` "
            "patched to drop that `None` (passing `subsample` by keyword would fix it)."
        )
    return table


def timed_mcmc(
    ds: Dataset, hyp: Hypothesis, parallel: bool, seed: int = 0, cold: bool = True, **options
):
    """``fit_mcmc`` with 2 chains, warnings silenced: ``(posterior, wall seconds, min bulk
    ESS)``; the wall time covers the whole call, warmup included, and with ``parallel`` and
    ``cold`` the start of the worker processes (``scai.inference.workers``; a program's later calls
    reuse them)."""
    from scai.inference.diagnostics import min_bulk_ess
    from scai.inference.mcmc import fit_mcmc
    from scai.inference.workers import shutdown_workers, worker_pool

    if parallel and cold:
        shutdown_workers()
    elif parallel:  # started and warm: every worker has imported what a chain needs
        list(worker_pool(2).map(_import_chain_modules, range(2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        post = fit_mcmc(
            ds.data, hyp, table=ds.table, seed=seed, num_chains=2, parallel=parallel, **options
        )
        wall = time.perf_counter() - start
    return post, wall, min_bulk_ess(post)


def _import_chain_modules(_: int) -> None:
    import scai.inference.mcmc  # noqa: F401


def section_mcmc(datasets: list[Dataset], options: dict[int, dict]) -> Table:
    table = Table(
        "MCMC (inference.mcmc.fit_mcmc, 2 chains)",
        [
            "users",
            "hypothesis",
            "parallel",
            "warmup + samples",
            "leapfrog steps / iteration",
            "min bulk ESS",
            "max r_hat",
            "divergences",
            "wall (s)",
            "ESS/s",
        ],
        "rllrrrrrrr",
    )
    for ds in datasets:
        opts = {**MCMC_DEFAULTS, **options.get(ds.users, {})}
        for hname, hyp in HYPOTHESES.items():
            for parallel, cold in ((True, True), (True, False), (False, False)):
                post, wall, ess = timed_mcmc(ds, hyp, parallel, cold=cold, **opts)
                diag = post.diagnostics
                row = [
                    str(ds.users),
                    hname,
                    ("yes, new processes" if cold else "yes, warm processes") if parallel else "no",
                    f"{opts['warmup']} + {opts['samples']}",
                    fmt(float(np.mean(post.sample_stats["n_steps"])), 1),
                    fmt(ess, 0),
                    f"{max(diag['r_hat'].values()):.3f}",
                    str(diag["divergences"]),
                    fmt(wall, 1),
                    fmt(ess / wall, 1),
                ]
                table.rows.append(row)
                print("  mcmc:", " | ".join(row), flush=True)
    table.notes.append(
        "- leapfrog steps / iteration: mean over the kept draws (one gradient each)."
    )
    table.notes.append(
        "- parallel: one process per chain from `scai.inference.workers`; 'new processes' counts "
        "starting them (spawn + imports, ~3 s), 'warm processes' is a later call of the same "
        "program, which reuses them (same seed, so the same draws)."
    )
    for users, opts in options.items():
        if opts and any(ds.users == users for ds in datasets):
            shown = ", ".join(f"{k}={v}" for k, v in opts.items())
            table.notes.append(
                f"- {users} users: fit_mcmc({shown}) instead of the defaults "
                f"({MCMC_DEFAULTS['warmup']} + {MCMC_DEFAULTS['samples']})."
            )
    return table


def section_profile(datasets: list[Dataset], options: dict[int, dict]) -> Table:
    """One chain in this process, with ``potential_grad`` timed wherever NUTS calls it."""
    import pyro.infer.mcmc.hmc
    import pyro.infer.mcmc.nuts
    import pyro.infer.mcmc.util
    import pyro.ops.integrator

    from scai.inference.mcmc import game_chain_problem
    from scai.inference.nuts import ChainTask, run_chain

    table = Table(
        "Where one NUTS chain's time goes (inference.mcmc, one chain in-process)",
        [
            "users",
            "hypothesis",
            "iterations",
            "gradients",
            "wall (s)",
            "in potential + gradient (s)",
            "share",
            "ms / gradient",
            "other ms / gradient (NUTS overhead)",
        ],
        "rlrrrrrrr",
    )
    owners = (pyro.ops.integrator, pyro.infer.mcmc.nuts, pyro.infer.mcmc.hmc, pyro.infer.mcmc.util)
    threads = torch.get_num_threads()
    for ds in datasets:
        opts = {**MCMC_DEFAULTS, **options.get(ds.users, {})}
        for hname, hyp in HYPOTHESES.items():
            with (
                CallTimer(*((m, "potential_grad") for m in owners)) as timer,
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                try:
                    task = ChainTask(
                        game_chain_problem,
                        (ds.data, hyp),
                        seed=0,
                        chain=0,
                        warmup=opts["warmup"],
                        samples=opts["samples"],
                    )
                    run_chain(task)
                finally:
                    torch.set_num_threads(threads)
                wall = time.perf_counter() - start
            grads, inside = len(timer.times), sum(timer.times)
            row = [
                str(ds.users),
                hname,
                str(opts["warmup"] + opts["samples"]),
                f"{grads:,}",
                fmt(wall, 1),
                fmt(inside, 1),
                f"{inside / wall:.0%}",
                fmt(inside / grads * 1e3),
                fmt((wall - inside) / grads * 1e3),
            ]
            table.rows.append(row)
            print("  profile:", " | ".join(row), flush=True)
    table.notes.append(
        "- wall includes building the potential and the chain; "
        "'other' is everything outside `potential_grad`, spread over the gradients."
    )
    return table


def section_exact(datasets: list[Dataset], repeats: int) -> Table:
    from scai.inference.exact import fit_exact

    table = Table(
        "Exact engine (inference.exact.fit_exact, default grid)",
        ["users", "hypothesis", "grid (theta x pi)", "median (s)", "min (s)", "max (s)"],
        "rllrrr",
    )
    for ds in datasets:
        for hname, hyp in HYPOTHESES.items():
            start = time.perf_counter()
            post = fit_exact(ds.data, hyp, table=ds.table)  # warm-up
            slow = time.perf_counter() - start > 10
            grid = "x".join(str(g) for g in post.diagnostics["grid_size"])
            times = []
            for _ in range(min(repeats, 2) if slow else repeats):
                start = time.perf_counter()
                fit_exact(ds.data, hyp, table=ds.table)
                times.append(time.perf_counter() - start)
            row = [
                str(ds.users),
                hname,
                grid,
                f"{statistics.median(times):.3f}",
                f"{min(times):.3f}",
                f"{max(times):.3f}",
            ]
            table.rows.append(row)
            print("  exact:", " | ".join(row), flush=True)
    table.notes.append(
        "- grid: latent-scalar points x simplex-lattice points for pi; calls slower than 10 s "
        "are repeated at most twice."
    )
    return table


def targets_table(tables: dict[str, Table], small: int, large: int) -> Table:
    """The issue's targets against the measured figures."""
    out = Table("Targets", ["target", "measured", "met"], "llr")

    def rows(name: str, users: int):
        return [r for r in tables[name].rows if r[0] == str(users)] if name in tables else []

    for r in rows("exact", large):
        t = float(r[3])
        out.rows.append(
            [
                f"exact posterior, {large:,} users ({r[1]}) < {TARGET_EXACT_S:g} s",
                f"{t:.3f} s",
                "yes" if t < TARGET_EXACT_S else "**no**",
            ]
        )
    for r in rows("svi", small):
        if r[3].startswith("fails"):
            continue
        t = float(r[7].replace(",", ""))
        ok = t < TARGET_SVI_S and r[4] == "yes"
        out.rows.append(
            [
                f"SVI to convergence, {small} users ({r[1]}, JIT {r[2]}) < {TARGET_SVI_S:g} s",
                f"{t:.2f} s ({r[3]} steps)",
                "yes" if ok else "**no**",
            ]
        )
    for r in rows("mcmc", small):
        rate = float(r[9].replace(",", ""))
        out.rows.append(
            [
                f"MCMC, {small} users ({r[1]}, parallel {r[2]}) >= {TARGET_ESS_PER_S:g} ESS/s",
                f"{rate:.1f} ESS/s",
                "yes" if rate >= TARGET_ESS_PER_S else "**no**",
            ]
        )
    return out


# -- main -------------------------------------------------------------------------------------
SECTIONS = ("grad", "exact", "svi", "mcmc", "profile")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 50 and 500 users, few iterations, nothing written unless --output",
    )
    parser.add_argument("--small", type=int, default=200, help="users in the small data set")
    parser.add_argument("--large", type=int, default=10_000, help="users in the large data set")
    parser.add_argument(
        "--sizes", choices=("both", "small", "large"), default="both", help="data sets to use"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, from {SECTIONS}"
    )
    parser.add_argument("--repeats", type=int, default=5, help="for grad and exact")
    parser.add_argument("--svi-repeats", type=int, default=1)
    parser.add_argument(
        "--large-svi-max-steps",
        type=int,
        default=1000,
        help="SVI max_steps on the large set (0: fit_svi's default)",
    )
    parser.add_argument("--large-mcmc-warmup", type=int, default=200)
    parser.add_argument("--large-mcmc-samples", type=int, default=200)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads of this process (MCMC chains always use 1)",
    )
    parser.add_argument("--output", type=Path, default=None, help=f"default: {RESULTS.name}")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; allowed: {', '.join(SECTIONS)}")
    if args.quick:
        args.small, args.large, args.repeats = 50, 500, 2
    torch.set_num_threads(args.threads)

    svi_opts: dict[int, dict] = {}
    mcmc_opts: dict[int, dict] = {
        args.large: {"warmup": args.large_mcmc_warmup, "samples": args.large_mcmc_samples}
    }
    if args.large_svi_max_steps:
        svi_opts[args.large] = {"max_steps": args.large_svi_max_steps}
    if args.quick:
        mcmc_opts = {n: {"warmup": 50, "samples": 50} for n in (args.small, args.large)}
        svi_opts = {n: {"max_steps": 300} for n in (args.small, args.large)}

    load_before = load_average()
    command = ".venv/bin/python benchmarks/bench_inference.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    print(f"$ {command.strip()}")
    print(f"load average before: {load_before}; torch threads: {torch.get_num_threads()}")
    start_all = time.perf_counter()
    datasets = []
    sizes = {"both": (args.small, args.large), "small": (args.small,), "large": (args.large,)}
    for users in sizes[args.sizes]:
        ds = make_dataset(users)
        datasets.append(ds)
        print(f"data: {users} users, {ds.games} games, GroupData shape {ds.data.shape}")

    output = args.output or (None if args.quick else RESULTS)

    def report(tables: dict[str, Table], final: bool) -> str:
        tables = {**tables, "targets": targets_table(tables, args.small, args.large)}
        header = [
            "## Inference benchmark results" + ("" if final else " (partial: run in progress)"),
            "",
            f"- command: `{command.strip()}`",
            *machine_lines(),
            f"- torch intra-op threads in the benchmark process: {args.threads} "
            "(each MCMC chain sets 1)",
            f"- load average (1, 5, 15 min) before: {load_before}; "
            f"{'after' if final else 'now'}: {load_average()} "
            f"({time.perf_counter() - start_all:.0f} s so far)",
            f"- data: one group, {EVENTS_PER_USER} events per user, norm {MIXTURE}: "
            + ", ".join(f"{d.users:,} users ({d.games:,} games)" for d in datasets),
            "",
        ]
        order = ["targets", *SECTIONS]
        body = "\n\n".join(tables[k].render() for k in order if k in tables)
        text = "\n".join(header) + "\n" + body
        if output is not None:  # after every section, so that a crash loses little
            output.write_text(text + "\n")
        return text

    tables: dict[str, Table] = {}
    for name in SECTIONS:  # a fixed order: the cheap sections first
        if name not in sections:
            continue
        print(f"[{name}] load average {load_average()}", flush=True)
        if name == "grad":
            tables[name] = section_grad(datasets, args.repeats)
        elif name == "exact":
            tables[name] = section_exact(datasets, args.repeats)
        elif name == "svi":
            tables[name] = section_svi(datasets, svi_opts, args.svi_repeats)
        elif name == "mcmc":
            tables[name] = section_mcmc(datasets, mcmc_opts)
        elif name == "profile":
            tables[name] = section_profile(datasets[:1], mcmc_opts)
        report(tables, final=False)
    text = report(tables, final=True)
    print()
    print(text)
    if output is not None:
        print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
