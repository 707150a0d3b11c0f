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


#: What each feature setting may be (a reader file's ``features``; :class:`FeatureSettings`).
ALLOWED_SETTINGS: dict[str, str] = {
    "word_ngrams": "must be [low, high]: whole numbers with 1 <= low <= high <= 10, or [0, 0] "
    "for none",
    "char_ngrams": "must be [low, high]: whole numbers with 1 <= low <= high <= 10, or [0, 0] "
    "for none",
    "currency_phrases": "must be a list of non-empty lower-case strings (the text is "
    "lower-cased before they are masked), each beginning and ending with a letter or digit",
    "mask_numbers": "must be true or false",
    "mask_decision": "must be true or false",
}
_PHRASE = re.compile(r"[^\W_](?:.*[^\W_])?", re.DOTALL)


class SettingError(ValueError):
    """A feature setting that is not allowed: its ``key``, ``value`` and what is ``allowed``."""

    def __init__(self, key: str, value: object, allowed: str):
        super().__init__(f"{key}: {allowed}, got {value!r}"[:300])
        self.key, self.value, self.allowed = key, value, allowed


@dataclass(frozen=True)
class FeatureSettings:
    """How text becomes features: word and character n-gram ranges (both ends included;
    ``(0, 0)`` for none) and what is masked; a :class:`SettingError` if a setting is not one
    :data:`ALLOWED_SETTINGS` allows."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    currency_phrases: tuple[str, ...] = field(default_factory=registry_currency_phrases)
    mask_numbers: bool = True
    mask_decision: bool = True

    def __post_init__(self) -> None:
        for name in ("word_ngrams", "char_ngrams", "currency_phrases"):  # lists read as tuples
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("word_ngrams", "char_ngrams"):
            value = getattr(self, name)
            if not _is_ngram_range(value):
                raise SettingError(name, value, ALLOWED_SETTINGS[name])
        if self.word_ngrams == (0, 0) and self.char_ngrams == (0, 0):
            why = (
                "no features: word_ngrams and char_ngrams are both [0, 0]; at least one must be "
                "[low, high] with 1 <= low <= high <= 10"
            )
            raise SettingError("word_ngrams", self.word_ngrams, why)
        phrases = self.currency_phrases
        if not isinstance(phrases, tuple) or not all(_is_phrase(p) for p in phrases):
            raise SettingError("currency_phrases", phrases, ALLOWED_SETTINGS["currency_phrases"])
        for name in ("mask_numbers", "mask_decision"):  # bool("no") is True
            if not isinstance(getattr(self, name), bool):
                raise SettingError(name, getattr(self, name), ALLOWED_SETTINGS[name])
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
    def from_dict(cls, raw: object) -> FeatureSettings:
        """The settings :meth:`to_dict` wrote (lists for the tuples); a :class:`SettingError`
        naming the key (``""`` for ``raw`` itself) if one is missing, unknown or not allowed
        (a string is no list: "dollars" was read as its letters)."""
        allowed = f"a table of {', '.join(ALLOWED_SETTINGS)}"
        if not isinstance(raw, dict):
            raise SettingError("", raw, f"must be {allowed}")
        for key in ALLOWED_SETTINGS:
            if key not in raw:
                raise SettingError(key, None, f"missing; {ALLOWED_SETTINGS[key]}")
        unknown = [k for k in raw if k not in ALLOWED_SETTINGS]
        if unknown:
            raise SettingError(unknown[0], raw[unknown[0]], f"unknown setting; allowed: {allowed}")
        try:
            return cls(**{key: raw[key] for key in ALLOWED_SETTINGS})
        except SettingError as err:  # the value as written (a list, not the tuple it became)
            raise SettingError(err.key, raw[err.key], err.allowed) from None


def _is_ngram_range(value: object) -> bool:
    """``(low, high)``, whole numbers (not true/false) with 1 <= low <= high <= 10, or
    ``(0, 0)``."""
    if not isinstance(value, tuple) or len(value) != 2:
        return False
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return False
    low, high = value
    return value == (0, 0) or 1 <= low <= high <= 10


def _is_phrase(phrase: object) -> bool:
    """A currency phrase: lower-case, beginning and ending with a letter or digit (so that the
    word boundaries around it hold: "" matched at every one)."""
    return isinstance(phrase, str) and phrase == phrase.lower() and bool(_PHRASE.fullmatch(phrase))


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
    return _ngrams(mask_text(text[:MAX_CHARS], settings), settings)


#: The placeholders of what carries no tone in any message: numbers and currency words.
_TONELESS = re.compile(f"{re.escape(NUMBER)}|{re.escape(CURRENCY)}")


#: A letter (of any script): what an n-gram needs to say anything of a tone.
_LETTER = re.compile(r"[^\W\d_]")


def content_features(text: str, settings: FeatureSettings) -> list[str]:
    """:func:`features` of the masked text without its number and currency placeholders, those
    with a letter: what of it may say a tone ("5", "5 apples.", "50%!": nothing; a bare
    "Accept." its decision)."""
    masked = _TONELESS.sub(" ", mask_text(text[:MAX_CHARS], settings))
    return [f for f in _ngrams(masked, settings) if _LETTER.search(f, 2)]  # (after "w:", "c:")


def _ngrams(masked: str, settings: FeatureSettings) -> list[str]:
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
