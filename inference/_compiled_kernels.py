"""The numba functions of :mod:`scai.inference.compiled` (imported only where they run).

Each mirrors a function of :mod:`scai.inference.hmc` (named in its docstring) operation for
operation, with the same order of random draws. A trajectory's subtrees live in a workspace
of slots instead of objects: ``V[slot, 11, d]`` holds a tree's two ends (position, momentum,
gradient, momentum times the inverse mass), its proposal's position and gradient and the sum
of its momenta; ``F[slot, 6]`` its proposal's potential, log weight, leapfrog steps, summed
acceptance, and whether it diverged or turned. The subtree of depth ``j`` a build returns goes
to the slot its caller names; its own two halves use slots ``2 (j - 1)`` and ``2 (j - 1) + 1``
(the halves of the halves reuse lower slots), the trajectory and the newest subtree the last
two.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from scai.inference.hmc import MAX_ENERGY_ERROR, MIN_AVERAGED
from scai.inference.hmc import _logaddexp as hmc_logaddexp

# V's rows
QM, PM, GM, SM, QP, PP, GP, SP, QPROP, GPROP, RHO = range(11)
# F's columns
UPROP, LOGW, NSTEPS, SUMACC, DIV, TURN = range(6)
LOG08 = math.log(0.8)


# -- the potential ---------------------------------------------------------------------------
@njit(cache=True)
def _log_expit(t):
    """``log sigmoid(t)`` without overflow."""
    if t >= 0:
        return -math.log1p(math.exp(-t))
    return t - math.log1p(math.exp(t))


@njit(cache=True)
def _expit(t):
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@njit(cache=True)
def potential(model, psi, values, grad):
    """:func:`scai.inference.compiled.pi_potential` into ``values [S]`` and ``grad [S * W]``;
    returns their sum ``U``."""
    mode, chol, offset, stick_a, stick_b, log_norm, weights, top, loglik, mask = model
    S, W = mode.shape
    K = W + 1
    U = weights.shape[1]
    theta = np.empty(W)
    z = np.empty(W)
    log_z = np.empty(W)
    log_1mz = np.empty(W)
    d_theta = np.empty(W)
    log_pi = np.empty(K)
    pi = np.empty(K)
    per_pi = np.empty(K)  # sum_u E[u, k] / m_u (times pi_k: dG / d log pi_k)
    direct = np.empty(K)  # dG / d log pi_k of the users summed in log-sum-exp form
    total = 0.0
    for s in range(S):
        base = s * W
        for i in range(W):
            t = mode[s, i]
            for j in range(i + 1):
                t += chol[s, i, j] * psi[base + j]
            theta[i] = t
        # the Dirichlet prior on the sticks, Jacobian included (GroupPrior)
        lp = 0.0
        for i in range(W):
            t = theta[i] - offset[i]
            z[i] = _expit(t)
            log_z[i] = _log_expit(t)
            log_1mz[i] = _log_expit(-t)
            lp += stick_a[i] * log_z[i] + stick_b[i] * log_1mz[i]
            d_theta[i] = stick_a[i] * (1 - z[i]) - stick_b[i] * z[i]
        lp -= log_norm
        # log pi_k = log z_k + sum_{i<k} log(1 - z_i)
        acc = 0.0
        for k in range(K):
            log_pi[k] = acc + (log_z[k] if k < W else 0.0)
            if k < W:
                acc += log_1mz[k]
            pi[k] = math.exp(log_pi[k])
            per_pi[k] = 0.0
            direct[k] = 0.0
        # the users' mixture over types, product form (NumpyMarginal.group_of_pi)
        g = top[s]
        for u in range(U):
            w = mask[s, u]
            if w == 0.0:
                continue
            m = 0.0
            for k in range(K):
                m += weights[s, u, k] * pi[k]
            if m > 1e-300:
                g += w * math.log(m)
                inv = w / m
                for k in range(K):
                    per_pi[k] += inv * weights[s, u, k]
            else:  # every type the user could be has a tiny pi_k: log-sum-exp form
                best = -math.inf
                big = -math.inf
                for k in range(K):
                    best = max(best, loglik[k, s, u])
                    big = max(big, loglik[k, s, u] + log_pi[k])
                mass = 0.0
                for k in range(K):
                    mass += math.exp(loglik[k, s, u] + log_pi[k] - big)
                per_user = big + math.log(mass)
                g += w * (per_user - best)  # top[s] holds the user's best type's L
                for k in range(K):
                    direct[k] += w * math.exp(loglik[k, s, u] + log_pi[k] - per_user)
        # d log pi_k / d x_j: (1 - z_j) for k = j, -z_j for k > j
        tail = 0.0
        for k in range(K - 1, -1, -1):
            d = pi[k] * per_pi[k] + direct[k]
            if k < W:
                d_theta[k] += d * (1 - z[k]) - z[k] * tail
            tail += d
        values[s] = -(lp + g)
        total += values[s]
        for j in range(W):
            acc = 0.0
            for i in range(j, W):
                acc -= chol[s, i, j] * d_theta[i]
            grad[base + j] = acc
    return total


# -- NUTS ------------------------------------------------------------------------------------
@njit(cache=True)
def _dot(x, y):
    acc = 0.0
    for i in range(len(x)):
        acc += x[i] * y[i]
    return acc


@njit(cache=True)
def _kinetic(p, inv_mass):
    """``p @ (inv_mass * p)``."""
    acc = 0.0
    for i in range(len(p)):
        acc += p[i] * (inv_mass[i] * p[i])
    return acc


@njit(cache=True)
def _row(V, out, r_out, src, r_src):
    """``V[out, r_out] = V[src, r_src]``."""
    for i in range(V.shape[2]):
        V[out, r_out, i] = V[src, r_src, i]


#: hmc's own log-add-exp, compiled (the same formula, so the same merges' weights)
_logaddexp = njit(cache=True)(hmc_logaddexp)


@njit(cache=True)
def _no_turn(s_minus, s_plus, rho):
    """hmc._no_turn."""
    return _dot(s_minus, rho) > 0 and _dot(s_plus, rho) > 0


@njit(cache=True)
def _leaf(model, V, F, src, direction, out, eps, h0, inv_mass, values):
    """One leapfrog step from ``src``'s end in ``direction`` into slot ``out``: the depth-0
    case of hmc._Integrator.build (and _Integrator.step)."""
    e_ = 1 if direction > 0 else 0
    q0, p0, g0 = (QP, PP, GP) if e_ else (QM, PM, GM)
    e = direction * eps
    half = 0.5 * e
    d = V.shape[2]
    q = V[out, QP]
    p = V[out, PP]
    g = V[out, GP]
    for i in range(d):
        p[i] = V[src, p0, i] - half * V[src, g0, i]
    for i in range(d):
        q[i] = V[src, q0, i] + (e * inv_mass[i]) * p[i]
    u = potential(model, q, values, g)
    finite = True
    for i in range(d):
        p[i] = p[i] - half * g[i]
        V[out, SP, i] = inv_mass[i] * p[i]
        if not math.isfinite(g[i]):
            finite = False
    h = u + 0.5 * _dot(p, V[out, SP])
    if not math.isfinite(h) or not finite:
        h = math.inf
    error = h - h0
    for i in range(d):
        V[out, QM, i] = q[i]
        V[out, PM, i] = p[i]
        V[out, GM, i] = g[i]
        V[out, SM, i] = V[out, SP, i]
        V[out, QPROP, i] = q[i]
        V[out, GPROP, i] = g[i]
        V[out, RHO, i] = p[i]
    F[out, UPROP] = u
    F[out, LOGW] = -error
    F[out, NSTEPS] = 1.0
    F[out, SUMACC] = math.exp(min(0.0, -error)) if math.isfinite(error) else 0.0
    F[out, DIV] = 1.0 if error > MAX_ENERGY_ERROR else 0.0
    F[out, TURN] = 0.0


@njit(cache=True)
def _copy(V, F, src, out):
    if src != out:
        for r in range(V.shape[1]):
            _row(V, out, r, src, r)
        for c in range(F.shape[1]):
            F[out, c] = F[src, c]


@njit(cache=True)
def _merge(V, F, inner, outer, direction, out, scratch):
    """hmc._Integrator.merge of slots ``inner`` and ``outer`` into ``out`` (which may be
    ``inner``); the proposal stays ``inner``'s."""
    a, b = (inner, outer) if direction > 0 else (outer, inner)  # a: the minus side
    d = V.shape[2]
    rho, t1, t2 = scratch[0], scratch[1], scratch[2]
    for i in range(d):
        rho[i] = V[a, RHO, i] + V[b, RHO, i]
        t1[i] = V[a, RHO, i] + V[b, PM, i]
        t2[i] = V[b, RHO, i] + V[a, PP, i]
    log_w = _logaddexp(F[inner, LOGW], F[outer, LOGW])
    diverging = F[inner, DIV] > 0 or F[outer, DIV] > 0
    turning = F[outer, TURN] > 0
    if not (diverging or turning):
        turning = not (
            _no_turn(V[a, SM], V[b, SP], rho)
            and _no_turn(V[a, SM], V[b, SM], t1)
            and _no_turn(V[a, SP], V[b, SP], t2)
        )
    n_steps = F[inner, NSTEPS] + F[outer, NSTEPS]
    sum_accept = F[inner, SUMACC] + F[outer, SUMACC]
    # the ends: minus from a, plus from b (out is inner, i.e. a or b: copy only the other's)
    if out != a:
        for r in range(QM, SM + 1):
            _row(V, out, r, a, r)
    if out != b:
        for r in range(QP, SP + 1):
            _row(V, out, r, b, r)
    if out != inner:
        _row(V, out, QPROP, inner, QPROP)
        _row(V, out, GPROP, inner, GPROP)
        F[out, UPROP] = F[inner, UPROP]
    for i in range(d):
        V[out, RHO, i] = rho[i]
    F[out, LOGW] = log_w
    F[out, NSTEPS] = n_steps
    F[out, SUMACC] = sum_accept
    F[out, DIV] = 1.0 if diverging else 0.0
    F[out, TURN] = 1.0 if turning else 0.0


@njit(cache=True)
def _take_proposal(V, F, src, out):
    _row(V, out, QPROP, src, QPROP)
    _row(V, out, GPROP, src, GPROP)
    F[out, UPROP] = F[src, UPROP]


@njit(cache=True)
def _build(model, V, F, src, direction, depth, out, eps, h0, rng, inv_mass, values, scratch):
    """hmc._Integrator.build: a subtree of ``2 ** depth`` steps from ``src``'s end in
    ``direction`` into slot ``out``."""
    if depth == 0:
        _leaf(model, V, F, src, direction, out, eps, h0, inv_mass, values)
        return
    inner = 2 * (depth - 1)
    outer = inner + 1
    _build(model, V, F, src, direction, depth - 1, inner, eps, h0, rng, inv_mass, values, scratch)
    if F[inner, DIV] > 0 or F[inner, TURN] > 0:
        _copy(V, F, inner, out)
        return
    _build(model, V, F, inner, direction, depth - 1, outer, eps, h0, rng, inv_mass, values, scratch)
    _merge(V, F, inner, outer, direction, out, scratch)
    # uniform multinomial sampling within a subtree
    valid = not (F[outer, DIV] > 0 or F[outer, TURN] > 0)
    if valid and math.log(rng.random()) < F[outer, LOGW] - F[out, LOGW]:
        _take_proposal(V, F, outer, out)


@njit(cache=True)
def _transition(model, V, F, q, u, g, eps, rng, inv_mass, sqrt_inv_mass, max_depth, values,
                scratch, result):  # fmt: skip
    """hmc.nuts_transition from ``(q, u, g)``: the new state in ``q``, ``g`` and
    ``result = [u, accept, diverging, tree_depth, n_steps, energy]``."""
    d = len(q)
    tree = V.shape[0] - 1
    new = tree - 1
    noise = rng.standard_normal(d)
    for i in range(d):
        p = noise[i] / sqrt_inv_mass[i]
        V[tree, PM, i] = p
        V[tree, SM, i] = inv_mass[i] * p
    h0 = u + 0.5 * _dot(V[tree, PM], V[tree, SM])
    for i in range(d):
        V[tree, QM, i] = q[i]
        V[tree, GM, i] = g[i]
        V[tree, QPROP, i] = q[i]
        V[tree, GPROP, i] = g[i]
        V[tree, RHO, i] = V[tree, PM, i]
    for r in range(4):
        _row(V, tree, QP + r, tree, QM + r)
    F[tree, UPROP] = u
    F[tree, LOGW] = 0.0
    F[tree, NSTEPS] = 0.0
    F[tree, SUMACC] = 0.0
    F[tree, DIV] = 0.0
    F[tree, TURN] = 0.0
    depth = 0
    while depth < max_depth:
        direction = 1 if rng.random() < 0.5 else -1
        _build(model, V, F, tree, direction, depth, new, eps, h0, rng, inv_mass, values, scratch)
        depth += 1
        if F[new, DIV] > 0 or F[new, TURN] > 0:
            F[tree, NSTEPS] += F[new, NSTEPS]
            F[tree, SUMACC] += F[new, SUMACC]
            F[tree, DIV] = F[new, DIV]
            break
        # biased progressive sampling: prefer the new subtree's proposal
        take_new = math.log(rng.random()) < F[new, LOGW] - F[tree, LOGW]
        _merge(V, F, tree, new, direction, tree, scratch)
        if take_new:
            _take_proposal(V, F, new, tree)
        if F[tree, TURN] > 0:
            break
    for i in range(d):
        q[i] = V[tree, QPROP, i]
        g[i] = V[tree, GPROP, i]
    result[0] = F[tree, UPROP]
    result[1] = F[tree, SUMACC] / max(F[tree, NSTEPS], 1.0)
    result[2] = F[tree, DIV]
    result[3] = depth
    result[4] = F[tree, NSTEPS]
    result[5] = h0


@njit(cache=True)
def _log_accept(model, q, p, g, u, eps, inv_mass, h0, values, q1, p1, g1):
    """find_step_size's ``log_accept``: one leapfrog step of size ``eps`` from ``(q, p)``."""
    d = len(q)
    half = 0.5 * eps
    for i in range(d):
        p1[i] = p[i] - half * g[i]
    for i in range(d):
        q1[i] = q[i] + (eps * inv_mass[i]) * p1[i]
    u1 = potential(model, q1, values, g1)
    for i in range(d):
        p1[i] = p1[i] - half * g1[i]
    h = u1 + 0.5 * _kinetic(p1, inv_mass)
    return h0 - h if math.isfinite(h) else -math.inf


@njit(cache=True)
def _find_step_size(model, q, u, g, eps, rng, inv_mass, sqrt_inv_mass, values, scratch):
    """hmc.find_step_size."""
    d = len(q)
    p = rng.standard_normal(d)
    for i in range(d):
        p[i] = p[i] / sqrt_inv_mass[i]
    h0 = u + 0.5 * _kinetic(p, inv_mass)
    q1, p1, g1 = scratch[0], scratch[1], scratch[2]
    first = _log_accept(model, q, p, g, u, eps, inv_mass, h0, values, q1, p1, g1)
    direction = 1 if first > LOG08 else -1
    for _ in range(50):
        new = eps * 2.0**direction
        log_a = _log_accept(model, q, p, g, u, new, inv_mass, h0, values, q1, p1, g1)
        crossed = log_a <= LOG08 if direction > 0 else log_a > LOG08
        if crossed:
            return eps if direction > 0 else new
        eps = new
    return eps


@njit(cache=True)
def chain(model, start, rng, warmup, total, target, max_depth, in_window, window_end,
          positions, stats, inv_mass):  # fmt: skip
    """hmc.nuts_chain without moves or monitor: fills ``positions [total, d]``, ``stats [7,
    total]`` (compiled.STATS) and ``inv_mass [d]`` (starting from its value); returns the
    final step size."""
    d = len(start)
    S = model[0].shape[0]
    values = np.empty(S)
    q = start.copy()
    g = np.empty(d)
    u = potential(model, q, values, g)
    V = np.zeros((2 * max_depth + 2, 11, d))
    F = np.zeros((2 * max_depth + 2, 6))
    scratch = np.empty((3, d))
    result = np.empty(6)
    sqrt_inv_mass = np.sqrt(inv_mass)
    eps = _find_step_size(model, q, u, g, 1.0, rng, inv_mass, sqrt_inv_mass, values, scratch)
    # dual averaging (hmc.DualAveraging)
    mu = math.log(10 * eps)
    t = 0
    h_bar = 0.0
    log_eps_bar = 0.0
    eps_restart = eps
    first = 0
    for i in range(total):
        _transition(
            model, V, F, q, u, g, eps, rng, inv_mass, sqrt_inv_mass, max_depth, values,
            scratch, result,
        )  # fmt: skip
        u = result[0]
        for j in range(d):
            positions[i, j] = q[j]
        stats[0, i] = result[1]
        stats[1, i] = result[2]
        stats[2, i] = eps
        stats[3, i] = result[3]
        stats[4, i] = result[4]
        stats[5, i] = result[5]
        stats[6, i] = -u
        if i < warmup:
            t += 1
            eta = 1.0 / (t + 10)
            h_bar = (1 - eta) * h_bar + eta * (target - result[1])
            log_eps = mu - math.sqrt(t) / 0.05 * h_bar
            weight = t**-0.75
            log_eps_bar = weight * log_eps + (1 - weight) * log_eps_bar
            eps = math.exp(log_eps)
            if in_window[i] and (i == 0 or not in_window[i - 1] or window_end[i - 1]):
                first = i
            if window_end[i]:
                n = i + 1 - first
                for j in range(d):  # np.var(window, axis=0, ddof=1), regularised
                    mean = 0.0
                    for r in range(first, i + 1):
                        mean += positions[r, j]
                    mean /= n
                    var = 0.0
                    for r in range(first, i + 1):
                        dev = positions[r, j] - mean
                        var += dev * dev
                    var /= n - 1
                    inv_mass[j] = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))
                    sqrt_inv_mass[j] = math.sqrt(inv_mass[j])
                eps = _find_step_size(
                    model, q, u, g, eps, rng, inv_mass, sqrt_inv_mass, values, scratch
                )
                mu = math.log(10 * eps)
                t = 0
                h_bar = 0.0
                log_eps_bar = 0.0
                eps_restart = eps
            if i == warmup - 1:  # hmc.DualAveraging.final
                eps = math.exp(log_eps_bar) if t >= MIN_AVERAGED else eps_restart
    return eps
