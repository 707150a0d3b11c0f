"""SVI's importance correction: draws from each simulation's exact posterior, by importance
resampling from a proposal built around a variational guide.

The guide alone can be off in ways ``tests/test_engines_svi.py`` measures (too narrow, in a
wrong mode of a currency shift, blind to the correlation of ``pi`` and the shift); the exact
log joint (:meth:`scai.models.density.MarginalDensity.log_joint`) is cheap for the few continuous
sites of a simulation, so the guide's draws are reweighted by it and resampled, with the
Pareto ``k`` of the smoothed weights telling when that is not enough.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from scai.inference.laplace import (
    Laplace,
    floored_inverse,
    hessian_blocks,
    laplace,
    mirrored_starts,
)
from scai.models.density import MarginalDensity
from scai.models.errors import ScaiWarning


class ImportanceWarning(ScaiWarning):
    """The importance correction's Pareto ``k`` is above :func:`pareto_k_threshold` for some
    simulations: their reweighted draws may still be off (too few proposal draws where the
    posterior has mass)."""


#: Above this Pareto ``k`` an importance-sampling estimate is unreliable whatever the number of
#: draws (Vehtari et al. 2024, "Pareto smoothed importance sampling", JMLR 25(72)); with fewer
#: draws the bar is lower: :func:`pareto_k_threshold`.
PARETO_K_MAX = 0.7


def pareto_k_threshold(draws: int) -> float:
    """The Pareto ``k`` above which PSIS with ``draws`` proposal draws is unreliable:
    ``min(1 - 1 / log10(draws), PARETO_K_MAX)`` (Vehtari et al. 2024, section 3; ArviZ's
    ``loo`` uses the same bar). 0.697 at the default 2,000 draws, 0.57 at 200, 0.5 at 100: a
    fixed 0.7 let a ``proposal_draws=200`` fit with ``k`` 0.64 pass unwarned (a review)."""
    if draws <= 10:  # (log10 <= 1: no k is reliable)
        return -math.inf
    return min(1.0 - 1.0 / math.log10(draws), PARETO_K_MAX)


#: At most this many numbers in :meth:`MixtureProposal.log_prob`'s differences of draws and
#: components at a time (8e6: 64 MB in float64).
DIFF_BUDGET = 8_000_000


@dataclass(frozen=True)
class ImportanceSettings:
    """How :func:`importance_correct` builds its proposal. The defaults were chosen from
    measurements on the 52 groups of ``tests/test_engines_svi.py`` (against Student-t scale
    inflation 1.5 and 2, normal components, and 25% prior: all within the Monte Carlo noise of
    each other once the mode search is in; without it, wrong modes stay wrong). A tail start
    (:func:`_tail_starts`) adds a component only where it found a new mode: a component at
    every tail start's end point cuts the median effective sample size of 12 groups under
    ``pooled`` from 772 to 523 (589 to 297 on another seed); with only new modes it is 697
    (525)."""

    scout_draws: int = 1000  # prior draws scored to pick the extra starts of the mode search
    starts: int = 4  # best-scoring prior draws used as starts (besides the guide's mean)
    df: float = 3.0  # degrees of freedom of the Student-t components
    defensive: float = 0.1  # weight of the prior in the proposal mixture
    min_precision: float = 0.25  # floor of the Laplace precision's eigenvalues (sd <= 2)
    tail: float = 0.05  # share of the scout draws in each tail of a scalar (:func:`_tail_starts`)


@dataclass
class MixtureProposal:
    """Per simulation, a mixture of ``J`` multivariate Student-t components (``1 - defensive``
    in all, shared equally, or in proportion to ``weights [J, S]``) and the prior (weight
    ``defensive``), on the ``[S, W]`` columns of :class:`~scai.models.prior.Coordinates`.

    The prior component bounds every importance weight by ``likelihood / defensive``
    (Hesterberg 1995, "Weighted average importance sampling and defensive mixture
    distributions"); the Student-t tails cover posteriors heavier-tailed than a normal.
    """

    locs: torch.Tensor  # [J, S, W]
    scale_tril: torch.Tensor  # [J, S, W, W]
    df: float
    density: MarginalDensity  # its prior is the defensive component
    defensive: float
    weights: torch.Tensor | None = None  # [J, S], each column summing to 1; None: equal

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, S, W]``."""
        J, S, W = self.locs.shape
        dtype = self.locs.dtype
        sims = torch.arange(S)
        if self.weights is None:
            component = torch.randint(J, (n, S), generator=generator)
        else:
            component = torch.multinomial(self.weights.T.double(), n, True, generator=generator).T
        z = torch.randn(n, S, W, generator=generator, dtype=dtype)
        # chi2(df) = 2 Gamma(df / 2)
        half_df = torch.full((n, S, 1), self.df / 2, dtype=torch.float64)
        chi2 = 2 * torch._standard_gamma(half_df, generator=generator)
        z = z / (chi2 / self.df).sqrt().to(dtype)
        # each component's factor times every draw's z (the draws as columns), kept where the
        # draw picked that component: gathering a factor per draw held n x S x W x W numbers
        theta = self.locs[component, sims]
        for j in range(J):
            scaled = (self.scale_tril[j] @ z.permute(1, 2, 0)).permute(2, 0, 1)  # [n, S, W]
            theta = theta + torch.where((component == j).unsqueeze(-1), scaled, 0.0)
        if self.defensive > 0:
            from_prior = torch.rand(n, S, 1, generator=generator) < self.defensive
            theta = torch.where(from_prior, self.density.sample_prior(n, generator), theta)
        return theta

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """``[n, S]`` log density of ``theta [n, S, W]``."""
        J, S, W = self.locs.shape
        # the draws as right-hand sides of one triangular solve per component and simulation
        # (broadcasting the factors over the draws held n x J x S x W x W numbers), in chunks
        # of draws of at most DIFF_BUDGET numbers
        step = max(1, DIFF_BUDGET // max(1, J * S * W))
        maha = torch.cat(
            [
                torch.linalg.solve_triangular(
                    self.scale_tril,
                    (part.unsqueeze(1) - self.locs).permute(1, 2, 3, 0),
                    upper=False,
                )
                .square()
                .sum(-2)
                .permute(2, 0, 1)
                for part in theta.split(step)
            ]
        )  # [n, J, S]
        log_det = self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # [J, S]
        df = self.df
        log_t = (
            math.lgamma((df + W) / 2)
            - math.lgamma(df / 2)
            - 0.5 * W * math.log(df * math.pi)
            - log_det
            - 0.5 * (df + W) * torch.log1p(maha / df)
        )
        if self.weights is None:
            local = torch.logsumexp(log_t, dim=1) - math.log(J)
        else:
            local = torch.logsumexp(log_t + self.weights.to(log_t.dtype).log(), dim=1)
        if self.defensive <= 0:
            return local
        return torch.logaddexp(
            math.log1p(-self.defensive) + local,
            math.log(self.defensive) + self.density.log_prior(theta.flatten(-2)),
        )


def _chunked_log_joint(
    density: MarginalDensity, theta: torch.Tensor, chunk: int = 500
) -> torch.Tensor:
    """``[n, S]`` ``MarginalDensity.log_joint`` of ``theta [n, S, W]``, ``-inf`` where not finite
    (far in a proposal's tails, where the density underflows)."""
    with torch.no_grad():
        out = torch.cat(
            [
                density.log_joint(theta[i : i + chunk].flatten(-2))
                for i in range(0, len(theta), chunk)
            ]
        )
    return torch.where(torch.isfinite(out), out, -math.inf)


def _scout_draws(
    density: MarginalDensity, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` prior draws ``[n, S, W]`` with ``pi``'s sticks inside the simplex (far at its edge
    the log joint is flat: a start there goes nowhere), and their log joints ``[n, S]``."""
    scout = density.sample_prior(n, generator)
    sticks = density.columns["pi"]
    scout[..., sticks] = scout[..., sticks].clamp(-6.0, 6.0)
    return scout, _chunked_log_joint(density, scout)


def _tail_starts(
    density: MarginalDensity, scout: torch.Tensor, scores: torch.Tensor, tail: float
) -> torch.Tensor:
    """``[2 C, S, W]``: for each of the ``C`` coordinates that are not ``pi``'s sticks (the
    scalars and bounded sites), each simulation's best-scoring draw of ``scout [n, S, W]``
    (log joints ``scores [n, S]``) among those whose coordinate lies in its lowest ``tail``
    share, and the best among the highest.

    Why: a scalar can have a mode far out in its prior, where the group reads as another type
    (under ``essential_goods_shared``, ten selfish users' shift of -1.4 makes them altruistic:
    2.5% of the posterior, 3.7 nats below the best mode). Few prior draws enter its basin and
    none of the best-scoring overall: without these starts the proposal misses it, and SVI's
    draws are 0.02 off the exact engine's in ``pi`` with no warning (Pareto ``k`` cannot see
    mass the proposal never reaches)."""
    n, S, W = scout.shape
    sticks = density.columns["pi"]
    k = max(1, int(tail * n))
    sims = torch.arange(S)
    out = []
    for c in (c for c in range(W) if not sticks.start <= c < sticks.stop):
        order = scout[..., c].argsort(0)  # [n, S]
        for part in (order[:k], order[-k:]):
            out.append(scout[part[scores.gather(0, part).argmax(0), sims], sims])
    return torch.stack(out) if out else scout[:0]


def _new_mode(
    point: torch.Tensor, locs: torch.Tensor, scale_tril: torch.Tensor, kept: torch.Tensor
) -> torch.Tensor:
    """``[S]`` 1.0 where ``point [S, W]`` lies more than one sd (Mahalanobis, in each kept
    component's own scale: ``locs [J, S, W]``, ``scale_tril [J, S, W, W]``, ``kept [J, S]``)
    from every kept component, else 0.0: a tail start that ended in a mode found already adds
    no component (twice the weight on one mode would take it from the guide's)."""
    diff = (point.double() - locs.double()).unsqueeze(-1)  # [J, S, W, 1]
    z = torch.linalg.solve_triangular(scale_tril.double(), diff, upper=False).squeeze(-1)
    near = ((z**2).sum(-1) <= 1.0) & kept  # [J, S]
    return (~near.any(0)).double()


def _modes(
    density: MarginalDensity, starts: torch.Tensor, min_precision: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``modes [R, S, W]`` and Laplace covariances ``[R, S, W, W]``: L-BFGS on every
    simulation's exact log joint from each of ``starts [R, S, W]`` (:mod:`scai.inference.laplace`;
    a search that fails keeps its start), eigenvalues of the precision floored at
    ``min_precision`` so that flat or non-concave directions get a finite, wide scale."""
    modes, covariances = [], []
    for start in starts.double().numpy():
        approx = laplace(density, start.reshape(-1), min_precision=min_precision)
        if approx is None:
            flat = start.reshape(-1)
            approx = Laplace(flat, floored_inverse(hessian_blocks(density, flat), min_precision))
        modes.append(approx.mode.reshape(start.shape))
        covariances.append(approx.covariance)
    dtype = starts.dtype
    return torch.tensor(np.stack(modes), dtype=dtype), torch.tensor(
        np.stack(covariances), dtype=dtype
    )


def _systematic_resample(weights: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, S]`` indices into ``weights [S, M]`` (normalised per row), in random order."""
    S = weights.shape[0]
    cdf = weights.double().cumsum(-1)
    cdf = cdf / cdf[:, -1:]
    start = torch.rand(S, 1, dtype=torch.float64, generator=generator)
    u = (start + torch.arange(n, dtype=torch.float64)) / n
    index = torch.searchsorted(cdf, u).clamp_max(weights.shape[1] - 1)  # [S, n]
    order = torch.rand(S, n, generator=generator).argsort(-1)
    return index.gather(-1, order).T


def importance_correct(
    density: MarginalDensity,
    loc: torch.Tensor,
    cov: torch.Tensor,
    num_draws: int,
    proposal_draws: int,
    generator: torch.Generator,
    settings: ImportanceSettings = ImportanceSettings(),
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Draws from the exact posterior of each simulation by importance resampling, with a
    proposal built from the guide.

    1. Modes: L-BFGS on each simulation's exact log joint (:mod:`scai.inference.laplace`) from the
       guide's mean, from the prior median with every shift at 0 (where a hypothesis has a
       latent shift: :meth:`MarginalDensity.unshifted_starts`), from the ``settings.starts`` best
       of ``settings.scout_draws`` prior draws, from the best of those in each tail of
       every scalar or bounded site (:func:`_tail_starts`), and from the guide's mean with the
       shifts moved by each difference of two types' weights
       (:func:`~scai.inference.laplace.mirrored_starts`); a Laplace covariance at each end
       point (the tails' and the moved starts' a component only where they found a mode of
       their own).
    2. Proposal (:class:`MixtureProposal`): Student-t components (``settings.df``) at the
       guide's normal and at each end point, plus the prior with weight
       ``settings.defensive``.
    3. ``proposal_draws`` draws, log weights ``log p(theta, data) - log q(theta)`` per
       simulation, Pareto-smoothed (PSIS, ``arviz.psislw``), then ``num_draws`` draws per
       simulation resampled (systematic resampling, random order).

    ``loc [S, W]`` and ``cov [S, W, W]`` are the guide's blocks (:func:`_guide_blocks`).
    Returns ``theta [num_draws, S, W]``, the Pareto ``k [S]`` (not finite when it could not
    be estimated; such a simulation's draws are resampled uniformly) and the effective sample
    size ``[S]`` of the smoothed weights.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ's notice of its 1.0 refactor
        import arviz as az

    S, W = loc.shape
    with torch.no_grad():
        scout, scores = _scout_draws(density, settings.scout_draws, generator)
        best = scores.topk(settings.starts, dim=0).indices
        starts = [loc.unsqueeze(0), scout[best, torch.arange(S)]]
        # a narrow mode by a shift of 0 (MarginalDensity.unshifted_starts)
        unshifted = density.unshifted_starts()
        starts[1:1] = [x.reshape(1, S, W).to(loc.dtype) for x in unshifted]
        tails = _tail_starts(density, scout, scores, settings.tail)
        # the guide's mean with the shifts moved by each difference of two types' weights: a
        # guide fitted to one reading of a group misses the other (selfish users at shift 0,
        # altruists at -2: equally heavy, and half of the seeds' proposals held one alone)
        mirrored = mirrored_starts(density, loc.double().numpy())
        if mirrored:
            tails = torch.cat([tails, torch.from_numpy(np.stack(mirrored)).to(loc.dtype)])
        starts = torch.cat([*starts, tails])
    modes, mode_cov = _modes(density, starts, settings.min_precision)
    with torch.no_grad():
        covs = torch.cat([cov.unsqueeze(0), mode_cov]).double()
        locs = torch.cat([loc.unsqueeze(0), modes])
        scale_tril = torch.linalg.cholesky((covs + covs.transpose(-1, -2)) / 2)
        # a tail start's end point is a component only where it found a mode of its own
        weights = torch.ones(len(locs), S, dtype=torch.float64)
        first_tail = len(locs) - len(tails)
        for j in range(first_tail, len(locs)):
            weights[j] = _new_mode(locs[j], locs[:j], scale_tril[:j], weights[:j] > 0)
        proposal = MixtureProposal(
            locs=locs,
            scale_tril=scale_tril.to(loc.dtype),
            df=settings.df,
            density=density,
            defensive=settings.defensive,
            weights=weights / weights.sum(0) if len(tails) else None,
        )
        theta = proposal.sample(proposal_draws, generator)  # [M, S, W]
        log_w = _chunked_log_joint(density, theta) - proposal.log_prob(theta)
        log_w = torch.where(torch.isfinite(log_w), log_w, -math.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own k > 0.7 warning; ours names the simulations
        smoothed, k = az.psislw(log_w.T.double().numpy())  # [S, M], normalised
    weights = torch.from_numpy(np.exp(smoothed)).nan_to_num(0.0, 0.0, 0.0)
    total = weights.sum(-1, keepdim=True)
    weights = torch.where(total > 0, weights / total.clamp_min(1e-300), 1.0 / weights.shape[1])
    k = np.where(total.squeeze(-1).numpy() > 0, k, np.nan)
    ess = (1.0 / (weights**2).sum(-1)).numpy()
    index = _systematic_resample(weights, num_draws, generator)  # [D, S]
    return theta[index, torch.arange(S)], np.asarray(k, dtype=float), ess
