"""Reshaping sampled sites into the ``[chains, draws, S, ...]`` layout of ``Posterior.draws``."""

from __future__ import annotations

import torch

LATENT_SITES = ("pi", "lam", "shift_shared", "shift")


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
    sites = ["pi"]
    if hypothesis.rationality_is_latent:
        sites.append("lam")
    if hypothesis.shared_scale > 0:
        sites.append("shift_shared")
    if hypothesis.currency_scale > 0:
        sites.append("shift")
    return tuple(sites)
