"""The SVI engine: stochastic variational inference with the discrete sites enumerated.

* Objective: ``TraceEnum_ELBO`` on :func:`scai.models.model.social_contract_model`, with ``policy``
  and ``manner`` enumerated in parallel (``JitTraceEnum_ELBO`` with ``jit=True``).
* Guide (``guide=``): ``"normal"`` (default), Pyro's ``AutoNormal``: a mean-field normal on
  the continuous sites in the unconstrained space (``pi`` through its stick-breaking transform,
  ``lam`` on the log scale, currency shifts as they are); cheap, and it fits ``pi`` well. It
  ignores posterior correlations: with a latent currency shift, ``pi`` and the shift trade off
  (an altruist in a currency shifted down looks like a selfish user), and the per-user type
  probabilities of users the data leave uncertain come out ~0.04 off the exact engine's.
  ``"mvn"``, ``AutoMultivariateNormal``: one full-covariance normal over every continuous site
  of every simulation (simulations are independent, so most of the covariance stays ~0); it
  captures that trade-off at a cost quadratic in the number of latent values.
* Start (``init=``): ``"laplace"`` (default) puts the mean-field guide at the Laplace
  approximation (the mode by L-BFGS; scales ``1 / sqrt(H_ii)``, the mean-field optimum for
  that Gaussian), and each site's means step a tenth of the guide's scale for the site (a
  warm start, ``warm_start=``, gets the same scaled steps). From the prior median with one
  step size (``"median"``), Adam's steps of 0.05 were 7x the posterior sd of ``log lam``
  (0.007 with 200 users): the ELBO jittered by ~2 nats against a tolerance of ~0.2, and the
  stopping rule fired by chance after 200-1,250 steps over five seeds; from the Laplace start
  it fires at its first check, step 100, in every seed (``benchmarks/bench_svi_seeds.py``).
  ``diagnostics["start"]`` says which start was used (``"median"`` when no mode is found).
* Convergence: the mean loss of the last ``window`` steps differs from the window before's by less
  than ``rtol`` (relative) or, without minibatches, by less than ``NOISE_Z = 2`` standard errors
  of that difference (the single-draw losses' own noise), whichever is larger; no verdict while
  either window holds an infinite loss (a guide draw where the model's float32 density
  underflows); a warning if ``max_steps`` is reached first, and a stop, with a warning that says
  why, where half the losses of two windows are infinite (:func:`_underflowing`). The noise term
  matters on small data: on one simulated group of 60 users with latent rationality (2 epochs of
  10 rounds) the loss is ~72 nats, ``rtol`` asks for 0.007 nats, the window means' difference has
  sd ~0.1, and the relative rule alone fired by chance (after 300-950 steps, measured). With
  minibatches (``subsample_size``) the whole step-size schedule runs (below) and ``converged`` is
  the same rule on its last two windows, whose noise now includes the minibatches': a loose check,
  that the ELBO no longer moves beyond that noise.
* Minibatches (``subsample_size=B``): the ``users`` plate of the one enumerated model scores
  ``B`` users drawn without replacement at each step, scaled by ``U / B`` (an unbiased
  estimate of the full ELBO; ``tests/test_minibatch.py``). Every user's type and manner are
  enumerated inside the plate, so no per-user latent is left to subsample. The step size
  decays geometrically from ``learning_rate`` to ``MINIBATCH_FINAL_LR`` of it over
  ``max_steps`` (Robbins-Monro), so the guide settles instead of jittering with the minibatch
  noise. The scales' own gradient is too weak under that noise to shrink them to the
  posterior's (at 10^6 users in batches of 2,000 they stayed 5x too wide), so after the schedule
  the mean-field guide's scales are set to ``1 / sqrt(H_ii)`` at its means, the curvature
  estimated from :data:`CURVATURE_BATCHES` minibatches (:func:`_curvature_scales`;
  ``diagnostics["curvature_scales"]``). ``init="laplace"`` and ``correction="importance"``
  read every user (full passes of the density); ``init="median", correction=None`` makes a
  fit that reads only minibatches (``benchmarks/bench_large.py``: 10^6 users).
* Correction (``correction=``): ``"importance"`` (default) turns the guide into a proposal and
  reweights its draws by the exact posterior, simulation by simulation (see
  :func:`scai.inference.importance.importance_correct`); ``None`` keeps the guide's own draws. The
  guide alone is off in ways ``tests/test_engines_svi.py`` measured on the
  ``essential_goods_shared`` hypothesis (from the prior-median start): narrower than the
  posterior (the currency shift's sd 0.66x the exact engine's, median over 50 small groups),
  in a wrong mode of the shift in 8 of those 50 (more than three posterior sds from the exact
  mean), and 0.045 off in the type probabilities of uncertain users; with the correction
  0.011, and every shift mean within 0.2 posterior sd. It costs little next to the SVI steps:
  ~0.5 s for one group of 200 users with latent rationality (~2 s of steps).
* Per-user types: averaged over the draws of ``P(z_u = k | theta, data)``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import SVI, JitTraceEnum_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal, init_to_median

from scai.inference.draws import DEFAULT_DRAWS, latent_sites, squeeze_site
from scai.inference.errors import EngineError
from scai.inference.importance import ImportanceWarning, importance_correct, pareto_k_threshold
from scai.inference.laplace import laplace
from scai.inference.posterior import Posterior
from scai.inference.progress import progress_bar
from scai.models.density import MarginalDensity
from scai.models.errors import ScaiWarning, outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.model import MAX_PLATE_NESTING, social_contract_model
from scai.models.random_state import keeps_callers_random_state


class ConvergenceWarning(ScaiWarning):
    """SVI reached its step cap before the ELBO settled."""


class MinibatchWarning(ScaiWarning):
    """Minibatch SVI without the importance correction on a hypothesis with latent sites
    besides ``pi``: checked against the exact engine only where ``pi`` is the only one."""


class UncorrectedWarning(ScaiWarning):
    """SVI's guide draws kept as they are (``correction=None``) on a hypothesis with latent
    sites besides ``pi``: a mean-field guide is narrower than the posterior there."""


GUIDES = {"normal": AutoNormal, "mvn": AutoMultivariateNormal}
CORRECTIONS = ("importance", None)
INITS = ("laplace", "median")
LAPLACE_STEP = 0.1  # the means' step size, as a fraction of their posterior sd
MINIBATCH_FINAL_LR = 0.01  # with minibatches, the last step size over the first
NOISE_Z = 2.0  # a window-mean change within this many standard errors is noise
#: Adam's gradients are not clipped (``ClippedAdam`` clamps each coordinate to +-10 by default).
#: A mean's gradient near the optimum is ~1 / its posterior sd (a sum over users), far above 10
#: for a narrow posterior: the clamp makes each step the sign of a noisy gradient, and the guide
#: goes where the noise's median, not its mean, is zero (a skewed posterior's mode: half an sd
#: off the optimum in tests/test_svi_clipping.py). Adam's steps are bounded by its step size
#: whatever a gradient's scale. On the model it has not mattered (latent lam, 3,000 and 10,000
#: users, seeds 0-4, Laplace start, exact normaliser): log lam's guide mean 0.15 and 0.15
#: posterior sd from the exact mean on average clamped, 0.17 and 0.13 unclamped (paired: 0.02
#: +- 0.01, 0.05 +- 0.07 sd), the importance-corrected means within 0.06 sd either way: where
#: the clamp binds (sd <= 0.04) the posterior is near-symmetric, its mode within 0.16 sd of its
#: mean. From the prior median the clamp spares a stall: unclamped, Adam's second moments keep
#: the first steps' huge gradients for ~1,000 steps (3,000 users, seed 0: log lam 1.4 sd short
#: at 200 steps, 1.0 at 600; clamped, there in 25), though over seeds 0-4 both end 1.9-2.9 sd
#: off there on average (at most 5.8), jittering by the step size 0.05 (posterior sds
#: 0.002-0.2).
GRADIENT_CLIP = math.inf
CURVATURE_BATCHES = 10  # minibatches whose Hessians set the scales after a minibatch fit


def _start_at_laplace(sites: tuple[str, ...], density: MarginalDensity, n_sims: int) -> bool:
    """Put the mean-field guide at the Laplace approximation: means at the mode, scales at the
    mean-field optimum for that Gaussian, ``1 / sqrt(H_ii)`` (the marginal sds
    ``sqrt(Sigma_ii)`` are wider where sites correlate: up to 9x for ``pooled``'s shifts),
    capped at 1. Returns ``False`` (the guide stays at the prior median) if no mode is found."""
    approx = laplace(density, min_precision=1.0)
    if approx is None:
        return False
    width = density.coords.width
    mode = torch.as_tensor(approx.mode.reshape(n_sims, width))
    precision = np.linalg.inv(approx.covariance)  # the floored Hessian blocks
    scale = torch.as_tensor(np.diagonal(precision, axis1=1, axis2=2) ** -0.5).clamp(max=1.0)
    _write_guide(sites, n_sims, "locs", mode)
    _write_guide(sites, n_sims, "scales", scale)
    return True


def _read_guide(sites: tuple[str, ...], n_sims: int, kind: str) -> torch.Tensor:
    """``[S, W]``: the mean-field guide's ``kind`` (``"locs"`` or ``"scales"``) in the columns
    of :class:`~scai.models.prior.Coordinates` (the sites in order, each simulation a row)."""
    store = pyro.get_param_store()
    return torch.cat(
        [store[f"AutoNormal.{kind}.{name}"].detach().reshape(n_sims, -1) for name in sites], -1
    )


def _write_guide(sites: tuple[str, ...], n_sims: int, kind: str, values: torch.Tensor) -> None:
    """Set the mean-field guide's ``kind`` from ``values [S, W]`` (as :func:`_read_guide`)."""
    store = pyro.get_param_store()
    col = 0
    for name in sites:
        key = f"AutoNormal.{kind}.{name}"
        param = store[key]
        n = param.numel() // n_sims
        store[key] = values[:, col : col + n].reshape(param.shape).to(param.dtype)
        col += n


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """torch's default dtype ``dtype`` for the block. The setting is the process's, not the
    thread's: a fit on another thread meanwhile would see it (scai runs one fit per process at
    a time)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def float64_default() -> contextlib.AbstractContextManager:
    """:func:`default_dtype` float64: what the density builds its tables in."""
    return default_dtype(torch.float64)


def _curvature_scales(
    sites: tuple[str, ...],
    data: GroupData,
    hypothesis: Hypothesis,
    batch_size: int,
    generator: torch.Generator,
    batches: int = CURVATURE_BATCHES,
) -> None:
    """Set the mean-field guide's scales to the mean-field optimum for a locally Gaussian
    posterior at its means, ``1 / sqrt(H_ii)`` (as :func:`_start_at_laplace`), with the
    curvature ``H_ii = -d^2/dtheta_i^2 log p(theta, data)`` estimated from ``batches``
    minibatches of ``batch_size`` users: the prior plus ``U / B`` times the minibatch's
    log-likelihood, an unbiased estimate of the full log joint and so of its Hessian.

    Why: with minibatches the scales' gradient is a small signal under the minibatches'
    noise (``U / B`` times a user's spread): at 10^6 users in batches of 2,000 the scales stayed
    5x the posterior sd after 1,000 steps while the means had settled. Coordinates whose
    estimated curvature is not positive keep their scale. (Hypotheses with clones, whose group
    likelihood is no sum over users, are refused minibatches.)"""
    S, U, _ = data.shape
    theta = _read_guide(sites, S, "locs").reshape(-1).double()
    curvature = torch.zeros_like(theta)
    B = min(batch_size, U)
    scale = U / B
    for _ in range(batches):
        users = torch.randperm(U, generator=generator)[:B]
        # In float64: in float32 a sharp coordinate's second difference is rounding noise
        # (log lam at 10^5 users: +866,420 where float64 gives -3,166), and its scale was
        # kept, or set 20x too narrow, with no word (a red-team).
        with float64_default():
            density = MarginalDensity(data.users_subset(users), hypothesis)

            def log_joint(t: torch.Tensor, density: MarginalDensity = density) -> torch.Tensor:
                prior = density.log_prior(t)
                return (prior + scale * (density.log_joint(t) - prior)).sum()

            hessian = torch.autograd.functional.hessian(log_joint, theta)
        curvature -= torch.diagonal(hessian) / batches
    h = curvature.reshape(S, -1)
    optimum = h.clamp_min(1e-300).rsqrt().clamp(max=1.0)
    old = _read_guide(sites, S, "scales").double()
    _write_guide(sites, S, "scales", torch.where(h > 0, optimum, old))


def _scaled_steps(sites: tuple[str, ...], learning_rate: float) -> dict[str, float]:
    """Each site's step size for its means: a tenth of the guide's median scale for the site,
    at most ``learning_rate``. Adam moves every coordinate by about its step size: at 0.05,
    ``log lam``'s mean, whose posterior sd is ~0.007 with 200 users, jitters by several sds
    and the ELBO by several nats, which kept the stopping rule from firing."""
    store = pyro.get_param_store()
    return {
        f"AutoNormal.locs.{name}": min(
            learning_rate,
            LAPLACE_STEP * float(store[f"AutoNormal.scales.{name}"].detach().median()),
        )
        for name in sites
    }


def _settled(losses: list[float], window: int, rtol: float) -> tuple[bool, float]:
    """The stopping rule on the last two windows of losses, and the last window's mean ELBO:
    their means differ by less than ``rtol`` (relative) or ``NOISE_Z`` standard errors of that
    difference (the losses' own noise: single guide draws, and minibatches where used);
    never settled while either window holds an infinite loss."""
    recent = torch.tensor(losses[-window:], dtype=torch.float64)
    before = torch.tensor(losses[-2 * window : -window], dtype=torch.float64)
    new, old = float(recent.mean()), float(before.mean())
    if not (math.isfinite(new) and math.isfinite(old)):
        return False, -new  # a draw with zero density: no verdict from these windows
    noise = math.sqrt(float(recent.var() + before.var()) / window)
    return abs(new - old) <= max(rtol * abs(old), NOISE_Z * noise), -new


def _guide_draws(guide, num_draws: int) -> dict[str, torch.Tensor]:
    """``num_draws`` draws of every site of the guide, vectorised over draws."""
    if isinstance(guide, AutoNormal):
        with pyro.plate("draws", num_draws, dim=-MAX_PLATE_NESTING - 1):
            return guide()
    # AutoContinuous: draw the joint latent, then map each block to its site's support.
    latent = guide.get_posterior().sample((num_draws,))  # [D, latent_dim]
    out, pos = {}, 0
    for name, site in guide.prototype_trace.iter_stochastic_nodes():
        shape = guide._unconstrained_shapes[name]  # the guide's own packing order
        size = math.prod(shape)
        unconstrained = latent[:, pos : pos + size].reshape(num_draws, *shape)
        out[name] = torch.distributions.biject_to(site["fn"].support)(unconstrained)
        pos += size
    assert pos == latent.shape[-1]
    return out


def _guide_blocks(
    guide: AutoNormal | AutoMultivariateNormal, sites: tuple[str, ...], n_sims: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The guide's normal in the unconstrained space, cut into one block per simulation with
    the columns of :class:`~scai.models.prior.Coordinates`: ``loc [S, W]``, ``cov [S, W, W]``.

    Simulations share no parameter, so the blocks are all a proposal needs; the full-covariance
    guide's covariances across simulations (~0 after fitting) are dropped.
    """
    if isinstance(guide, AutoNormal):
        locs, scales = [], []
        for name in sites:
            loc, scale = guide._get_loc_and_scale(name)
            locs.append(loc.detach().reshape(n_sims, -1))
            scales.append(scale.detach().reshape(n_sims, -1))
        return torch.cat(locs, -1), torch.diag_embed(torch.cat(scales, -1) ** 2)
    posterior = guide.get_posterior()
    index, pos = {}, 0
    for name, _ in guide.prototype_trace.iter_stochastic_nodes():
        size = math.prod(guide._unconstrained_shapes[name])
        index[name] = torch.arange(pos, pos + size).reshape(n_sims, -1)
        pos += size
    cols = torch.cat([index[name] for name in sites], -1)  # [S, W] positions in the latent
    cov = posterior.covariance_matrix.detach()
    return posterior.loc.detach()[cols], cov[cols.unsqueeze(-1), cols.unsqueeze(-2)]


def _step(svi: SVI, subsample_size: int | None, step: int, learning_rate: float) -> float:
    """One SVI step's loss; an :class:`EngineError` naming ``learning_rate`` where earlier
    steps have driven the guide's parameters out of range (not finite, or a scale that
    underflowed to 0): the step then fails inside Pyro, in torch's argument check of a guide
    distribution built from them, whose message names a tensor, not the cause."""
    try:
        loss = svi.step(subsample=subsample_size)
    except (ValueError, RuntimeError) as err:
        words = str(err).split()
        checked = words[:2] == ["Expected", "parameter"] and len(words) > 2
        if step == 0 or not (checked or not _finite_params()):  # not the optimiser's doing
            raise
        raise EngineError(_diverged(learning_rate, step, words[2] if checked else "")) from None
    if math.isnan(loss) and not _finite_params():
        raise EngineError(_diverged(learning_rate, step + 1, ""))
    return loss


def _diverged(learning_rate: float, steps: int, parameter: str) -> str:
    what = parameter or "parameters"
    return (
        f"learning_rate={learning_rate:g}: SVI diverged after {steps} step(s), the guide's "
        f"{what} out of range (not finite, or a scale of 0); lower learning_rate "
        "(default 0.05)"
    )


def _finite_params() -> bool:
    """Whether every parameter in Pyro's parameter store is finite."""
    store = pyro.get_param_store()
    return all(bool(torch.isfinite(value).all()) for _, value in store.items())


def _check_warm_start(warm_start, hypothesis: Hypothesis, sites) -> None:
    """A warm start must be a posterior (of any engine: only an SVI fit's guide is used) with
    the latent sites of ``hypothesis``."""
    if not isinstance(warm_start, Posterior):
        raise EngineError(
            f"warm_start must be a Posterior (a previous fit), got {type(warm_start).__name__}"
        )
    theirs = latent_sites(warm_start.hypothesis)
    if list(theirs) != list(sites):
        raise EngineError(
            f"warm_start: a posterior of hypothesis {warm_start.hypothesis.name!r}, whose latent "
            f"sites ({', '.join(theirs)}) are not those of {hypothesis.name!r} "
            f"({', '.join(sites)}); warm-start from a fit of the same hypothesis"
        )


def _copied_state(state: dict) -> dict:
    """Pyro's parameter-store state with its own tensors (``get_state`` and ``set_state``
    share them with the store, where the optimiser changes them in place)."""
    params = {
        name: value.detach().clone().requires_grad_(value.requires_grad)
        for name, value in state["params"].items()
    }
    return {"params": params, "constraints": dict(state["constraints"])}


def _warm_state_fits(previous: Posterior, data: GroupData) -> bool:
    """Whether ``previous``'s guide parameters are the ones a guide for ``data`` has: the
    same groups in the same order, the same currencies, and every parameter's shape as the
    fresh guide just made it (in Pyro's parameter store)."""
    state = previous.engine_state
    if state is None or previous.data is None:
        return False
    if list(previous.data.sim_ids) != list(data.sim_ids):
        return False
    if list(previous.data.currencies) != list(data.currencies):
        return False
    store = pyro.get_param_store()
    params = state.get("params", {})
    return set(params) == set(store.keys()) and all(
        tuple(value.shape) == tuple(store[name].shape) for name, value in params.items()
    )


def _not_converged(max_steps: int, first_step: int, rtol: float) -> str:
    """The :class:`ConvergenceWarning` of a fit that stopped at ``max_steps`` unconverged:
    where that came before ``first_step``, the first step whose ELBO the stopping rule
    checks, it says that no check ran (not that the ELBO still moved); the remedies are named
    as the command line (``--max-steps``) and Python (``max_steps``, ``learning_rate``: no
    option of ``scai fit``) call them."""
    raise_steps = "raise max_steps (scai fit --max-steps)"
    if max_steps < first_step:
        return (
            f"SVI stopped at max_steps={max_steps}, before step {first_step}, its first "
            f"convergence check: no check could run, so whether it converged is unknown; "
            f"{raise_steps} to at least {first_step}"
        )
    return (
        f"SVI did not converge in {max_steps} steps (relative ELBO change above {rtol}); "
        f"{raise_steps}, or in Python the step size learning_rate"
    )


@contextlib.contextmanager
def callers_param_store_kept() -> Iterator[None]:
    """Pyro's global parameter store as the caller left it, restored on exit (without scai's
    guide parameters): the fit clears it to start afresh, which dropped a notebook's own
    ``pyro.param`` values."""
    state = pyro.get_param_store().get_state()
    kept = {"params": dict(state["params"]), "constraints": dict(state["constraints"])}
    try:
        yield
    finally:
        pyro.clear_param_store()
        pyro.get_param_store().set_state(kept)


def keeps_callers_param_store(function: Callable[..., Posterior]) -> Callable[..., Posterior]:
    """``function`` run inside :func:`callers_param_store_kept`, called from a frame of scai's
    own: with the context manager as the decorator, ``contextlib``'s wrapper called it, and
    the warnings' :func:`~scai.models.errors.outside_scai` took that frame for the caller's
    (every SVI warning named ``contextlib.py``, not the user's line)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Posterior:
        with callers_param_store_kept():
            return function(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class _Options:
    """:func:`fit_svi`'s options as checked (:func:`_checked_options`): what a fit runs with."""

    seed: int
    num_draws: int
    learning_rate: float
    max_steps: int
    min_steps: int | None
    rtol: float
    window: int
    subsample_size: int | None
    jit: bool
    progress: bool
    guide: str
    correction: str | None
    proposal_draws: int | None
    init: str

    def settings(self) -> dict[str, Any]:
        """The posterior's ``settings``: every option but the seed and the progress bar (an
        update passes them on to its own fit)."""
        return {
            "learning_rate": self.learning_rate,
            "max_steps": self.max_steps,
            "rtol": self.rtol,
            "window": self.window,
            "subsample_size": self.subsample_size,
            "jit": self.jit,
            "num_draws": self.num_draws,
            "guide": self.guide,
            "correction": self.correction,
            "proposal_draws": self.proposal_draws,
            "init": self.init,
            "min_steps": self.min_steps,
        }


def _checked_options(seed: object, given: dict[str, Any]) -> _Options:
    """The seed and ``given`` (every option of :func:`fit_svi` but ``warm_start``, which is
    checked against the data later) checked as :func:`~scai.inference.fit.fit` checks them, or
    an :class:`EngineError` naming the first bad one; ``proposal_draws`` without the
    correction that draws them is one."""
    from scai.inference.fit import checked_engine_options

    checked = checked_engine_options("svi", seed, given)
    options = _Options(**{field.name: checked[field.name] for field in fields(_Options)})
    if options.correction is None and options.proposal_draws is not None:  # would be ignored
        raise EngineError(
            f"proposal_draws={options.proposal_draws}: the importance correction's proposals, "
            "and correction=None draws none (the guide's own draws are kept): leave "
            "proposal_draws out (None), or keep correction='importance'"
        )
    return options


def _check_subsample_size(
    subsample_size: int | None, data: GroupData, hypothesis: Hypothesis, sites: tuple[str, ...]
) -> None:
    """An :class:`EngineError` where minibatches of ``subsample_size`` users cannot estimate
    the ELBO: a hypothesis with clones (its group likelihood is no sum over users), or more
    users than a simulation has."""
    if subsample_size is not None and "clone" in sites:
        raise EngineError(
            f"subsample_size={subsample_size} cannot be used with hypothesis "
            f"{hypothesis.name!r}: its users copy a prototype's type with a learned probability, "
            "so the group's likelihood is not a sum over users that minibatches could "
            "estimate; fit it without subsample_size, or with a hypothesis without clones "
            "(no clone_prior)"
        )
    if subsample_size is not None and subsample_size > data.shape[1]:
        raise EngineError(
            f"subsample_size={subsample_size}: a minibatch is drawn from each simulation's "
            f"users; allowed: at most {data.shape[1]}, the users of a simulation here (or no "
            "subsample_size: every user at every step)"
        )


def _warn_of_uncorrected_draws(options: _Options, sites: tuple[str, ...]) -> None:
    """Where the guide's own draws are kept (``correction=None``) with latent sites besides
    ``pi``: an :class:`UncorrectedWarning` on every user, a :class:`MinibatchWarning` with
    minibatches (both unchecked against the exact engine there)."""
    others = ", ".join(s for s in sites if s != "pi")
    if options.correction is not None or not others:
        return
    if options.subsample_size is None:
        # (a review: a shift's 90% interval 13x too narrow, the true value outside it, unsaid)
        warnings.warn(
            f"correction=None with latent {others}: the "
            f"{options.guide} guide's own draws can be far from the posterior here (the normal "
            "guide's: a currency shift's sd 0.66x the exact engine's, median over 50 small "
            "groups, and its mean more than three posterior sd off in 8 of them: "
            "tests/test_engines_svi.py): keep correction='importance', or check with "
            "engine='exact'",
            UncorrectedWarning,
            stacklevel=outside_scai(),
        )
    else:
        warnings.warn(
            f"subsample_size={options.subsample_size} without the importance correction, with "
            f"latent {others}: minibatch SVI is checked against the "
            "exact engine only where pi is the only latent site; with a latent rationality "
            "its mean of lam was 1.5 posterior sd off (benchmarks/README.md, large "
            "populations): keep correction='importance', or check with engine='exact'",
            MinibatchWarning,
            stacklevel=outside_scai(),
        )


def _new_guide(
    name: str, model: Callable[..., Any], sites: tuple[str, ...]
) -> AutoNormal | AutoMultivariateNormal:
    """The guide ``name`` (:data:`GUIDES`) over ``model``'s latent ``sites``, at the prior
    median, its parameters made in Pyro's parameter store (a draw of the prior: the seed's
    global generators must be set)."""
    guide = GUIDES[name](pyro.poutine.block(model, expose=list(sites)), init_loc_fn=init_to_median)
    guide()  # create the parameters
    return guide


def _fitting_warm_start(
    warm_start: Posterior | None, data: GroupData, hypothesis: Hypothesis, sites: tuple[str, ...]
) -> Posterior | None:
    """``warm_start`` where its guide's parameters fit the fresh guide's in Pyro's store;
    ``None`` where none is given or its groups or currencies differ (the fit starts afresh);
    an :class:`EngineError` where it is no posterior, or one of other latent sites."""
    if warm_start is None:
        return None
    _check_warm_start(warm_start, hypothesis, sites)
    return warm_start if _warm_state_fits(warm_start, data) else None


def _start_guide(
    sites: tuple[str, ...], warm: Posterior | None, density: MarginalDensity | None, n_sims: int
) -> str:
    """Put the guide where it starts and name the start (``diagnostics["start"]``):
    ``"warm"``, at ``warm``'s guide; else ``"laplace"``, at the Laplace approximation of
    ``density`` (given for that start); else ``"median"``, the prior median the guide was made
    at (also the fallback where no mode is found)."""
    # How the guide starts: from the previous fit, at the Laplace approximation, or at the
    # prior median (also the fallback). The first two get step sizes scaled to the guide.
    if warm is not None:
        # a copy: the optimiser updates the store's tensors in place, and those of the previous
        # posterior must stay as they were (an update from it again gives the same result)
        pyro.get_param_store().set_state(_copied_state(warm.engine_state))
        return "warm"
    if density is not None and _start_at_laplace(sites, density, n_sims):
        return "laplace"
    return "median"


def _first_check(min_steps: int | None, window: int, scaled: bool) -> int:
    """The first step at which the stopping rule may fire: ``min_steps`` where given, else
    ``2 * window`` for a guide with step sizes ``scaled`` to it (started near the optimum),
    else 200."""
    if min_steps is not None:
        return min_steps
    # a guide started near the optimum may stop at the first check
    return 2 * window if scaled else 200


def _svi(
    model: Callable[..., Any],
    guide: AutoNormal | AutoMultivariateNormal,
    options: _Options,
    step_sizes: dict[str, float],
) -> SVI:
    """SVI of ``guide`` on ``model`` by the enumerated ELBO, with Adam: each parameter's step
    size ``step_sizes``' (the ``learning_rate`` for those not in it), gradients unclipped
    (:data:`GRADIENT_CLIP`), and with minibatches a decaying step size."""
    # Minibatches: the step size falls geometrically to MINIBATCH_FINAL_LR of its start over
    # max_steps (Robbins-Monro), so that the guide settles instead of jittering with the
    # minibatch noise (U / B times a full gradient's per-user spread).
    decay = MINIBATCH_FINAL_LR ** (1 / options.max_steps) if options.subsample_size else 1.0

    def optim_args(param_name: str) -> dict[str, float]:
        return {
            "lr": step_sizes.get(param_name, options.learning_rate),
            "lrd": decay,
            "clip_norm": GRADIENT_CLIP,
        }

    elbo_class = JitTraceEnum_ELBO if options.jit else TraceEnum_ELBO
    elbo = elbo_class(max_plate_nesting=MAX_PLATE_NESTING, ignore_jit_warnings=True)
    return SVI(model, guide, pyro.optim.ClippedAdam(optim_args), elbo)


def _optimise(svi: SVI, options: _Options, check_from: int) -> tuple[list[float], bool, bool]:
    """Step ``svi`` until the stopping rule (:func:`_settled`), checked every ``window`` steps
    from step ``check_from``, finds the ELBO settled, or ``max_steps`` have run, or half the
    losses of the last two windows are infinite (:func:`_underflowing`): each step's loss,
    whether it settled, and whether it stopped so. With minibatches every step runs and the rule is
    checked once, on the last two windows."""
    losses: list[float] = []
    converged = underflow = False
    window, subsample_size = options.window, options.subsample_size
    bar = progress_bar(total=options.max_steps, desc="svi", disable=not options.progress)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        for step in range(options.max_steps):
            losses.append(_step(svi, subsample_size, step, options.learning_rate))
            bar.update()
            if step + 1 >= check_from and (step + 1) % window == 0:
                settled, elbo = _settled(losses, window, options.rtol)
                bar.set_postfix(elbo=f"{elbo:.2f}")
                if _underflowing(losses[-2 * window :]):  # no step will settle it
                    underflow = True
                    break
                # With minibatches the step-size schedule is the budget: run it out.
                if settled and not subsample_size:
                    converged = True
                    break
        if subsample_size and len(losses) >= 2 * window and not underflow:
            converged = _settled(losses, window, options.rtol)[0]
    bar.close()
    return losses, converged, underflow


def _underflowing(losses: list[float]) -> bool:
    """Whether at least half of ``losses`` are infinite: most of the guide's draws score zero
    density in float32, and the stopping rule, which gives no verdict on a window holding
    one, can never fire. Pyro's enumeration sums each user's types over the exponentials of
    its sites' log-probabilities, each site's shifted by its own largest term
    (``pyro.ops.einsum.torch_log``): a user whose offers are likely under one type and whose
    replies under another (each 100-odd nats below their best under the other) underflows
    to 0 near the mode, and more steps change nothing (a test drive's people-like table: 278
    of 300 losses infinite from the Laplace start, still -inf after 3,000 steps, 150 s)."""
    return 2 * sum(not math.isfinite(x) for x in losses) >= len(losses)


def _warn_not_converged(options: _Options, check_from: int, underflow: bool) -> None:
    """The :class:`ConvergenceWarning` of a fit whose stopping rule, checked from step
    ``check_from`` (every ``window`` steps), never fired; one that stopped at two windows of
    infinite losses (``underflow``) says why, and what does not underflow."""
    if underflow:
        warnings.warn(
            "SVI stopped: its loss was infinite at half the steps of two windows or more (the "
            "Pyro model's float32 enumeration underflows: some user's actions are each likely "
            "under a different type, far from every type at this rationality), and more steps "
            "do not change that; the importance correction (the default) reweights by scai's "
            "own density, or fit with engine='exact' or 'mcmc' (scai fit --engine), or let "
            "rationality be latent (rationality_scale) or allow a lapse (lapse, lapse_prior)",
            ConvergenceWarning,
            stacklevel=outside_scai(),
        )
        return
    window = options.window
    # with minibatches the rule is checked once, at the end, over the last two windows
    first_step = 2 * window if options.subsample_size else -(-check_from // window) * window
    warnings.warn(
        _not_converged(options.max_steps, first_step, options.rtol),
        ConvergenceWarning,
        stacklevel=outside_scai(),
    )


def _loss_diagnostics(losses: list[float], converged: bool, window: int) -> dict[str, Any]:
    """The diagnostics of the steps: whether the ELBO settled, the steps run, the last
    ``window`` steps' mean ELBO, and each step's ELBO (the negated losses)."""
    return {
        "converged": converged,
        "steps": len(losses),
        "final_elbo": -sum(losses[-window:]) / min(window, len(losses)),
        "elbo_trace": [-x for x in losses],
    }


def _importance_draws(
    guide: AutoNormal | AutoMultivariateNormal,
    density: MarginalDensity,
    sites: tuple[str, ...],
    data: GroupData,
    options: _Options,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``num_draws`` draws ``[1, D, S, ...]`` of each site resampled from importance-weighted
    draws of a proposal built from the guide (:func:`importance_correct`, seeded by the fit's
    seed), and their report (``diagnostics["importance"]``); an :class:`ImportanceWarning`
    names the simulations whose Pareto ``k`` is above :func:`pareto_k_threshold` of the
    proposal's draws."""
    num_draws, proposal_draws = options.num_draws, options.proposal_draws
    loc, cov = _guide_blocks(guide, sites, data.shape[0])
    n_proposal = proposal_draws if proposal_draws is not None else max(2000, 2 * num_draws)
    generator = torch.Generator().manual_seed(options.seed)
    theta, k, ess = importance_correct(density, loc, cov, num_draws, n_proposal, generator)
    constrained = density.constrain(theta.reshape(num_draws, -1))
    draws = {name: constrained[name].unsqueeze(0) for name in sites}  # [1, D, S, ...]
    report = {
        "proposal_draws": n_proposal,
        # None where PSIS could not estimate k (kept literal for NetCDF attributes)
        "pareto_k": {
            sim: float(x) if math.isfinite(x) else None
            for sim, x in zip(data.sim_ids, k, strict=True)
        },
        "ess": {sim: float(x) for sim, x in zip(data.sim_ids, ess, strict=True)},
    }
    if density.coords.width:  # with nothing continuous, every draw is the same
        _warn_of_pareto_k(data.sim_ids, k, n_proposal)
    return draws, report


def _warn_of_pareto_k(sim_ids: list[str], k: torch.Tensor, draws: int) -> None:
    """An :class:`ImportanceWarning` naming the simulations whose Pareto ``k`` is above
    :func:`pareto_k_threshold` of the ``draws`` proposal draws, or could not be estimated
    (none: no warning)."""
    bar = pareto_k_threshold(draws)
    bad = [
        f"{sim} ({x:.2f})" if math.isfinite(x) else f"{sim} (not estimated)"
        for sim, x in zip(sim_ids, k, strict=True)
        if not x <= bar
    ]
    if bad:
        warnings.warn(
            f"importance correction: Pareto k > {bar:.3g} (PSIS's bar at {draws:,} proposal "
            f"draws) for simulation(s) {', '.join(bad)}; their draws may be off (raise "
            "proposal_draws, or compare with engine='mcmc')",
            ImportanceWarning,
            stacklevel=outside_scai(),
        )


def _uncorrected_draws(
    guide: AutoNormal | AutoMultivariateNormal,
    sites: tuple[str, ...],
    num_draws: int,
    n_sims: int,
) -> dict[str, torch.Tensor]:
    """``num_draws`` draws ``[1, D, S, ...]`` of each site from the guide itself (drawn with
    Pyro's global generators)."""
    with torch.no_grad():
        sample = _guide_draws(guide, num_draws)
    return {
        name: squeeze_site(name, sample[name], n_sims).unsqueeze(0) for name in sites
    }  # [1, D, S, ...]


@keeps_callers_random_state  # it seeds the global generators (pyro.set_rng_seed)
@keeps_callers_param_store
def fit_svi(
    data: GroupData,
    hypothesis: Hypothesis,
    *,
    table=None,
    seed: int = 0,
    num_draws: int = DEFAULT_DRAWS["svi"],
    learning_rate: float = 0.05,
    max_steps: int = 3000,
    min_steps: int | None = None,
    rtol: float = 1e-4,
    window: int = 50,
    subsample_size: int | None = None,
    jit: bool = False,
    warm_start: Posterior | None = None,
    progress: bool = False,
    guide: str = "normal",
    correction: str | None = "importance",
    proposal_draws: int | None = None,
    init: str = "laplace",
) -> Posterior:
    """Fit the guide until the ELBO converges, then draw ``num_draws`` parameter sets.

    ``correction="importance"`` (default): the draws are resampled from ``proposal_draws``
    (default ``max(2000, 2 * num_draws)``) importance-weighted draws of a proposal built from
    the guide (:func:`importance_correct`); ``diagnostics["importance"]`` holds each
    simulation's Pareto ``k`` and effective sample size, and an :class:`ImportanceWarning`
    names the simulations whose ``k`` is above PSIS's bar for that many draws,
    ``min(1 - 1 / log10(proposal_draws), 0.7)`` (:func:`pareto_k_threshold`), or could not be
    estimated. The correction scores every user with the exact log joint (not minibatches):
    an L-BFGS search from 5 starts, 2 gradients per column for the Laplace covariances and 3,000
    densities; measured 2-4 s for one group of 10,000 users.
    ``correction=None``: the guide's own draws.

    ``init="laplace"`` (default, ``guide="normal"`` without ``warm_start``): the guide starts
    at the Laplace approximation of the exact log joint (:func:`_start_at_laplace`).
    ``init="median"``: the prior median, one step size for all. After a Laplace or warm start
    the means step a tenth of the guide's scale (:func:`_scaled_steps`) and, with
    ``min_steps=None``, the stopping rule may fire from step ``2 * window`` (else from 200).
    """
    options = _checked_options(
        seed,
        {
            "num_draws": num_draws,
            "learning_rate": learning_rate,
            "max_steps": max_steps,
            "min_steps": min_steps,
            "rtol": rtol,
            "window": window,
            "subsample_size": subsample_size,
            "jit": jit,
            "warm_start": warm_start,
            "progress": progress,
            "guide": guide,
            "correction": correction,
            "proposal_draws": proposal_draws,
            "init": init,
        },
    )
    sites = latent_sites(hypothesis)
    S = data.shape[0]
    _check_subsample_size(options.subsample_size, data, hypothesis, sites)
    _warn_of_uncorrected_draws(options, sites)

    pyro.clear_param_store()
    pyro.set_rng_seed(options.seed)

    def model(subsample=None):
        return social_contract_model(data, hypothesis, subsample_size=subsample)

    autoguide = _new_guide(options.guide, model, sites)
    warm = _fitting_warm_start(warm_start, data, hypothesis, sites)
    laplace_start = options.init == "laplace" and options.guide == "normal" and warm is None
    # the exact log joint: for the Laplace start and for the correction
    needed = laplace_start or options.correction == "importance"
    density = MarginalDensity(data, hypothesis) if needed else None
    start = _start_guide(sites, warm, density if laplace_start else None, S)
    scaled = start != "median" and options.guide == "normal"
    step_sizes = _scaled_steps(sites, options.learning_rate) if scaled else {}
    first_check = _first_check(options.min_steps, options.window, scaled)

    check_from = max(first_check, 2 * options.window)
    losses, converged, underflow = _optimise(
        _svi(model, autoguide, options, step_sizes), options, check_from
    )
    curvature_scales = options.subsample_size is not None and options.guide == "normal"
    if curvature_scales:
        generator = torch.Generator().manual_seed(options.seed)
        _curvature_scales(sites, data, hypothesis, options.subsample_size, generator)
    if not converged:
        _warn_not_converged(options, check_from, underflow)

    diagnostics = _loss_diagnostics(losses, converged, options.window)
    if options.correction == "importance":
        draws, diagnostics["importance"] = _importance_draws(
            autoguide, density, sites, data, options
        )
    else:
        draws = _uncorrected_draws(autoguide, sites, options.num_draws, S)
    diagnostics["start"] = start
    diagnostics["curvature_scales"] = curvature_scales
    diagnostics["first_check"] = first_check
    return Posterior.from_draws(
        "svi",
        data,
        hypothesis,
        table,
        draws,
        diagnostics=diagnostics,
        settings=options.settings(),
        seed=options.seed,
        engine_state=_copied_state(pyro.get_param_store().get_state()),
    )
