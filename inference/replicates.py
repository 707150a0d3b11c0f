"""Posterior-predictive replicates of a data set, one per posterior draw, from the model itself.

For every draw ``theta_d`` of a :class:`~scai.inference.posterior.Posterior`, each user's type
is drawn from ``P(z_u | theta_d, data)`` and its manner from ``P(m_u | z_u, tones_u)``; then
:func:`scai.models.predictive.replicate` runs the generative model forward over the same games.
The replicated actions are laid out like the observations: per row of the interaction table
(``offer``, ``accepted``, ``proposer_tone``, ``responder_tone``; a tone as its index in
:data:`~scai.models.language.TONES`, -1 where none was heard) and per user
(``user_actions``, the summary statistic below). Actions that are not a user's (the assistant's,
an unknown proposer's offer) keep their observed value in every replicate.

``user_actions`` is one number per user, ``T(y_u)``: the units it offered as proposer plus the
offers it accepted as responder. The model's log-likelihood factorises over users (each user's
policy and manner are summed out), so the user is the unit of ``az.loo``; ``T`` gives
``az.loo_pit`` an observation per user to check against its leave-one-user-out predictive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from scai.models.language import TONES
from scai.models.layout import GroupData
from scai.models.marginal import manner_given_type, prototype_posterior, type_posterior
from scai.models.predictive import replicate

ACTION_VARIABLES = ("offer", "accepted", "proposer_tone", "responder_tone")


@dataclass
class Replicates:
    """Replicated and observed actions: ``replicated[name]`` is ``[chains, draws, rows]`` for
    the table's actions and ``[chains, draws, users]`` for ``user_actions``; ``observed[name]``
    the same without the sample dimensions."""

    replicated: dict[str, np.ndarray]
    observed: dict[str, np.ndarray]


def tone_codes(values: pd.Series) -> np.ndarray:
    """Tones as their index in :data:`TONES`, -1 where none was heard."""
    return pd.Index(TONES).get_indexer(values.astype(str).to_numpy()).astype(np.int8)


def user_actions(data: GroupData, offer: torch.Tensor, accept: torch.Tensor) -> torch.Tensor:
    """``[..., S, U]``: ``T(y_u)`` (module docstring) from per-event ``offer`` and ``accept``
    ``[..., S, U, E]``."""
    proposed = (data.is_proposer & data.event_mask).to(torch.float64)
    responded = (data.is_responder & data.event_mask).to(torch.float64)
    return (offer.double() * proposed + accept.double() * responded).sum(-1)


def real_users(value: torch.Tensor, data: GroupData) -> np.ndarray:
    """``[..., S, U] -> [..., users]``: the real users, simulation by simulation."""
    s_idx, u_idx = torch.nonzero(data.user_mask, as_tuple=True)
    return value[..., s_idx, u_idx].numpy()


def posterior_replicates(posterior, seed: int) -> Replicates:
    """One replicate of the data per posterior draw (module docstring)."""
    data, hyp = posterior.data, posterior.hypothesis
    generator = torch.Generator().manual_seed(seed)
    pi = posterior.flat_draws("pi")
    D = pi.shape[0]
    policy = _types(posterior, generator)  # [D, S, U]
    S, U = policy.shape[1:]
    strength = posterior.bounded("strength")
    sims, users = torch.arange(S).reshape(S, 1), torch.arange(U)
    if strength is None:
        given_type = manner_given_type(data, hyp)  # [S, U, K, M]
        manner = _categorical(given_type[sims, users, policy], generator)  # [D, S, U]
    else:
        given_type = manner_given_type(data, hyp, strength)  # [D, S, U, K, M]
        draw = torch.arange(D).reshape(D, 1, 1)
        manner = _categorical(given_type[draw, sims, users, policy], generator)
    sites = {name: posterior.flat_draws(name) for name in posterior.draws}
    sites.update(policy=policy, manner=manner)
    events = replicate(data, hyp, sites, seed)

    table = posterior.table.reset_index(drop=True)
    observed = {
        "offer": table["offer"].to_numpy().astype(np.int32),
        "accepted": table["accepted"].to_numpy().astype(np.int8),
        "proposer_tone": tone_codes(table["proposer_tone"]),
        "responder_tone": tone_codes(table["responder_tone"]),
    }
    mask = data.event_mask
    rows = data.row[mask].numpy()
    proposed = data.is_proposer[mask].numpy()
    heard = data.tone_mask[mask].numpy()
    rep = {name: np.broadcast_to(value, (D, len(value))).copy() for name, value in observed.items()}
    offer, accept, tone = (events[k][:, mask].numpy() for k in ("offer", "accept", "tone"))
    rep["offer"][:, rows[proposed]] = offer[:, proposed]
    rep["accepted"][:, rows[~proposed]] = accept[:, ~proposed]
    rep["proposer_tone"][:, rows[proposed & heard]] = tone[:, proposed & heard]
    rep["responder_tone"][:, rows[~proposed & heard]] = tone[:, ~proposed & heard]

    observed["user_actions"] = real_users(user_actions(data, data.offer, data.accepted), data)
    rep["user_actions"] = real_users(user_actions(data, events["offer"], events["accept"]), data)
    shape = (posterior.n_chains, posterior.n_draws)
    replicated = {name: value.reshape(*shape, -1) for name, value in rep.items()}
    return Replicates(replicated, observed)


def _types(posterior, generator: torch.Generator) -> torch.Tensor:
    """``[D, S, U]``: each user's type per draw, from ``P(z_u | theta_d, data)``; with clones
    jointly, through a draw of the prototype ``z0`` from ``P(z0 | theta_d, data)`` and then
    each user's type given it."""
    clone = posterior.bounded("clone")
    log_pi = posterior.flat_draws("pi").clamp_min(1e-300).log()
    loglik = posterior.user_loglik()
    if clone is None:
        return _categorical(type_posterior(log_pi, loglik), generator)
    mask = posterior.data.user_mask
    prototype, given = prototype_posterior(log_pi, loglik, mask, clone)
    z0 = _categorical(prototype, generator)  # [D, S]
    D, S, U = loglik.shape[:3]
    draw, sims = torch.arange(D).reshape(D, 1, 1), torch.arange(S).reshape(1, S, 1)
    users = torch.arange(U).reshape(1, 1, U)
    return _categorical(given[draw, sims, users, z0.unsqueeze(-1)], generator)


def _categorical(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draws from ``Categorical(probs)`` over the last dimension, reproducibly."""
    flat = probs.reshape(-1, probs.shape[-1]).double()
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
