"""Posterior-predictive replicates of a data set, one per posterior draw, from the model itself.

For every draw ``theta_d`` of a :class:`~scai.inference.posterior.Posterior` (``pi`` and the
other group-level sites), :func:`scai.models.predictive.replicate` runs the generative model
forward over the same games: each user's type is drawn from the group's norm ``pi_d``, its
manner from the model's coupling given the type, then its actions and tones. A user's
replicate is thus its predictive with its type and manner summed out, given the group's
parameters: the quantity the ``log_likelihood`` group scores, so that ``az.loo_pit`` (whose
importance weights leave the user's data out of ``theta`` only) checks a leave-one-user-out
predictive. With clones the users share a prototype, and ``log_likelihood`` scores
``p(y_u | y_-u, theta)``: each user's type is drawn as a new user's in its place, the
prototype from ``P(z0 | theta_d, y_-u)`` (the other users' data) and the type from ``c
[z0] + (1 - c) pi_d``. (Drawing the type from ``P(z_u | theta_d, data)`` instead would use the
user's own data a second time: its replicates then equal its observations far more often
than a new user's would.)
The replicated actions are laid out like the observations: per row of the interaction table
(``offer``, ``accepted``, ``proposer_tone``, ``responder_tone``; a tone as its index in
:data:`~scai.models.language.TONES`, -1 where none was heard) and per user
(``user_actions``, the summary statistic below). Actions that are not a user's (the assistant's,
an unknown proposer's offer) keep their observed value in every replicate.

``user_actions`` is one number per user, ``T(y_u)``: the units it offered as proposer plus the
number of offers it accepted as responder. The model's log-likelihood factorises over users
(each user's policy and manner are summed out), so the user is the unit of ``az.loo``; ``T`` gives
``az.loo_pit`` an observation per user to check against its leave-one-user-out predictive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from scai.models.language import TONES
from scai.models.layout import GroupData
from scai.models.marginal import prototype_given_others
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
    """``[..., S, U]`` (float64): ``T(y_u)`` (module docstring) from per-event ``offer`` and
    ``accept`` ``[..., S, U, E]``. Whole numbers stored as floats on purpose: ArviZ's
    ``loo_pit`` smooths integer data with a spline over the observations' order before the PIT
    (each user's value then read from its neighbours'), where on floats it is each user's own
    PIT, ties counted as below; ``az.plot_ppc(..., kind="scatter")`` shows them as points."""
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
    D = posterior.flat_draws("pi").shape[0]
    # the group-level sites: types (but with clones) and manners are the model's own draws
    sites = {name: posterior.flat_draws(name) for name in posterior.draws}
    clone = posterior.bounded("clone")
    if clone is not None:
        sites["policy"] = types_in_place_of_each_user(posterior, clone, seed)
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


def types_in_place_of_each_user(posterior, clone: torch.Tensor, seed: int) -> torch.Tensor:
    """``[D, S, U]``: with clones, the type of a new user in each user's place per draw: the
    prototype from ``P(z0 | theta_d, y_-u)``
    (:func:`~scai.models.marginal.prototype_given_others`), then the type from ``c [z0] +
    (1 - c) pi_d``. Deterministic for a ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    pi = posterior.flat_draws("pi").double()  # [D, S, K]
    loglik = posterior.user_loglik().double()
    mask = posterior.data.user_mask.double()
    c = clone.double()
    z0 = _draw(prototype_given_others(pi.clamp_min(1e-300).log(), loglik, mask, c), generator)
    K = pi.shape[-1]
    copy = torch.nn.functional.one_hot(z0, K).double()  # [D, S, U, K]
    weight = c[..., None, None]
    return _draw(weight * copy + (1 - weight) * pi.unsqueeze(-2), generator)


def _draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw from ``Categorical(probs)`` over the last dimension of each row."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
