"""The prior of a group's continuous sites: the one place its distributions are written.

For one group (simulation) ``s`` under a :class:`~scai.models.hypotheses.Hypothesis`, with
``e_c = 1`` for essential-goods currencies::

    pi_s        ~ Dirichlet(a)                                     the group's norm mixture
    lam_s       ~ LogNormal(log lam0, sigma_lam)   if sigma_lam > 0, else lam0    rationality
    delta0_s    ~ Normal(0, sigma_0)               if sigma_0 > 0,   else 0       shared shift
    delta_{s,c} ~ Normal(delta0_s + mu e_c, tau)   if tau > 0,       else delta0_s + mu e_c
    eps_s       ~ Beta(a_eps, b_eps)               if a lapse prior, else the fixed lapse
    strength_s  ~ Beta(a_s, b_s)                   if a stereotype prior, else the fixed s
    clone_s     ~ Beta(a_c, b_c)                   if a clone prior,     else 0

Everything that needs the prior reads it from a :class:`GroupPrior`: the Pyro model
(:func:`scai.models.model.group_parameters`) takes its distributions, the marginal density
(:class:`scai.models.density.MarginalDensity`) its log density on the unconstrained
coordinates (torch and NumPy with the gradient), the exact engine the Gaussian of the
coordinates it grids, the posterior its log density and an unseen currency's shift, and the
assistant its draws before any data.

**Unconstrained coordinates** (:class:`Coordinates`), per simulation: ``K - 1`` stick-breaking
coordinates of ``pi`` (torch's ``StickBreakingTransform``: ``z_j = sigmoid(x_j - log(K-1-j))``,
``pi_j = z_j prod_{i<j} (1 - z_i)``), then ``log lam``, ``delta0``, one ``delta_c`` per
currency in the data, and the logits of ``eps``, ``strength`` and ``clone``, for the sites the
hypothesis makes latent (a Beta prior's log density on the logit scale, Jacobian included, is
``a log sigmoid(x) + b log sigmoid(-x) - log B(a, b)``). Under ``pi ~ Dirichlet(a)``
the fractions ``z_j`` are independent ``Beta(a_j, b_j)`` with ``b_j = a_{j+1} + ... + a_K``, so
the log density of ``x`` (the Dirichlet's and the transform's Jacobian in one) is
``sum_j a_j log sigmoid(t_j) + b_j log sigmoid(-t_j) - log B(a_j, b_j)`` with
``t_j = x_j - log(K-1-j)``: it never underflows where the Dirichlet density of ``pi`` would.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pyro.distributions as dist
import torch
from scipy.special import betaln, expit, log_expit

# torch's own Mahalanobis term of ``MultivariateNormal.log_prob``: ScalarGaussian's bits are its.
from torch.distributions.multivariate_normal import _batch_mahalanobis

from scai.models.hypotheses import Hypothesis

SITES = ("pi", "lam", "shift_shared", "shift", "lapse", "strength", "clone")


def parameter_names(site: str, policy_names, currencies) -> list[str]:
    """The names of a site's values in one simulation, as tables show them: ``pi[selfish]``
    per type, ``shift[dollars]`` per currency, the site's own name for a scalar."""
    labels = policy_names if site == "pi" else currencies if site == "shift" else None
    return [site] if labels is None else [f"{site}[{label}]" for label in labels]


#: The group-level latents in (0, 1), each with a Beta prior, by the hypothesis key of the prior.
BOUNDED = {"lapse": "lapse_prior", "strength": "stereotype_prior", "clone": "clone_prior"}
#: The smallest distance from 0 and 1 at which a bounded site's log density is scored.
_UNIT_EPS = torch.finfo(torch.float64).eps


@dataclass(frozen=True)
class Coordinates:
    """Where each latent site lives in the unconstrained vector (columns of ``[S, width]``)."""

    n_sims: int
    n_policies: int
    n_currencies: int
    latent_lam: bool
    latent_shared: bool
    latent_shift: bool
    bounded: tuple[str, ...] = ()  # the latent sites among BOUNDED, in that order

    @property
    def width(self) -> int:
        return (
            self.n_policies
            - 1
            + int(self.latent_lam)
            + int(self.latent_shared)
            + self.n_currencies * int(self.latent_shift)
            + len(self.bounded)
        )

    @property
    def size(self) -> int:
        return self.n_sims * self.width

    @property
    def has_scalars(self) -> bool:
        """Whether any site besides ``pi`` is latent."""
        return self.latent_lam or self.latent_shared or self.latent_shift or bool(self.bounded)

    def columns(self) -> dict[str, slice]:
        """Each latent site's columns (a fresh dict)."""
        return dict(_columns(self))


@functools.lru_cache(maxsize=256)
def _columns(coords: Coordinates) -> dict[str, slice]:
    """:meth:`Coordinates.columns`, computed once per layout (the NumPy potential asks on
    every gradient)."""
    out, j = {"pi": slice(0, coords.n_policies - 1)}, coords.n_policies - 1
    for name, on, n in (
        ("lam", coords.latent_lam, 1),
        ("shift_shared", coords.latent_shared, 1),
        ("shift", coords.latent_shift, coords.n_currencies),
    ):
        if on:
            out[name] = slice(j, j + n)
            j += n
    for name in coords.bounded:
        out[name] = slice(j, j + 1)
        j += 1
    return out


class GroupPrior:
    """The prior of the continuous sites (module docstring), for one hypothesis."""

    def __init__(self, hypothesis: Hypothesis):
        self.hypothesis = hypothesis
        h = hypothesis
        self.concentration = tuple(float(a) for a in h.pi_concentration)
        self.lam_loc = math.log(h.rationality)
        self.lam_scale = float(h.rationality_scale)
        self.shared_scale = float(h.shared_scale)
        self.currency_scale = float(h.currency_scale)
        self.essential_shift = float(h.essential_shift)
        alpha = np.asarray(self.concentration, dtype=np.float64)
        K = len(alpha)
        # stick-breaking fractions: z_j ~ Beta(a_j, b_j) at t_j = x_j - offset_j
        self.stick_a = alpha[:-1].copy()
        self.stick_b = np.cumsum(alpha[::-1])[::-1][1:].copy()
        self.stick_offset = np.log(K - 1 - np.arange(K - 1, dtype=np.float64))
        self.stick_log_norm = betaln(self.stick_a, self.stick_b)
        self._stick_log_norm_sum = self.stick_log_norm.sum()
        self._stick_ab = np.stack([self.stick_a, self.stick_b])
        self._layouts: dict[Coordinates, tuple] = {}  # _layout's, per layout
        #: Beta(a, b) priors of the latent sites in (0, 1), in BOUNDED's order
        self.beta = {
            site: getattr(h, key) for site, key in BOUNDED.items() if getattr(h, key) is not None
        }
        self.fixed = {
            "lapse": float(h.lapse),
            "strength": float(h.stereotype_strength),
            "clone": 0.0,
        }
        self._sticks_torch = tuple(
            torch.from_numpy(v)
            for v in (self.stick_a, self.stick_b, self.stick_offset, self.stick_log_norm)
        )

    # -- which sites are latent --------------------------------------------------------------
    @property
    def latent_lam(self) -> bool:
        return self.lam_scale > 0

    @property
    def latent_shared(self) -> bool:
        return self.shared_scale > 0

    @property
    def latent_shift(self) -> bool:
        return self.currency_scale > 0

    def latent_sites(self) -> tuple[str, ...]:
        flags = (True, self.latent_lam, self.latent_shared, self.latent_shift)
        first = [name for name, on in zip(SITES[:4], flags, strict=True) if on]
        return (*first, *self.beta)

    def coordinates(self, n_sims: int, n_currencies: int) -> Coordinates:
        return Coordinates(
            n_sims,
            len(self.concentration),
            n_currencies,
            self.latent_lam,
            self.latent_shared,
            self.latent_shift,
            tuple(self.beta),
        )

    def bounded_dist(self, site: str) -> dist.Beta:
        a, b = self.beta[site]
        dtype = torch.get_default_dtype()
        return dist.Beta(torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype))

    # -- the distributions (constrained space) -----------------------------------------------
    def pi_dist(self) -> dist.Dirichlet:
        dtype = torch.get_default_dtype()
        return dist.Dirichlet(torch.tensor(self.concentration, dtype=dtype))

    def lam_dist(self) -> dist.LogNormal:
        return dist.LogNormal(self.lam_loc, self.lam_scale)

    def shared_dist(self) -> dist.Normal:
        return dist.Normal(0.0, self.shared_scale)

    def shift_mean(self, shared: torch.Tensor, essential: torch.Tensor) -> torch.Tensor:
        """``[..., C]``: ``delta0 + mu e_c`` for ``shared [...]`` and ``essential [C]``."""
        return shared.unsqueeze(-1) + self.essential_shift * essential.to(shared.dtype)

    def shift_dist(self, mean: torch.Tensor) -> dist.Normal:
        return dist.Normal(mean, self.currency_scale)

    def log_prob(self, sites: dict[str, torch.Tensor], essential: torch.Tensor) -> torch.Tensor:
        """``[...]`` log density of constrained draws ``pi [..., K]``, and where latent
        ``lam [...]``, ``shift_shared [...]``, ``shift [..., C]`` (``essential [C]``)."""
        pi = sites["pi"].double().clamp_min(1e-300)
        lp = self.pi_dist().log_prob(pi / pi.sum(-1, keepdim=True)).double()
        if self.latent_lam:
            lp = lp + self.lam_dist().log_prob(sites["lam"].double())
        shared = torch.zeros_like(lp)
        if self.latent_shared:
            shared = sites["shift_shared"].double()
            lp = lp + self.shared_dist().log_prob(shared)
        if self.latent_shift:
            mean = self.shift_mean(shared, essential.double())
            lp = lp + self.shift_dist(mean).log_prob(sites["shift"].double()).sum(-1)
        for site in self.beta:
            # a draw stored in float32 rounds to 0 or 1 within 6e-8 of them, where a Beta
            # density with a or b below 1 is infinite: scored at the nearest float64 inside
            value = sites[site].double().clamp(_UNIT_EPS, 1 - _UNIT_EPS)
            lp = lp + self.bounded_dist(site).log_prob(value).double()
        return lp

    # -- draws --------------------------------------------------------------------------------
    def sample(
        self, shape: tuple[int, ...], essential: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Constrained draws of every site with batch ``shape`` (e.g. ``(draws, sims)``):
        ``pi [*shape, K]``, ``lam [*shape]``, ``shift_shared [*shape]`` and the currencies'
        total shifts ``shift [*shape, C]`` (fixed values where a site is not latent), for
        ``essential [C]`` (or any shape broadcasting to ``[*shape, C]``, e.g. ``[S, 1]`` for
        one currency per simulation)."""
        dtype = torch.float64
        conc = torch.tensor(self.concentration, dtype=dtype).expand(*shape, -1)
        pi = torch._sample_dirichlet(conc.contiguous(), generator=generator)
        lam = torch.full(shape, math.exp(self.lam_loc), dtype=dtype)
        if self.latent_lam:
            lam = (self.lam_loc + self.lam_scale * _randn(shape, generator)).exp()
        shared = self.shared_scale * _randn(shape, generator)
        mean = self.shift_mean(shared, essential.double())
        shift = mean + self.currency_scale * _randn(mean.shape, generator)
        out = {"pi": pi, "lam": lam, "shift_shared": shared, "shift": shift}
        for site, value in self.fixed.items():
            out[site] = torch.full(shape, value, dtype=dtype)
        for site, (a, b) in self.beta.items():
            ab = torch.tensor([a, b], dtype=dtype).expand(*shape, 2).contiguous()
            out[site] = torch._sample_dirichlet(ab, generator=generator)[..., 0]
        return {k: v.to(torch.get_default_dtype()) for k, v in out.items()}

    def bounded_grid(
        self,
        site: str,
        n: int,
        lo: float,
        hi: float,
        open_ends: tuple[bool, bool] = (True, True),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact engine's grid for a site in (0, 1) (its range:
        :class:`scai.inference.grids.bounded.BoundedGrid`): ``n`` points evenly spaced on the logit
        scale from ``lo`` to ``hi``, each weighted by the prior mass of its cell (the Beta CDF
        between the midpoints to its neighbours), or for ``n = 1`` the prior's median. An end
        cell reaches 0 (or 1) where ``open_ends`` says so, else half a step beyond its point (a
        zoomed grid, :func:`scai.inference.grids.bounded.zoom_bounded`: the prior mass outside it is
        left out). Returns ``(points [n], log masses [n])``, float64."""
        from scipy.stats import beta as beta_dist

        a, b = self.beta[site]
        if n == 1:
            return torch.tensor([beta_dist.median(a, b)], dtype=torch.float64), torch.zeros(1)
        x = np.linspace(lo, hi, n)
        half = (hi - lo) / (n - 1) / 2
        first = 0.0 if open_ends[0] else expit(lo - half)
        last = 1.0 if open_ends[1] else expit(hi + half)
        points = expit(x)
        edges = np.concatenate([[first], expit((x[1:] + x[:-1]) / 2), [last]])
        mass = np.diff(beta_dist.cdf(edges, a, b)).clip(min=1e-300)
        return torch.as_tensor(points), torch.as_tensor(np.log(mass))

    def currency_shift(
        self, shared: torch.Tensor, essential: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """Draws of a currency's shift ``delta_c`` given draws of ``delta0`` (``shared
        [...]``): its prior given the shared shift, for a currency without data."""
        mean = shared + self.essential_shift * float(essential)
        if not self.latent_shift:
            return mean
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + self.currency_scale * noise

    # -- the exact engine's coordinates -------------------------------------------------------
    def pi_cell_log_weights(self, points: torch.Tensor) -> torch.Tensor:
        """``[G]`` normalised log prior mass of each cell of a simplex lattice (points
        ``(c + 1/K) / (n + 1)``, :func:`scai.inference.grids.simplex.simplex_lattice`).

        A cell is approximated by the box ``x_k +- h`` (``h`` half the lattice step), over
        which each factor ``x_k^(a_k - 1)`` of the Dirichlet density is averaged exactly, as
        zero beyond the simplex's edge: ``((x_k + h)^a_k - max(x_k - h, 0)^a_k) / (a_k * 2 h)``.
        The product of these averages replaces the density at the point; it keeps the
        integrable singularity of a concentration below 1 at the edges, which the point value
        misses (it converges only like ``1 / n`` there). A cell at an edge holds less of the
        simplex than an inner one (its point is ``1/K`` of a step from the edge, its box reaches
        ``1/K + 1/2`` of a step in): averaging over the part inside alone gave it a whole cell's
        mass, and pulled the posterior of ``pi`` towards the edges: 0.83 where it is 0.8125
        (six users certainly of one of four types), an error a finer lattice barely shrank.
        """
        K = points.shape[-1]
        if K == 1:
            return torch.zeros(points.shape[0], dtype=points.dtype)
        h = 0.5 * K * float(points.min())  # the smallest coordinate is (1/K) / (n + 1)
        log_w = self.pi_cell_log_density(points, h)
        return log_w - torch.logsumexp(log_w, 0)

    def pi_cell_log_density(self, points: torch.Tensor, h: float) -> torch.Tensor:
        """``[G]`` log of the Dirichlet density's unnormalised factors ``prod_k x_k^(a_k - 1)``
        averaged over the box ``x_k +- h`` of each point (zero below 0), as in
        :meth:`pi_cell_log_weights`."""
        a = torch.tensor(self.concentration, dtype=points.dtype)
        lo, hi = (points - h).clamp_min(0.0), points + h
        log_avg = torch.log((hi.pow(a) - lo.pow(a)) / (a * 2 * h))
        return log_avg.sum(-1)

    def pi_cell_log_mass(self, points: torch.Tensor, h: float) -> torch.Tensor:
        """``[G]`` log Dirichlet prior mass of the lattice cells of half-step ``h`` around
        ``points [G, K]``: the cell-averaged density (:meth:`pi_cell_log_density`) times the
        cell's volume ``(2 h)^(K - 1)`` in the first ``K - 1`` coordinates, over the Dirichlet's
        normaliser ``B(a)``. Unlike :meth:`pi_cell_log_weights` it is not renormalised over the
        lattice: a lattice on part of the simplex (the exact engine's zoom,
        :func:`scai.inference.grids.simplex.zoom_simplex`) carries that part's mass."""
        a = torch.tensor(self.concentration, dtype=points.dtype)
        log_beta = torch.lgamma(a).sum() - torch.lgamma(a.sum())
        K = points.shape[-1]
        return self.pi_cell_log_density(points, h) + (K - 1) * math.log(2 * h) - log_beta

    def scalar_gaussian(self, essential: torch.Tensor) -> ScalarGaussian:
        """The Gaussian prior (``[d]``, float64) of the scalars the exact engine grids:
        ``log lam`` (if latent), then either every data currency's total shift ``delta_c``
        (if ``tau > 0``: jointly Gaussian, ``sigma_0^2 11' + tau^2 I``) or ``delta0``.
        Only for hypotheses with at least one latent scalar. (Built once per prior and set of
        currencies: a fit per simulation and epoch asks for the same one hundreds of times,
        and torch's constructor checks its shapes for ~3 ms each time.)"""
        if not (self.latent_lam or self.latent_shift or self.latent_shared):
            raise ValueError(f"hypothesis {self.hypothesis.name!r} has no latent scalar")
        scales = (self.lam_loc, self.lam_scale, self.shared_scale, self.currency_scale)
        return _scalar_gaussian(*scales, self.essential_shift, tuple(essential.tolist()))

    def shared_given_shifts(
        self, shift: torch.Tensor, essential: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draws of ``delta0`` given the data currencies' shifts ``[..., C]``: Gaussian, with
        ``delta_c = delta0 + mu e_c + eps_c``, ``eps ~ N(0, tau^2 I)``, ``delta0 ~ N(0, s0^2)``."""
        mu = self.essential_shift * essential.double()
        if not self.latent_shift:
            return (shift - mu)[..., 0]
        C = len(essential)
        precision = 1 / self.shared_scale**2 + C / self.currency_scale**2
        mean = ((shift - mu).sum(-1) / self.currency_scale**2) / precision
        noise = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
        return mean + noise / math.sqrt(precision)

    # -- unconstrained coordinates ------------------------------------------------------------
    def median(self, coords: Coordinates, essential: torch.Tensor) -> torch.Tensor:
        """``[S * width]``: uniform-ish ``pi`` (sticks at 0), ``lam`` at its median, shifts at
        their means."""
        cols = torch.zeros(coords.n_sims, coords.width, dtype=torch.get_default_dtype())
        where = coords.columns()
        if coords.latent_lam:
            cols[:, where["lam"]] = self.lam_loc
        if coords.latent_shift:
            cols[:, where["shift"]] = self.essential_shift * essential.to(cols.dtype)
        for site in coords.bounded:
            a, b = self.beta[site]
            cols[:, where[site]] = math.log(a / b)  # the logit of the prior mean
        return cols.reshape(-1)

    def log_prob_unconstrained(
        self, cols: torch.Tensor, coords: Coordinates, essential: torch.Tensor
    ) -> torch.Tensor:
        """``[..., S]`` log density of ``cols [..., S, width]`` (Jacobians included), torch."""
        where = coords.columns()
        a, b, offset, log_norm = self._sticks_torch
        t = cols[..., where["pi"]].double() - offset
        logsigmoid = torch.nn.functional.logsigmoid
        lp = (a * logsigmoid(t) + b * logsigmoid(-t) - log_norm).sum(-1)
        lp = lp.to(cols.dtype)
        if coords.latent_lam:
            lp = lp + dist.Normal(self.lam_loc, self.lam_scale).log_prob(
                cols[..., where["lam"]][..., 0]
            )
        shared = torch.zeros_like(lp)
        if coords.latent_shared:
            shared = cols[..., where["shift_shared"]][..., 0]
            lp = lp + self.shared_dist().log_prob(shared)
        if coords.latent_shift:
            mean = self.shift_mean(shared, essential)
            lp = lp + self.shift_dist(mean).log_prob(cols[..., where["shift"]]).sum(-1)
        for site in coords.bounded:
            a, b = self.beta[site]
            x = cols[..., where[site]][..., 0]
            lp = lp + (a * logsigmoid(x) + b * logsigmoid(-x) - float(betaln(a, b)))
        return lp

    def sticks_np(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(z, log z, log(1 - z))`` ``[S, K - 1]``: the stick-breaking fractions ``z =
        sigmoid(x - offset)`` of the sticks' columns ``x [S, K - 1]``, and their logs (what
        the prior and ``log pi`` both read: computed once per gradient)."""
        t = x - self.stick_offset
        return expit(t), log_expit(t), log_expit(-t)

    def log_prob_unconstrained_np(
        self,
        cols: np.ndarray,
        coords: Coordinates,
        essential: np.ndarray,
        sticks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(log p [S], d log p / d cols [S, width])`` for ``cols [S, width]``, NumPy: the
        same density as :meth:`log_prob_unconstrained`, with its gradient. ``sticks``:
        :meth:`sticks_np` of the sticks' columns, if already computed. Compiled
        (:func:`scai.models.kernels.prior_terms`: one pass where NumPy made ~40 calls on
        arrays of a few numbers, ~100 us per gradient)."""
        from scai.models.kernels import prior_terms

        where = _columns(coords)  # read only
        if sticks is None:
            sticks = self.sticks_np(cols[:, where["pi"]])
        columns, scales, bounded, bounded_ab = self._layout(coords)
        # [C] (a caller with no shifts may pass an empty [S, 0])
        mean_shift = (self.essential_shift * np.asarray(essential, dtype=np.float64)).reshape(-1)
        return prior_terms(
            np.ascontiguousarray(cols, dtype=np.float64),
            np.ascontiguousarray(np.stack(sticks)),
            self._stick_ab,
            columns,
            scales,
            mean_shift,
            bounded,
            bounded_ab,
        )

    def _layout(self, coords: Coordinates):
        """What :func:`scai.models.kernels.prior_terms` reads of ``coords``: the columns of
        ``lam``, ``delta0``, the first shift (-1 where not latent) and the number of shifts;
        the scales; the bounded sites' columns and their Beta priors (computed once per
        layout)."""
        if coords in self._layouts:
            return self._layouts[coords]
        where = _columns(coords)
        columns = np.array(
            [
                where["lam"].start if coords.latent_lam else -1,
                where["shift_shared"].start if coords.latent_shared else -1,
                where["shift"].start if coords.latent_shift else -1,
                coords.n_currencies if coords.latent_shift else 0,
            ],
            dtype=np.int64,
        )
        scales = np.array(
            [
                self.lam_loc,
                self.lam_scale,
                self.shared_scale,
                self.currency_scale,
                self._stick_log_norm_sum,
            ]
        )
        bounded = np.array([where[site].start for site in coords.bounded], dtype=np.int64)
        ab = [self.beta[site] for site in coords.bounded]
        bounded_ab = np.array(
            [[a for a, _ in ab], [b for _, b in ab], [float(betaln(a, b)) for a, b in ab]]
        ).reshape(3, len(ab))
        self._layouts[coords] = columns, scales, bounded, bounded_ab
        return self._layouts[coords]

    def sample_unconstrained(
        self, n: int, coords: Coordinates, essential: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """``[n, S, width]`` prior draws of the unconstrained coordinates. The sticks are drawn
        as ``logit z = log G_a - log G_b`` (``G ~ Gamma``) in float64: ``Gamma(0.5)`` draws are
        often below float32's smallest normal number."""
        dtype = torch.get_default_dtype()
        S = coords.n_sims
        a, b, offset, _ = self._sticks_torch
        g_a = torch._standard_gamma(a.expand(n, S, -1).contiguous(), generator=generator)
        g_b = torch._standard_gamma(b.expand(n, S, -1).contiguous(), generator=generator)
        logit = g_a.clamp_min(1e-300).log() - g_b.clamp_min(1e-300).log()
        cols = [(logit + offset).to(dtype)]
        if coords.latent_lam:
            cols.append((self.lam_loc + self.lam_scale * _randn((n, S, 1), generator)).to(dtype))
        shared = torch.zeros(n, S, dtype=torch.float64)
        if coords.latent_shared:
            shared = self.shared_scale * _randn((n, S), generator)
            cols.append(shared.unsqueeze(-1).to(dtype))
        if coords.latent_shift:
            mean = self.shift_mean(shared, essential.double())
            cols.append((mean + self.currency_scale * _randn(mean.shape, generator)).to(dtype))
        for site in coords.bounded:
            a, b = self.beta[site]
            g_a = torch._standard_gamma(
                torch.full((n, S, 1), a, dtype=torch.float64), generator=generator
            )
            g_b = torch._standard_gamma(
                torch.full((n, S, 1), b, dtype=torch.float64), generator=generator
            )
            logit = g_a.clamp_min(1e-300).log() - g_b.clamp_min(1e-300).log()
            cols.append(logit.to(dtype))
        return torch.cat(cols, -1)


def _randn(shape, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float64)


@dataclass(frozen=True, eq=False)
class ScalarGaussian:
    """``N(loc, covariance_matrix)`` over the scalars the exact engine grids: the log density of
    torch's ``MultivariateNormal`` (the same operations, in the same order: the same bits)
    without its constructor, whose shape check (``torch.broadcast_shapes``) imports SymPy, ~0.5
    s of CPU, in every process that builds one (the exact engine's workers). Compared by
    identity, as torch's distributions are (a field-wise ``==`` on tensors would raise)."""

    loc: torch.Tensor  # [d]
    covariance_matrix: torch.Tensor  # [d, d]
    scale_tril: torch.Tensor  # [d, d], its Cholesky factor

    @classmethod
    def of(cls, loc: torch.Tensor, covariance_matrix: torch.Tensor) -> ScalarGaussian:
        return cls(loc, covariance_matrix, torch.linalg.cholesky(covariance_matrix))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``[...]``: the log density at each ``[..., d]`` point. A NaN point is a
        ``ValueError``, as torch's validated ``MultivariateNormal`` has it (infinities pass)."""
        if torch.isnan(value).any():
            raise ValueError("ScalarGaussian.log_prob: a point holds NaN")
        mahalanobis = _batch_mahalanobis(self.scale_tril, value - self.loc)
        half_log_det = self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return -0.5 * (self.loc.shape[-1] * math.log(2 * math.pi) + mahalanobis) - half_log_det


@functools.lru_cache(maxsize=64)
def _scalar_gaussian(
    lam_loc: float,
    lam_scale: float,
    shared_scale: float,
    currency_scale: float,
    essential_shift: float,
    essential: tuple[float, ...],
) -> ScalarGaussian:
    """:meth:`GroupPrior.scalar_gaussian` of a prior with these settings (one of its scalars
    latent: a scale above 0)."""
    C = len(essential)
    locs, blocks = [], []
    if lam_scale > 0:
        locs.append(torch.tensor([lam_loc]))
        blocks.append(torch.tensor([[lam_scale**2]]))
    if currency_scale > 0:
        locs.append(essential_shift * torch.tensor(essential, dtype=torch.float64))
        blocks.append(shared_scale**2 * torch.ones(C, C) + currency_scale**2 * torch.eye(C))
    elif shared_scale > 0:
        locs.append(torch.zeros(1))
        blocks.append(torch.tensor([[shared_scale**2]]))
    loc, cov = torch.cat(locs).double(), torch.block_diag(*blocks).double()
    return ScalarGaussian.of(loc, cov)
