"""original-logs' fit cache cannot lie: a fit is reused only if its rows match the checksum
written after them and the same code made it (the code is part of the key)."""

from __future__ import annotations

import io
import sys

import pandas as pd
import pytest

from scai.experiments.cache import CacheWarning
from scai.experiments.original_logs import experiment
from scai.models.writing import write_csv_atomic


def finished_fit(tmp_path):
    """A cached fit as _fit_to_cache leaves it: the rows, then their checksum."""
    path = tmp_path / "0123456789abcdef.csv"
    write_csv_atomic(pd.DataFrame({"sim": ["a"], "epoch": [1], "offered_share": [2.5]}), path)
    size, sha = experiment.file_digest(path)
    path.with_suffix(".sha256").write_text(f"{size} {sha}\n")
    return path


def test_an_intact_fit_is_reused(tmp_path):
    assert experiment.cached(finished_fit(tmp_path))
    assert not experiment.cached(tmp_path / "never.csv")  # never fitted: no warning


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_text(p.read_text().replace("2.5", "9.5")),  # changed, same size
        lambda p: p.write_text(p.read_text()[:-3]),  # truncated
        lambda p: p.with_suffix(".sha256").unlink(),  # unfinished: no checksum
        lambda p: p.unlink(),  # rows lost
    ],
    ids=["changed", "truncated", "unfinished", "missing"],
)
def test_a_damaged_fit_is_refitted_with_a_warning(tmp_path, damage):
    path = finished_fit(tmp_path)
    damage(path)
    with pytest.warns(CacheWarning, match=path.name):
        assert not experiment.cached(path)
    assert not path.exists() and not path.with_suffix(".sha256").exists()


def test_the_key_changes_with_the_code_and_the_policies(monkeypatch):
    table = pd.DataFrame({"sim": ["a"], "offer": [1]})
    hypothesis = experiment.get_hypothesis("real_agents")
    kind, policy = experiment.EPOCHS_KIND, {"a": "selfish"}
    key = experiment._key(table, hypothesis, 0, kind, policy)
    assert key == experiment._key(table, hypothesis, 0, kind, policy)
    # p_true_norm scores against the configured policies: other policies, other rows
    assert experiment._key(table, hypothesis, 0, kind, {"a": "altruistic"}) != key
    monkeypatch.setattr(experiment, "code_version", lambda: "0.2.0+another")
    assert experiment._key(table, hypothesis, 0, kind, policy) != key
    assert experiment._key(table, hypothesis, 1, kind, policy) != key


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True], ids=["redirected", "a terminal"])
def test_the_fits_bar_shows_on_a_terminal_only(tmp_path, monkeypatch, capsys, terminal):
    """As the conditions' bar (runner) and the import's: with progress asked for, the fits'
    bar is drawn on a terminal, never into a redirected log."""
    if terminal:
        monkeypatch.setattr(sys, "stderr", _Terminal())
    experiment._run_fits([(finished_fit(tmp_path), ())], workers=1, progress=True)
    drawn = sys.stderr.getvalue() if terminal else capsys.readouterr().err
    assert ("fits" in drawn) == terminal, drawn
