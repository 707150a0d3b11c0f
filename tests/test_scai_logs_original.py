"""The original study's own logs (``../shared/data/original-scai``): every game converts, scai
accepts the table, and the GPT-4 assistant's curves equal the published ones to 0.1 points
except where the study's own code misread a proposal (8 proposals, named here)."""

from __future__ import annotations

import numpy as np
import pytest

from scai.experiments.cli import main
from scai.experiments.gpt4_logs import per_epoch, reproduce_gpt4
from scai.models.data import read_interactions
from scai.models.layout import GroupData
from scai.models.scai_logs import import_logs, write_import

#: The proposals the study's code misread: (sim, epoch) -> (what it read, what the text says).
MISREAD = {
    ("exp3/fair_rude/10", 3): ("10 of 19", "9 of 19"),
    ("exp3/altruistic_rude/00", 3): ("27 of 28", "1 of 28"),
    ("exp3/altruistic_rude/00", 5): ("1 of 54", "53 of 54"),
    ("exp3/altruistic_rude/12", 3): ("1 of 44", "43 of 44"),
    ("exp3/altruistic_rude/12", 4): ("1 of 46", "45 of 46"),
    ("exp3/altruistic_rude/12", 5): ("1 of 21", "20 of 21"),
    ("exp3/altruistic_rude/16", 4): ("1 of 77", "76 of 77"),
    ("exp3/altruistic_rude/16", 5): ("1 of 41", "40 of 41"),
}
#: Altruistic + rude read right (published: 44.2, 87.1, 91.9, 76.2, 80.0).
CORRECTED_ALTRUISTIC_RUDE = (44.2, 87.1, 92.1, 85.8, 94.1)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, original_scai_path):
    out = tmp_path_factory.mktemp("original") / "logs.csv"
    result = import_logs(original_scai_path)
    write_import(result, out)
    return result, out


def test_every_game_and_message_converts(imported):
    result, _ = imported
    report = result.report
    assert report.problems == [] and sum(report.not_converted.values()) == 0
    c = report.converted
    assert (c["runs"], c["epochs"], c["user_user_games"]) == (240, 1200, 9600)
    assert c["assistant_proposes"] == c["assistant_responds"] == 1200
    # every user message in the template and opening with Accept or Reject
    assert c["user_proposal:template"] == c["user_reply:opening"] == 10800
    gpt4_proposals = sum(
        c[f"gpt4_proposal:{f}"] for f in ("template", "template_inside", "free_text")
    )
    assert gpt4_proposals == 1200 and c["gpt4_proposal:free_text"] > 0
    assert len(result.interactions) == 12000 and len(result.users) == 240 * 18
    assert result.runs.groupby(["experiment", "condition"]).size().eq(20).all()
    assert len(result.runs) == 240 and result.runs["sim"].is_unique


def test_scai_validate_accepts_the_import(imported):
    _, out = imported
    assert main(["validate", str(out)]) == 0


def test_the_model_scores_the_users_and_not_the_assistant(imported):
    result, out = imported
    users = {sim: group["user"].tolist() for sim, group in result.users.groupby("sim")}
    data = GroupData.from_table(read_interactions(out), users=users)
    assert int(data.user_mask.sum()) == 240 * 18
    # two events per user-user game, one per assistant game (the user's own action)
    assert int(data.event_mask.sum()) == 2 * 9600 + 2400


def test_gpt4_curves_equal_the_published_ones_outside_the_misreads(imported):
    _, out = imported
    frame = per_epoch(out)
    differ = frame[~np.isclose(frame["ours"], frame["authors"])]
    assert set(zip(differ["sim"], differ["epoch"], strict=True)) == set(MISREAD)
    reproduction = reproduce_gpt4(out)
    named = reproduction.misparses.set_index(["sim", "epoch"])
    for key, (read, says) in MISREAD.items():
        assert (named.loc[key, "authors_read"], named.loc[key, "says"]) == (read, says)
    curves = reproduction.curves
    published = curves[curves["published"].notna()]
    assert set(published["paper"]) == {
        "altruistic",
        "fair",
        "selfish",
        "altruistic + rude",
        "selfish + sycophantic",
    }
    # the study's own reading gives the published curves everywhere
    assert (published["authors"] - published["published"]).abs().max() <= 0.05 + 1e-9
    # scai's reading gives them too, except altruistic + rude, whose curve it corrects
    same = published[published["paper"] != "altruistic + rude"]
    assert same["difference"].abs().max() <= 0.05 + 1e-9
    rude = curves[curves["condition"] == "exp3/altruistic_rude"].sort_values("epoch")
    np.testing.assert_allclose(rude["ours"], CORRECTED_ALTRUISTIC_RUDE, atol=0.051)
    assert rude["difference"].abs().max() > 10  # the misreads moved the published curve


def test_runs_ending_selfish(imported):
    _, out = imported
    endings = reproduce_gpt4(out).endings.set_index(["condition", "ending"])
    rude = endings.loc[("exp3/altruistic_rude", "selfish")]
    assert (rude["ours"], rude["authors"], rude["published"]) == (1, 4, 4)
    flattering = endings.loc[("exp3/selfish_sycophantic", "near 50%")]
    assert flattering["ours"] == flattering["authors"] == flattering["published"] == 3


def test_the_experiments_import_is_redone_when_a_file_or_the_code_changes(
    tmp_path, original_scai_path, monkeypatch
):
    """``scai run original-logs`` imports the logs once and reuses the tables while the
    source's files and the code are the same. It was keyed by the files' total size: an edit
    that kept the size, or a fixed parser, fitted the old games without a word."""
    import shutil

    from scai.experiments.original_logs import experiment

    source = tmp_path / "logs"
    shutil.copytree(original_scai_path, source)
    calls = []
    real = experiment.import_logs
    monkeypatch.setattr(experiment, "import_logs", lambda path: calls.append(path) or real(path))
    first = experiment.imported(source, tmp_path / "import")
    experiment.imported(source, tmp_path / "import")
    assert len(calls) == 1  # the same files and code: reused
    licence = source / "LICENSE"
    text = licence.read_bytes()
    licence.write_bytes(text[:-1] + (b"." if text[-1:] != b"." else b","))  # the same size
    experiment.imported(source, tmp_path / "import")
    assert len(calls) == 2
    monkeypatch.setattr(experiment, "code_version", lambda: "another version")
    again = experiment.imported(source, tmp_path / "import")
    assert len(calls) == 3
    assert again["games"].equals(first["games"])
