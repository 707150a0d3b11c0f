"""The ultimatum game: pots, splits, payoffs, and the currencies a pot can be paid in.

A proposer splits an integer pot of ``N >= 1`` units: it offers ``o`` in ``{0, ..., N}`` units to
the responder and keeps ``N - o``. The responder accepts (payoffs ``(N - o, o)``) or rejects
(payoffs ``(0, 0)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scai.models.errors import RunError, check_count, check_flag

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
#: the original study first, then its out-of-distribution ones; a currency of one's own data is
#: added by :func:`register_currency`.
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


#: A registered currency's name: a table's cell, a command-line choice and an ArviZ coordinate.
CURRENCY_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def register_currency(name: str, unit: str | None = None, *, essential: bool = False) -> Currency:
    """Add a currency of one's own data to :data:`CURRENCIES`, in this process, and return it
    (worker processes need not: a :class:`~scai.models.layout.GroupData` carries its
    currencies' ``essential`` flags). ``unit`` is how a pot is counted in a transcript
    (default: the name); ``essential`` places it among the goods an "essential goods are
    shared" hypothesis shifts (``essential_shift``). The same definition again is a no-op (a
    registered name given no ``unit``: the same ``essential`` flag); another is refused."""
    if not isinstance(name, str) or not CURRENCY_NAME.fullmatch(name):
        raise RunError(
            f"register_currency: name {name!r} is not a currency's name; allowed: 1 to 40 lower "
            "case letters, digits and underscores, starting with a letter (baby_formula)"
        )
    essential = check_flag("essential", essential)
    if unit is None:
        unit = CURRENCIES[name].unit if name in CURRENCIES else name
    if not isinstance(unit, str) or not unit.strip() or not unit.isprintable():
        raise RunError(f"register_currency: unit {unit!r} must be printable text, not empty")
    currency = Currency(name, unit, essential=essential)
    known = CURRENCIES.setdefault(name, currency)
    if known != currency:
        raise RunError(
            f"register_currency: {name!r} is registered (unit {known.unit!r}, essential="
            f"{known.essential}); got unit {unit!r}, essential={essential}"
        )
    return currency


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
