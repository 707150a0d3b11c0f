"""``exp`` and ``logsumexp`` without the slow path of torch's ``exp`` on this CPU.

torch's vectorised ``exp`` (SLEEF) takes a slow path for arguments whose exponential is
subnormal or close to it (below about -87 in float32, -705 in float64): tens of ns an element,
over a hundred in float64, against ~1 ns (``benchmarks/bench_underflow.py`` prints the table;
``benchmarks/README.md``, "The main job"). The model meets such arguments
often: at most offers of a rational proposer (``lam * E_o - logsumexp_o(lam * E_o)``: 57% of
the elements of a latent-shift fit's coarse pass) and at the lattice points far from a
posterior's mode (the exact engine's weights).

:func:`exp_flush_` is ``exp_`` with the results of arguments at or below :data:`FLOOR` set to
0 (they are below ~4e-38 in float32, ~2e-306 in float64). :func:`logsumexp` computes what
torch's does (``m = amax`` with infinite maxima set to 0, ``log(sum(exp(x - m))) + m``, the
same reduction over the same dimensions) with those terms at ``exp(FLOOR - 1)``
(:func:`exp_terms_`): the sum holds ``exp(0) = 1`` (the maximum's own term), so float
rounding drops them as it drops torch's subnormal ones, and the result is torch's,
bit for bit (``tests/test_underflow.py`` checks it on tensors of every kind the model makes),
but for rows built so that float32 additions land on rounding ties level after level (a
review constructed one: a dropped ``exp(-87)`` then moves ``1 + S`` by one step).
:func:`sigmoid` is torch's with float32 arguments clamped to [-100, 30]: torch's is exactly 0
below -88.7 and exactly 1 above 16.7, and 4-6 ns an element beyond the clamp (a rational
responder's acceptance of offers far from its norm) against ~1.5 ns within.
Where autograd would differentiate them, each is torch's own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Arguments at or below which ``exp`` is flushed to 0, by floating dtype: the slow path starts
#: a little below them (``exp(-86)`` is 4e-38, float32's smallest normal number 1.2e-38;
#: ``exp(-704)`` is 2e-306, float64's 2.2e-308).
FLOOR = {torch.float32: -86.0, torch.float64: -704.0}
#: ``exp(FLOOR)``: results at or below it are set to 0.
_TINY = {dtype: math.exp(floor) for dtype, floor in FLOOR.items()}


def _plain(x: torch.Tensor) -> bool:
    """Whether ``x`` is left to torch: another dtype, or autograd differentiates it."""
    return x.dtype not in FLOOR or (x.requires_grad and torch.is_grad_enabled())


def exp_flush_(x: torch.Tensor) -> torch.Tensor:
    """``x.exp_()``, with the results of arguments at or below ``FLOOR[x.dtype]`` 0 (NaN stays
    NaN). Three passes that each cost about what ``exp`` does on fast arguments: the
    arguments clamped one below the floor, ``exp``, and every result not above ``exp(FLOOR)``
    set to 0 (the clamped ones, whatever ulp ``exp`` gives them)."""
    if _plain(x):
        return x.exp_()
    x.clamp_(min=FLOOR[x.dtype] - 1.0).exp_()
    return F.threshold_(x, _TINY[x.dtype], 0.0)  # (threshold keeps NaN: it is not <= tiny)


def exp_terms_(shifted: torch.Tensor) -> torch.Tensor:
    """``shifted.exp_()`` for the terms of sums that each hold ``exp(0) = 1`` (arguments less
    their row's maximum): those at or below ``FLOOR[dtype] - 1`` become ``exp(FLOOR - 1)``
    (1.6e-38 in float32, 7e-307 in float64) where torch's are smaller or 0; the sum rounds
    either away. A row whose maximum was ``-inf`` has no such term: its sum is the caller's to
    set to 0. Two passes: the clamp and ``exp``."""
    if _plain(shifted):
        return shifted.exp_()
    return shifted.clamp_(min=FLOOR[shifted.dtype] - 1.0).exp_()


def logsumexp(x: torch.Tensor, dim: int | tuple[int, ...], keepdim: bool = False) -> torch.Tensor:
    """``torch.logsumexp(x, dim, keepdim)``, bit for bit, faster where many terms underflow."""
    if _plain(x) or x.numel() == 0:
        return torch.logsumexp(x, dim, keepdim=keepdim)
    maxes = x.amax(dim, keepdim=True)
    empty = maxes == -torch.inf  # rows of -inf alone: their sum is 0, their result -inf
    maxes.masked_fill_(maxes.abs() == torch.inf, 0)  # as torch
    total = exp_terms_(x - maxes).sum(dim, keepdim=keepdim)
    total.masked_fill_(empty if keepdim else empty.reshape(total.shape), 0)
    return total.log_().add_(maxes if keepdim else maxes.reshape(total.shape))


def log_normalise(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``x - logsumexp(x, dim)``, the log of ``softmax(x)``, computed as ``(x - m) - log(sum(
    exp(x - m)))`` with ``m`` each row's maximum, which must be finite (a row of -inf alone is
    NaN). Not as written: ``logsumexp`` is ``m`` plus a number in ``[0, log n]``, rounded to
    the float32 spacing at ``m``, and every term of the row takes that error (an altruist's
    offers at the default rationality summed to 1 + 4.5e-4 on pots near 800; at a rationality
    of 1e10, two tied best offers each got probability 1). The terms as
    :func:`logsumexp`'s; where autograd differentiates it, torch's ``log_softmax``."""
    if _plain(x):
        return torch.log_softmax(x, dim)
    shifted = x - x.amax(dim, keepdim=True)
    total = shifted.clamp(min=FLOOR[x.dtype] - 1.0).exp_().sum(dim, keepdim=True)  # exp_terms_'s
    # (not shifted.sub_: Pyro's JIT-traced ELBO replayed that in-place step into -inf losses)
    return shifted - total.log_()


#: The float32 arguments :func:`sigmoid` clamps to: torch's sigmoid is exactly 0 below -88.7
#: and exactly 1 above 16.7 (``tests/test_underflow.py``).
SIGMOID_RANGE = (-100.0, 30.0)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``torch.sigmoid(x)``, bit for bit; float32 arguments clamped to :data:`SIGMOID_RANGE`."""
    if x.dtype != torch.float32 or _plain(x) or not x.is_contiguous():
        # (a strided tensor's clamped copy is contiguous: torch would then take its vectorised
        # exp where it takes the scalar one on the strided input, 1 ulp apart at times)
        return torch.sigmoid(x)
    return torch.sigmoid(x.clamp(*SIGMOID_RANGE))
