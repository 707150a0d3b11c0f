"""Names in a hypothesis: the rules a hypothesis's and a policy type's names follow.

A hypothesis's name becomes part of file names and one-line messages (:func:`check_name`); its
policy types' names must read apart in a table (:func:`look_alike_key`) and not be the id
columns of a users' type table (:data:`RESERVED_POLICY_NAMES`).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from scai.models.errors import HypothesisError
from scai.models.errors import show_value as _show

#: The longest hypothesis name (names become file names, e.g. posterior_<name>.nc).
MAX_NAME_LENGTH = 100


#: Names a policy may not have: the id columns of :meth:`Posterior.policy_table`.
RESERVED_POLICY_NAMES = ("sim", "user")


#: Cyrillic and Greek letters drawn like Latin ones (after case folding), by the Latin letter
#: they look like: Unicode's confusables for these alphabets' lower case, the few a name of
#: a type is likely to hold (the full table is thousands of entries across every script).
LATIN_LOOK_ALIKES = {
    **dict.fromkeys("аα", "a"),
    **dict.fromkeys("сϲ", "c"),
    "ԁ": "d",
    **dict.fromkeys("еε", "e"),
    "һ": "h",
    **dict.fromkeys("іι", "i"),
    "ј": "j",
    **dict.fromkeys("кκ", "k"),
    "η": "n",
    **dict.fromkeys("оο", "o"),
    **dict.fromkeys("рρ", "p"),
    "ԛ": "q",
    "ѕ": "s",
    **dict.fromkeys("тτ", "t"),
    "υ": "u",
    "ν": "v",
    **dict.fromkeys("хχ", "x"),
    **dict.fromkeys("уγ", "y"),
}
_LOOK_ALIKES = str.maketrans(LATIN_LOOK_ALIKES)


def look_alike_key(name: str) -> str:
    """What ``name`` looks like: case folded, in Unicode's compatibility forms (NFKC: a
    full-width letter is its letter) and with Cyrillic and Greek letters drawn like Latin ones
    as those (:data:`LATIN_LOOK_ALIKES`). Two names of one key read the same in a table."""
    return unicodedata.normalize("NFKC", name).casefold().translate(_LOOK_ALIKES)


def check_name(name: Any) -> None:
    """A name becomes part of file names and of one-line messages: no path separators, ``..``,
    control characters or line breaks, no space at either end."""
    if not isinstance(name, str):
        raise HypothesisError(f"name: must be a string, got {_show(name)}")
    # (controls and format characters: category C; line and paragraph separators: Zl, Zp)
    bad = [c for c in name if c in "/\\\u2028\u2029" or unicodedata.category(c)[0] == "C"]
    if not 1 <= len(name) <= MAX_NAME_LENGTH or bad or ".." in name or name != name.strip():
        raise HypothesisError(
            f"name: {_show(name)} is not allowed: names become file names, so they need 1 to "
            f"{MAX_NAME_LENGTH} characters without path separators (/ or \\), '..', control "
            "characters, line breaks or spaces at either end"
        )


def check_policy_names(names: tuple[str, ...]) -> None:
    """A hypothesis's policy types need names a table tells apart: unique, not alike but for
    how they are drawn (:func:`look_alike_key`), none of :data:`RESERVED_POLICY_NAMES`."""
    if len(set(names)) != len(names):
        raise HypothesisError(f"policies: names must be unique, got {list(names)}")
    # "ｓelfish" (a full-width s) or "fаir" (a Cyrillic а) beside "selfish" or "fair": two
    # types that no figure or table tells apart (a red-team find; a review)
    seen: dict[str, str] = {}
    for name in names:
        key = look_alike_key(name)
        if key in seen:
            raise HypothesisError(
                f"policies: {seen[key]!r} and {name!r} look alike (the same letters but for "
                "case, Unicode's compatibility forms or Cyrillic and Greek letters that look "
                "Latin): name the types apart"
            )
        seen[key] = name
    if clash := [n for n in names if n in RESERVED_POLICY_NAMES]:
        raise HypothesisError(
            f"policies: {clash[0]!r} is the name of an id column of the users' type table "
            f"({', '.join(RESERVED_POLICY_NAMES)}); choose another name"
        )
