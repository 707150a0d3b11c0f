"""Posterior-predictive replicates: the generative model run forward with its latent sites set
to posterior draws.

For each draw ``d`` of the continuous sites (``pi``, ``lam``, ``shift_shared``, ``shift``) and
of each user's policy and manner, :func:`replicate` conditions
:func:`scai.models.model.social_contract_model` on them and runs it with ``observed=False``
over the same games (who played whom, pots, currencies): the users' offers, decisions and
tones come out of the model itself, from the distributions the simulator draws from, each
decision on the offer the table holds (``replay_offers``: a user's replicate is drawn given
what the user saw, as the user's term of the ``log_likelihood`` group scores it; the
simulator's responder sees its partner's fresh offer instead), by
inverse CDF (:class:`ByInverseCDF`: one uniform per offer where the simulator's Gumbel-max
stream takes one per offer and possible offer, and one per tone). Draws are folded into
the ``sims`` plate (:meth:`GroupData.tile`), one simulation at a time (its action tables then
span only the pots it played) and a chunk of draws at a time to bound their memory. Offers
that no user chose (the assistant's, an unknown proposer's) stay as observed.
"""

from __future__ import annotations

import pyro
import torch
from pyro.distributions import Categorical
from pyro.distributions.torch_distribution import MaskedDistribution
from pyro.poutine.messenger import Messenger

from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.model import TableCategorical, TableMemo, social_contract_model

#: Upper bound on the action tables' entries per chunk of draws (``[S, C, K, P, O]`` each).
TABLE_BUDGET = 2e7
#: Upper bound on a chunk's event slots (draws x one simulation's users x events per user):
#: the model's draws take ~140 B a slot while a chunk is drawn (one simulation of 897 users
#: whose busiest played 1,265 games: 2.5 GB for 10 draws at once, 1.1 GB one at a time).
SLOT_BUDGET = 2e6


def replicate(
    data: GroupData,
    hypothesis: Hypothesis,
    sites: dict[str, torch.Tensor],
    seed: int,
) -> dict[str, torch.Tensor]:
    """Replicated ``offer``, ``accept`` and ``tone`` per event, ``[D, S, U, E]`` (long).

    ``sites`` holds ``D`` draws of the model's latent sites: ``pi [D, S, K]`` and, where the
    hypothesis makes them latent, ``lam``, ``shift_shared``, ``lapse``, ``strength``, ``clone``
    ``[D, S]`` and ``shift [D, S, C]``; and ``policy``, ``manner`` ``[D, S, U]`` (each user's
    type and manner in that draw). Deterministic for a ``seed``; torch's global random state is
    left as it was.
    """
    D = sites["pi"].shape[0]
    S, U, E = data.shape
    C, K = len(data.currencies), len(hypothesis.policies)
    shapes = {
        "pi": (1, 1, K),
        "lam": (1, 1),
        "shift_shared": (1, 1),
        "shift": (1, C),
        "lapse": (1, 1),
        "strength": (1, 1),
        "clone": (1, 1),
        "policy": (U, 1),
        "manner": (U, 1),
    }
    out = {name: torch.zeros(D, S, U, E, dtype=torch.long) for name in ("offer", "accept", "tone")}
    # chunks of draws whose tables do not vary (fixed rationality, shifts and lapse) build
    # them once, not once per chunk (builds use no random numbers: the draws are the same)
    memo = TableMemo()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for s in range(S):
            one = data.select_sim(s)
            size = C * K * len(one.pots) * (int(one.pots.max()) + 1)
            chunk = max(1, int(min(TABLE_BUDGET // size, SLOT_BUDGET // (U * E))))
            for start in range(0, D, chunk):
                n = min(chunk, D - start)
                conditioned = {
                    name: value[start : start + n, s].reshape(n, *shapes[name])
                    for name, value in sites.items()
                }
                with torch.no_grad(), ByInverseCDF():
                    drawn = pyro.poutine.condition(social_contract_model, data=conditioned)(
                        one.tile(n), hypothesis, observed=False, memo=memo, replay_offers=True
                    )
                for name, target in out.items():
                    target[start : start + n, s] = drawn[name].expand(n, U, E)
    return out


class ByInverseCDF(Messenger):
    """Draws the model's unobserved ``offer`` site by
    :meth:`~scai.models.model.TableCategorical.sample_by_cdf` and its ``tone`` site by
    :func:`categorical_by_cdf`: the same distributions as their ``sample`` methods (the Gumbel
    trick, ``torch.multinomial``: ~11 ms for one simulation's 500,000 tones of 1,000 draws),
    at a fraction of the cost on the millions of actions of a replicate per posterior draw."""

    def _pyro_sample(self, msg) -> None:
        if msg["name"] not in ("offer", "tone") or msg["is_observed"] or msg["value"] is not None:
            return
        fn = msg["fn"]
        shape = fn.batch_shape
        while isinstance(fn, MaskedDistribution):  # a mask does not change how it samples
            fn = fn.base_dist
        if isinstance(fn, TableCategorical):
            msg["value"] = fn.sample_by_cdf()
        elif isinstance(fn, Categorical):
            msg["value"] = categorical_by_cdf(fn.probs.expand(*shape, fn.probs.shape[-1]))


def categorical_by_cdf(probs: torch.Tensor) -> torch.Tensor:
    """One draw from each row of ``probs [..., n]`` (rows summing to 1): the first category
    whose cumulative probability exceeds a uniform, one uniform per row."""
    cdf = probs.double().cumsum(-1)
    uniform = torch.rand(probs.shape[:-1], dtype=cdf.dtype).unsqueeze(-1) * cdf[..., -1:]
    return (cdf <= uniform).sum(-1).clamp_max_(probs.shape[-1] - 1)
