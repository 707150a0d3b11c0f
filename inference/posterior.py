"""One result type for every engine: :class:`Posterior`.

It holds draws of the continuous sites (``pi``, and ``lam``, ``shift_shared``, ``shift`` where
the hypothesis makes them latent), each user's posterior policy and manner probabilities with
the discrete sites summed out (Rao-Blackwellised), and the data and hypothesis it came from.
:meth:`Posterior.predictive` gives the group's offer and accept probabilities (lapses
included); the assistant (:mod:`scai.experiments.assistant`) acts by the same norms without
the lapse: a lapse is how the model explains a user's random act, not part of the norm.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from scai.inference.diagnostics import SITE_DIMS, dim_sizes, in_site_order
from scai.models.errors import check_count, check_path
from scai.models.game import MAX_POT, get_currency
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import (
    EventIndex,
    group_loglik,
    leave_one_out_loglik,
    manner_given_type,
    prototype_posterior,
    shared_by_simulations,
    type_posterior,
    user_loglik,
)
from scai.models.model import group_tables
from scai.models.prior import GroupPrior, parameter_names
from scai.models.writing import check_format_ending

CONTINUOUS_SITES = ("pi", "lam", "shift_shared", "shift")
#: Entries of ``[draws, S, U, K]`` that :meth:`Posterior.from_draws` holds at once.
MEAN_BLOCK = 2**26
#: Sites whose draws change the users' log-likelihoods (with only ``pi`` latent they do not).
DRAW_DEPENDENT_LOGLIK = frozenset({"lam", "shift", "shift_shared", "lapse", "strength"})


def _check_draws(engine: str, data: GroupData, hypothesis: Hypothesis, draws: dict) -> None:
    """An :class:`EngineError` unless ``engine`` is one and ``draws`` holds ``pi`` and known
    sites, each a tensor of the shape its dims have in ``data`` and ``hypothesis``, ``pi``
    on the simplex (:meth:`Posterior.from_draws`)."""
    from scai.inference.errors import EngineError
    from scai.inference.fit import ENGINES

    if engine not in ENGINES:
        raise EngineError(f"from_draws: engine {engine!r}; allowed: {', '.join(ENGINES)}")
    if not isinstance(draws, dict) or "pi" not in draws:
        raise EngineError("from_draws: draws must be a dict of tensors holding 'pi'")
    sizes = dim_sizes(data, hypothesis)
    lead = None
    for site, value in draws.items():
        if site not in SITE_DIMS:
            raise EngineError(f"from_draws: unknown site {site!r}; allowed: {', '.join(SITE_DIMS)}")
        if not isinstance(value, torch.Tensor):
            raise EngineError(f"from_draws: {site} must be a tensor, got {type(value).__name__}")
        dims = SITE_DIMS[site]
        lead = tuple(value.shape[:2]) if lead is None else lead
        expected = (*lead, *(sizes[d] for d in dims))
        if len(lead) != 2 or tuple(value.shape) != expected:
            said = ", ".join(f"{d} {sizes[d]}" for d in dims)
            raise EngineError(
                f"from_draws: {site} has shape {tuple(value.shape)}; expected [chains, draws, "
                f"{said}] (the first site's chains and draws)"
            )
    if not on_simplex(draws["pi"]):
        raise EngineError("from_draws: pi must lie on the simplex (>= 0, summing to 1)")


#: The most entries (draws x simulations x types x offers) of the action tables that
#: :meth:`Posterior.predictive` builds at once (~32 MB of float64 per table).
PREDICTIVE_ENTRIES = 4_000_000


#: ``sample_stats`` of an exact posterior whose lapse or strength is drawn within a grid cell:
#: each draw's grid point ``[chains, draws, sim]``, the value the engine's quadrature scores it
#: at (:meth:`Posterior.user_loglik`), saved so that a loaded posterior scores it the same.
GRID_POINT_STATS = {"lapse": "lapse_grid_point", "strength": "strength_grid_point"}


def check_draw_slice(what: str, draws: object) -> None:
    """A ``ValueError`` naming ``what`` unless ``draws`` is a slice of the flat draws with
    whole-number (or absent) bounds and a positive (or absent) step: an index or a list would
    drop or reorder rows, and torch's own errors name neither."""
    whole = lambda v: v is None or (isinstance(v, int | np.integer) and not isinstance(v, bool))  # noqa: E731
    if not (
        isinstance(draws, slice)
        and whole(draws.start)
        and whole(draws.stop)
        and whole(draws.step)
        and (draws.step is None or draws.step > 0)
    ):
        raise ValueError(
            f"{what}: draws must be a slice of the flat draws with whole-number bounds and a "
            f"positive step (e.g. slice(0, 10)), got {draws!r:.60}"
        )


def on_simplex(pi: torch.Tensor) -> bool:
    """Whether every row of ``pi`` (the last dimension) is finite, ``>= 0`` and sums to 1
    (to 1e-4: draws stored in float32)."""
    pi = pi.detach().double()
    return bool(torch.isfinite(pi).all() and (pi >= 0).all()) and torch.allclose(
        pi.sum(-1), torch.ones((), dtype=torch.float64), atol=1e-4
    )


@dataclass
class Posterior:
    """Posterior over a group's social contract.

    ``draws[site]`` has shape ``[chains, draws, S, ...]``: ``pi [.., S, K]``, ``lam [.., S]``,
    ``shift_shared [.., S]``, ``shift [.., S, C]`` (only the latent ones are present).
    ``policy_probs [S, U, K]`` and ``manner_probs [S, U, M]`` are each user's posterior type
    and manner probabilities.
    """

    engine: str
    hypothesis: Hypothesis
    table: pd.DataFrame
    data: GroupData
    draws: dict[str, torch.Tensor]
    policy_probs: torch.Tensor
    manner_probs: torch.Tensor
    sample_stats: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    pi_mean_exact: torch.Tensor | None = None  # exact engine: the grid's posterior mean
    engine_state: Any = None  # e.g. SVI's guide parameters, for warm starts (not saved)
    # Loaded from a file: the fit's own provenance (``arviz_schema.FIT_PROVENANCE``), which
    # saving it again keeps; empty for a posterior fitted in this process.
    provenance: dict[str, str] = field(default_factory=dict, repr=False)
    # Quantities that depend only on the draws and the data, computed once when first asked.
    _memo: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)
    # How an engine that already holds a memoised quantity can produce it, when first asked.
    _lazy: dict[str, Callable[[], torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __repr__(self) -> str:
        """A line, not the dataclass's repr of every field (the whole table and tensors: 31 kB
        for 200 users, a notebook cell's worth of numbers)."""
        data, table, hypothesis = self.data, self.table, self.hypothesis
        sites = ", ".join(f"{name}{list(value.shape[2:])}" for name, value in self.draws.items())
        return (
            f"Posterior(engine={self.engine!r}, "
            f"hypothesis={getattr(hypothesis, 'name', None)!r}, "
            f"simulations={len(data.sim_ids) if data is not None else None}, "
            f"users={int(data.user_mask.sum()) if data is not None else None}, "
            f"interactions={len(table) if table is not None else None}, "
            f"chains={self.n_chains}, draws={self.n_draws}, sites=[{sites}], seed={self.seed})"
        )

    @classmethod
    def from_draws(
        cls,
        engine: str,
        data: GroupData,
        hypothesis: Hypothesis,
        table: pd.DataFrame,
        draws: dict[str, torch.Tensor],
        **fields: Any,
    ) -> Posterior:
        """A posterior from draws of the continuous sites (``[chains, draws, *dims]`` each,
        :data:`~scai.inference.diagnostics.SITE_DIMS`); each user's policy probabilities
        are averaged over draws of ``P(z_u = k | theta, data)`` (Rao-Blackwellised). An
        :class:`~scai.inference.errors.EngineError` names an engine, site or shape that is
        not one."""
        _check_draws(engine, data, hypothesis, draws)
        draws = {k: v.detach().to(torch.get_default_dtype()) for k, v in draws.items()}
        post = cls(
            engine=engine,
            hypothesis=hypothesis,
            table=table,
            data=data,
            draws=draws,
            policy_probs=torch.empty(0),
            manner_probs=torch.empty(0),
            **fields,
        )
        post.policy_probs, post.manner_probs = post._draw_means()
        return post

    def _draw_means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each user's type and manner probabilities averaged over draws (``[S, U, K]``,
        ``[S, U, M]``), a block of draws at a time when all of them would hold more than
        :data:`MEAN_BLOCK` entries (a million users x 1,000 draws x 3 types would be 12 GB)."""
        D = self.n_chains * self.n_draws
        S, U, _ = self.data.shape
        step = max(1, MEAN_BLOCK // max(1, S * U * len(self.policy_names)))
        if step >= D:
            probs = self.type_probabilities()
            if "strength" in self.draws:
                return probs.mean(0), self.manner_probabilities_per_draw(probs=probs).mean(0)
            types = probs.mean(0)  # manners are linear in the types where strength is fixed
            return types, self.manner_probabilities_per_draw(probs=types[None])[0]
        if not (DRAW_DEPENDENT_LOGLIK | {"clone"}) & set(self.draws):
            return self._means_by_distinct_user()
        types = manners = 0.0
        for start in range(0, D, step):
            block = slice(start, start + step)
            probs = self.type_probabilities(block)  # once: the manners are sums over it
            types = types + probs.sum(0)
            manners = manners + self.manner_probabilities_per_draw(draws=block, probs=probs).sum(0)
        return types / D, manners / D

    def _means_by_distinct_user(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_draw_means` where only ``pi`` varies across draws: a user's type
        probabilities then depend on its simulation and its log-likelihood row alone, and
        large groups hold few distinct rows (1,275 among 10^5 simulated users), so each
        distinct row is averaged over the draws once. Manners are linear in the types."""
        S, U, K = self._user_loglik_memo().shape[1:]
        loglik = self._user_loglik_memo()[0]  # the same for every draw
        sim = torch.arange(S, dtype=loglik.dtype).reshape(S, 1, 1).expand(S, U, 1)
        rows, which = torch.unique(
            torch.cat([sim, loglik], -1).reshape(S * U, K + 1), dim=0, return_inverse=True
        )
        log_pi = self.flat_draws("pi").clamp_min(1e-300).log()  # [D, S, K]
        D = log_pi.shape[0]
        step = max(1, MEAN_BLOCK // (D * K))
        # each distinct row as a simulation of one user: [D, rows, 1, K] averaged over draws
        means = [
            type_posterior(log_pi[:, part[:, 0].long()], part[:, None, 1:]).mean(0)[:, 0]
            for part in rows.split(step)
        ]
        types = torch.cat(means)[which].reshape(S, U, K)
        return types, self.manner_probabilities_per_draw(probs=types[None])[0]

    # -- shapes and names --------------------------------------------------------------------
    @property
    def policy_names(self) -> tuple[str, ...]:
        return self.hypothesis.policy_names

    @property
    def n_chains(self) -> int:
        return int(self.draws["pi"].shape[0])

    @property
    def n_draws(self) -> int:
        return int(self.draws["pi"].shape[1])

    def flat_draws(self, site: str) -> torch.Tensor:
        """``[chains * draws, ...]``: the draws of a latent ``site`` (:attr:`draws`' keys), a
        view of them (as :attr:`draws` itself: the posterior's own numbers)."""
        if not isinstance(site, str) or site not in self.draws:
            fixed = {"lam": "lam()", "shift": "shift(currency)"}
            known = isinstance(site, str) and site in fixed
            also = f"; a fixed one's values: {fixed[site]}" if known else ""
            raise KeyError(
                f"flat_draws: {site!r} is not a latent site of hypothesis "
                f"{self.hypothesis.name!r}; its latent sites: {', '.join(self.draws)}{also}"
            )
        value = self.draws[site]
        return value.reshape(-1, *value.shape[2:])

    # -- the continuous parameters, latent or fixed ------------------------------------------
    # The public accessors return new tensors (the caller's to change, as every method's
    # result); the private ones return the posterior's own where it holds them, for its own
    # computations.
    def lam(self) -> torch.Tensor:
        """``[D, S]`` rationality per draw (constant when the hypothesis fixes it); a new
        tensor."""
        return self._lam().clone()

    def _lam(self) -> torch.Tensor:
        if "lam" in self.draws:
            return self.flat_draws("lam")
        D, S = self.n_chains * self.n_draws, self.data.shape[0]
        return torch.full((D, S), self.hypothesis.rationality)

    def shift(self, currency: str, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[D, S]`` the currency's shift of the weight on the other's payoff, per draw; a new
        tensor.

        Currencies absent from the data get their prior given the shared shift: this is where
        pooling decides out-of-distribution behaviour. Those prior draws come from
        ``generator``, or by default from one seeded by the posterior's seed and the currency's
        name, so the same posterior always answers the same for the same currency.
        """
        return self._shift(currency, generator).clone()

    def _shift(self, currency: str, generator: torch.Generator | None = None) -> torch.Tensor:
        D, S = self.n_chains * self.n_draws, self.data.shape[0]
        essential = get_currency(currency).essential  # first: an unknown name is told
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"shift: generator must be a torch.Generator or None, got "
                f"{type(generator).__name__} {generator!r:.40}"
            )
        if currency in self.data.currencies and "shift" in self.draws:
            return self.flat_draws("shift")[..., self.data.currencies.index(currency)]
        base = (
            self.flat_draws("shift_shared") if "shift_shared" in self.draws else torch.zeros(D, S)
        )
        if generator is None:
            # (reduced to torch's 64 bits: a seed the exact engine drew for one simulation of
            # many, up to 2**62, overflowed them)
            mixed = (self.seed * 1_000_003 + zlib.crc32(currency.encode())) % 2**64
            generator = torch.Generator().manual_seed(mixed)
        return GroupPrior(self.hypothesis).currency_shift(base, essential, generator)

    def bounded(self, site: str) -> torch.Tensor | None:
        """``[D, S]`` draws of ``lapse``, ``strength`` or ``clone`` where the hypothesis makes
        them latent (a new tensor); ``None`` where it fixes them (the likelihood then uses the
        fixed value)."""
        value = self._bounded(site)
        return None if value is None else value.clone()

    def _bounded(self, site: str) -> torch.Tensor | None:
        return self.flat_draws(site) if site in self.draws else None

    def type_probabilities(self, draws: slice = slice(None)) -> torch.Tensor:
        """``[D, S, U, K]``: ``P(z_u = k | theta_d, data)`` per draw (with clones, through the
        prototype's posterior); ``draws`` selects some of the flat draws."""
        check_draw_slice("type_probabilities", draws)
        log_pi = self.flat_draws("pi")[draws].clamp_min(1e-300).log()
        clone = self._bounded("clone")
        clone = None if clone is None else clone[draws]
        return type_posterior(log_pi, self._user_loglik_memo()[draws], self.data.user_mask, clone)

    def manner_probabilities_per_draw(
        self, chunk: int = 256, draws: slice = slice(None), probs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[D, S, U, M]``: ``sum_k P(z_u = k | theta_d) P(m_u | z_u = k, tones_u, theta_d)``;
        ``draws`` selects some of the flat draws, ``probs`` their
        :meth:`type_probabilities` when the caller already holds them."""
        probs = self.type_probabilities(draws) if probs is None else probs
        strength = self._bounded("strength")
        strength = None if strength is None else strength[draws]
        if strength is None:
            given = manner_given_type(self.data, self.hypothesis).to(probs.dtype)
            return (probs.unsqueeze(-1) * given).sum(-2)
        parts = [
            (
                probs[i : i + chunk].unsqueeze(-1)
                * manner_given_type(self.data, self.hypothesis, strength[i : i + chunk])
            ).sum(-2)
            for i in range(0, len(probs), chunk)
        ]
        return torch.cat(parts)

    def shifts_in_data(self) -> torch.Tensor:
        """``[D, S, C]`` shifts of the data's currencies."""
        return torch.stack([self._shift(c) for c in self.data.currencies], dim=-1)

    def user_loglik(self, chunk: int = 256) -> torch.Tensor:
        """``[D, S, U, K]`` each user's log-likelihood under each type, per draw (computed once;
        a new tensor each call)."""
        return _new(self._user_loglik_memo(chunk))

    def _user_loglik_memo(self, chunk: int = 256) -> torch.Tensor:
        return self._memoised("user_loglik", lambda: self._user_loglik(chunk))

    def draws_loglik(self) -> torch.Tensor:
        """``[D, S, U, K]`` :meth:`user_loglik` at exactly the values the draws hold (what
        ArviZ's ``log_likelihood`` and ``lp`` report). The same tensor but for the exact
        engine's lapse or strength drawn within its grid cell, whose :meth:`user_loglik` is
        the cell's point's (the engine's quadrature, which its acting and summaries use; scoring
        every draw again costs ~1.4 s per simulation of 1,000 draws). A new tensor each call."""
        return _new(self._draws_loglik_memo())

    def _draws_loglik_memo(self) -> torch.Tensor:
        return self._memoised("draws_loglik", self._user_loglik_memo)

    def _memoised(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``name``'s tensor, computed once: by the engine's lazy recipe if it left one
        (``_lazy[name]``), else by ``compute``."""
        if name not in self._memo:
            self._memo[name] = (self._lazy.pop(name, None) or compute)()
        return self._memo[name]

    def _user_loglik(self, chunk: int, points: dict[str, torch.Tensor] | None = None):
        """:meth:`user_loglik` at the draws' values, or with a lapse or strength at the values
        ``points[site]`` ``[D, S]`` instead (the exact engine's grid points:
        :data:`GRID_POINT_STATS`)."""
        index = EventIndex.from_data(self.data)
        lam, shift = self._lam(), self.shifts_in_data()
        D, S = lam.shape
        at = points or {}
        bounded = [at.get(site, self._bounded(site)) for site in ("lapse", "strength")]
        if not DRAW_DEPENDENT_LOGLIK & set(self.draws):
            lam_1, shift_1 = shared_by_simulations(lam[:1], shift[:1])
            one = user_loglik(self.data, self.hypothesis, lam_1, shift_1, index)
            return one.expand(D, *one.shape[1:])
        # Grid engines repeat a few parameter values across draws and simulations: score each
        # distinct value once, for every simulation, then pick (value, simulation) per draw.
        columns = [lam.unsqueeze(-1), shift]
        columns += [b.unsqueeze(-1) for b in bounded if b is not None]
        values, which = torch.unique(
            torch.cat(columns, -1).reshape(D * S, -1), dim=0, return_inverse=True
        )
        C = shift.shape[-1]

        def score(lam_, shift_, rest, on_cells=False):
            extra, j = {}, 0
            for site, b in zip(("lapse", "strength"), bounded, strict=True):
                if b is not None:
                    extra[site] = rest[..., j]
                    j += 1
            data, hyp = self.data, self.hypothesis
            return user_loglik(data, hyp, lam_, shift_, index, **extra, lapse_on_cells=on_cells)

        if len(values) * 4 <= D:
            parts = [
                score(
                    v[:, :1],  # [t, 1]: shared by every simulation
                    v[:, 1 : 1 + C].unsqueeze(-2),  # [t, 1, C]
                    v[:, 1 + C :].unsqueeze(-2),  # [t, 1, extra]
                )
                for v in values.split(chunk)
            ]
            return torch.cat(parts)[which.reshape(D, S), torch.arange(S)]
        rest = torch.cat(
            [b.unsqueeze(-1) for b in bounded if b is not None] or [lam[..., None][..., :0]], -1
        )
        if not {"lam", "shift", "shift_shared"} & set(self.draws):
            # Only a lapse or strength per draw (drawn within the exact engine's grid cells):
            # the tables of the fixed rationality and shifts once, the lapse mixed into the
            # scored cells (the same values to rounding; whole tables per draw cost ~2 s per
            # simulation of 1,000 draws)
            return torch.cat(
                [
                    score(lam[:1], shift[:1], rest[i : i + chunk], on_cells=True)
                    for i in range(0, D, chunk)
                ]
            )
        parts = [
            score(lam[i : i + chunk], shift[i : i + chunk], rest[i : i + chunk])
            for i in range(0, D, chunk)
        ]
        return torch.cat(parts)

    def pointwise_loglik(self) -> torch.Tensor:
        """``[chains, draws, S, U]``: ``log p(y_u | y_-u, theta)`` per user and draw
        (:func:`~scai.models.marginal.leave_one_out_loglik`), ArviZ's ``log_likelihood``: each
        user's own ``log sum_k pi_k exp(L[u, k])``, and with clones (users not independent
        given ``theta``: they share a prototype) the group's log-likelihood minus the group's
        without the user, so that ``az.loo`` leaves one user out of the model fitted."""
        log_pi = self.flat_draws("pi").clamp_min(1e-300).log()
        clone = self._bounded("clone")
        loglik, mask = self._draws_loglik_memo(), self.data.user_mask
        if clone is not None:  # a difference of two group totals: in float64
            log_pi, loglik, mask, clone = (x.double() for x in (log_pi, loglik, mask, clone))
        ll = leave_one_out_loglik(log_pi, loglik, mask, clone)
        return ll.reshape(self.n_chains, self.n_draws, *ll.shape[1:])

    def log_prior(self) -> torch.Tensor:
        """``[chains, draws, S]`` log prior density of each draw's continuous sites, as the
        model states them (:class:`~scai.models.prior.GroupPrior`: ``pi`` on the simplex,
        ``lam`` on its own scale, shifts Normal)."""
        sites = {name: self.flat_draws(name) for name in self.draws}
        lp = GroupPrior(self.hypothesis).log_prob(sites, self.data.essential)
        return lp.reshape(self.n_chains, self.n_draws, -1)

    def log_joint(self) -> torch.Tensor:
        """``[chains, draws]`` ``log p(theta, data)`` of each draw, summed over simulations
        (ArviZ's ``lp``): the log prior plus every user's log-likelihood with policy and manner
        summed out."""
        return self.log_joint_by_simulation().sum(-1)

    def log_joint_by_simulation(self) -> torch.Tensor:
        """``[chains, draws, S]``: :meth:`log_joint`'s terms, one per simulation (the
        simulations are independent given their own sites)."""
        clone = self._bounded("clone")
        if clone is None:
            return self.log_prior() + self.pointwise_loglik().double().sum(-1)
        log_pi = self.flat_draws("pi").clamp_min(1e-300).log()
        group = group_loglik(log_pi, self._draws_loglik_memo(), self.data.user_mask, clone)
        shape = (self.n_chains, self.n_draws, -1)
        return self.log_prior() + group.double().reshape(shape)

    # -- summaries --------------------------------------------------------------------------
    def pi_mean(self) -> torch.Tensor:
        """``[S, K]`` posterior mean of the group mixture (a new tensor: the caller's to
        change)."""
        if self.pi_mean_exact is not None:
            return self.pi_mean_exact.clone()
        return self.flat_draws("pi").mean(0)

    def policy_table(self) -> pd.DataFrame:
        """One row per user: ``sim, user`` and one column per policy (posterior probability)."""
        rows = []
        for s, sim in enumerate(self.data.sim_ids):
            for u, user in enumerate(self.data.user_ids[s]):
                probs = self.policy_probs[s, u].tolist()
                rows.append(
                    {"sim": sim, "user": user, **dict(zip(self.policy_names, probs, strict=True))}
                )
        return pd.DataFrame(rows)

    def summary(self) -> pd.DataFrame:
        """Posterior mean, sd and 90% interval of every continuous quantity, per simulation,
        from the draws; with the exact engine ``pi``'s mean is the lattice's own (the sum the
        draws estimate, so it differs from their mean by Monte Carlo error: ``az.summary`` of
        the saved file shows the draws' mean). With one draw, ``sd`` is NaN. A currency a
        simulation does not play has its ``shift`` row drawn from the prior given the shared
        shift: its data do not touch it."""
        rows = []
        exact = self.pi_mean_exact
        for site in in_site_order(self.draws):
            value = self.draws[site]
            flat = value.reshape(-1, *value.shape[2:])
            names = parameter_names(site, self.policy_names, self.data.currencies)
            for s, sim in enumerate(self.data.sim_ids):
                v = flat[:, s]
                v = v.reshape(v.shape[0], -1)
                for j, name in enumerate(names):
                    x = v[:, j].double()
                    # in its row, not looked up afterwards (a lookup per row made the summary
                    # of 5,000 simulations take half a minute)
                    mean = exact[s, j] if site == "pi" and exact is not None else x.mean()
                    rows.append(
                        {
                            "sim": sim,
                            "parameter": name,
                            "mean": float(mean),
                            # (one draw: no spread measured, not a spread of 0)
                            "sd": float(x.std()) if x.numel() > 1 else float("nan"),
                            "q5": float(x.quantile(0.05)),
                            "q95": float(x.quantile(0.95)),
                        }
                    )
        return pd.DataFrame(rows)

    # -- prediction: how the assistant acts --------------------------------------------------
    def type_weights(self, who: str = "member", draws: slice = slice(None)) -> torch.Tensor:
        """``[D, S, K]`` per draw, the type of the player the assistant imitates.

        ``member``: a randomly chosen existing member of the group, its type drawn from its
        posterior given the draw's parameters; ``new``: a new member drawn from ``pi`` (with
        clones, as the model draws a user: ``c [z0] + (1 - c) pi``, the prototype ``z0`` from
        its posterior given the group's data and the draw).
        ``draws`` selects some of the flat draws (the same numbers as those rows of all
        draws'; only all draws' are memoised). A new tensor: the caller's to change.
        """
        check_draw_slice("type_weights", draws)
        pi = self.flat_draws("pi")[draws]
        if who == "new":
            return self._new_member(pi, draws).clone()
        if who != "member":
            raise ValueError(f"who must be 'member' or 'new', got {who!r}")
        if "member_weights" in self._memo:
            return self._memo["member_weights"][draws].clone()
        if draws != slice(None):
            return self._member_weights(pi, draws)
        self._memo["member_weights"] = self._member_weights(pi)
        return self._memo["member_weights"].clone()

    def _new_member(self, pi: torch.Tensor, draws: slice) -> torch.Tensor:
        """``[D, S, K]``: the type of a new member (:meth:`type_weights` ``("new")``)."""
        clone = self._bounded("clone")
        if clone is None:
            return pi
        c = clone[draws].to(pi.dtype)[..., None]  # [D, S, 1]
        log_pi = pi.clamp_min(1e-300).log()
        loglik = self._user_loglik_memo()[draws]
        prototype, _ = prototype_posterior(log_pi, loglik, self.data.user_mask, c[..., 0])
        return c * prototype.to(pi.dtype) + (1 - c) * pi

    def member_weights_at(self, draw: torch.Tensor) -> torch.Tensor:
        """``[S, K]``: :meth:`type_weights` ``("member")`` of flat draw ``draw[s]`` in each
        simulation ``s`` (the same numbers as row ``draw[s]`` of all draws' weights), for an
        assistant that samples one draw per simulation."""
        sims = torch.arange(self.data.shape[0])
        D = self.n_chains * self.n_draws
        if (
            not isinstance(draw, torch.Tensor)
            or draw.dtype.is_floating_point
            or draw.dtype.is_complex
            or draw.dtype == torch.bool  # a mask, not draws' numbers
            or tuple(draw.shape) != (len(sims),)
            or bool(((draw < 0) | (draw >= D)).any())
        ):
            raise ValueError(
                f"member_weights_at: draw must be a tensor of {len(sims)} whole numbers in "
                f"0..{D - 1} (a flat draw per simulation), got {draw!r:.60}"
            )
        if "member_weights" in self._memo:
            return self._memo["member_weights"][draw, sims]
        pi = self.flat_draws("pi")[draw, sims].unsqueeze(0)  # [1, S, K]
        clone = self._bounded("clone")
        clone = None if clone is None else clone[draw, sims].unsqueeze(0)
        log_pi = pi.clamp_min(1e-300).log()
        loglik = self._user_loglik_memo()[draw, sims].unsqueeze(0)  # [1, S, U, K]
        probs = type_posterior(log_pi, loglik, self.data.user_mask, clone)
        return self._members(probs, pi)[0]

    def _member_weights(self, pi: torch.Tensor, draws: slice = slice(None)) -> torch.Tensor:
        return self._members(self.type_probabilities(draws), pi)

    def _members(self, probs: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
        """``[D, S, K]``: the type of a random member, from its users' ``probs [D, S, U, K]``
        (``pi`` where no user has been observed)."""
        mask = self.data.user_mask.to(probs.dtype).unsqueeze(-1)
        n_users = mask.sum(-2).clamp_min(1)
        member = (probs * mask).sum(-2) / n_users
        # A group with no observed users yet: fall back on pi.
        return torch.where(mask.sum(-2) > 0, member, pi)

    def action_tables(self, pot: int, currency: str, generator: torch.Generator | None = None):
        """Per-draw action tables for one pot and currency: ``[D, S, K, O]`` offer
        log-probabilities and accept logits. ``pot``: a whole number from 1 to
        :data:`~scai.models.game.MAX_POT` (the tables grow with its square)."""
        pot = check_count("pot", pot, 1, MAX_POT)
        shift = self._shift(currency, generator).unsqueeze(-1)  # [D, S, 1]
        return self._tables(pot, self._lam(), shift, self._bounded("lapse"))

    def _tables(self, pot: int, lam, shift, lapse) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`action_tables` for these draws' ``lam [D, S]``, ``shift [D, S, 1]`` and
        ``lapse [D, S]`` (or ``None``: fixed)."""
        tables = group_tables(self.hypothesis, torch.tensor([pot]), lam, shift, lapse=lapse)
        return tables.offer_logp[..., 0, :, 0, :], tables.accept_logit[..., 0, :, 0, :]

    def predictive(self, pot: int, currency: str, who: str = "member") -> dict[str, torch.Tensor]:
        """Posterior-predictive ``offer_probs [S, pot+1]`` and ``accept_probs [S, pot+1]``
        (probability of accepting each offer) for any pot and currency: ``sum_k w_dk
        P(action | k, theta_d)`` averaged over draws ``d``, ``w`` :meth:`type_weights`.

        Where no draw's tables differ from another's (rationality, shifts and lapse fixed),
        one table serves every draw and the weights are averaged first; otherwise tables of
        :data:`PREDICTIVE_ENTRIES` entries at most are built a block of draws at a time. Its
        memory does not grow with the draws (all draws' tables at once: 2.4 GB for 200,000
        draws of a pot of 1,000)."""
        pot = check_count("pot", pot, 1, MAX_POT)
        weights = self.type_weights(who).unsqueeze(-1)  # [D, S, K, 1]
        lam, shift, lapse = self._lam(), self._shift(currency).unsqueeze(-1), self._bounded("lapse")
        per_draw = (lam, shift) if lapse is None else (lam, shift, lapse)
        if all(bool((x == x[:1]).all()) for x in per_draw):
            first = [None if x is None else x[:1] for x in (lam, shift, lapse)]
            offer_lp, accept_logit = self._tables(pot, *first)
            mean = weights.mean(0)  # [S, K, 1]
            return {
                "offer_probs": (mean * offer_lp[0].exp()).sum(-2),
                # (weights summing to 1 in float32: a mixture of 1s can round above 1)
                "accept_probs": (mean * torch.sigmoid(accept_logit[0])).sum(-2).clamp_(0, 1),
            }
        D = weights.shape[0]
        block = max(1, PREDICTIVE_ENTRIES // weights[0].numel() // (pot + 1))
        offer, accept = 0.0, 0.0
        for start in range(0, D, block):
            part = slice(start, start + block)
            offer_lp, accept_logit = self._tables(
                pot, lam[part], shift[part], None if lapse is None else lapse[part]
            )
            offer = offer + (weights[part] * offer_lp.exp()).sum(-2).sum(0)
            accept = accept + (weights[part] * torch.sigmoid(accept_logit)).sum(-2).sum(0)
        return {"offer_probs": offer / D, "accept_probs": (accept / D).clamp_(0, 1)}

    # -- ArviZ -------------------------------------------------------------------------------
    def to_arviz(self, max_memory: int | None = None):
        """An ``arviz.InferenceData`` (see :mod:`scai.inference.arviz_io`); refused before it is
        built if its draws' rows would take more than ``max_memory`` bytes (by default most
        of the available memory)."""
        from scai.inference.arviz_io import to_inference_data

        return to_inference_data(self, max_memory)

    def save(self, path, max_memory: int | None = None) -> None:
        """Write the posterior as NetCDF, atomically (``max_memory``: as :meth:`to_arviz`); a
        name that says another format (``p.csv``, ``p.nc.gz``) is refused."""
        from scai.inference.arviz_io import save_posterior
        from scai.inference.errors import EngineError

        path = check_path(path, "Posterior.save", EngineError)
        check_format_ending(path, ".nc", "Posterior.save", EngineError)
        save_posterior(self, path, max_memory)

    @classmethod
    def load(cls, path) -> Posterior:
        """The posterior a file written by :meth:`save` holds (a
        :class:`~scai.inference.arviz_schema.PosteriorFileError` naming the file if it is not
        one)."""
        from scai.inference.arviz_io import load_posterior
        from scai.inference.errors import EngineError

        return load_posterior(check_path(path, "Posterior.load", EngineError))


def _new(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor of ``tensor``'s values that the caller may not change the posterior through:
    a copy, or where ``tensor`` repeats one draw (a stride of 0: a hypothesis whose users'
    likelihoods do not vary with the draws) that draw copied and repeated, read-only as such a
    view is (a whole copy took 240 MB for 10 groups of 2,000 users where this takes 0.24)."""
    if tensor.dim() and tensor.stride(0) == 0:
        return tensor[:1].clone().expand_as(tensor)
    return tensor.clone()


def manner_probabilities(
    data: GroupData, hypothesis: Hypothesis, policy_probs: torch.Tensor
) -> torch.Tensor:
    """``[S, U, M]``: ``sum_k P(z_u = k | data) P(m_u | z_u = k, tones_u)``."""
    given_type = manner_given_type(data, hypothesis).to(policy_probs.dtype)
    return (policy_probs.unsqueeze(-1) * given_type).sum(-2)
