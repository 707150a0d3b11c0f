"""The MCMC engine: NUTS on the continuous sites, with the discrete sites summed out.

The potential is the negative log density of :class:`scai.models.density.MarginalDensity`, the
model with each user's policy and manner summed out by hand (equal to the enumerated Pyro
model's density; a test checks it), on an unconstrained vector (stick-breaking ``pi``, log
``lam``, currency shifts), whitened by the Laplace approximation (:class:`Whitening`); NUTS
is the lean one of :mod:`scai.inference.hmc` on the density's NumPy backend, whose gradient is
derived by hand (equal to the torch reference's autograd and cheaper: ``benchmarks/README.md``), and
its struggle monitor reports a chain in trouble while it runs (:class:`SamplerWarning`). With a
latent clone probability the chain's state also holds the group's prototype: NUTS samples the
joint with it, and a Gibbs step moves it between NUTS iterations (:mod:`scai.inference.sheets`).
Discrete sites are recovered afterwards, Rao-Blackwellised: each user's
``P(z_u = k | theta, data)`` averaged over draws.

Label switching cannot happen: the policy types are named utilities, not exchangeable
components. By default the chains run in lockstep in this process through one batched gradient
of the density on the data tiled per chain (:func:`game_lockstep_problem`); ``parallel=True``
runs them in worker processes, ``False`` one after another (:func:`fit_mcmc`). Where ``pi`` is
the only latent site and the action tables are fixed, the lockstep chains run in compiled code
instead (:mod:`scai.inference.compiled`: the same sampler on the same potential, numba).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from scai.inference.clones import CloneCoordinates, preferred_prototype
from scai.inference.compiled import PiModel
from scai.inference.diagnostics import DiagnosticWarning, mcmc_diagnostics
from scai.inference.draws import DEFAULT_DRAWS, latent_sites
from scai.inference.errors import EngineError
from scai.inference.laplace import (
    Laplace,
    OtherModes,
    find_best_mode,
    laplace,
    other_modes,
)
from scai.inference.nuts import (
    ChainProblem,
    ChainTask,
    LockstepProblem,
    RecordingNUTS,
    SamplerWarning,
    one_torch_thread,
    run_chains,
    run_lockstep,
    stack_chains,
)
from scai.inference.posterior import Posterior
from scai.inference.sheets import Sheets
from scai.inference.walls import WallCoordinates, find_walls
from scai.models.density import MarginalDensity
from scai.models.errors import outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.prior import GroupPrior
from scai.models.random_state import keeps_callers_random_state

__all__ = [
    "RecordingNUTS",
    "SamplerWarning",
    "fit_mcmc",
    "game_chain_problem",
    "game_lockstep_problem",
]

#: The Laplace Hessian's eigenvalues are floored here when it is not positive definite.
MIN_PRECISION = 1.0


def coordinate_names(density: MarginalDensity) -> list[str]:
    """The name of each coordinate of the unconstrained vector ``theta``, in the model's
    words: ``pi[s] stick j``, ``log lam[s]``, ``shift_shared[s]``, ``shift[s, currency]``,
    ``logit lapse[s]`` (what a struggling chain's message names)."""
    coords, columns = density.coords, density.columns
    sims, currencies = density.data.sim_ids, density.data.currencies
    per_column: list[str] = [""] * coords.width
    for site, cols in columns.items():
        for j in range(cols.start, cols.stop):
            per_column[j] = site
    names = []
    for s in sims:
        for j, site in enumerate(per_column):
            if site == "pi":
                names.append(f"pi[{s}] stick {j + 1}")
            elif site == "lam":
                names.append(f"log lam[{s}]")
            elif site == "shift":
                names.append(f"shift[{s}, {currencies[j - columns['shift'].start]}]")
            elif site == "shift_shared":
                names.append(f"shift_shared[{s}]")
            else:
                names.append(f"logit {site}[{s}]")
    return names


@dataclass
class Whitening:
    """``theta = mode + L phi`` per simulation (``mode [S, W]``, ``L [S, W, W]`` lower
    triangular): coordinates in which the Laplace approximation is ``N(0, I)``."""

    mode: np.ndarray
    cholesky: np.ndarray

    @classmethod
    def of(cls, density, start: np.ndarray | None = None) -> Whitening:
        """From the Laplace approximation of ``density`` (a :class:`MarginalDensity`, or a
        :class:`~scai.inference.walls.WallCoordinates` of one) at the mode found from
        ``start`` (its eigenvalues floored where the Hessian is not positive definite); the
        identity around the prior median if no mode is found."""
        return cls.of_laplace(density, _laplace(density, start))

    @classmethod
    def of_laplace(cls, density, approx: Laplace | None) -> Whitening:
        S, W = density.coords.n_sims, density.coords.width
        if approx is None:
            return cls(
                density.initial().double().numpy().reshape(S, W), np.tile(np.eye(W), (S, 1, 1))
            )
        return cls(approx.mode.reshape(S, W), np.linalg.cholesky(approx.covariance))

    def theta(self, phi: np.ndarray) -> np.ndarray:
        """``[..., S * W]`` of ``phi [..., S * W]``."""
        S, W = self.mode.shape
        cols = phi.reshape(*phi.shape[:-1], S, W)
        return (self.mode + np.einsum("sij,...sj->...si", self.cholesky, cols)).reshape(phi.shape)

    def phi(self, theta: np.ndarray) -> np.ndarray:
        """The inverse: ``phi [S * W]`` of a flat ``theta [S * W]``."""
        S, W = self.mode.shape
        cols = theta.reshape(S, W) - self.mode
        return np.linalg.solve(self.cholesky, cols[..., None])[..., 0].reshape(theta.shape)

    def tile(self, n: int) -> Whitening:
        """The same map on ``n`` copies of the simulations, copy-major (as
        :meth:`~scai.models.layout.GroupData.tile`)."""
        return Whitening(np.tile(self.mode, (n, 1)), np.tile(self.cholesky, (n, 1, 1)))

    def pull_back(self, grad: np.ndarray) -> np.ndarray:
        """``dU/dphi = L' dU/dtheta`` (flat ``[S * W]``)."""
        S, W = self.mode.shape
        return np.einsum("sji,sj->si", self.cholesky, grad.reshape(S, W)).reshape(-1)


def _laplace(
    density, start: np.ndarray | None = None, mode: np.ndarray | None = None
) -> Laplace | None:
    """The Laplace approximation from ``start`` (or at ``mode``); floored if the mode's
    Hessian is not positive definite."""
    return laplace(density, start, mode=mode) or laplace(
        density, start, min_precision=MIN_PRECISION, mode=mode
    )


def sampler_coordinates(
    density: MarginalDensity,
) -> tuple[WallCoordinates | CloneCoordinates, Whitening]:
    """Where NUTS samples: the shifts scaled by ``lam`` and mapped through their walls
    (:class:`~scai.inference.walls.WallCoordinates`, found at the mode of ``theta``), with a
    latent clone probability the clone map around them
    (:class:`~scai.inference.clones.CloneCoordinates`, its prototype the one the mode
    prefers), then whitened by the Laplace approximation in those coordinates. ``theta =
    mapped.theta(white.theta(psi))``."""
    # The best of the modes found from the prior median and a few prior draws: from the
    # median alone L-BFGS can stop in a local mode (measured: 260 nats above the best; uniform
    # starts in (-2, 2) can land beside one at very low rationality, 3,000 nats above).
    found: dict[int, list[np.ndarray]] = {}
    best = find_best_mode(density, found=found)
    if best is not None:
        best = _start_mode(density, best, found)
    approx = _laplace(density, mode=best)
    walls: list = []
    if approx is not None and (density.coords.latent_shift or density.coords.latent_shared):
        S, W = density.coords.n_sims, density.coords.width
        lam = np.full(S, float(density.hypothesis.rationality))
        if density.coords.latent_lam:
            lam = np.exp(approx.mode.reshape(S, W)[:, density.columns["lam"].start])
        walls = find_walls(density, approx.mode, np.sqrt(approx.variance), lam)
    mapped = WallCoordinates(density, walls)
    if approx is not None and "clone" in density.coords.bounded:
        clones = CloneCoordinates(mapped, *preferred_prototype(density, approx.mode))
        return clones, Whitening.of(clones, clones.phi(approx.mode))
    if approx is None:
        return mapped, Whitening.of(mapped)
    if not walls:
        return mapped, Whitening.of_laplace(density, approx)
    return mapped, Whitening.of(mapped, mapped.phi(approx.mode))


#: The Laplace share of a simulation's posterior mass, in modes other than the one every chain
#: starts at, above which MCMC says so (:func:`_warn_of_other_modes`): a mode with less moves
#: a posterior mean by under 5% of its distance from the one sampled.
OTHER_MODES_SHARE = 0.05
#: How far (in the sampled mode's standard deviations) those modes may move a posterior mean
#: before MCMC says so, whatever their share: a shared shift's second mode at 0.86 holding 3%
#: by Laplace (8% exact), the sampled one 0.02 wide, moves it by 3.4 sd and puts the
#: posterior sd at ~10 times what the chains show. A Laplace share can be several times off
#: either way: a mode it put at 1% (0.47 sd), the exact posterior holds under 1% of, and the
#: chains agree with the exact engine there; one sd keeps the two apart.
OTHER_MODES_MOVE = 1.0


def _start_mode(density: MarginalDensity, best: np.ndarray, found) -> np.ndarray:
    """The mode every chain starts at: ``best`` (the lowest potential the mode search found,
    :func:`~scai.inference.laplace.find_best_mode`), but in a simulation where another mode
    holds more of the mass by Laplace estimates (:func:`~scai.inference.laplace.other_modes`),
    that one: a narrow peak can be the higher and hold less, and the search keeps the first
    of two modes within its margin (a pooled group's shared shift: the search kept a mode
    holding 44% of the exact posterior, the other's peak 0.8 nats higher; the chains sampled
    it alone, and ``pi``'s mean was 0.79 where the exact engine's is 0.48). The chains rarely
    cross between modes, so the other modes are told (:func:`_warn_of_other_modes`)."""
    others = other_modes(density, best, found)
    heavier = [o for o in others if o.heaviest > 1 - o.share]
    if heavier:
        S, W = density.coords.n_sims, density.coords.width
        left = best.reshape(S, W).copy()
        best = left.copy()
        for other in heavier:
            best[other.sim] = other.mode
        best = best.reshape(-1)
        # The mode left is told whatever the search from the new start finds: its tests of a
        # ridge and a distance are one-sided, and seen from the heavier mode a narrow one can
        # fail them (a ridge of 11 nats one way, 9 the other).
        left_behind = {other.sim: [left[other.sim]] for other in heavier}
        others = other_modes(density, best, found, known=left_behind)
    _warn_of_other_modes(density, others)
    return best


def _warn_of_other_modes(density: MarginalDensity, others: list[OtherModes]) -> None:
    """A :class:`DiagnosticWarning` naming each simulation whose other modes found by the mode
    search hold more than :data:`OTHER_MODES_SHARE` of its mass by Laplace estimates, or would
    move its posterior mean by more than :data:`OTHER_MODES_MOVE` sd
    (:func:`scai.inference.laplace.other_modes`): every chain starts at one mode, NUTS
    rarely crosses a valley of many nats, and r-hat cannot see a mode no chain visits."""
    for other in others:
        if other.share <= OTHER_MODES_SHARE and other.moves <= OTHER_MODES_MOVE:
            continue
        sim = density.data.sim_ids[other.sim]
        side = "below" if other.gap >= 0 else "above"
        warnings.warn(
            f"MCMC: simulation {sim!r} has another posterior mode, its peak "
            f"{abs(other.gap):.1f} nats {side} that of the one every chain starts at, holding "
            f"~{other.share:.0%} of the mass by a Laplace estimate (enough to move the "
            f"posterior mean by ~{other.moves:.1f} sd of the mode sampled); the chains rarely "
            "cross to it, so their draws can miss it: compare with engine='exact', or "
            "engine='svi' (its importance draws weigh the modes it finds)",
            DiagnosticWarning,
            stacklevel=outside_scai(),
        )


def sheets_of(density: MarginalDensity, mapped, white: Whitening, chains: int = 1):
    """Where a clone probability is latent, each chain's prototype as part of its state
    (:class:`~scai.inference.sheets.Sheets`: NUTS on one sheet, Gibbs between sheets);
    else ``None``."""
    if isinstance(mapped, CloneCoordinates):
        return Sheets(density, mapped, white, chains)
    return None


def game_chain_problem(data: GroupData, hypothesis: Hypothesis) -> ChainProblem:
    """What one chain samples: the marginal density's potential on coordinates ``psi``
    (``theta = walls.theta(mode + L psi)``, :func:`sampler_coordinates`), from a random start
    ``psi ~ N(0, I)`` drawn under the chain's seed (see :mod:`scai.inference.nuts`).

    Why whiten with the whole Laplace covariance rather than give NUTS its variances: the
    posterior's scales differ 30-fold or more between coordinates (``log lam`` ~0.007 with 200
    users, ``pi``'s sticks ~0.2), and a hierarchical shift is a ridge a diagonal mass matrix
    cannot follow: under ``pooled`` (``delta_c ~ N(delta_0, 0.02)``) ``delta_0`` and
    ``delta_c`` have posterior correlation ~0.97, and NUTS on ``theta`` took step sizes of
    0.05-0.09 and 30-70 leapfrog steps per draw. In ``psi`` the posterior is ``N(0, I)`` near
    the mode (a linear map: for a fixed deviation scale it is the non-centred
    parameterisation, and more), and the sampler's diagonal adaptation corrects the rest.

    Why the non-linear map first (:mod:`scai.inference.walls`): with ``lam`` latent a shift's
    posterior has a wall that moves with ``lam`` (at fixed ``lam * delta``) and is ~20 times
    narrower than the posterior; leapfrog steps that reached it diverged (383 divergences on
    the 64 games of issue 14).

    Why the clone map (:mod:`scai.inference.clones`, where a clone probability is latent):
    users who mostly copy one prototype pin down their type distribution ``c e_z* + (1 - c)
    pi``, not ``c`` and ``pi`` apart, a curved ridge in the density's coordinates; NUTS samples
    that distribution and the copying share of the prototype instead (Jacobian 1).

    Why the prototype is part of the chain's state (:mod:`scai.inference.sheets`, with a
    latent clone probability): where the prototype is not identified, each prototype's
    decomposition of the same type distribution is a sheet of its own that NUTS rarely
    crosses; NUTS samples the joint with the prototype on one sheet, in that sheet's clone
    coordinates, and a Gibbs step moves between sheets.
    """
    density = MarginalDensity(data, hypothesis)
    mapped, white = sampler_coordinates(density)
    sheets = sheets_of(density, mapped, white)
    dtype = torch.get_default_dtype()
    d = density.coords.size

    def theta_of(psi: np.ndarray) -> np.ndarray:
        return mapped.theta(white.theta(psi))

    def value_and_grad(psi: np.ndarray) -> tuple[float, np.ndarray]:
        prototype = None if sheets is None else sheets.z[0]
        value, grad = mapped.value_and_grad(white.theta(psi), prototype)
        return value, white.pull_back(grad)

    def potential(params: dict[str, torch.Tensor]) -> torch.Tensor:
        psi = params["phi"].detach().double().numpy()
        return torch.tensor(value_and_grad(psi)[0], dtype=dtype)

    return ChainProblem(
        potential_fn=potential,
        initial_params={"phi": torch.randn(d, dtype=dtype)},
        constrain=lambda draws: density.constrain(
            torch.as_tensor(theta_of(draws["phi"].double().numpy()), dtype=dtype)
        ),
        initial_inverse_mass=torch.ones(d, dtype=dtype),
        value_and_grad=value_and_grad,
        names=coordinate_names(density),
        unscale=theta_of,
        move=None if sheets is None else sheets.step,
    )


def game_lockstep_problem(data: GroupData, hypothesis: Hypothesis, chains: int) -> LockstepProblem:
    """:func:`game_chain_problem` for ``chains`` chains sampled together: the coordinates
    (Laplace approximation, walls) are found once, and the chains' potentials are the
    simulations of one density on the data tiled ``chains`` times (chain ``b``'s copy of
    simulation ``s`` is simulation ``b * S + s``), so that one call of its gradient serves
    every chain (:func:`scai.inference.hmc.sample_nuts_lockstep`)."""
    density = MarginalDensity(data, hypothesis)
    mapped, white = sampler_coordinates(density)
    sheets = sheets_of(density, mapped, white, chains)
    S, d = density.coords.n_sims, density.coords.size
    dtype = torch.get_default_dtype()

    @functools.cache
    def tiled() -> tuple[WallCoordinates | CloneCoordinates, Whitening]:
        # built on the first gradient: the compiled sampler (PiModel) does not need it, and
        # scoring the tiled data is most of a 200-user problem's set-up (~0.08 s)
        all_data = MarginalDensity(data.tile(chains), hypothesis)
        return mapped.tile(all_data, chains), white.tile(chains)

    def theta_of(psi: np.ndarray) -> np.ndarray:
        return mapped.theta(white.theta(psi))

    def values_and_grads(psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mapped_all, white_all = tiled()
        prototype = None if sheets is None else sheets.z.reshape(-1)  # chain-major, as tiled
        theta = white_all.theta(psi.reshape(-1))
        values, grad = mapped_all.potentials_and_grad(theta, prototype)
        return values.reshape(chains, S).sum(-1), white_all.pull_back(grad).reshape(chains, d)

    return LockstepProblem(
        values_and_grads=values_and_grads,
        start=lambda: torch.randn(d, dtype=dtype),
        chains=chains,
        site="phi",
        constrain=lambda draws: density.constrain(
            torch.as_tensor(theta_of(draws["phi"].double().numpy()), dtype=dtype)
        ),
        names=coordinate_names(density),
        unscale=theta_of,
        move=None if sheets is None else sheets.step,
        compiled=PiModel.of(density, mapped, white),
    )


#: How far (nats) a chain's mode of a simulation may sit below the best chain's, in log mass
#: (:func:`stuck_chains`), before the chain counts as stuck in a minor mode: it holds e^-10
#: (5e-5) of the best one's mass.
STUCK_GAP = 10.0
#: The quantiles of the two chains' log densities that must not overlap as well: a chain in
#: the same mode, however slow, has draws as high as the best chain's low ones.
STUCK_QUANTILES = (0.01, 0.99)


@dataclass(frozen=True)
class StuckChain:
    """A chain whose draws of simulation ``sim`` (its index) all sit in a mode ``gap`` nats
    of log mass below chain ``best``'s."""

    chain: int
    sim: int
    best: int
    gap: float


def log_masses(log_joint: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``[chains, S]``: each chain's estimate of the log mass of the mode it samples, by the
    Gaussian that matches its draws: ``E[log p] + H``, ``H = log det(2 pi e Sigma) / 2`` the
    entropy of a Gaussian of the draws' covariance ``Sigma`` (exact for a Gaussian mode: log p
    is then log Z plus the Gaussian's log density, whose mean is -H). ``log_joint [chains,
    draws, S]`` each draw's log density, ``values [chains, draws, S, W]`` the coordinates it is
    a density of. A wider mode has lower density and more volume: compared by density alone, a
    chain in a mode as heavy as the best but wider would count as stuck in a minor one."""
    C, D, S, W = values.shape
    centred = values - values.mean(1, keepdims=True)
    cov = np.einsum("cdsi,cdsj->csij", centred, centred) / max(D - 1, 1)
    # a coordinate the draws do not move (a site the data pin to rounding) adds no volume
    cov = cov + np.eye(W) * 1e-12
    _, logdet = np.linalg.slogdet(2 * np.pi * np.e * cov)
    return log_joint.mean(1) + 0.5 * logdet


def stuck_chains(log_joint: np.ndarray, values: np.ndarray) -> list[StuckChain]:
    """The chains stuck in a minor mode, by ``log_joint [chains, draws, S]`` (each draw's log
    density per simulation) and the draws' ``values [chains, draws, S, W]``: per simulation,
    a chain whose mode's log mass (:func:`log_masses`) is more than :data:`STUCK_GAP` below the
    best chain's and whose draws' upper log density quantile (:data:`STUCK_QUANTILES`) is
    below the best chain's lower one. Every chain starts at the best mode the mode search
    found, yet warmup's first large steps can throw one over a ridge into a mode it cannot
    leave (measured: 26 nats below, averaged with the other chain into a mixture of pi
    between the two, 0.37 against exact's 0.68). A chain in a wider mode of as much mass, or
    in the wide part of a funnel, is not stuck; nor is one whose draws reach the best's. One
    per chain (its first simulation so stuck)."""
    masses = log_masses(log_joint, values)  # [chains, S]
    low, high = np.quantile(log_joint, STUCK_QUANTILES, axis=1)  # [chains, S] each
    best = masses.argmax(0)  # [S]
    found: dict[int, StuckChain] = {}
    for s, b in enumerate(best):
        for c in range(log_joint.shape[0]):
            gap = float(masses[b, s] - masses[c, s])
            if c not in found and gap > STUCK_GAP and high[c, s] < low[b, s]:
                found[c] = StuckChain(c, s, int(b), gap)
    return sorted(found.values(), key=lambda stuck: stuck.chain)


def _draw_values(posterior: Posterior) -> np.ndarray:
    """``[chains, draws, S, W]``: each draw's continuous sites per simulation, in the
    coordinates :meth:`Posterior.log_joint_by_simulation` is a density of (``pi`` but its
    last share, ``lam``, the shifts, the Beta sites)."""
    parts = []
    for site, value in posterior.draws.items():
        value = value.detach().double().numpy()
        if site == "pi":
            value = value[..., :-1]
        parts.append(value.reshape(*value.shape[:3], -1))
    return np.concatenate(parts, -1)


def _stuck_chains_of(posterior: Posterior) -> list[StuckChain]:
    """:func:`stuck_chains` of a posterior's chains; none where fewer than two, or where every
    chain is stuck in some simulation (r-hat says so: no chain to keep)."""
    if posterior.n_chains < 2:
        return []
    stuck = stuck_chains(posterior.log_joint_by_simulation().numpy(), _draw_values(posterior))
    return stuck if len(stuck) < posterior.n_chains else []


def _tell_dropped(
    posterior: Posterior, stuck: list[StuckChain], numbers: list[int], replaced: bool
) -> None:
    """A :class:`DiagnosticWarning` per stuck chain (``numbers``: the chains' numbers in the
    fit, by position), saying whether a new chain replaces it."""
    kept = posterior.n_chains - len(stuck)
    for chain in stuck:
        sim = posterior.data.sim_ids[chain.sim]
        then = (
            "a new chain replaces it"
            if replaced
            else f"the posterior is the other {kept} chain(s)' draws (more chains, or "
            "engine='exact', to check)"
        )
        warnings.warn(
            f"MCMC: chain {numbers[chain.chain]} dropped: in simulation {sim!r} it sat in a "
            f"mode {chain.gap:.1f} nats of log mass below chain {numbers[chain.best]}'s (by a "
            "Gaussian of each chain's draws; their log densities do not overlap), a mode it "
            f"could not leave; {then}",
            DiagnosticWarning,
            stacklevel=outside_scai(),
        )


@keeps_callers_random_state  # it seeds the global generators (pyro.set_rng_seed)
def fit_mcmc(
    data: GroupData,
    hypothesis: Hypothesis,
    *,
    table=None,
    seed: int = 0,
    num_chains: int = 2,
    warmup: int = 300,
    samples: int = DEFAULT_DRAWS["mcmc"],
    target_accept: float = 0.8,
    parallel: bool | None = None,
    progress: bool = False,
    compiled: bool = True,
) -> Posterior:
    """NUTS with ``num_chains`` chains of ``warmup + samples`` iterations.

    ``parallel``: ``None`` (default) runs the chains in lockstep in this process through one
    batched gradient of the density's NumPy backend (:func:`game_lockstep_problem`);
    ``True``: one worker process per chain; ``False``: one chain after another here. Each
    ``(seed, chain)`` starts at the same point in every mode. With ``parallel=None``, where
    ``pi`` is the only latent site and the action tables are fixed (the presets ``neutral``,
    ``stereotyped``, ``currency_invariant``), the chains run in compiled code instead
    (:mod:`scai.inference.compiled`: the same sampler, its transitions the same to rounding,
    its draws after a long run not the same for one seed; the struggle
    monitor's messages come once the chains have run), unless ``compiled=False`` or the
    environment says ``SCAI_COMPILED=0``. A chain stuck in a minor mode (:func:`stuck_chains`)
    is replaced once by a chain of the next number (``num_chains``, ...), and dropped if that
    one is stuck too, each named in a :class:`DiagnosticWarning`; ``diagnostics["chains"]``
    lists the chains kept."""
    given = {"num_chains": num_chains, "warmup": warmup, "samples": samples}
    given |= {"target_accept": target_accept, "parallel": parallel, "progress": progress}
    sampling = _checked_sampling(data, hypothesis, seed, {**given, "compiled": compiled})
    _check_something_to_sample(data, hypothesis)
    results = _sample(sampling, 0, sampling.num_chains)
    with one_torch_thread():  # small tensors: see one_torch_thread
        posterior = _posterior_of(sampling, table, results)
    posterior, results, numbers = _without_stuck_chains(sampling, table, posterior, results)
    with one_torch_thread():
        # How the chains ran is a fact of this run, not an option: settings hold only what
        # fit(..., **settings) takes, so a file's settings refit it.
        ran = {"lockstep": sampling.lockstep, "compiled": all(r.compiled for r in results)}
        ran["chains"] = numbers  # the chain numbers kept (a stuck one replaced or dropped)
        posterior.diagnostics = {**mcmc_diagnostics(posterior, chains=numbers), **ran}
    return posterior


@dataclass(frozen=True)
class _Sampling:
    """What :func:`fit_mcmc`'s chains sample (``data`` under ``hypothesis``) and how: its
    options, checked (:func:`_checked_sampling`)."""

    data: GroupData
    hypothesis: Hypothesis
    seed: int
    num_chains: int
    warmup: int
    samples: int
    target_accept: float
    parallel: bool | None
    progress: bool
    compiled: bool

    @property
    def lockstep(self) -> bool:
        """Whether the chains run in lockstep in this process (``parallel=None``)."""
        return self.parallel is None

    def settings(self) -> dict:
        """The posterior's ``settings``: the options ``fit(..., **settings)`` takes again
        (``compiled``: allowed to; the diagnostics say whether the chains were)."""
        return {
            "num_chains": self.num_chains,
            "warmup": self.warmup,
            "samples": self.samples,
            "target_accept": self.target_accept,
            "parallel": self.parallel,
            "compiled": self.compiled,
        }


def _checked_sampling(
    data: GroupData, hypothesis: Hypothesis, seed: object, given: dict
) -> _Sampling:
    """The seed and the options ``given`` (every option of :func:`fit_mcmc`) as
    :func:`~scai.inference.fit.fit` checks them, or an :class:`EngineError` naming the first
    bad one; ``parallel``, ``progress`` and ``compiled`` are kept as given."""
    from scai.inference.fit import checked_engine_options

    checked = checked_engine_options("mcmc", seed, given)
    return _Sampling(
        data,
        hypothesis,
        checked["seed"],
        checked["num_chains"],
        checked["warmup"],
        checked["samples"],
        checked["target_accept"],
        given["parallel"],
        given["progress"],
        given["compiled"],
    )


def _check_something_to_sample(data: GroupData, hypothesis: Hypothesis) -> None:
    """An :class:`EngineError` where ``hypothesis`` leaves nothing continuous to sample on
    ``data`` (its posterior is the exact engine's)."""
    if GroupPrior(hypothesis).coordinates(data.shape[0], len(data.currencies)).width == 0:
        raise EngineError(
            f"hypothesis {hypothesis.name!r} has nothing continuous for MCMC to sample (one "
            "type, and no latent rationality, shift, lapse, stereotype strength or clone "
            "probability): its posterior is exact; fit it with engine='exact'"
        )


def _sample(sampling: _Sampling, first: int, count: int) -> list:
    """Chains ``first`` to ``first + count - 1`` of the fit (their seeds by number): in
    lockstep here, else one task each (in ``count`` worker processes where ``parallel``);
    each problem a chain's struggle monitor reported is a :class:`SamplerWarning`."""
    options = {
        "warmup": sampling.warmup,
        "samples": sampling.samples,
        "target_accept": sampling.target_accept,
    }
    problem = (sampling.data, sampling.hypothesis)
    progress = sampling.progress
    if sampling.lockstep:
        found = run_lockstep(
            game_lockstep_problem,
            problem,
            seed=sampling.seed,
            chains=count,
            progress=progress,
            speak=progress,
            compiled=sampling.compiled,
            first_chain=first,
            **options,
        )
    else:
        tasks = [
            ChainTask(
                game_chain_problem,
                problem,
                seed=sampling.seed,
                chain=first + c,
                progress=progress and first + c == 0,
                speak=progress,
                **options,
            )
            for c in range(count)
        ]
        found = run_chains(tasks, workers=count if sampling.parallel else 1)
    for c, result in enumerate(found):
        for message in result.problems:
            warnings.warn(
                f"MCMC chain {first + c}: {message}", SamplerWarning, stacklevel=outside_scai()
            )
    return found


def _posterior_of(sampling: _Sampling, table, results: list) -> Posterior:
    """The posterior of the chains' ``results``: their draws of the latent sites."""
    chains, stats = stack_chains(results)
    return Posterior.from_draws(
        "mcmc",
        sampling.data,
        sampling.hypothesis,
        table,
        {site: chains[site] for site in latent_sites(sampling.hypothesis)},
        sample_stats=stats,
        settings=sampling.settings(),
        seed=sampling.seed,
    )


def _without_stuck_chains(
    sampling: _Sampling, table, posterior: Posterior, results: list
) -> tuple[Posterior, list, list[int]]:
    """``posterior`` of ``results`` without its chains stuck in a minor mode
    (:func:`_stuck_chains_of`): each is replaced once by a chain of the next number (started,
    as every chain, at the best mode), and one stuck again is dropped, each told
    (:func:`_tell_dropped`). Returns the posterior, the chains' results and their numbers."""
    numbers = list(range(sampling.num_chains))  # each result's number
    for replace in (True, False):
        if not (stuck := _stuck_chains_of(posterior)):
            break
        _tell_dropped(posterior, stuck, numbers, replaced=replace)
        gone = {x.chain for x in stuck}
        results = [r for c, r in enumerate(results) if c not in gone]
        numbers = [n for c, n in enumerate(numbers) if c not in gone]
        if replace:
            results += _sample(sampling, sampling.num_chains, len(gone))
            numbers += range(sampling.num_chains, sampling.num_chains + len(gone))
        with one_torch_thread():
            posterior = _posterior_of(sampling, table, results)
    return posterior, results, numbers
