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

TONE_MODES = ("read", "config", "none")


def config_tones(table: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each message's tone set to its speaker's configured manner."""
    manner = dict(zip(zip(users["sim"], users["user"], strict=True), users["manner"], strict=True))
    out = table.copy()
    for role in ("proposer", "responder"):
        keys = zip(out["sim"], out[role], strict=True)
        out[f"{role}_tone"] = [manner.get(key, "") for key in keys]
    return out


def no_tones(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    out["proposer_tone"] = ""
    out["responder_tone"] = ""
    return out


def with_tones(
    mode: str, table: pd.DataFrame, users: pd.DataFrame, hypothesis: Hypothesis, reader=None
) -> tuple[pd.DataFrame, Hypothesis]:
    """The table with the tones of ``mode``, and the hypothesis to fit it with (for ``read``,
    the reader's confusion matrix in the observation model)."""
    if mode == "config":
        return config_tones(table, users), hypothesis
    if mode == "none":
        return no_tones(table), hypothesis
    if mode == "read":
        from scai.models.tone_reader import read_tones

        return read_tones(table, reader), hypothesis.with_(reader_confusion=reader.confusion)
    raise ValueError(f"tones must be one of {', '.join(TONE_MODES)}, got {mode!r}")
