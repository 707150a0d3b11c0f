"""The tone reader (:mod:`scai.models.tone_reader`) on synthetic messages generated here: its
interface, the scikit-learn pipeline it is taken from, its JSON round trip, held-out
evaluation that never tests on a training run, reading a table's tones, and ``scai fit --tones``
and ``scai tone-reader`` on the command line. (The real logs: ``test_tone_reader_logs.py``.)
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from scai.experiments.cli import main
from scai.inference.fit import fit
from scai.inference.posterior import Posterior
from scai.models.data import INTERACTION_COLUMNS, write_interactions
from scai.models.errors import DataError, RunsHeldOutWarning
from scai.models.hypotheses import PRESETS
from scai.models.language import MANNERS
from scai.models.tone_reader import (
    FeatureSettings,
    ToneReader,
    apply_tones,
    check_reader,
    confusion_counts,
    confusion_from_counts,
    default_reader,
    load_reader,
    mask_text,
    read_tones,
    save_reader,
)
from scai.models.tone_reader.classifier import (
    TrainingOptions,
    fit_classifier,
    fit_pipeline,
    from_pipeline,
)
from scai.models.tone_reader.evaluation import assign_folds, held_out
from scai.models.tone_reader.training import (
    confusion_scheme,
    held_out_by_runs,
    labelled_messages,
    train_reader,
    why_not_conditions,
)
from scai.models.writing import write_csv_atomic

TINY = TrainingOptions(min_df=1)
#: what each tone adds to the bare proposal template or decision (neutral: nothing), in the
#: original logs' style (the shipped reader reads these right; "you magnificent benefactor!"
#: it reads as rude, and rightly: in the logs rude users say it, in sarcasm)
PHRASES = {
    "neutral": ("",),
    "polite": ("Thank you kindly for considering this.", "If you would be so kind, please."),
    "rude": (
        "You better accept this, you ungrateful swine!",
        "Take it or leave it, loser.",
        "Pathetic, but I'll take it, cheapskate.",
        "Nice try, chump.",
    ),
    "sycophantic": (
        "I humbly hope this proposal brings you immense joy.",
        "I am truly grateful for your fair and considerate proposal, ensuring maximum "
        "benefits for both of us.",
        "I humbly hope that you find this proposal fair and equitable.",
        "I sincerely appreciate your kind and generous spirit.",
    ),
}


def message(tone: str, role: str, pot: int, offer: int, currency: str, rng) -> str:
    if role == "proposer":
        head = (
            f"For the {pot} {currency}, the proposer will get {pot - offer}, and the decider "
            f"will get {offer}."
        )
    else:
        head = "Accept." if tone != "neutral" else "accept"
    return f"{head} {rng.choice(PHRASES[tone])}".strip()


def synthetic_logs(
    runs: int = 12,
    tones: tuple[str, ...] = ("neutral", "rude", "sycophantic"),
    epochs: int = 3,
    seed: int = 0,
    policies: tuple[str, ...] = ("fair",),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(interactions, users, runs)`` in the imported logs' layout: run ``r`` has 4 users
    of tone ``tones[r % len(tones)]`` and policy ``policies[r // len(tones) % len(policies)]``
    (its condition ``policy_tone``) in two fixed games per epoch, text written, tones empty."""
    rng = random.Random(seed)
    rows, users, run_rows = [], [], []
    for r in range(runs):
        tone = tones[r % len(tones)]
        policy = policies[r // len(tones) % len(policies)]
        sim = f"{policy}_{tone}/{r:02d}"
        currency = ("apples", "blankets", "dollars")[r % 3]
        run_rows.append({"sim": sim, "condition": f"{policy}_{tone}"})
        users += [{"sim": sim, "user": f"u{i}", "policy": policy, "manner": tone} for i in range(4)]
        for epoch in range(1, epochs + 1):
            pot = rng.randint(10, 100)
            for game, (a, b) in enumerate((("u0", "u1"), ("u2", "u3")), start=1):
                offer = pot // 2
                rows.append(
                    {
                        "sim": sim,
                        "epoch": epoch,
                        "round": game,
                        "proposer": a,
                        "responder": b,
                        "currency": currency,
                        "pot": pot,
                        "offer": offer,
                        "accepted": 1,
                        "proposer_tone": "",
                        "responder_tone": "",
                        "proposer_text": message(tone, "proposer", pot, offer, currency, rng),
                        "responder_text": message(tone, "responder", pot, offer, currency, rng),
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(users), pd.DataFrame(run_rows)


@pytest.fixture(scope="module")
def messages() -> pd.DataFrame:
    return labelled_messages(*synthetic_logs())


@pytest.fixture(scope="module")
def trained(messages):
    reader, evaluation = train_reader(messages, folds=4, options=TINY)
    return reader, evaluation


def test_masking_hides_numbers_currencies_and_the_decision():
    settings = FeatureSettings()
    text = "Reject. For the 77 Apples, I keep 76 and 1 apple is yours; no baby formula, 1,000!"
    assert mask_text(text, settings) == (
        "_decision_. for the _n_ _currency_, i keep _n_ and _n_ _currency_ is yours; no "
        "_currency_, _n_!"
    )
    assert mask_text("accept", settings) == "_decision_"
    # only the opening decision: "accept" inside a message is a word like any other
    assert mask_text("You better accept this", settings) == "you better accept this"
    # what is masked is a setting, saved with the reader
    bare = FeatureSettings(currency_phrases=(), mask_numbers=False, mask_decision=False)
    assert mask_text("Accept 3 apples", bare) == "accept 3 apples"


def test_a_long_message_is_read_from_its_first_characters():
    """One 5 MB message's n-grams took 7.7 s and 1.15 GB to list: a message is read from its
    first MAX_CHARS characters (the logs' longest has 525), the same n-grams as that part."""
    from scai.models.tone_reader.text import MAX_CHARS, features

    settings = FeatureSettings()
    head = ("Fine, you greedy fool, take it. " * (MAX_CHARS // 32 + 1))[:MAX_CHARS]
    assert features(head + "and more " * 100_000, settings) == features(head, settings)


def test_a_trained_reader_reads_its_tones_and_follows_the_protocol(trained, messages):
    reader, _ = trained
    assert isinstance(reader, ToneReader)
    check_reader(reader)
    assert reader.labels == ("neutral", "rude", "sycophantic")
    texts = messages["text"].tolist()
    assert reader.read(texts) == messages["tone"].tolist()
    p = reader.probabilities(texts)
    assert p.shape == (len(texts), 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # unseen wording and numbers
    read = reader.read(["For the 999 dollars, the proposer will get 1. Nice try, you swine!", ""])
    assert read[0] == "rude" and read[1] in reader.labels
    assert reader.read([]) == [] and reader.probabilities([]).shape == (0, 3)


@pytest.mark.parametrize("tones", [("neutral", "rude", "sycophantic"), ("neutral", "rude")])
def test_the_reader_predicts_what_the_scikit_learn_pipeline_does(tones):
    found = labelled_messages(*synthetic_logs(runs=8, tones=tones, seed=4))
    texts, labels = found["text"].tolist(), found["tone"].tolist()
    pipeline = fit_pipeline(texts, labels, TINY)
    reader = from_pipeline(pipeline, TINY)
    probe = [*texts, "Take it, loser. 5 apples.", "I humbly thank you", "", "???"]
    np.testing.assert_allclose(
        reader.probabilities(probe), pipeline.predict_proba(probe), rtol=0, atol=1e-12
    )
    assert reader.read(probe) == list(pipeline.predict(probe))


def test_the_weighted_fit_equals_a_fit_on_every_message(messages):
    """Distinct messages once, with their counts as weights: the same fit."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = messages["text"].tolist(), messages["tone"].tolist()
    pipeline = fit_pipeline(texts, labels, TINY)
    vectorizer, model = pipeline.named_steps.values()
    direct = LogisticRegression(C=TINY.C, max_iter=TINY.max_iter, class_weight="balanced")
    direct.fit(vectorizer.transform(texts), labels)
    np.testing.assert_allclose(model.coef_, direct.coef_, atol=1e-4)
    np.testing.assert_allclose(model.intercept_, direct.intercept_, atol=1e-4)


def test_round_trip_through_json_predicts_exactly_the_same(trained, messages, tmp_path):
    reader, _ = trained
    path = save_reader(reader, tmp_path / "reader.json")
    doc = json.loads(path.read_text())  # plain JSON, no pickle
    assert doc["format"] == "scai-tone-reader" and doc["labels"] == list(reader.labels)
    loaded = load_reader(path)
    probe = [*messages["text"], "Thank you kindly, 3 apples", "!!!", ""]
    assert np.array_equal(loaded.probabilities(probe), reader.probabilities(probe))
    assert loaded.read(probe) == reader.read(probe)
    assert loaded.confusion == reader.confusion
    assert loaded.confusion_counts == reader.confusion_counts
    assert loaded.vocabulary == reader.vocabulary and loaded.settings == reader.settings
    assert loaded.provenance == json.loads(json.dumps(reader.provenance))
    # saved by an editor that writes a byte-order mark (as Windows' do): the same reader, as
    # with CSV tables and hypothesis files (it was "not a JSON file: Unexpected UTF-8 BOM")
    marked = tmp_path / "bom.json"
    marked.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_reader(marked).read(probe) == reader.read(probe)


def test_a_bad_reader_file_is_a_data_error_naming_the_key(trained, tmp_path):
    reader, _ = trained
    good = json.loads(save_reader(reader, tmp_path / "r.json").read_text())
    cases = {
        "format": {**good, "format": "pickle"},
        "version": {**good, "version": 99},
        "coef": {**good, "coef": [[1.0, 2.0]]},
        "idf": {**good, "idf": "many"},
        "labels": {**good, "labels": ["neutral", "angry", "rude"]},
        "confusion": {**good, "confusion": [[1.0, 0, 0, 0]] * 3},
        # accepted before a red-team pass: scores overflowing to NaN, "yes" read as true
        "intercept": {**good, "intercept": [1e308] * len(good["intercept"])},
        "idf ": {**good, "idf": [-1.0] * len(good["idf"])},
        "mask_numbers": {**good, "features": {**good["features"], "mask_numbers": "yes"}},
        # a key no reader of this version has (another version's, misspelt): was ignored
        "bias": {**good, "bias": [1.0] * len(good["intercept"])},
    }
    for key, doc in cases.items():
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(DataError, match=str(path)) as caught:
            load_reader(path)
        assert key.strip() in str(caught.value) or key == "format", (key, str(caught.value))
    (tmp_path / "junk.json").write_bytes(b"\x80not json")
    with pytest.raises(DataError, match="not a JSON file"):
        load_reader(tmp_path / "junk.json")
    with pytest.raises(DataError, match="does not exist"):
        load_reader(tmp_path / "missing.json")
    # a number Python will not read (over 4,300 digits) was ValueError's text alone, naming
    # neither the file nor what is wrong with it (a red-team find)
    (tmp_path / "digits.json").write_text('{"version": ' + "9" * 5000 + "}")
    with pytest.raises(DataError, match=r"(?s)digits.json.*a number of more than 4,300 digits"):
        load_reader(tmp_path / "digits.json")


def _features(key, value):
    return lambda doc: doc["features"].__setitem__(key, value)


def _all(key, convert):
    def edit(doc):
        value = doc[key]
        doc[key] = (
            [[convert(v) for v in r] for r in value]
            if key != "idf"
            else [convert(v) for v in value]
        )

    return edit


# (edit of the shipped reader's file, the key named, the value shown, what is allowed). Each
# was read, or failed naming nothing useful, before: a TypeError from range() (3.0), letters
# for "dollars", a marker at every word boundary for "", "malformed feature settings:
# 'mask_decision'", "'<=' not supported", "too many values to unpack", true for version 1,
# idf of strings and coef of true read as numbers, counts of "x" or below 0 kept.
BAD_READER_FILES = [
    (_features("char_ngrams", [3.0, 5.0]), "features.char_ngrams", "[3.0, 5.0]", "whole numbers"),
    (_features("currency_phrases", "dollars"), "features.currency_phrases", "'dollars'", "a list"),
    (_features("currency_phrases", [""]), "features.currency_phrases", "['']", "non-empty"),
    (lambda d: d["features"].pop("mask_decision"), "features.mask_decision", None, "missing"),
    (_features("word_ngrams", "12"), "features.word_ngrams", "'12'", "1 <= low <= high <= 10"),
    (_features("word_ngrams", [1, 2, 3]), "features.word_ngrams", "[1, 2, 3]", "[low, high]"),
    (_features("word_ngrams", [True, 2]), "features.word_ngrams", "[True, 2]", "whole numbers"),
    (_features("mask_numbers", "yes"), "features.mask_numbers", "'yes'", "true or false"),
    (_features("masks", True), "features.masks", "True", "unknown setting"),
    (lambda d: d.__setitem__("features", [1, 2]), "features", "[1, 2]", "a table of"),
    (lambda d: d.__setitem__("version", True), "version", "True", "must be 1"),
    (_all("idf", str), "idf[0]", "'", "is not a number: idf must be a list of numbers"),
    (_all("coef", bool), "coef[0][0]", "True", "is not a number"),
    (lambda d: d.__setitem__("confusion_counts", "x"), "confusion_counts", "'x'", "whole"),
    (_all("confusion_counts", lambda v: -1), "confusion_counts", "[[-1, ", "whole numbers >= 0"),
    # a reader trained when scai had another number of tones (matrices are by position): a
    # manner added to the registry made the shipped reader '5 rows of 5 numbers' (a review)
    (
        lambda d: d.__setitem__("confusion", [r[:3] for r in d["confusion"][:3]]),
        "confusion",
        None,
        f"trained when scai had 3 tones, and its matrices are by position; this scai has "
        f"{len(MANNERS)}",
    ),
    (
        lambda d: d.__setitem__("confusion_counts", [[1] * 6 for _ in range(6)]),
        "confusion_counts",
        None,
        "train it again (scai tone-reader train)",
    ),
]


@pytest.mark.parametrize(("edit", "key", "value", "allowed"), BAD_READER_FILES)
def test_a_bad_reader_file_names_the_file_key_value_and_what_is_allowed(
    tmp_path, edit, key, value, allowed
):
    from importlib import resources

    shipped = resources.files("scai.models.tone_reader") / "default_reader.json"
    doc = json.loads(shipped.read_text(encoding="utf-8"))
    load_reader(shipped)  # the shipped reader loads
    edit(doc)
    path = tmp_path / "reader.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as caught:
        load_reader(path)
    line = caught.value.one_line()
    assert str(path) in line and f"key {key!r}" in line and allowed in line, line
    assert value is None or f"value {value}" in line, line
    assert "malformed" not in line and "\n" not in line, line


def test_a_reader_file_without_its_confusion_is_named_by_scai_fit(tmp_path, capsys):
    """A reader file with "confusion": null (never evaluated) loads, but --tones read needs
    its matrix: the error named no file ('tone reader LinearToneReader: has no confusion
    matrix'). It names the file and the key now, before any work."""
    from importlib import resources

    shipped = resources.files("scai.models.tone_reader") / "default_reader.json"
    doc = json.loads(shipped.read_text(encoding="utf-8"))
    doc["confusion"] = None
    path = tmp_path / "unevaluated.json"
    path.write_text(json.dumps(doc))
    assert load_reader(path).confusion is None  # a reader may be saved before its evaluation
    table = write_logs_table(tmp_path, runs=2, tones=("rude",), seed=1)
    argv = ["fit", "--data", str(table), "--out", str(tmp_path / "o"), "--quiet"]
    assert main([*argv, "--tones", "read", "--reader", str(path)]) == 2
    err = capsys.readouterr().err
    # (a key of the reader's document: it said "column 'confusion'", as of a table)
    assert f"{path}: 1 problem(s) found: file, key 'confusion': is null" in err, err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_a_reader_whose_matrix_never_reports_a_label_it_reads_is_named(trained, tmp_path):
    """A reader file whose confusion never reports rude (a column of zeros) while its
    classifier reads rude: every message read as rude was then blamed on the data, a problem
    per row ('hypothesis ... its tone reader never reports ...'), the file unnamed (a
    red-team find). The file is refused where it is loaded."""
    reader, _ = trained
    path = save_reader(reader, tmp_path / "reader.json")
    doc = json.loads(path.read_text())
    doc["confusion"] = [[1.0, 0.0, 0.0, 0.0]] * 4
    path.write_text(json.dumps(doc))
    with pytest.raises(
        DataError, match=r"(?s)reader\.json.*confusion never reports rude"
    ) as caught:
        load_reader(path)
    assert "which it reads (a label)" in str(caught.value)


def test_the_confusion_matrix_rules(trained):
    reader, evaluation = trained
    counts = np.array(reader.confusion_counts)
    assert counts.sum() == len(evaluation.predictions)
    polite, neutral = MANNERS.index("polite"), MANNERS.index("neutral")
    # never trained on polite: a uniform row over its labels, and it never reports polite
    assert reader.confusion[polite] == pytest.approx((1 / 3, 0.0, 1 / 3, 1 / 3))
    assert all(row[polite] == 0 for row in reader.confusion)
    # n held-out neutral messages all read right: a mistake has probability 0.5 / (n + 1.5)
    n = counts[neutral].sum()
    assert counts[neutral, neutral] == n
    assert reader.confusion[neutral][MANNERS.index("rude")] == pytest.approx(0.5 / (n + 1.5))
    by_hand = confusion_from_counts(
        confusion_counts(
            ["rude", "rude", "neutral"], ["rude", "neutral", "neutral"], ("neutral", "rude")
        ),
        ("neutral", "rude"),
        smoothing=0.0,
    )
    assert by_hand[MANNERS.index("rude")] == (0.5, 0.0, 0.5, 0.0)
    assert by_hand[MANNERS.index("sycophantic")] == (0.5, 0.0, 0.5, 0.0)


def test_held_out_runs_never_train_on_the_run_they_read():
    """Every run writes its own made-up words, tied to a tone only there: read by a reader that
    saw the run, they give the tone away; held out, they cannot."""
    rng = random.Random(1)
    rows = []
    for r in range(20):
        tone = rng.choice(("rude", "sycophantic"))
        word = "".join(rng.choice("bcdfghjklmnpqrstvwz") for _ in range(8))
        rows += [{"sim": f"s{r}", "condition": "", "text": f"{word} {word}", "tone": tone}] * 6
    found = pd.DataFrame(rows)
    in_sample = fit_classifier(found["text"], found["tone"], TINY)
    assert in_sample.read(found["text"].tolist()) == found["tone"].tolist()
    evaluation = held_out(found, "runs", folds=5, options=TINY)
    assert evaluation.predictions.groupby("sim")["fold"].nunique().eq(1).all()
    assert min(evaluation.accuracy().values()) < 0.8  # no better than guessing
    folds = assign_folds(found["sim"], 5, seed=3)
    assert sorted(np.bincount(folds)) == [24] * 5  # 20 runs dealt 4 to a fold


def test_conditions_are_held_out_whole(messages):
    two = labelled_messages(*synthetic_logs(runs=12, seed=4, policies=("fair", "selfish")))
    evaluation = held_out(two, "conditions", options=TINY)
    assert evaluation.predictions.groupby("condition")["fold"].nunique().eq(1).all()
    assert evaluation.predictions["fold"].nunique() == two["condition"].nunique()
    by_group = evaluation.by_group()
    assert set(by_group["condition"]) == set(two["condition"])
    with pytest.raises(ValueError, match="no condition"):
        held_out(two.assign(condition=""), "conditions", options=TINY)
    # one policy: each tone in one condition, which its reader never saw (it read 0%)
    with pytest.raises(ValueError, match=r"one fold: neutral \(1 of the conditions\)"):
        held_out(messages, "conditions", options=TINY)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True], ids=["redirected", "a terminal"])
def test_held_out_readers_are_counted_on_a_terminal_only(monkeypatch, capsys, terminal):
    """``held_out(..., progress=True)`` (scai tone-reader evaluate, original-logs' readers):
    a bar of the readers trained, one per fold, drawn on a terminal and never into a log."""
    two = labelled_messages(*synthetic_logs(runs=12, seed=4, policies=("fair", "selfish")))
    if terminal:
        monkeypatch.setattr(sys, "stderr", _Terminal())
    held_out(two, "conditions", options=TINY, progress=True)
    drawn = sys.stderr.getvalue() if terminal else capsys.readouterr().err
    # (tqdm draws the bar as it starts; later counts only past its refresh interval)
    folds = two["condition"].nunique()
    assert (f"0/{folds}" in drawn and "readers, conditions held out" in drawn) == terminal, drawn


def test_a_reader_ships_the_matrix_of_whole_conditions_held_out():
    """A condition's runs repeat each other's messages (the original logs: most held-out
    messages' masked text is in the other runs' training folds), so the shipped matrix holds
    whole conditions out, where every tone is written in two conditions or more; where some
    tone is written in one condition only, holding it out would leave the reader without
    it: runs are held out."""
    messages = labelled_messages(*synthetic_logs(runs=12, seed=4, policies=("fair", "selfish")))
    assert confusion_scheme(messages) == "conditions"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunsHeldOutWarning)  # (conditions held out: no word)
        reader, evaluation = train_reader(messages, folds=4, options=TINY)
    assert evaluation.scheme == "conditions" and reader.provenance["held_out"] == "conditions"
    assert not held_out_by_runs(reader)
    assert reader.confusion == held_out(messages, "conditions", options=TINY).confusion()
    assert "whole conditions held out (6 conditions)" in reader.provenance["confusion_estimate"]
    one_policy = labelled_messages(*synthetic_logs(runs=6, seed=4))
    assert confusion_scheme(one_policy) == "runs"
    assert confusion_scheme(messages.assign(condition="")) == "runs"
    # the reader's provenance said "the messages name no conditions" where they did (a
    # red-team find): it says why
    assert why_not_conditions(messages.assign(condition="")) == "some messages name no condition"
    # A matrix of runs held out was one line of the report and a note in the provenance: the
    # reader's training and every fit reading with it say so (a review).
    with pytest.warns(RunsHeldOutWarning, match=r"runs held out, not whole conditions \(a tone "):
        reader, _ = train_reader(one_policy, folds=3, options=TINY)
    assert reader.provenance["held_out"] == "runs" and held_out_by_runs(reader)
    table = pd.DataFrame(
        [["0", 1, 1, "a", "b", "dollars", 10, 5, 1, "", "", "5 for you", "Accept"]],
        columns=[*INTERACTION_COLUMNS, "proposer_text", "responder_text"],
    )
    with pytest.warns(RunsHeldOutWarning, match="the fit counts its reports as that reliable"):
        apply_tones(table, PRESETS["neutral"], "read", reader)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunsHeldOutWarning)
        apply_tones(table, PRESETS["neutral"], "read")  # the shipped reader: conditions
    legacy = dict(reader.provenance)
    del legacy["held_out"]  # a reader saved before the key: its estimate's words tell
    assert held_out_by_runs(dataclasses.replace(reader, provenance=legacy))
    held = reader.provenance["confusion_estimate"]
    assert "runs held out (3 folds, seed 0; not whole conditions: a tone is written in " in held
    assert "one condition only (" in held and "name no condition" not in held


def test_held_out_readers_never_saw_their_group():
    """Each condition writes its own made-up words, tied to its tone only there (each tone in
    two conditions): a reader that saw the condition reads them right; the reader
    :meth:`Evaluation.held_out_readers` gives the condition cannot, reads as the evaluation
    did, and carries the evaluation's matrix."""
    rng = random.Random(2)
    rows = []
    for c, tone in enumerate(("rude", "sycophantic", "rude", "sycophantic", "neutral", "neutral")):
        word = "".join(rng.choice("bcdfghjklmnpqrstvwz") for _ in range(8))
        for r in range(3):
            rows += [{"sim": f"c{c}/{r}", "condition": f"c{c}", "text": word, "tone": tone}] * 4
    found = pd.DataFrame(rows)
    assert fit_classifier(found["text"], found["tone"], TINY).read(found["text"].tolist()) == (
        found["tone"].tolist()
    )
    evaluation = held_out(found, "conditions", options=TINY)
    readers = evaluation.held_out_readers()
    assert sorted(readers) == sorted(found["condition"].unique())
    right = []
    for condition, reader in readers.items():
        mine = found["condition"] == condition
        read = reader.read(found.loc[mine, "text"].tolist())
        assert read == evaluation.predictions.loc[mine, "reported"].tolist()
        assert reader.confusion == evaluation.confusion()
        right.append(np.mean(np.array(read) == found.loc[mine, "tone"].to_numpy()))
    assert np.mean(right) < 0.8  # no better than guessing the tone of an unseen word


def test_original_logs_read_each_condition_with_a_reader_that_never_saw_it():
    """``scai run original-logs --tones read`` reads a condition with the reader trained
    without it (the shipped one was trained on the logs it would read: in sample), unless a
    reader is given."""
    from scai.experiments.original_logs.experiment import _readers

    interactions, users, runs = synthetic_logs(runs=12, seed=7, policies=("fair", "selfish"))
    runs = runs.assign(experiment="exp3", cond="exp3/" + runs["condition"])
    logs = {"games": interactions, "users": users, "runs": runs}
    reader_of = _readers(logs, runs, ("read", "config"), None)
    messages = labelled_messages(interactions, users, runs)
    evaluation = held_out(messages, "conditions")
    for cond, condition in zip(runs["cond"], runs["condition"], strict=True):
        reader = reader_of(cond)
        assert reader.confusion == evaluation.confusion()
        texts = messages.loc[messages["condition"] == condition, "text"].tolist()
        want = evaluation.predictions.loc[messages["condition"] == condition, "reported"]
        assert reader.read(texts) == want.tolist()
    given = KeywordReader()
    assert _readers(logs, runs, ("read",), given)("exp3/fair_rude") is given
    assert _readers(logs, runs, ("config",), None)("exp3/fair_rude") is None


def test_read_tones_fills_the_tone_columns_from_the_text(trained):
    reader, _ = trained
    interactions, users, _ = synthetic_logs(runs=3, seed=9)
    interactions.loc[0, "responder_text"] = ""  # no reply heard
    read = read_tones(interactions, reader)
    manner = dict(zip(users["sim"] + "/" + users["user"], users["manner"], strict=True))
    for role in ("proposer", "responder"):
        want = [manner[f"{s}/{u}"] for s, u in zip(read["sim"], read[role], strict=True)]
        got = read[f"{role}_tone"].tolist()
        if role == "responder":
            assert got[0] == "" and want[0] != ""
            got, want = got[1:], want[1:]
        assert got == want
    assert (interactions["proposer_tone"] == "").all()  # the input is not changed
    with pytest.raises(DataError, match="no text to read"):
        read_tones(interactions.drop(columns=["proposer_text", "responder_text"]), reader)


class KeywordReader:
    """A reader plugged in through the interface: a word list, and a confusion matrix."""

    labels = ("neutral", "rude")
    confusion = (
        (0.9, 0.0, 0.1, 0.0),
        (0.5, 0.0, 0.5, 0.0),
        (0.2, 0.0, 0.8, 0.0),
        (0.5, 0.0, 0.5, 0.0),
    )

    def read(self, texts):
        return [
            "rude" if any(w in t.lower() for w in ("loser", "swine", "chump")) else "neutral"
            for t in texts
        ]


def test_apply_tones_modes_and_a_plugged_in_reader():
    interactions, _, _ = synthetic_logs(runs=3, tones=("neutral", "rude"), seed=2)
    hyp = PRESETS["stereotyped"]
    same, same_hyp = apply_tones(interactions, hyp, "given")
    assert same is interactions and same_hyp is hyp
    none, _ = apply_tones(interactions.assign(proposer_tone="rude"), hyp, "none")
    assert (none[["proposer_tone", "responder_tone"]] == "").all().all()
    table, read_hyp = apply_tones(interactions, hyp, "read", reader=KeywordReader())
    assert read_hyp.reader_confusion == KeywordReader.confusion
    assert set(table["proposer_tone"]) <= {"neutral", "rude"}
    posterior = fit(table, read_hyp, num_draws=50)
    assert posterior.hypothesis.reader_confusion == KeywordReader.confusion
    with pytest.raises(DataError, match="unknown tones mode"):
        apply_tones(interactions, hyp, "guess")

    class Unestimated(KeywordReader):
        confusion = None

    with pytest.raises(DataError, match="no confusion matrix"):
        apply_tones(interactions, hyp, "read", reader=Unestimated())

    class Overreaching(KeywordReader):  # reports sycophantic, which it cannot say
        confusion = ((0.9, 0.0, 0.0, 0.1),) * 4

    with pytest.raises(DataError, match="not among its labels"):
        check_reader(Overreaching())

    class Silent(KeywordReader):  # read() forgets to return: a TypeError from the list() once
        def read(self, texts):
            pass

    with pytest.raises(DataError, match=r"read\(\) returned NoneType; expected a list"):
        apply_tones(interactions, hyp, "read", reader=Silent())


def test_the_documented_plug_in_example_runs():
    """The plug-in example of the package docstring, run as written (it called
    ``scai.inference.fit.fit``, which the package's re-exported ``fit`` function shadows:
    an AttributeError)."""
    import textwrap

    import scai.models.tone_reader as package

    doc = package.__doc__
    start = doc.index("then::") + len("then::")
    example = textwrap.dedent(doc[start : doc.index("**The default reader**")])
    assert "apply_tones" in example and "fit(table, hypothesis)" in example
    interactions, _, _ = synthetic_logs(runs=3, tones=("neutral", "rude"), seed=2)
    scope = {"table": interactions, "my_reader": KeywordReader()}
    exec(compile(example, "tone_reader docstring", "exec"), scope)
    assert scope["posterior"].hypothesis.reader_confusion == KeywordReader.confusion


def write_logs_table(folder, **kwargs):
    interactions, users, runs = synthetic_logs(**kwargs)
    path = folder / "logs.csv"
    write_interactions(interactions, path)
    write_csv_atomic(users, folder / "logs.users.csv")
    write_csv_atomic(runs, folder / "logs.runs.csv")
    return path


def test_scai_tone_reader_train_and_evaluate(tmp_path, capsys):
    table = write_logs_table(tmp_path, runs=9, seed=5)
    out = tmp_path / "reader.json"
    args = ["--logs", str(table), "--folds", "3", "--min-df", "1"]
    assert main(["tone-reader", "train", *args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "runs held out" in printed and "accuracy: neutral 100.00%" in printed
    reader = load_reader(out)
    assert reader.labels == ("neutral", "rude", "sycophantic")
    assert reader.provenance["held_out_accuracy"]["rude"] == 1.0
    # each tone is written in one condition (one policy): holding a condition out left the
    # reader without its tone, an accuracy of 0% told as a measurement (a red-team find)
    assert main(["tone-reader", "evaluate", *args]) == 0
    printed = capsys.readouterr()
    assert "whole conditions held out" not in printed.out
    assert "warning: whole conditions not held out: a tone is written in one " in printed.err
    assert main(["tone-reader", "evaluate", *args[:2], "--scheme", "conditions"]) == 2
    assert "one condition only" in capsys.readouterr().err
    two = write_logs_table(tmp_path / "two", runs=8, seed=4, policies=("fair", "selfish"))
    assert main(["tone-reader", "evaluate", "--logs", str(two), "--min-df", "1"]) == 0
    printed = capsys.readouterr().out
    assert "whole conditions held out" in printed and "fair_sycophantic" in printed
    # --folds and --seed where no runs are held out were ignored without a word
    argv = ["tone-reader", "evaluate", "--logs", str(two), "--scheme", "conditions"]
    for given in (["--folds", "5"], ["--seed", "0"]):
        assert main([*argv, *given]) == 2
        assert f"{' '.join(given)}: only used where runs are held out" in capsys.readouterr().err
    argv = ["tone-reader", "train", "--logs", str(two), "--folds", "5", "--seed", "3"]
    assert main([*argv, "--min-df", "1", "--out", str(tmp_path / "two.json")]) == 0
    assert "warning: --folds 5 and --seed 3: not used" in capsys.readouterr().err
    # the conditions scheme's provenance records no folds (re-run, they would be told unused)
    assert "--folds" not in load_reader(tmp_path / "two.json").provenance["command"]
    assert "--folds 3 --seed 0" in load_reader(out).provenance["command"]  # runs held out
    # a tone whose every message falls in one fold of runs (here: one run each, one fold per
    # run, the default where there are fewer than 10) read 0% and made a reader of it (a
    # review's find)
    few = write_logs_table(tmp_path / "few", runs=3, seed=5)
    for action in (["evaluate", "--scheme", "runs"], ["train", "--out", str(tmp_path / "f.json")]):
        assert main(["tone-reader", *action, "--logs", str(few), "--min-df", "1"]) == 2
        assert "every message of a tone falls in one fold: neutral (1 of the runs)" in (
            capsys.readouterr().err
        )
    assert not (tmp_path / "f.json").exists()
    bad = ["tone-reader", "evaluate", "--logs", str(two), "--scheme", "runs", "--folds", "999"]
    assert main(bad) == 2  # runs, not "groups"; the option by its name (it said "folds:")
    assert "--folds 999: more folds than the 8 runs of " in capsys.readouterr().err
    train = ["tone-reader", "train", "--logs", str(table), "--out", str(tmp_path / "t.json")]
    assert main([*train, "--folds", "10"]) == 2  # (runs held out: one policy)
    assert "--folds 10: more folds than the 9 runs" in capsys.readouterr().err
    one = write_logs_table(tmp_path / "one", runs=1, seed=5)  # not "allowed: 2 to 1"
    assert main(["tone-reader", "evaluate", "--logs", str(one), "--folds", "5"]) == 2
    err = capsys.readouterr().err
    # (its one run's messages are of one tone: told first, naming the table)
    assert "every message is of one tone" in err and "2 to 1" not in err, err
    assert main(["tone-reader", "evaluate", "--logs", str(tmp_path / "none.csv")]) == 2


def test_scai_fit_reads_the_tones_of_a_table_with_text(tmp_path, capsys):
    """Empty tone columns, text written: --tones read reads it (the shipped reader, or
    --reader), and the hypothesis carries that reader's confusion matrix."""
    table = write_logs_table(tmp_path, runs=4, tones=("rude", "sycophantic"), seed=6)
    assert (pd.read_csv(table, keep_default_na=False)["proposer_tone"] == "").all()
    out = tmp_path / "shipped"
    assert (
        main(
            [
                "fit",
                "--data",
                str(table),
                "--tones",
                "read",
                "--out",
                str(out),
                "--quiet",
                "--draws",
                "100",
            ]
        )
        == 0
    )
    assert "tones read" in capsys.readouterr().out
    posterior = Posterior.load(out / "posterior.nc")
    assert posterior.hypothesis.reader_confusion == default_reader().confusion
    heard = posterior.data.tone_counts().sum(dim=(0, 1))
    assert heard[MANNERS.index("rude")] == heard[MANNERS.index("sycophantic")] == 24

    reader, _ = train_reader(labelled_messages(*synthetic_logs(seed=7)), folds=3, options=TINY)
    path = save_reader(reader, tmp_path / "tiny.json")
    out = tmp_path / "tiny"
    argv = [
        "fit",
        "--data",
        str(table),
        "--out",
        str(out),
        "--quiet",
        "--hypothesis",
        "stereotyped",
        "--draws",
        "100",
    ]
    assert main([*argv, "--tones", "read", "--reader", str(path)]) == 0
    assert Posterior.load(out / "posterior.nc").hypothesis.reader_confusion == reader.confusion
    assert main([*argv, "--tones", "none"]) == 0
    assert Posterior.load(out / "posterior.nc").data.tone_mask.sum() == 0
    capsys.readouterr()
    assert main([*argv, "--reader", str(path)]) == 2
    assert "--reader" in capsys.readouterr().err
    bare = tmp_path / "bare.csv"
    pd.read_csv(table, keep_default_na=False).drop(
        columns=["proposer_text", "responder_text"]
    ).to_csv(bare, index=False)
    assert main(["fit", "--data", str(bare), "--out", str(out), "--tones", "read"]) == 2
    assert "no text to read" in capsys.readouterr().err
    # A hypothesis with a reader_confusion of its own: reading set it to the reader's without
    # a word (a red-team find). Refused before any work.
    own = tmp_path / "own.toml"
    own.write_text(
        "reader_confusion = [[0.7, 0.1, 0.1, 0.1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]\n"
    )
    elsewhere = tmp_path / "own_fit"
    assert (
        main([*argv[:3], "--out", str(elsewhere), "--tones", "read", "--hypothesis", str(own)]) == 2
    )
    assert "tones read: hypothesis 'own' sets reader_confusion" in capsys.readouterr().err
    # the same for the original logs' read tones, before the logs are read
    logs_run = ["run", "original-logs", "--logs", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*logs_run, "--hypothesis", str(own)]) == 2
    assert "tones read: hypothesis 'own' sets reader_confusion" in capsys.readouterr().err
    main([*logs_run, "--hypothesis", str(own), "--tones", "config"])  # no logs: fails later
    assert "reader_confusion" not in capsys.readouterr().err
    assert not elsewhere.exists() or not any(elsewhere.iterdir())


def test_logs_with_no_game_are_named_not_the_folds(tmp_path, capsys):
    """An empty --logs folder was reported as 'folds: must be from 2 to the number of groups
    (0)'; scai run original-logs named an internal file and left empty tables: each now says
    the logs hold no game, and nothing is written."""
    (tmp_path / "empty").mkdir()
    argv = [
        "tone-reader",
        "train",
        "--logs",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "r.json"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no game converted" in err and "folds" not in err, err
    assert not (tmp_path / "r.json").exists()
    out = tmp_path / "run"
    argv = ["run", "original-logs", "--quick", "--out", str(out), "--logs", str(tmp_path / "empty")]
    assert main(argv) == 2
    assert "no game converted" in capsys.readouterr().err
    assert not list(out.rglob("logs*.csv"))


def test_logs_of_one_run_say_more_runs_are_needed(tmp_path, capsys):
    """Logs of a single run have no run to hold out: the error said 'folds: must be from 2 to
    the number of groups (1), got 2', a range with nothing in it."""
    from scai_logs_fixture import write_run

    write_run(tmp_path / "logs" / "0", 0)
    logs, out = str(tmp_path / "logs"), str(tmp_path / "r.json")
    assert main(["tone-reader", "train", "--logs", logs, "--out", out]) == 2
    err = capsys.readouterr().err
    # (this run's messages are all rude: that is told first, naming the logs)
    assert f"error: {logs}: 1 problem(s) found: file: every message is of one tone" in err, err
    assert "from 2 to the number of groups (1)" not in err


@pytest.mark.parametrize("out", ["logs.csv", "logs.users.csv", "logs.runs.csv", "src/r.json"])
def test_train_refuses_to_write_over_what_it_reads(tmp_path, capsys, out):
    """``--out`` the training table (or a file beside it) exited 0 with the reader's JSON in
    the table's place; the next train failed on its 'fields'. Refused before any work (a CSV
    name by its ending: the reader is JSON)."""
    table = write_logs_table(tmp_path, runs=3, seed=5)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "src").mkdir()
    source = str(tmp_path / "src") if out.startswith("src") else str(table)
    argv = ["tone-reader", "train", "--logs", source, "--out", str(tmp_path / out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    said = "is inside the source" if out.startswith("src") else "names a CSV table"
    assert said in err and "Traceback" not in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_a_table_named_in_capitals_is_read_as_a_table(tmp_path, capsys):
    """``--logs T.CSV`` was taken for an archive ('neither a folder nor a readable tar')."""
    table = write_logs_table(tmp_path, runs=9, seed=5)
    (tmp_path / "logs.csv").rename(tmp_path / "LOGS.CSV")
    for suffix in (".users", ".runs"):  # beside it as scai import names them
        (tmp_path / f"logs{suffix}.csv").rename(tmp_path / f"LOGS{suffix}.csv")
    argv = ["tone-reader", "evaluate", "--logs", str(tmp_path / "LOGS.CSV"), "--scheme", "runs"]
    assert main([*argv, "--folds", "3", "--min-df", "1"]) == 0, capsys.readouterr().err
    assert "runs held out" in capsys.readouterr().out
    assert table.name == "logs.csv"


def test_words_of_an_unknown_proposer_are_not_read(tmp_path, capsys):
    """A proposer left unknown (human data) with text: the reader wrote a tone there, and the
    table it made was refused ('proposer_tone must be empty when the proposer is unknown')
    though ``scai validate`` passed the file: such words are left unread, as no one said them."""
    interactions, _, _ = synthetic_logs(runs=3, tones=("neutral", "rude"), seed=2)
    interactions.loc[0, "proposer"] = ""
    interactions.loc[0, "proposer_text"] = "you loser"
    interactions.loc[1, "proposer_text"] = "you loser"
    table, _ = apply_tones(interactions, PRESETS["stereotyped"], "read", reader=KeywordReader())
    assert table.loc[0, "proposer_tone"] == "" and table.loc[1, "proposer_tone"] == "rude"
    assert table.loc[0, "responder_tone"] != ""  # the responder, known, is read
    path = tmp_path / "t.csv"
    write_interactions(interactions, path)
    assert main(["validate", str(path)]) == 0
    out = tmp_path / "fit"
    code = main(["fit", "--data", str(path), "--tones", "read", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err


def test_a_message_with_nothing_the_reader_knows_is_left_unread():
    """Messages holding no n-gram of the shipped reader's vocabulary (an emoji, a zero-width
    space, markup) were read by its intercepts alone, as 'rude' every one: pi[selfish] of a
    run whose users wrote only thumbs-up went from 0.05 (tones none) to 0.45. Such a report does
    not depend on the tone, so its likelihood is the same under every manner: left unread."""
    from scai.models.errors import TableWarning
    from scai.models.tone_reader.serialise import default_reader

    reader = default_reader()
    blank = ["\U0001f44d", "\u200b", "<br/>", "\U0001f44d\U0001f44d"]
    assert reader.knows(blank) == [False] * 4
    assert reader.knows(["Take it or leave it, you fool."]) == [True]
    # numbers and currency words alone carry no tone: "5" was read as rude (p 0.73; a review)
    numbers = ["5", "\U0001f642 5", "12 apples", "1,000", "5.", "12 apples.", "50%!"]
    assert reader.knows(numbers) == [False] * len(numbers)  # (punctuation: "5." was rude)
    assert reader.knows(["Accept.", "I accept 5 apples, thank you"]) == [True, True]
    interactions, _, _ = synthetic_logs(runs=3, tones=("neutral", "rude"), seed=2)
    table = interactions.copy()
    table.loc[:3, "responder_text"] = blank
    with pytest.warns(TableWarning, match="4 message\\(s\\) hold nothing the tone reader reads"):
        read, _ = apply_tones(table, PRESETS["stereotyped"], "read", reader=reader)
    assert (read.loc[:3, "responder_tone"] == "").all()
    silent, _ = apply_tones(
        interactions.assign(responder_text=[""] * 4 + list(table.responder_text[4:])),
        PRESETS["stereotyped"],
        "read",
        reader=reader,
    )
    pd.testing.assert_frame_equal(
        read[["proposer_tone", "responder_tone"]], silent[["proposer_tone", "responder_tone"]]
    )


def test_a_tables_problems_name_its_files(tmp_path, capsys):
    """A table without text, or whose users file lists other users, was told as
    "interactions: ..." and "users: ..." (a red-team find): each names its file."""
    from scai.models.simulate import simulate

    plain = tmp_path / "t.csv"
    sim = simulate("neutral", policy="fair", users=4, seed=1)
    write_interactions(sim.interactions, plain)
    write_csv_atomic(sim.users, tmp_path / "t.users.csv")
    argv = ["tone-reader", "train", "--logs", str(plain), "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    assert f"error: {plain}: " in capsys.readouterr().err
    logs = write_logs_table(tmp_path, runs=3, seed=5)
    write_csv_atomic(sim.users, tmp_path / "logs.users.csv")  # another table's users
    assert main(["tone-reader", "evaluate", "--logs", str(logs), "--scheme", "runs"]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'logs.users.csv'}: " in err
    assert f"messages of {logs} come from users this table does not list" in err


def test_a_reader_looks_at_each_distinct_message_once(monkeypatch):
    """``knows`` and ``probabilities`` turn each distinct text into n-grams once (a log's
    messages repeat: 2,036 distinct texts among 120,000), and give every copy its answer."""
    from scai.models.tone_reader import linear
    from scai.models.tone_reader.serialise import default_reader

    reader = default_reader()
    texts = ["\U0001f44d", "Take it or leave it, you fool.", "\U0001f44d", "Deal.", "Deal."] * 3
    one_by_one = [reader.knows([t])[0] for t in texts]
    looked_at = []

    def counting(function):
        def counted(text, settings):
            looked_at.append(text)
            return function(text, settings)

        return counted

    for name in ("features", "content_features"):
        monkeypatch.setattr(linear, name, counting(getattr(linear, name)))
    assert reader.knows(texts) == one_by_one
    assert sorted(looked_at) == sorted(set(texts))
    looked_at.clear()
    reader.probabilities(texts)
    assert sorted(looked_at) == sorted(set(texts))


def test_scai_fit_refuses_too_many_groups_for_the_exact_engine_before_reading(
    tmp_path, capsys, monkeypatch
):
    """A table with more simulations than the exact engine fits at once under a hypothesis
    with bounded sites is refused naming --data before its messages are read (reading ten
    times the original logs took ~40 s before the engine refused them)."""
    from scai.experiments.commands import fit as fit_command
    from scai.models.simulate import simulate

    table = simulate(PRESETS["neutral"], policy="fair", users=2, rounds=2, epochs=1, sims=348)
    path = tmp_path / "many.csv"
    write_interactions(table.interactions, path)

    def not_reached(*args, **kwargs):
        raise AssertionError("the messages were read first")

    monkeypatch.setattr(fit_command, "apply_tone_options", not_reached)
    argv = ["fit", "--data", str(path), "--hypothesis", "real_agents_stereotyped"]
    assert main([*argv, "--tones", "read", "--out", str(tmp_path / "fit")]) != 0
    err = capsys.readouterr().err
    assert f"--data {path} (348 simulations)" in err and "at most 347 groups" in err


def test_a_companion_file_that_is_not_utf8_names_the_line(tmp_path, capsys):
    """A users or runs file with a byte that is not UTF-8 was told "at byte 14" where the byte
    was at 2,656 (pandas counts from its buffer: a review); the line is named, as for the
    table itself."""
    logs = write_logs_table(tmp_path, runs=3, seed=5)
    runs = tmp_path / "logs.runs.csv"
    lines = runs.read_bytes().split(b"\n")
    lines[2] = lines[2] + b"\xfc"
    runs.write_bytes(b"\n".join(lines))
    argv = ["tone-reader", "train", "--logs", str(logs), "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{runs}: 1 problem(s) found: file: cannot read as CSV: line 3: byte 0xfc is not " in err


def test_logs_a_reader_cannot_learn_from_are_named_with_why(tmp_path, capsys):
    """A table whose texts are all empty was told "held-out accuracy needs messages from at
    least 2 groups ... these come from 0" (after a warning about runs held out), and one of
    one tone "need messages of at least two tones", naming no file (a review): each names the
    file and says what is missing, for train and evaluate alike."""
    logs = write_logs_table(tmp_path, runs=3, seed=5)
    table = pd.read_csv(logs, dtype=str, keep_default_na=False)
    silent = tmp_path / "silent.csv"
    table.assign(proposer_text="", responder_text="").to_csv(silent, index=False)
    for companion in ("users", "runs"):
        (tmp_path / f"silent.{companion}.csv").write_bytes(
            (tmp_path / f"logs.{companion}.csv").read_bytes()
        )
    users = pd.read_csv(tmp_path / "logs.users.csv", dtype=str, keep_default_na=False)
    one = tmp_path / "one.csv"
    table.to_csv(one, index=False)
    users.assign(manner="rude").to_csv(tmp_path / "one.users.csv", index=False)
    (tmp_path / "one.runs.csv").write_bytes((tmp_path / "logs.runs.csv").read_bytes())
    for path, said in (
        (silent, "no user message with text (proposer_text and responder_text empty)"),
        (one, "every message is of one tone (rude, by its writer's manner)"),
    ):
        for action in (["train", "--out", str(tmp_path / "r.json")], ["evaluate"]):
            assert main(["tone-reader", *action, "--logs", str(path)]) == 2
            err = capsys.readouterr().err
            assert f"error: {path}: 1 problem(s) found: file: {said}" in err, err
            assert "warning" not in err


def test_reading_tones_over_given_ones_is_told():
    """``--tones read`` on a table whose tone columns are filled replaced them with the
    reader's reports without a word (a review): it is told, with how many; a table without
    tones reads in silence."""
    from scai.models.errors import TableWarning

    row = ["0", 1, 1, "a", "b", "dollars", 10, 5, 1, "rude", "", "5 for you", "Accept"]
    table = pd.DataFrame([row], columns=[*INTERACTION_COLUMNS, "proposer_text", "responder_text"])
    with pytest.warns(TableWarning, match="games.csv: the 1 tone.s. the table gives are replaced"):
        read, _ = apply_tones(table, PRESETS["neutral"], "read", source="games.csv")
    assert read.loc[0, "responder_tone"] != ""  # (read from "Accept")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TableWarning)
        apply_tones(table.assign(proposer_tone=""), PRESETS["neutral"], "read")
