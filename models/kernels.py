"""The NumPy backend's per-gradient loops, compiled (numba): :func:`rational_cells` and
:func:`agent_group`.

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
derivatives back to the cells) in :func:`agent_group`. Division by zero follows
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
    terms."""
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
