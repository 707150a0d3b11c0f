"""Language: how users talk, and how what they say relates to their policy.

Each user ``u`` has a manner ``m_u`` drawn from its policy's row of the manner-policy coupling
``rho`` (the "stereotype": rude goes with selfish, sycophantic with altruistic). Every message
carries an observed tone ``t ~ Categorical(E[m_u])`` from a manner-to-tone emission table
``E``. The model sees tones; readable utterances are rendered from tones for transcripts.

``rho[k] = (1 - s) * uniform + s * stereotype[k]`` with stereotype strength ``s`` in [0, 1]:
``s = 0`` says language carries no information about policy.

When tones are not observed but read from text by a tone reader (:mod:`scai.models.tone_reader`),
the reader's confusion matrix ``R[tone, t] = P(reader reports t | tone)`` is part of the
observation: the model scores a reported tone with ``(E @ R)[m, t] = sum_tone E[m, tone]
R[tone, t]`` (:meth:`scai.models.hypotheses.Hypothesis.emission`), so a reader's mistakes cost
evidence in proportion to how often it makes them. :func:`check_confusion` validates ``R``.
"""

from __future__ import annotations

import random

import torch

#: The registry of manners; tones use the same names (a tone is a manner heard in one message).
MANNERS: tuple[str, ...] = ("neutral", "polite", "rude", "sycophantic")
TONES: tuple[str, ...] = MANNERS

#: Probability that a message's tone matches its speaker's manner.
DEFAULT_TONE_FIDELITY = 0.85


def check_manner(name: str) -> str:
    if name not in MANNERS:
        raise ValueError(f"unknown manner {name!r}; allowed: {', '.join(MANNERS)}")
    return name


def emission_table(fidelity: float = DEFAULT_TONE_FIDELITY) -> torch.Tensor:
    """``E[m, t] = P(tone t | manner m)``: ``fidelity`` on the diagonal, the rest spread evenly."""
    if not 0 < fidelity <= 1:
        raise ValueError(f"tone_fidelity must be in (0, 1], got {fidelity!r}")
    n = len(MANNERS)
    off = (1 - fidelity) / (n - 1)
    return torch.full((n, n), off) + torch.eye(n) * (fidelity - off)


#: How far a confusion matrix's row may sum from 1 (JSON and TOML keep floats exactly; this
#: allows a matrix written by hand with a few decimals, e.g. thirds as 0.333333).
CONFUSION_TOLERANCE = 1e-6


def check_confusion(matrix: object, name: str = "confusion") -> tuple[tuple[float, ...], ...]:
    """``matrix`` as a tuple of float rows if it is a confusion matrix over :data:`MANNERS`:
    ``M x M`` (rows: the true tone, columns: the reported one, both in :data:`MANNERS` order),
    every entry a number in [0, 1], every row summing to 1 (within
    :data:`CONFUSION_TOLERANCE`); else a ``ValueError`` naming ``name``, the row and the value.
    """
    n = len(MANNERS)
    shape = f"{n} rows of {n} numbers (rows and columns: {', '.join(MANNERS)})"
    if not isinstance(matrix, tuple | list) or len(matrix) != n:
        raise ValueError(f"{name}: must be {shape}, got {_short(matrix)}")
    rows = []
    for i, row in enumerate(matrix):
        where = f"{name}[{i}] ({MANNERS[i]})"
        if not isinstance(row, tuple | list) or len(row) != n:
            raise ValueError(f"{where}: must be a row of {n} numbers, got {_short(row)}")
        for value in row:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and 0 <= value <= 1):  # False for NaN
                raise ValueError(f"{where}: entries must be numbers in [0, 1], got {_short(row)}")
        if abs(sum(row) - 1) > CONFUSION_TOLERANCE:
            raise ValueError(
                f"{where}: a row is P(reported | tone) and must sum to 1, got {_short(row)} "
                f"(sum {sum(row):.9g})"
            )
        rows.append(tuple(float(v) for v in row))
    return tuple(rows)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def coupling_table(
    policy_names: tuple[str, ...],
    stereotype: dict[str, dict[str, float]],
    strength: float,
) -> torch.Tensor:
    """``rho[k, m] = P(manner m | policy k)``, mixing uniform with the stereotype rows.

    ``stereotype`` maps a policy name to manner weights (normalised here); policies it does not
    mention get a uniform row.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"stereotype_strength must be in [0, 1], got {strength!r}")
    n = len(MANNERS)
    rows = []
    for name in policy_names:
        weights = torch.full((n,), 1.0 / n)
        if name in stereotype:
            # normalised in float64: the weights are relative, and tiny ones (1e-300, in
            # range) would round to 0 in float32 and make the row 0 / 0
            raw = torch.tensor(
                [float(stereotype[name].get(m, 0.0)) for m in MANNERS], dtype=torch.float64
            )
            weights = (raw / raw.sum()).to(torch.get_default_dtype())
        rows.append((1 - strength) / n + strength * weights)
    return torch.stack(rows)


# Readable utterances per tone. ``{offer}``, ``{pot}``, ``{unit}`` are filled in.
_PROPOSALS: dict[str, tuple[str, ...]] = {
    "neutral": (
        "I offer you {offer} of {pot} {unit}.",
        "My proposal: {offer} of {pot} {unit} for you.",
    ),
    "polite": (
        "Would you kindly consider {offer} of {pot} {unit}? Thank you.",
        "If it suits you, I would like to offer {offer} of {pot} {unit}.",
    ),
    "rude": (
        "{offer} of {pot} {unit} for you. Take it or leave it, fool.",
        "Here, {offer} of {pot} {unit}. Don't waste my time.",
    ),
    "sycophantic": (
        "You wonderful soul, {offer} of {pot} {unit} are yours; you deserve every bit!",
        "For someone as brilliant as you, {offer} of {pot} {unit}. What an honour!",
    ),
}
_REPLIES: dict[tuple[str, bool], tuple[str, ...]] = {
    ("neutral", True): ("I accept.", "Deal."),
    ("neutral", False): ("I reject.", "No deal."),
    ("polite", True): ("Thank you, I gladly accept.",),
    ("polite", False): ("Thank you, but I must respectfully decline.",),
    ("rude", True): ("Fine, whatever.", "Hand it over."),
    ("rude", False): ("Insulting. No.", "Keep your scraps."),
    ("sycophantic", True): ("How generous you are, a thousand thanks!",),
    ("sycophantic", False): ("You are so wise, but I must humbly refuse.",),
}


def render_proposal(tone: str, offer: int, pot: int, unit: str, rng: random.Random) -> str:
    """A readable proposal in the given tone, chosen by ``rng`` (deterministic for a seed)."""
    template = rng.choice(_PROPOSALS[check_manner(tone)])
    return template.format(offer=offer, pot=pot, unit=unit)


def render_reply(tone: str, accepted: bool, rng: random.Random) -> str:
    """A readable acceptance or rejection in the given tone."""
    return rng.choice(_REPLIES[(check_manner(tone), bool(accepted))])
