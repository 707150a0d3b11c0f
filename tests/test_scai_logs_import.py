"""``scai import scai-logs`` on tiny synthetic logs built here: the tables it writes, and every
kind of malformed log reported with its file and row while the rest is converted."""

from __future__ import annotations

import re
import warnings

import pandas as pd
import pytest
from scai_logs_fixture import make_archive, write_run

from scai.experiments.cli import main
from scai.models.data import read_interactions
from scai.models.layout import ASSISTANT
from scai.models.scai_logs import failed_report_path, import_logs, output_paths
from scai.models.scai_logs.config import POLICY_NAMES
from scai.models.scai_logs.original_reading import authors_offered_share, epoch_messages
from scai.models.users_table import read_users

GAMES_PER_EPOCH = 4  # two user-user games and one each way with the assistant


def run_import(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["import", "scai-logs", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def logs(tmp_path):
    """Two clean runs in an experiment_3 folder; the second with the config's typos."""
    root = tmp_path / "experiment_3_fixture"
    write_run(root / "20runs" / "altruistic_rude" / "0", 0)
    write_run(root / "20runs" / "selfish_syc" / "7", 7, policy="selfish", manner="sychophantic")
    return root


def test_clean_import_writes_every_table(logs, tmp_path, capsys):
    out = tmp_path / "out" / "logs.csv"
    code, stdout, _ = run_import([str(logs), "--out", str(out)], capsys)
    assert code == 0
    assert "2 runs, 4 epochs, 16 games converted" in stdout and "0 problem(s)" in stdout
    paths = output_paths(out)
    table = read_interactions(paths["interactions"])
    assert len(table) == 2 * 2 * GAMES_PER_EPOCH
    assert set(table["sim"]) == {"exp3/altruistic_rude/00", "exp3/selfish_sycophantic/07"}
    assert table["epoch"].min() == 1 and table["round"].tolist()[:4] == [1, 2, 3, 4]
    assert (table["proposer_tone"] == "").all() and (table["responder_tone"] == "").all()
    first = table.iloc[0]
    assert (first.proposer, first.responder, first.pot, first.offer, first.accepted) == (
        "fixed_agent_1",
        "fixed_agent_2",
        30,
        30,
        1,
    )
    assert first.proposer_text.startswith("For the 30 apples") and first.responder_text.startswith(
        "Accept"
    )
    # the assistant's two games, as in scai's own protocol
    assistant = table[(table.proposer == ASSISTANT) | (table.responder == ASSISTANT)]
    assert len(assistant) == 2 * 2 * 2
    assert set(assistant[assistant.proposer == ASSISTANT]["responder"]) == {"fixed_agent_5"}
    users = read_users(paths["users"], POLICY_NAMES)
    assert len(users) == 12
    assert set(users[users.sim.str.contains("selfish")]["manner"]) == {"sycophantic"}
    gpt4 = pd.read_csv(paths["gpt4"], keep_default_na=False)
    assert len(gpt4) == 4
    row = gpt4.iloc[0]
    assert (row.offer, row.pot, row.offered_share, row.accepted) == (
        29,
        30,
        pytest.approx(96.667, abs=1e-3),
        1,
    )
    assert (row.proposer, row.proposer_offer, row.assistant_accepted) == ("fixed_agent_6", 30, 1)
    assert row.principle_before == "Be selfish in resource distribution."
    assert row.principle_after.startswith("Principle: Give everything away.")
    runs = pd.read_csv(paths["runs"], keep_default_na=False)
    assert runs.set_index("sim").loc["exp3/selfish_sycophantic/07", "policy"] == "selfish"
    assert runs["source"].str.endswith(("altruistic_rude/0", "selfish_syc/7")).all()
    assert "Nothing: every file, game and message converted." in paths["report"].read_text()
    assert main(["validate", str(out)]) == 0


def test_archive_and_folder_give_the_same_tables(logs, tmp_path):
    archive = make_archive(logs, tmp_path / "logs.tgz")
    from_folder, from_archive = import_logs(logs), import_logs(archive)
    pd.testing.assert_frame_equal(from_folder.interactions, from_archive.interactions)
    pd.testing.assert_frame_equal(from_folder.gpt4, from_archive.gpt4)
    assert from_archive.runs["source"].str.startswith("logs.tgz:experiment_3_fixture/").all()


def test_every_malformed_log_is_reported_with_file_and_row(tmp_path, capsys):
    root = tmp_path / "experiment_1_bad"
    write_run(root / "a" / "0", 0, with_config=False)
    bad_texts = {
        (1, 0, "decider"): "Maybe later, you fool.",  # a user reply without a decision
        (
            0,
            1,
            "proposer",
        ): "For the 30 apples, the proposer will get 20, and the decider will get 5.",
    }
    write_run(root / "a" / "1", 1, texts=bad_texts)
    write_run(root / "a" / "2", 2, policy="fair")
    (root / "a" / "2" / "id_2_run_1.csv").unlink()  # a missing epoch
    out = tmp_path / "bad.csv"
    code, stdout, _ = run_import([str(root), "--out", str(out)], capsys)
    assert code == 0
    result = import_logs(root)
    problems = {(p.reason, p.file.rsplit("/", 2)[-2:][-1], p.row) for p in result.report.problems}
    assert problems == {
        ("missing_config", "id_0_config", None),
        ("no_decision", "id_1_run_1.csv", 4),
        ("split_not_pot", "id_1_run_0.csv", 5),
        ("missing_epoch", "id_2_run_1.csv", None),
    }
    by_file = {p.reason: p for p in result.report.problems}
    assert by_file["no_decision"].text == "Maybe later, you fool."
    assert "/a/1/id_1_run_1.csv" in by_file["no_decision"].file
    # nothing silently dropped: 2 runs with configs x 2 epochs x 4 games, each converted or not
    report = result.report
    converted = sum(report.converted[k] for k in GAMES_KINDS)
    assert converted == 16 - 2 - GAMES_PER_EPOCH  # the bad reply, the bad split, the lost epoch
    assert sum(report.not_converted.values()) == 2 + GAMES_PER_EPOCH + 2 * GAMES_PER_EPOCH
    assert len(result.interactions) == converted
    text = output_paths(out)["report"].read_text()
    for line in ("id_1_run_1.csv row 4", "id_1_run_0.csv row 5", "Maybe later, you fool."):
        assert line in text
    assert "4 problem(s)" in stdout and "first:" in stdout
    assert main(["validate", str(out)]) == 0


GAMES_KINDS = ("user_user_games", "assistant_proposes", "assistant_responds")


def test_a_proposal_in_amounts_that_are_not_whole_is_reported_at_its_row(tmp_path):
    root = tmp_path / "logs"
    # it was read as 35 and 5: stored as offer 5 with no problem
    text = "For the 40 apples, I will keep 35.5 and you will get 4.5 apples."
    write_run(root / "0", 0, texts={(1, 0, "proposer"): text})
    result = import_logs(root)
    [problem] = result.report.problems
    assert (problem.reason, problem.file.rsplit("/", 1)[-1], problem.row, problem.text) == (
        "amount_not_whole",
        "id_0_run_1.csv",
        3,
        text,
    )
    assert "35.5, 4.5 are not whole units" in str(problem)
    # the reason showed an amount of its own, "(35.5)", as if it were the log's (a red-team
    # find: a log's 33.5 was told as "not whole units (35.5)")
    text = text.replace("35.5", "33.5").replace("4.5", "6.5")
    write_run(root / "0", 0, texts={(1, 0, "proposer"): text})
    [problem] = import_logs(root).report.problems
    assert "35.5" not in str(problem) and "33.5, 6.5 are not whole units" in str(problem)
    assert len(result.interactions) == 2 * GAMES_PER_EPOCH - 1


def test_strict_fails_with_one_line_and_exit_2(tmp_path, capsys):
    root = tmp_path / "logs"
    write_run(root / "0", 0, texts={(0, 0, "decider"): "Hmm."})
    out = tmp_path / "strict.csv"
    code, stdout, err = run_import([str(root), "--out", str(out), "--strict"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    # the reason in words, not its key ('no_decision': a red-team find)
    assert "1 problem(s)" in err
    assert "id_0_run_0.csv row 4: a reply that opens with neither Accept nor Reject" in err
    assert not out.exists() and failed_report_path(out).exists()
    assert not output_paths(out)["report"].exists()
    code, _, _ = run_import([str(root), "--out", str(out)], capsys)
    assert code == 0 and out.exists()


def test_truncated_archive_keeps_what_was_read(tmp_path, capsys):
    root = tmp_path / "logs"
    for run in range(4):
        write_run(root / str(run), run, pots=(30, 40, 50))
    whole = make_archive(root, tmp_path / "whole.tgz").read_bytes()
    cut = tmp_path / "cut.tgz"
    # wherever the cut falls (inside a member, or at a tar block boundary), it is reported
    for percent in range(20, 100, 7):
        cut.write_bytes(whole[: len(whole) * percent // 100])
        problems = import_logs(cut).report.problems
        assert [p.reason for p in problems].count("truncated_archive") == 1, percent
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    result = import_logs(cut)
    reasons = [p.reason for p in result.report.problems]
    assert reasons.count("truncated_archive") == 1
    truncated = next(p for p in result.report.problems if p.reason == "truncated_archive")
    assert truncated.file.startswith("cut.tgz")
    assert 0 < result.report.converted["runs"] < 4  # what came before the cut is converted
    assert len(result.interactions) > 0
    code, _, err = run_import([str(cut), "--out", str(tmp_path / "c.csv"), "--strict"], capsys)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1


def test_unreadable_sources_exit_2(tmp_path, capsys):
    not_tar = tmp_path / "notes.tgz"
    not_tar.write_text("not an archive")
    for source in (tmp_path / "absent", not_tar):
        code, _, err = run_import([str(source), "--out", str(tmp_path / "x.csv")], capsys)
        assert code == 2 and "Traceback" not in err and str(source.name) in err


def test_mixed_groups_keep_each_users_policy(tmp_path):
    root = tmp_path / "logs"
    mixed = ("selfish", "altruistic", "selfish", "altruistic", "selfish", "selfish")
    write_run(root / "0", 0, mixed=mixed, manner="nuetral")  # the typo is normalised
    result = import_logs(root)
    assert result.report.problems == []
    run = result.runs.iloc[0]
    assert (run.policy, run.manner) == ("selfish=0.666667,altruistic=0.333333", "neutral")
    # the folder names no experiment: the configuration's sim_dir does (experiment_3)
    assert run.sim == "exp3/selfish67+altruistic33_neutral/00"
    assert result.users["policy"].tolist() == list(mixed)
    assert set(result.users["manner"]) == {"neutral"}


def test_an_epoch_file_in_another_layout_is_reported(tmp_path):
    root = tmp_path / "logs"
    folder = write_run(root / "0", 0)
    epoch = folder / "id_0_run_1.csv"
    epoch.write_text(epoch.read_text().replace("prompt,", "question,", 1))
    result = import_logs(root)
    (problem,) = result.report.problems
    assert problem.reason == "bad_epoch_file" and problem.file.endswith("0/id_0_run_1.csv")
    assert "prompt" in problem.detail
    assert sum(result.report.not_converted.values()) == GAMES_PER_EPOCH
    assert len(result.interactions) == GAMES_PER_EPOCH and set(result.interactions.epoch) == {1}


def test_a_cut_epoch_file_is_reported_as_cut(tmp_path):
    """An epoch file cut within its last row was reported as "agent_id None is not a whole
    game number": its row has fewer fields than the header, which the problem says."""
    import csv
    import io

    root = tmp_path / "logs"
    folder = write_run(root / "0", 0)
    epoch = folder / "id_0_run_1.csv"
    header, *records = list(csv.reader(io.StringIO(epoch.read_text())))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *records[:-1]])
    epoch.write_text(buffer.getvalue() + "accept,fixed,0\n")  # 3 of 7 fields
    rows = len(records)  # the last record's row (data rows, the header not counted)
    result = import_logs(root)
    (problem,) = result.report.problems
    assert problem.reason == "bad_epoch_file" and problem.row == rows
    assert problem.detail == "3 fields, fewer than the header's 7 columns (a cut file?)"


def test_an_epoch_file_with_a_byte_that_is_not_utf8_is_unreadable_not_misshapen(tmp_path):
    """One byte that is not UTF-8 in an epoch file was filed under 'the epoch file's layout
    is not the original code's' (a red-team find): it is a file that cannot be read, and the
    report names the byte."""
    root = tmp_path / "logs"
    folder = write_run(root / "0", 0)
    epoch = folder / "id_0_run_1.csv"
    epoch.write_bytes(epoch.read_bytes().replace(b"prompt,", b"prompt\xff,", 1))
    (problem,) = import_logs(root).report.problems
    assert problem.reason == "unreadable_file" and problem.file.endswith("0/id_0_run_1.csv")
    assert problem.detail == "not UTF-8 text (a byte 0xff)"


def test_bad_config_is_reported(tmp_path):
    root = tmp_path / "logs"
    folder = write_run(root / "0", 0)
    config = folder / "id_0_config"
    config.write_text(config.read_text().replace("manners: rude", "manners: furious", 1))
    result = import_logs(root)
    (problem,) = result.report.problems
    assert problem.reason == "bad_config" and "furious" in problem.detail
    assert "agents.fixed_agents[0].manners" in problem.detail
    assert result.report.not_converted["games of runs without a readable configuration"] == 8


def test_gpt4_wording_and_the_original_reading(tmp_path):
    """A GPT-4 proposal that names the pot twice: scai reads the split, the original code the
    proposer's units."""
    text = (
        "Oh, a whopping 40 apples! For this life-changing sum of 40 apples, the proposer (me) "
        "will get 30, and the decider (you) will get 10."
    )
    root = tmp_path / "logs"
    write_run(root / "0", 0, texts={(1, 2, "proposer"): text})
    result = import_logs(root)
    gpt4 = result.gpt4.set_index("epoch")
    assert gpt4.loc[2, "offer"] == 10 and gpt4.loc[2, "proposal_form"] == "free_text"
    assert gpt4.loc[2, "proposal_text"] == text
    epoch = result.interactions[result.interactions.epoch == 2]
    reading = authors_offered_share(epoch_messages(epoch))
    assert reading.offers == (30,) and reading.pot == 40
    assert reading.offered_share == pytest.approx(75.0)
    first = result.interactions[result.interactions.epoch == 1]
    assert authors_offered_share(epoch_messages(first)).offered_share == pytest.approx(
        gpt4.loc[1, "offered_share"]
    )


def test_an_output_inside_the_source_is_refused_before_reading(logs, capsys):
    """``--out`` inside the folder being read would overwrite the logs (an epoch file named as
    the output) and write tables among them: refused, nothing written, the logs unchanged."""
    epoch_file = next(logs.rglob("id_*_run_0.csv"))
    before = epoch_file.read_bytes()
    for out in (epoch_file, logs / "tables" / "logs.csv"):
        code, _, err = run_import([str(logs), "--out", str(out)], capsys)
        assert code == 2 and "inside the source" in err and "Traceback" not in err, err
    assert epoch_file.read_bytes() == before
    assert not (logs / "tables").exists()
    assert not list(logs.rglob("*.report.md"))


def test_a_blocked_output_fails_before_any_table_is_written(logs, tmp_path, capsys):
    (tmp_path / "o" / "logs.report.md").mkdir(parents=True)
    code, _, err = run_import([str(logs), "--out", str(tmp_path / "o" / "logs.csv")], capsys)
    assert code == 2 and "logs.report.md is a folder" in err, err
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["logs.report.md"]


def test_a_source_with_no_game_fails_and_says_why(tmp_path, capsys):
    """An empty folder (or one whose runs all fail) converts nothing: exit 2 naming why, with
    the report written and no empty tables passing for an import."""
    (tmp_path / "empty").mkdir()
    out = tmp_path / "o" / "logs.csv"
    code, _, err = run_import([str(tmp_path / "empty"), "--out", str(out)], capsys)
    assert code == 2 and "no game converted" in err and "no run folders" in err, err
    assert not out.exists() and failed_report_path(out).exists()
    broken = tmp_path / "broken"
    write_run(broken / "0", 0)
    next(broken.rglob("id_*_config*")).write_text(": not yaml [")
    code, _, err = run_import([str(broken), "--out", str(out)], capsys)
    assert code == 2 and "no game converted" in err and "problem(s)" in err, err
    assert not out.exists()


def test_a_byte_order_mark_on_the_logs_is_skipped(logs, tmp_path):
    """Files saved by an editor that writes a byte-order mark convert as they did without it
    (the epoch files' first column was read as '\\ufeffagent' and every epoch refused)."""
    clean = import_logs(logs)
    for path in [*logs.rglob("id_*_run_*.csv"), *logs.rglob("id_*_config*")]:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    marked = import_logs(logs)
    assert not marked.report.problems
    pd.testing.assert_frame_equal(marked.interactions, clean.interactions)


def test_a_huge_file_in_a_small_archive_is_reported_not_read(tmp_path, monkeypatch):
    """An epoch file inflated from a few kilobytes to more than MAX_FILE_BYTES (a
    decompression bomb) is reported as too large and skipped, in an archive and in a folder;
    the other runs convert. (It was read whole into memory: 12.9 GB for a 4 GB member.)"""
    import io
    import tarfile

    from scai.models.scai_logs import sources

    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 100_000)
    root = tmp_path / "logs"
    write_run(root / "0", 0)
    write_run(root / "1", 1)
    archive = tmp_path / "bomb.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(tmp_path).as_posix())
        member = tarfile.TarInfo("logs/2/id_2_run_0.csv")
        member.size = 300_000
        tar.addfile(member, io.BytesIO(bytes(member.size)))
    for source in (archive, root):
        if source == root:
            (root / "2").mkdir()
            (root / "2" / "id_2_run_0.csv").write_bytes(bytes(300_000))
        result = import_logs(source)
        (problem,) = [p for p in result.report.problems if p.reason == "too_large"]
        assert problem.file.endswith("2/id_2_run_0.csv") and "300,000 bytes" in problem.detail
        assert result.report.converted["runs"] == 2


@pytest.mark.parametrize(
    "edit, says",
    [
        # a YAML alias bomb: nested aliases expand to 10^9 entries if turned into text
        (
            lambda t: (
                "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                + "".join(f"x{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]\n" for k in range(1, 9))
                + t.replace("manners: rude", "manners: *a8", 1)
            ),
            "a configuration holds at most 100,000",
        ),
        (
            lambda t: t.replace("manners: rude", "manners: [rude, rude]", 1),
            "agents.fixed_agents[0].manners: expected a name, got a list of 2 entries",
        ),
        (
            lambda t: t.replace("  flex_agents:\n", "  flex_agents:\n  - x\n", 1),
            "agents.flex_agents[0]: expected a mapping",
        ),
        (
            lambda t: t.replace("fixed_agent_1-fixed_agent_2-", "fixed_agent_2-fixed_agent_2-", 1),
            "naming two different configured agents",
        ),
        (lambda t: t.replace("  - 40\n", "  - 4000\n", 1), "pots of 1 to 1000 units"),
        (
            lambda t: t.replace("fixed_agent_2-apples", "fixed_agent_2-blankets", 1),
            "the run's currency is 'apples'",
        ),
        (  # one user twice, with another manner: which one played is not in the log
            lambda t: t.replace(
                "  - name: fixed_agent_2\n    manners: rude",
                "  - name: fixed_agent_1\n    manners: neutral",
                1,
            ),
            "agents.fixed_agents: 'fixed_agent_1' listed twice",
        ),
        (  # an internal TypeError that aborted the whole import
            lambda t: (
                t[: t.index("  fixed_agents:")]
                + "  fixed_agents: null\n"
                + t[t.index("  flex_agents:") :]
            ),
            "agents.fixed_agents: expected a list of the users, got NoneType",
        ),  # fmt: skip
        (  # PyYAML's line and column were cut off with all but its message's first line
            lambda t: t.replace("  - 40\n", "  - [40\n", 1),
            "line ",
        ),
        # a user's name that the table reads as another: the assistant, an unknown proposer,
        # another user (spaces dropped); one taken for the assistant's agent (KeyError)
        (
            lambda t: t.replace("fixed_agent_1", "Assistant"),
            "agents.fixed_agents[0].name: 'Assistant' is the assistant's name",
        ),
        (
            lambda t: t.replace("name: fixed_agent_1\n", "name: ''\n"),
            "agents.fixed_agents[0].name: empty",
        ),
        (
            lambda t: t.replace("name: fixed_agent_1\n", "name: 'fixed_agent_2 '\n"),
            "agents.fixed_agents[0].name: 'fixed_agent_2 ' has spaces around it",
        ),
        (
            lambda t: t.replace("fixed_agent_1", "flex_agent_13"),
            "agents.fixed_agents[0].name: 'flex_agent_13' starts with 'flex_agent'",
        ),
        (
            lambda t: t.replace("flex_agent_2", "gpt_2"),
            "agents.flex_agents[1].name: 'gpt_2' does not start with 'flex_agent'",
        ),
        (  # two spellings of one name in Unicode: one user in a table (a review's)
            lambda t: t.replace("fixed_agent_1", "Zo\u00eb").replace("fixed_agent_2", "Zoe\u0308"),
            "agents.fixed_agents: 'Zo\u00eb' listed twice (names are compared as an interaction",
        ),
        (  # taken as true (bool of a text)
            lambda t: t.replace("all_same: true", "all_same: 'false'"),
            "interactions.all_same: expected true or false, got str 'false'",
        ),
    ],
    ids=[
        "alias bomb",
        "manners not a name",
        "assistant not a mapping",
        "self-play",
        "pot",
        "coin",
        "user twice",
        "no user list",
        "YAML error",
        "user named assistant",
        "user without a name",
        "user name with a space",
        "user named as an agent",
        "agent named as a user",
        "one name in two Unicode spellings",
        "all_same as text",
    ],
)
def test_a_config_scai_cannot_use_is_reported_with_its_key(tmp_path, edit, says):
    """Configurations that converted into tables scai's own validation refuses (a user
    playing itself, a pot over 1000), that ended in an internal error (an assistant agent that
    is not a mapping), that used gigabytes (aliases) or that were misread (a game's currency)
    are each a bad_config problem naming the key."""
    root = tmp_path / "logs"
    folder = write_run(root / "0", 0)
    write_run(root / "1", 1)
    config = folder / "id_0_config"
    edited = edit(config.read_text())
    assert edited != config.read_text()
    config.write_text(edited)
    result = import_logs(root)
    (problem,) = result.report.problems
    assert problem.reason == "bad_config" and says in problem.detail, problem.detail
    assert result.report.converted["runs"] == 1


def test_a_bad_archive_in_a_folder_is_reported_and_the_rest_converts(tmp_path):
    """One file with an archive's name that is not an archive stopped the import of the
    whole folder; it is now one problem, and the folder's runs convert."""
    root = tmp_path / "logs"
    write_run(root / "0", 0)
    (root / "junk.tgz").write_text("not an archive")
    result = import_logs(root)
    (problem,) = result.report.problems
    assert problem.reason == "unreadable_source" and problem.file.endswith("junk.tgz")
    assert result.report.converted["runs"] == 1


def test_all_same_of_1_is_true_as_in_the_original_code(tmp_path):
    """``all_same`` is checked to be true or false (text was taken as true); 1 and 0, which the
    original code's truth test reads so, are read so too."""
    root = tmp_path / "logs"
    config = write_run(root / "0", 0) / "id_0_config"
    config.write_text(config.read_text().replace("all_same: true", "all_same: 1"))
    result = import_logs(root)
    assert not result.report.problems and result.report.converted["runs"] == 1


def test_a_folders_archives_of_every_tar_ending_and_of_other_kinds(tmp_path, capsys):
    """A folder's ``runs.txz`` and ``runs.tbz2`` (tar archives, read as a source given alone)
    were skipped without a word, the import saying "no run folders"; a ``.zip`` beside a run
    folder was not in the report ("0 problem(s)"), and given as the source said "bad
    checksum". Every tar ending is read; another archive is a problem naming it."""
    import tarfile
    import zipfile

    runs = tmp_path / "runs"
    source = tmp_path / "logs"
    source.mkdir()
    for run, (name, mode) in enumerate((("a.txz", "w:xz"), ("b.tbz2", "w:bz2"))):
        write_run(runs / str(run), run)
        with tarfile.open(source / name, mode) as tar:
            tar.add(runs / str(run), arcname=f"{name}/{run}")
    with zipfile.ZipFile(source / "c.zip", "w") as archive:
        archive.writestr("c/0/id_0_config", "ignored")
    result = import_logs(source)
    assert result.report.converted["runs"] == 2
    (problem,) = result.report.problems
    assert problem.reason == "unreadable_source" and problem.file.endswith("c.zip")
    assert "another kind" in problem.detail and ".txz" in problem.detail
    code, _, err = run_import([str(source / "c.zip"), "--out", str(tmp_path / "x.csv")], capsys)
    assert code == 2 and "c.zip: a zip archive; scai reads a folder or a tar archive" in err
    # a tar whose last member is a zip ends with a zip's end record: still a tar (a review's)
    with tarfile.open(tmp_path / "ends.tar", "w") as tar:
        tar.add(runs / "0", arcname="ends/0")
        tar.add(source / "c.zip", arcname="ends/0/notes.zip")
    assert zipfile.is_zipfile(tmp_path / "ends.tar")
    assert import_logs(tmp_path / "ends.tar").report.converted["runs"] == 1


def test_a_run_number_of_thousands_of_digits_is_one_problem(tmp_path):
    """An archive member ``id_<5000 digits>_run_0.csv`` raised Python's int() limit ("Exceeds
    the limit (4300 digits)"), naming no file, and ended the import of the whole folder."""
    import io
    import tarfile

    source = tmp_path / "logs"
    write_run(source / "0", 0)
    with tarfile.open(source / "long.tgz", "w:gz") as tar:
        member = tarfile.TarInfo(f"long/1/id_{'9' * 5000}_run_0.csv")
        member.size = 3
        tar.addfile(member, io.BytesIO(b"a,b"))
    result = import_logs(source)
    assert result.report.converted["runs"] == 1
    (problem,) = result.report.problems
    assert problem.reason == "unreadable_file" and "over 18 digits" in problem.detail


def test_a_config_with_a_small_alias_converts_as_without(tmp_path):
    """An alias that repeats a small mapping (what yaml.dump writes for shared objects) loads
    to the same data: the configuration converts as the one written out."""
    root = tmp_path / "logs"
    folder = write_run(root / "0", 0)
    config = folder / "id_0_config"
    text = config.read_text()
    plain = import_logs(root)
    first = "    utilities:\n      apples: altruistic\n"
    assert text.count(first) == 6
    aliased = text.replace(first, "    utilities: &u\n      apples: altruistic\n", 1)
    config.write_text(aliased.replace(first, "    utilities: *u\n"))
    result = import_logs(root)
    assert result.report.problems == [] and result.interactions.equals(plain.interactions)


def test_a_folder_link_and_an_unreadable_file_are_reported_not_skipped(tmp_path, capsys):
    """A link to a run folder was skipped in silence (rglob does not follow it), and a file
    that fails to read stopped the whole import with an error naming no file: each is now a
    problem of its own (``--strict`` fails on it) and the other runs convert."""
    import os

    root = tmp_path / "logs"
    write_run(root / "0", 0)
    write_run(tmp_path / "elsewhere", 1)
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    if os.path.exists("/proc/self/mem"):  # a file whose read fails (EIO)
        write_run(root / "2", 2)
        epoch = root / "2" / "id_2_run_1.csv"
        epoch.unlink()
        epoch.symlink_to("/proc/self/mem")
    result = import_logs(root)
    found = {p.reason: p for p in result.report.problems}
    assert found["unreadable_folder"].file == "logs/linked"
    assert "not followed" in found["unreadable_folder"].detail
    if os.path.exists("/proc/self/mem"):
        assert found["unreadable_file"].file == "logs/2/id_2_run_1.csv"
    assert result.report.converted["runs"] >= 1
    code, _, err = run_import([str(root), "--out", str(tmp_path / "x.csv"), "--strict"], capsys)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    """A folder the user may not list (tests run as root, where permissions do not bind: the
    listing fails as it would for anyone else) is a problem naming it; the others convert."""
    import os

    root = tmp_path / "logs"
    write_run(root / "0", 0)
    write_run(root / "1", 1)
    listing = os.scandir

    def refused(path="."):
        if os.fspath(path).endswith(os.sep + "1"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", refused)
    result = import_logs(root)
    (problem,) = [p for p in result.report.problems if p.reason == "unreadable_folder"]
    assert problem.file == "logs/1" and "Permission denied" in problem.detail
    assert result.report.converted["runs"] == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("logs.runs.csv", b"sim,foo\nx,y\n", "missing column(s) condition"),
        ("logs.runs.csv", b"", "empty file; expected a header line and rows"),
        ("logs.runs.csv", b"sim,condition\n0,\xff\n", "not UTF-8 text"),
        ("logs.users.csv", b"", "empty file; expected a header line and rows"),
        # a run twice, with two conditions: the last one won, silently
        ("logs.runs.csv", b"sim,condition\na,x\nb,y\na,z\n", "row 3, column 'sim': value 'a'"),
    ],
)
def test_a_bad_companion_table_is_named_by_the_tone_reader(
    logs, tmp_path, capsys, name, content, message
):
    """The tables beside an imported one, read for the tone reader: a runs table without its
    ``condition`` column was ``KeyError: 'condition'`` ('a bug in scai'); an empty one, or one
    with a byte that is not UTF-8, gave pandas' message naming no file (red-team finds)."""
    from scai.models.errors import DataError
    from scai.models.tone_reader.training import load_messages

    out = tmp_path / "out" / "logs.csv"
    assert run_import([str(logs), "--out", str(out)], capsys)[0] == 0
    assert len(load_messages(out)) > 0
    (out.parent / name).write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        load_messages(out)
    assert name in str(caught.value)


def test_holding_out_conditions_without_a_runs_table_fails_before_any_work(logs, tmp_path, capsys):
    """Without ``FILE.runs.csv`` the messages name no condition: ``tone-reader evaluate``
    (``--scheme both``) held the runs out first, then stopped with 'conditions: some messages
    have no condition (no runs table?)', naming no file (a red-team find)."""
    out = tmp_path / "out" / "logs.csv"
    assert run_import([str(logs), "--out", str(out)], capsys)[0] == 0
    (out.parent / "logs.runs.csv").unlink()
    assert main(["tone-reader", "evaluate", "--logs", str(out)]) == 2
    captured = capsys.readouterr()
    assert "logs.runs.csv (written by scai import scai-logs beside the table)" in captured.err
    assert "use --scheme runs" in captured.err and "held out" not in captured.out


def test_two_files_for_one_runs_config_or_epoch_are_reported(tmp_path, capsys):
    """``id_0_config`` beside ``id_00_config``, or ``id_0_run_1.csv`` beside
    ``id_0_run_01.csv``, each said something else of one run; the one that sorted last won,
    with 0 problems. The first in path order is read and the other is a problem."""
    import shutil

    root = tmp_path / "logs"
    write_run(root / "0", 0)
    folder = root / "0"
    shutil.copy(folder / "id_0_config", folder / "id_00_config")
    shutil.copy(folder / "id_0_run_1.csv", folder / "id_0_run_01.csv")
    result = import_logs(root)
    problems = sorted((p.reason, p.file.rsplit("/", 1)[-1]) for p in result.report.problems)
    assert problems == [
        ("conflicting_files", "id_0_config"),  # id_00_config sorts first, and is read
        ("conflicting_files", "id_0_run_1.csv"),  # id_0_run_01.csv sorts first
    ]
    assert all("this file is not read" in p.detail for p in result.report.problems)
    assert result.report.converted["runs"] == 1 and len(result.interactions) > 0
    code, _, err = run_import([str(root), "--out", str(tmp_path / "c.csv"), "--strict"], capsys)
    assert code == 2 and "a second file for a run's configuration" in err, err


def test_a_second_system_row_for_an_epoch_is_reported_at_its_row(tmp_path, capsys):
    """An epoch file with two system rows for the same epoch was read silently, the last one
    giving the assistant's principle. The first is read and the second is a problem at its row,
    as a second file for a run's epoch is."""
    root = tmp_path / "logs"
    path = write_run(root / "0", 0) / "id_0_run_1.csv"
    lines = path.read_text().splitlines(keepends=True)
    assert lines[2].startswith("Principle: Give") and ",system,1," in lines[2]
    path.write_text("".join([*lines[:3], '"Principle: Keep it all.",system,1,,,,\n', *lines[3:]]))
    result = import_logs(root)
    [problem] = result.report.problems
    assert (problem.reason, problem.file.rsplit("/", 1)[-1], problem.row) == (
        "repeated_system_row",
        "id_0_run_1.csv",
        3,
    )
    assert "a second system row with epoch '1'; the one at row 2 is read" in problem.detail
    assert result.gpt4["principle_after"].iloc[-1].startswith("Principle: Give everything away.")
    assert len(result.interactions) == 2 * GAMES_PER_EPOCH  # the games still convert
    code, _, err = run_import([str(root), "--out", str(tmp_path / "c.csv"), "--strict"], capsys)
    assert code == 2 and "id_0_run_1.csv row 3: a second system row" in err, err


def test_a_link_member_of_an_archive_with_a_logs_name_is_reported(tmp_path):
    """A .tgz whose epoch file is a symbolic or hard link was read as if the file were not
    there, with 0 problems (a hard link lost that epoch's games silently)."""
    import tarfile

    root = tmp_path / "logs"
    write_run(root / "0", 0)
    archive = make_archive(root, tmp_path / "logs.tgz")
    linked = tmp_path / "linked.tgz"
    with tarfile.open(archive) as source, tarfile.open(linked, "w:gz") as out:
        for member in source.getmembers():
            if member.name.endswith("id_0_run_1.csv"):
                link = tarfile.TarInfo(member.name)
                link.type, link.linkname = tarfile.SYMTYPE, "elsewhere.csv"
                out.addfile(link)
            else:
                out.addfile(member, source.extractfile(member) if member.isfile() else None)
        hard = tarfile.TarInfo("logs/0/id_0_run_7.csv")
        hard.type, hard.linkname = tarfile.LNKTYPE, "logs/0/id_0_config"
        out.addfile(hard)
    problems = import_logs(linked).report.problems
    said = {(p.file.rsplit("/", 1)[-1], p.reason, p.detail.split(" in ")[0]) for p in problems}
    assert ("id_0_run_1.csv", "unreadable_file", "is a symbolic link") in said
    assert ("id_0_run_7.csv", "unreadable_file", "is a hard link") in said
    # and the epoch the link stood for is missing, as before
    assert any(p.reason == "missing_epoch" for p in problems)


@pytest.mark.parametrize("agent_id", ["inf", "nan", "3.7", "", "three"])
def test_a_game_number_that_is_not_whole_is_named_at_its_row(tmp_path, agent_id):
    """An epoch file whose ``agent_id`` is not a whole number is reported as a bad file at
    that row, naming the value; the rest of the source is imported. (``inf`` stopped the
    whole import with an OverflowError; ``3.7`` was filed under game 3, so a
    correct game was blamed for a missing reply.)"""
    import csv
    import io

    root = tmp_path / "experiment_1_x"
    write_run(root / "a" / "0", 0)
    write_run(root / "a" / "1", 1)
    path = root / "a" / "1" / "id_1_run_0.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(), newline="")))
    first_game = next(i for i, r in enumerate(rows) if r["agent"] != "system")
    rows[first_game]["agent_id"] = agent_id
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(text.getvalue())
    result = import_logs(root)
    (problem,) = result.report.problems
    assert (problem.reason, problem.row) == ("bad_epoch_file", first_game + 1)
    assert problem.detail == f"agent_id {agent_id!r} is not a whole game number"
    assert result.report.converted["user_user_games"] > 0  # run 0 and run 1's other epoch


def test_the_experiment_is_the_innermost_folder_that_names_one(tmp_path):
    """A source folder whose own name says ``experiment_9`` holding the original archives (or
    their folders) labels each run by the experiment around it, not by the source's name; the
    first match named every run ``exp9``, and runs of two experiments collided as duplicates."""
    source = tmp_path / "experiment_9_data"
    write_run(source / "experiment_1_one_norm" / "20runs" / "altruistic_rude" / "0", 0)
    write_run(tmp_path / "x" / "experiment_3_varied" / "20runs" / "altruistic_rude" / "0", 0)
    make_archive(tmp_path / "x" / "experiment_3_varied", source / "experiment_3_varied.tgz")
    result = import_logs(source)
    assert sorted(result.runs["sim"]) == ["exp1/altruistic_rude/00", "exp3/altruistic_rude/00"]
    assert result.report.problems == []


def test_an_import_replaces_its_files_together(logs, tmp_path, monkeypatch):
    """Interrupted while writing its tables, an import leaves the previous import's files, all
    of them: the tables were replaced one by one (a Ctrl-C left a new interactions table beside
    the previous users, runs and report)."""
    from scai.models.scai_logs import importer

    out = tmp_path / "out" / "logs.csv"
    first = import_logs(logs / "20runs" / "altruistic_rude")
    importer.write_import(first, out)
    before = {p: p.read_bytes() for p in output_paths(out).values()}
    real, second = importer.write_csv_atomic, import_logs(logs)

    def interrupted(df, path, **kwargs):
        if df is second.runs:  # after the interactions, users and GPT-4 tables
            raise KeyboardInterrupt
        return real(df, path, **kwargs)

    monkeypatch.setattr(importer, "write_csv_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        importer.write_import(second, out)
    assert {p: p.read_bytes() for p in output_paths(out).values()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(p.name for p in before)


def test_a_failed_import_leaves_the_previous_set_whole(logs, tmp_path, capsys):
    """A failed import (--strict with a problem, or no game converted) wrote FILE.report.md over
    the previous import's report and kept its tables: the report told of an import the tables
    do not hold. It now writes FILE.failed-import.md, names it, and leaves the five files."""
    out = tmp_path / "out" / "logs.csv"
    assert run_import([str(logs), "--out", str(out)], capsys)[0] == 0
    before = {p: p.read_bytes() for p in output_paths(out).values()}
    bad = tmp_path / "bad"
    write_run(bad / "0", 0, texts={(0, 0, "decider"): "Hmm."})
    (tmp_path / "empty").mkdir()
    failed = failed_report_path(out)
    for source, strict, says in (
        (bad, ["--strict"], "1 problem(s)"),
        (tmp_path / "empty", [], "no game converted"),
    ):
        code, _, err = run_import([str(source), "--out", str(out), *strict], capsys)
        assert code == 2 and says in err and err.count("\n") == 1, err
        assert f"the failed import's report {failed}" in err and "left as they were" in err, err
        assert {p: p.read_bytes() for p in output_paths(out).values()} == before
        text = failed.read_text()
        assert text.startswith("**This import failed:") and str(source) in text
    assert failed.name == "logs.failed-import.md"
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        [failed.name, *(p.name for p in before)]
    )
    # a folder in its place is refused before any work, as for the tables
    failed.unlink()
    failed.mkdir()
    code, _, err = run_import([str(bad), "--out", str(out)], capsys)
    assert code == 2 and "logs.failed-import.md is a folder" in err, err
    failed.rmdir()
    # an import that succeeds removes the failed one's report: it told of an attempt now replaced
    run_import([str(bad), "--out", str(out), "--strict"], capsys)
    assert failed.exists()
    assert run_import([str(bad), "--out", str(out)], capsys)[0] == 0
    assert not failed.exists() and "Hmm." in output_paths(out)["report"].read_text()


def test_scai_run_original_logs_tells_of_what_the_import_left_out(tmp_path):
    """A run dropped by the import (here its configuration is bad) vanished from
    ``scai run original-logs`` without a word: its checks passed over fewer runs. The import's
    problems are told, naming its report, when imported and again when reused."""
    from scai.experiments.original_logs.experiment import IncompleteLogsWarning, imported

    root = tmp_path / "logs"
    write_run(root / "0", 0)
    config = write_run(root / "1", 1) / "id_1_config"
    config.write_text(config.read_text().replace("manners: rude", "manners: furious", 1))
    for _ in range(2):  # imported, then reused
        with pytest.warns(IncompleteLogsWarning, match=r"1 problem\(s\) and 8 game\(s\)"):
            logs = imported(root, tmp_path / "import")
        assert len(logs["runs"]) == 1
    clean = tmp_path / "clean"
    write_run(clean / "0", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteLogsWarning)
        imported(clean, tmp_path / "import2")


def test_the_import_shows_the_runs_it_converts_on_a_terminal(logs, tmp_path, capsys, monkeypatch):
    """``scai import scai-logs`` asks for a bar of the runs converted (shown on a terminal
    only: 50 times the original logs take a minute and a half); the tables are the same."""
    import scai.inference.progress as progress

    bars = []

    class Bar:  # asked for, not drawn in a test
        def __init__(self):
            self.n, self.closed = 0, False

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    def recorded(total, desc, disable=None):
        bars.append((total, desc, disable, Bar()))
        return bars[-1][-1]

    monkeypatch.setattr(progress, "progress_bar", recorded)
    code, _, err = run_import([str(logs), "--out", str(tmp_path / "logs.csv")], capsys)
    assert code == 0, err
    [(total, desc, disable, bar)] = bars
    assert (total, desc, disable, bar.n, bar.closed) == (2, "runs", None, 2, True)
    assert import_logs(logs).report.problems == []  # no bar asked for: disabled
    assert len(bars) == 2 and bars[1][2] is True
