"""The ultimatum game: pots, splits, payoffs, and the currencies a pot can be paid in.

A proposer splits an integer pot of ``N >= 1`` units: it offers ``o`` in ``{0, ..., N}`` units to
the responder and keeps ``N - o``. The responder accepts (payoffs ``(N - o, o)``) or rejects
(payoffs ``(0, 0)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from scai.models.errors import RunError, check_count

MAX_POT = 1000


@dataclass(frozen=True)
class Currency:
    """A good the pot is paid in. ``essential`` goods (medicine, blood, baby formula) are the
    ones an "essential goods are shared" hypothesis treats differently."""

    name: str
    unit: str
    essential: bool = False

    def describe(self, amount: int) -> str:
        """``"3 of 40 apples"``-style rendering helper: ``"3 apples"``."""
        return f"{amount} {self.unit}"


#: The registry of currencies: the one place a currency name is defined. Training currencies of
#: the original study first, then its out-of-distribution ones.
CURRENCIES: dict[str, Currency] = {
    c.name: c
    for c in (
        Currency("apples", "apples"),
        Currency("blankets", "blankets"),
        Currency("dollars", "dollars"),
        Currency("medicine", "grams of medicine", essential=True),
        Currency("blood", "pints of blood", essential=True),
        Currency("baby_formula", "liters of baby formula", essential=True),
        Currency("cents", "cents"),
    )
}
TRAINING_CURRENCIES = ("apples", "blankets", "dollars")
OOD_CURRENCIES = ("medicine", "blood", "baby_formula")


def get_currency(name: str) -> Currency:
    """Look a currency up by name, failing with the allowed names."""
    if not isinstance(name, str) or name not in CURRENCIES:  # (None, a list: not a name)
        raise RunError(f"unknown currency {name!r}; allowed: {', '.join(CURRENCIES)}")
    return CURRENCIES[name]


def check_pot(pot: int) -> int:
    """Return ``pot`` if it is a valid pot (an integer number of units in 1..MAX_POT)."""
    return check_count("pot", pot, 1, MAX_POT)


def payoffs(pot: int, offer: int, accepted: bool) -> tuple[int, int]:
    """(proposer, responder) payoffs of one game."""
    check_pot(pot)
    check_count("offer", offer, 0, pot)
    return (pot - offer, offer) if accepted else (0, 0)
