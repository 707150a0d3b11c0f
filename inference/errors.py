"""Errors raised before any inference runs."""


class EngineError(ValueError):
    """An engine was asked for something it cannot do; the message names what to use instead."""
