"""The generative model of a group's social contract, as one Pyro program.

For each simulation (group) ``s``, with ``K`` policy types, ``M`` manners and currencies ``c``::

    pi_s        ~ Dirichlet(a)                                  group norm (mixture over types)
    lam_s       ~ LogNormal(log lam0, sigma_lam)   if latent, else lam0     rationality
    delta0_s    ~ Normal(0, sigma_0)               if sigma_0 > 0, else 0   shared currency shift
    delta_{s,c} ~ Normal(delta0_s + mu * essential_c, tau)  if tau > 0, else delta0_s + mu*ess_c
    eps_s       ~ Beta(a, b)  if a lapse prior, else fixed      lapse (an action at random)
    strength_s  ~ Beta(a, b)  if a stereotype prior, else fixed  rho_s = (1 - s) / M + s * stereo
    clone_s     ~ Beta(a, b)  if a clone prior, else 0         how often users copy a prototype
    z0_s        ~ Categorical(pi_s)                 if clones   "prototype"
    for each user u:
        z_u ~ Categorical(c_s onehot(z0_s) + (1 - c_s) pi_s)    "policy"  (pi_s without clones)
        m_u ~ Categorical(rho_s[z_u])                           "manner"
        for each of u's events e (its own rounds):
            offer_e  ~ Categorical(P_offer[z_u, pot_e, c_e])    if u proposed  (site "offer")
            accept_e ~ Bernoulli(P_accept[z_u, pot_e, c_e, offer_e])  if u responded ("accept")
            tone_e   ~ Categorical(E[m_u])                      if a message was heard ("tone")

with ``P_offer`` and ``P_accept`` the noisily rational action tables of
:mod:`scai.models.policies` for weights ``w_k + delta_{s,c}`` and lapse ``eps_s`` (a type may
respond by other parameters than it proposes by: role-dependent norms). Plates: ``sims`` (dim
-3), ``users`` (dim -2), ``rounds`` (dim -1; a user's own events) and ``currencies`` (dim -1,
outside users).

Run with ``observed=False`` the model *is* the simulator (a responder sees the offer its
proposer just drew); conditioned on data it scores them, with ``policy`` and ``manner``
marked for parallel enumeration (and ``prototype`` with clones).
"""

from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex

from scai.models.distinct import distinct_rows
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData, own_pot_values
from scai.models.policies import (
    ActionTables,
    UtilityTables,
    policy_parameters,
    rational_tables,
    responder_parameters,
    utility_tables,
)
from scai.models.prior import GroupPrior

ENUM = {"enumerate": "parallel"}
MAX_PLATE_NESTING = 3
#: Rows of offers :class:`TableCategorical` draws at once (``[block, offers]`` noise).
SAMPLE_BLOCK = 65_536


def group_utilities(hypothesis: Hypothesis, pots: torch.Tensor, shift: torch.Tensor):
    """Utility tables with batch shape ``[..., S, C]`` from ``shift [..., S, C]``: what
    :func:`group_tables` computes before ``lam`` enters (reusable while the shift is fixed)."""
    w, alpha, beta = policy_parameters(hypothesis.policies)
    responder = responder_parameters(hypothesis.policies)
    return utility_tables(w, alpha, beta, pots, shift, responder)


def group_tables(
    hypothesis: Hypothesis,
    pots: torch.Tensor,
    lam: torch.Tensor,
    shift: torch.Tensor,
    utilities: UtilityTables | None = None,
    lapse: torch.Tensor | None = None,
) -> ActionTables:
    """Action tables with batch shape ``[..., S, C]`` from ``lam [..., S]``, ``shift
    [..., S, C]`` and ``lapse [..., S]`` (default: the hypothesis's fixed lapse):
    ``offer_logp`` and ``accept_logit`` are ``[..., S, C, K, P, O]``. ``utilities`` (from
    :func:`group_utilities` with the same shift) skips their computation.
    """
    if utilities is None:
        utilities = group_utilities(hypothesis, pots, shift)
    eps = hypothesis.lapse if lapse is None else lapse.unsqueeze(-1)
    return rational_tables(utilities, lam.unsqueeze(-1), eps)


class TableMemo:
    """The action tables :func:`distinct_group_tables` built last, and from what: runs of the
    model given the same memo reuse them while their hypothesis, pots and distinct parameter
    rows are the same to the bit (the tables are then the same tensors the build would give).
    Posterior replicates run the model chunk after chunk of draws; where the rationality,
    shifts and lapse are the hypothesis's fixed ones every chunk has the same tables (a table
    of many distinct pots: built ~200 times for 1,000 draws, most of a ``scai fit``). One
    entry: tables that do vary from run to run are built as before, not piled up."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.tables: ActionTables | None = None

    def get(self, hypothesis: Hypothesis, pots: torch.Tensor, rows: torch.Tensor, build):
        """The tables of ``rows`` (the distinct parameter rows, in order) for ``pots``: the
        kept ones if those are what they were built from, else ``build()``'s, kept."""
        rows = rows.detach().contiguous()
        key = (
            id(hypothesis),  # (the caller keeps the hypothesis alive while it uses the memo)
            pots.numpy().tobytes(),
            rows.dtype,
            tuple(rows.shape),
            rows.numpy().tobytes(),
        )
        if key != self.key:
            self.tables, self.key = build(), key
        return self.tables


def differentiable(*params: torch.Tensor | None) -> bool:
    """Whether a gradient flows to any of ``params`` (SVI): then each simulation keeps tables
    of its own (:func:`distinct_group_tables`)."""
    return torch.is_grad_enabled() and any(p is not None and p.requires_grad for p in params)


def distinct_group_tables(
    hypothesis: Hypothesis,
    pots: torch.Tensor,
    lam: torch.Tensor,
    shift: torch.Tensor,
    lapse: torch.Tensor | None = None,
    memo: TableMemo | None = None,
) -> tuple[ActionTables, torch.Tensor]:
    """:func:`group_tables` for the distinct rows of ``(lam [S], shift [S, C], lapse [S])``
    only, and each simulation's row among them (``[S]``, long): simulations that share their
    parameters share one table, instead of ``S`` equal copies (every group of a forward run
    with a fixed rationality and no latent shift; posterior draws on a lattice). ``memo``:
    the previous call's tables where its distinct rows were these (:class:`TableMemo`).

    Where a gradient flows to the parameters (SVI), each simulation keeps its own table: a
    shared table would send the whole gradient of its simulations to the first of them, and
    a traced (JIT) program would freeze one call's sharing."""
    if differentiable(lam, shift, lapse):
        row = torch.arange(lam.shape[0])
        return group_tables(hypothesis, pots, lam, shift, lapse=lapse), row
    columns = [lam.unsqueeze(-1), shift] + ([] if lapse is None else [lapse.unsqueeze(-1)])
    rows = torch.cat(columns, -1)
    first, row, _ = distinct_rows(rows)

    def build() -> ActionTables:
        distinct_lapse = None if lapse is None else lapse[first]
        return group_tables(hypothesis, pots, lam[first], shift[first], lapse=distinct_lapse)

    tables = build() if memo is None else memo.get(hypothesis, pots, rows[first], build)
    return tables, row


def group_parameters(
    data: GroupData, hypothesis: Hypothesis
) -> tuple[pyro.plate, dict[str, torch.Tensor | None]]:
    """The continuous sites, drawn from the hypothesis's prior (:class:`GroupPrior`) in the
    ``sims`` plate (returned for reuse): ``pi [S,1,1,K]``, ``lam [S,1,1]``, ``shift [S,1,C]``
    (the currencies' total shifts), and ``lapse``, ``strength``, ``clone`` ``[S,1,1]`` where
    the hypothesis makes them latent (``None`` otherwise)."""
    S = data.shape[0]
    C = len(data.currencies)
    dtype = torch.get_default_dtype()
    prior = GroupPrior(hypothesis)
    sims = pyro.plate("sims", S, dim=-3)
    sites: dict[str, torch.Tensor | None] = {}
    with sims:
        pi = pyro.sample("pi", prior.pi_dist())
        K = len(hypothesis.policies)
        if pi.shape[-1] != K:  # a value given (poutine.condition, Predictive) of other types
            raise ValueError(
                f"social_contract_model: site 'pi' has shape {list(pi.shape)}, a mixture of "
                f"{pi.shape[-1]} types; the hypothesis has {K} "
                f"({', '.join(hypothesis.policy_names)})"
            )
        sites["pi"] = in_plates("pi", pi, (S, 1, 1, K), batch=True)
        if prior.latent_lam:
            sites["lam"] = in_plates("lam", pyro.sample("lam", prior.lam_dist()), (S, 1, 1))
        else:
            sites["lam"] = torch.full((S, 1, 1), hypothesis.rationality, dtype=dtype)
        shared = (
            in_plates("shift_shared", pyro.sample("shift_shared", prior.shared_dist()), (S, 1, 1))
            if prior.latent_shared
            else torch.zeros(S, 1, 1, dtype=dtype)
        )
        shift_mean = prior.shift_mean(shared.reshape(S, 1), data.essential).reshape(S, 1, C)
        if prior.latent_shift:
            with pyro.plate("currencies", C, dim=-1):
                shift = pyro.sample("shift", prior.shift_dist(shift_mean))
            sites["shift"] = in_plates("shift", shift, (S, 1, C))
        else:
            sites["shift"] = shift_mean.expand(S, 1, C)
        for site in ("lapse", "strength", "clone"):
            sites[site] = (
                in_plates(site, pyro.sample(site, prior.bounded_dist(site)), (S, 1, 1))
                if site in prior.beta
                else None
            )
    return sims, sites


def in_plates(
    site: str,
    value: torch.Tensor,
    shape: tuple[int, ...],
    batch: bool = False,
    model: str = "social_contract_model",
) -> torch.Tensor:
    """A group-level site's draw ``value`` in its plates' ``shape`` (``[S, 1, 1]``; ``pi``'s
    ``[S, 1, 1, K]``, a shift's ``[S, 1, C]``); a ``NotImplementedError`` where it holds more
    values: a batch dimension left of the plates (``Predictive(parallel=True)``,
    ``vectorize_particles=True``, ArviZ's ``from_pyro``). The model's action tables are built
    per distinct row of the scalars, so a latent scalar cannot carry one (reshaped, it failed
    as ``shape '[2]' is invalid for input of size 100``); ``pi`` (``batch``) can, where
    :func:`social_contract_model` scores or replays the data (:func:`_check_forward_batch`
    sees to a forward run)."""
    if batch and value.shape[-len(shape) :] == shape:
        return value
    if value.numel() != math.prod(shape):
        raise NotImplementedError(
            f"{model}: site {site!r} has shape {list(value.shape)}, more values than its "
            f"plates' {list(shape)}: a batch dimension left of the plates "
            "(Predictive(parallel=True), vectorize_particles=True) is taken only for pi, by "
            "social_contract_model where it scores or replays the data; draw one sample at a "
            "time (parallel=False, vectorize_particles=False), as scai's engines do"
        )
    return value.reshape(shape)


def _check_forward_batch(pi: torch.Tensor, observed: bool, replay_offers: bool) -> None:
    """A ``NotImplementedError`` for a forward run (neither ``observed`` nor
    ``replay_offers``) with a batch dimension left of the plates: a responder's offer is
    looked up at its partner's slot of the drawn offers, which holds no batch dimension (it
    failed as an ``IndexError``)."""
    if pi.dim() > 4 and not observed and not replay_offers:
        raise NotImplementedError(
            f"social_contract_model: site 'pi' has shape {list(pi.shape)}: a forward run "
            "(observed=False) draws each responder's offer from its partner's, one sample at a "
            "time; draw one sample at a time (Predictive(parallel=False)), or replay the "
            "table's offers (replay_offers=True), which takes a batch of pi"
        )


def social_contract_model(
    data: GroupData,
    hypothesis: Hypothesis,
    observed: bool = True,
    subsample_size: int | None = None,
    memo: TableMemo | None = None,
    replay_offers: bool = False,
) -> dict[str, torch.Tensor]:
    """The model above. Returns the sampled (or observed) sites by name.

    ``replay_offers`` (with ``observed=False``): a responder decides on the offer the table
    holds, not on the one its partner just drew: each user's actions drawn given what the
    user saw, the predictive of the user's term of the log-likelihood (a posterior
    predictive replicate, :func:`scai.models.predictive.replicate`).

    ``subsample_size`` scores a random minibatch of users per call (scaled by Pyro's plate),
    for stochastic variational inference on large populations. ``memo``: reuse the action
    tables of an earlier run given it, where its parameters were the same
    (:class:`TableMemo`).
    """
    S, U, E = data.shape
    C = len(data.currencies)
    emission = hypothesis.emission()
    sims, sites = group_parameters(data, hypothesis)
    _check_forward_batch(sites["pi"], observed, replay_offers)
    pi, lam, shift = sites["pi"], sites["lam"], sites["shift"]
    lapse = None if sites["lapse"] is None else sites["lapse"].reshape(S)
    pots, pot_index = data.pots, data.pot_index
    if S > 1 and differentiable(lam, shift, lapse):
        # each simulation's tables over the pots it plays, not every pot of the data (a few of
        # many in small groups): the same rows, read at each event's slot among them
        sim_pots, slots = data.pot_slots()
        own = own_pot_values(pots, sim_pots)
        if own is not None:
            pots, pot_index = own, slots
    tables, table_row = distinct_group_tables(
        hypothesis, pots, lam.reshape(S), shift.reshape(S, C), lapse=lapse, memo=memo
    )
    table_row = table_row.reshape(S, 1, 1)  # the simulation's row of the action tables
    sim = torch.arange(S).reshape(S, 1, 1)
    strength = sites["strength"]
    rho = hypothesis.coupling(None if strength is None else strength.reshape(S))
    type_probs = pi
    prototype = None
    if sites["clone"] is not None:
        with sims:
            prototype = pyro.sample("prototype", dist.Categorical(pi), infer=ENUM)
        K = pi.shape[-1]
        c = sites["clone"].unsqueeze(-1)  # [S, 1, 1, 1]
        type_probs = c * torch.nn.functional.one_hot(prototype, K).to(pi.dtype) + (1 - c) * pi

    users = pyro.plate("users", U, dim=-2, subsample_size=subsample_size if observed else None)
    with sims, users as batch, pyro.poutine.mask(mask=data.user_mask[:, batch].unsqueeze(-1)):
        if subsample_size is not None and observed:
            data, pot_index = data.users_subset(batch), pot_index[:, batch]
        z = pyro.sample("policy", dist.Categorical(type_probs), infer=ENUM)
        manner_probs = Vindex(rho)[z] if strength is None else Vindex(rho)[sim, z]
        m = pyro.sample("manner", dist.Categorical(manner_probs), infer=ENUM)
        with pyro.plate("rounds", E, dim=-1), pyro.poutine.mask(mask=data.event_mask):
            offer_dist = TableCategorical(
                tables.offer_logp,
                (table_row, data.currency_index, z, pot_index),
                active=data.is_proposer,
            )
            offer = pyro.sample(
                "offer",
                offer_dist.mask(data.is_proposer),
                obs=data.offer if observed else None,
            )
            seen = data.offer if observed or replay_offers else _offer_seen(data, offer)
            accept_logit = Vindex(tables.accept_logit)[
                table_row, data.currency_index, z, pot_index, seen
            ]
            accept = pyro.sample(
                "accept",
                dist.Bernoulli(logits=accept_logit).mask(data.is_responder),
                obs=data.accepted if observed else None,
            )
            tone = pyro.sample(
                "tone",
                dist.Categorical(Vindex(emission)[m]).mask(data.tone_mask),
                obs=data.tone if observed else None,
            )
    return {
        "pi": pi,
        "lam": lam,
        "shift": shift,
        "prototype": prototype,
        "policy": z,
        "manner": m,
        "offer": offer,
        "accept": accept,
        "tone": tone,
    }


class TableCategorical(dist.TorchDistribution):
    """``Categorical`` whose normalised log-probabilities are rows of a table, looked up by
    index tensors: ``log_prob(o) = table[index..., o]``.

    Equivalent to ``Categorical(logits=Vindex(table)[index..., :])`` but never materialises the
    ``[batch, offers]`` logits (nor re-normalises them), which dominated the cost of scoring.
    ``active`` (broadcasting to the batch shape) marks where a draw is needed: elsewhere
    :meth:`sample` returns 0 without looking a row up (forward runs draw offers only on
    proposer events).
    """

    arg_constraints: dict = {}
    support = dist.constraints.nonnegative_integer
    has_enumerate_support = False

    def __init__(
        self,
        table: torch.Tensor,
        index: tuple[torch.Tensor, ...],
        active: torch.Tensor | None = None,
        validate_args=None,
    ):
        self.table = table
        self.index = index
        self.active = active
        # NumPy's rule, not torch.broadcast_shapes: torch's imports SymPy (~0.8 s) on first use
        batch_shape = torch.Size(np.broadcast_shapes(*(tuple(i.shape) for i in index)))
        super().__init__(batch_shape, torch.Size(), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        index = tuple(i.expand(batch_shape) for i in self.index)
        return TableCategorical(self.table, index, self.active)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return Vindex(self.table)[(*self.index, value.long())]

    def sample(self, sample_shape: torch.Size | tuple = ()):
        """Gumbel-max over the looked-up rows (``argmax(log p + Gumbel noise)``): exact, and
        several times faster than ``torch.multinomial`` on many rows of ~100 offers."""
        shape = torch.Size(sample_shape) + self.batch_shape
        active = torch.ones(shape, dtype=torch.bool) if self.active is None else self.active
        active = active.expand(shape)
        rows = tuple(i.expand(shape)[active] for i in self.index)
        drawn = torch.empty(len(rows[0]) if rows else 0, dtype=torch.long)
        # In blocks of rows, so that a million offers never hold [N, O] noise at once; the
        # uniforms come from the generator in the same order as in one block.
        for start in range(0, len(drawn), SAMPLE_BLOCK):
            block = tuple(r[start : start + SAMPLE_BLOCK] for r in rows)
            logits = self.table[block]  # [n, O]: only the rows drawn
            uniform = torch.rand(logits.shape, dtype=logits.dtype)
            gumbel = -(-uniform.clamp_(min=torch.finfo(logits.dtype).tiny).log()).log()
            drawn[start : start + SAMPLE_BLOCK] = (logits + gumbel).argmax(-1)
        out = torch.zeros(shape, dtype=torch.long)
        out[active] = drawn
        return out

    def sample_by_cdf(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        """Draws from the same rows by inverse CDF: one uniform per draw instead of one per
        draw and offer, so many times cheaper than :meth:`sample` on many rows, but another
        random stream (forward runs that must reproduce the simulator use :meth:`sample`).

        Each used row's CDF is shifted by its position ``j`` among the used rows, which makes
        their concatenation one sorted sequence: the draw for a uniform ``v`` on row ``j`` is
        the first offer whose shifted CDF exceeds ``j + v``. Exact up to float64 rounding of
        ``j + CDF`` (offers rarer than ~1e-16 times the number of used rows are never drawn).
        """
        shape = torch.Size(sample_shape) + self.batch_shape
        active = torch.ones(shape, dtype=torch.bool) if self.active is None else self.active
        active = active.expand(shape)
        out = torch.zeros(shape, dtype=torch.long)
        if len(self.index) == 0 or not bool(active.any()):
            return out
        table = self.table.detach().double()
        O = table.shape[-1]
        # Each draw's row of the table as one flat index, combined at the index tensors' own
        # (broadcast) shapes and only then expanded and masked: one gather, not one per index.
        flat = torch.zeros((), dtype=torch.long)
        for index, size in zip(self.index, table.shape[:-1], strict=True):
            flat = flat * size + index
        flat = flat.expand(shape)[active]
        # The rows used, in order, and each draw's position among them: torch.unique's
        # (sorted, inverse) by marking the used rows of the table, without sorting the draws.
        marked = torch.zeros(table.shape[:-1].numel(), dtype=torch.bool)
        marked[flat] = True
        used = marked.nonzero().squeeze(-1)
        which = (marked.cumsum(0) - 1)[flat]
        cdf = table.reshape(-1, O)[used].exp().cumsum(-1)
        if not bool((cdf[:, -1] > 0).all()):
            raise ValueError("TableCategorical: a looked-up row has no possible offer")
        cdf = cdf / cdf[:, -1:]  # each row ends at exactly 1
        shift = torch.arange(len(used), dtype=cdf.dtype).unsqueeze(-1)
        sequence = (cdf + shift).reshape(-1)
        uniform = torch.rand(len(which), dtype=cdf.dtype)
        start = which.to(cdf.dtype)
        # j + v can round up to j + 1 (the next row's start): keep it below, in row j
        target = torch.minimum(start + uniform, torch.nextafter(start + 1, start))
        position = torch.searchsorted(sequence, target, right=True)
        out[active] = (position - which * O).clamp_(0, O - 1)
        return out


def _offer_seen(data: GroupData, offer: torch.Tensor) -> torch.Tensor:
    """On responder events, the offer the partner drew; elsewhere the table's offer."""
    S = data.shape[0]
    sim = torch.arange(S).reshape(S, 1, 1)
    drawn = offer[sim, data.partner.clamp(min=0), data.partner_event.clamp(min=0)]
    return torch.where(data.partner >= 0, drawn, data.offer)
