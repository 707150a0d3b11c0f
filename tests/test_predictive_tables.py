"""Posterior replicates build each action table once where the draws leave it alone.

``scai fit`` of a 400-row table of many distinct pots spent ~20 s writing posterior.nc after
a 0.2 s fit: :func:`~scai.models.predictive.replicate` runs the model chunk after chunk of
draws (a chunk's tables bounded by ``TABLE_BUDGET``), and every run rebuilt the tables, the
same ones for a hypothesis whose rationality, shifts and lapse are fixed (``neutral``). They
are built once now (:class:`~scai.models.model.TableMemo`); the replicates are the same to the
bit, and tables that do vary with the draws (a latent lapse) are still built per chunk.
"""

from __future__ import annotations

import pytest
import torch

from scai.models import model as model_module
from scai.models import predictive
from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.model import TableMemo
from scai.models.simulate import simulate

DRAWS = 12
LAPSING = PRESETS["neutral"].with_(name="lapsing", lapse_prior=(1.0, 30.0))


class NoMemo(TableMemo):
    """Builds every time: the replicates as they were made before the memo."""

    def get(self, hypothesis, pots, rows, build):
        return build()


def replicates(hypothesis, monkeypatch, memo=TableMemo):
    """The replicates of one simulation (many pots), a chunk per draw, and the tables built."""
    sim = simulate(
        PRESETS["neutral"],
        policy="selfish",
        users=4,
        rounds=2,
        epochs=4,
        sims=1,
        seed=1,
        pot_range=(2, 9),
    )
    data = GroupData.from_table(sim.interactions)
    assert len(data.pots) > 1
    generator = torch.Generator().manual_seed(0)
    K = len(hypothesis.policies)
    weights = torch.rand(DRAWS, 1, K, generator=generator) + 0.1
    sites = {"pi": weights / weights.sum(-1, keepdim=True)}
    if hypothesis.lapse_prior is not None:
        sites["lapse"] = 0.01 + 0.2 * torch.rand(DRAWS, 1, generator=generator)
    built = []
    real = model_module.group_tables
    monkeypatch.setattr(
        model_module, "group_tables", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    monkeypatch.setattr(predictive, "TABLE_BUDGET", 1)  # a chunk per draw
    monkeypatch.setattr(predictive, "TableMemo", memo)
    out = predictive.replicate(data, hypothesis, sites, seed=5)
    monkeypatch.undo()
    return out, len(built)


@pytest.mark.parametrize(
    "hypothesis, builds", [(PRESETS["neutral"], 1), (LAPSING, DRAWS)], ids=["fixed", "lapse"]
)
def test_tables_are_built_once_where_the_draws_leave_them_alone(hypothesis, builds, monkeypatch):
    out, built = replicates(hypothesis, monkeypatch)
    assert built == builds  # neutral: one build, not one per chunk (12)
    again, rebuilt = replicates(hypothesis, monkeypatch, memo=NoMemo)
    assert rebuilt == DRAWS
    for name, value in out.items():
        assert torch.equal(value, again[name]), name
