"""The error types, the one-line form the command line prints, and the file helpers that keep
writes where the user asked (``write_atomic``, ``safe_filename``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from leftovers import age, dead_pid

import scai.inference
import scai.models
from scai.inference import EngineError
from scai.models.errors import (
    DataError,
    DuplicateGamesWarning,
    HypothesisError,
    Problem,
    RunError,
    ScaiError,
    check_count,
)
from scai.models.hypotheses import MAX_POLICIES
from scai.models.layout import GroupData
from scai.models.simulate import simulate
from scai.models.table_memory import LAYOUT_BYTES_PER_CELL, layout_shape
from scai.models.writing import safe_filename, write_atomic, write_csv_atomic


def test_one_error_type_per_layer_all_value_errors():
    for layer in (DataError, HypothesisError, EngineError, RunError):
        assert issubclass(layer, ScaiError) and issubclass(layer, ValueError)
    assert issubclass(DuplicateGamesWarning, UserWarning)
    # defined once, exported from both packages
    assert scai.models.DataError is DataError and scai.models.ScaiError is ScaiError
    assert scai.models.HypothesisError is HypothesisError and scai.models.RunError is RunError
    assert scai.inference.ScaiError is ScaiError
    assert scai.models.data.DataError is DataError  # the old import path still works
    assert scai.models.hypotheses.HypothesisError is HypothesisError


def test_data_error_one_line_lists_the_first_problems_and_counts_the_rest():
    problems = [Problem(i, "offer", str(i), "must be >= 0") for i in range(1, 9)]
    err = DataError("t.csv", problems)
    assert str(err).count("\n") == 8  # the full listing for `scai validate`
    line = err.one_line()
    assert "\n" not in line
    assert line.startswith("t.csv: 8 problem(s) found: row 1, column 'offer': value '1'")
    assert "row 5" in line and "row 6" not in line and line.endswith("... and 3 more")


def test_the_same_problem_in_many_rows_is_grouped_once_whatever_its_value(monkeypatch):
    """The same problem in many rows is grouped once for both messages (a million problems:
    grouped again for ``one_line``, and a key's ``str | int | ...`` built a union each time,
    3 s a grouping); NaN is one value, a list is grouped by how it is shown; a problem said
    twice of one row is "row 7", not "rows 7 (1 rows)"; the rest are counted as problems."""
    keys = []
    same_but_row = Problem.same_but_row
    monkeypatch.setattr(Problem, "same_but_row", lambda p: keys.append(p) or same_but_row(p))
    problems = [Problem(r, "offer", float("nan"), "must be a number") for r in range(1, 1001)]
    problems += [Problem(r, "sim", ["s"], "one value per cell") for r in (3, 5)]
    problems += [Problem(7, "pot", "x", "must be a whole number")] * 2
    problems += [Problem(None, None, None, "the file ends in a half-written line")]
    problems += [Problem(r, "currency", f"c{r}", "allowed: dollars") for r in range(1, 61)]
    err = DataError("t.csv", problems)
    line = err.one_line()
    assert len(keys) == len(problems) - 1, len(keys)  # once each (no key for a row's absence)
    lines = str(err).splitlines()
    assert lines[1] == "  rows 1-1000 (1,000 rows), column 'offer': value nan: must be a number"
    assert lines[2] == "  rows 3, 5 (2 rows), column 'sim': value ['s']: one value per cell"
    assert lines[3] == "  row 7, column 'pot': value 'x': must be a whole number", lines
    assert lines[4] == "  file: the file ends in a half-written line", lines
    assert lines[-1] == f"  ... and {60 - 46} more", lines  # 50 groups said
    assert line.endswith(f"; ... and {len(problems) - 1000 - 2 - 2 - 1 - 1} more"), line


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "sims: must be a whole number from 1 to 10, got 0"),
        (11, "got 11"),
        (2.0, "got 2.0"),
        (True, "got True"),
        ("3", "got '3'"),
    ],
)
def test_check_count_names_option_range_and_value(value, message):
    with pytest.raises(RunError, match=message):
        check_count("sims", value, 1, 10)
    assert check_count("sims", 10, 1, 10) == 10


# -- write_atomic ---------------------------------------------------------------------------


def test_os_replace_onto_a_symlink_replaces_the_link_not_its_target(tmp_path):
    """Why write_atomic refuses links: os.replace silently turns the link into a file."""
    target, link, new = tmp_path / "target", tmp_path / "link", tmp_path / "new"
    target.write_text("precious")
    link.symlink_to(target)
    new.write_text("new")
    os.replace(new, link)
    assert target.read_text() == "precious" and not link.is_symlink()


def test_write_atomic_refuses_a_symlinked_target(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    with pytest.raises(RunError, match=r"out.txt: is a symbolic link \(to .*elsewhere.txt\)"):
        write_atomic(link, lambda tmp: Path(tmp).write_text("overwritten"))
    assert target.read_text() == "precious" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.txt", "out.txt"]


def test_write_atomic_refuses_a_pipe_and_leaves_it(tmp_path):
    """os.replace would turn a named pipe (or a device: --out /dev/null as root) into a file."""
    pipe = tmp_path / "out.csv"
    os.mkfifo(pipe)
    with pytest.raises(RunError, match=r"out.csv: is a named pipe; .* give a file path"):
        write_atomic(pipe, lambda tmp: Path(tmp).write_text("data"))
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize("below", ["", "sub/"], ids=["in_it", "deeper"])
def test_write_atomic_names_a_file_where_a_folder_should_be(tmp_path, below):
    """A path below a file (Posterior.save("notes.txt/fit.nc")) was mkdir's bare
    FileExistsError, which names the file and not why."""
    (tmp_path / "notes.txt").write_text("kept")
    path = tmp_path / "notes.txt" / f"{below}fit.nc"
    with pytest.raises(RunError, match=r"fit.nc: .*notes.txt is a file, not a folder; give a"):
        write_atomic(path, lambda tmp: Path(tmp).write_text("data"))
    assert (tmp_path / "notes.txt").read_text() == "kept"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077], ids=["022", "002", "077"])
def test_write_atomic_files_get_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = write_atomic(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
        write_csv_atomic(simulate_small().users, tmp_path / "b.csv")
    finally:
        os.umask(old)
    for p in (path, tmp_path / "b.csv"):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_atomic_leaves_nothing_behind_when_the_writer_fails(tmp_path):
    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "a.txt", fail)
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_removes_the_files_of_writers_killed_while_writing(tmp_path):
    """A run killed while it wrote (``kill -9``) left its temporary file, named like a figure
    (``generalization.png.3eb6da97686f.png``, 0 bytes), beside the figures for good: the
    temporary file is hidden and names its process now, and the next write of the same file
    removes those of processes no longer running, not those of a running one."""
    dead = dead_pid()
    killed = tmp_path / f".fig.png.{dead}.0123456789ab.png"
    running = tmp_path / f".fig.png.{os.getpid()}.ba9876543210.png"
    other = tmp_path / f".other.png.{dead}.0123456789ab.png"  # another file's
    # a dead pid's file touched within the hour: a writer in another PID namespace (a
    # container) or on another host sharing the folder may be writing it
    young = tmp_path / f".fig.png.{dead}.fedcba987654.png"
    for leftover in (killed, running, other, young):
        leftover.write_bytes(b"")
        if leftover is not young:
            age(leftover)
    names = []
    write_atomic(
        tmp_path / "fig.png",
        lambda tmp: names.append(Path(tmp).name) or Path(tmp).write_bytes(b"png"),
        suffix=".png",
    )
    assert names[0].startswith(f".fig.png.{os.getpid()}.") and names[0].endswith(".png")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["fig.png", running.name, other.name, young.name]
    )


def test_write_atomic_writes_when_a_dead_writers_file_cannot_be_removed(tmp_path, monkeypatch):
    """The removal of a dead writer's file is a clean-up: in a shared folder with the sticky
    bit (a group's results), another user's file cannot be removed (EPERM), and the write
    itself failed with that PermissionError. It writes, and leaves that file."""
    theirs = tmp_path / f".fig.png.{dead_pid()}.0123456789ab.png"
    theirs.write_bytes(b"")
    age(theirs)
    unlink = Path.unlink

    def not_permitted(self, *args, **kwargs):
        if self.name == theirs.name:
            raise PermissionError(1, "Operation not permitted", str(self))
        return unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", not_permitted)
    write_atomic(tmp_path / "fig.png", lambda tmp: Path(tmp).write_bytes(b"png"), suffix=".png")
    assert (tmp_path / "fig.png").read_bytes() == b"png" and theirs.exists()


@pytest.mark.parametrize(
    "name, safe",
    [
        ("neutral", "neutral"),
        ("../../etc/passwd", "____etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("..", "_"),
        (".hidden", "hidden"),
        ("tab\there\nnew\x00nul", "tab_here_new_nul"),
        ("mixed 80/20", "mixed_80_20"),
        ("", "_"),
        ("x" * 300, "x" * 100),
        ("-rf", "rf"),
    ],
)
def test_safe_filename(name, safe):
    assert safe_filename(name) == safe
    assert "/" not in safe and ".." not in safe


# -- the layout's memory, estimated from counts -----------------------------------------------


def simulate_small(users: int = 5, sims: int = 3, epochs: int = 2):
    return simulate(
        scai.models.PRESETS["neutral"],
        policy="selfish",
        users=users,
        sims=sims,
        epochs=epochs,
        seed=3,
    )


@pytest.mark.parametrize("users, sims, epochs", [(2, 1, 1), (5, 3, 2), (9, 2, 4)])
def test_layout_shape_is_the_shape_from_table_builds(users, sims, epochs):
    table = simulate_small(users, sims, epochs).interactions
    table.loc[0, "proposer"] = ""  # an unknown proposer is no event
    table.loc[1, "responder"] = "assistant"  # the assistant is not a user
    data = GroupData.from_table(table)
    assert layout_shape(table) == data.shape
    cells = data.event_mask.numel()
    tensors = [v for v in vars(data).values() if hasattr(v, "element_size") and v.dim() == 3]
    # held afterwards: the estimate's peak less the float64 ``accepted`` freed after its copy
    held = LAYOUT_BYTES_PER_CELL - 8
    assert sum(t.element_size() for t in tensors) == held
    assert sum(t.element_size() * t.numel() for t in tensors) == cells * held


def test_hypothesis_cap_is_stated():
    with pytest.raises(HypothesisError, match=f"allowed: 1 to {MAX_POLICIES}"):
        scai.models.Hypothesis(
            policies=tuple(scai.models.PolicyType(f"p{i}") for i in range(MAX_POLICIES + 1)),
            pi_concentration=(0.5,) * (MAX_POLICIES + 1),
        )


def test_a_full_disk_names_the_file_being_written(tmp_path):
    """A write's ``OSError`` (errno 28, a full disk) names no file: ``scai simulate``, ``import``
    and ``sweep`` said only ``error: No space left on device`` (a red-team find). The atomic
    writer now names the file it was writing, and leaves no temporary file."""
    import errno

    from scai.models.writing import write_atomic

    def full(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as caught:
        write_atomic(tmp_path / "out.csv", full)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_an_output_file_ending_in_a_slash_is_refused(tmp_path):
    """``scai simulate --out new/`` wrote a file named ``new`` (``Path`` drops the slash)."""
    import argparse

    from scai.experiments.commands import output_file

    with pytest.raises(argparse.ArgumentTypeError, match="ends with a slash"):
        output_file(f"{tmp_path}/new/")
    assert output_file(f"{tmp_path}/new") == tmp_path / "new"
    assert not (tmp_path / "new").exists()


def test_compressed_table_names_and_dangling_output_folders_are_refused(tmp_path, capsys):
    """``scai simulate --out z.csv.gz`` wrote plain text under a name the readers take for
    gzip, and ``scai validate z.csv.gz`` then failed ('Not a gzipped file'); ``--out`` of a
    folder given a dangling symbolic link failed with 'File exists' (red-team finds)."""
    from scai.experiments.cli import main

    for name in ("z.csv.gz", "z.csv.BZ2", "z.csv.xz", "z.csv.zip", "z.csv.tar"):
        assert main(["simulate", "--policy", "selfish", "--out", str(tmp_path / name)]) == 2
        assert "scai writes tables as plain CSV" in capsys.readouterr().err
    assert main(["import", "scai-logs", str(tmp_path), "--out", str(tmp_path / "t.csv.gz")]) == 2
    assert "give a name ending .csv" in capsys.readouterr().err
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert (
        main(["fit", "--data", str(tmp_path / "z.csv"), "--out", str(tmp_path / "dangling")]) == 2
    )
    assert "is a symbolic link to nothing; give a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling"]


def test_a_transcript_or_reader_named_in_another_format_is_refused(tmp_path, capsys):
    """``scai simulate --transcript b.txt.gz`` wrote plain text under a gzip name and
    ``scai tone-reader train --out r.csv`` wrote JSON under a CSV name (review finds): both
    are refused before any work, naming the ending to give; the usual endings, and none,
    are taken."""
    from scai.experiments.cli import main

    simulate = ["simulate", "--policy", "selfish", "--users", "4", "--sims", "1"]
    for name, named in (("b.txt.gz", "a compressed file"), ("b.CSV", "a CSV table")):
        out = ["--out", str(tmp_path / "s.csv"), "--transcript", str(tmp_path / name)]
        assert main([*simulate, *out]) == 2
        err = capsys.readouterr().err
        assert f"names {named}" in err and "give a name ending .txt" in err
    logs = ["--logs", str(tmp_path)]
    for name in ("r.csv", "r.json.gz", "r.nc"):
        assert main(["tone-reader", "train", *logs, "--out", str(tmp_path / name)]) == 2
        assert "writes the reader here as JSON" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    for name in ("b.txt", "b", "b.log"):
        out = ["--out", str(tmp_path / "s.csv"), "--transcript", str(tmp_path / name)]
        assert main([*simulate, *out]) == 0
        assert (tmp_path / name).read_text().strip()


def test_a_min_df_above_the_messages_names_the_option():
    """scikit-learn's own message ('max_df corresponds to < documents than min_df') named
    neither the option nor what is allowed (a red-team find)."""
    from scai.models.tone_reader.classifier import TrainingOptions, fit_pipeline

    texts, tones = ["you fool", "thank you"] * 3, ["rude", "neutral"] * 3
    with pytest.raises(ValueError, match=r"min_df \(--min-df\): 7 .* 6; allowed: 1 to 6"):
        fit_pipeline(texts, tones, TrainingOptions(min_df=7))
    fit_pipeline(texts, tones, TrainingOptions(min_df=1))


@pytest.mark.parametrize("weight", ["inf", "nan", "-0.5", "1e309", "-1E400"])
def test_a_mixture_weight_must_be_finite_and_not_negative(weight):
    """``selfish=inf`` was refused as 'must be >= 0, got inf': the wrong reason; 1e309 was shown
    as the inf it reads as (a red-team find): as typed."""
    from scai.models.simulate import parse_mixture

    with pytest.raises(RunError, match=rf"'selfish' must be a finite number >= 0, got {weight}"):
        parse_mixture(f"selfish={weight}", ("selfish", "fair"))


def test_the_command_line_shows_a_long_value_cut_and_an_endless_size_refused(capsys):
    """A value typed for an option was echoed in full (5,000 characters of ``--users``,
    ``--policy``, an invalid ``--manner`` or an unknown ``--hypothesis``), and ``--max-memory``
    of 309 digits or more (an infinite float) was an OverflowError's traceback (a red-team
    find, and a review): a value is shown cut to 80 characters."""
    from scai.experiments.cli import main

    long = "9" * 5000
    argvs = {  # the option -> its command line, and what its one line says
        "--users": (["simulate", "--policy", "fair", "--users", long], "must be a whole number"),
        "--policy": (["simulate", "--policy", "s" * 5000, "--users", "4"], "unknown policy"),
        "--max-memory": (["fit", "--max-memory", long[:309]], "expected a size such as 500M"),
        "--manner": (["simulate", "--policy", "fair", "--manner", long], "invalid choice: '999"),
        "--hypothesis": (["fit", "--hypothesis", long], "unknown hypothesis '999"),
    }
    for option, (argv, says) in argvs.items():
        argv += ["--out", "x.csv"] if argv[0] == "simulate" else ["--data", "x.csv", "--out", "f"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err) < 300 and "..." in err and says in err, (option, err)


@pytest.mark.parametrize("weight", ["0.2_5", "\u0660.\u0665", "0x1"])
def test_a_mixture_weight_is_plain_decimal(weight):
    """float() reads '0.2_5' (as 0.25) and Arabic-Indic digits, which the tables refuse."""
    from scai.models.simulate import parse_mixture

    with pytest.raises(RunError, match=rf"weight '{weight}' of 'selfish' is not a number"):
        parse_mixture(f"selfish={weight},fair=0.75", ("selfish", "fair"))
    assert parse_mixture("selfish=0.25,fair=7.5e-1", ("selfish", "fair"))


def test_a_folder_that_takes_no_new_file_names_the_file_asked_for(tmp_path, monkeypatch):
    """Saving a hypothesis to ``/proc/x.toml`` raised ``No such file or directory:
    '/proc/.x.toml.PID.TOKEN.tmp'``: the atomic writer's hidden temporary file, not the path
    given. Its creation's error, and a write's naming it, now name the file asked for."""
    import errno

    from scai.models import writing

    def refuse(folder, prefix, suffix):  # as os.open fails in /proc: naming the hidden file
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), f"{folder}/{prefix}1")

    monkeypatch.setattr(writing, "_create_unique", refuse)
    with pytest.raises(FileNotFoundError) as caught:
        scai.models.Hypothesis().save(tmp_path / "x.toml")
    assert caught.value.filename == str(tmp_path / "x.toml")
    monkeypatch.undo()

    def half(tmp: str) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), tmp)

    with pytest.raises(PermissionError) as caught:
        writing.write_atomic(tmp_path / "y.csv", half)
    assert caught.value.filename == str(tmp_path / "y.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_path_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    """``Posterior.save("~/x.nc")`` made a folder named ``~`` in the current one (a red-team
    find); pandas and xarray read ``~`` as the home folder, and so do scai's save and load."""
    from scai.models.simulate import simulate

    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    scai.models.Hypothesis().save("~/h.toml")
    assert scai.models.Hypothesis.load("~/h.toml") == scai.models.Hypothesis.load(home / "h.toml")
    table = simulate("neutral", policy="fair", users=4, epochs=1, seed=0).interactions
    table.to_csv("~/t.csv", index=False)  # pandas's ~, which scai's readers share
    scai.inference.fit("~/t.csv", "neutral").save("~/post.nc")
    assert scai.inference.Posterior.load("~/post.nc").engine == "exact"
    assert len(scai.models.data.read_interactions("~/t.csv")) == len(table)
    assert sorted(p.name for p in home.iterdir()) == ["h.toml", "post.nc", "t.csv"]
    assert list(elsewhere.iterdir()) == []
    # an unknown user's ~ is a name like any other (Path.expanduser raised RuntimeError)
    with pytest.raises(scai.models.errors.HypothesisError, match="~nosuchuser"):
        scai.models.Hypothesis.load("~nosuchuser/h.toml")
