"""NUTS compiled with numba, for the hypotheses whose only latent continuous site is ``pi``.

Where the action tables are fixed (no latent rationality or shifts) and there is no lapse,
learned coupling or clone, each user's log-likelihood under each type is a constant and the
potential is a function of ``pi`` alone (:meth:`scai.models.marginal_numpy.NumpyMarginal.
group_of_pi`): the presets ``neutral``, ``stereotyped`` and ``currency_invariant``. There the
lean NUTS of :mod:`scai.inference.hmc` spends nearly all its time in Python (~0.25 ms per
leapfrog step for a gradient of a few thousand flops), and this module runs the same sampler
and the same potential as machine code:

* :func:`pi_potential` is ``U(psi) = -log p(theta(psi), data)`` and its gradient on the
  sampler's coordinates, ``theta = mode + L psi`` per simulation (the Laplace whitening of
  :class:`scai.inference.mcmc.Whitening`), with ``theta`` the stick-breaking coordinates of
  ``pi``: the Dirichlet prior with its Jacobian (:meth:`scai.models.prior.GroupPrior.
  log_prob_unconstrained_np`) plus each user's mixture over types in the product form of
  ``group_of_pi`` (the log-sum-exp form for a user whose product underflows). Its arrays are
  the ones the NumPy backend built (:class:`PiModel`), nothing is derived again; a test holds
  its value and gradient equal to :meth:`scai.models.density.MarginalDensity.
  potentials_and_grad`.
* :func:`sample_chain` is :func:`scai.inference.hmc.sample_nuts` step for step: multinomial
  sampling, biased progressive sampling, the generalised no-U-turn criterion across merged
  subtrees, Stan's windows, the step-size search and dual averaging, drawing from the chain's
  ``np.random.Generator`` in the same order (numba's generator streams are NumPy's), so the
  two samplers make the same transitions to rounding on the same potential (a test runs both
  for a short run). Over a long run the rounding differences grow until the chains part: the
  same distribution, not the same draws, for one seed.
  No moves between iterations (no clones here) and no monitor while it runs: the struggle
  monitor looks at the recorded iterations afterwards (:meth:`scai.inference.hmc.
  StruggleMonitor.replay`, the same checks at the same iterations; messages come at the end
  of the run instead of while it runs).

Compilation is cached on disk (``cache=True``: in ``__pycache__`` beside this file, or, where
the install is read-only, in numba's user-wide cache under ``$XDG_CACHE_HOME/numba``;
``NUMBA_CACHE_DIR`` overrides both): compiling from scratch took 43-53 s on this 2-core
machine under load (once per install and change of these files), importing numba and loading
the kernels ~1 s once per process (``benchmarks/results_numpyro.md``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scai.inference.hmc import NutsRun, StruggleMonitor, adaptation_windows
from scai.inference.walls import WallCoordinates

__all__ = ["PiModel", "compiled_enabled", "pi_potential", "sample_chains"]

#: ``SCAI_COMPILED=0`` turns the compiled path off (the Python NUTS runs everywhere).
ENV = "SCAI_COMPILED"
#: Order of the statistics in the compiled run's ``[7, iterations]`` array.
STATS = ("accept", "diverging", "step_size", "tree_depth", "n_steps", "energy", "lp")


#: ``SCAI_COMPILED``'s values (any case, spaces around ignored): off, and on (unset: on).
ENV_OFF = ("0", "false", "no", "off")
ENV_ON = ("1", "true", "yes", "on", "")


def compiled_enabled() -> bool:
    """Whether the compiled path may run: not turned off by ``SCAI_COMPILED`` (0, false, no or
    off, in any case; 1, true, yes, on or empty leave it on; another value is an
    :class:`~scai.inference.errors.EngineError`: a fit is reproduced by its seed only with the
    same choice, so a misspelt one is not taken for either), and numba importable."""
    value = os.environ.get(ENV, "1").strip().lower()
    if value in ENV_OFF:
        return False
    if value not in ENV_ON:
        from scai.inference.errors import EngineError

        raise EngineError(
            f"environment variable {ENV}={os.environ[ENV]!r}: allowed {', '.join(ENV_OFF)} "
            f"(the Python sampler) or {', '.join(v for v in ENV_ON if v)} (compiled where it "
            "applies), in any case"
        )
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency
        return False
    return True


@dataclass(frozen=True)
class PiModel:
    """The arrays of :func:`pi_potential`, for ``S`` simulations of ``K`` types (``W = K -
    1`` sticks each) and ``U`` users: the whitening ``mode [S, W]``, ``cholesky [S, W, W]``;
    the prior's ``stick_offset``, ``stick_a``, ``stick_b`` ``[W]`` and ``log_norm`` (the sum
    of the sticks' log Beta functions); the users' ``weights [S, U, K] = exp(L - max_k L)``,
    ``top [S]`` (the masked sum of ``max_k L``), ``loglik [K, S, U]`` (``L``, for the
    log-sum-exp fallback) and ``mask [S, U]``."""

    mode: np.ndarray
    cholesky: np.ndarray
    stick_offset: np.ndarray
    stick_a: np.ndarray
    stick_b: np.ndarray
    log_norm: float
    weights: np.ndarray
    top: np.ndarray
    loglik: np.ndarray
    mask: np.ndarray

    @classmethod
    def of(cls, density, mapped, white) -> PiModel | None:
        """The arrays of ``density`` (a :class:`~scai.models.density.MarginalDensity`)
        sampled in ``white`` (a :class:`~scai.inference.mcmc.Whitening`) of ``mapped`` (its
        sampler coordinates, :func:`scai.inference.mcmc.sampler_coordinates`), or ``None``
        where the compiled potential does not apply: a latent site besides ``pi``, lapses,
        clones, a learned coupling, or a map of walls."""
        if density.coords.has_scalars or not isinstance(mapped, WallCoordinates) or mapped.walls:
            return None
        fixed = getattr(density.numpy, "fixed_users", lambda: None)()
        if fixed is None:
            return None
        weights, top, loglik = fixed
        prior = density.prior
        return cls(
            white.mode, white.cholesky, prior.stick_offset, prior.stick_a, prior.stick_b,
            float(prior.stick_log_norm.sum()), weights, top, loglik, density.numpy.mask,
        )  # fmt: skip

    def arrays(self) -> tuple:
        """The tuple the compiled functions take (C-contiguous float64)."""
        f = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
        return (
            f(self.mode), f(self.cholesky), f(self.stick_offset), f(self.stick_a),
            f(self.stick_b), float(self.log_norm), f(self.weights), f(self.top),
            f(self.loglik), f(self.mask),
        )  # fmt: skip


def pi_potential(model: PiModel, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U_s [S], dU/dpsi [S * W])`` at ``psi [S * W]``: each simulation's potential and the
    gradient of their sum (module docstring), compiled."""
    kernels = _kernels()
    S = model.mode.shape[0]
    values = np.empty(S)
    grad = np.empty(model.mode.size)
    kernels.potential(model.arrays(), np.ascontiguousarray(psi, dtype=np.float64), values, grad)
    return values, grad


def sample_chains(
    model: PiModel,
    starts: np.ndarray,
    rngs,
    *,
    warmup: int,
    samples: int,
    target_accept: float = 0.8,
    max_depth: int = 10,
    monitors: Sequence[StruggleMonitor | None] | None = None,
) -> list[NutsRun]:
    """NUTS chain ``b`` from ``starts[b]`` with generator ``rngs[b]``, each as
    :func:`scai.inference.hmc.sample_nuts` runs it alone with a unit initial inverse mass,
    in compiled code (module docstring); ``monitors[b]`` looks at chain ``b`` once it has
    run (:meth:`~scai.inference.hmc.StruggleMonitor.replay`: its messages are the run's
    ``problems``)."""
    kernels = _kernels()
    if _compiles(kernels.chain):
        print(
            "scai: compiling the NUTS sampler once (10-25 s on 2 cores); later runs load it"
            " from numba's cache",
            file=sys.stderr,
            flush=True,
        )
    arrays = model.arrays()
    total = warmup + samples
    in_window = np.zeros(max(total, 1), dtype=np.bool_)
    window_end = np.zeros(max(total, 1), dtype=np.bool_)
    for first, last in adaptation_windows(warmup):
        in_window[first : last + 1] = True
        window_end[last] = True
    runs = []
    monitors = list(monitors) if monitors is not None else [None] * len(starts)
    for start, rng, monitor in zip(starts, rngs, monitors, strict=True):
        d = len(start)
        positions = np.empty((total, d))
        stats = np.zeros((len(STATS), total))
        inv_mass = np.ones(d)
        eps = kernels.chain(
            arrays, np.array(start, dtype=np.float64), rng, warmup, total, target_accept,
            max_depth, in_window, window_end, positions, stats, inv_mass,
        )  # fmt: skip
        run = NutsRun(
            positions[warmup:].copy(), dict(zip(STATS, stats, strict=True)), inv_mass, eps
        )
        if monitor is not None:
            monitor.replay(positions, run.stats, warmup)
            run.problems = monitor.messages
        runs.append(run)
    return runs


_KERNELS = None


def _compiles(dispatcher) -> bool:
    """Whether calling ``dispatcher`` will compile it: nothing compiled in this process and
    nothing valid in numba's on-disk cache (numba's private cache index: any surprise there
    answers ``False``, and the run goes on unannounced)."""
    try:
        return not dispatcher.signatures and not dispatcher._cache._cache_file._load_index()
    except Exception:
        return False


def _kernels():
    """The compiled functions (:mod:`scai.inference._compiled_kernels`), imported on first use:
    ``import numba`` costs ~1 s, which only the fits that run compiled pay."""
    global _KERNELS
    if _KERNELS is None:
        from scai.inference import _compiled_kernels

        _KERNELS = _compiled_kernels
    return _KERNELS
