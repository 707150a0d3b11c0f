"""One NUTS runner for every model: one chain from a potential, and many chains over processes.

A model describes what NUTS samples as a :class:`ChainProblem`: the potential energy
``U(z) = -log p(z)`` of a dict of unconstrained sites ``z``, a starting point, and optionally
Pyro transforms to constrained space (applied to the draws), a function that maps the draws to
the model's sites, and an initial inverse mass matrix. Starting points are random (a jittered
mode, or Pyro's ``init_to_median``), so a chain's problem is built by its :class:`ChainTask`'s
``setup(*args)`` *after* the chain's seed (:func:`chain_seed`) is set: each ``(seed, chain)``
then gives the same draws wherever it runs, in this process or in a worker. A problem may bring
a ``move`` applied after every NUTS iteration (:data:`scai.inference.hmc.Move`; the Gibbs step
on the clone prototype of :class:`scai.inference.sheets.Sheets`), which draws from a generator
of its own (:func:`move_rng`).

:func:`run_chain` runs one task (warmup, then ``samples`` kept iterations with
:class:`RecordingNUTS`'s statistics); :func:`run_chains` runs a list of tasks in the program's
worker processes (:mod:`scai.inference.workers`) or one after another here. Both the
social-contract engine (:mod:`scai.inference.mcmc`) and the human-data responder fits use them.

:func:`run_lockstep` runs several chains of one :class:`LockstepProblem` in this process through
one batched potential (:func:`scai.inference.hmc.sample_nuts_lockstep`): the problem is set up
once, and one call serves a gradient of every chain. Chain ``c``'s start is drawn under the
same seed as its :class:`ChainTask`'s.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer.mcmc import MCMC, NUTS

from scai.inference.compiled import compiled_enabled, sample_chains
from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.hmc import StruggleMonitor, sample_nuts, sample_nuts_lockstep
from scai.inference.progress import progress_bar
from scai.inference.workers import shutdown_workers, worker_pool
from scai.models.errors import MAX_SEED

#: ``move(chain, z, rng) -> (z' | None, record)``: a problem's step between NUTS iterations.
MoveStep = Callable[[int, np.ndarray, np.random.Generator], tuple[np.ndarray | None, np.ndarray]]
#: What :class:`RecordingNUTS` records per iteration (ArviZ's ``sample_stats`` names).
STAT_NAMES = (
    "diverging",
    "step_size",
    "tree_depth",
    "n_steps",
    "energy",
    "lp",
    "acceptance_rate",
)


class RecordingNUTS(NUTS):
    """NUTS that records, per iteration, what ArviZ's ``sample_stats`` expects: ``diverging``,
    ``step_size``, ``tree_depth``, ``n_steps`` (leapfrog steps), ``energy`` (the Hamiltonian
    after the momentum refresh), ``lp`` (the log density of the kept state) and
    ``acceptance_rate`` (the mean Metropolis acceptance probability over the trajectory's
    states: the statistic the step size adapts towards ``target_accept``)."""

    def __init__(self, *args: Any, initial_inverse_mass: torch.Tensor | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.initial_inverse_mass = initial_inverse_mass
        self.stats: dict[str, list] = {k: [] for k in STAT_NAMES}
        counted = self.potential_fn

        def counting_potential(params):
            self._n_evals += 1
            return counted(params)

        self.potential_fn = counting_potential
        self._n_evals = 0
        self._kinetic = 0.0

    def _initialize_adapter(self):
        """Pyro starts from a unit mass matrix; use ``initial_inverse_mass`` if given (and
        find the step size again for it). Adaptation then proceeds as usual."""
        super()._initialize_adapter()
        if self.initial_inverse_mass is not None:
            (block,) = self._adapter.mass_matrix_adapter.inverse_mass_matrix
            self._adapter.mass_matrix_adapter.inverse_mass_matrix = {
                block: self.initial_inverse_mass
            }
            if self._adapter.adapt_step_size:
                self._adapter.reset_step_size_adaptation(self._initial_params)

    def _sample_r(self, name):
        r, r_unscaled = super()._sample_r(name)
        self._kinetic = float(self._kinetic_energy(r_unscaled))
        return r, r_unscaled

    def sample(self, params):
        z, potential, _ = self._fetch_from_cache()
        if z is None:
            potential = self.potential_fn(params)
        start_potential = float(potential)
        n_div = len(self._divergences)
        self._n_evals = 0
        step_size = float(self.step_size)
        mean_before = self._mean_accept_prob
        out = super().sample(params)
        # Pyro keeps only a running mean of the acceptance statistic, over the warmup and then
        # afresh over the samples; the iteration's own value is the mean's last increment.
        n = self._t - self._warmup_steps if self._t > self._warmup_steps else self._t
        accept = self._mean_accept_prob * n - mean_before * (n - 1)
        _, new_potential, _ = self._fetch_from_cache()
        n_steps = self._n_evals
        self.stats["diverging"].append(len(self._divergences) > n_div)
        self.stats["step_size"].append(step_size)
        self.stats["n_steps"].append(n_steps)
        self.stats["tree_depth"].append(int(math.ceil(math.log2(n_steps + 1))) if n_steps else 0)
        self.stats["energy"].append(start_potential + self._kinetic)
        self.stats["lp"].append(-float(new_potential) if new_potential is not None else np.nan)
        self.stats["acceptance_rate"].append(min(1.0, max(0.0, float(accept))))
        return out


@dataclass
class ChainProblem:
    """What one chain samples: ``potential_fn(z)`` of unconstrained sites ``z`` (a dict of
    tensors), the start ``initial_params``; Pyro ``transforms`` from constrained to
    unconstrained space (their inverses are applied to the draws), ``constrain`` mapping the
    draws ``{site: [samples, ...]}`` to the model's sites, and the ``initial_inverse_mass``
    (diagonal) to adapt from.

    A problem with one site whose potential has a NumPy gradient, ``value_and_grad(z) ->
    (U(z), dU/dz)`` on that site's flat vector, runs on the lean NUTS of
    :mod:`scai.inference.hmc` instead of Pyro's, watched by its
    :class:`~scai.inference.hmc.StruggleMonitor`: ``names`` are the parameters a struggling
    chain's message may name, and ``unscale`` maps positions ``[n, d]`` to them; ``move(chain,
    z, rng) -> (z' | None, record)`` is applied after every iteration
    (:data:`scai.inference.hmc.Move`; ``chain``: the chain's index in the problem, 0 here;
    ``rng``: its :func:`move_rng`)."""

    potential_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    initial_params: dict[str, torch.Tensor]
    transforms: dict[str, Any] | None = None
    constrain: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    initial_inverse_mass: torch.Tensor | None = None
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None
    names: Sequence[str] | None = None
    unscale: Callable[[np.ndarray], np.ndarray] | None = None
    move: MoveStep | None = None


@dataclass
class LockstepProblem:
    """What ``chains`` chains sample together, each on the same ``d`` unconstrained numbers
    (one site, ``site``): ``values_and_grads(q [chains, d]) -> (U [chains], dU/dq [chains,
    d])``; ``start()`` draws one chain's start from torch's global generator (seeded per
    chain); ``constrain`` maps one chain's draws ``{site: [samples, d]}`` to the model's
    sites; ``names`` and ``unscale`` as in :class:`ChainProblem`."""

    values_and_grads: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    start: Callable[[], torch.Tensor]
    chains: int
    site: str
    constrain: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    names: Sequence[str] | None = None
    unscale: Callable[[np.ndarray], np.ndarray] | None = None
    move: MoveStep | None = None
    #: where the potential has a compiled form (:class:`scai.inference.compiled.PiModel`),
    #: the chains may run in compiled code
    compiled: Any = None


@dataclass(frozen=True)
class ChainTask:
    """One chain to run: ``setup(*args)`` builds its :class:`ChainProblem` once the chain's
    seed is set (``setup`` is a module-level function, so a task can go to a worker);
    ``warmup + samples`` iterations, the dual-averaging target acceptance, a dense mass
    matrix or a diagonal one (Pyro's NUTS; the lean one adapts a diagonal one); ``progress``
    shows a bar, ``speak`` prints a struggling chain's messages as they come (lean NUTS)."""

    setup: Callable[..., ChainProblem]
    args: tuple
    seed: int
    chain: int
    warmup: int
    samples: int
    target_accept: float = 0.8
    full_mass: bool = False
    progress: bool = False
    speak: bool = False  # print the struggle monitor's messages on stderr as they come


@dataclass
class ChainResult:
    """A finished chain: the model's sites ``[samples, ...]`` (constrained, detached), the
    kept iterations' statistics ``[samples]``, the chain's wall time (setup included) and
    what the struggle monitor reported while it ran (lean NUTS only)."""

    draws: dict[str, torch.Tensor]
    stats: dict[str, np.ndarray]
    seconds: float
    problems: list[str] = field(default_factory=list)
    compiled: bool = False  # run by the compiled NUTS (scai.inference.compiled)


class SamplerWarning(DiagnosticWarning):
    """A chain struggled while it ran (tiny step size, long trajectories, low E-BFMI,
    divergences); the message names the parameters and the likely cause."""


def chain_seed(seed: int, chain: int) -> int:
    """The random seed of chain ``chain`` of a fit seeded ``seed``, in ``0..MAX_SEED`` (it
    reaches ``numpy.random.seed``): ``seed * 1000 + chain`` where that fits (every fit seeded
    below ~4.3 million), otherwise ``(seed, chain)`` hashed into that range by NumPy's
    :class:`~numpy.random.SeedSequence` (the experiments' per-condition seeds reach 2**32)."""
    plain = seed * 1000 + chain
    if plain <= MAX_SEED:
        return plain
    return int(np.random.SeedSequence([seed, chain]).generate_state(1, np.uint32)[0])


def move_rng(seed: int, chain: int) -> np.random.Generator:
    """The generator of chain ``chain``'s moves between NUTS iterations (not NUTS's own)."""
    return np.random.default_rng((chain_seed(seed, chain), 1))


def _bind(move: MoveStep | None, chain: int, rng: np.random.Generator):
    """``move(chain, z, rng)`` as a :data:`scai.inference.hmc.Move` (``None`` stays ``None``)."""
    return None if move is None else (lambda z: move(chain, z, rng))


@contextmanager
def quiet_setup() -> Iterator[None]:
    """A chain problem's set-up with warnings silenced, but for scai's own
    :class:`DiagnosticWarning` (a mode the chains may miss: :mod:`scai.inference.mcmc`), shown
    once it is done."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", DiagnosticWarning)
        yield
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def run_chain(task: ChainTask) -> ChainResult:
    """Run one chain (module docstring) with one torch thread; torch's and Pyro's global
    random state is seeded with :func:`chain_seed` first (and the lean NUTS's generator)."""
    start = time.perf_counter()
    torch.set_num_threads(1)
    pyro.set_rng_seed(chain_seed(task.seed, task.chain))
    with quiet_setup():
        problem = task.setup(*task.args)
    if problem.value_and_grad is not None:
        return _run_lean_chain(task, problem, start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = RecordingNUTS(
            potential_fn=problem.potential_fn,
            transforms=problem.transforms,
            target_accept_prob=task.target_accept,
            full_mass=task.full_mass,
            initial_inverse_mass=problem.initial_inverse_mass,
        )
        mcmc = MCMC(
            kernel,
            num_samples=task.samples,
            warmup_steps=task.warmup,
            initial_params=problem.initial_params,
            transforms=problem.transforms,
            disable_progbar=not task.progress,
        )
        mcmc.run()
    draws = {k: v.detach() for k, v in mcmc.get_samples().items()}
    if problem.constrain is not None:
        draws = {k: v.detach() for k, v in problem.constrain(draws).items()}
    stats = {k: np.asarray(v[task.warmup :]) for k, v in kernel.stats.items()}
    return ChainResult(draws, stats, time.perf_counter() - start)


def _run_lean_chain(task: ChainTask, problem: ChainProblem, start: float) -> ChainResult:
    """A chain on :func:`scai.inference.hmc.sample_nuts`: a struggling chain is reported at
    once on stderr (above the progress bar, if any) and in the result's ``problems``."""
    ((site, initial),) = problem.initial_params.items()
    dtype = initial.dtype
    rng = np.random.default_rng(chain_seed(task.seed, task.chain))
    bar = progress_bar(task.warmup + task.samples, f"chain {task.chain}", not task.progress)

    def report(message: str) -> None:
        if task.speak or task.progress:
            bar.write(f"warning: chain {task.chain}: {message}", file=sys.stderr)

    d = initial.numel()
    monitor = StruggleMonitor(
        names=list(problem.names or [f"{site}[{j}]" for j in range(d)]),
        report=report,
        unscale=problem.unscale or (lambda x: x),
    )
    inv_mass = problem.initial_inverse_mass
    try:
        run = sample_nuts(
            problem.value_and_grad,
            initial.detach().double().numpy().reshape(-1),
            rng=rng,
            warmup=task.warmup,
            samples=task.samples,
            target_accept=task.target_accept,
            inv_mass=None if inv_mass is None else inv_mass.double().numpy(),
            monitor=monitor,
            on_iteration=bar.update,
            move=_bind(problem.move, 0, move_rng(task.seed, task.chain)),
        )
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return _chain_result(site, initial.shape, problem.constrain, run, task.warmup, dtype, seconds)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with one torch thread, restoring the count afterwards: what a chain
    runs on (a gradient of a few thousand numbers), and what building its posterior runs on
    (``[draws, S, U, K]`` for a group NUTS fits in seconds: measured on this 2-core machine
    beside other jobs, each user's log-likelihoods in 4 ms on one thread, 57 ms on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_lockstep(
    setup: Callable[..., LockstepProblem],
    args: tuple,
    *,
    seed: int,
    chains: int,
    warmup: int,
    samples: int,
    target_accept: float = 0.8,
    progress: bool = False,
    speak: bool = False,
    compiled: bool = True,
    first_chain: int = 0,
) -> list[ChainResult]:
    """``chains`` chains of ``setup(*args, chains)`` in this process, in lockstep (module
    docstring), with one torch thread (restored afterwards): chain ``c``'s start is drawn
    after seeding torch and Pyro with :func:`chain_seed` ``(seed, first_chain + c)``, and its
    NUTS generator is seeded the same (``first_chain``: chains numbered from there, as more
    chains of one fit). ``progress`` shows chain 0's bar; each result's ``seconds`` is the
    whole run's. With ``compiled`` and a problem that brings a compiled potential (and
    :func:`scai.inference.compiled.compiled_enabled`), the chains run one after another in
    compiled code (:func:`scai.inference.compiled.sample_chains`: the same draws to rounding)
    and the struggle monitor looks at them afterwards (its messages come at the end; the bar
    fills at the end)."""
    start = time.perf_counter()
    with one_torch_thread():
        with quiet_setup():
            problem = setup(*args, chains)
        starts = []
        for c in range(chains):
            pyro.set_rng_seed(chain_seed(seed, first_chain + c))
            starts.append(problem.start())
        dtype = starts[0].dtype
        d = starts[0].numel()
        bar = progress_bar(warmup + samples, "chain 0", not progress)
        monitors = []
        for c in range(chains):

            def report(message: str, c: int = c) -> None:
                if speak or progress:
                    bar.write(f"warning: chain {first_chain + c}: {message}", file=sys.stderr)

            monitors.append(
                StruggleMonitor(
                    names=list(problem.names or [f"{problem.site}[{j}]" for j in range(d)]),
                    report=report,
                    unscale=problem.unscale or (lambda x: x),
                )
            )
        positions = np.stack([x.detach().double().numpy().reshape(-1) for x in starts])
        rngs = [np.random.default_rng(chain_seed(seed, first_chain + c)) for c in range(chains)]
        use_compiled = compiled and problem.compiled is not None and compiled_enabled()
        try:
            if use_compiled:
                runs = sample_chains(
                    problem.compiled,
                    positions,
                    rngs,
                    warmup=warmup,
                    samples=samples,
                    target_accept=target_accept,
                    monitors=monitors,
                )
                bar.update(warmup + samples)
            else:
                runs = sample_nuts_lockstep(
                    problem.values_and_grads,
                    positions,
                    rngs=rngs,
                    warmup=warmup,
                    samples=samples,
                    target_accept=target_accept,
                    monitors=monitors,
                    on_iteration=[bar.update] + [None] * (chains - 1),
                    moves=[
                        _bind(problem.move, c, move_rng(seed, first_chain + c))
                        for c in range(chains)
                    ],
                )
        finally:
            bar.close()
    seconds = time.perf_counter() - start
    results = [
        _chain_result(problem.site, (d,), problem.constrain, run, warmup, dtype, seconds)
        for run in runs
    ]
    for result in results:
        result.compiled = use_compiled
    return results


def _chain_result(site, shape, constrain, run, warmup, dtype, seconds) -> ChainResult:
    """A :class:`ChainResult` of a lean NUTS run (:class:`~scai.inference.hmc.NutsRun`) on
    one site of ``shape``, its kept draws constrained."""
    samples = len(run.draws)
    draws = {site: torch.as_tensor(run.draws, dtype=dtype).reshape(samples, *shape)}
    if constrain is not None:
        draws = {k: v.detach() for k, v in constrain(draws).items()}
    stats = {k: run.stats["accept" if k == "acceptance_rate" else k][warmup:] for k in STAT_NAMES}
    stats["diverging"] = stats["diverging"].astype(bool)
    stats["tree_depth"] = stats["tree_depth"].astype(np.int64)
    stats["n_steps"] = stats["n_steps"].astype(np.int64)
    return ChainResult(draws, stats, seconds, run.problems)


def run_chains(tasks: Sequence[ChainTask], workers: int | None = None) -> list[ChainResult]:
    """Every task's chain, in task order: in ``min(workers, len(tasks))`` of the program's
    worker processes (``None``: one per core), or one after another in this process when
    that is 1 (torch's thread count is restored afterwards)."""
    if not tasks:
        return []
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    if workers == 1:
        with one_torch_thread():  # run_chain sets one thread; restored on the way out
            return [run_chain(task) for task in tasks]
    try:
        pool = worker_pool(workers)
        futures = [pool.submit(run_chain, task) for task in tasks]
        return [future.result() for future in futures]
    except BrokenProcessPool as err:
        shutdown_workers()  # the next call starts fresh processes
        raise RuntimeError(
            "a chain's process died. Chains run in worker processes, which import the calling "
            "script again: call the fit under `if __name__ == '__main__':`, or run the chains "
            "in this process (fit_mcmc(parallel=False); human data: workers=1)"
        ) from err


def stack_chains(results: Sequence[ChainResult]) -> tuple[dict, dict[str, np.ndarray]]:
    """``(draws, stats)`` of finished chains, stacked: ``{site: [chains, samples, ...]}``
    (tensors) and ``{stat: [chains, samples]}``."""
    draws = {site: torch.stack([r.draws[site] for r in results]) for site in results[0].draws}
    stats = {k: np.stack([r.stats[k] for r in results]) for k in results[0].stats}
    return draws, stats
