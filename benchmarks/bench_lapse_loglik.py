"""Scoring a posterior's draws of the lapse: whole tables per draw against the lapse mixed into
the scored cells (``user_loglik(..., lapse_on_cells=True)``, what ``Posterior.to_arviz`` and
``save`` use where the lapse, or the coupling's strength, is the only site drawn), on the
README's group (20 simulations of 10 users, the simulator's default rounds and epochs)
and 1,000 draws in chunks of 256::

    .venv/bin/python benchmarks/bench_lapse_loglik.py

Prints the wall time of each (one run each) and their
largest difference.
"""

from __future__ import annotations

import time

import torch

from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.marginal import EventIndex, user_loglik
from scai.models.simulate import simulate

hyp = PRESETS["neutral"].with_(lapse_prior=(1.0, 30.0))
sim = simulate(hyp, policy="selfish=0.8,altruistic=0.2", manner="rude", users=10, sims=20, seed=1)
data = GroupData.from_table(sim.interactions)
index = EventIndex.from_data(data)
S, C, D, chunk = data.shape[0], len(data.currencies), 1000, 256
lapse = torch.rand(D, S, generator=torch.Generator().manual_seed(0)) * 0.2
lam, shift = torch.full((1, S), hyp.rationality), torch.zeros(1, S, C)
timed = {}
for cells in (False, True):
    start = time.perf_counter()
    parts = []
    for i in range(0, D, chunk):
        part = lapse[i : i + chunk]
        B = len(part)
        lam_, shift_ = (lam, shift) if cells else (lam.expand(B, S), shift.expand(B, S, C))
        parts.append(user_loglik(data, hyp, lam_, shift_, index, lapse=part, lapse_on_cells=cells))
    timed[cells] = (time.perf_counter() - start, torch.cat(parts))
tables, on_cells = timed[False], timed[True]
print(f"whole tables per draw: {tables[0]:.2f} s; lapse on the scored cells: {on_cells[0]:.3f} s")
print(f"largest difference: {float((tables[1] - on_cells[1]).abs().max()):.2e}")
