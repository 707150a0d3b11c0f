"""The tone reader on the original study's GPT-4 logs (``../shared/data/original-scai``, read
in place): with runs held out it reads each manner right at least 95% of the time (issue 12's
target; the runs of a condition repeat each other's messages, so this is reading the prompts'
own templates), and the reader shipped with scai carries the confusion matrix estimated with
whole conditions held out."""

from __future__ import annotations

import pandas as pd
import pytest

from scai.models.language import MANNERS
from scai.models.tone_reader import default_reader, mask_text
from scai.models.tone_reader.evaluation import assign_folds, held_out
from scai.models.tone_reader.training import load_messages

LOG_MANNERS = ("neutral", "rude", "sycophantic")


@pytest.fixture(scope="module")
def messages(original_scai_path):
    """The users' labelled messages, imported once for the module (about 5 s)."""
    return load_messages(original_scai_path)


def test_every_user_message_is_labelled(messages):
    counts = messages["tone"].value_counts().to_dict()
    assert counts == {"neutral": 10_800, "rude": 5_400, "sycophantic": 5_400}
    assert messages["sim"].nunique() == 240 and messages["condition"].nunique() == 9
    assert set(messages["role"]) == {"proposer", "responder"}


def test_held_out_by_run_accuracy_is_at_least_95_percent_per_manner(messages):
    evaluation = held_out(messages, "runs", folds=5, seed=1)
    assert evaluation.predictions.groupby("sim")["fold"].nunique().eq(1).all()
    accuracy = evaluation.accuracy()
    assert set(accuracy) == set(LOG_MANNERS)
    for manner, value in accuracy.items():
        assert value >= 0.95, (manner, value, evaluation.report())


def test_runs_held_out_read_text_seen_in_training(messages):
    """Why the shipped matrix does not hold runs out: most held-out rude and sycophantic
    messages are, once masked, word for word in the other folds (GPT-4 at temperature 0
    writes a condition's prompts alike in every run). Only the folds matter here, the ones
    ``held_out(messages, "runs", folds=10, seed=0)`` holds out (its readers are not needed)."""
    settings = default_reader().settings
    p = messages.assign(
        fold=assign_folds(messages["sim"], 10, seed=0),
        masked=messages["text"].map(lambda t: mask_text(t, settings)),
    )
    for tone in ("rude", "sycophantic"):
        seen = []
        for fold, test in p[p["tone"] == tone].groupby("fold"):
            trained_on = set(p.loc[p["fold"] != fold, "masked"])
            seen.append(test["masked"].isin(trained_on))
        assert pd.concat(seen).mean() > 0.5, tone


def test_the_shipped_reader_reads_the_logs_and_its_confusion_is_the_held_out_one(messages):
    reader = default_reader()
    assert reader.labels == LOG_MANNERS
    counts = reader.confusion_counts
    assert sum(map(sum, counts)) == len(messages)  # every message read once, held out
    conditions = held_out(messages, "conditions")  # the shipped estimate, recomputed
    assert reader.confusion == conditions.confusion()
    assert [list(row) for row in counts] == conditions.counts.tolist()
    for manner in LOG_MANNERS:
        i = MANNERS.index(manner)
        assert reader.confusion[i][i] >= 0.8  # sycophantic 0.86: refusals never seen
    read = reader.read(messages["text"].tolist())
    right = (messages["tone"] == read).groupby(messages["tone"]).mean()
    assert (right >= 0.99).all(), right  # in sample
