"""The caller's global random state, kept across scai's seeded work."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

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
