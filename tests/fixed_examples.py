"""What the property-based tests (the Hypothesis library) share: settings that run the same
examples on every run and machine, and a call with scai's diagnostics of tiny groups silenced."""

from __future__ import annotations

import warnings

from hypothesis import HealthCheck

SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def quietly(function, *args, **kwargs):
    """``function(*args, **kwargs)`` with warnings silenced (diagnostics of tiny groups)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)
