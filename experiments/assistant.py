"""How the assistant acts: by posterior sampling (the default) or on the posterior predictive.

Posterior sampling, as in PSRL: once per epoch the assistant draws a parameter set ``theta``
from its posterior (the prior before any data) and the norm of a randomly chosen member of the
group (the type ``k`` drawn from that member's posterior given ``theta``; from ``pi`` when no
member has been seen), then acts as a user of type ``k`` would: offers ``o ~ P_offer[k]`` and
accepts with ``P_accept[k](o)``. Acting on the posterior predictive averages those action
probabilities over draws and types instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scai.inference.posterior import Posterior
from scai.models.game import get_currency
from scai.models.hypotheses import Hypothesis
from scai.models.model import group_utilities
from scai.models.policies import rational_tables
from scai.models.prior import GroupPrior

ACTING = ("sample", "predictive")


@dataclass
class Norms:
    """Per simulation: the assistant's action probabilities this epoch."""

    offer_probs: list[np.ndarray]  # per sim, [pot + 1]
    accept_probs: list[np.ndarray]  # per sim, [pot + 1]
    types: list[int | None]  # the sampled type (posterior sampling), else None


def assistant_norms(
    posterior: Posterior | None,
    hypothesis: Hypothesis,
    pots: list[int],
    currencies: list[str],
    rng: np.random.Generator,
    acting: str = "sample",
    n_prior_draws: int = 1000,
    prior_generator: torch.Generator | None = None,
    table_cache: dict | None = None,
) -> Norms:
    """The assistant's offer and accept probabilities for each simulation's pot and currency.

    Without a posterior (before any data) the assistant acts on ``n_prior_draws`` draws from
    the hypothesis's prior (:class:`~scai.models.prior.GroupPrior`), made with
    ``prior_generator`` (default: one seeded with 0). ``table_cache``: a dict kept across
    calls with the same ``hypothesis`` (the protocol's epochs), where posterior sampling keeps
    the action tables of each ``(pot, lam, shift)`` it has computed (the same numbers)."""
    if acting not in ACTING:
        raise ValueError(f"acting must be one of {', '.join(ACTING)}, got {acting!r}")
    S = len(pots)
    if len(currencies) != S:
        raise ValueError(f"pots and currencies: one per simulation, got {S} and {len(currencies)}")
    if posterior is not None and len(posterior.data.sim_ids) != S:
        raise ValueError(
            f"pots: one per simulation of the posterior, in its order ({posterior.data.sim_ids}), "
            f"got {S}"
        )
    if posterior is None:
        generator = prior_generator or torch.Generator().manual_seed(0)
        essential = torch.tensor([[float(get_currency(c).essential)] for c in currencies])
        draws = GroupPrior(hypothesis).sample((n_prior_draws, S), essential, generator)
        weights, lam, shift = draws["pi"], draws["lam"], draws["shift"][..., 0]
    else:
        # Posterior sampling needs one draw's weights per simulation: those alone are worked
        # out (:meth:`Posterior.type_weights` with ``draws``), not all draws' (10x the time).
        weights = posterior.type_weights("member") if acting == "predictive" else None
        lam = posterior.lam()
        by_currency = {c: posterior.shift(c) for c in dict.fromkeys(currencies)}  # seeded
        shift = torch.stack(
            [by_currency[c][:, s] for s, c in enumerate(currencies)], dim=-1
        )  # [D, S]

    def tables(d, s):
        """The norm's action tables for draw(s) ``d`` of simulation ``s``: ``[..., K, O]``.

        The assistant acts by the norm without lapses: a lapse is how the model explains a
        user's random act, not part of the norm (an assistant copies no one's slips). Draws
        repeat parameter values (a grid engine's draws are grid points; the prior's draws
        share the fixed rationality and shift): the tables are computed once per distinct
        ``(lam, shift)``, then gathered per draw (the same numbers as per draw)."""
        values = torch.stack([lam[d, s].reshape(-1).double(), shift[d, s].reshape(-1).double()], -1)
        if table_cache is not None and len(values) == 1:  # one draw: its tables may be known
            key = (pots[s], *values[0].tolist())
            if key not in table_cache:
                table_cache[key] = _tables(values, s)
            return table_cache[key]
        return _tables(values, s)

    def _tables(values, s):
        """:func:`tables` of the draws whose ``(lam, shift)`` are ``values [D, 2]``."""
        pairs, which = torch.unique(values, dim=0, return_inverse=True)
        utilities = group_utilities(hypothesis, torch.tensor([pots[s]]), pairs[:, 1, None, None])
        t = rational_tables(utilities, pairs[:, 0, None, None])
        offer = t.offer_logp[:, 0, 0, :, 0].exp()[which]
        return offer, t.accept_prob()[:, 0, 0, :, 0][which]

    offers, accepts, types = [], [], []
    if acting == "sample":
        # Each simulation's draw d_s and the uniform that picks its type k_s, in the order
        # that ``d = rng.integers(D); k = rng.choice(K, p=p)`` per simulation takes them (the
        # choice is one uniform against the normalised cumulative p): the same numbers, with
        # the draws' weights worked out for all simulations at once.
        draw, uniform = [], []
        for _ in range(S):
            draw.append(int(rng.integers(lam.shape[0])))
            uniform.append(rng.random())
        at = torch.tensor(draw)
        if weights is not None:
            chosen = weights[at, torch.arange(S)]
        else:
            chosen = posterior.member_weights_at(at)
        chosen = chosen.double().numpy()
    for s in range(S):
        if acting == "sample":
            d = draw[s]
            k = _pick(chosen[s], uniform[s])
            offer, accept = tables(d, s)
            offers.append(offer[0, k].double().numpy())
            accepts.append(accept[0, k].double().numpy())
            types.append(k)
        else:
            offer, accept = tables(slice(None), s)  # [D, K, O]
            ws = weights[:, s].unsqueeze(-1)
            offers.append((ws * offer).sum(1).mean(0).double().numpy())
            accepts.append((ws * accept).sum(1).mean(0).double().numpy())
            types.append(None)
    return Norms(offers, accepts, types)


def _pick(weights: np.ndarray, uniform: float) -> int:
    """The category that ``rng.choice(len(p), p=p)`` with ``p = weights / weights.sum()``
    returns when its uniform is ``uniform``."""
    p = weights / weights.sum()
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"type weights must be finite and non-negative, got {weights.tolist()}")
    cdf = p.cumsum()
    cdf /= cdf[-1]
    return int(cdf.searchsorted(uniform, side="right"))
