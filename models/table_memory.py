"""Whether a table's padded layout fits in memory: its shape (groups x users x games), the bytes it
takes, and the check that refuses a table too large before it is laid out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scai.models.errors import DataError, Problem
from scai.models.layout import ASSISTANT
from scai.models.memory import check_memory

# -- how much memory a table's model tensors take ---------------------------------------------
#: Bytes per cell of :class:`scai.models.layout.GroupData`'s padded ``[sims, users, events]``
#: layout at its peak while it is built: eight 8-byte arrays (pot and currency index, offer,
#: accepted as float64, tone, partner, partner event, row), three bool ones (event, proposer
#: and tone masks), the float32 copy of ``accepted`` and the bool ``is_responder``:
#: 8 * 8 + 3 + 4 + 1 (64 are held once the float64 ``accepted`` is freed).
LAYOUT_BYTES_PER_CELL = 72


#: Bytes per table row of the per-event arrays ``from_table`` sorts (two events a row).
LAYOUT_BYTES_PER_ROW = 200


def layout_shape(table: pd.DataFrame) -> tuple[int, int, int]:
    """``(sims, users, events)`` of the padded layout :meth:`GroupData.from_table` builds
    from a validated table: simulations, the most users in one, the most events of one user
    (a game is an event for its responder and for its known proposer). From counts only."""
    if len(table) == 0:
        return 0, 0, 1
    sim = table["sim"].astype(str).to_numpy(dtype=object)
    names = [table[c].astype(str).to_numpy(dtype=object) for c in ("proposer", "responder")]
    keep = np.concatenate([(name != "") & (name != ASSISTANT) for name in names])
    sims, _ = _codes(np.concatenate([sim, sim])[keep])
    users, n_names = _codes(np.concatenate(names)[keep])
    if len(sims) == 0:
        return len(pd.unique(sim)), 0, 1
    # events per (simulation, user), then users per simulation: counts of integer keys
    pairs, per_user = np.unique(sims * n_names + users, return_counts=True)
    _, per_sim = np.unique(pairs // n_names, return_counts=True)
    return len(pd.unique(sim)), int(per_sim.max()), int(per_user.max())


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of ``values`` (equal values, equal codes) and how many distinct values."""
    codes, distinct = pd.factorize(values)
    return codes.astype(np.int64), len(distinct)


def layout_bytes(shape: tuple[int, int, int], rows: int) -> int:
    """Bytes of the padded layout of ``shape = (sims, users, events)`` over ``rows`` games."""
    sims, users, events = shape
    return sims * users * events * LAYOUT_BYTES_PER_CELL + rows * LAYOUT_BYTES_PER_ROW


def check_table_memory(
    table: pd.DataFrame, source: str = "interactions", max_bytes: int | None = None
) -> int:
    """The bytes the model's tensors of ``table`` need (:func:`layout_bytes`); a
    :class:`DataError` saying how much and what to do when that is above the limit
    (:func:`~scai.models.memory.memory_limit`). Call it before :meth:`GroupData.from_table`."""
    shape = layout_shape(table)
    need = layout_bytes(shape, len(table))
    sims, users, events = shape

    def error(text: str) -> DataError:
        return DataError(
            source,
            [
                Problem(
                    None,
                    None,
                    None,
                    f"too large for memory: the model's padded layout [{sims:,} sims x "
                    f"{users:,} users x {events:,} events of the busiest user] {text}. "
                    "Every user is padded to the busiest user's events: split the table (fit "
                    "the simulations in parts, or split the busiest users' games), use "
                    "the SVI engine with minibatches (engine='svi', subsample_size=; --engine svi "
                    "--subsample: they lower the engine's working memory, not the layout), or "
                    "raise the limit (max_memory=, --max-memory)",
                    whole="table",  # (read from a file or not: the table's layout)
                )
            ],
        )

    check_memory(need, error, max_bytes)
    return need
