"""scai's ``logsumexp`` is torch's, bit for bit: on tensors spread far below their maxima (the
slow path it avoids), with infinities, NaN and empty reductions, over one dimension or
several, and on the offers' tables the model makes; torch's own where autograd needs it.
``exp_flush_`` is torch's ``exp`` but for arguments below the floor, which give 0;
``log_normalise`` is torch's on the rows less their maximum, normalised where ``x - logsumexp(x)``
is not."""

from __future__ import annotations

import pytest
import torch

from scai.models import policies
from scai.models.hypotheses import PRESETS
from scai.models.model import group_utilities
from scai.models.policies import rational_tables
from scai.models.underflow import (
    FLOOR,
    SIGMOID_RANGE,
    exp_flush_,
    log_normalise,
    logsumexp,
    sigmoid,
)


def spread(shape, dtype, seed, scale):
    """Values whose distances below their row's maximum reach far past the floor."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * -scale).to(dtype)


def assert_same(x, dim, keepdim):
    got = logsumexp(x, dim, keepdim=keepdim)
    want = torch.logsumexp(x, dim, keepdim=keepdim)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(got.nan_to_num(7.0), want.nan_to_num(7.0))  # NaN where torch's is
    assert torch.equal(got.isnan(), want.isnan())


@pytest.mark.parametrize("dtype, scale", [(torch.float32, 300.0), (torch.float64, 3000.0)])
@pytest.mark.parametrize("dim", [-1, 0, (1, 3)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_equals_torch_far_below_the_maximum(dtype, scale, dim, keepdim):
    for seed in range(20):
        x = spread((6, 5, 4, 97), dtype, seed, scale)
        x[0, 0, 0, :5] = -torch.inf
        x[1] = -torch.inf  # whole rows of -inf: -inf
        x[2, 0, 0, 3] = torch.inf  # +inf: inf
        x[3, 1, 1, 7] = torch.nan  # NaN: NaN
        assert_same(x, dim, keepdim)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_torch_on_many_row_lengths(dtype):
    """Rows of every length the vectorised sum splits differently (tails of 1 to 16)."""
    for length in range(1, 70):
        assert_same(
            spread((40, length), dtype, length, 400.0 if dtype == torch.float32 else 4e3), -1, True
        )


def test_other_dtypes_empty_tensors_and_gradients_are_torchs():
    half = spread((3, 50), torch.float16, 0, 30.0)
    assert_same(half, -1, False)
    empty = torch.empty(3, 0)
    assert_same(empty, -1, True)
    x = spread((4, 60), torch.float64, 1, 3000.0).requires_grad_()
    logsumexp(x, -1).sum().backward()
    want = x.detach().clone().requires_grad_()
    torch.logsumexp(want, -1).sum().backward()
    assert torch.equal(x.grad, want.grad)


def torch_log_normalise(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """:func:`log_normalise`'s formula in torch's own operations."""
    shifted = x - x.amax(dim, keepdim=True)
    return shifted - torch.logsumexp(shifted, dim, keepdim=True)


@pytest.mark.parametrize("dtype, scale", [(torch.float32, 300.0), (torch.float64, 3000.0)])
def test_log_normalise_is_torchs_on_the_rows_less_their_maximum(dtype, scale):
    for seed in range(10):
        x = spread((6, 5, 97), dtype, seed, scale) + 3000.0  # a rational proposer's scale
        x[0, 0, 3:] = -torch.inf  # offers above the pot
        assert torch.equal(log_normalise(x), torch_log_normalise(x))


def test_log_normalise_keeps_the_rows_normalised_where_x_less_logsumexp_does_not():
    """``x - logsumexp(x)`` rounds the normaliser to float32's spacing at the row's maximum:
    each term takes that error. A row of large logits (a rational proposer's at the default
    rationality on pots near 1000) and a tie of the two best at a rationality of 1e10."""
    x = spread((50, 1001), torch.float32, 3, 60.0) + 3200.0
    naive = x - logsumexp(x, -1, keepdim=True)
    assert (naive.double().exp().sum(-1) - 1).abs().max() > 1e-5  # the error it avoids
    assert (log_normalise(x).double().exp().sum(-1) - 1).abs().max() < 1e-6
    tie = torch.tensor([[1e10, 1e10, 0.0]])
    assert (x_less := tie - logsumexp(tie, -1, keepdim=True)).exp().sum() == 2.0, x_less
    assert torch.allclose(log_normalise(tie).exp(), torch.tensor([[0.5, 0.5, 0.0]]))


def test_log_normalise_under_autograd_is_torchs_log_softmax():
    x = spread((4, 33), torch.float32, 5, 300.0).requires_grad_()
    got = log_normalise(x)
    assert torch.equal(got, torch.log_softmax(x, -1))
    got[:, :3].sum().backward()
    want = x.detach().clone().requires_grad_()
    torch.log_softmax(want, -1)[:, :3].sum().backward()
    assert torch.equal(x.grad, want.grad)


@pytest.mark.parametrize("lam", [0.5, 4.0, 40.0])
def test_the_offers_tables_are_torchs(lam, monkeypatch):
    """A rational proposer's offers: many of them far below the best offer at a large
    ``lam``, on pots of 1 to 100 with currency shifts (the coarse pass of a latent-shift fit)."""
    utilities = group_utilities(
        PRESETS["pooled"],
        torch.arange(1, 101),
        torch.linspace(-3, 3, 200, dtype=torch.get_default_dtype())[:, None, None],
    )
    got = rational_tables(utilities, lam).offer_logp
    monkeypatch.setattr(policies, "log_normalise", torch_log_normalise)
    want = rational_tables(utilities, lam).offer_logp
    assert torch.equal(got, want)
    best = want.amax(-1, keepdim=True)
    assert ((want - best > -torch.inf) & (want - best < -88)).any()  # the path it avoids


@pytest.mark.parametrize("dtype, scale", [(torch.float32, 300.0), (torch.float64, 3000.0)])
def test_exp_flush_is_torchs_exp_above_the_floor_and_0_below(dtype, scale):
    x = spread((50, 333), dtype, 3, scale)
    x[0, :3] = torch.tensor([-torch.inf, torch.inf, torch.nan], dtype=dtype)
    want = x.exp()
    got = exp_flush_(x.clone())
    below = x <= FLOOR[dtype]
    assert below.float().mean() > 0.5 and (~below).float().mean() > 0.01
    assert torch.equal(got[~below].nan_to_num(7.0), want[~below].nan_to_num(7.0))
    assert got[0, 2].isnan() and got[0, 1] == torch.inf
    assert torch.equal(got[below], torch.zeros_like(got[below]))
    assert want[below].max() < 1e-37 if dtype == torch.float32 else want[below].max() < 1e-305
    assert got[~below & (x > -torch.inf)].min() > 0  # (the clamped ones alone are 0)


def test_exp_flush_keeps_autograd_and_other_dtypes():
    x = spread((4, 60), torch.float64, 1, 3000.0).requires_grad_()
    exp_flush_(x * 1.0).sum().backward()  # (the product: a leaf cannot change in place)
    assert torch.equal(x.grad, x.detach().exp())
    half = spread((3, 50), torch.float16, 0, 30.0)
    assert torch.equal(exp_flush_(half.clone()), half.exp())


def test_sigmoid_is_torchs_and_constant_beyond_its_clamp():
    """torch's float32 sigmoid is exactly 0 and 1 well inside the clamp, so clamping changes
    no value: on a fine grid across it and far beyond, and at every position of a row."""
    lo, hi = SIGMOID_RANGE
    x = torch.linspace(-2_000, 2_000, 4_000_001, dtype=torch.float32)
    x = torch.cat([x, torch.tensor([-torch.inf, torch.inf, torch.nan, -1e30, 1e30])])
    assert torch.equal(sigmoid(x).nan_to_num(7.0), torch.sigmoid(x).nan_to_num(7.0))
    assert (torch.sigmoid(x[x <= lo + 11]) == 0).all() and (
        torch.sigmoid(x[x >= hi - 13]) == 1
    ).all()
    for n in range(1, 40):
        row = torch.linspace(-150, 150, n, dtype=torch.float32)
        assert torch.equal(sigmoid(row), torch.sigmoid(row))
    doubles = x.double()[:-5]
    assert torch.equal(sigmoid(doubles), torch.sigmoid(doubles))  # (left to torch)
    strided = torch.linspace(-30, 30, 2_000_001)[::2]  # torch's scalar exp on a strided input
    assert torch.equal(sigmoid(strided), torch.sigmoid(strided))
