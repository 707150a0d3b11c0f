"""Reading the players' messages: a proposal's split and a reply's decision.

Proposals. Users write the template the prompt asks for::

    For the P CURRENCY, the proposer will get X, and the decider will get Y.

(``CURRENCY`` as they chose to name it: ``apples``, ``amount of dollars``...). GPT-4 playing the
assistant mostly does too, and sometimes wraps the template in other text or words the split
freely ("For the 80 blankets, I'm taking 79, and you'll get just 1."). :func:`parse_proposal`
reads, in this order:

1. ``template``: the message opens with the template;
2. ``template_inside``: the template appears later in the message;
3. ``free_text``: the first two consecutive amounts after the first mention of the pot
   that add up to the pot; the first is the proposer's unless a word naming the decider
   ("decider", "you") stands closer before it and one naming the proposer ("proposer", "I",
   "me") closer before the second.

Amounts are read with their decimals ("35.5" is one amount, not 35 and 5). The offer is the
decider's units. A split that does not add up to the pot, an amount that is not whole units
("I keep 35.5 and you get 4.5"; "35.0" is 35), a template naming another pot than the game's,
and a message with no split are errors (:class:`MessageError`).

Replies. Users open with ``Accept`` or ``Reject`` (any case, then anything). GPT-4 playing the
assistant sometimes opens otherwise ("Oh, how generous of them! Accept."); ``lenient=True``
then reads its last whole word ``accept`` or ``reject``, unless a negation ("not", "never", "no",
"n't") stands within the three words before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from scai.models.game import CURRENCIES

#: The forms a proposal can take, in the order they are tried.
PROPOSAL_FORMS = ("template", "template_inside", "free_text")
#: How a reply's decision was read.
REPLY_FORMS = ("opening", "last_word")

# an amount with its decimals, if any: "10.5" is read whole, not as 10 (then 5)
_AMOUNT = r"\d+(?:\.\d+)?"
_TEMPLATE = re.compile(
    rf"For the (?P<pot>{_AMOUNT}) (?P<currency>[^,.!?\n]*?), the proposer will get "
    rf"(?P<keep>{_AMOUNT}), and the decider will get (?P<offer>{_AMOUNT})",
    re.IGNORECASE,
)
_NUMBER = re.compile(_AMOUNT)
_PROPOSER_WORDS = re.compile(r"\b(proposer|I|I'm|I'll|me|myself|mine)\b", re.IGNORECASE)
# "keep" says whose share follows it: its subject's, the decider's where that is named right
# before it ("you keep 70"), else the proposer's ("I'll give you 30 and keep 70": the nearest
# role word before 70 was "you")
_KEEP = re.compile(r"\b(keep|keeps|keeping)\b", re.IGNORECASE)
_DECIDER_KEEPS = re.compile(
    r"\b(decider|you|you'll)\s+(?:(?:will|can|may|shall|get\s+to)\s+)?(keep|keeps)\b",
    re.IGNORECASE,
)
_DECIDER_WORDS = re.compile(r"\b(decider|you|you're|you'll|your|yours|yourself)\b", re.IGNORECASE)
# A share named after its number: up to three words (no punctuation, no word that starts
# another clause) and "for" or "to" a role: "30 for the decider", "30 dollars go to you".
_TRAILING_ROLE = re.compile(
    r"\s*(?:(?!(?:and|or|but|while|whereas|leaving|plus|with|keep|keeps|keeping|compared"
    r"|relative|next|close|up|due|according|than|equal|similar)\b)"
    r"[a-z'-]+\s+){0,3}?(?:for|to)\s+(?:the\s+)?(proposer|decider|me|myself|you|yourself)\b",
    re.IGNORECASE,
)
_OPENING = re.compile(r"^\W*(accept|reject)(?![a-z])", re.IGNORECASE)
_DECISION_WORD = re.compile(r"\b(accept|reject)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(not|never|no|cannot|unable to|refuse to)\b|n't\b", re.IGNORECASE)
#: The most digits an amount may have before its decimal point, and after it (trailing zeros
#: aside): a pot is at most MAX_POT units, and a longer number is none of a split's (Python
#: refuses to read over 4,300 digits as an int; sums of shorter decimals stay exact).
MAX_DIGITS = 9


class MessageError(ValueError):
    """A message that does not say what a proposal or a reply must; ``reason`` is one of
    ``no_split``, ``split_not_pot``, ``amount_not_whole``, ``pot_mismatch``,
    ``currency_mismatch`` (proposals),
    ``no_decision`` (replies)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Proposal:
    """A split of ``pot`` units: the proposer keeps ``keep``, the decider is offered ``offer``."""

    pot: int
    keep: int
    offer: int
    form: str  # one of PROPOSAL_FORMS

    @property
    def offered_share(self) -> float:
        """The offer as a percentage of the pot."""
        return 100.0 * self.offer / self.pot


@dataclass(frozen=True)
class Reply:
    accepted: bool
    form: str  # one of REPLY_FORMS


def parse_proposal(text: str, pot: int, currency: str | None = None) -> Proposal:
    """Read the split a proposal makes of the game's ``pot``; raise :class:`MessageError`. A
    template naming another of scai's currencies than the game's ``currency`` (and not it) is a
    ``currency_mismatch``."""
    match = _TEMPLATE.match(text.lstrip())
    form = "template"
    if match is None:
        match = _TEMPLATE.search(text)
        form = "template_inside"
    if match is not None:
        amounts = [_amount(match[k]) for k in ("pot", "keep", "offer")]
        if None in amounts:
            raise MessageError("split_not_pot", f"an amount of over {MAX_DIGITS} digits")
        _check_whole(amounts, [match[k] for k in ("pot", "keep", "offer")])
        named, keep, offer = (int(a) for a in amounts)
        if keep + offer != named:
            raise MessageError(
                "split_not_pot", f"the split {keep} + {offer} = {keep + offer} is not the pot"
            )
        if named != pot:
            raise MessageError("pot_mismatch", f"names a pot of {named}; the game's pot is {pot}")
        if currency is not None:
            _check_currency(match["currency"], currency)
        return Proposal(pot, keep, offer, form)
    return _free_text_split(text, pot)


def _check_currency(phrase: str, currency: str) -> None:
    """``phrase`` (the template's "For the P ..." words) must not name only other currencies
    than ``currency`` ("amount of dollars" and "fucking apples" name theirs)."""
    words = phrase.lower()
    named = {c for c in CURRENCIES if _stem(c) in words}
    if named and _stem(currency) not in words:
        raise MessageError(
            "currency_mismatch",
            f"names {', '.join(sorted(named))}; the game's currency is {currency}",
        )


def _stem(currency: str) -> str:
    return currency.lower().replace("_", " ").removesuffix("s")


def _amount(text: str) -> Decimal | None:
    """The amount ``text`` (an :data:`_AMOUNT`) writes, exactly; ``None`` if over
    :data:`MAX_DIGITS` digits before or after the point."""
    whole, _, decimals = text.partition(".")
    if len(whole) > MAX_DIGITS or len(decimals.rstrip("0")) > MAX_DIGITS:
        return None
    return Decimal(text)


def _check_whole(amounts: list[Decimal], written: list[str]) -> None:
    """A split is of whole units: "10.5" is an ``amount_not_whole``, "10.0" is 10."""
    bad = [w for a, w in zip(amounts, written, strict=True) if a != a.to_integral_value()]
    if bad:
        raise MessageError(
            "amount_not_whole",
            f"the amount(s) {', '.join(bad)} are not whole units; a split is of whole units",
        )


def _free_text_split(text: str, pot: int) -> Proposal:
    numbers = list(_NUMBER.finditer(text))
    if len(numbers) < 2:
        raise MessageError("no_split", "no split found: fewer than two numbers")
    values = [_amount(m[0]) for m in numbers]
    # The pot's own mention ("For the 92 apples") is not part of the split; when the message
    # never names the pot apart from the split, every number is a candidate.
    starts = [values.index(pot) + 1, 0] if pot in values else [0]
    for start in starts:
        for i in range(start, len(numbers) - 1):
            a, b = values[i], values[i + 1]
            if a is not None and b is not None and a + b == pot:
                first, second = numbers[i], numbers[i + 1]
                _check_whole([a, b], [first[0], second[0]])
                keep, offer = int(a), int(b)
                opening = numbers[i - 1].end() if i > 0 else 0
                roles = _roles(text, opening, first, second)
                if roles == ("decider", "proposer"):
                    keep, offer = offer, keep
                return Proposal(pot, keep, offer, "free_text")
    shown = ", ".join(str(v) for v in values)  # as written, "None" for too long
    raise MessageError(
        "split_not_pot", f"no two consecutive amounts add up to the pot ({pot}): [{shown}]"
    )


def _roles(text: str, opening: int, first: re.Match, second: re.Match) -> tuple:
    """Whose shares the split's two numbers are (``"proposer"``, ``"decider"`` or None each).
    Each number's role is the one named right after it ("30 go to you", "30 for the decider":
    :func:`_after`), else the one its own clause names before it (from the number before it,
    ``opening`` for the first): where these give the two numbers different roles, those
    ("You get 30, leaving 50 to me"). Otherwise each number is the share of the role word
    standing closest before it in the whole message (:func:`_speaker`)."""
    own = []
    for number, start, end in (
        (first, opening, second.start()),
        (second, first.end(), len(text)),
    ):
        clause = text[start : number.start()]
        own.append(_after(text, number.end(), end) or _speaker(clause, len(clause)))
    if None not in own and own[0] != own[1]:
        return tuple(own)
    return _speaker(text, first.start()), _speaker(text, second.start())


def _after(text: str, start: int, end: int) -> str | None:
    """The role a number ending at ``start`` is given by the words right after it and before
    ``end`` ("... 30 dollars go to you": the decider), or None (:data:`_TRAILING_ROLE`)."""
    match = _TRAILING_ROLE.match(text, start, end)
    if match is None:
        return None
    return "proposer" if _PROPOSER_WORDS.fullmatch(match[1]) else "decider"


def _speaker(text: str, position: int) -> str | None:
    """Whose share a number at ``position`` is, by the role word standing closest before it
    (a "keep" standing for its subject: see :data:`_KEEP`)."""
    before = text[:position]
    last_p = max((m.end() for m in _PROPOSER_WORDS.finditer(before)), default=-1)
    last_d = max((m.end() for m in _DECIDER_WORDS.finditer(before)), default=-1)
    last_k = max((m.end() for m in _KEEP.finditer(before)), default=-1)
    if last_p == last_d == last_k == -1:
        return None
    if last_k > max(last_p, last_d):
        deciders = {m.end() for m in _DECIDER_KEEPS.finditer(before)}
        return "decider" if last_k in deciders else "proposer"
    return "proposer" if last_p > last_d else "decider"


def parse_reply(text: str, lenient: bool = False) -> Reply:
    """Read a decision: the opening word, or (``lenient``) the last decision word."""
    opening = _OPENING.match(text)
    if opening is not None:
        return Reply(opening[1].lower() == "accept", "opening")
    if lenient:
        words = list(_DECISION_WORD.finditer(text))
        if words:
            last = words[-1]
            preceding = text[: last.start()].split()[-3:]
            if not _NEGATION.search(" ".join(preceding)):
                return Reply(last[1].lower() == "accept", "last_word")
            raise MessageError("no_decision", f"the last decision word is negated: {preceding}")
    first = text.split()[0] if text.split() else ""
    raise MessageError("no_decision", f"opens with {first!r}" if first else "empty")
