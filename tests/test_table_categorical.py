"""The model's offer distribution, :class:`TableCategorical`: both of its samplers draw each
looked-up row's categorical distribution (the simulator's Gumbel-max and the replicates'
inverse CDF); and the model's tables shared by simulations with equal parameters."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from scai.models.hypotheses import PRESETS
from scai.models.model import TableCategorical, distinct_group_tables, group_tables

#: Family-wise chance that a correct sampler fails the frequency test (fixed seeds: never).
FAMILY_ALPHA = 1e-3


def _table(generator: torch.Generator) -> torch.Tensor:
    """``[2, 3, 4, 6]`` (24 rows of 6 offers) normalised log-probabilities, with impossible
    offers (``-inf``) at the start, middle and end of some rows (offers above a pot at the
    end) and a near-certain offer in one row."""
    logits = torch.randn(2, 3, 4, 6, generator=generator, dtype=torch.float64) * 2
    logits[0, :, 1, 4:] = -torch.inf
    logits[1, 0, 2, 0] = -torch.inf
    logits[1, 1, 0, 3] = -torch.inf
    logits[1, 2, 3, 0] = 30.0
    return logits.log_softmax(-1)


@pytest.mark.parametrize("method", ["sample", "sample_by_cdf"])
def test_draws_follow_each_rows_probabilities(method):
    """Each (row, offer) count of 200,000 draws is binomial with the table's probability:
    every exact two-sided binomial p-value is above ``FAMILY_ALPHA`` over the number of
    cells (Bonferroni: a correct sampler fails with probability below ``FAMILY_ALPHA``), and
    impossible offers are never drawn."""
    generator = torch.Generator().manual_seed(3)
    table = _table(generator)
    n_rows = 200_000
    index = tuple(
        torch.randint(0, size, (n_rows,), generator=generator) for size in table.shape[:-1]
    )
    active = torch.rand(n_rows, generator=generator) < 0.8
    torch.manual_seed(7)
    drawn = getattr(TableCategorical(table, index, active=active), method)()
    assert drawn.shape == (n_rows,)
    assert torch.all(drawn[~active] == 0)
    rows = tuple(i[active] for i in index)
    p = table[rows].exp()  # [n, O]: each active row's probabilities
    assert torch.all(p[torch.arange(len(p)), drawn[active]] > 0)
    flat = (rows[0] * 3 + rows[1]) * 4 + rows[2]  # the looked-up row of the [2, 3, 4] table
    O = table.shape[-1]
    counts = torch.zeros(24, O, dtype=torch.float64)
    counts.index_put_((flat, drawn[active]), torch.ones(len(flat), dtype=torch.float64), True)
    n = counts.sum(-1, keepdim=True).expand(-1, O).numpy()
    probs = table.exp().reshape(24, O).numpy()
    k = counts.numpy()
    tails = 2 * torch.minimum(
        torch.from_numpy(stats.binom.cdf(k, n, probs)),
        torch.from_numpy(stats.binom.sf(k - 1, n, probs)),
    )
    assert float(tails.min()) > FAMILY_ALPHA / counts.numel(), float(tails.min())


def test_inverse_cdf_never_rounds_into_the_next_row(monkeypatch):
    """A uniform just below 1 on a row far down the sequence (where ``j + v`` rounds up to
    ``j + 1``) still draws the row's last possible offer, never an impossible one."""
    rows = 100_000
    logits = torch.zeros(rows, 5, dtype=torch.float64)
    logits[:, 3:] = -torch.inf  # offers 3 and 4 impossible
    table = logits.log_softmax(-1)
    monkeypatch.setattr(torch, "rand", lambda n, dtype: torch.full((n,), 1 - 2.0**-40, dtype=dtype))
    drawn = TableCategorical(table, (torch.arange(rows),)).sample_by_cdf()
    assert torch.all(drawn == 2)


def test_inverse_cdf_refuses_a_row_without_a_possible_offer():
    table = torch.full((2, 3), -torch.inf, dtype=torch.float64)
    table[0] = torch.tensor([0.2, 0.3, 0.5]).log()
    with pytest.raises(ValueError, match="no possible offer"):
        TableCategorical(table, (torch.tensor([0, 1]),)).sample_by_cdf()


def test_inverse_cdf_is_deterministic_under_a_seed():
    generator = torch.Generator().manual_seed(5)
    table = _table(generator)
    index = tuple(torch.randint(0, size, (500,), generator=generator) for size in table.shape[:-1])
    dist = TableCategorical(table, index)
    torch.manual_seed(1)
    first = dist.sample_by_cdf()
    torch.manual_seed(1)
    assert torch.equal(first, dist.sample_by_cdf())


def test_shared_tables_equal_each_simulations_own_and_keep_its_gradient():
    """Simulations with equal parameters share one table row with the same values as their
    own tables; with a gradient to take, each keeps its own row, so a tied simulation's
    gradient is its own (a shared row would give the first of them all of it)."""
    hyp = PRESETS["neutral"]
    pots = torch.tensor([10, 20])
    lam = torch.tensor([2.0, 2.0, 3.0, 2.0], dtype=torch.float64)
    shift = torch.zeros(4, 1, dtype=torch.float64)
    with torch.no_grad():
        shared, row = distinct_group_tables(hyp, pots, lam, shift)
        own = group_tables(hyp, pots, lam, shift)
    assert shared.offer_logp.shape[0] == 2 and torch.equal(row[[0, 1, 3]], row[[0, 0, 0]])
    assert torch.equal(shared.offer_logp[row], own.offer_logp)
    assert torch.equal(shared.accept_logit[row], own.accept_logit)

    weights = torch.arange(1.0, 5.0, dtype=torch.float64)  # a different pull per simulation

    def loss_grad(build) -> torch.Tensor:
        x = lam.clone().requires_grad_(True)
        tables, at = build(x)
        offer = tables.offer_logp[at].nan_to_num(neginf=0.0)
        (offer.sum(tuple(range(1, offer.dim()))) * weights).sum().backward()
        return x.grad

    want = loss_grad(lambda x: (group_tables(hyp, pots, x, shift), torch.arange(4)))
    got = loss_grad(lambda x: distinct_group_tables(hyp, pots, x, shift))
    torch.testing.assert_close(got, want, rtol=0, atol=0)
