"""Independent reference formulas for the tests, in plain Python floats (no torch, no models).

Written straight from the maths in the README's generative story and the ``models/policies.py``
and ``models/language.py`` docstrings so that the vectorised tables and the Pyro model can be
checked against something that shares none of their code.

The actions of a user of type ``z`` (README, "The generative story"), with lapse ``eps``::

    offer  ~ (1 - eps) softmax(lam * EU_z(offer)) + eps uniform over 0..pot
    accept ~ (1 - eps) sigmoid(lam * U'_z(offer, pot - offer)) + eps / 2

where ``U'_z`` is the type's responder's utility (its own ``U_z`` unless its norm is
role-dependent) and ``EU_z(o) = sigmoid(lam * U_z(o, pot - o)) * U_z(pot - o, o)``: the proposer
averages over the replies of a responder of its own *proposer's* norm (social projection, no
lapse: "proposers plan for their partners' norm, not their slips"), a rejection worth 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MANNERS = ("neutral", "polite", "rude", "sycophantic")


def utility(x: float, y: float, w: float, alpha: float, beta: float) -> float:
    """``U(x, y) = x + w y - alpha max(y - x, 0) - beta max(x - y, 0)``."""
    return x + w * y - alpha * max(y - x, 0.0) - beta * max(x - y, 0.0)


def log_sigmoid(z: float) -> float:
    """``log(1 / (1 + exp(-z)))`` without overflow."""
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def sigmoid(z: float) -> float:
    return math.exp(log_sigmoid(z))


def accept_logit(pot: int, offer: int, w: float, alpha: float, beta: float, lam: float) -> float:
    """Log-odds that a responder accepts ``offer`` of ``pot`` (reject has utility 0)."""
    return lam * utility(offer, pot - offer, w, alpha, beta)


def log_accept(
    accepted: int, pot: int, offer: int, w: float, alpha: float, beta: float, lam: float
) -> float:
    z = accept_logit(pot, offer, w, alpha, beta, lam)
    return log_sigmoid(z) if accepted else log_sigmoid(-z)


def offer_logps(
    pot: int, w: float, alpha: float, beta: float, lam: float, lapse: float = 0.0
) -> list[float]:
    """``log P(offer = o)`` for ``o = 0..pot``: softmax of ``lam * P_accept(o) * U(pot - o, o)``
    where the proposer expects a responder of its own (proposer's) norm ``(w, alpha, beta)``;
    with a lapse ``eps``, ``(1 - eps) softmax + eps / (pot + 1)``."""
    logits = []
    for o in range(pot + 1):
        p_acc = sigmoid(accept_logit(pot, o, w, alpha, beta, lam))
        logits.append(lam * p_acc * utility(pot - o, o, w, alpha, beta))
    top = max(logits)
    norm = top + math.log(sum(math.exp(v - top) for v in logits))
    return [lapse_mix(v - norm, lapse, pot + 1) for v in logits]


def lapse_mix(logp: float, lapse: float, n_actions: int) -> float:
    """``log((1 - eps) exp(logp) + eps / n_actions)``: a rational act's log-probability when an
    act is random (uniform over ``n_actions``) with probability ``eps``."""
    if lapse == 0:
        return logp
    if lapse == 1:
        return -math.log(n_actions)
    return logsumexp([math.log1p(-lapse) + logp, math.log(lapse / n_actions)])


def log_response(
    accepted: int,
    pot: int,
    offer: int,
    responder: tuple[float, float, float],
    lam: float,
    lapse: float = 0.0,
) -> float:
    """``log P(accepted)`` for a responder of parameters ``responder = (w, alpha, beta)`` (a
    type's responder's, ``U'``): ``(1 - eps) sigmoid(+-lam U'(offer, pot - offer)) + eps / 2``."""
    w, alpha, beta = responder
    return lapse_mix(log_accept(accepted, pot, offer, w, alpha, beta, lam), lapse, 2)


def coupling_row(stereotype_row: dict[str, float] | None, strength: float) -> list[float]:
    """``rho[k] = (1 - s) uniform + s * normalised stereotype row`` (uniform if none)."""
    n = len(MANNERS)
    if not stereotype_row:
        base = [1.0 / n] * n
    else:
        total = sum(stereotype_row.values())
        base = [stereotype_row.get(m, 0.0) / total for m in MANNERS]
    return [(1 - strength) / n + strength * b for b in base]


def emission(manner: str, tone: str, fidelity: float) -> float:
    """``P(tone | manner)``: ``fidelity`` when they match, the rest spread evenly."""
    return fidelity if manner == tone else (1 - fidelity) / (len(MANNERS) - 1)


def reported_emission(
    manner: str,
    reported: str,
    fidelity: float,
    confusion: Sequence[Sequence[float]] | None = None,
) -> float:
    """``P(a tone reader reports reported | manner) = sum_tone P(tone | manner)
    P(reported | tone)``; without a reader's confusion matrix, the tone as emitted."""
    if confusion is None:
        return emission(manner, reported, fidelity)
    column = MANNERS.index(reported)
    return sum(
        emission(manner, tone, fidelity) * confusion[i][column] for i, tone in enumerate(MANNERS)
    )


def logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def dirichlet_logpdf(x: Sequence[float], conc: Sequence[float]) -> float:
    return (
        math.lgamma(sum(conc))
        - sum(math.lgamma(a) for a in conc)
        + sum((a - 1) * math.log(v) for a, v in zip(conc, x, strict=True))
    )


def normal_logpdf(x: float, mean: float, sd: float) -> float:
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


def lognormal_logpdf(x: float, log_mean: float, sd: float) -> float:
    return normal_logpdf(math.log(x), log_mean, sd) - math.log(x)


def beta_logpdf(x: float, a: float, b: float) -> float:
    return (
        math.lgamma(a + b)
        - math.lgamma(a)
        - math.lgamma(b)
        + (a - 1) * math.log(x)
        + (b - 1) * math.log1p(-x)
    )


def mixture_loglik(log_pi: Sequence[float], user_logliks: Sequence[Sequence[float]]) -> float:
    """``sum_u log sum_k pi_k exp(L[u][k])``: a group whose users draw their types from ``pi``
    independently (``L[u][k]``: user ``u``'s log-likelihood were it of type ``k``)."""
    return sum(
        logsumexp([lp + lk for lp, lk in zip(log_pi, row, strict=True)]) for row in user_logliks
    )


def clone_loglik(
    pi: Sequence[float], clone: float, user_logliks: Sequence[Sequence[float]]
) -> float:
    """``log sum_z0 pi_z0 prod_u sum_k (c [k = z0] + (1 - c) pi_k) exp(L[u][k])``: the group's
    prototype ``z0 ~ pi`` summed out, each user of type ``k`` with probability
    ``c onehot(z0)_k + (1 - c) pi_k`` (README: clones)."""
    K = len(pi)
    per_prototype = []
    for z0 in range(K):
        total = math.log(pi[z0])
        for row in user_logliks:
            weights = [clone * (k == z0) + (1 - clone) * pi[k] for k in range(K)]
            total += logsumexp(
                [math.log(wk) + lk for wk, lk in zip(weights, row, strict=True) if wk > 0]
            )
        per_prototype.append(total)
    return logsumexp(per_prototype)
