"""How the assistant hears the original study's users: the tones it fits with.

* ``config``: each message in the tone of its speaker's configured manner (what the run's
  configuration told GPT-4 to use: exact, but not available for new agents);
* ``read``: each message's tone read from its text by a tone reader
  (:mod:`scai.models.tone_reader`), whose confusion matrix enters the hypothesis, so a
  reader's mistakes cost evidence in proportion to how often it makes them. By default each
  condition's messages are read by a reader trained on the other conditions' messages
  (:func:`cross_fitted_readers`): the shipped reader was trained on these very logs, and
  reading its own training text it makes almost no mistakes;
* ``none``: no tones.
"""

from __future__ import annotations

import pandas as pd

from scai.models.hypotheses import Hypothesis
from scai.models.tone_reader import ToneReader, apply_tones

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


def cross_fitted_readers(
    logs: dict[str, pd.DataFrame], progress: bool = False
) -> dict[str, ToneReader]:
    """Per condition of the logs (``policy_manner``, as the runs table names it): a reader
    trained, as the shipped one, on the users' messages of every other condition, carrying
    the confusion matrix estimated that way (:meth:`Evaluation.held_out_readers`): the reads
    are out of sample; the matrix, pooled over every condition's held-out reads, holds this
    condition's own among them. Empty where the logs have fewer than two
    conditions (nothing to hold out). ``progress``: a bar of the readers, on a terminal."""
    from scai.models.tone_reader.evaluation import held_out
    from scai.models.tone_reader.training import confusion_scheme, labelled_messages

    messages = labelled_messages(logs["games"], logs["users"], logs["runs"])
    if confusion_scheme(messages) != "conditions":
        return {}
    return held_out(messages, "conditions", progress=progress).held_out_readers()
