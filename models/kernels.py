"""The NumPy backend's per-gradient loops, compiled (numba): :func:`rational_cells`,
:func:`agent_group` and the small passes around them (:func:`lapse_cells`,
:func:`coupled_tones`, :func:`cell_sums`, :func:`prior_terms`), and the sampler's maps of
:mod:`scai.inference.walls` and :mod:`scai.inference.clones` (:func:`walls_forward`,
:func:`walls_pull_back`, :func:`clones_forward`, :func:`clones_pull_back`).

:class:`scai.models.marginal_numpy.RationalCells` scores, at every gradient of a fit with a
latent rationality or currency shifts, each observed cell under each type: a responder's
``log sigmoid(+-lam u_resp)`` and a proposer's ``log softmax_o(lam E_o)`` with
``E = sigmoid(lam u_proj) u_prop`` (the derivation: :mod:`scai.models.marginal_numpy`). The
arrays are small (a few rows of ~100 offers per type), so NumPy spends its time in the ~40
calls' overhead, not in arithmetic; one compiled pass does the same work in a few
microseconds. The offers' normaliser is computed once per *row*
``(sim, currency, pot)`` that holds a proposal (``rows``), not for every pot of every
simulation. :class:`scai.models.marginal_numpy.AgentMarginal` runs the users' part of the
real-agent likelihood (each user's mixture over types, the clone mixture, and the
derivatives back to the cells) in :func:`agent_group`. The small passes and the maps were
dozens of NumPy calls per gradient on arrays of a few numbers: compiled, a batched real-agent
gradient of two chains takes ~490 us instead of ~860 (``benchmarks/results_mcmc_presets.md``).
Each keeps NumPy's order of operations where it can (the same values to ~1e-15), and every
simulation's sums run in the same order whatever the number of simulations, so chains in
lockstep are the chains run alone, bit for bit. Division by zero follows
NumPy (``inf`` or ``nan``, no exception: ``error_model="numpy"``), as the code it replaced did
when a sampler's far step saturates a probability.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always", error_model="numpy")
def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _log_expit(x: float) -> float:
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _logaddexp(a: float, b: float) -> float:
    """``log(e^a + e^b)`` by NumPy's formula (``scai.inference.hmc._logaddexp`` is the
    interpreted sampler's; models import nothing from inference)."""
    if a == b:
        return a + _LOG2
    top, gap = (a, b - a) if a > b else (b, a - b)
    return top + math.log1p(math.exp(gap))


_LOG2 = math.log(2.0)


@numba.njit(cache=True, error_model="numpy")
def rational_cells(
    lam: np.ndarray,  # [S]
    shift: np.ndarray,  # [S, C]
    u_resp: np.ndarray,  # [K, P, O], shift 0
    u_proj: np.ndarray,  # [K, P, O]: the responder a proposer expects
    u_prop: np.ndarray,  # [K, P, O]
    valid: np.ndarray,  # [P, O] bool
    pots: np.ndarray,  # [P]
    rows: np.ndarray,  # [R, 3]: (sim, currency, pot) of each row holding a proposal
    cells: np.ndarray,  # [N, 6]: (sim, currency, pot, offer, kind, row); kind 0 proposes
    needs_lam: bool,
    needs_shift: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cell_ll, d_lam, d_shift)``, each ``[N, K]`` (the derivatives zero unless asked for):
    a cell's log-likelihood under each type and its derivatives in ``lam`` and its
    currency's shift. ``kind`` 1 accepts, any other kind but 0 rejects."""
    K, _, O = u_resp.shape
    R, N = rows.shape[0], cells.shape[0]
    log_norm = np.empty((R, K))
    mean_lam = np.zeros((R, K))  # sum_o q_o d(lam E_o) / d lam
    mean_shift = np.zeros((R, K))
    gain = np.empty(O)
    d_gain_lam = np.zeros(O)
    d_gain_shift = np.zeros(O)
    for r in range(R):
        s, c, p = rows[r, 0], rows[r, 1], rows[r, 2]
        lam_s, delta = lam[s], shift[s, c]
        for k in range(K):
            top = -np.inf
            for o in range(O):
                if not valid[p, o]:
                    continue
                other = pots[p] - o  # the responder's payoff
                up = u_prop[k, p, o] + delta * o
                uj = u_proj[k, p, o] + delta * other
                sig = _expit(lam_s * uj)
                gain[o] = lam_s * sig * up
                top = max(top, gain[o])
                slope = sig * (1.0 - sig)
                if needs_lam:
                    d_gain_lam[o] = sig * up + lam_s * slope * uj * up
                if needs_shift:
                    d_gain_shift[o] = lam_s * (lam_s * slope * other * up + sig * o)
            total = acc_lam = acc_shift = 0.0
            for o in range(O):
                if not valid[p, o]:
                    continue
                w = math.exp(gain[o] - top)
                total += w
                acc_lam += w * d_gain_lam[o]
                acc_shift += w * d_gain_shift[o]
            log_norm[r, k] = top + math.log(total)
            mean_lam[r, k] = acc_lam / total
            mean_shift[r, k] = acc_shift / total
    cell_ll = np.empty((N, K))
    d_lam = np.zeros((N, K))
    d_shift = np.zeros((N, K))
    for n in range(N):
        s, c, p, o, kind, r = (
            cells[n, 0],
            cells[n, 1],
            cells[n, 2],
            cells[n, 3],
            cells[n, 4],
            cells[n, 5],
        )
        lam_s, delta = lam[s], shift[s, c]
        other = pots[p] - o
        for k in range(K):
            if kind == 0:
                if not valid[p, o]:
                    cell_ll[n, k] = -np.inf
                    continue
                up = u_prop[k, p, o] + delta * o
                uj = u_proj[k, p, o] + delta * other
                sig = _expit(lam_s * uj)
                slope = sig * (1.0 - sig)
                cell_ll[n, k] = lam_s * sig * up - log_norm[r, k]
                if needs_lam:
                    d_lam[n, k] = sig * up + lam_s * slope * uj * up - mean_lam[r, k]
                if needs_shift:
                    d = lam_s * (lam_s * slope * other * up + sig * o)
                    d_shift[n, k] = d - mean_shift[r, k]
            else:
                sign = 1.0 if kind == 1 else -1.0
                ur = u_resp[k, p, o] + delta * other
                a = sign * lam_s * ur
                cell_ll[n, k] = _log_expit(a)
                d_logit = sign * _expit(-a)  # d log sigmoid(sign x) / d x at x = lam ur
                if needs_lam:
                    d_lam[n, k] = d_logit * ur
                if needs_shift:
                    d_shift[n, k] = d_logit * lam_s * other
    return cell_ll, d_lam, d_shift


@numba.njit(cache=True, error_model="numpy")
def agent_group(
    cell_ll: np.ndarray,  # [N, K]: each cell's log P under each type
    tones: np.ndarray,  # [S, U, K]
    log_pi: np.ndarray,  # [S, K]
    mask: np.ndarray,  # [S, U]
    indptr: np.ndarray,  # counts [S * U, N] in CSR (row s * U + u)
    indices: np.ndarray,
    counts: np.ndarray,
    clone: np.ndarray,  # [S] (unused without clones)
    has_clone: bool,
    prototype: np.ndarray,  # [S] (unused without one)
    has_prototype: bool,
    d_tones: np.ndarray,  # [S, U, K]: d tones / d strength (unused without it)
    has_strength: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(G [S], dG/d log pi [S, K], dG/dc [S], w [K, S], dG/d strength [S], dG/d cell_ll
    [N, K])`` of :meth:`scai.models.marginal_numpy.AgentMarginal.group` (the clone mixture's
    and the coupling's derivations: its class docstring); without clones ``w`` and ``dG/dc``
    are zeros, without a latent strength its derivative. Each simulation's sums run in the
    same order whatever the number of simulations (chains in lockstep are tiled ones).

    Transcendentals dominate here, so each is computed once: with ``t = log c + L[u, z] -
    own[u]`` and ``l = log(1 - c)``, ``log f[u, z] - own[u] = logaddexp(t, l)`` and ``a[u, z]
    = sigmoid(t - l)`` share one ``exp(-|t - l|)``; ``r[u, k]`` reuses the log-sum-exp's
    terms; given a prototype ``z*`` (the joint with it: :mod:`scai.inference.sheets`) only
    ``f[u, z*]`` is computed, every other ``w_z`` being 0 (the same sums, bit for bit)."""
    N, K = cell_ll.shape
    S, U = mask.shape
    L = np.empty((U, K))
    r = np.empty((U, K))  # pi_k e^{L[u, k] - own[u]}
    value = np.zeros(S)
    d_log_pi = np.zeros((S, K))
    d_clone = np.zeros(S)
    w = np.zeros((K, S))
    d_strength = np.zeros(S)
    weight = np.zeros((N, K))
    by_z = np.empty(K)
    d_L = np.empty(K)
    # the clone mixture per (u, z): log f - own, a
    rel_f = np.empty((U, K))
    a = np.empty((U, K))
    for s in range(S):
        log_c = math.log(clone[s]) if has_clone else 0.0
        log_not_c = math.log1p(-clone[s]) if has_clone else 0.0
        for u in range(U):  # L, own = log sum_k pi_k e^L and r
            row = s * U + u
            m = mask[s, u]
            top = -np.inf
            for k in range(K):
                total = tones[s, u, k]
                for j in range(indptr[row], indptr[row + 1]):
                    total += counts[j] * cell_ll[indices[j], k]
                L[u, k] = total * m
                r[u, k] = L[u, k] + log_pi[s, k]
                top = max(top, r[u, k])
            acc = 0.0
            for k in range(K):
                r[u, k] = math.exp(r[u, k] - top)
                acc += r[u, k]
            for k in range(K):
                r[u, k] /= acc
            own = top + math.log(acc)
            value[s] += own * m  # G without clones; with them, B's own part
            if has_clone:
                for z in range(K):
                    if has_prototype and z != prototype[s]:
                        # w_z = 0: this prototype's terms never reach G or its gradient
                        rel_f[u, z] = 0.0
                        a[u, z] = 0.0
                        continue
                    x = log_c + L[u, z] - own - log_not_c
                    e = math.exp(-abs(x))
                    rel_f[u, z] = max(x, 0.0) + log_not_c + math.log1p(e)
                    a[u, z] = 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)
        if has_clone:
            c = clone[s]
            for z in range(K):  # log pi_z + B[z], B[z] = sum_u log f[u, z]
                acc = 0.0
                for u in range(U):
                    acc += rel_f[u, z] * mask[s, u]
                by_z[z] = log_pi[s, z] + value[s] + acc
            if has_prototype:
                value[s] = by_z[prototype[s]]
                w[prototype[s], s] = 1.0
            else:
                top = by_z.max()
                acc = 0.0
                for z in range(K):
                    acc += math.exp(by_z[z] - top)
                value[s] = top + math.log(acc)
                for z in range(K):
                    w[z, s] = math.exp(by_z[z] - value[s])
            for z in range(K):
                d_log_pi[s, z] = w[z, s]
        for u in range(U):
            m = mask[s, u]
            if has_clone:
                c = clone[s]
                beta = 0.0
                for z in range(K):
                    beta += w[z, s] * (1.0 - a[u, z])
                    d_L[z] = w[z, s] * a[u, z] * m
                    d_clone[s] += w[z, s] * (a[u, z] / c - (1.0 - a[u, z]) / (1.0 - c)) * m
                beta *= m
            else:
                beta = m
                for k in range(K):
                    d_L[k] = 0.0
            for k in range(K):
                d_L[k] += beta * r[u, k]
                d_log_pi[s, k] += beta * r[u, k]
            row = s * U + u  # dG / d cell_ll = counts' dG/dL
            for j in range(indptr[row], indptr[row + 1]):
                for k in range(K):
                    weight[indices[j], k] += counts[j] * d_L[k]
            if has_strength:
                for k in range(K):
                    d_strength[s] += d_L[k] * d_tones[s, u, k]
    return value, d_log_pi, d_clone, w, d_strength, weight


@numba.njit(cache=True, error_model="numpy")
def lapse_cells(
    log_rational: np.ndarray,  # [N, K]: each cell's rational log p under each type
    eps: np.ndarray,  # [S] per simulation, or [1] for all
    cell_sim: np.ndarray,  # [N]
    log_uniform: np.ndarray,  # [N]: log v, the uniform action's log-probability
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log P, d log P / d eps, d log P / d log p)``, each ``[N, K]``, of the lapse mixture
    ``P = eps v + (1 - eps) p`` (:meth:`scai.models.marginal_numpy.AgentMarginal._cells`):
    ``log P = logaddexp(log eps + log v, log(1 - eps) + log p)`` (NumPy's formula), ``d log P
    / d eps = (v - p) / P`` and ``d log P / d log p = (1 - eps) p / P``."""
    N, K = log_rational.shape
    log_p = np.empty((N, K))
    d_eps = np.empty((N, K))
    d_rational = np.empty((N, K))
    for n in range(N):
        e = eps[cell_sim[n]] if eps.shape[0] > 1 else eps[0]
        lu = log_uniform[n]
        slip = math.log(e) + lu
        log_keep = math.log1p(-e)
        for k in range(K):
            lr = log_rational[n, k]
            kept = log_keep + lr
            if not (0.0 < e < 1.0) or slip == kept:  # NumPy's formulas, term by term
                lp = _logaddexp(slip, kept)
                log_p[n, k] = lp
                d_eps[n, k] = math.exp(lu - lp) - math.exp(lr - lp)
                d_rational[n, k] = math.exp(kept - lp)
                continue
            # one exp and one log1p: with q = e^{-|slip - kept|}, the mixture's two shares
            # e^{slip - log P} and e^{kept - log P} are 1 / (1 + q) and q / (1 + q)
            q = math.exp(-abs(slip - kept))
            big, small = 1.0 / (1.0 + q), q / (1.0 + q)
            if slip > kept:
                log_p[n, k] = slip + math.log1p(q)
                slipped, keeps = big, small
            else:
                log_p[n, k] = kept + math.log1p(q)
                slipped, keeps = small, big
            # v / P = e^{slip - log P} / eps and p / P = e^{kept - log P} / (1 - eps)
            d_eps[n, k] = slipped / e - keeps / (1.0 - e)
            d_rational[n, k] = keeps
    return log_p, d_eps, d_rational


@numba.njit(cache=True, error_model="numpy")
def coupled_tones(
    strength: np.ndarray,  # [S]
    uniform_part: np.ndarray,  # [S, U]: A, the manners' mean likelihood (scaled by e^-top)
    stereotype_part: np.ndarray,  # [S, U, K]: B, the stereotype rows' sums (scaled alike)
    manner_top: np.ndarray,  # [S, U]: top
    heard: np.ndarray,  # [S, U] bool: the user said something
) -> tuple[np.ndarray, np.ndarray]:
    """``(tones, d tones / d s)``, each ``[S, U, K]``, at coupling strength ``s``: ``tones =
    log((1 - s) A + s B) + top`` and ``(B - A) / ((1 - s) A + s B)`` where the user was heard,
    0 elsewhere (:meth:`scai.models.marginal_numpy.AgentMarginal._tones`)."""
    S, U, K = stereotype_part.shape
    tones = np.zeros((S, U, K))
    d_s = np.zeros((S, U, K))
    for s in range(S):
        st = strength[s]
        for u in range(U):
            if not heard[s, u]:
                continue
            a = uniform_part[s, u]
            for k in range(K):
                b = stereotype_part[s, u, k]
                rho = (1 - st) * a + st * b
                tones[s, u, k] = math.log(rho) + manner_top[s, u]
                d_s[s, u, k] = (b - a) / rho
    return tones, d_s


@numba.njit(cache=True, error_model="numpy")
def cell_sums(
    weight: np.ndarray,  # [N, K]: dG / d cell_ll
    d_cell: np.ndarray,  # [N, K]: each cell's derivative in a scalar of its group
    group: np.ndarray,  # [N]: the cell's group (its simulation, or (sim, currency))
    n_groups: int,
) -> np.ndarray:
    """``[n_groups]``: ``sum_{n in g} sum_k weight[n, k] d_cell[n, k]``, the chain rule from
    the cells to a scalar per group (a lapse, ``lam``, a currency's shift), summed in the
    cells' order (so a simulation's sum is the same whatever the others)."""
    out = np.zeros(n_groups)
    N, K = weight.shape
    for n in range(N):
        acc = 0.0
        for k in range(K):
            acc += weight[n, k] * d_cell[n, k]
        out[group[n]] += acc
    return out


@numba.njit(cache=True, error_model="numpy")
def prior_terms(
    cols: np.ndarray,  # [S, W]: the unconstrained coordinates
    sticks: np.ndarray,  # [3, S, K - 1]: z, log z, log(1 - z) of pi's sticks (columns 0..K-2)
    stick_ab: np.ndarray,  # [2, K - 1]: each stick's Beta(a_j, b_j)
    columns: np.ndarray,  # [4]: lam's, shift_shared's, the first shift's column (-1: none),
    # the number of shifts
    scales: np.ndarray,  # [5]: lam's location and scale, sigma_0, tau, sum_j log B(a_j, b_j)
    mean_shift: np.ndarray,  # [C]: mu e_c
    bounded: np.ndarray,  # [B]: the bounded sites' columns
    bounded_ab: np.ndarray,  # [3, B]: their Beta(a, b) and log B(a, b)
) -> tuple[np.ndarray, np.ndarray]:
    """``(log p [S], d log p / d cols [S, W])``: the prior on the unconstrained coordinates
    (:meth:`scai.models.prior.GroupPrior.log_prob_unconstrained_np`, whose terms these are, in
    its order)."""
    S, W = cols.shape
    lp = np.zeros(S)
    grad = np.zeros((S, W))
    lam_col, shared_col, shift_col, n_shift = columns[0], columns[1], columns[2], columns[3]
    lam_loc, lam_scale, shared_scale, tau, stick_norm = (
        scales[0],
        scales[1],
        scales[2],
        scales[3],
        scales[4],
    )
    root_2pi = math.sqrt(2 * math.pi)
    for s in range(S):
        acc = 0.0
        for j in range(sticks.shape[2]):
            a, b = stick_ab[0, j], stick_ab[1, j]
            z = sticks[0, s, j]
            acc += a * sticks[1, s, j] + b * sticks[2, s, j]
            grad[s, j] = a * (1 - z) - b * z
        acc -= stick_norm
        if lam_col >= 0:
            ell = cols[s, lam_col]
            acc += -0.5 * ((ell - lam_loc) / lam_scale) ** 2 - math.log(lam_scale * root_2pi)
            grad[s, lam_col] = -(ell - lam_loc) / lam_scale**2
        shared = 0.0
        if shared_col >= 0:
            shared = cols[s, shared_col]
            acc += -0.5 * (shared / shared_scale) ** 2 - math.log(shared_scale * root_2pi)
            grad[s, shared_col] = -shared / shared_scale**2
        for c in range(n_shift):
            resid = cols[s, shift_col + c] - (shared + mean_shift[c])
            acc += -0.5 * (resid / tau) ** 2 - math.log(tau * root_2pi)
            grad[s, shift_col + c] = -resid / tau**2
            if shared_col >= 0:
                grad[s, shared_col] += resid / tau**2
        for i in range(bounded.shape[0]):
            a, b = bounded_ab[0, i], bounded_ab[1, i]
            x = cols[s, bounded[i]]
            acc += a * _log_expit(x) + b * _log_expit(-x) - bounded_ab[2, i]
            grad[s, bounded[i]] = a * _expit(-x) - b * _expit(x)
        lp[s] = acc
    return lp, grad


@numba.njit(cache=True, inline="always", error_model="numpy")
def _softplus(x: float) -> float:
    """``log(1 + e^x)`` (NumPy's ``logaddexp(0, x)``)."""
    return _logaddexp(0.0, x)


@numba.njit(cache=True, error_model="numpy")
def wall_lower(x: float, a: float, k: float) -> tuple[float, float, float, float, float]:
    """The map below a wall (:mod:`scai.inference.walls`): ``P(x) = a softplus(x) - log(1 +
    softplus(-x - m)) / k`` with ``m = log(a k)``, where ``k`` is proportional to ``lam``
    (``x = 0`` is the wall's foot): ``(P, log P', d log P'/dx, dP/d log lam, d log P'/d log
    lam)``. Above the foot it is ``a x``; below it, where the wall ``e^{-k P}`` stands,
    ``-log(|x| - m) / k``, so the wall grows like ``|x|`` (like a power of it where it
    steepens beyond ``k``); the step between, ``a e^x``, is a log scale. Every term's
    curvature in ``x`` is O(1)."""
    m = math.log(a * k)
    s_pos, s_neg = _expit(x), _expit(-x)
    t = _expit(-x - m)
    u = _softplus(-x - m)
    value = a * _softplus(x) - math.log1p(u) / k
    inner = t / (1.0 + u)  # k dP/dx of the part below
    d_inner = (t * t - t * (1.0 - t) * (1.0 + u)) / (1.0 + u) ** 2  # its derivative in x
    slope = a * s_pos + inner / k
    curve = a * s_pos * s_neg + d_inner / k
    return (
        value,
        math.log(slope),
        curve / slope,
        (inner + math.log1p(u)) / k,
        (d_inner - inner) / k / slope,
    )


@numba.njit(cache=True, error_model="numpy")
def wall_offset(
    w: float, ratio: float, wall: np.ndarray
) -> tuple[float, float, float, float, float]:
    """``F(w) = L(H(w))`` of one wall (``wall``: :data:`scai.inference.walls.WALL_FIELDS`)
    when ``lam`` is ``ratio`` times its value at the mode: ``(F, log F', d log F' / dw, dF / d
    log lam, d log F' / d log lam)`` (:meth:`scai.inference.walls.Wall.offset`)."""
    knee, kappa_lo, kappa_hi, distance, scale, lam = (
        wall[0],
        wall[1],
        wall[2],
        wall[3],
        wall[4],
        wall[5],
    )
    z, log_h, dlog_h, dz_lam, dlog_h_lam = w, 0.0, 0.0, 0.0, 0.0
    if kappa_hi > 0:
        # the upper map H(w) = Y - P(Y - w), P the lower map with a = 1, in units of the sd
        anchor = knee / (lam * ratio)
        foot = (distance + knee / lam - anchor) / scale
        d_foot = anchor / scale
        p, log_p, dlog_p, dp_lam, dlog_p_lam = wall_lower(foot - w, 1.0, scale * kappa_hi * ratio)
        z, log_h, dlog_h = foot - p, log_p, -dlog_p
        dz_lam = d_foot * (1.0 - math.exp(log_p)) - dp_lam
        dlog_h_lam = d_foot * dlog_p + dlog_p_lam
    if kappa_lo > 0:
        f, log_l, dlog_l, df_lam, dlog_l_lam = wall_lower(z, scale, kappa_lo * ratio)
    else:
        f, log_l, dlog_l, df_lam, dlog_l_lam = scale * z, math.log(scale), 0.0, 0.0, 0.0
    h_slope = math.exp(log_h)
    return (
        f,
        log_l + log_h,
        dlog_l * h_slope + dlog_h,
        df_lam + math.exp(log_l) * dz_lam,
        dlog_l_lam + dlog_l * dz_lam + dlog_h_lam,
    )


@numba.njit(cache=True, error_model="numpy")
def wall_offsets(w: np.ndarray, ratio: np.ndarray, wall: np.ndarray) -> np.ndarray:
    """``[5, n]``: :func:`wall_offset` of each ``w [n]`` at its ``ratio [n]``."""
    out = np.empty((5, w.shape[0]))
    for i in range(w.shape[0]):
        f, log_slope, d_log_slope, d_f_lam, d_log_slope_lam = wall_offset(w[i], ratio[i], wall)
        out[0, i], out[1, i], out[2, i] = f, log_slope, d_log_slope
        out[3, i], out[4, i] = d_f_lam, d_log_slope_lam
    return out


@numba.njit(cache=True, error_model="numpy")
def walls_forward(
    phi: np.ndarray,  # [B, S * W]
    walls: np.ndarray,  # [n, 6]: each wall's fields (WALL_FIELDS)
    wall_cols: np.ndarray,  # [n, 2]: each wall's column and simulation
    lam_of_sim: np.ndarray,  # [S]: each simulation's log lam column
    latent_lam: bool,
    lam_fixed: float,
    moved: np.ndarray,  # [m, c]: the columns that move with the anchor
    knee: np.ndarray,  # [m, c]: their anchors, in lam * delta
    lam_col: np.ndarray,  # [m]: the log lam column of each moved simulation
    pooled: bool,
    shared_col: np.ndarray,  # [m]: delta0's column (pooled)
    mean_shift: np.ndarray,  # [c]: mu e_c (pooled)
    shared_sd: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(theta, dtheta_j / dphi_j, log Jacobian [B, S], its gradient, d theta_j / d log
    lam)`` of :meth:`scai.inference.walls.WallCoordinates._forward`, each row of ``phi`` in
    the same order of operations as NumPy's."""
    B, n = phi.shape
    theta = phi.copy()
    slope = np.ones((B, n))
    log_jac = np.zeros((B, lam_of_sim.shape[0]))
    d_log_jac = np.zeros((B, n))
    d_lam = np.zeros((B, n))
    C = moved.shape[1]
    for b in range(B):
        for i in range(walls.shape[0]):
            col, sim = wall_cols[i, 0], wall_cols[i, 1]
            ratio = math.exp(phi[b, lam_of_sim[sim]]) / walls[i, 5] if latent_lam else 1.0
            f, log_slope, d_log_slope, d_f_lam, d_log_slope_lam = wall_offset(
                phi[b, col], ratio, walls[i]
            )
            theta[b, col] = f
            slope[b, col] = math.exp(log_slope)
            log_jac[b, sim] += log_slope
            d_log_jac[b, col] = d_log_slope
            d_lam[b, col] = d_f_lam
            if latent_lam:
                d_log_jac[b, lam_of_sim[sim]] += d_log_slope_lam
        for i in range(moved.shape[0]):
            inv_lam = math.exp(-phi[b, lam_col[i]]) if latent_lam else 0.0
            acc = 0.0
            for c in range(C):
                j = moved[i, c]
                theta[b, j] += knee[i, c] * inv_lam if latent_lam else knee[i, c] / lam_fixed
                acc += theta[b, j] - mean_shift[c]
            if pooled:
                theta[b, shared_col[i]] = acc / C + shared_sd * phi[b, shared_col[i]]
    return theta, slope, log_jac, d_log_jac, d_lam


@numba.njit(cache=True, error_model="numpy")
def walls_pull_back(
    g: np.ndarray,  # [S * W]: dU/dtheta
    phi: np.ndarray,  # [S * W]
    slope: np.ndarray,  # walls_forward's, one row each
    d_log_jac: np.ndarray,
    d_lam: np.ndarray,
    wall_cols: np.ndarray,
    lam_of_sim: np.ndarray,
    latent_lam: bool,
    moved: np.ndarray,
    knee: np.ndarray,
    lam_col: np.ndarray,
    pooled: bool,
    shared_col: np.ndarray,
    shared_sd: float,
) -> np.ndarray:
    """``dU'/dphi`` of ``dU/dtheta`` through :func:`walls_forward`'s map, less its log
    Jacobian's gradient (:meth:`scai.inference.walls.WallCoordinates.potentials_and_grad`)."""
    g = g.copy()
    m, C = moved.shape
    if pooled:  # delta_0 moves with the mean of the currencies' shifts
        for i in range(m):
            for c in range(C):
                g[moved[i, c]] += g[shared_col[i]] / C
            g[shared_col[i]] *= shared_sd
    grad = g * slope - d_log_jac
    if m and latent_lam:
        # d(knee / lam) / d log lam = -knee / lam; the walls' F follows lam too
        for i in range(m):
            inv_lam = math.exp(-phi[lam_col[i]])
            acc = 0.0
            for c in range(C):
                acc += g[moved[i, c]] * (knee[i, c] * inv_lam)
            grad[lam_col[i]] -= acc
        for i in range(wall_cols.shape[0]):
            col = wall_cols[i, 0]
            grad[lam_of_sim[wall_cols[i, 1]]] += g[col] * d_lam[col]
    return grad


@numba.njit(cache=True, error_model="numpy")
def clones_forward(
    psi: np.ndarray,  # [B, S, W]
    prototype: np.ndarray,  # [B, S]: z* of each row's simulation
    order: np.ndarray,  # [S, K]: q's types in stick order
    clone_col: int,
    offset: np.ndarray,  # [K - 1]: the sticks' offsets, log(K - 1 - j)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(theta before the inner map [B, S, W], log p [B, S, K], log sum_{i>=j} p_i [B, S,
    K], the fractions z of q's sticks [B, S, K - 1])`` of
    :meth:`scai.inference.clones.CloneCoordinates._forward` (pi's sticks are columns 0..K-2,
    as in every layout), in NumPy's order of operations."""
    B, S, W = psi.shape
    K = order.shape[1]
    mid = psi.copy()
    log_p = np.empty((B, S, K))
    tail = np.empty((B, S, K))
    z = np.empty((B, S, K - 1))
    log_sorted = np.empty(K)
    for b in range(B):
        for s in range(S):
            # log q in stick order (torch's stick-breaking), then in the types' order
            acc = 0.0  # log prod_{i<j} (1 - z_i)
            for j in range(K - 1):
                t = psi[b, s, j] - offset[j]
                z[b, s, j] = _expit(t)
                log_sorted[j] = _log_expit(t) + acc
                acc += _log_expit(-t)
            log_sorted[K - 1] = acc
            v = psi[b, s, clone_col]
            log_u, log_not_u = _log_expit(v), _log_expit(-v)
            star = prototype[b, s]
            log_q_star = 0.0
            for i in range(K):
                k = order[s, i]
                one = 1.0 if k == star else 0.0
                log_p[b, s, k] = log_sorted[i] + one * log_not_u
                log_q_star += log_sorted[i] * one
            # x_j = log p_j - log sum_{i>j} p_i + offset_j; logit c = log u + log q* - log sum p
            tail[b, s, K - 1] = log_p[b, s, K - 1]
            for j in range(K - 2, -1, -1):
                tail[b, s, j] = _logaddexp(tail[b, s, j + 1], log_p[b, s, j])
            for j in range(K - 1):
                mid[b, s, j] = log_p[b, s, j] - tail[b, s, j + 1] + offset[j]
            mid[b, s, clone_col] = log_u + log_q_star - tail[b, s, 0]
    return mid, log_p, tail, z


@numba.njit(cache=True, error_model="numpy")
def clones_pull_back(
    g: np.ndarray,  # [S, W]: dU/dtheta before the inner map
    log_p: np.ndarray,  # [S, K]: clones_forward's, its row of this point
    tail: np.ndarray,  # [S, K]
    z: np.ndarray,  # [S, K - 1]
    v: np.ndarray,  # [S]: logit u
    prototype: np.ndarray,  # [S]
    order: np.ndarray,  # [S, K]
    clone_col: int,
) -> np.ndarray:
    """``dU/dpsi [S, W]`` of ``dU/dtheta`` through :func:`clones_forward`'s map
    (:meth:`scai.inference.clones.CloneCoordinates.potentials_and_grad`: the derivation)."""
    S, W = g.shape
    K = log_p.shape[1]
    out = g.copy()
    d_log_p = np.empty(K)
    d_sorted = np.empty(K)
    for s in range(S):
        g_c = g[s, clone_col]
        star = prototype[s]
        # x_j = log p_j - log sum_{i>j} p_i, logit c = ... - log sum_i p_i
        for k in range(K):
            acc = 0.0
            for j in range(K - 1):
                after = 1.0 if k > j else 0.0
                acc += g[s, j] * math.exp(log_p[s, k] - tail[s, j + 1]) * after
            d_log_p[k] = -acc
        for j in range(K - 1):
            d_log_p[j] += g[s, j]
        d_log_not_u = 0.0
        for k in range(K):
            d_log_p[k] -= g_c * math.exp(log_p[s, k] - tail[s, 0])
            one = 1.0 if k == star else 0.0
            d_log_not_u += d_log_p[k] * one
            d_log_p[k] = d_log_p[k] + one * g_c  # now d log q_k
        u = _expit(v[s])
        out[s, clone_col] = (1 - u) * g_c - u * d_log_not_u
        # d log q_k / d y_j: (1 - z_j) for k = j, -z_j for k > j (in stick order)
        for i in range(K):
            d_sorted[i] = d_log_p[order[s, i]]
        later = 0.0
        for j in range(K - 2, -1, -1):
            later += d_sorted[j + 1]
            out[s, j] = d_sorted[j] * (1 - z[s, j]) - z[s, j] * later
    return out
