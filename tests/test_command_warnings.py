"""The commands show every warning a user should act on, on one line, wherever scai is installed.

``scai fit`` once printed a caught warning only if the file that raised it had no ``scai`` in its
path: in a checkout named anything else every warning showed, but installed (``.../site-packages/
scai/...``) or cloned into a ``scai`` folder, the engines' convergence and grid warnings were
never shown. The rule is now the warning's category (``commands.warnings_on_one_line``)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import pytest

from scai.experiments.cli import main
from scai.experiments.commands import warnings_on_one_line
from scai.inference.diagnostics import DiagnosticWarning
from scai.models.errors import TableWarning

#: the module, not the function ``scai.inference`` exports under the same name
fit_module = importlib.import_module("scai.inference.fit")
INSTALLED = "/opt/venv/lib/python3.11/site-packages/scai/inference/exact.py"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("warnings") / "t.csv"
    argv = ["simulate", "--policy", "fair", "--users", "6", "--sims", "1", "--epochs", "1"]
    assert main([*argv, "--out", str(path)]) == 0
    return path


def test_fit_shows_a_warning_raised_from_an_installed_scai(table, tmp_path, monkeypatch, capsys):
    real_fit = fit_module.fit

    def fit_that_warns(*args, **kwargs):
        warnings.warn_explicit("the grid is too coarse", DiagnosticWarning, INSTALLED, 1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(fit_module, "fit", fit_that_warns)
    capsys.readouterr()
    assert main(["fit", "--data", str(table), "--out", str(tmp_path / "f"), "--draws", "20"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err.count("scai fit: warning: the grid is too coarse") == 1, err


def test_fit_shows_the_engines_own_warning(table, tmp_path, capsys):
    """...with the command's names of the options (it said "max_steps=5" and "raise
    max_steps (scai fit --max-steps)")."""
    capsys.readouterr()
    argv = ["fit", "--data", str(table), "--engine", "svi", "--max-steps", "5", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "f"), "--draws", "20"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(
        line.startswith("scai fit: warning: SVI stopped at --max-steps 5, before step 100")
        and line.endswith("raise --max-steps to at least 100")
        for line in err
    ), err


def test_one_line_for_the_categories_the_rest_as_python_shows_them(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda m, c, *rest: shown.append((str(m), c)))
    lines: list[str] = []
    with warnings_on_one_line((TableWarning,), tell=lines.append):
        for _ in range(2):  # every time, not once per place
            warnings.warn_explicit("row 5 = row 2", TableWarning, INSTALLED, 7)
        warnings.warn_explicit("overflow in exp", RuntimeWarning, "/lib/numpy/x.py", 3)
    assert lines == ["warning: row 5 = row 2"] * 2
    assert shown == [("overflow in exp", RuntimeWarning)]
    monkeypatch.undo()
    with warnings_on_one_line():
        warnings.warn_explicit("a diagnostic", DiagnosticWarning, INSTALLED, 9)
    assert capsys.readouterr().err.splitlines() == ["warning: a diagnostic"]


def test_fit_says_when_text_is_there_but_no_tone(table, tmp_path, capsys):
    """A table with messages but no tone (the original logs as imported), fitted with its tones
    as given (the default), tells the model no manners: ``scai fit`` says so, and not when the
    user asked for no tones, nor when a tone is given."""
    import pandas as pd

    frame = pd.read_csv(table, keep_default_na=False)
    texts = frame.assign(proposer_tone="", responder_tone="", proposer_text="Take it or leave it.")
    silent = tmp_path / "silent.csv"
    texts.to_csv(silent, index=False)
    told = frame.assign(proposer_text="Take it or leave it.")
    given = tmp_path / "given.csv"
    told.to_csv(given, index=False)
    expected = f"warning: {silent}: no message has a tone but {len(frame)} have text"
    for path, tones, warned in (
        (silent, "given", True),
        (silent, "none", False),
        (given, "given", False),
    ):
        capsys.readouterr()
        argv = ["fit", "--data", str(path), "--tones", tones, "--draws", "10"]
        assert main([*argv, "--out", str(tmp_path / f"f_{tones}_{path.stem}")]) == 0
        err = capsys.readouterr().err
        assert (expected in err) == warned, (path.name, tones, err)


def test_scai_warnings_outside_the_commands_own_are_one_line_too(tmp_path, capsys):
    """A hypothesis whose two types act alike warns when it is read: ``scai simulate`` printed
    it in Python's form, naming scai's source line ('.../models/hypotheses.py:405:
    HypothesisWarning: ...' and the line's code; the warnings now live in
    models/hypothesis_warnings.py), where its errors are one line (a red-team find). Every
    warning of a scai category is now told as 'scai COMMAND: warning: ...'."""
    hypothesis = tmp_path / "twin.toml"
    hypothesis.write_text("[policies.fair]\nw = 0.5\n[policies.fair2]\nw = 0.5\n")
    out = tmp_path / "s.csv"
    argv = ["simulate", "--policy", "fair", "--epochs", "1", "--out", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main([*argv, "--hypothesis", str(hypothesis)]) == 0
    err = capsys.readouterr().err
    told = f"scai simulate: warning: {hypothesis}: policies: 'fair' and 'fair2' have the same"
    assert told in err
    assert ".py:" not in err and "HypothesisWarning" not in err  # no source file's line
