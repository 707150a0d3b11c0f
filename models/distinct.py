"""Distinct rows of a tensor, found by their bytes."""

from __future__ import annotations

import numpy as np
import torch


def distinct_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For ``rows [n, d]`` (floating point, no NaN): the first index of each distinct row,
    for every row the position of its distinct row in that list, and each distinct row's
    count; the distinct rows in an unspecified order. The rows ``torch.unique(rows, dim=0)``
    finds equal, found by comparing each row's bytes (one sort of ``n`` keys rather than a
    lexicographic sort over ``d`` columns: ~7x faster on 10,000 rows of 31), with ``-0.0``
    made ``0.0`` first (equal as numbers, not as bytes)."""
    n, d = rows.shape
    values = np.ascontiguousarray((rows.detach() + 0.0).numpy())
    keys = values.view(np.dtype((np.void, values.dtype.itemsize * d))).reshape(n)
    _, first, which, counts = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    return (
        torch.from_numpy(first).long(),
        torch.from_numpy(which.reshape(n)).long(),
        torch.from_numpy(counts).long(),
    )


def sorted_distinct_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(rows, dim=0, return_inverse=True)`` for ``rows [n, d]`` (floating point,
    no NaN): the distinct rows in lexicographic order and, for every row, the position of its
    distinct row (of rows that differ only in the sign of a zero the first is kept, where torch
    keeps whichever its unstable sort puts first). By one stable lexicographic sort in NumPy,
    without torch's comparison of rows one pair at a time (~15x faster on the few hundred grid
    points of a fit)."""
    n, d = rows.shape
    values = rows.detach().numpy()  # (compared as numbers: -0.0 and 0.0 are one row)
    order = np.lexsort(values.T[::-1]) if d else np.zeros(n, dtype=np.int64)  # column 0 first
    ordered = values[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(-1)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return rows[torch.from_numpy(order[starts])], torch.from_numpy(inverse)
