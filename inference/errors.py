"""Errors raised before any inference runs."""

from scai.models.errors import ScaiError


class EngineError(ScaiError):
    """An engine was asked for something it cannot do, or given an option out of range; the
    message names the option and what is allowed or what to use instead."""


def no_table(what: str) -> EngineError:
    """The error of ``what`` (``update``, ``to_arviz``) asked of a posterior that holds no
    interaction table: one from an engine function called directly with ``table=None``."""
    return EngineError(
        f"{what}: the posterior holds no interaction table (an engine function called "
        "directly, with table=None); fit() keeps it, or pass table= to the engine"
    )
