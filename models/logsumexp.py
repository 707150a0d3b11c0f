"""``torch.logsumexp``'s values without the slow path of torch's ``exp`` on this CPU.

torch's vectorised ``exp`` (SLEEF) takes a slow path for arguments whose exponential is
subnormal or underflows (below about -87.3 in float32, -708.4 in float64): 16-60 ns an element
against ~1 ns (``benchmarks/README.md``, "The main job"). An offer's log-probabilities
``lam * E_o - logsumexp_o(lam * E_o)`` meet such arguments at most offers of a rational
proposer (57% of the elements of a latent-shift fit's coarse pass, where ``logsumexp`` was
three quarters of the tables' time).

:func:`logsumexp` computes what torch's does (``m = amax`` with infinite maxima set to 0,
``log(sum(exp(x - m))) + m``, the same reduction over the same dimensions) but takes ``exp``
only of ``x - m >= FLOOR`` and sets the rest to 0. Those terms are below ``2**-125`` while
the sum holds ``exp(0) = 1`` (the maximum's own term), so float rounding drops them either
way: the result is torch's, bit for bit (``tests/test_logsumexp.py`` checks it on tensors of
every kind the model makes). Where autograd would differentiate it, it is torch's own.
"""

from __future__ import annotations

import torch

#: Below these arguments ``exp`` is subnormal, or close to it, in each floating dtype.
FLOOR = {torch.float32: -87.0, torch.float64: -708.0}


def logsumexp(x: torch.Tensor, dim: int | tuple[int, ...], keepdim: bool = False) -> torch.Tensor:
    """``torch.logsumexp(x, dim, keepdim)``, bit for bit, faster where most terms underflow."""
    floor = FLOOR.get(x.dtype)
    if floor is None or x.numel() == 0 or (x.requires_grad and torch.is_grad_enabled()):
        return torch.logsumexp(x, dim, keepdim=keepdim)
    maxes = x.amax(dim, keepdim=True)
    maxes.masked_fill_(maxes.abs() == torch.inf, 0)  # as torch: all -inf rows give -inf
    terms = x - maxes
    below = terms < floor
    terms.clamp_(min=floor).exp_().masked_fill_(below, 0)
    total = terms.sum(dim, keepdim=keepdim)
    return total.log_().add_(maxes if keepdim else maxes.reshape(total.shape))
