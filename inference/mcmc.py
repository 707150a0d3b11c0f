"""The MCMC engine: NUTS on the continuous sites, with the discrete sites summed out.

The potential is the negative log density of :class:`scai.models.density.MarginalDensity`, the
model with each user's policy and manner summed out by hand (equal to the enumerated Pyro
model's density; a test checks it), on an unconstrained vector (stick-breaking ``pi``, log
``lam``, currency shifts); NUTS runs on its NumPy backend, whose gradient is derived by hand
(equal to the torch reference's autograd; 2.7-3.3x cheaper per gradient).
Discrete sites are recovered afterwards, Rao-Blackwellised: each user's
``P(z_u = k | theta, data)`` averaged over draws.

Label switching cannot happen: the policy types are named utilities, not exchangeable
components. Chains run in separate processes when the machine has a core for each (Pyro's own
multi-chain mode needs one more core than chains), else one after another.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer.mcmc import MCMC, NUTS

from scai.inference.diagnostics import mcmc_diagnostics
from scai.inference.draws import latent_sites
from scai.inference.laplace import laplace
from scai.inference.posterior import Posterior
from scai.inference.workers import shutdown_workers, worker_pool
from scai.models.density import MarginalDensity
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData


class RecordingNUTS(NUTS):
    """NUTS that records, per iteration, what ArviZ's ``sample_stats`` expects: ``diverging``,
    ``step_size``, ``tree_depth``, ``n_steps`` (leapfrog steps) and ``energy`` (the
    Hamiltonian after the momentum refresh)."""

    def __init__(self, *args: Any, initial_inverse_mass: torch.Tensor | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.initial_inverse_mass = initial_inverse_mass
        self.stats: dict[str, list] = {
            k: [] for k in ("diverging", "step_size", "tree_depth", "n_steps", "energy", "lp")
        }
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
        out = super().sample(params)
        _, new_potential, _ = self._fetch_from_cache()
        n_steps = self._n_evals
        self.stats["diverging"].append(len(self._divergences) > n_div)
        self.stats["step_size"].append(step_size)
        self.stats["n_steps"].append(n_steps)
        self.stats["tree_depth"].append(int(math.ceil(math.log2(n_steps + 1))) if n_steps else 0)
        self.stats["energy"].append(start_potential + self._kinetic)
        self.stats["lp"].append(-float(new_potential) if new_potential is not None else np.nan)
        return out


def _run_chain(
    data: GroupData,
    hypothesis: Hypothesis,
    chain: int,
    seed: int,
    warmup: int,
    samples: int,
    progress: bool,
    target_accept: float,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One NUTS chain; returns constrained draws ``[samples, ...]`` and per-draw stats."""
    torch.set_num_threads(1)
    pyro.set_rng_seed(seed * 1000 + chain)
    density = MarginalDensity(data, hypothesis)
    # Start from the prior median: uniform starts in (-2, 2) can land beside a local mode at
    # very low rationality (measured: 3,000 nats below the global one) and stay there. From
    # there, the Laplace approximation's mode and scales (see inference.laplace).
    approx = laplace(density)
    dtype = torch.get_default_dtype()
    if approx is None:
        start = density.initial() + 0.1 * torch.randn(density.coords.size)
        inverse_mass = None
    else:
        sd = torch.as_tensor(approx.variance, dtype=dtype).sqrt()
        start = torch.as_tensor(approx.mode, dtype=dtype) + sd * torch.randn(sd.shape)
        inverse_mass = sd**2
    kernel = RecordingNUTS(
        potential_fn=lambda params: density(params["theta"]),
        target_accept_prob=target_accept,
        initial_inverse_mass=inverse_mass,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc = MCMC(
            kernel,
            num_samples=samples,
            warmup_steps=warmup,
            initial_params={"theta": start},
            disable_progbar=not progress,
        )
        mcmc.run()
    theta = mcmc.get_samples()["theta"].detach()
    sites = density.constrain(theta)
    draws = {k: v.numpy() for k, v in sites.items()}
    stats = {k: np.asarray(v[warmup:]) for k, v in kernel.stats.items()}
    return draws, stats


def fit_mcmc(
    data: GroupData,
    hypothesis: Hypothesis,
    *,
    table=None,
    seed: int = 0,
    num_chains: int = 2,
    warmup: int = 300,
    samples: int = 500,
    target_accept: float = 0.8,
    parallel: bool | None = None,
    progress: bool = False,
) -> Posterior:
    """NUTS with ``num_chains`` chains of ``warmup + samples`` iterations."""
    if num_chains < 1:
        raise ValueError(f"num_chains must be >= 1, got {num_chains}")
    if parallel is None:
        parallel = num_chains > 1 and (os.cpu_count() or 1) >= num_chains
    args = [
        (data, hypothesis, c, seed, warmup, samples, progress and c == 0, target_accept)
        for c in range(num_chains)
    ]
    if parallel:
        try:
            results = list(worker_pool(num_chains).map(_run_chain, *zip(*args, strict=True)))
        except BrokenProcessPool as err:
            shutdown_workers()  # the next call starts fresh processes
            raise RuntimeError(
                "fit_mcmc: a chain's process died. Chains run in spawned processes, which "
                "import the calling script again: call fit(..., engine='mcmc') under "
                "`if __name__ == '__main__':`, or pass parallel=False to run the chains here"
            ) from err
    else:
        threads = torch.get_num_threads()
        try:
            results = [_run_chain(*a) for a in args]
        finally:
            torch.set_num_threads(threads)

    draws = {
        site: torch.stack([torch.as_tensor(r[0][site]) for r in results])
        for site in latent_sites(hypothesis)
    }
    stats = {k: np.stack([r[1][k] for r in results]) for k in results[0][1]}
    posterior = Posterior.from_draws(
        "mcmc",
        data,
        hypothesis,
        table,
        draws,
        sample_stats=stats,
        settings={
            "num_chains": num_chains,
            "warmup": warmup,
            "samples": samples,
            "target_accept": target_accept,
            "parallel": parallel,
        },
        seed=seed,
    )
    posterior.diagnostics = mcmc_diagnostics(posterior)
    return posterior
