"""What ``scai fit`` prints about its own run."""

from __future__ import annotations

import re
import time

import pytest

from scai.experiments.cli import main
from scai.experiments.commands import fit as fit_command
from scai.models.hypotheses import PRESETS
from scai.models.simulate import simulate

PAUSE = 0.6


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("fit_command") / "t.csv"
    sim = simulate(PRESETS["neutral"], policy="selfish", users=3, rounds=3, sims=1, seed=1)
    sim.interactions.to_csv(path, index=False)
    return path


def test_the_time_printed_counts_the_files_too(table, tmp_path, monkeypatch, capsys):
    """The line said 'engine exact, ..., 0.25 s', the fit's time alone, though writing
    posterior.nc afterwards took 25 s (a table of many distinct pots): it gives both."""
    real_save = fit_command.save_pair

    def slow_save(*args, **kwargs):
        time.sleep(PAUSE)  # a slow disk, or a posterior.nc of many replicates
        real_save(*args, **kwargs)

    monkeypatch.setattr(fit_command, "save_pair", slow_save)
    argv = ["fit", "--data", str(table), "--out", str(tmp_path / "f"), "--draws", "20"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = re.search(r"engine exact, .*, fit ([\d.]+) s, files written in ([\d.]+) s\n", out)
    assert line, out
    fitted, saved = map(float, line.groups())
    assert saved >= PAUSE and fitted >= 0  # (the fit itself: whatever the machine takes)


def test_one_draw_has_no_sd_and_the_summary_says_how_many_draws_it_reads(table, tmp_path, capsys):
    """With ``--draws 1`` the exact engine's summary printed ``sd 0.000`` (no spread measured
    read as certainty) and its q5/q95 beside the lattice's exact mean without saying they come
    from one draw (a review's find): the sd is NaN and the note names the draws."""
    argv = ["fit", "--data", str(table), "--out", str(tmp_path / "f"), "--draws", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "sd, q5, q95: from 1 draw)" in out, out
    row = next(line for line in out.splitlines() if "pi[selfish]" in line)
    assert row.split()[3] == "NaN", row  # sim, parameter, mean, sd
    assert main(["fit", "--data", str(table), "--out", str(tmp_path / "g"), "--draws", "40"]) == 0
    assert "sd, q5, q95: from 40 draws)" in capsys.readouterr().out


def test_an_engines_refusal_names_the_commands_option(table, tmp_path, capsys):
    """A check inside the engine reached the command line with its Python names:
    ``scai fit --subsample 50`` said "subsample_size=50: ... (or no subsample_size: ...)"."""
    argv = ["fit", "--data", str(table), "--engine", "svi", "--subsample", "500"]
    assert main([*argv, "--out", str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scai fit: error: --subsample 500: ") and "subsample_size" not in err, err
    assert "(or no --subsample:" in err
    said = fit_command.as_command_options("num_draws=0 and max_steps")
    assert said == "--draws 0 and --max-steps"


def test_the_engines_errors_and_warnings_name_the_commands_options(table, tmp_path, capsys):
    """Only the engine's own errors were translated: MCMC's ESS warning said "samples=700,
    scai fit --draws 700" (a review); the engines' warnings are too now. What quotes the
    user's files and values is not: a table in a folder named ``num_draws`` kept its name (a
    second review: translating every message renamed it ``--draws``), and the table's memory
    refusal names both spellings."""
    import shutil

    (tmp_path / "num_draws").mkdir()
    data = shutil.copy(table, tmp_path / "num_draws" / "t.csv")
    assert (
        main(["fit", "--data", str(data), "--out", str(tmp_path / "a"), "--max-memory", "1K"]) == 2
    )
    err = capsys.readouterr().err
    assert f"error: {data}: 1 problem(s) found: table: too large for memory" in err, err
    assert "(the limit given (max_memory=, --max-memory))" in err
    argv = ["fit", "--data", str(table), "--out", str(tmp_path / "b"), "--engine", "mcmc"]
    assert main([*argv, "--draws", "60", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"draws per chain would reach 400: --draws \d+\)", err), err
    assert "samples=" not in err
    said = {
        "use engine='svi' or engine='mcmc'": "use --engine svi or --engine mcmc",
        "fit with engine='mcmc' or 'svi', or": "fit with --engine mcmc or svi, or",
        "(max_memory=, --max-memory)": "(--max-memory)",
        "raise max_steps (scai fit --max-steps) to": "raise --max-steps to",
        "the number of draws (scai fit --draws)": "the number of draws (scai fit --draws)",
    }
    for message, spelled in said.items():
        assert fit_command.as_command_options(message) == spelled


@pytest.mark.parametrize(
    "engine, said",
    [
        ("mcmc", "--draws 100000 x --chains 4: "),
        ("svi", "--draws 100000 and 200,000 importance proposals: "),
        ("exact", "--draws 100000: "),
    ],
)
def test_an_option_named_both_ways_is_named_once(table, tmp_path, capsys, engine, said):
    """The draws' memory check names each option as Python and the command line call it,
    ``num_draws=100000 (scai fit --draws) x num_chains=4 (--chains)``: translated word by word
    it read ``--draws 100000 (scai fit --draws)`` and ``--chains 4 (--chains)``, and MCMC's
    ``samples=100000`` kept its Python name beside the translated ``--chains``."""
    argv = ["fit", "--data", str(table), "--engine", engine, "--draws", "100000"]
    argv += ["--chains", "4"] if engine == "mcmc" else []
    assert main([*argv, "--max-memory", "20M", "--out", str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scai fit: error: {said}"), err
    assert "(scai fit --" not in err and "(--chains)" not in err and "samples=" not in err, err


def test_draws_help_states_each_engines_default(capsys):
    """`scai fit --help` gave every option's default but --draws's, so a newcomer whose large
    table was refused for its 1,000 draws' ArviZ form could not tell from the help what it had
    asked for. It states the engines' own defaults (mcmc's per chain)."""
    import inspect

    from scai.inference.exact import fit_exact
    from scai.inference.mcmc import fit_mcmc
    from scai.inference.svi import fit_svi

    exact = inspect.signature(fit_exact).parameters["num_draws"].default
    svi = inspect.signature(fit_svi).parameters["num_draws"].default
    mcmc = inspect.signature(fit_mcmc).parameters["samples"].default
    assert main(["fit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {exact} for exact, {svi} for svi, {mcmc} per chain for mcmc)" in text


def test_no_output_replaces_a_file_the_command_reads(table, tmp_path, capsys):
    """``scai fit --data fit/posterior.nc --out fit`` replaced its own table with the posterior,
    ``scai simulate --hypothesis h.toml --out h.toml`` (or ``--transcript h.toml``) its
    hypothesis, exit 0 (a red-team's finds; ``import`` and ``tone-reader train`` refused it):
    each is refused before any work, naming the option and the file, and the file is kept
    (``--transcript h.toml`` by its ending: a transcript is plain text)."""
    import shutil

    (tmp_path / "fit").mkdir()
    data = tmp_path / "fit" / "posterior.nc"
    shutil.copy(table, data)
    hypothesis = tmp_path / "h.toml"
    hypothesis.write_text("rationality = 3.0\n")
    reader = tmp_path / "fit" / "policy_probs.csv"
    reader.write_text("{}")
    for argv, option, source in (
        (["fit", "--data", data, "--out", tmp_path / "fit"], "--out", data),
        (["fit", "--data", table, "--hypothesis", hypothesis, "--out", tmp_path], "--out", None),
        (
            ["fit", "--data", table, "--tones", "read", "--reader", reader, "--out", reader.parent],
            "--out",
            reader,
        ),
        (
            ["simulate", "--policy", "fair", "--hypothesis", hypothesis, "--out", hypothesis],
            "--out",
            hypothesis,
        ),
        (
            [
                "simulate",
                "--policy",
                "fair",
                "--hypothesis",
                hypothesis,
                "--out",
                tmp_path / "s.csv",
                "--transcript",
                hypothesis,
            ],
            "--transcript",
            hypothesis,
        ),
    ):
        before = {p: p.read_bytes() for p in (data, hypothesis, reader)}
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        if source is None:  # a folder beside the hypothesis file: nothing in the way
            assert code == 0, err
            continue
        assert code == 2, err
        said = "names TOML" if option == "--transcript" else f"is the source {source} it reads"
        assert f"error: {option} " in err or f"argument {option}: " in err, err
        assert said in err, err
        assert {p: p.read_bytes() for p in before} == before


def test_the_header_says_when_the_table_has_no_tones(table, tmp_path, capsys):
    """ "tones given" read as if the table held tones where it held none (a review)."""
    import pandas as pd

    silent = tmp_path / "silent.csv"
    pd.read_csv(table).assign(proposer_tone="", responder_tone="").to_csv(silent, index=False)
    for data, said in ((table, "tones given, "), (silent, "tones given (none in the table), ")):
        assert main(["fit", "--data", str(data), "--out", str(tmp_path / data.stem)]) == 0
        assert said in capsys.readouterr().out
