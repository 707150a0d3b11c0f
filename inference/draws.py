"""Reshaping sampled sites into the ``[chains, draws, S, ...]`` layout of ``Posterior.draws``."""

from __future__ import annotations

import torch

from scai.models.prior import GroupPrior

#: Each engine's default number of draws: ``num_draws`` (exact, svi), ``samples`` per chain
#: (mcmc); ``scai fit --draws``'s help states them.
DEFAULT_DRAWS: dict[str, int] = {"exact": 1000, "svi": 1000, "mcmc": 500}


def squeeze_site(name: str, value: torch.Tensor, n_sims: int) -> torch.Tensor:
    """``[..., S, 1, 1, K]`` (pi), ``[..., S, 1, 1]`` (scalars) or ``[..., S, 1, C]`` (shift)
    -> ``[..., S, K]``, ``[..., S]`` or ``[..., S, C]``."""
    if name == "pi":
        return value.reshape(*value.shape[:-4], n_sims, value.shape[-1])
    if name == "shift":
        return value.reshape(*value.shape[:-3], n_sims, value.shape[-1])
    return value.reshape(*value.shape[:-3], n_sims)


def latent_sites(hypothesis) -> tuple[str, ...]:
    """The continuous sites the hypothesis makes latent."""
    return GroupPrior(hypothesis).latent_sites()
