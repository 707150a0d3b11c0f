"""Helpers for simulation-based calibration (SBC; Talts et al. 2018) of the engines.

SBC draws parameters from the prior, data from the model given them, fits the posterior, and
records the rank of the true value among ``L`` posterior draws. If the posterior is right, the
rank is uniform on ``0..L`` whatever the data, so a histogram of ranks over many replications is
flat; a chi-square test checks it.

Replications are drawn as *simulations* (the ``sims`` plate) of one run of the generative model
in forward mode: the model itself draws ``pi ~ Dirichlet`` and, when the hypothesis makes it
latent, ``lam ~ LogNormal`` once per simulation, then types, manners, offers, decisions and
tones. Simulations share no parameter, so one fit of all of them is the same as one fit per
replication (the posterior factorises over ``sims``), and it is one batched tensor program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import torch
from scipy import stats

from scai.models.hypotheses import Hypothesis
from scai.models.layout import GroupData
from scai.models.model import social_contract_model
from scai.models.simulate import _to_tables, make_schedule


@dataclass
class Replications:
    table: pd.DataFrame  # the interaction table of every replication (sim "0", "1", ...)
    users: pd.DataFrame  # the true types
    pi: np.ndarray  # [S, K] the true pi of each replication
    lam: np.ndarray  # [S] the true rationality of each replication
    shift: np.ndarray  # [S, C] the true shift of each currency of the data


def prior_replications(
    hypothesis: Hypothesis,
    *,
    n: int,
    users: int,
    rounds: int,
    epochs: int,
    seed: int,
    currency: str = "dollars",
    pot_range: tuple[int, int] = (10, 100),
) -> Replications:
    """``n`` independent draws of (parameters, data) from the model's joint prior."""
    rng = np.random.default_rng(seed)
    schedule = make_schedule(
        users=users,
        rounds=rounds,
        epochs=epochs,
        sims=n,
        currency=currency,
        rng=rng,
        pot_range=pot_range,
    )
    user_ids = {str(s): [f"u{u}" for u in range(users)] for s in range(n)}
    data = GroupData.from_table(schedule, users=user_ids)
    pyro.set_rng_seed(seed)
    with torch.no_grad():
        sampled = social_contract_model(data, hypothesis, observed=False)
    sim = _to_tables(schedule, data, sampled, hypothesis, {})  # (the values: below)
    return Replications(
        table=sim.interactions,
        users=sim.users,
        pi=sampled["pi"].reshape(n, -1).double().numpy(),
        lam=sampled["lam"].reshape(n).double().numpy(),
        shift=sampled["shift"].reshape(n, -1).double().numpy(),
    )


def ranks(draws: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of ``truth [n]`` among ``draws [n, L]``: the number of draws below it, plus a
    uniform share of the draws equal to it (ties broken at random, as SBC requires for
    discrete posteriors); uniform on ``0..L`` under a calibrated posterior."""
    below = (draws < truth[:, None]).sum(1)
    ties = (draws == truth[:, None]).sum(1)
    return below + rng.integers(0, ties + 1)


def snap_to_grid(truth: np.ndarray, draws: np.ndarray, log: bool = False) -> np.ndarray:
    """Each true value replaced by the grid point of the cell it falls in, for draws that are
    points of a grid evenly spaced in ``x`` (or in ``log x`` with ``log=True``).

    The grid is read off the draws themselves (every distinct value drawn, over all
    replications), so the test does not depend on how the engine builds its grid; the grid
    must be evenly spaced (checked), so that the nearest point is the one whose cell holds the
    value.
    """
    values = np.unique(draws)
    coord = np.log(values) if log else values
    gaps = np.diff(coord)
    steps = gaps / gaps.min()
    assert np.abs(steps - np.round(steps)).max() < 0.01, "draws not on an evenly spaced grid"
    t = np.log(truth) if log else truth
    idx = np.clip(np.searchsorted(coord, t), 1, len(coord) - 1)
    nearest = np.where(t - coord[idx - 1] <= coord[idx] - t, idx - 1, idx)
    return values[nearest]


def snap_to_cells(truth: np.ndarray, cells: list, log: bool = False) -> np.ndarray:
    """Each replication's true value replaced by the point of its own grid whose cell holds it
    (``cells[s] = (points, widths)``, an exact posterior's ``engine_state["scalar_cells"]``:
    cell ``i`` is ``points[i] +- widths[i] / 2``, in ``log x`` with ``log=True``), as the
    engine's draws represent it (in torch's default dtype, like the posterior's draws). A value
    in no cell (where the grid holds no mass) goes to the nearest point."""
    out = np.empty(len(truth))
    for s, (points, widths) in enumerate(cells):
        t = math.log(truth[s]) if log else truth[s]
        distance = (points.double() - t).abs()
        inside = (distance <= widths.double() / 2).nonzero().flatten()
        i = int(inside[distance[inside].argmin()]) if len(inside) else int(distance.argmin())
        value = points[i : i + 1].double()
        out[s] = float((value.exp() if log else value).to(torch.get_default_dtype()))
    return out


def uniformity_pvalue(rank: np.ndarray, L: int) -> float:
    """Chi-square test that ``rank`` is uniform on ``0..L`` (one bin per rank value)."""
    counts = np.bincount(rank, minlength=L + 1)
    assert len(counts) == L + 1, "a rank outside 0..L"
    return float(stats.chisquare(counts).pvalue)


def thin(draws: np.ndarray, L: int) -> np.ndarray:
    """``[n, D] -> [n, L]``: every ``D // L``-th draw (draws of an engine that are already
    independent, such as resampled grid points or guide samples, need no more thinning)."""
    step = draws.shape[1] // L
    assert step >= 1, f"need at least {L} draws, got {draws.shape[1]}"
    return draws[:, : step * L : step]
