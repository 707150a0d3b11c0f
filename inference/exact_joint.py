"""The exact engine's log joint on a grid: the group log-likelihood at every point of the
lattice of pi, in blocks that fit in memory (:func:`group_loglik`), its normalisation into
posterior weights (:func:`normalise`), the latent scalars' marginal (:func:`log_marginal`) and
the running sums the draws invert (:func:`cumulative_weights`).
"""

from __future__ import annotations

import torch

from scai.inference.exact_kernels import lattice_group_loglik
from scai.models.distinct import distinct_rows
from scai.models.underflow import exp_flush_, exp_terms_, logsumexp

#: torch's grain size (``at::internal::GRAIN_SIZE``): a sum over fewer entries is one chunk,
#: never split across threads, so summing many such rows at once gives each row's own bits.
ONE_CHUNK = 32768
#: Rows of the log joint normalised at once (a bounded temporary: 256 x 3,000 doubles, 6 MB).
ROWS_AT_ONCE = 256


def group_loglik(
    loglik: torch.Tensor,
    counts: torch.Tensor,
    pi_grid: torch.Tensor,
    clone: torch.Tensor | None,
) -> torch.Tensor:
    """``[T, S, G]``: the group log-likelihood of ``loglik [T, S, U, K]`` (users weighted by
    ``counts [S, U]``, :func:`distinct_users`) at every point of ``pi_grid [G, K]``
    (:func:`lattice_group_loglik`), in blocks of grid points that fit in memory.

    Grid points where the data cannot tell the sites apart (a stereotype's strength when no
    tone is heard) share their log-likelihoods: the kernel runs once per distinct
    (log-likelihoods, clone probability) and is gathered back to every point."""
    T, S, _, K = loglik.shape
    key = loglik.reshape(T, -1)
    if clone is not None:
        key = torch.cat([key, clone.to(loglik.dtype)[:, None]], -1)
    first, which = _first_of_each(key)
    V = int((counts > 0).sum(-1).max()) if counts.numel() else 0  # users worked on per sim
    step = max(1, int(2e7) // max(1, S * V * pi_grid.shape[0] * (K if clone is not None else 1)))
    every = len(first) == T and bool((first == torch.arange(T)).all())
    if every and step >= T:  # one block of every grid point: the kernel's own tensor
        return lattice_group_loglik(loglik, counts, pi_grid, clone)
    distinct = torch.empty(len(first), S, pi_grid.shape[0], dtype=loglik.dtype)
    for start in range(0, len(first), step):
        part = first[start : start + step]
        distinct[start : start + step] = lattice_group_loglik(
            loglik[part], counts, pi_grid, None if clone is None else clone[part]
        )
    return distinct if every else distinct[which]


def normalise(log_joint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(data)`` per simulation ``[S]`` and the posterior weights ``[T, S, G]`` of the
    log joint ``[T, S, G]``; weights below ~2e-306 are 0 (:func:`~scai.models.underflow.exp_flush_`:
    torch's ``exp`` of the grid points far from the mode took most of this function's time).
    (What that can move: a bounded site's cell mass where ~10^6 such weights used to add up
    above the 1e-300 its log is clamped at, a drop of ~704 nats in one cell step, and so the
    slope its draws within the neighbouring cell follow; a draw whose uniform is exactly 0.)"""
    T, S, G = log_joint.shape
    # torch.logsumexp of the [S, T * G] rows, step by step as scai.models.underflow.logsumexp
    # computes it (the maxima, set to 0 where infinite; exp_terms_ of the shifted values; their
    # sum over each contiguous row; 0 for rows of -inf alone), with the shift written straight
    # into the [S, T, G] layout: without the copy that reshaping the transposed view makes
    # (hundreds of MB on a scalar's grid), the same bits. One simulation's row at a time (a
    # [T, G] buffer, not a second [S, T, G] tensor), and the weights exponentiated in place.
    view = log_joint.transpose(0, 1)  # [S, T, G]
    maxes = torch.amax(view, (1, 2), keepdim=True)
    empty = (maxes == -torch.inf).reshape(S)  # no mass: their sums are set to 0 below
    maxes.masked_fill_(maxes.abs() == torch.inf, 0.0)
    total = torch.empty(S, dtype=log_joint.dtype)
    if T == 1 and G <= ONE_CHUNK:
        # Rows short enough to be summed in one chunk (no thread splits them): every row at
        # once, the same bits as row by row (a learning curve's thousand prefix groups).
        for start in range(0, S, ROWS_AT_ONCE):
            rows = slice(start, start + ROWS_AT_ONCE)
            part = torch.sub(log_joint[0, rows], maxes[rows].reshape(-1, 1))
            total[rows] = exp_terms_(part).sum(-1)
    else:
        shifted = torch.empty(T, G, dtype=log_joint.dtype)
        for s in range(S):
            torch.sub(view[s], maxes[s], out=shifted)
            total[s] = exp_terms_(shifted).reshape(-1).sum()
        del shifted
    total.masked_fill_(empty, 0.0)
    log_evidence = total.log_().add_(maxes.reshape(S))
    weights = torch.sub(log_joint, log_evidence.reshape(1, S, 1))
    return log_evidence, exp_flush_(weights)


def log_marginal(log_joint: torch.Tensor, block: int = 2**20) -> torch.Tensor:
    """``[T, S]``: ``log_joint [T, B, S, G]`` summed (``logsumexp``) over the bounded sites'
    points ``B`` and the lattice ``G``: the scalars' marginal. Computed a few grid points at a
    time (about ``block`` entries), so that torch's temporaries (the shifted values and their
    exponentials, each as large as the input: hundreds of MB on a zoomed grid) stay small; each
    entry is reduced exactly as one ``logsumexp((1, 3))`` over the whole tensor reduces it."""
    T = log_joint.shape[0]
    step = max(1, block // max(1, log_joint[0].numel()))
    out = torch.empty(T, log_joint.shape[2], dtype=log_joint.dtype)
    for start in range(0, T, step):
        out[start : start + step] = logsumexp(log_joint[start : start + step], (1, 3))
    return out


def cumulative_weights(weights: torch.Tensor) -> torch.Tensor:
    """``[S, T * G]``: each simulation's running sum of its weights ``weights [T, S, G]`` over
    the grid points ``(t, g)`` in that order (what the draws invert). One scan per simulation,
    into the output: the same sums as ``weights.permute(1, 0, 2).reshape(S, -1).cumsum(-1)``
    without that expression's transposed copy of the whole grid."""
    T, S, G = weights.shape
    if T == 1:  # each simulation's weights are a contiguous row already: one scan per row
        return torch.cumsum(weights[0], -1)
    cdf = torch.empty(S, T * G, dtype=weights.dtype)
    for s in range(S):
        torch.cumsum(weights[:, s].reshape(-1), 0, out=cdf[s])
    return cdf


def _first_of_each(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``rows [T, d]``: the first index of each distinct row, in order of first
    appearance, and for every row the position of its distinct row in that list."""
    first, inverse, _ = distinct_rows(rows)
    n = len(first)
    order = first.argsort()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n)
    return first[order], rank[inverse]
