"""Errors raised before any inference runs."""

from scai.models.errors import ScaiError


class EngineError(ScaiError):
    """An engine was asked for something it cannot do, or given an option out of range; the
    message names the option and what is allowed or what to use instead."""
