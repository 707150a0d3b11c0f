"""Synthetic responder data, simulated from the responder model itself.

For a spec and a design (subjects per role, each seeing every offer of a pot ``repeats``
times), :func:`simulate_responders` draws

1. the role-level parameters ``theta_r`` from the prior (the model's own sites,
   :func:`~scai.models.responders.pyro_models.role_sites`), unless they are given;
2. each subject's latent state ``m_s ~ P(m | r(s), theta)``: its norm or envy bin, its
   rationality node and whether it is inattentive
   (:func:`~scai.models.responders.states.state_tables`);
3. its decisions, ``reject_st ~ Bernoulli(P(reject | m_s, theta))`` per trial, with the
   functions the posterior predictive draws its replicates with
   (:mod:`scai.models.responders.posterior`), here with states from the prior.

The table has the interaction-table columns of :func:`scai.models.human_data.read_human_data`
(``sim`` = the role, ``responder`` = the subject, ``round`` = the trial), so synthetic data
go through the same code as real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import torch

from scai.models.data import INTERACTION_COLUMNS
from scai.models.human_data import HUMAN_CURRENCY
from scai.models.responders.data import DTYPE, ResponderData
from scai.models.responders.posterior import draw_binomial, rejection_probabilities
from scai.models.responders.pyro_models import role_sites
from scai.models.responders.specs import Spec
from scai.models.responders.states import role_params, state_tables

#: Study 1's offers: 5 to 50 cents of a 100-cent pot, each seen twice.
STUDY1_OFFERS = tuple(range(5, 55, 5))


@dataclass
class SyntheticResponders:
    """Simulated decisions (``table``, ``roles``: subject -> role, as the import gives them),
    the role-level parameters that made them (``params``: each ``[R, ...]``, roles in
    ``data.roles`` order) and each subject's true state (``state [S]``, subjects in
    ``data.subjects`` order)."""

    table: pd.DataFrame
    roles: dict[str, str]
    data: ResponderData
    params: dict[str, torch.Tensor]
    state: torch.Tensor


def responder_design(
    subjects_per_role: dict[str, int],
    offers: Sequence[int] = STUDY1_OFFERS,
    pot: int = 100,
    repeats: int = 2,
    currency: str = HUMAN_CURRENCY,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The trials of a design: subject ``<role>_<i>`` sees every offer ``repeats`` times
    (trials numbered from 1 in offer order); ``accepted`` is 1 until decisions are drawn."""
    rows, roles = [], {}
    for role, n in subjects_per_role.items():
        for i in range(n):
            subject = f"{role}_{i + 1}"
            roles[subject] = role
            for t, offer in enumerate([o for o in offers for _ in range(repeats)], start=1):
                rows.append(
                    {
                        "sim": role,
                        "epoch": 1,
                        "round": t,
                        "proposer": "",
                        "responder": subject,
                        "currency": currency,
                        "pot": pot,
                        "offer": int(offer),
                        "accepted": 1,
                        "proposer_tone": "",
                        "responder_tone": "",
                    }
                )
    return pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS)), roles


def prior_role_params(spec: Spec, data: ResponderData, seed: int) -> dict[str, torch.Tensor]:
    """One draw of the role-level sites from the prior (``[R, ...]`` each), reproducible for a
    ``seed``; torch's global random state is left as it was."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        trace = pyro.poutine.trace(role_sites).get_trace(spec, data)
    return {
        name: site["value"]
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def simulate_responders(
    spec: Spec,
    subjects_per_role: dict[str, int],
    *,
    params: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    offers: Sequence[int] = STUDY1_OFFERS,
    pot: int = 100,
    repeats: int = 2,
) -> SyntheticResponders:
    """Decisions of ``subjects_per_role`` subjects under ``spec`` (module docstring), with the
    role-level ``params`` given (each ``[R, ...]``, roles in the order ``data.roles`` sorts
    them: ``self``, ``other``, then the rest as given) or drawn from the prior."""
    table, roles = responder_design(subjects_per_role, offers, pot, repeats)
    data = ResponderData.from_table(table, roles)
    if params is None:
        params = prior_role_params(spec, data, seed)
    params = {k: torch.as_tensor(v, dtype=DTYPE) for k, v in params.items()}
    batched = role_params(spec, {k: v[None] for k, v in params.items()}, data.n_roles)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        log_prior, log_rej, _ = state_tables(spec, data, batched)  # [1, R, M], [1, R, M, C]
        state = torch.multinomial(
            log_prior[0, data.role_index].exp(), 1, generator=generator
        ).T  # [1, S]
        p_cell = rejection_probabilities(log_rej, data.role_index, state)[0]  # [S, C]
        p_trial = torch.gather(p_cell, -1, data.cell)  # [S, T]: a Binomial(1, p) per trial
        rejected = draw_binomial(data.mask.to(DTYPE), p_trial, generator)
    subject_index = {s: i for i, s in enumerate(data.subjects)}
    s_idx = torch.as_tensor(
        table["responder"].map(subject_index).to_numpy(dtype=np.int64, copy=True)
    )
    slot = torch.as_tensor(
        table.groupby("responder", sort=False).cumcount().to_numpy(np.int64, copy=True)
    )
    table["accepted"] = 1 - rejected[s_idx, slot].numpy().astype(np.int64)
    return SyntheticResponders(
        table, roles, ResponderData.from_table(table, roles), params, state[0]
    )
