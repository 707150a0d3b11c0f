"""Which continuous quantities besides ``pi`` the exact engine grids (the latent scalars: log
rationality and the currency shifts), how many it takes, and how grid coordinates map to the
model's parameters."""

from __future__ import annotations

import math

import torch

from scai.inference.errors import EngineError
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.prior import GroupPrior

MAX_LATENT_SCALARS = 2


def latent_scalars(hypothesis: Hypothesis, data: GroupData) -> list[str]:
    """Names of the latent scalars besides ``pi`` that the exact engine must grid over.

    The grid lives on what the data identify: ``log lam`` and the total shift ``delta_c`` of
    each currency in the data (a fully pooled hypothesis, ``currency_scale = 0``, has the one
    shared shift instead). The shared shift of a partially pooled hypothesis is Gaussian given
    the ``delta_c`` and is drawn from that conditional, not gridded.
    """
    prior = GroupPrior(hypothesis)
    names = []
    if prior.latent_lam:
        names.append("lam")
    if prior.latent_shift:
        names.extend(f"shift[{c}]" for c in data.currencies)
    elif prior.latent_shared:
        names.append("shift_shared")
    return names


def busiest_scalars(hypothesis: Hypothesis, data: GroupData) -> tuple[int, list[str]]:
    """The simulation that plays the most currencies and its latent scalars, on its data cut
    to those currencies: the most any simulation fitted alone grids over."""
    busiest = int(data.played_currencies().sum(1).argmax()) if data.shape[0] else 0
    one = data.sims_subset(torch.tensor([busiest])) if data.shape[0] > 1 else data
    return busiest, latent_scalars(hypothesis, one.only_played_currencies())


def check_exact(hypothesis: Hypothesis, data: GroupData) -> None:
    """Refuse a hypothesis with more than :data:`MAX_LATENT_SCALARS` latent scalars in some
    simulation: the engine fits each simulation alone (with a latent scalar) on the data cut
    to the currencies it plays (:meth:`GroupData.only_played_currencies`; the other shifts are
    drawn from their prior: :func:`scai.inference.exact.fit_exact`), so the one that plays the
    most currencies is counted, cut the same way."""
    if len(latent_scalars(hypothesis, data)) <= MAX_LATENT_SCALARS:  # all its currencies: fits
        return
    busiest, names = busiest_scalars(hypothesis, data)
    if len(names) > MAX_LATENT_SCALARS:
        where = ""
        if data.shape[0] > 1:
            over = _over_budget(hypothesis, data)
            shown = ", ".join(repr(data.sim_ids[s]) for s in over[:SHOWN_SIMULATIONS])
            more = (
                f" and {len(over) - SHOWN_SIMULATIONS} more"
                if len(over) > SHOWN_SIMULATIONS
                else ""
            )
            where = (
                f" in simulation {data.sim_ids[busiest]!r}, and {len(over)} of {data.shape[0]} "
                f"simulations have more than {MAX_LATENT_SCALARS} ({shown}{more})"
            )
        raise EngineError(
            f"engine 'exact' integrates at most {MAX_LATENT_SCALARS} latent scalars besides pi; "
            f"hypothesis {hypothesis.name!r} on this data has {len(names)} "
            f"({', '.join(names)}){where}: use engine='svi' or engine='mcmc'"
        )


#: Simulations a refusal of :func:`check_exact` names (then how many more).
SHOWN_SIMULATIONS = 5


def _over_budget(hypothesis: Hypothesis, data: GroupData) -> list[int]:
    """The simulations with more than :data:`MAX_LATENT_SCALARS` latent scalars, in order. A
    simulation's count depends only on how many currencies it plays: one of each count is
    counted (:func:`latent_scalars` on it, cut to those currencies)."""
    played = data.played_currencies().sum(1)  # [S]
    over = torch.zeros(data.shape[0], dtype=torch.bool)
    for count in played.unique().tolist():
        at = played == count
        one = data.sims_subset(at.nonzero()[:1, 0]).only_played_currencies()
        if len(latent_scalars(hypothesis, one)) > MAX_LATENT_SCALARS:
            over |= at
    return over.nonzero()[:, 0].tolist()


def grid_parameters(u: torch.Tensor, prior: GroupPrior, data: GroupData):
    """Grid coordinates ``u [..., d]`` -> ``lam [...]`` and data-currency shifts ``[..., C]``
    (the coordinates of :meth:`GroupPrior.scalar_gaussian`)."""
    C = len(data.currencies)
    j = 0
    lam = torch.full(u.shape[:-1], math.exp(prior.lam_loc), dtype=torch.float64)
    if prior.latent_lam:
        lam = u[..., 0].exp()
        j = 1
    fixed = prior.shift_mean(torch.zeros(()), data.essential.double())
    if prior.latent_shift:
        shift = u[..., j : j + C]
    elif prior.latent_shared:
        shift = u[..., j : j + 1] + fixed
    else:
        shift = fixed.expand(*u.shape[:-1], C)
    return lam, shift
