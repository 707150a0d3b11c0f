"""A message's text as the default reader sees it: masked, then cut into n-grams.

Numbers (pots, splits), currency words and the opening decision word carry no tone, and a
reader trained on them learns a condition's currency or policy instead of its tone ("Reject"
is what selfish responders say, rude or not). :func:`mask_text` replaces them, in the
lower-cased text, by placeholders::

    "For the 77 apples, the proposer will get 1, ..."  ->  "for the _n_ _currency_, ..."
    "Reject. Nice try, loser."                          ->  "_decision_. nice try, loser."

:func:`features` then lists the masked text's word n-grams (``w:``; words and punctuation
marks are tokens) and character n-grams within each whitespace-separated token padded with a
space (``c:``, scikit-learn's ``char_wb``). The settings are part of a saved reader
(:class:`FeatureSettings`), so that a reader reads later text exactly as it was trained, even
after scai's currency registry grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scai.models.game import CURRENCIES

NUMBER = "_n_"
CURRENCY = "_currency_"
DECISION = "_decision_"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DECISION = re.compile(r"^\W*(?:accept|reject)(?:ed|s)?\b")
_TOKEN = re.compile(r"\w+|[^\w\s]")
#: A message's tone is read from its first this many characters: the n-grams of one 5 MB
#: message took 7.7 s and 1.15 GB to list (the logs' longest message has 525 characters).
MAX_CHARS = 20_000


def registry_currency_phrases() -> tuple[str, ...]:
    """The currency names of scai's registry as they appear in text (``baby formula``),
    each read in the singular and the plural (``apple`` and ``apples``)."""
    phrases = set()
    for name in CURRENCIES:
        phrase = name.replace("_", " ").lower()
        stem = phrase.removesuffix("s")
        phrases.update({stem, stem + "s"})
    return tuple(sorted(phrases, key=lambda p: (-len(p), p)))


@dataclass(frozen=True)
class FeatureSettings:
    """How text becomes features: word and character n-gram ranges (both ends included;
    ``(0, 0)`` for none) and what is masked."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    currency_phrases: tuple[str, ...] = field(default_factory=registry_currency_phrases)
    mask_numbers: bool = True
    mask_decision: bool = True

    def __post_init__(self) -> None:
        for name in ("word_ngrams", "char_ngrams"):
            low, high = getattr(self, name)
            if not (0 <= low <= high <= 10) or (low == 0) != (high == 0):
                raise ValueError(
                    f"{name}: must be (low, high) with 1 <= low <= high <= 10 or (0, 0), "
                    f"got {(low, high)}"
                )
        if self.word_ngrams == (0, 0) and self.char_ngrams == (0, 0):
            raise ValueError("no features: word_ngrams and char_ngrams are both (0, 0)")
        object.__setattr__(self, "_currency", _phrase_pattern(self.currency_phrases))

    def to_dict(self) -> dict:
        return {
            "word_ngrams": list(self.word_ngrams),
            "char_ngrams": list(self.char_ngrams),
            "currency_phrases": list(self.currency_phrases),
            "mask_numbers": self.mask_numbers,
            "mask_decision": self.mask_decision,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> FeatureSettings:
        for key in ("mask_numbers", "mask_decision"):  # bool("no") is True
            if not isinstance(raw[key], bool):
                raise ValueError(f"{key} must be true or false, got {raw[key]!r}")
        return cls(
            word_ngrams=tuple(raw["word_ngrams"]),
            char_ngrams=tuple(raw["char_ngrams"]),
            currency_phrases=tuple(raw["currency_phrases"]),
            mask_numbers=bool(raw["mask_numbers"]),
            mask_decision=bool(raw["mask_decision"]),
        )


def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern | None:
    if not phrases:
        return None
    words = sorted(phrases, key=lambda p: (-len(p), p))  # the longest phrase first
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in words) + r")\b")


def mask_text(text: str, settings: FeatureSettings) -> str:
    """``text`` lower-cased, its numbers, currency words and opening decision masked."""
    masked = text.lower().strip()
    if settings.mask_decision:
        masked = _DECISION.sub(DECISION, masked, count=1)
    if settings._currency is not None:
        masked = settings._currency.sub(CURRENCY, masked)
    if settings.mask_numbers:
        masked = _NUMBER.sub(NUMBER, masked)
    return masked


def features(text: str, settings: FeatureSettings) -> list[str]:
    """The n-grams of the masked text (module docstring), with repetitions; of its first
    :data:`MAX_CHARS` characters."""
    masked = mask_text(text[:MAX_CHARS], settings)
    out: list[str] = []
    low, high = settings.word_ngrams
    if high:
        tokens = _TOKEN.findall(masked)
        for n in range(low, high + 1):
            out.extend("w:" + " ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    low, high = settings.char_ngrams
    if high:
        for word in masked.split():
            padded = f" {word} "
            for n in range(low, high + 1):
                out.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return out
