"""Independent reference formulas for the tests, in plain Python floats (no torch, no models).

Written straight from the maths in ``models/policies.py`` and ``models/language.py`` docstrings
so that the vectorised tables and the Pyro model can be checked against something that shares
none of their code.
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


def offer_logps(pot: int, w: float, alpha: float, beta: float, lam: float) -> list[float]:
    """``log P(offer = o)`` for ``o = 0..pot``: softmax of ``lam * P_accept(o) * U(pot - o, o)``
    where the proposer expects a responder of its own type."""
    logits = []
    for o in range(pot + 1):
        p_acc = sigmoid(accept_logit(pot, o, w, alpha, beta, lam))
        logits.append(lam * p_acc * utility(pot - o, o, w, alpha, beta))
    top = max(logits)
    norm = top + math.log(sum(math.exp(v - top) for v in logits))
    return [v - norm for v in logits]


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
