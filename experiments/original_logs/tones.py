"""How the assistant hears the original study's users: the tones it fits with.

* ``config``: each message in the tone of its speaker's configured manner (what the run's
  configuration told GPT-4 to use: exact, but not available for new agents);
* ``read``: each message's tone read from its text by a tone reader
  (:mod:`scai.models.tone_reader`), whose confusion matrix enters the hypothesis, so a
  reader's mistakes cost evidence in proportion to how often it makes them;
* ``none``: no tones.
"""

from __future__ import annotations

import pandas as pd

from scai.models.hypotheses import Hypothesis
from scai.models.tone_reader import apply_tones

#: How the assistant may hear the logs' tones (``scai run original-logs --tones``).
LOG_TONES = ("read", "config", "none")


def config_tones(table: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each message's tone set to its speaker's configured manner."""
    manner = dict(zip(zip(users["sim"], users["user"], strict=True), users["manner"], strict=True))
    out = table.copy()
    for role in ("proposer", "responder"):
        keys = zip(out["sim"], out[role], strict=True)
        out[f"{role}_tone"] = [manner.get(key, "") for key in keys]
    return out


def with_tones(
    mode: str, table: pd.DataFrame, users: pd.DataFrame, hypothesis: Hypothesis, reader=None
) -> tuple[pd.DataFrame, Hypothesis]:
    """The table with the tones of ``mode``, and the hypothesis to fit it with (for ``read``,
    the reader's confusion matrix in the observation model:
    :func:`scai.models.tone_reader.apply_tones`)."""
    if mode == "config":
        return config_tones(table, users), hypothesis
    if mode not in LOG_TONES:
        raise ValueError(f"tones must be one of {', '.join(LOG_TONES)}, got {mode!r}")
    return apply_tones(table, hypothesis, mode, reader)
