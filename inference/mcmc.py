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

import os

import torch

from scai.inference.diagnostics import mcmc_diagnostics
from scai.inference.draws import latent_sites
from scai.inference.laplace import laplace
from scai.inference.nuts import ChainProblem, ChainTask, RecordingNUTS, run_chains, stack_chains
from scai.inference.posterior import Posterior
from scai.models.density import MarginalDensity
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData

__all__ = ["RecordingNUTS", "fit_mcmc", "game_chain_problem"]


def game_chain_problem(data: GroupData, hypothesis: Hypothesis) -> ChainProblem:
    """What one chain samples: the marginal density's potential on its unconstrained vector
    ``theta``, from a random start (built under the chain's seed, see
    :mod:`scai.inference.nuts`)."""
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
    return ChainProblem(
        potential_fn=lambda params: density(params["theta"]),
        initial_params={"theta": start},
        constrain=lambda draws: density.constrain(draws["theta"]),
        initial_inverse_mass=inverse_mass,
    )


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
    tasks = [
        ChainTask(
            game_chain_problem,
            (data, hypothesis),
            seed=seed,
            chain=c,
            warmup=warmup,
            samples=samples,
            target_accept=target_accept,
            progress=progress and c == 0,
        )
        for c in range(num_chains)
    ]
    chains, stats = stack_chains(run_chains(tasks, workers=num_chains if parallel else 1))
    draws = {site: chains[site] for site in latent_sites(hypothesis)}
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
