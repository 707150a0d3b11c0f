"""Comparing an engine's estimates with the exact engine's, element by element."""

from __future__ import annotations

import numpy as np
import torch


def assert_close(name: str, got: torch.Tensor, want: torch.Tensor, tol: float, engine: str):
    """Assert ``max |got - want| <= tol``; the message names the worst element and both values
    (``engine`` labels ``got``; ``want`` is the exact engine's)."""
    diff = (got.double() - want.double()).abs()
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    print(f"{name}: max |difference| {float(diff.max()):.4f} at {worst}")
    assert float(diff.max()) <= tol, (
        f"{name}: max |difference| {float(diff.max()):.4f} > {tol} at {worst} "
        f"({engine} {float(got[worst]):.4f}, exact {float(want[worst]):.4f})"
    )
