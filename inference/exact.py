"""The exact engine: enumeration plus quadrature.

Each user's policy and manner are summed out exactly (:mod:`scai.models.marginal`). The continuous
quantities are integrated on a grid: the group mixture ``pi`` on an interior simplex lattice
(:func:`scai.inference.grids.simplex.simplex_lattice`, zoomed onto the posterior of a large group:
:func:`scai.inference.grids.simplex.zoom_simplex`) and, where the hypothesis makes them latent, the
rationality ``lam`` and the currency shifts on prior-quantile grids.

Exact (up to the grid) for hypotheses with at most **two** latent scalars besides ``pi``:
a latent ``lam``, a shared currency shift ``shift_shared`` and one ``shift`` per currency
the simulation plays count one each (a simulation is fitted alone when a scalar is latent; the
shift of a currency it does not play is drawn from its prior given the shared shift). With one
currency in a simulation, every preset qualifies (``pooled``: ``shift[c]``, with
``shift_shared`` drawn given it). Larger hypotheses are refused: use ``svi`` or ``mcmc``.

Posterior draws are resampled from the grid's weights; means and per-user probabilities are
computed from the weights themselves, not from the draws.

The engine's other jobs are modules of their own: its budgets (:mod:`scai.inference.exact_budget`),
the bounded sites' grids (:mod:`scai.inference.exact_bounded`), the zooms of the latent scalars'
grid (:mod:`scai.inference.exact_zoom`), the log joint's blocks and weights
(:mod:`scai.inference.exact_joint`) and the kernels (:mod:`scai.inference.exact_kernels`).
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.draws import DEFAULT_DRAWS
from scai.inference.exact_bounded import (
    bounded_points,
    first_grids,
    site_cells,
    site_grid,
    site_grid_diagnostics,
    zoom_bounded_sites,
)
from scai.inference.exact_budget import (
    COARSE_SIMPLEX_POINTS,
    GRID_POINTS,
    MIN_SIMPLEX_POINTS,
    check_grid_size,
    fit_budget,
)
from scai.inference.exact_joint import cumulative_weights, group_loglik, normalise
from scai.inference.exact_kernels import (
    clone_policy_probs,
    count_by_type,
    decided_users,
    distinct_users,
    grid_action_loglik,
    lattice_policy_probs,
)
from scai.inference.exact_zoom import (
    LOST_PEAK_MESSAGE,
    CoarseGrid,
    ScalarFit,
    tell_lost_peaks,
    warn_at_grid_edge,
    zoom_one_scalar,
    zoom_two_scalars,
)
from scai.inference.grids.bounded import BoundedGrid, draw_within_cells
from scai.inference.grids.boxes import uniform_grid
from scai.inference.grids.latent import check_exact, grid_parameters, latent_scalars
from scai.inference.grids.resolution import effective_points
from scai.inference.grids.simplex import (
    MAX_SIMPLEX_POINTS,
    SimplexZoom,
    simplex_lattice,
    simplex_zoom_threshold,
    zoom_simplex,
)
from scai.inference.posterior import GRID_POINT_STATS, Posterior, manner_probabilities
from scai.models.distinct import distinct_rows, sorted_distinct_rows
from scai.models.errors import outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, tone_loglik
from scai.models.prior import GroupPrior


def fit_exact(
    data: GroupData,
    hypothesis: Hypothesis,
    *,
    table=None,
    seed: int = 0,
    num_draws: int = DEFAULT_DRAWS["exact"],
    grid_points: int | None = None,
    zoom_points: int | None = None,
    max_simplex_points: int = MAX_SIMPLEX_POINTS,
    action_loglik: torch.Tensor | None = None,
    bounded_grids: dict[str, BoundedGrid] | None = None,
) -> Posterior:
    """Exact posterior (up to the grid).

    The latent scalars (if any) are first gridded uniformly over +-6 prior sd
    (``grid_points`` per dimension: 200 for one, 40 for two), then refined around every local
    maximum (:mod:`scai.inference.exact_zoom`): in one dimension by windows
    (:func:`~scai.inference.grids.windows.zoom_modes`, ``zoom_points`` 32), in two by boxes
    (:func:`~scai.inference.grids.boxes.zoom_boxes`, ``zoom_points`` 24 per dimension), each zoom
    halving the step, zoomed again while a box's mass still moves when its step is halved
    (:func:`~scai.inference.grids.boxes.changed_boxes`) or sits on too few points
    (:func:`~scai.inference.grids.boxes.unresolved_boxes`); in two, the best mode a gradient search
    finds, if no box resolves it, is gridded along its own axes
    (:func:`~scai.inference.exact_zoom._mode_patch`, ``diagnostics["mode_patch"]``, the number
    of simulations patched: a ridge thinner than the coarse step can fall between its points
    and be missed by the boxes altogether). With several simulations and a latent scalar, each
    simulation is fitted on a grid of its own (:func:`_fit_each_simulation`).
    Their likelihood can be sharper than any fixed grid (a currency shift moves every
    decision), which is why the grid zooms. The simplex lattice of ``pi`` has at most
    ``max_simplex_points`` points; a simulation whose posterior of ``pi`` is narrower than
    its step (thousands of users) gets the same lattice moved onto a sub-simplex around that
    posterior (:func:`~scai.inference.grids.simplex.zoom_simplex`), its zooms and sides in
    ``diagnostics["simplex_zooms"]`` and ``["simplex_side"]`` (present only when some
    simulation zoomed).

    ``action_loglik [1, S, U, K]`` may be passed in when no scalar is latent: online updating
    accumulates it epoch by epoch (``engine_state["action_loglik"]``). With one latent scalar,
    ``engine_state["scalar_cells"]`` holds each simulation's grid of it, ``(points, widths)``
    in its unconstrained coordinate (``log lam`` or the shift): a draw of the scalar is a point,
    standing for its cell ``points +- widths / 2``; ``engine_state["scalar"]`` names it (left
    out when the simulations' one scalars differ: one currency's shift here, another's there).

    The latent sites in (0, 1) (lapse, stereotype strength, clone probability) are first
    gridded coarsely (:data:`~scai.inference.exact_bounded.BOUNDED_POINTS` each, 2 logit units
    apart); a site that the data inform (:func:`~scai.inference.exact_bounded.informed`) and
    whose posterior the grid does not resolve in some simulation (narrower than the step:
    :func:`~scai.inference.grids.bounded.bounded_resolved`) is fitted again on a grid zoomed onto it
    (:func:`~scai.inference.grids.bounded.zoom_bounded`, ``bounded_grids``), up to
    :data:`~scai.inference.exact_bounded.MAX_BOUNDED_ZOOMS` times, while the finer grid fits
    the budget with the same lattice of ``pi``; a site left narrower than half its step is a
    :class:`~scai.inference.diagnostics.BoundedGridWarning`. The zooms of each site are in
    ``diagnostics["<site>_grid_zooms"]`` and its step (logit units) in ``["<site>_grid_step"]``
    (present only when it zoomed).
    """
    settings = _checked_settings(num_draws, grid_points, zoom_points, max_simplex_points)
    check_exact(hypothesis, data)
    if latent_scalars(hypothesis, data) and data.shape[0] > 1:  # each on a grid of its own
        return _fit_each_simulation(data, hypothesis, table, seed, settings)
    played = data.only_played_currencies() if GroupPrior(hypothesis).latent_shift else data
    if played is not data:  # no grid over the shift of a currency nobody plays here
        part = fit_exact(
            played, hypothesis, table=table, seed=seed, bounded_grids=bounded_grids, **settings
        )
        return _with_unplayed_shifts(part, data, seed)
    prior = GroupPrior(hypothesis)
    site_grids = first_grids(prior, bounded_grids)
    grid = _scored_grid(data, hypothesis, prior, site_grids, settings, action_loglik)
    log_evidence, weights = normalise(grid.log_joint)
    finer = _finer_site_grids(prior, site_grids, grid, weights)
    if finer is not None:  # a bounded site's posterior is narrower than its grid's step
        return fit_exact(data, hypothesis, table=table, seed=seed, bounded_grids=finer, **settings)
    pi_grid, log_evidence, weights, zooms = _lattices_of_pi(grid, log_evidence, weights, prior)
    diagnostics = {
        "log_evidence": log_evidence.tolist(),
        "grid_size": [len(grid.u), pi_grid.shape[-2]],
        **grid.diagnostics,  # the grid's zooms, where it zoomed
    }
    mask = data.user_mask.to(torch.float64)
    pi_mean, policy_probs = _type_probabilities(
        weights, grid.loglik, mask, pi_grid, grid.clone, zooms, diagnostics
    )
    num_draws = settings["num_draws"]
    draws, point_stats, t_idx = _draws(
        weights, pi_grid, zooms is not None, grid, prior, data, site_grids, num_draws, seed
    )
    posterior = Posterior(
        engine="exact",
        hypothesis=hypothesis,
        table=table,
        data=data,
        draws=draws,
        policy_probs=policy_probs.to(torch.get_default_dtype()),
        manner_probs=manner_probabilities(data, hypothesis, policy_probs).float(),  # see below
        diagnostics=diagnostics,
        settings=settings,
        seed=seed,
        pi_mean_exact=pi_mean.to(torch.get_default_dtype()),
        engine_state=grid.engine_state,
        sample_stats=point_stats,
    )
    _score_draws_on_the_grid(posterior, grid, t_idx, prior, site_grids, num_draws)
    if "strength" in prior.beta:  # manners depend on the learned coupling: average over draws
        posterior.manner_probs = posterior.manner_probabilities_per_draw().mean(0)
    return posterior


def _checked_settings(
    num_draws: object, grid_points: object, zoom_points: object, max_simplex_points: object
) -> dict[str, int | None]:
    """The options as :func:`~scai.inference.fit.fit` checks them (an :class:`EngineError`
    names the first bad one), as given: ``None`` stays ``None`` (the default for the data's
    number of latent scalars, :func:`_scalar_points`). The posterior's ``settings``: an
    update of it passes them on, and with the defaults resolved here an update adding a group
    with other scalars was gridded at these (8,127 points where a refit took 452, 63.6 s
    against 9.2 s)."""
    from scai.inference.fit import check_options

    # (not the seed: each simulation of many is fitted under a seed drawn from 0..2**62)
    _, checked = check_options(
        "exact",
        {
            "num_draws": num_draws,
            "grid_points": grid_points,
            "zoom_points": zoom_points,
            "max_simplex_points": max_simplex_points,
        },
    )
    return dict(checked)


def _scalar_points(settings: dict[str, int | None], dims: int) -> tuple[int, int]:
    """The points per dimension of the ``dims`` latent scalars' first grid and of each zoom:
    ``settings``' ``grid_points`` and ``zoom_points``, or where ``None`` the defaults
    (:data:`~scai.inference.exact_budget.GRID_POINTS`; 32 for a window, 24 for a box)."""
    grid_points = settings["grid_points"] or GRID_POINTS.get(dims, 40)
    zoom_points = settings["zoom_points"] or (32 if dims == 1 else 24)
    return grid_points, zoom_points


class _Grid(NamedTuple):
    """The fit's grid, scored (:func:`_scored_grid`): ``T`` rows, each a point ``u [T, dims]``
    of the latent scalars with a point ``b [T, sites]`` of the bounded sites (``n_bounded``
    of those per point of the scalars), at each of the ``G`` points of the lattice of pi
    ``pi_grid [G, K]``: the log joint ``[T, S, G]``, the users' log-likelihoods ``loglik
    [T, S, U, K]``, and for the group likelihood
    (:func:`~scai.inference.exact_joint.group_loglik`) the distinct users' ``counts``, the
    clone probability ``clone [T]`` (``None`` where not latent) and each row's log weight
    ``log_w [T]``; the posterior's ``engine_state`` and the grid's diagnostics."""

    log_joint: torch.Tensor
    loglik: torch.Tensor
    u: torch.Tensor
    b: torch.Tensor
    counts: torch.Tensor
    clone: torch.Tensor | None
    log_w: torch.Tensor
    pi_grid: torch.Tensor
    n_bounded: int
    engine_state: dict | None
    diagnostics: dict


def _scored_grid(
    data: GroupData,
    hypothesis: Hypothesis,
    prior: GroupPrior,
    site_grids: dict[str, BoundedGrid],
    settings: dict[str, int | None],
    action_loglik: torch.Tensor | None,
) -> _Grid:
    """The log joint on the fit's grid: the latent scalars' points (zoomed onto their
    posterior, :func:`_zoomed_scalar_grid`; with none latent, the one point of the fixed
    ones, :func:`_at_fixed_scalars`), each with every point of the bounded sites' grids
    ``site_grids``, at every point of the lattice of pi of ``settings``' ``max_simplex_points``
    (coarsened to fit the budget where the bounded sites' points multiply it). An
    :class:`EngineError` where the scalars' grids of ``settings`` would not fit the budget
    (:func:`_check_grid_sizes`)."""
    scalars = latent_scalars(hypothesis, data)
    grid_points, zoom_points = _scalar_points(settings, len(scalars))
    max_simplex_points = settings["max_simplex_points"]
    S = data.shape[0]
    b_points, b_log_mass = bounded_points(prior, grids=site_grids)  # [B, len(bounded)], [B]
    tones = tone_loglik(data, hypothesis).to(torch.float64)
    pi_grid = simplex_lattice(len(hypothesis.policies), max_simplex_points).to(torch.float64)
    _check_grid_sizes(scalars, grid_points, zoom_points, S, len(pi_grid))
    mask = data.user_mask.to(torch.float64)
    evaluate = _grid_scoring(data, hypothesis, prior, tones, mask, pi_grid, b_points, b_log_mass)
    if not scalars:
        fitted = _at_fixed_scalars(
            evaluate, prior, pi_grid, len(b_points) * S, max_simplex_points, action_loglik
        )
    else:
        fitted = _zoomed_scalar_grid(
            evaluate,
            data,
            hypothesis,
            prior,
            pi_grid,
            len(b_points),
            grid_points,
            zoom_points,
            max_simplex_points,
        )
    log_joint, loglik, _, u, b, (counts, clone, log_w) = fitted.scored
    diagnostics = _grid_diagnostics(fitted, len(pi_grid), prior, site_grids)
    return _Grid(
        log_joint,
        loglik,
        u,
        b,
        counts,
        clone,
        log_w,
        fitted.pi_grid,
        len(b_points),
        fitted.engine_state,
        diagnostics,
    )


def _check_grid_sizes(
    scalars: list[str], grid_points: int, zoom_points: int, sims: int, lattice_points: int
) -> None:
    """An :class:`EngineError` where the latent ``scalars``' first grid (``grid_points`` per
    scalar, scored on the coarse lattice of pi) or a zoomed window or box (``zoom_points``, on
    the whole lattice of ``lattice_points``) of ``sims`` simulations would not fit the budget
    (:func:`~scai.inference.exact_budget.check_grid_size`)."""
    for option, points, lattice in (
        ("grid_points", grid_points, min(COARSE_SIMPLEX_POINTS, lattice_points)),
        ("zoom_points", zoom_points, lattice_points),
    ):
        check_grid_size(option, points, len(scalars), sims * lattice, scalars)


def _grid_diagnostics(
    fitted: ScalarFit, lattice_points: int, prior: GroupPrior, site_grids: dict[str, BoundedGrid]
) -> dict:
    """The grid's diagnostics, present only where it zoomed or was coarsened: the latent
    scalars' zooms (``fitted``'s), the lattice of pi coarsened from ``lattice_points`` to fit
    the budget (``"lattice_coarsened_to"``: the caller checks it) and the zooms of the bounded
    sites' grids (:func:`~scai.inference.exact_bounded.site_grid_diagnostics`)."""
    diagnostics = dict(fitted.diagnostics)
    if fitted.pi_grid.shape[0] < lattice_points:
        diagnostics["lattice_coarsened_to"] = fitted.pi_grid.shape[0]
    if prior.beta:
        diagnostics |= site_grid_diagnostics(site_grids)
    return diagnostics


def _at_fixed_scalars(
    evaluate: Callable[..., tuple],
    prior: GroupPrior,
    pi_grid: torch.Tensor,
    points: int,
    max_simplex_points: int,
    action_loglik: torch.Tensor | None,
) -> ScalarFit:
    """With no latent scalar, the grid's one point of the fixed rationality and shifts,
    scored by ``evaluate`` (:func:`_grid_scoring`) with every point of the bounded sites'
    grid on ``pi_grid`` (coarsened to fit the budget where those ``points`` multiply it),
    with the actions' log-likelihoods ``action_loglik [1, S, U, K]`` where given. Where no
    site is bounded (the actions' log-likelihoods then do not depend on the grid), its
    ``engine_state`` keeps them for online updating to add the next epoch's to. A
    :class:`~scai.inference.exact_zoom.ScalarFit` of no scalar: resolved, never zoomed."""
    dtype = torch.float64
    u = torch.zeros(1, 0, dtype=dtype)
    if prior.beta:
        pi_grid = fit_budget(pi_grid, pi_grid.shape[-1], points, max_simplex_points)
    scored = evaluate(
        u, torch.zeros(1, dtype=dtype), None if prior.beta else action_loglik, pi_grid
    )
    engine_state = None if prior.beta else {"action_loglik": scored[2]}
    return ScalarFit(scored, pi_grid, True, 0, {}, engine_state)


def _finer_site_grids(
    prior: GroupPrior, site_grids: dict[str, BoundedGrid], grid: _Grid, weights: torch.Tensor
) -> dict[str, BoundedGrid] | None:
    """The bounded sites' grids zoomed onto the posterior where ``grid``'s (``site_grids``)
    does not resolve it (:func:`~scai.inference.exact_bounded.zoom_bounded_sites`), for the
    fit to be made again on; ``None`` where none is zoomed (or no site is bounded)."""
    if not prior.beta:
        return None
    S, G = weights.shape[1], grid.pi_grid.shape[-2]
    per_point = len(grid.u) // grid.n_bounded * S * G  # entries per bounded point
    return zoom_bounded_sites(prior, site_grids, grid.b, weights, per_point)


def _lattices_of_pi(
    grid: _Grid, log_evidence: torch.Tensor, weights: torch.Tensor, prior: GroupPrior
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[SimplexZoom] | None]:
    """The lattice of pi the posterior is on, its log evidence and its weights: ``grid``'s
    own ``[G, K]`` (and the ``log_evidence`` and ``weights [T, S, G]`` given), unless some
    simulation's posterior of pi is narrower than its step: then each simulation's lattice
    ``[S, G, K]``, zoomed onto its posterior (:func:`_zoom_simulations`, whose zooms are
    returned too; else ``None``)."""
    zooms = _zoom_simulations(grid, weights.sum(0), prior)
    if zooms is None:
        return grid.pi_grid, log_evidence, weights, None
    pi_grid = torch.stack([z.points for z in zooms])  # [S, G, K]
    log_joint = torch.stack([z.log_joint for z in zooms], 1)  # [T, S, G]
    return pi_grid, *normalise(log_joint), zooms


def _score_draws_on_the_grid(
    posterior: Posterior,
    grid: _Grid,
    t_idx: torch.Tensor,
    prior: GroupPrior,
    site_grids: dict[str, BoundedGrid],
    num_draws: int,
) -> None:
    """How ``posterior`` gets its users' log-likelihoods at its draws, when first asked for:
    gathered from ``grid``'s at each draw's point ``t_idx [S, D]`` (the engine's quadrature: a
    bounded site's draw lies in its point's cell, which the point stands for); but where a
    lapse or strength is drawn within its cell (``site_grids``), not at its grid point's
    value, ArviZ's log_likelihood and lp score the values drawn (the clone site is not in
    them)."""
    S, U, _ = posterior.data.shape
    loglik, T = grid.loglik, grid.u.shape[0]  # (not the whole grid: the posterior keeps these)

    def grid_loglik() -> torch.Tensor:
        """``[D, S, U, K]``: the users' log-likelihoods at each draw's grid point."""
        if T == 1:  # every draw shares the one grid point: a view, not D copies
            return loglik.to(torch.get_default_dtype()).expand(num_draws, S, U, -1)
        sims = torch.arange(S).unsqueeze(0)
        return loglik[t_idx.T, sims].to(torch.get_default_dtype())  # [D, S, U, K]

    posterior._lazy["user_loglik"] = grid_loglik  # gathered only if asked for
    if any(n in prior.beta and site_grids[n].n > 1 for n in ("lapse", "strength")):
        posterior._lazy["draws_loglik"] = lambda: posterior._user_loglik(256)


def _grid_scoring(
    data: GroupData,
    hypothesis: Hypothesis,
    prior: GroupPrior,
    tones: torch.Tensor,
    mask: torch.Tensor,
    pi_grid: torch.Tensor,
    b_points: torch.Tensor,
    b_log_mass: torch.Tensor,
) -> Callable[..., tuple]:
    """The fit's scoring of a grid, ``evaluate(u, log_w, action=None, pi_grid=pi_grid,
    b=(b_points, b_log_mass))``: the log joint of every point ``u`` of the latent scalars
    (log weights ``log_w``) with every point ``b`` of the bounded sites' grid at every point of
    the lattice of pi, with the users' log-likelihoods (the tones' ``tones [S, U, K]``, the
    actions' ``action`` where given), for the users of ``mask [S, U]``."""
    S = data.shape[0]
    bounded = tuple(prior.beta)
    # Built once per fit, however many grids score the data: the data's events (at their first
    # scoring) and the log prior of each lattice of pi (a tensor hashes by identity; the cache
    # keeps it, so its id is not reused).
    event_index = functools.cache(lambda: EventIndex.from_data(data))
    pi_log_prior = functools.cache(prior.pi_cell_log_weights)

    def evaluate(
        u: torch.Tensor,
        log_w: torch.Tensor,
        action=None,
        pi_grid=pi_grid,
        b=(b_points, b_log_mass),
    ):
        """``log p(theta_t, pi_g, data)`` ``[T, S, G]`` and ``L [T, S, U, K]`` on the grid of
        every scalar point ``u`` with every point ``b`` of the bounded sites' grid."""
        log_prior = pi_log_prior(pi_grid)
        b, b_mass = b
        u2 = u.repeat_interleave(len(b), 0)
        b2 = b.repeat(len(u), 1)
        log_w2 = log_w.repeat_interleave(len(b)) + b_mass.repeat(len(u))
        site = {name: b2[:, i] for i, name in enumerate(bounded)}
        if action is None:
            lam_t, shift_t = grid_parameters(u2, prior, data)
            action = _unique_rows(
                torch.cat([lam_t[:, None], shift_t, _column(site, "lapse", len(u2))], -1),
                lambda v: grid_action_loglik(
                    data,
                    hypothesis,
                    v[:, 0],
                    v[:, 1 : 1 + shift_t.shape[-1]],
                    lapse_t=v[:, -1] if "lapse" in site else None,
                    index=event_index(),
                ),
            )
        if "strength" in site:
            L_tones = _unique_rows(
                site["strength"][:, None],
                lambda v: tone_loglik(
                    data, hypothesis, v.expand(-1, S).to(torch.get_default_dtype())
                ).double(),
            )
        else:
            L_tones = tones
        T = u2.shape[0]
        loglik = (action + L_tones) * mask.unsqueeze(-1)
        counts = distinct_users(loglik, mask)  # clones' work done once
        clone = site.get("clone")
        log_joint = group_loglik(loglik, counts, pi_grid, clone)
        log_joint += log_prior + log_w2.reshape(T, 1, 1)
        return log_joint, loglik, action, u2, b2, (counts, clone, log_w2)

    return evaluate


def _zoomed_scalar_grid(
    evaluate: Callable[..., tuple],
    data: GroupData,
    hypothesis: Hypothesis,
    prior: GroupPrior,
    pi_grid: torch.Tensor,
    n_bounded: int,
    grid_points: int,
    zoom_points: int,
    max_simplex_points: int,
) -> ScalarFit:
    """The latent scalars' grid, zoomed onto their posterior and scored by ``evaluate``
    (:func:`_grid_scoring`): a first, coarse pass locates it (``grid_points`` per scalar over
    +-6 prior sd, on a coarse lattice of pi with the bounded sites at their medians), then one
    scalar zooms by windows (:func:`~scai.inference.exact_zoom.zoom_one_scalar`), two by boxes
    (:func:`~scai.inference.exact_zoom.zoom_two_scalars`), ``zoom_points`` per dimension; the
    final grid is scored on ``pi_grid`` (coarsened to fit the budget where the ``n_bounded``
    points of the bounded sites' grid multiply the points). An unresolved posterior is a
    :class:`DiagnosticWarning`."""
    dims = len(latent_scalars(hypothesis, data))
    dtype = torch.float64
    S = data.shape[0]
    K = len(hypothesis.policies)
    scalar_prior = prior.scalar_gaussian(data.essential)
    loc, sd = scalar_prior.loc, scalar_prior.covariance_matrix.diagonal().sqrt()
    lo, hi = loc - 6 * sd, loc + 6 * sd
    u, log_cell = uniform_grid(lo, hi, grid_points)
    # The first pass only locates the scalars' posterior: a coarse lattice for pi and the
    # bounded sites at their prior medians will do.
    coarse = simplex_lattice(K, COARSE_SIMPLEX_POINTS).to(dtype)
    medians = bounded_points(prior, median=True)

    def on_coarse_lattice(u: torch.Tensor, log_w: torch.Tensor) -> tuple:
        return evaluate(u, log_w, pi_grid=coarse, b=medians)

    def on_whole_lattice(u: torch.Tensor, log_w: torch.Tensor, action=None) -> tuple:
        """``evaluate``'s values and the lattice of pi they are on."""
        fitted = pi_grid
        if prior.beta:  # the bounded sites' grid multiplies the points and the actions
            fitted = fit_budget(pi_grid, K, len(u) * n_bounded * S, max_simplex_points)
            action = None
        return *evaluate(u, log_w, action, fitted), fitted

    log_joint, *_ = on_coarse_lattice(u, scalar_prior.log_prob(u) + log_cell)
    marginal = torch.logsumexp(log_joint, -1)  # [T, S]
    coarse_pi = (log_joint - marginal[..., None]).exp() @ coarse if dims == 2 else None
    spacing = (hi - lo) / (grid_points - 1)
    warn_at_grid_edge(u, marginal, lo, hi, spacing, latent_scalars(hypothesis, data))
    first = CoarseGrid(
        u, log_cell, marginal, coarse_pi, lo, hi, spacing, grid_points, scalar_prior, coarse
    )
    # A likelihood can be sharper than the zoomed grid too (a shift multiplies payoffs of
    # a whole pot: hundreds of users pin it to 1e-4): while some simulation's posterior
    # of the scalars is narrower than its step, zoom again around it.
    if dims == 2:  # boxes around every mode, located on the coarse lattice
        fitted = zoom_two_scalars(
            first,
            on_coarse_lattice,
            on_whole_lattice,
            data,
            hypothesis,
            zoom_points,
            budget_per_point=S * n_bounded * pi_grid.shape[0],
            patch_per_point=n_bounded * S * MIN_SIMPLEX_POINTS,
        )
    else:
        fitted = zoom_one_scalar(
            first,
            on_coarse_lattice,
            on_whole_lattice,
            data,
            hypothesis,
            prior,
            zoom_points,
            n_bounded,
        )
    if fitted.zooms:
        fitted.diagnostics["scalar_zooms"] = fitted.zooms
    if not fitted.resolved:
        names = ", ".join(latent_scalars(hypothesis, data))
        warnings.warn(
            f"engine 'exact': the posterior of {names} is narrower than its grid's step "
            f"after {fitted.zooms} further zooms; its moments are only as good as the step "
            "(with two scalars the best mode a gradient search finds is gridded along its "
            "own axes, but a sharp mode between the coarse grid's points that the search "
            "misses is missed altogether): check with engine='mcmc'",
            DiagnosticWarning,
            stacklevel=outside_scai(),
        )
    return fitted


def _type_probabilities(
    weights: torch.Tensor,
    loglik: torch.Tensor,
    mask: torch.Tensor,
    pi_grid: torch.Tensor,
    clone_t: torch.Tensor | None,
    zooms: list[SimplexZoom] | None,
    diagnostics: dict,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior mean of pi ``[S, K]`` and each user's type probabilities ``[S, U, K]``
    from the grid's ``weights [T, S, G]`` and the users' log-likelihoods ``loglik``, on one
    lattice ``pi_grid [G, K]`` or (``zooms``) each simulation's own ``[S, G, K]``; with a
    latent clone probability (``clone_t [T]``), the type probabilities' sampled mass and
    error are put in ``diagnostics``, as are the simulations' simplex zooms."""
    S = weights.shape[1]
    if zooms is None:
        pi_mean = torch.einsum("tsg,gk->sk", weights, pi_grid)
        if clone_t is None:
            policy_probs = lattice_policy_probs(weights, loglik, pi_grid)
        else:
            policy_probs, covered, se = clone_policy_probs(weights, loglik, mask, pi_grid, clone_t)
            diagnostics["type_probability_mass_covered"] = covered
            diagnostics["type_probability_sampled_se"] = se
    else:  # each simulation on its own lattice
        pi_mean = torch.einsum("tsg,sgk->sk", weights, pi_grid)
        parts = []
        for s in range(S):
            one = weights[:, s : s + 1], loglik[:, s : s + 1]
            if clone_t is None:
                parts.append(lattice_policy_probs(*one, pi_grid[s]))
            else:
                parts.append(clone_policy_probs(*one, mask[s : s + 1], pi_grid[s], clone_t))
        if clone_t is None:
            policy_probs = torch.cat(parts)
        else:
            policy_probs = torch.cat([p for p, _, _ in parts])
            diagnostics["type_probability_mass_covered"] = min(c for _, c, _ in parts)
            diagnostics["type_probability_sampled_se"] = max(se for _, _, se in parts)
        diagnostics["simplex_zooms"] = [z.zooms for z in zooms]
        diagnostics["simplex_side"] = [z.side for z in zooms]
    return pi_mean, policy_probs


def _draws(
    weights: torch.Tensor,
    pi_grid: torch.Tensor,
    per_simulation: bool,
    grid: _Grid,
    prior: GroupPrior,
    data: GroupData,
    site_grids: dict[str, BoundedGrid],
    num_draws: int,
    seed: int,
) -> tuple[dict[str, torch.Tensor], dict, torch.Tensor]:
    """``num_draws`` posterior draws per simulation, resampled from the ``weights [T, S, G]``
    of ``grid``'s points under ``seed``: pi at the drawn lattice point (of ``pi_grid [G, K]``,
    or of each simulation's own ``[S, G, K]`` if ``per_simulation``), the latent scalars at
    the drawn point of ``grid.u``, the shared shift given the shifts, and each bounded site
    (its points ``grid.b``) within the drawn cell of its grid, by the posterior's shape there
    (:func:`draw_within_cells`). Returns the draws ``[1, D, S, ...]``, the bounded sites' grid
    points drawn (the posterior's sample stats) and each draw's grid point ``t_idx [S, D]``."""
    u, b = grid.u, grid.b
    dtype = torch.float64
    S = data.shape[0]
    generator = torch.Generator().manual_seed(seed)
    # Draw grid points (t, g) by inverting each simulation's cumulative weights: one
    # searchsorted, where torch.multinomial would renormalise a row per draw (and caps the
    # categories at 2^24).
    cdf = cumulative_weights(weights)  # [S, T * G]
    uniform = torch.rand(S, num_draws, generator=generator, dtype=cdf.dtype) * cdf[:, -1:]
    flat = torch.searchsorted(cdf, uniform, right=True).clamp_max(cdf.shape[-1] - 1)
    G = pi_grid.shape[-2]
    t_idx, g_idx = flat // G, flat % G  # [S, D]
    if not per_simulation:
        draws = {"pi": pi_grid[g_idx].transpose(0, 1)}  # [D, S, K]
    else:
        draws = {"pi": pi_grid[torch.arange(S)[:, None], g_idx].transpose(0, 1)}
    lam, shift = grid_parameters(u[t_idx.T], prior, data)  # [D, S], [D, S, C]
    if prior.latent_lam:
        draws["lam"] = lam
    if prior.latent_shift:
        draws["shift"] = shift
    if prior.latent_shared:
        draws["shift_shared"] = prior.shared_given_shifts(shift, data.essential, generator)
    grid_points = {}
    for i, name in enumerate(prior.beta):  # within the drawn cell, by the posterior's shape there
        grid = site_grids[name]
        if grid.n == 1:
            draws[name] = b[t_idx.T, i]  # [D, S]
            continue
        cell, mass = site_cells(b[:, i], weights.sum(-1))
        log_mass = site_grid(prior, name, grid)[1]
        log_lik = mass.clamp_min(1e-300).log() - log_mass  # the site's mean likelihood per cell
        z = torch.linspace(grid.lo, grid.hi, grid.n, dtype=dtype)
        slope = torch.gradient(log_lik, spacing=(z,), dim=-1)[0]  # [S, n]
        drawn = cell[t_idx.T]  # [D, S]
        if name in GRID_POINT_STATS:  # what user_loglik scores it at, kept for a loaded file
            grid_points[GRID_POINT_STATS[name]] = b[t_idx.T, i].unsqueeze(0).double().numpy()
        uniform = torch.rand(drawn.shape, generator=generator, dtype=dtype)
        slope_drawn = slope[torch.arange(S)[None, :], drawn]
        draws[name] = draw_within_cells(grid, prior.beta[name], drawn, slope_drawn, uniform)
    draws = {k: v.unsqueeze(0).to(torch.get_default_dtype()) for k, v in draws.items()}
    return draws, grid_points, t_idx


def fixed_action_loglik(data: GroupData, hypothesis: Hypothesis) -> torch.Tensor:
    """``[1, S, U, K]`` (float64): the offers' and decisions' log-likelihood under each type
    where no scalar is latent, at the hypothesis's fixed rationality and shifts (the grid's one
    point)."""
    u = torch.zeros(1, 0, dtype=torch.float64)
    return grid_action_loglik(data, hypothesis, *grid_parameters(u, GroupPrior(hypothesis), data))


def policy_probabilities(
    data: GroupData, hypothesis: Hypothesis, max_simplex_points: int = MAX_SIMPLEX_POINTS
) -> torch.Tensor:
    """``[S, U, K]``: each user's type probabilities, :func:`fit_exact`'s ``policy_probs``
    (padding users' rows 0), with one fit for each kind of group rather than each group.

    With nothing latent but ``pi``, a user whose data decide its type at every lattice point
    (:data:`~scai.inference.exact_kernels.DECIDED_NATS`) has its best type with probability 1,
    and adds to the group's log joint a term linear in ``log pi`` plus a constant. Groups with
    the same count of decided users of each type and the same log-likelihoods of their
    undecided users (a learning curve's prefixes: each interaction changes one or two users)
    then have the same posterior of ``pi`` (their log joints differ by a constant) and the
    same probabilities for users with the same log-likelihoods: one of them is fitted. (Its
    log joint's constant is its own, so another group's probabilities can differ from what
    fitting it would give in the last bit.) Should the engine zoom the lattice onto a fitted
    group (thousands of users; on a finer lattice a user may be decided no longer), every
    group is fitted. Other hypotheses: :func:`fit_exact` of every group."""
    check_exact(hypothesis, data)
    prior = GroupPrior(hypothesis)
    real = data.user_mask

    def fitted(part: GroupData, action: torch.Tensor | None = None) -> Posterior:
        return fit_exact(
            part,
            hypothesis,
            num_draws=1,
            max_simplex_points=max_simplex_points,
            action_loglik=action,
        )

    if latent_scalars(hypothesis, data) or prior.beta:
        return fitted(data).policy_probs * real.unsqueeze(-1)
    S, U, _ = data.shape
    K = len(hypothesis.policies)
    action = fixed_action_loglik(data, hypothesis)
    loglik = action + tone_loglik(data, hypothesis).to(torch.float64)  # as fit_exact scores
    pi_grid = simplex_lattice(K, max_simplex_points).to(torch.float64)
    is_decided, best, _ = decided_users(loglik, pi_grid)
    is_decided, best = is_decided[0] & real, best[0]  # [S, U]
    # Each group's kind: its decided users' counts by type, then the ids of its undecided
    # users' log-likelihood rows in increasing order (the position of a user in that order is
    # where its match in another group of the kind sits).
    group, user = torch.nonzero(real & ~is_decided, as_tuple=True)  # group-major
    row_id = distinct_rows(loglik[0, group, user])[1]
    order = torch.argsort(group * (len(row_id) + 1) + row_id)
    group, user, row_id = group[order], user[order], row_id[order]
    undecided = torch.bincount(group, minlength=S)
    position = torch.arange(len(group)) - (undecided.cumsum(0) - undecided)[group]
    ids = torch.full((S, int(undecided.max()) if len(group) else 0), -1.0, dtype=torch.float64)
    ids[group, position] = row_id.to(torch.float64)
    n_best = count_by_type(best, is_decided.to(torch.float64), K)  # [S, K]
    first, kind, _ = distinct_rows(torch.cat([n_best, ids], -1))
    fit_at = first.sort().values
    probs = fitted(data.sims_subset(fit_at), action[:, fit_at])
    if "simplex_zooms" in probs.diagnostics:
        return fitted(data, action).policy_probs * real.unsqueeze(-1)
    probs = probs.policy_probs
    slot = torch.empty(S, dtype=torch.long)
    slot[fit_at] = torch.arange(len(fit_at))
    out = torch.nn.functional.one_hot(best, K).to(probs.dtype) * is_decided.unsqueeze(-1)
    if len(group):
        user_at = torch.full((S, ids.shape[1]), -1, dtype=torch.long)
        user_at[group, position] = user  # the undecided user at each position of each group
        source = first[kind[group]]  # the fitted group of each undecided user's kind
        out[group, user] = probs[slot[source], user_at[source, position]]
    # A user whose data no type can produce (-inf for every one) leaves its group without a
    # posterior: the fit's probabilities are NaN for every user of the kind, decided or not.
    undefined = probs.isnan().flatten(1).any(-1)[slot[first[kind]]]  # [S]
    out[undefined.unsqueeze(-1) & real] = torch.nan
    return out


def _zoom_simulations(
    grid: _Grid, pi_mass: torch.Tensor, prior: GroupPrior
) -> list[SimplexZoom] | None:
    """Each simulation's lattice of ``pi`` after :func:`zoom_simplex`, or ``None`` when no
    simulation's lattice zoomed (then nothing changes). ``grid``'s log joint ``[T, S, G]`` is
    on its lattice, ``pi_mass [S, G]`` the posterior mass of each lattice point (summed
    over ``T``: cheaper than another pass over the log joint)."""
    pi_grid, log_joint, loglik = grid.pi_grid, grid.log_joint, grid.loglik
    counts, clone, log_w = grid.counts, grid.clone, grid.log_w
    K = pi_grid.shape[-1]
    low = effective_points(pi_mass) < simplex_zoom_threshold(K)  # [S]
    if K == 1 or not bool(low.any()):
        return None
    zooms = []
    for s in range(log_joint.shape[1]):
        if not bool(low[s]):
            zooms.append(SimplexZoom(pi_grid, log_joint[:, s], pi_grid.new_zeros(K), 1.0, 0))
            continue

        def log_lik(points: torch.Tensor, s: int = s) -> torch.Tensor:
            one = group_loglik(loglik[:, s : s + 1], counts[s : s + 1], points, clone)
            return one[:, 0] + log_w[:, None]

        zooms.append(zoom_simplex(pi_grid, log_joint[:, s], log_lik, prior))
    # A posterior piled at an edge (a type no user of a small group has, concentration < 1) has
    # few effective points, but its bulk spans the simplex: no zoom is taken, nothing changes.
    return zooms if any(z.zooms for z in zooms) else None


def _column(site: dict[str, torch.Tensor], name: str, n: int) -> torch.Tensor:
    """``site[name]`` as a column, or an empty ``[n, 0]`` one."""
    if name in site:
        return site[name][:, None]
    return torch.zeros(n, 0, dtype=torch.float64)


def _unique_rows(values: torch.Tensor, compute) -> torch.Tensor:
    """``compute`` on each distinct row of ``values [T, d]`` once, gathered back to ``[T, ...]``
    (grid points repeat the same rationality, shift or lapse across the other sites' values)."""
    if values.shape[-1] == 0:  # one distinct (empty) row: computed once, a view for every row
        one = compute(values[:1])
        return one.expand(len(values), *one.shape[1:])
    unique, which = sorted_distinct_rows(values)
    return compute(unique)[which]


def _with_unplayed_shifts(part: Posterior, data: GroupData, seed: int) -> Posterior:
    """``part`` (a fit of ``data`` cut to the currencies it plays: one simulation) as a fit of
    ``data``: the shift of each currency it does not play is drawn from its prior given the
    drawn shared shift, ``delta_c = delta0 + mu e_c + eps_c`` with ``eps_c ~ N(0, tau^2)``
    independent (the data do not touch it, so that conditional is its posterior too; with no
    latent shared shift, ``delta0 = 0``). Without the cut, a currency played elsewhere (another
    simulation of the same table) took a grid dimension here, and the coarser two-dimensional
    grid could miss a sharp mode of the one played: ``benchmarks/known_disagreements.py``."""
    prior = GroupPrior(part.hypothesis)
    played = list(part.data.currencies)
    shift = part.draws["shift"]  # [chains, draws, 1, C played]
    shared = part.draws.get("shift_shared", torch.zeros(shift.shape[:-1], dtype=shift.dtype))
    mean = prior.shift_mean(shared.double(), data.essential.double())  # [..., C]
    full = torch.empty(*shift.shape[:-1], len(data.currencies), dtype=shift.dtype)
    for c, name in enumerate(data.currencies):
        if name in played:
            full[..., c] = shift[..., played.index(name)]
            continue
        # a stream per currency, apart from the fit's own: the same draws whatever else
        # the table holds
        digest = hashlib.sha256(f"{seed}: unplayed shift {name}".encode()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 2)
        noise = torch.randn(shared.shape, generator=generator, dtype=torch.float64)
        full[..., c] = (mean[..., c] + prior.currency_scale * noise).to(shift.dtype)
    return replace(part, data=data, draws={**part.draws, "shift": full})


def _fit_each_simulation(
    data: GroupData, hypothesis: Hypothesis, table, seed: int, settings: dict
) -> Posterior:
    """:func:`fit_exact` of each simulation alone, put together as one posterior.

    The simulations' posteriors are independent, and each has its own modes of the latent
    scalars: one grid for all of them would be the union of every simulation's windows or
    boxes, most of it far from any one's posterior (and with two scalars, to fit the
    budget, too coarse for some).
    Simulation ``s`` draws with a seed of its own, drawn from ``seed``."""
    S = data.shape[0]
    seeds = torch.randint(2**62, (S,), generator=torch.Generator().manual_seed(seed)).tolist()
    with warnings.catch_warnings():  # told once for all of them, below
        warnings.filterwarnings("ignore", f"{LOST_PEAK_MESSAGE} .* misses a sharp mode")
        parts = [
            fit_exact(data.select_sim(s), hypothesis, seed=seeds[s], **settings) for s in range(S)
        ]
    diagnostics: dict = {
        "log_evidence": [x for p in parts for x in p.diagnostics["log_evidence"]],
        "grid_size": [max(p.diagnostics["grid_size"][i] for p in parts) for i in range(2)],
        "grid_size_per_simulation": [p.diagnostics["grid_size"] for p in parts],
    }
    if any("scalar_zooms" in p.diagnostics for p in parts):
        diagnostics["scalar_zooms"] = max(p.diagnostics.get("scalar_zooms", 0) for p in parts)
    coarsened = [
        p.diagnostics["lattice_coarsened_to"]
        for p in parts
        if "lattice_coarsened_to" in p.diagnostics
    ]
    if coarsened:  # the coarsest lattice of pi any simulation was fitted on
        diagnostics["lattice_coarsened_to"] = min(coarsened)
    if any("lost_peak_nats" in p.diagnostics for p in parts):  # (0: none lost)
        diagnostics["lost_peak_nats"] = [
            p.diagnostics.get("lost_peak_nats", [0.0])[0] for p in parts
        ]
        tell_lost_peaks(
            diagnostics["lost_peak_nats"], data.sim_ids, "each simulation's latent scalar"
        )
    if any("mode_patch" in p.diagnostics for p in parts):  # how many simulations were patched
        diagnostics["mode_patch"] = sum(p.diagnostics.get("mode_patch", 0) for p in parts)
    for key in {k for p in parts for k in p.diagnostics if k.endswith("_grid_zooms")}:
        site = key.removesuffix("_grid_zooms")  # the most zooms, and the coarsest step left
        zoomed = [p.diagnostics for p in parts if key in p.diagnostics]
        diagnostics[key] = max(d[key] for d in zoomed)
        diagnostics[f"{site}_grid_step"] = max(d[f"{site}_grid_step"] for d in zoomed)
    if any("simplex_zooms" in p.diagnostics for p in parts):
        diagnostics["simplex_zooms"] = [p.diagnostics.get("simplex_zooms", [0])[0] for p in parts]
        diagnostics["simplex_side"] = [p.diagnostics.get("simplex_side", [1.0])[0] for p in parts]
    if "type_probability_mass_covered" in parts[0].diagnostics:
        diagnostics["type_probability_mass_covered"] = min(
            p.diagnostics["type_probability_mass_covered"] for p in parts
        )
        diagnostics["type_probability_sampled_se"] = max(
            p.diagnostics["type_probability_sampled_se"] for p in parts
        )
    posterior = Posterior(
        engine="exact",
        hypothesis=hypothesis,
        table=table,
        data=data,
        draws={k: torch.cat([p.draws[k] for p in parts], 2) for k in parts[0].draws},
        policy_probs=torch.cat([p.policy_probs for p in parts]),
        manner_probs=torch.cat([p.manner_probs for p in parts]),
        diagnostics=diagnostics,
        settings=settings,
        seed=seed,
        pi_mean_exact=torch.cat([p.pi_mean_exact for p in parts]),
        sample_stats={  # a part whose site's grid is one point: its draws are the points
            stat: np.concatenate(
                [p.sample_stats.get(stat, p.draws[site].double().numpy()) for p in parts], 2
            )
            for site, stat in GRID_POINT_STATS.items()
            if any(stat in p.sample_stats for p in parts)
        },
    )
    states = [p.engine_state or {} for p in parts]
    # each simulation's cells of the same scalar (not lam in one, a currency's shift in another)
    if all("scalar_cells" in e for e in states) and len({e["scalar"] for e in states}) == 1:
        posterior.engine_state = {
            "scalar_cells": [cell for e in states for cell in e["scalar_cells"]],
            "scalar": states[0]["scalar"],
        }
    posterior._lazy["user_loglik"] = lambda: torch.cat([p._user_loglik_memo() for p in parts], 1)
    posterior._lazy["draws_loglik"] = lambda: torch.cat([p._draws_loglik_memo() for p in parts], 1)
    return posterior
