"""The exact engine: enumeration plus quadrature.

Each user's policy and manner are summed out exactly (:mod:`scai.models.marginal`). The continuous
quantities are integrated on a grid: the group mixture ``pi`` on an interior simplex lattice
(:func:`scai.inference.grids.simplex_lattice`, zoomed onto the posterior of a large group:
:func:`scai.inference.grids.zoom_simplex`) and, where the hypothesis makes them latent, the
rationality ``lam`` and the currency shifts on prior-quantile grids.

Exact (up to the grid) for hypotheses with at most **two** latent scalars besides ``pi``:
a latent ``lam``, a shared currency shift ``shift_shared`` and one ``shift`` per currency
the simulation plays count one each (a simulation is fitted alone when a scalar is latent; the
shift of a currency it does not play is drawn from its prior given the shared shift). With one
currency in a simulation, every preset qualifies (``pooled``: ``shift[c]``, with
``shift_shared`` drawn given it). Larger hypotheses are refused: use ``svi`` or ``mcmc``.

Posterior draws are resampled from the grid's weights; means and per-user probabilities are
computed from the weights themselves, not from the draws.
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from scai.inference.diagnostics import BoundedGridWarning, DiagnosticWarning
from scai.inference.draws import DEFAULT_DRAWS
from scai.inference.errors import EngineError
from scai.inference.exact_kernels import (
    clone_policy_probs,
    count_by_type,
    decided_users,
    distinct_users,
    grid_action_loglik,
    lattice_group_loglik,
    lattice_policy_probs,
)
from scai.inference.grids import (
    BOX_TOLERANCE,
    MAX_LATENT_SCALARS,
    MAX_SIMPLEX_POINTS,
    BoundedGrid,
    Box,
    Patch,
    SimplexZoom,
    bounded_resolved,
    box_grid,
    busiest_scalars,
    changed_boxes,
    check_exact,
    draw_within_cells,
    effective_points,
    grid_parameters,
    latent_scalars,
    mode_candidates,
    needs_patch,
    patch_among_boxes,
    refine_cells,
    resolution_threshold,
    ridge_strips,
    simplex_lattice,
    simplex_zoom_threshold,
    uniform_grid,
    unresolved_boxes,
    worth_evaluating,
    zoom_bounded,
    zoom_boxes,
    zoom_modes,
    zoom_simplex,
)
from scai.inference.posterior import GRID_POINT_STATS, Posterior, manner_probabilities
from scai.models.distinct import distinct_rows, sorted_distinct_rows
from scai.models.errors import outside_scai
from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, tone_loglik
from scai.models.prior import GroupPrior, ScalarGaussian
from scai.models.underflow import exp_flush_, exp_terms_, logsumexp


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
    maximum: in one dimension by windows (:func:`zoom_modes`, ``zoom_points`` 32), in two by
    boxes (:func:`zoom_boxes`, ``zoom_points`` 24 per dimension), each zoom halving the step,
    zoomed again while a box's mass still moves when its step is halved
    (:func:`changed_boxes`) or sits on too few points (:func:`unresolved_boxes`); in two, the
    best mode a gradient search finds, if no box resolves it, is gridded along its own axes
    (:func:`_mode_patch`, ``diagnostics["mode_patch"]``, the number of simulations patched: a
    ridge thinner than the coarse step can fall between its points and be missed by the boxes
    altogether). With
    several simulations and a latent scalar, each simulation is fitted on a grid of its own
    (:func:`_fit_each_simulation`).
    Their likelihood can be sharper than any fixed grid (a currency shift moves every
    decision), which is why the grid zooms. The simplex lattice of ``pi`` has at most
    ``max_simplex_points`` points; a simulation whose posterior of ``pi`` is narrower than
    its step (thousands of users) gets the same lattice moved onto a sub-simplex around that
    posterior (:func:`zoom_simplex`), its zooms and sides in ``diagnostics["simplex_zooms"]``
    and ``["simplex_side"]`` (present only when some simulation zoomed).

    ``action_loglik [1, S, U, K]`` may be passed in when no scalar is latent: online updating
    accumulates it epoch by epoch (``engine_state["action_loglik"]``). With one latent scalar,
    ``engine_state["scalar_cells"]`` holds each simulation's grid of it, ``(points, widths)``
    in its unconstrained coordinate (``log lam`` or the shift): a draw of the scalar is a point,
    standing for its cell ``points +- widths / 2``; ``engine_state["scalar"]`` names it (left
    out when the simulations' one scalars differ: one currency's shift here, another's there).

    The latent sites in (0, 1) (lapse, stereotype strength, clone probability) are first
    gridded coarsely (:data:`BOUNDED_POINTS` each, 2 logit units apart); a site that the data
    inform (:func:`informed`) and whose posterior the grid does not resolve in some simulation
    (:func:`bounded_resolved`: narrower than the step) is fitted again on a grid zoomed onto it
    (:func:`zoom_bounded`, ``bounded_grids``), up to :data:`MAX_BOUNDED_ZOOMS` times, while the
    finer grid fits the budget with the same lattice of ``pi``; a site left narrower than half
    its step is a :class:`BoundedGridWarning`. The zooms of each site are in
    ``diagnostics["<site>_grid_zooms"]`` and its step (logit units) in ``["<site>_grid_step"]``
    (present only when it zoomed).
    """
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
    num_draws, grid_points = checked["num_draws"], checked["grid_points"]
    zoom_points, max_simplex_points = checked["zoom_points"], checked["max_simplex_points"]
    check_exact(hypothesis, data)
    if latent_scalars(hypothesis, data) and data.shape[0] > 1:  # each on a grid of its own
        settings = {
            "num_draws": num_draws,
            "grid_points": grid_points,
            "zoom_points": zoom_points,
            "max_simplex_points": max_simplex_points,
        }
        return _fit_each_simulation(data, hypothesis, table, seed, settings)
    played = data.only_played_currencies() if GroupPrior(hypothesis).latent_shift else data
    if played is not data:  # no grid over the shift of a currency nobody plays here
        part = fit_exact(
            played,
            hypothesis,
            table=table,
            seed=seed,
            num_draws=num_draws,
            grid_points=grid_points,
            zoom_points=zoom_points,
            max_simplex_points=max_simplex_points,
            bounded_grids=bounded_grids,
        )
        return _with_unplayed_shifts(part, data, seed)
    # The settings as given (None: the default for the data's number of latent scalars): an
    # update of this posterior passes them on, and with the defaults resolved here an update
    # adding a group with other scalars was gridded at these (8,127 points where a refit
    # took 452, 63.6 s against 9.2 s).
    settings = {
        "num_draws": num_draws,
        "grid_points": grid_points,
        "zoom_points": zoom_points,
        "max_simplex_points": max_simplex_points,
    }
    dims = len(latent_scalars(hypothesis, data))
    grid_points = grid_points or GRID_POINTS.get(dims, 40)
    zoom_points = zoom_points or (32 if dims == 1 else 24)
    dtype = torch.float64
    S, U, _ = data.shape
    prior = GroupPrior(hypothesis)
    bounded = tuple(prior.beta)  # latent sites in (0, 1): quantile grids, every combination
    site_grids = {site: BoundedGrid(BOUNDED_POINTS[site]) for site in bounded}
    site_grids.update(bounded_grids or {})
    b_points, b_log_mass = bounded_points(prior, grids=site_grids)  # [B, len(bounded)], [B]
    tones = tone_loglik(data, hypothesis).to(dtype)
    K = len(hypothesis.policies)
    pi_grid = simplex_lattice(K, max_simplex_points).to(dtype)  # [G, K]
    lattice_points = len(pi_grid)  # as asked for: _fit_budget may coarsen it
    # the first grid is scored on a coarse lattice of pi, a zoomed window or box on the whole
    for option, points, lattice in (
        ("grid_points", grid_points, min(COARSE_SIMPLEX_POINTS, len(pi_grid))),
        ("zoom_points", zoom_points, len(pi_grid)),
    ):
        _check_grid_size(option, points, dims, S * lattice, latent_scalars(hypothesis, data))
    mask = data.user_mask.to(dtype)
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
        log_joint = _group_loglik(loglik, counts, pi_grid, clone)
        log_joint += log_prior + log_w2.reshape(T, 1, 1)
        return log_joint, loglik, action, u2, b2, (counts, clone, log_w2)

    # present only when a scalar grid zoomed again or a bounded site's grid zoomed
    grid_diagnostics: dict[str, float] = {}
    engine_state = None  # online updating's action log-likelihoods, or the scalar's cells
    if dims == 0:
        u = torch.zeros(1, 0, dtype=dtype)
        if bounded:
            pi_grid = _fit_budget(pi_grid, K, len(b_points) * S, max_simplex_points)
        log_joint, loglik, action_loglik, u, b, rest = evaluate(
            u, torch.zeros(1, dtype=dtype), action_loglik if not bounded else None, pi_grid
        )
    else:
        scalar_prior = prior.scalar_gaussian(data.essential)
        loc, sd = scalar_prior.loc, scalar_prior.covariance_matrix.diagonal().sqrt()
        lo, hi = loc - 6 * sd, loc + 6 * sd
        u, log_cell = uniform_grid(lo, hi, grid_points)
        # The first pass only locates the scalars' posterior: a coarse lattice for pi and the
        # bounded sites at their prior medians will do.
        coarse = simplex_lattice(K, COARSE_SIMPLEX_POINTS).to(dtype)
        medians = bounded_points(prior, median=True)
        log_joint, *_ = evaluate(u, scalar_prior.log_prob(u) + log_cell, pi_grid=coarse, b=medians)
        marginal = torch.logsumexp(log_joint, -1)  # [T, S]
        coarse_pi = (log_joint - marginal[..., None]).exp() @ coarse if dims == 2 else None
        spacing = (hi - lo) / (grid_points - 1)
        _warn_at_grid_edge(u, marginal, lo, hi, spacing, latent_scalars(hypothesis, data))
        # A likelihood can be sharper than the zoomed grid too (a shift multiplies payoffs of
        # a whole pot: hundreds of users pin it to 1e-4): while some simulation's posterior
        # of the scalars is narrower than its step, zoom again around it.
        scalar_zooms = 0
        if dims == 2:  # boxes around every mode, located on the coarse lattice
            boxes = [Box(tuple(lo.tolist()), tuple(hi.tolist()), (grid_points,) * dims)]

            def locate(u: torch.Tensor, log_w: torch.Tensor):
                log_joint, _, action, *_ = evaluate(u, log_w, pi_grid=coarse, b=medians)
                marginal = log_joint.logsumexp(-1)
                pi_mean = (log_joint - marginal[..., None]).exp() @ coarse  # [T, S, K]
                return marginal, pi_mean, action

            boxes, scalar_zooms, resolved, marginal, action = _zoom_boxes_until_resolved(
                boxes,
                marginal,
                coarse_pi,
                locate,
                scalar_prior,
                zoom_points,
                budget_per_point=S * len(b_points) * pi_grid.shape[0],
            )
            # Only the points that hold mass are evaluated on the whole lattice (a box spans
            # its mode's region within 30 nats, at the step its sharpest part needs).
            u, log_w = box_grid(boxes, scalar_prior)
            patch = _mode_patch(data, hypothesis, boxes)
            if patch is not None:  # where it overlaps a box, the finer of the two grids
                per_point = len(b_points) * S * MIN_SIMPLEX_POINTS
                grid = (u, log_w, marginal, action)
                *grid, points, converged = _with_patch(
                    patch, boxes, grid, locate, scalar_prior, per_point
                )
                u, log_w, marginal, action = grid
                if points:
                    grid_diagnostics["mode_patch"] = 1
                    grid_diagnostics["mode_patch_points"] = points
                    resolved = resolved and converged
                strips = ridge_strips(boxes, patch)
                if strips:  # a ridge through the mode, thinner than the box's step across it
                    grid = (u, log_w, marginal, action)
                    kept = patch if points else None
                    *grid, added = _with_strips(strips, kept, grid, locate, scalar_prior, per_point)
                    u, log_w, marginal, action = grid
                    if added:
                        grid_diagnostics["mode_strip_points"] = added
            keep = (marginal > marginal.max(0).values - KEEP_WITHIN).any(-1)
            u, log_w, action = u[keep], log_w[keep], action[keep]
        if dims == 1:  # the coarse grid's modes translated onto other types (see below)
            loc = scalar_prior.loc.reshape(-1)
            extra = translated_peaks(u[:, 0], marginal, hypothesis, prior, loc, lo, hi)
            if len(extra):
                x = extra[:, None]
                more, *_ = evaluate(
                    x, scalar_prior.log_prob(x) + log_cell, pi_grid=coarse, b=medians
                )
                u, marginal, spacing = _with_points(u, marginal, spacing, x, more.logsumexp(-1))
        fine = torch.ones(S, dtype=torch.bool)  # which simulations' posteriors are resolved
        if dims == 1:  # the highest density scored before the zooms, per simulation
            scored = (marginal - torch.as_tensor(spacing).log().reshape(-1, 1)).max(0)
        while dims == 1:
            if scalar_zooms == 0:
                u, log_w, step = zoom_modes(u[:, 0], marginal, spacing, zoom_points, scalar_prior)
            else:  # finer cells only where the narrow posteriors are
                u, log_w, step = refine_cells(
                    u[:, 0], step, marginal, ~fine, zoom_points, scalar_prior
                )
            fitted = pi_grid
            if bounded:  # the bounded sites' grid multiplies the points
                fitted = _fit_budget(pi_grid, K, len(u) * len(b_points) * S, max_simplex_points)
            log_joint, loglik, action_loglik, u2, b, rest = evaluate(u, log_w, pi_grid=fitted)
            marginal = _log_marginal(log_joint.reshape(len(u), len(b_points), S, -1))
            mass = (marginal - marginal.max(0).values).exp().T  # [S, T]
            fine = effective_points(mass) >= resolution_threshold(dims)  # [S]
            resolved = bool(fine.all())
            if resolved or scalar_zooms == MAX_SCALAR_ZOOMS:
                break
            spacing = step
            scalar_zooms += 1
        if dims == 2:
            fitted = pi_grid
            if bounded:  # the bounded sites' grid multiplies the points and the actions
                fitted = _fit_budget(pi_grid, K, len(u) * len(b_points) * S, max_simplex_points)
                action = None
            log_joint, loglik, action_loglik, u2, b, rest = evaluate(u, log_w, action, fitted)
        if dims == 1:  # the scalar's cells: points and widths (for a check that needs them)
            gaps = _lost_peaks(scored, marginal - step.log()[:, None])
            _tell_lost_peaks(gaps, data.sim_ids, ", ".join(latent_scalars(hypothesis, data)))
            if max(gaps) > LOST_PEAK_NATS:  # per simulation: its gap where it lost one, else 0
                grid_diagnostics["lost_peak_nats"] = [
                    g if g > LOST_PEAK_NATS else 0.0 for g in gaps
                ]
            (scalar,) = latent_scalars(hypothesis, data)
            engine_state = {"scalar_cells": [(u[:, 0].clone(), step.clone())], "scalar": scalar}
        u, pi_grid = u2, fitted
        if scalar_zooms:
            grid_diagnostics["scalar_zooms"] = scalar_zooms
        if not resolved:
            names = ", ".join(latent_scalars(hypothesis, data))
            warnings.warn(
                f"engine 'exact': the posterior of {names} is narrower than its grid's step "
                f"after {scalar_zooms} further zooms; its moments are only as good as the step "
                "(with two scalars the best mode a gradient search finds is gridded along its "
                "own axes, but a sharp mode between the coarse grid's points that the search "
                "misses is missed altogether): check with engine='mcmc'",
                DiagnosticWarning,
                stacklevel=outside_scai(),
            )
    T = u.shape[0]
    if pi_grid.shape[0] < lattice_points:  # coarsened for the budget: the caller checks it
        grid_diagnostics["lattice_coarsened_to"] = pi_grid.shape[0]
    log_evidence, weights = _normalise(log_joint)
    if bounded:
        per_point = T // len(b_points) * S * pi_grid.shape[-2]  # entries per bounded point
        zoomed = _zoom_bounded_sites(prior, site_grids, b, weights, per_point)
        if zoomed is not None:
            return fit_exact(
                data,
                hypothesis,
                table=table,
                seed=seed,
                bounded_grids=zoomed,
                **settings,
            )
        for site, grid in site_grids.items():
            if grid.zooms:
                grid_diagnostics[f"{site}_grid_zooms"] = grid.zooms
                grid_diagnostics[f"{site}_grid_step"] = float(grid.step)
    # A simulation whose posterior of pi is narrower than the lattice gets a lattice of its own
    # (zoomed onto it): pi_grid becomes [S, G, K]. Otherwise every line below is the one-lattice
    # computation, untouched.
    zooms = _zoom_simulations(pi_grid, log_joint, weights.sum(0), loglik, *rest, prior)
    if zooms is not None:
        pi_grid = torch.stack([z.points for z in zooms])  # [S, G, K]
        log_joint = torch.stack([z.log_joint for z in zooms], 1)  # [T, S, G]
        log_evidence, weights = _normalise(log_joint)

    clone_t = b[:, bounded.index("clone")] if "clone" in bounded else None
    diagnostics = {"log_evidence": log_evidence.tolist(), "grid_size": [T, pi_grid.shape[-2]]}
    diagnostics.update(grid_diagnostics)
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

    if dims == 0 and not bounded:  # online updating adds the next epoch's to these
        engine_state = {"action_loglik": action_loglik}
    generator = torch.Generator().manual_seed(seed)
    # Draw grid points (t, g) by inverting each simulation's cumulative weights: one
    # searchsorted, where torch.multinomial would renormalise a row per draw (and caps the
    # categories at 2^24).
    cdf = _cumulative_weights(weights)  # [S, T * G]
    uniform = torch.rand(S, num_draws, generator=generator, dtype=cdf.dtype) * cdf[:, -1:]
    flat = torch.searchsorted(cdf, uniform, right=True).clamp_max(cdf.shape[-1] - 1)
    G = pi_grid.shape[-2]
    t_idx, g_idx = flat // G, flat % G  # [S, D]
    if zooms is None:
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
    for i, name in enumerate(bounded):  # within the drawn cell, by the posterior's shape there
        grid = site_grids[name]
        if grid.n == 1:
            draws[name] = b[t_idx.T, i]  # [D, S]
            continue
        cell, mass = site_cells(b[:, i], weights.sum(-1))
        log_mass = _site_grid(prior, name, grid)[1]
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
        engine_state=engine_state,
        sample_stats=grid_points,
    )

    def grid_loglik() -> torch.Tensor:
        """``[D, S, U, K]``: the users' log-likelihoods at each draw's grid point (the
        engine's quadrature: a bounded site's draw lies in its point's cell, which the point
        stands for)."""
        if T == 1:  # every draw shares the one grid point: a view, not D copies
            return loglik.to(torch.get_default_dtype()).expand(num_draws, S, U, -1)
        sims = torch.arange(S).unsqueeze(0)
        return loglik[t_idx.T, sims].to(torch.get_default_dtype())  # [D, S, U, K]

    posterior._lazy["user_loglik"] = grid_loglik  # gathered only if asked for
    # A lapse or strength drawn within its cell is not its grid point's value: ArviZ's
    # log_likelihood and lp score the values stored (the clone site is not in them).
    if any(n in bounded and site_grids[n].n > 1 for n in ("lapse", "strength")):
        posterior._lazy["draws_loglik"] = lambda: posterior._user_loglik(256)
    if "strength" in bounded:  # manners depend on the learned coupling: average over draws
        posterior.manner_probs = posterior.manner_probabilities_per_draw().mean(0)
    return posterior


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


def bounded_points(
    prior: GroupPrior, median: bool = False, grids: dict[str, BoundedGrid] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([B, n] points, [B] log prior masses)``: every combination of the latent bounded
    sites' grids (:meth:`GroupPrior.bounded_grid`; ``grids[site]``, by default
    :data:`BOUNDED_POINTS` points over logit -7 to 7), or their medians; a single empty row
    when none is latent."""
    grids = grids or {}
    grids = [
        _site_grid(prior, site, BoundedGrid(1))  # one point: the prior's median
        if median
        else _site_grid(prior, site, grids.get(site, BoundedGrid(BOUNDED_POINTS[site])))
        for site in prior.beta
    ]
    if not grids:
        return torch.zeros(1, 0, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    points = torch.cartesian_prod(*[g[0] for g in grids]).reshape(-1, len(grids))
    log_mass = torch.cartesian_prod(*[g[1] for g in grids]).reshape(-1, len(grids)).sum(-1)
    return points, log_mass


def _site_grid(prior: GroupPrior, site: str, grid: BoundedGrid) -> tuple[torch.Tensor, ...]:
    return prior.bounded_grid(site, grid.n, grid.lo, grid.hi, grid.open_ends)


#: A site's data are informative where its posterior over the grid's cells departs from its
#: prior (both normalised) by more than this many nats in a cell where either holds mass.
INFORMED_NATS = 1.0


def informed(mass: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """``[S]``: whether each simulation's posterior masses ``mass [S, n]`` of a bounded site
    differ from its prior masses ``log_prior [n]`` (both normalised over the grid) by more
    than :data:`INFORMED_NATS` in some cell where either holds over ``1e-6``. A posterior that
    is the prior (a stereotype's strength where no tone is heard) keeps the coarse grid: its
    cells' masses are the prior's own, and a finer grid would change no other site's
    posterior. (A posterior in one cell, where the prior spreads over several, departs from
    it by tens of nats in the others: informed.)"""
    w = mass / mass.sum(-1, keepdim=True)
    p = (log_prior - torch.logsumexp(log_prior, -1)).exp()
    held = (w > 1e-6) | (p > 1e-6)
    gap = (w.clamp_min(1e-300).log() - p.log()).abs()
    return torch.where(held, gap, 0.0).amax(-1) > INFORMED_NATS


def site_cells(b_site: torch.Tensor, mass_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One bounded site: each grid row's cell (``[T]``, an index into the site's points in
    ascending order; every point is on some row) and the site's posterior mass in each cell,
    ``[S, n]``, from the rows' masses ``mass_t [T, S]``."""
    points, cell = torch.unique(b_site, return_inverse=True)
    mass = mass_t.new_zeros(len(points), mass_t.shape[1]).index_add_(0, cell, mass_t)
    return cell, mass.T


#: A bounded site's grid step (logit units) from which the Gaussian rule of a loosely resolved
#: posterior (:func:`bounded_resolved`) is not trusted (:func:`_zoom_bounded_sites`).
WIDE_STEP = 1.0


def _zoom_bounded_sites(
    prior: GroupPrior,
    grids: dict[str, BoundedGrid],
    b: torch.Tensor,
    weights: torch.Tensor,
    per_point: int,
) -> dict[str, BoundedGrid] | None:
    """The bounded sites' grids with every site that some simulation's data inform
    (:func:`informed`) and whose posterior the grid does not resolve there
    (:func:`bounded_resolved`) zoomed onto its posterior (:func:`zoom_bounded`), or
    ``None`` when none needs it, or none can be zoomed further (:data:`MAX_BOUNDED_ZOOMS`, no
    finer step, or the finer grid times ``per_point`` entries beyond :data:`GRID_BUDGET`):
    then each site its grid still does not resolve (loosely, once zoomed) is a
    :class:`BoundedGridWarning`.
    ``b [T, sites]`` holds each grid row's point of every site and ``weights [T, S, G]`` the
    posterior weights."""
    mass_t = weights.sum(-1)  # [T, S]
    zoomed, unresolved, too_coarse = dict(grids), [], {}
    for i, (site, grid) in enumerate(grids.items()):
        _, mass = site_cells(b[:, i], mass_t)  # [S, n]
        fine = bounded_resolved(grid, mass) | ~informed(mass, _site_grid(prior, site, grid)[1])
        if bool(fine.all()):
            continue
        finer = zoom_bounded(grid, mass) if grid.zooms < MAX_BOUNDED_ZOOMS else None
        # Worth a warning where the grid does not resolve it even loosely (half the step: a
        # Gaussian's moments then err by under 1%), or, on cells of WIDE_STEP or more (the
        # first grids': 2-3 logit units), where it does not resolve it: a Beta prior's skewed
        # posterior over two or three such cells (lapse under Beta(1, 30)) had its mean 20-30%
        # off.
        wide = grid.zooms == 0 and float(grid.step) >= WIDE_STEP
        coarse = ~fine if wide else ~fine & ~bounded_resolved(grid, mass, loose=True)
        too_coarse[site] = bool(coarse.any())
        if finer is not None:
            zoomed[site] = finer
        elif bool(coarse.any()):
            unresolved.append((site, grid, int(coarse.sum()), len(coarse)))
    size = math.prod(g.n for g in zoomed.values()) * per_point
    if zoomed != grids and size <= GRID_BUDGET:
        return zoomed
    refused = [site for site in zoomed if zoomed[site] != grids[site] and too_coarse[site]]
    unresolved += [(site, grids[site], None, None) for site in refused]
    for site, grid, bad, total in unresolved:
        where = f" in {bad} of {total} simulations" if bad is not None else ""
        if bad is not None:
            why = "use engine='mcmc' to check"
        elif weights.shape[1] > 1:
            why = (
                "fit fewer simulations at once (its grid is shared by them and a finer one would "
                "exceed the engine's memory budget), or use engine='mcmc' to check"
            )
        else:  # one simulation: the sites' grids multiply, and fewer simulations cannot help
            why = (
                "a finer grid would exceed the engine's memory budget (the latent sites' grids "
                "multiply); use engine='mcmc' to check"
            )
        warnings.warn(
            f"engine 'exact': the posterior of {site} spans too few points of its grid "
            f"({grid.step:.2g} logit units apart){where}; its moments, and those of the sites "
            "it moves (pi), are only as good as the step (a skewed posterior's mean can be off "
            "by a fifth): "
            f"{why}",
            BoundedGridWarning,
            stacklevel=outside_scai(),
        )
    return None


def _group_loglik(
    loglik: torch.Tensor,
    counts: torch.Tensor,
    pi_grid: torch.Tensor,
    clone: torch.Tensor | None,
) -> torch.Tensor:
    """``[T, S, G]``: the group log-likelihood of ``loglik [T, S, U, K]`` (users weighted by
    ``counts [S, U]``, :func:`distinct_users`) at every point of ``pi_grid [G, K]``
    (:func:`lattice_group_loglik`), in blocks of grid points that fit in memory.

    Grid points where the data cannot tell the sites apart (a stereotype's strength when no
    tone is heard) share their log-likelihoods: the kernel runs once per distinct
    (log-likelihoods, clone probability) and is gathered back to every point."""
    T, S, _, K = loglik.shape
    key = loglik.reshape(T, -1)
    if clone is not None:
        key = torch.cat([key, clone.to(loglik.dtype)[:, None]], -1)
    first, which = _first_of_each(key)
    V = int((counts > 0).sum(-1).max()) if counts.numel() else 0  # users worked on per sim
    step = max(1, int(2e7) // max(1, S * V * pi_grid.shape[0] * (K if clone is not None else 1)))
    every = len(first) == T and bool((first == torch.arange(T)).all())
    if every and step >= T:  # one block of every grid point: the kernel's own tensor
        return lattice_group_loglik(loglik, counts, pi_grid, clone)
    distinct = torch.empty(len(first), S, pi_grid.shape[0], dtype=loglik.dtype)
    for start in range(0, len(first), step):
        part = first[start : start + step]
        distinct[start : start + step] = lattice_group_loglik(
            loglik[part], counts, pi_grid, None if clone is None else clone[part]
        )
    return distinct if every else distinct[which]


def _normalise(log_joint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(data)`` per simulation ``[S]`` and the posterior weights ``[T, S, G]`` of the
    log joint ``[T, S, G]``; weights below ~2e-306 are 0 (:func:`~scai.models.underflow.exp_flush_`:
    torch's ``exp`` of the grid points far from the mode took most of this function's time).
    (What that can move: a bounded site's cell mass where ~10^6 such weights used to add up
    above the 1e-300 its log is clamped at, a drop of ~704 nats in one cell step, and so the
    slope its draws within the neighbouring cell follow; a draw whose uniform is exactly 0.)"""
    T, S, G = log_joint.shape
    # torch.logsumexp of the [S, T * G] rows, step by step as scai.models.underflow.logsumexp
    # computes it (the maxima, set to 0 where infinite; exp_terms_ of the shifted values; their
    # sum over each contiguous row; 0 for rows of -inf alone), with the shift written straight
    # into the [S, T, G] layout: without the copy that reshaping the transposed view makes
    # (hundreds of MB on a scalar's grid), the same bits. One simulation's row at a time (a
    # [T, G] buffer, not a second [S, T, G] tensor), and the weights exponentiated in place.
    view = log_joint.transpose(0, 1)  # [S, T, G]
    maxes = torch.amax(view, (1, 2), keepdim=True)
    empty = (maxes == -torch.inf).reshape(S)  # no mass: their sums are set to 0 below
    maxes.masked_fill_(maxes.abs() == torch.inf, 0.0)
    total = torch.empty(S, dtype=log_joint.dtype)
    if T == 1 and G <= ONE_CHUNK:
        # Rows short enough to be summed in one chunk (no thread splits them): every row at
        # once, the same bits as row by row (a learning curve's thousand prefix groups).
        for start in range(0, S, ROWS_AT_ONCE):
            rows = slice(start, start + ROWS_AT_ONCE)
            part = torch.sub(log_joint[0, rows], maxes[rows].reshape(-1, 1))
            total[rows] = exp_terms_(part).sum(-1)
    else:
        shifted = torch.empty(T, G, dtype=log_joint.dtype)
        for s in range(S):
            torch.sub(view[s], maxes[s], out=shifted)
            total[s] = exp_terms_(shifted).reshape(-1).sum()
        del shifted
    total.masked_fill_(empty, 0.0)
    log_evidence = total.log_().add_(maxes.reshape(S))
    weights = torch.sub(log_joint, log_evidence.reshape(1, S, 1))
    return log_evidence, exp_flush_(weights)


def _log_marginal(log_joint: torch.Tensor, block: int = 2**20) -> torch.Tensor:
    """``[T, S]``: ``log_joint [T, B, S, G]`` summed (``logsumexp``) over the bounded sites'
    points ``B`` and the lattice ``G``: the scalars' marginal. Computed a few grid points at a
    time (about ``block`` entries), so that torch's temporaries (the shifted values and their
    exponentials, each as large as the input: hundreds of MB on a zoomed grid) stay small; each
    entry is reduced exactly as one ``logsumexp((1, 3))`` over the whole tensor reduces it."""
    T = log_joint.shape[0]
    step = max(1, block // max(1, log_joint[0].numel()))
    out = torch.empty(T, log_joint.shape[2], dtype=log_joint.dtype)
    for start in range(0, T, step):
        out[start : start + step] = logsumexp(log_joint[start : start + step], (1, 3))
    return out


def _cumulative_weights(weights: torch.Tensor) -> torch.Tensor:
    """``[S, T * G]``: each simulation's running sum of its weights ``weights [T, S, G]`` over
    the grid points ``(t, g)`` in that order (what the draws invert). One scan per simulation,
    into the output: the same sums as ``weights.permute(1, 0, 2).reshape(S, -1).cumsum(-1)``
    without that expression's transposed copy of the whole grid."""
    T, S, G = weights.shape
    if T == 1:  # each simulation's weights are a contiguous row already: one scan per row
        return torch.cumsum(weights[0], -1)
    cdf = torch.empty(S, T * G, dtype=weights.dtype)
    for s in range(S):
        torch.cumsum(weights[:, s].reshape(-1), 0, out=cdf[s])
    return cdf


def _zoom_simulations(
    pi_grid: torch.Tensor,
    log_joint: torch.Tensor,
    pi_mass: torch.Tensor,
    loglik: torch.Tensor,
    counts: torch.Tensor,
    clone: torch.Tensor | None,
    log_w: torch.Tensor,
    prior: GroupPrior,
) -> list[SimplexZoom] | None:
    """Each simulation's lattice of ``pi`` after :func:`zoom_simplex`, or ``None`` when no
    simulation's lattice zoomed (then nothing changes). ``log_joint [T, S, G]`` is the log
    joint on ``pi_grid``, ``pi_mass [S, G]`` the posterior mass of each lattice point (summed
    over ``T``: cheaper than another pass over the log joint); ``log_w [T]`` the other sites'
    log weights."""
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
            one = _group_loglik(loglik[:, s : s + 1], counts[s : s + 1], points, clone)
            return one[:, 0] + log_w[:, None]

        zooms.append(zoom_simplex(pi_grid, log_joint[:, s], log_lik, prior))
    # A posterior piled at an edge (a type no user of a small group has, concentration < 1) has
    # few effective points, but its bulk spans the simplex: no zoom is taken, nothing changes.
    return zooms if any(z.zooms for z in zooms) else None


def _warn_at_grid_edge(
    u: torch.Tensor,
    marginal: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    spacing: torch.Tensor,
    names: list[str],
) -> None:
    """A :class:`DiagnosticWarning` where some simulation's posterior of the scalars (``u
    [T, dims]``, ``marginal [T, S]`` on the first grid) peaks on the grid's edge, 6 prior sd
    from the prior's centre: the data pull it beyond what the grid covers, and the posterior
    is cut off there (one user's three offers of a tenth of a large pot put ``lam`` at 0.08
    where the grid stops at 0.2, with no word: a red-team)."""
    best = u[marginal.argmax(0)]  # [S, dims]
    edge = ((best - lo).abs() < spacing / 2) | ((best - hi).abs() < spacing / 2)
    if bool(edge.any()):
        which = sorted({names[d] for d in torch.nonzero(edge)[:, 1].tolist()})
        warnings.warn(
            f"engine 'exact': the posterior of {', '.join(which)} peaks at the edge of its "
            "grid, 6 prior sd from the prior's centre: the data pull it further than the grid "
            "reaches, and the posterior is cut off there, and with it everything fitted beside "
            "it (pi, the users' types: all of it may be off; fit with engine='mcmc' or 'svi', "
            "or give the prior more room)",
            DiagnosticWarning,
            stacklevel=outside_scai(),
        )


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


def _first_of_each(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``rows [T, d]``: the first index of each distinct row, in order of first
    appearance, and for every row the position of its distinct row in that list."""
    first, inverse, _ = distinct_rows(rows)
    n = len(first)
    order = first.argsort()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n)
    return first[order], rank[inverse]


def check_groups_fit(hypothesis: Hypothesis, groups: int, what: str) -> None:
    """An :class:`EngineError` where ``groups`` groups (simulations, or a learning curve's
    prefixes) of ``hypothesis`` cannot be fitted at once within :data:`GRID_BUDGET` even on
    the coarsest lattice of pi (:func:`_fit_budget`): with no latent scalar they share one
    grid, the bounded sites' points times the groups (with one, each group is fitted alone).
    ``what`` names the setting that makes ``groups``, for a caller that can check this before
    any work (a sweep's cells)."""
    prior = GroupPrior(hypothesis)
    if not prior.beta or prior.latent_lam or prior.latent_shift or prior.latent_shared:
        return
    # the bounded sites' first grid (bounded_points' rows), counted without building it
    points = math.prod(BOUNDED_POINTS[site] for site in prior.beta) * groups
    lattice = len(simplex_lattice(len(hypothesis.policies)))
    if not _coarsest_fits(points, lattice):
        lattice = min(lattice, MIN_SIMPLEX_POINTS)
        most = int(GRID_BUDGET // (lattice * (points // groups)))
        raise EngineError(
            f"{what}: the exact engine fits its {groups:,} groups of hypothesis "
            f"{hypothesis.name!r} ({', '.join(prior.beta)} latent) on one grid of {points:,} "
            f"points times the simplex lattice (at least {lattice}), beyond "
            f"{GRID_BUDGET:.0e}; allowed here: at most {most:,} groups"
        )


def _fit_budget(pi_grid: torch.Tensor, K: int, points: int, max_points: int) -> torch.Tensor:
    """The simplex lattice, coarsened so that ``points x G`` stays within :data:`GRID_BUDGET`
    (grids over several bounded sites multiply the points); an error naming svi and mcmc when
    even a coarse lattice would not fit."""
    if points * pi_grid.shape[0] <= GRID_BUDGET:
        return pi_grid
    if not _coarsest_fits(points, pi_grid.shape[0]):
        raise EngineError(
            f"engine 'exact': its grid would need {points} points of the scalars times the "
            f"simplex lattice (at least {MIN_SIMPLEX_POINTS}), beyond {GRID_BUDGET:.0e}: fit "
            "fewer simulations at once, or use engine='svi' or engine='mcmc'"
        )
    target = int(GRID_BUDGET // points)
    return simplex_lattice(K, min(target, max_points)).to(pi_grid.dtype)


def _coarsest_fits(points: int, lattice: int) -> bool:
    """Whether ``points`` grid points times the coarsest lattice of pi the engine may take
    (``lattice`` points, coarsened to :data:`MIN_SIMPLEX_POINTS` at most) fit
    :data:`GRID_BUDGET` (:func:`_fit_budget`, :func:`check_groups_fit`)."""
    return points * min(lattice, MIN_SIMPLEX_POINTS) <= GRID_BUDGET


#: The first grid's points per latent scalar, by how many there are (``grid_points``).
GRID_POINTS = {1: 200, 2: 40}
#: A lower bound on the ``[grid points x users x types]`` float64 tables one pass over a
#: scalar grid holds at once (the actions' and the tones' log-likelihoods, their sum, the
#: distinct users' copy; a review measured ~6 at 7 x 10^4 users): :func:`check_grid_memory`.
GRID_COPIES = 4


def check_grid_memory(
    hypothesis: Hypothesis, data: GroupData, grid_points: int | None, max_memory: int | None
) -> None:
    """An :class:`EngineError` before any work where the first pass over the latent scalars'
    grid would hold more than the memory limit: it scores every user of a simulation at every
    point of the grid (a simulation with a latent scalar is fitted alone), and the engine's
    other checks count only the layout and the draws (10^5 users with a latent rationality
    took over 3 GB unchecked; 10^6 would have run out of memory)."""
    from scai.models.memory import check_memory, format_bytes, memory_limit

    _, names = busiest_scalars(hypothesis, data)  # (check_exact's count)
    if not names:
        return
    dims = min(len(names), MAX_LATENT_SCALARS)
    per_point = data.shape[1] * len(hypothesis.policies) * 8 * GRID_COPIES
    side = grid_points or GRID_POINTS[dims]
    need = side**dims * per_point
    # the engine's own budget of the grid first (one simulation's, on the coarse lattice):
    # its refusal says how many points it allows
    _check_grid_size("grid_points", side, dims, COARSE_SIMPLEX_POINTS, names)

    def error(text: str) -> EngineError:
        limit, _ = memory_limit(max_memory)
        most = int((limit / per_point) ** (1 / dims)) if limit else 0
        return EngineError(
            f"engine 'exact': the first grid of {', '.join(names)} ({side} point(s) per "
            f"scalar) over a simulation's {data.shape[1]:,} user slots {text} (at least "
            f"{format_bytes(per_point)} a point); fit by engine='svi' (with subsample_size: "
            f"minibatches), with fewer grid_points (about {most:,} fit), or raise the limit "
            "(max_memory=, --max-memory)"
        )

    check_memory(need, error, max_memory)


#: A mode patch's points per dimension at first (:func:`_mode_patch`): a step of about half a
#: standard deviation, whatever ``zoom_points``; halved while the patch's mass or mean moves
#: (:func:`_with_patch`), up to :data:`MAX_PATCH_POINTS`.
PATCH_POINTS = 24
MAX_PATCH_POINTS = 93
#: How far (standard deviations of the mode's Laplace approximation) the patch's posterior
#: mean may move when its step halves, and the patch count as converged.
PATCH_MEAN_TOLERANCE = 0.05
#: Zooms of the scalars' grid beyond the first (in one dimension each ~10x finer; in two each
#: halves the step of the boxes that have not converged).
MAX_SCALAR_ZOOMS = 4
#: Entries of the ``[grid points x simulations x lattice]`` log joint a zoom of two latent
#: scalars aims to stay within (its boxes are made coarser, not below ``zoom_points`` per
#: dimension, when their halved steps would need more): 800 MB of doubles.
BOX_BUDGET = 1e8
#: The points of two latent scalars' boxes evaluated on the whole lattice: those within this
#: many nats of some simulation's best (a point further down holds under 1e-9 of its mass).
KEEP_WITHIN = 20.0
#: Points per latent bounded site (lapse, stereotype strength, clone probability) on its
#: first, coarse grid (logit -7 to 7).
BOUNDED_POINTS = {"lapse": 8, "strength": 12, "clone": 6}
#: Zooms of a bounded site's grid (each onto its posterior, :func:`zoom_bounded`).
MAX_BOUNDED_ZOOMS = 3
#: Entries of the ``[grid points x simulations x lattice]`` log joint the engine holds at once.
GRID_BUDGET = 4e7
#: The lattice of pi of the first pass over the scalars' grid, which only locates them.
COARSE_SIMPLEX_POINTS = 200


def _check_grid_size(option: str, points: int, dims: int, per_point: int, names: list[str]) -> None:
    """An :class:`EngineError` naming ``option`` where one pass over the latent scalars' grid
    (``grid_points``: the first grid's points per scalar; ``zoom_points``: one zoomed window's
    or box's) would hold more than :data:`GRID_BUDGET` entries: ``points ** dims`` points of
    ``per_point`` entries each (simulations x points of pi's lattice). With two scalars,
    ``grid_points=10000`` asked torch for 1.6 GB and 100,000 for 80 GB (a raw allocation
    error); with one, ``zoom_points=100000`` for 9 GB."""
    if dims == 0 or points**dims * per_point <= GRID_BUDGET:
        return
    most = int((GRID_BUDGET / per_point) ** (1 / dims))
    raise EngineError(
        f"{option}={points}: with {dims} latent scalar(s) ({', '.join(names)}) a grid of "
        f"{points**dims:,} points of {per_point:,} entries each (simulations x points of pi's "
        f"lattice) is beyond the exact engine's budget of {GRID_BUDGET:,.0f} entries; allowed "
        f"here: at most {most:,}"
    )


#: The coarsest lattice of pi the engine accepts when it must coarsen it.
MIN_SIMPLEX_POINTS = 200
#: torch's grain size (``at::internal::GRAIN_SIZE``): a sum over fewer entries is one chunk,
#: never split across threads, so summing many such rows at once gives each row's own bits.
ONE_CHUNK = 32768
#: Rows of the log joint normalised at once (a bounded temporary: 256 x 3,000 doubles, 6 MB).
ROWS_AT_ONCE = 256


def fit_boxes(boxes: list[Box], per_point: int, points: int) -> list[Box]:
    """``boxes`` with fewer points per dimension (at least ``points``) when their grid times
    ``per_point`` entries would exceed :data:`BOX_BUDGET`."""
    total = sum(box.size for box in boxes) * per_point
    if total <= BOX_BUDGET:
        return boxes
    scale = (BOX_BUDGET / total) ** (1 / len(boxes[0].n))
    return [Box(b.lo, b.hi, tuple(max(points, int(k * scale)) for k in b.n)) for b in boxes]


def _with_patch(
    patch: Patch,
    boxes: list[Box],
    grid: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    locate: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    prior: ScalarGaussian,
    per_point: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, bool]:
    """The boxes' ``grid`` (points ``u``, log weights, scalar marginal ``[T, S]`` and action
    log-likelihoods, as ``locate`` gives them) with ``patch``'s points in place of the boxes'
    where the patch is the finer grid (:func:`patch_among_boxes`), its step halved while the
    patch's share of the posterior moves by more than :data:`BOX_TOLERANCE` or its mean by
    more than :data:`PATCH_MEAN_TOLERANCE` standard deviations when it does (a posterior far
    from its Laplace approximation, a cliff by a wall, needs a finer patch: 24 points a side
    put ``E[log lam]`` 0.07 from a fine uniform grid's, 47 within 0.01), up to
    :data:`MAX_PATCH_POINTS` a side and while the points within :data:`KEEP_WITHIN` nats,
    ``per_point`` entries each, fit :data:`GRID_BUDGET`. Returns the grid, the patch's points a
    side (0 if none is kept) and whether it converged."""
    u, log_w, marginal, action = grid
    previous = None
    while True:
        keep_box, keep_patch = patch_among_boxes(boxes, u, patch)
        u_patch = patch.points()[keep_patch]
        if not len(u_patch):
            return u, log_w, marginal, action, 0, True
        log_w_patch = prior.log_prob(u_patch) + patch.log_cell()
        marginal_patch, _, action_patch = locate(u_patch, log_w_patch)
        joint = torch.cat([marginal[keep_box], marginal_patch])  # [T, S]
        weights = (marginal_patch - joint.logsumexp(0)).exp()  # [P, S]
        share = weights.sum(0)  # [S]
        mean = weights.T @ patch.whiten(u_patch) / share.clamp_min(1e-300)[:, None]  # [S, d]
        converged = previous is not None and bool(
            ((share - previous[0]).abs() <= BOX_TOLERANCE).all()
            and ((mean - previous[1]).abs() <= PATCH_MEAN_TOLERANCE).all()
        )
        kept = int((joint > joint.max(0).values - KEEP_WITHIN).any(-1).sum())
        finer = patch.halved()
        fits = (kept + 3 * len(u_patch)) * per_point <= GRID_BUDGET  # ~4x the patch's points
        if converged or finer.n > MAX_PATCH_POINTS or not fits:
            grid = (
                torch.cat([u[keep_box], u_patch]),
                torch.cat([log_w[keep_box], log_w_patch]),
                joint,
                torch.cat([action[keep_box], action_patch]),
            )
            return *grid, patch.n, converged
        previous, patch = (share, mean), finer


def _with_strips(
    strips: list[Box],
    patch: Patch | None,
    grid: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    locate: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    prior: ScalarGaussian,
    per_point: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``grid`` (points, log weights, scalar marginal, action log-likelihoods: the boxes' and
    the ``patch``'s, :func:`_with_patch`) with the ``strips``' points (:func:`ridge_strips`) in
    place of the boxes' where a strip lies, each region gridded once: the patch keeps its own
    (finer along every axis), an earlier strip its region, and every other point inside a
    strip is left out. Strips whose points would not fit :data:`GRID_BUDGET` (``per_point``
    entries each) are not added. Returns the grid and the number of points added."""
    u, log_w, marginal, action = grid
    fresh: list[torch.Tensor] = []
    cells: list[torch.Tensor] = []
    taken: list[Box] = []
    for strip in strips:
        points = strip.points()
        keep = torch.ones(len(points), dtype=torch.bool)
        if patch is not None:
            keep &= ~patch.covers(points)
        for other in taken:
            keep &= ~other.covers(points)
        if not bool(keep.any()):
            continue
        if (len(u) + sum(map(len, fresh)) + int(keep.sum())) * per_point > GRID_BUDGET:
            continue
        fresh.append(points[keep])
        cells.append(torch.full((int(keep.sum()),), strip.log_cell(), dtype=u.dtype))
        taken.append(strip)
    if not fresh:
        return u, log_w, marginal, action, 0
    inside = torch.zeros(len(u), dtype=torch.bool)
    for strip in taken:
        inside |= strip.covers(u)
    if patch is not None:
        inside &= ~patch.covers(u)
    u_strip = torch.cat(fresh)
    log_w_strip = prior.log_prob(u_strip) + torch.cat(cells)
    marginal_strip, _, action_strip = locate(u_strip, log_w_strip)
    return (
        torch.cat([u[~inside], u_strip]),
        torch.cat([log_w[~inside], log_w_strip]),
        torch.cat([marginal[~inside], marginal_strip]),
        torch.cat([action[~inside], action_strip]),
        len(u_strip),
    )


def _mode_patch(data: GroupData, hypothesis: Hypothesis, boxes: list[Box]) -> Patch | None:
    """A :class:`Patch` (:data:`PATCH_POINTS` per dimension) at the best mode of two latent scalars
    that a mode search finds (:func:`~scai.inference.laplace.find_best_mode`: L-BFGS from
    the prior median and prior draws, as MCMC starts), if no box resolves it
    (:func:`needs_patch`); ``None`` if one does, or if the search finds no proper mode.

    The boxes grow from a coarse grid's points; a ridge thinner than its step, between its
    points, can be missed altogether, the boxes settling on a mode 12-14 nats lower
    (``benchmarks/known_disagreements.py``, case 5). A gradient search from several starts
    does not depend on where the points fall."""
    from scai.inference.laplace import find_best_mode, laplace
    from scai.models.density import MarginalDensity

    if not bool(data.event_mask.any()):  # nothing scored: the posterior is the prior
        return None
    density = MarginalDensity(data, hypothesis)
    coords = density.coords
    # the grid's coordinates (grid_parameters): log lam, then the shifts or the shared one
    gridded = ["lam"] * coords.latent_lam + ["shift" if coords.latent_shift else "shift_shared"]
    columns = [
        index
        for site in gridded
        if site in density.columns
        for index in range(density.columns[site].start, density.columns[site].stop)
    ]
    mode = find_best_mode(density)
    approx = laplace(density, mode=mode) if mode is not None else None
    if approx is None or len(columns) != len(boxes[0].n):
        return None
    at = torch.from_numpy(approx.mode[columns])
    covariance = torch.from_numpy(approx.covariance[0][:, columns][columns])
    patch = Patch(at, torch.linalg.cholesky(covariance), PATCH_POINTS)
    return patch if needs_patch(boxes, patch) else None


def _zoom_boxes_until_resolved(
    boxes: list[Box],
    marginal: torch.Tensor,
    pi_mean: torch.Tensor,
    scalar_marginal: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    prior: ScalarGaussian,
    points: int,
    budget_per_point: int,
) -> tuple[list[Box], int, bool, torch.Tensor, torch.Tensor]:
    """Zoom two latent scalars' boxes (:func:`zoom_boxes`) until they have converged: no
    box's share of a simulation's posterior, or its mean of pi, moves when its step is halved
    (:func:`changed_boxes`), and every mode spans enough points (:func:`unresolved_boxes`);
    at most :data:`MAX_SCALAR_ZOOMS` times beyond the first. ``marginal [T, S]`` is the
    scalars' log marginal on ``boxes`` (the coarse grid) and ``pi_mean [T, S, K]`` the
    posterior mean of pi at each point; ``scalar_marginal(u, log_w)`` computes both on
    other points (on a coarse lattice of pi: these passes only locate the posterior) with
    the action log-likelihoods there. Returns the boxes, the zooms beyond the first, whether
    they converged, and the last marginal and action log-likelihoods (on the boxes
    returned)."""
    (domain,) = boxes  # the coarse grid
    zooms, which, action = 0, None, None  # the first zoom: every box
    while True:
        zoomed = zoom_boxes(boxes, marginal, points, which=which, domain=domain)
        zoomed = fit_boxes(zoomed, budget_per_point, points)
        if zoomed == boxes and action is not None:  # nothing left to zoom into
            return boxes, max(zooms - 1, 0), False, marginal, action
        previous = boxes, marginal, pi_mean
        boxes = zoomed
        u, log_w = box_grid(boxes, prior)
        need = worth_evaluating(previous[0], previous[1], u)
        part, pi_part, action_part = scalar_marginal(u[need], log_w[need])
        marginal = part.new_full((len(u), part.shape[1]), -math.inf)
        marginal[need] = part
        pi_mean = pi_part.new_zeros((len(u), *pi_part.shape[1:]))
        pi_mean[need] = pi_part
        action = action_part.new_zeros((len(u), *action_part.shape[1:]))
        action[need] = action_part  # (the final pass keeps only points evaluated)
        changed = changed_boxes(*previous, boxes, marginal, pi_mean)
        which = [a or b for a, b in zip(changed, unresolved_boxes(boxes, marginal), strict=True)]
        if not any(which) or zooms == MAX_SCALAR_ZOOMS:
            return boxes, zooms, not any(which), marginal, action
        zooms += 1


def translated_peaks(
    u: torch.Tensor,
    marginal: torch.Tensor,
    hypothesis: Hypothesis,
    prior: GroupPrior,
    loc: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
) -> torch.Tensor:
    """Points of a latent shift's coarse grid ``u [T]`` where another mode may hide: the
    prior's location ``loc`` (its mean: no shift unless the currency is essential; where users
    who act as their type says have their mode, however sharp) and each peak of the coarse
    marginal ``[T, S]`` that :func:`~scai.inference.grids.zoom_modes` zooms onto
    (:func:`~scai.inference.grids.mode_candidates`), each as it is and moved by every difference
    ``w_j - w_k`` of two types' weights on the other's payoff; those within ``[lo, hi]`` and
    not on the grid. None for a latent rationality.

    A shift adds to every type's weight, so users of type ``k`` under shift ``d`` act as users
    of a type ``j`` that differs from ``k`` in ``w`` alone act under ``d + w_k - w_j``: a group of
    selfish users (``w = 0``) fits altruists (``w = 2``) shifted by -2 as well as selfish ones
    unshifted. Both modes are as sharp; the coarse grid's points fall near the one and between
    the other's (0.001 wide at a step of 0.12: a fit reported the altruists' alone, ``pi`` of
    selfish 0.09 where finer grids give 0.54). Scoring the translates finds the other."""
    if not prior.latent_shift and not prior.latent_shared:
        return u.new_zeros(0)
    weights = sorted({float(p.w) for p in hypothesis.policies})
    moves = {b - a for a in weights for b in weights if a != b}
    peaks = torch.cat([u[mode_candidates(marginal)], loc.reshape(1)])
    moved = (peaks[:, None] + torch.tensor([0.0, *sorted(moves)], dtype=u.dtype)).flatten()
    inside = (moved >= float(lo[0])) & (moved <= float(hi[0]))
    moved = torch.unique(moved[inside])
    if not len(moved):
        return moved
    gap = (moved[:, None] - u[None, :]).abs().min(-1).values
    return moved[gap > 1e-9 * (float(hi[0]) - float(lo[0]))]


#: How far (nats) the zoomed grid's highest density may lie below a point scored before it.
LOST_PEAK_NATS = 5.0


def _lost_peaks(scored, density: torch.Tensor) -> list[float]:
    """Per simulation, how far (nats) the highest log density scored before the zooms
    (``scored``: values and indices over the points, ``[S]``) lies above the zoomed grid's
    best (``density [T, S]``): more than :data:`LOST_PEAK_NATS`, a mode narrower than the
    zoomed grid's step fell between its points, and its mass is missing (a shift's mode at
    the prior's location, 1e-4 wide where pots are large, held 80% of the mass the zoomed grid
    gave a broad tail, unsaid)."""
    return (scored.values - density.max(0).values).tolist()


#: The start of :func:`_tell_lost_peaks`' message (a fit of each simulation alone tells one).
LOST_PEAK_MESSAGE = "engine 'exact': the zoomed grid of"


def _tell_lost_peaks(gaps: list[float], sim_ids, names: str) -> None:
    """A :class:`DiagnosticWarning` naming the simulations whose ``gaps``
    (:func:`_lost_peaks`) are above :data:`LOST_PEAK_NATS`, if any; ``names``: what the
    grid is of."""
    lost = [sim for sim, gap in zip(sim_ids, gaps, strict=True) if gap > LOST_PEAK_NATS]
    if not lost:
        return
    warnings.warn(
        f"{LOST_PEAK_MESSAGE} {names} misses a sharp mode of {len(lost)} of {len(gaps)} "
        f"simulation(s) (e.g. {lost[0]!r}): a point scored before the zooms lies more than "
        f"{LOST_PEAK_NATS:g} nats above its best density (diagnostics['lost_peak_nats']), so "
        "the posterior lacks that mode's mass; raise grid_points or check with engine='mcmc'",
        DiagnosticWarning,
        stacklevel=outside_scai(),
    )


def _with_points(
    u: torch.Tensor,
    marginal: torch.Tensor,
    spacing: torch.Tensor,
    x: torch.Tensor,
    at_x: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The coarse grid ``u [T, 1]`` and its marginal ``[T, S]`` with the points ``x [n, 1]`` and
    their marginal ``at_x [n, S]`` put in order, and each point's step ``[T + n]``: the coarse
    grid's for all (a window around an added peak spans one coarse step either side, as a
    coarse point's)."""
    points = torch.cat([u, x])
    order = points[:, 0].argsort(stable=True)
    step = torch.as_tensor(spacing, dtype=torch.float64).reshape(-1)[0]
    return points[order], torch.cat([marginal, at_x])[order], step.expand(len(order)).clone()


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
        _tell_lost_peaks(
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
