"""The warnings a hypothesis gives: settings that are not used or change nothing, and policy
types no data can tell apart; and the warnings caught while one was built, told again at the
user's line under the name of where it came from (a file, ``with_``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

from scai.models.errors import (
    HypothesisWarning,
    StereotypeStrengthWarning,
    UnusedLapseWarning,
    outside_scai,
)

if TYPE_CHECKING:
    from scai.models.hypothesis_spec import Hypothesis

#: The frames between a user and a hypothesis's ``__post_init__``: the dataclass's generated
#: ``__init__`` and ``replace`` (``with_``).
_DATACLASS_FRAMES = (dataclasses.__file__, "<string>:__init__")


def warn_unused_fixed_values(hypothesis: Hypothesis) -> None:
    """An :class:`UnusedLapseWarning` for a fixed ``lapse`` beside a ``lapse_prior``, and a
    :class:`StereotypeStrengthWarning` for a fixed ``stereotype_strength`` beside a
    ``stereotype_prior`` (and a table): the prior learns it, the fixed value is not used."""
    if hypothesis.lapse and hypothesis.lapse_prior is not None:  # a file's, with_'s or a caller's
        why = (
            f"lapse = {hypothesis.lapse} is not used: lapse_prior learns it (a Beta prior); drop "
            "lapse, or lapse_prior to keep it fixed"
        )
        warnings.warn(UnusedLapseWarning(why), stacklevel=outside_scai(also=_DATACLASS_FRAMES))
    strength = hypothesis.stereotype_strength
    if strength and hypothesis.stereotype_prior is not None and hypothesis.stereotype:
        why = (  # (without a table, a file's or with_'s strength is told as inert)
            f"stereotype_strength = {strength:g} is not used: "
            "stereotype_prior learns the strength (a Beta prior); drop stereotype_strength, "
            "or stereotype_prior to keep it fixed"
        )
        warnings.warn(
            StereotypeStrengthWarning(why), stacklevel=outside_scai(also=_DATACLASS_FRAMES)
        )


def warn_identical_types(hypothesis: Hypothesis) -> None:
    """A :class:`HypothesisWarning` for types that act alike in both roles and, where manners
    are tied to types, have the same stereotype: no data can tell them apart, and their shares
    of ``pi`` split what one would hold."""
    seen: dict[tuple, str] = {}
    for p in hypothesis.policies:
        row = hypothesis.stereotype.get(p.name, {}) if hypothesis.ties_manners_to_types else {}
        total = sum(row.values()) or 1.0
        manners = tuple(sorted((m, v / total) for m, v in row.items() if v))
        acts = (p.w, p.alpha, p.beta, p.responder or (p.w, p.alpha, p.beta), manners)
        if acts in seen:
            warnings.warn(
                HypothesisWarning(
                    f"policies: {seen[acts]!r} and {p.name!r} have the same parameters in both "
                    "roles: no data can tell them apart (their shares of pi split one type's)"
                ),
                # the user's line: past the dataclass's __init__ and ``replace`` (``with_``)
                stacklevel=outside_scai(also=_DATACLASS_FRAMES),
            )
        seen.setdefault(acts, p.name)


def tell_again(
    records: list[warnings.WarningMessage], source: str, skip: tuple[type, ...] = ()
) -> None:
    """Warn again of ``records`` (caught while a hypothesis was built) at the caller's line,
    a :class:`HypothesisWarning` named by ``source``, those of a ``skip`` class left out: the
    caller's filters apply as they re-emerge."""
    for record in records:
        message = record.message
        if isinstance(message, skip):
            continue
        if isinstance(message, HypothesisWarning):
            message = type(message)(f"{source}: {message}")
        warnings.warn(message, stacklevel=outside_scai())


def warn_inert_stereotype(given: Iterable[str], hypothesis: Hypothesis, source: str) -> None:
    """A :class:`StereotypeStrengthWarning` for a stereotype setting that changes nothing, where
    ``given`` names the settings the user gave (a file's keys, ``with_``'s changes): a
    ``[stereotype]`` table without ``stereotype_strength`` (its default, 0, ties no manner to a
    type) or ``stereotype_prior``, and a strength, fixed or learned (``stereotype_prior``: on a
    grid twelve times larger), without a ``[stereotype]`` table to mix in."""
    given = set(given)
    learned = hypothesis.stereotype_prior is not None
    unset = "stereotype_strength" not in given and not learned  # (a prior of None: unset)
    if "stereotype" in given and hypothesis.stereotype and unset:
        if hypothesis.stereotype_strength == 0:
            why = (
                "the [stereotype] table changes nothing: stereotype_strength is 0 by default; "
                "set it (e.g. 0.8), or stereotype_prior to learn it"
            )
            warnings.warn(StereotypeStrengthWarning(f"{source}: {why}"), stacklevel=outside_scai())
    elif hypothesis.stereotype:
        return
    elif learned and {"stereotype_prior", "stereotype"} & given:  # (it overrides a strength)
        why = (
            "stereotype_prior learns the strength of a stereotype, but there is no [stereotype] "
            "table: it changes nothing (and costs a grid of strengths)"
        )
        warnings.warn(StereotypeStrengthWarning(f"{source}: {why}"), stacklevel=outside_scai())
    elif hypothesis.stereotype_strength and {"stereotype_strength", "stereotype"} & given:
        why = (
            f"stereotype_strength = {hypothesis.stereotype_strength:g} changes nothing: there "
            "is no [stereotype] table (manner weights of a type) for it to mix in"
        )
        warnings.warn(StereotypeStrengthWarning(f"{source}: {why}"), stacklevel=outside_scai())
