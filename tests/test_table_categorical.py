"""The model's offer distribution, :class:`TableCategorical`: both of its samplers draw each
looked-up row's categorical distribution (the simulator's Gumbel-max and the replicates'
inverse CDF)."""

from __future__ import annotations

import pytest
import torch

from scai.models.model import TableCategorical


def _table(generator: torch.Generator) -> torch.Tensor:
    """``[2, 3, 4, 6]`` (24 rows of 6 offers) normalised log-probabilities, with impossible
    offers (``-inf``) at the end of some rows (offers above a pot) and a near-certain offer in
    one row."""
    logits = torch.randn(2, 3, 4, 6, generator=generator, dtype=torch.float64) * 2
    logits[0, :, 1, 4:] = -torch.inf
    logits[1, 2, 3, 0] = 30.0
    return logits.log_softmax(-1)


@pytest.mark.parametrize("method", ["sample", "sample_by_cdf"])
def test_draws_follow_each_rows_probabilities(method):
    """Each row's empirical frequencies are within 4.5 binomial sd of its probabilities
    (about 1.5e-4 of the 144 cells fail by chance, for a fixed seed: never), and impossible
    offers are never drawn."""
    generator = torch.Generator().manual_seed(3)
    table = _table(generator)
    n_rows = 60_000
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
    one_hot = torch.nn.functional.one_hot(drawn[active], table.shape[-1]).double()
    cells = torch.zeros(table[..., 0].numel(), table.shape[-1], dtype=torch.float64)
    counts = torch.zeros(table[..., 0].numel(), dtype=torch.float64)
    cells.index_add_(0, flat, one_hot)
    counts.index_add_(0, flat, torch.ones(len(flat), dtype=torch.float64))
    expected = table.exp().reshape(-1, table.shape[-1]) * counts.unsqueeze(-1)
    sd = (expected * (1 - expected / counts.clamp(min=1).unsqueeze(-1))).sqrt()
    z = (cells - expected).abs() / sd.clamp(min=1e-12)
    assert torch.all((z < 4.5) | (sd == 0) & (cells == expected))


def test_inverse_cdf_is_deterministic_under_a_seed():
    generator = torch.Generator().manual_seed(5)
    table = _table(generator)
    index = tuple(torch.randint(0, size, (500,), generator=generator) for size in table.shape[:-1])
    dist = TableCategorical(table, index)
    torch.manual_seed(1)
    first = dist.sample_by_cdf()
    torch.manual_seed(1)
    assert torch.equal(first, dist.sample_by_cdf())
