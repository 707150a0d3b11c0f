"""The caller's global random state, kept across scai's seeded work."""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import torch


@contextlib.contextmanager
def callers_random_state_kept() -> Iterator[None]:
    """Python's, NumPy's and torch's global random states as they were on entry, restored on
    exit. scai's seeded work (``simulate``, the SVI and MCMC engines) seeds them through
    ``pyro.set_rng_seed``, so that a seed gives the same result; without this, a notebook's
    own random numbers after ``fit`` or ``simulate`` would be those of scai's seed."""
    python, numpy, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(torch_state)


F = TypeVar("F", bound=Callable)


def keeps_callers_random_state(function: F) -> F:
    """``function`` run inside :func:`callers_random_state_kept`: for the engines that seed the
    global generators (SVI, MCMC), however they are reached (``fit``, ``update``, directly)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with callers_random_state_kept():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
