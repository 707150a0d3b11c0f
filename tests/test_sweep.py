"""``scai sweep`` (issue 14, item 5): a bad spec is one line naming the file, key, value and
what is allowed; a tiny sweep (2 x 2 cells of 2 conditions each) gives the same bytes of
``sweep.csv`` on the local process pool and on a two-worker Dask cluster; a sweep resumes from
the cache after a partial or interrupted run; a cell that fails is retried once, then kept in
the table as failed and told on its own line, never lost."""

from __future__ import annotations

import errno
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from timelimit import time_limit

from scai.experiments import runner
from scai.experiments.cli import main
from scai.experiments.runner import Interrupted
from scai.experiments.sweep import load_spec, run_sweep
from scai.experiments.sweep.cells import make_cells
from scai.experiments.sweep.report import NOT_RUN
from scai.models.errors import HypothesisError, RunError

TINY = """\
base = "inconsistency"
measure = "slowdown"
[settings]
sims = 2
epochs = 1
seed = 3
[condition]
users = 4
[axes]
stereotype_strength = [0.0, 0.8]
rationality = [1.0, 4.0]
"""


def write_spec(folder: Path, text: str = TINY, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def sweep(spec: Path, out: Path, *options: str) -> int:
    """``scai sweep SPEC --out OUT OPTIONS`` in this process: its exit code."""
    return main(["sweep", str(spec), "--out", str(out), *options])


# -- bad specs ----------------------------------------------------------------------------------
BAD = {
    # what is wrong: (the spec's text, what the one-line message must name)
    "unknown top key": ('measure = "slowdown"\ncolour = 1\n', ["colour", "allowed: base"]),
    "unknown axis": (
        "[axes]\nstrength = [0.1]\n",
        ["axes.strength", "allowed: users, rationality, stereotype_strength"],
    ),
    "empty axis": ("[axes]\nrationality = []\n", ["axes.rationality", "is empty"]),
    "no axes": ("[settings]\nsims = 2\n", ["[axes] is empty", "stereotype_strength"]),
    "non-numeric value": (
        '[axes]\nrationality = [1.0, "high"]\n',
        ["axes.rationality", "'high' is not a number", "from 1e-06 to 1000"],
    ),
    "out of range": (
        "[axes]\nstereotype_strength = [0.5, 1.5]\n",
        ["axes.stereotype_strength", "1.5 is out of range", "from 0 to 1"],
    ),
    "not whole": ("[axes]\nusers = [4, 5.5]\n", ["axes.users", "5.5", "a whole number from 3"]),
    "not a list": ("[axes]\nusers = 4\n", ["axes.users", "must be a list", "got 4"]),
    "seed too large": ("[axes]\nseed = [4294967296]\n", ["axes.seed", "from 0 to 4,294,967,295"]),
    "repeated value": ("[axes]\nseed = [1, 1]\n", ["axes.seed", "1 is given twice"]),
    "unknown measure": (
        'measure = "speed"\n[axes]\nseed = [1]\n',
        ["measure", "'speed'", "allowed: slowdown, belief_deficit"],
    ),
    "unknown base": ('base = "alignment"\n[axes]\nseed = [1]\n', ["base", "allowed: incons"]),
    "unknown condition key": (
        "[condition]\nsize = 4\n[axes]\nseed = [1]\n",
        ["condition.size", "allowed: policy, manner"],
    ),
    "bad manner": (
        '[condition]\nmanner = "loud"\n[axes]\nseed = [1]\n',
        ["condition.manner", "'loud'", "allowed: neutral, polite, rude"],
    ),
    "neutral contrast": (
        '[condition]\nmanner = "neutral"\n[axes]\nseed = [1]\n',
        ["condition.manner", "'neutral'", "allowed: polite, rude, sycophantic"],
    ),
    "both fixed and varied": (
        "[condition]\nusers = 4\n[axes]\nusers = [4, 6]\n",
        ["users is both in [condition]", "[axes]"],
    ),
    "bad assistant rationality": (
        '[condition]\nassistant_rationality = "same"\n[axes]\nseed = [1]\n',
        ["condition.assistant_rationality", "'same'", "'users'"],
    ),
    "bad settings key": ("[settings]\ndraws = 3\n[axes]\nseed = [1]\n", ["settings.draws"]),
    "bad sims": ("[settings]\nsims = 0\n[axes]\nseed = [1]\n", ["settings.sims", "0"]),
    "figure axis": (
        '[axes]\nseed = [1]\n[figure]\nx = "users"\n',
        ["figure.x", "'users' is not an axis", "allowed: seed"],
    ),
    "figure y on the only axis": (
        '[axes]\nseed = [1, 2]\n[figure]\ny = "seed"\n',
        ["figure.y", "'seed' is the sweep's only axis", "leave figure.y out"],
    ),
    "not TOML": ("[axes\n", ["not valid TOML"]),
    # each a bare RecursionError, ValueError or OverflowError ("internal error: ... a bug")
    "nested too deeply": (
        "[axes]\nrationality = " + "[" * 3000 + "]" * 3000 + "\n",
        ["not valid TOML: nested too deeply"],
    ),
    "a number too long to read": (
        "[axes]\nrationality = [" + "1" * 5000 + "]\n",
        ["a number of more than 4,300 digits"],
    ),
    "a whole number beyond a float": (
        "[condition]\nusers = 1" + "0" * 400 + "\n[axes]\nseed = [1, 2]\n",
        ["condition.users", "is out of range; allowed: a whole number from 3 to"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_spec_is_one_line_naming_file_key_value_and_what_is_allowed(tmp_path, case):
    text, expected = BAD[case]
    spec = write_spec(tmp_path, text)
    with pytest.raises(RunError) as caught:
        load_spec(spec)
    message = caught.value.one_line()
    assert message.startswith(f"{spec}: "), message
    for part in expected:
        assert part in message, (part, message)


def test_an_unknown_key_is_shown_as_a_value_with_its_control_characters_escaped(tmp_path):
    """A quoted TOML key may hold any character: an unknown one was printed raw, so an escape
    sequence reached the terminal and a newline showed as a space; it is shown as hypothesis
    files show theirs, quoted with its characters escaped."""
    spec = write_spec(tmp_path, '"\\u001b[31mred\\nx" = 1\n[axes]\nseed = [1]\n')
    with pytest.raises(RunError) as caught:
        load_spec(spec)
    message = caught.value.one_line()
    assert "\x1b" not in message and "unknown key '\\x1b[31mred\\nx'" in message, message
    with pytest.raises(RunError, match="unknown key 'axes.strength'; allowed: users"):
        load_spec(write_spec(tmp_path, "[axes]\nstrength = [0.1]\n"))


def test_a_missing_hypothesis_file_fails_before_any_work(tmp_path, capsys):
    """The command line's one line, exit 2, nothing written."""
    spec = write_spec(tmp_path, '[condition]\nhypothesis = "nope.toml"\n[axes]\nseed = [1]\n')
    assert sweep(spec, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scai sweep: error: ") and "condition.hypothesis" in err
    assert "nope.toml is not a file" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "sweep.csv").exists()


@pytest.mark.parametrize(
    ("types", "allowed"),
    [
        ("[policies.a]\nw = 0.0\n[policies.b]\nw = 1.0\n", "give a hypothesis with a type named"),
        ("[policies.fair]\nw = 0.5\n[policies.b]\nw = 1.0\n", "allowed: fair"),
    ],
)
def test_a_users_norm_the_hypothesis_lacks_is_refused_naming_the_key(
    tmp_path, capsys, types, allowed
):
    """A hypothesis whose types do not include the users' norm (``condition.policy``, default
    'altruistic') failed as "unknown policy 'altruistic'; allowed: a, b", naming no key and
    offering types the spec then refused (a red-team find): it names the key and what can be
    given, before any work."""
    (tmp_path / "h.toml").write_text(types)
    text = (
        'measure = "interactions_to_95"\n[condition]\nhypothesis = "h.toml"\n[axes]\nseed = [1]\n'
    )
    assert sweep(write_spec(tmp_path, text), tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "condition.policy: the users' norm 'altruistic'" in err
    assert allowed in err, err
    assert not (tmp_path / "out" / "sweep.csv").exists()


def test_missing_spec_and_mismatched_options_are_one_line(tmp_path, capsys):
    assert sweep(tmp_path / "absent.toml", tmp_path / "out") == 2
    assert "absent.toml: cannot read the sweep file" in capsys.readouterr().err
    spec = write_spec(tmp_path)
    assert sweep(spec, tmp_path / "out", "--scheduler", "tcp://127.0.0.1:1") == 2
    assert "--scheduler tcp://127.0.0.1:1: only used with --backend dask" in (
        capsys.readouterr().err
    )


def test_hypothesis_settings_reach_the_assistant(tmp_path):
    from scai.experiments.conditions import assistant_hypothesis
    from scai.experiments.sweep.cells import make_cells

    spec = load_spec(write_spec(tmp_path, "[axes]\ntone_fidelity = [0.6]\npi_concentration = [2]"))
    (cell,) = make_cells(spec)
    hypothesis = assistant_hypothesis(cell.conditions[0])
    assert hypothesis.tone_fidelity == 0.6 and hypothesis.pi_concentration == (2.0, 2.0, 2.0)
    assert [c.manner for c in cell.conditions] == ["rude", "neutral"]
    # the stream names the axes in one fixed order (STREAM_ORDER), not the file's
    assert {c.stream for c in cell.conditions} == {"sweep pi_concentration=2.0 tone_fidelity=0.6"}
    with pytest.raises(HypothesisError, match="hypothesis"):
        from scai.experiments.conditions import Condition

        assistant_hypothesis(Condition("x", "selfish", hypothesis_settings=(("name", 1.0),)))


# -- running ----------------------------------------------------------------------------------
def cache_files(out: Path) -> dict[str, bytes]:
    """The cached results and warnings, by file name."""
    files = [*(out / "cache").glob("*.*.csv"), *(out / "cache").glob("*.warnings.txt")]
    return {p.name: p.read_bytes() for p in sorted(files)}


#: TINY over the prior's concentration instead of rationality: its sharp prior warns.
TINY_WARNING = TINY.replace("rationality = [1.0, 4.0]", "pi_concentration = [0.5, 0.001]")


def test_local_and_dask_give_the_same_bytes(tmp_path, monkeypatch, capsys):
    """The same tiny sweep on the local pool (two processes) and on a Dask LocalCluster of two
    single-threaded worker processes, reached through --scheduler: the same sweep.csv and the
    same cached files, byte for byte. Three of its eight conditions in flight at a time, as a
    sweep larger than ``IN_FLIGHT`` runs: the others are submitted as those finish. Half its
    cells warn (a prior sharper than the lattice), and say so alike."""
    import warnings

    from distributed import LocalCluster

    with warnings.catch_warnings():  # ArviZ announces its refactor on import
        warnings.simplefilter("ignore", FutureWarning)
        import arviz  # noqa: F401  (its daily stamp is written before the workers import it)

    spec = write_spec(tmp_path, TINY_WARNING)
    monkeypatch.setattr(runner, "IN_FLIGHT", 3)
    with time_limit(150):
        assert sweep(spec, tmp_path / "local", "--workers", "2") == 0
        local = capsys.readouterr()
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            address = cluster.scheduler_address
            code = sweep(spec, tmp_path / "dask", "--backend", "dask", "--scheduler", address)
        assert code == 0
        remote = capsys.readouterr()
    assert "on local (2 worker processes)" in local.err
    assert f"on dask (scheduler {address})" in remote.err
    assert "cells: 4 done, 0 failed, 0 remaining" in remote.err
    assert "cells: 4 done, 0 failed, 0 remaining" in local.err
    table = (tmp_path / "local" / "sweep.csv").read_bytes()
    assert table == (tmp_path / "dask" / "sweep.csv").read_bytes()
    assert cache_files(tmp_path / "local") == cache_files(tmp_path / "dask")
    frame = pd.read_csv(tmp_path / "local" / "sweep.csv")
    assert list(frame.columns) == [
        "stereotype_strength",
        "pi_concentration",
        "slowdown",
        "lo",
        "hi",
        "never_reached_95",
        "warnings",
        "status",
    ]
    assert len(frame) == 4 and (frame.status == "ok").all()
    assert frame.warnings.notna().tolist() == [False, True, False, True]  # the sharp prior's
    assert len(list((tmp_path / "dask" / "cache").glob("*.warnings.txt"))) == 4
    assert frame.never_reached_95.dtype.kind == "i" and (frame.never_reached_95 >= 0).all()
    assert (frame.lo <= frame.slowdown).all() and (frame.slowdown <= frame.hi).all()
    assert (tmp_path / "local" / "figures" / "sweep.png").stat().st_size > 0


def test_a_partial_sweep_is_resumed_from_the_cache(tmp_path, monkeypatch, capsys):
    """A sweep over part of the grid, then the whole grid: the cells done before come from the
    cache (their files untouched) and only the others are computed."""
    computed = []
    real = runner.run_condition

    def counting(cond, settings, seed, hypothesis=None):
        computed.append(cond.name)
        return real(cond, settings, seed, hypothesis)

    monkeypatch.setattr(runner, "run_condition", counting)
    half = TINY.replace("rationality = [1.0, 4.0]", "rationality = [1.0]")
    assert sweep(write_spec(tmp_path, half, "half.toml"), tmp_path / "out", "--workers", "1") == 0
    assert len(computed) == 4
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "cache").glob("*.done")}
    computed.clear()
    capsys.readouterr()
    assert sweep(write_spec(tmp_path), tmp_path / "out", "--workers", "1") == 0
    assert sorted(computed) == sorted(
        f"sweep s={s} lam=4.0 {m}" for s in (0.0, 0.8) for m in ("rude", "neutral")
    )
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert "cells: 2 done, 0 failed, 2 remaining" in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "out" / "sweep.csv")) == 4


def test_an_interrupted_sweep_resumes(tmp_path, monkeypatch):
    """Ctrl-C after three conditions: Interrupted says how far it got, and sweep.csv holds the
    one cell finished (both its conditions), the others marked not run (an earlier run's table
    stayed in its place); the same sweep again computes only the other five, and the finished
    cell's row is the one the whole sweep gives."""
    spec = load_spec(write_spec(tmp_path))
    computed = []
    real = runner.run_condition

    def interrupted(cond, settings, seed, hypothesis=None):
        if len(computed) == 3:
            raise KeyboardInterrupt
        computed.append(cond.name)
        return real(cond, settings, seed, hypothesis)

    monkeypatch.setattr(runner, "run_condition", interrupted)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sweep.csv").write_text("cell,status\nan earlier run's,ok\n")
    told = []
    with pytest.raises(Interrupted, match="3 of 8 conditions finished"):
        run_sweep(spec, tmp_path / "out", workers=1, tell=told.append)
    partial = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(partial.status) == ["ok", NOT_RUN, NOT_RUN, NOT_RUN]
    assert partial.slowdown.notna().tolist() == [True, False, False, False]
    assert told[-1].endswith(
        f"the 1 of 4 cells finished so far; the others say {NOT_RUN!r} or why they failed"
    )
    first = list(computed)
    computed.clear()
    monkeypatch.setattr(
        runner,
        "run_condition",
        lambda c, s, seed, h=None: computed.append(c.name) or real(c, s, seed, h),
    )
    result = run_sweep(spec, tmp_path / "out", workers=1, tell=lambda line: None)
    assert result.cached == 3 and result.failed == 0
    assert not set(first) & set(computed) and len(computed) == 5
    pd.testing.assert_frame_equal(result.table.iloc[:1], partial.iloc[:1], check_dtype=False)


def test_a_run_that_ends_otherwise_leaves_no_earlier_runs_table(tmp_path, monkeypatch):
    """A finished sweep, then one of another spec into the same OUT that ends otherwise than
    by Ctrl-C (killed, a full disk, a broken pool): the first run's complete sweep.csv and map
    stayed, all "ok", beside the second run's cache, as if they were its results. They go
    before the second run computes."""
    half = TINY.replace("rationality = [1.0, 4.0]", "rationality = [1.0]")
    out = tmp_path / "out"
    run_sweep(load_spec(write_spec(tmp_path, half, "half.toml")), out, workers=1, tell=print)
    assert (out / "sweep.csv").exists() and (out / "figures" / "sweep.png").exists()

    def killed(*args, **kwargs):
        raise RuntimeError("the worker pool broke")

    monkeypatch.setattr("scai.experiments.sweep.run.run_jobs", killed)
    with pytest.raises(RuntimeError, match="the worker pool broke"):
        run_sweep(load_spec(write_spec(tmp_path)), out, workers=1, tell=print)
    assert not (out / "sweep.csv").exists() and not (out / "figures" / "sweep.png").exists()


def test_a_run_with_figures_elsewhere_leaves_no_earlier_map_in_out(tmp_path, monkeypatch):
    """The earlier run's map in OUT/figures stayed beside another spec's sweep.csv when the
    next run drew its own map elsewhere (--figures): it goes too (a review helper's find)."""
    half = TINY.replace("rationality = [1.0, 4.0]", "rationality = [1.0]")
    out = tmp_path / "out"
    run_sweep(load_spec(write_spec(tmp_path, half, "half.toml")), out, workers=1, tell=print)
    assert (out / "figures" / "sweep.png").exists()

    def killed(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr("scai.experiments.sweep.run.run_jobs", killed)
    with pytest.raises(RuntimeError, match="killed"):
        spec = load_spec(write_spec(tmp_path))
        run_sweep(spec, out, figures=tmp_path / "elsewhere", workers=1, tell=print)
    assert not (out / "sweep.csv").exists() and not (out / "figures" / "sweep.png").exists()


def test_a_ctrl_c_after_the_last_cell_still_writes_the_table_and_map(tmp_path, monkeypatch):
    """A Ctrl-C once every cell had finished (while a Dask cluster closed, or the map was
    drawn) stopped the sweep with neither table nor map, and no word of resuming (a review
    helper's repro): it is held until both are written, and the sweep is complete."""
    import os
    import signal

    from scai.experiments.sweep import run as sweep_run

    real = sweep_run.heat_map

    def ctrl_c_then_draw(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_run, "heat_map", ctrl_c_then_draw)
    out, told = tmp_path / "out", []
    # Ctrl-C handled as in a terminal (a background job of a shell, where a suite may run,
    # starts with it ignored: then the sweep keeps it ignored and the test would not test)
    found = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = run_sweep(load_spec(write_spec(tmp_path)), out, workers=1, tell=told.append)
    except KeyboardInterrupt:  # (raised on, it would stop the whole test session)
        pytest.fail("the Ctrl-C after the last cell stopped the sweep")
    finally:
        after = signal.signal(signal.SIGINT, found)
    assert result.failed == 0 and set(pd.read_csv(out / "sweep.csv")["status"]) == {"ok"}
    assert (out / "figures" / "sweep.png").stat().st_size > 0
    assert any("every cell had finished when Ctrl-C came" in line for line in told), told
    assert after is signal.default_int_handler  # the handler it found, given back


def test_a_second_ctrl_c_while_the_map_is_drawn_says_what_is_left(tmp_path, monkeypatch):
    """A second Ctrl-C while the interrupted run writes its table and map: the earlier run's
    table and map are gone since the run started (removed before it computes), so what is
    left is this run's table or none, and no map; the message said "either may be missing or
    an earlier run's"."""
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    for earlier in (out / "sweep.csv", out / "figures" / "sweep.png"):
        earlier.write_text("cell,status\nan earlier run's,ok\n")  # (a sweep's table: a header)

    def stopped(*args, **kwargs):
        raise Interrupted(0, 8, out / "cache")

    def second_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("scai.experiments.sweep.run.run_jobs", stopped)
    monkeypatch.setattr("scai.experiments.sweep.run.heat_map", second_ctrl_c)
    said = []
    with pytest.raises(Interrupted):
        run_sweep(load_spec(write_spec(tmp_path)), out, workers=1, tell=said.append)
    assert "an earlier run's" not in said[-1] and "missing" in said[-1], said[-1]
    assert not (out / "figures" / "sweep.png").exists()
    assert set(pd.read_csv(out / "sweep.csv")["status"]) == {NOT_RUN}


def test_an_interrupted_sweep_keeps_a_failed_cell_as_failed(tmp_path, monkeypatch):
    """A cell fails (twice: given up), then Ctrl-C comes: the partial table says why that cell
    failed, not that it was not run (the runner's errors reach the table with its results)."""
    real = runner.run_condition
    computed = []
    failing = "sweep s=0.0 lam=1.0 rude"

    def failing_then_stopped(cond, settings, seed, hypothesis=None):
        if cond.name == failing:
            raise ValueError("boom")
        if len(computed) == 2:
            raise KeyboardInterrupt
        computed.append(cond.name)
        return real(cond, settings, seed, hypothesis)

    monkeypatch.setattr(runner, "run_condition", failing_then_stopped)
    with pytest.raises(Interrupted):
        run_sweep(load_spec(write_spec(tmp_path)), tmp_path / "out", workers=1, tell=print)
    partial = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(partial.status) == ["failed: ValueError: boom", NOT_RUN, NOT_RUN, NOT_RUN]


def test_an_interruption_is_told_even_if_its_table_cannot_be_written(tmp_path, monkeypatch):
    """Writing the partial table after Ctrl-C fails (a full disk, say): that is told on one
    line and the interruption still reaches the command, which says how to resume."""
    from scai.experiments.sweep import run as sweep_run

    def stopped(cond, settings, seed, hypothesis=None):
        raise KeyboardInterrupt

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(runner, "run_condition", stopped)
    monkeypatch.setattr(sweep_run, "_write_table_and_map", full_disk)
    told = []
    with pytest.raises(Interrupted, match="0 of 8 conditions finished"):
        run_sweep(load_spec(write_spec(tmp_path)), tmp_path / "out", workers=1, tell=told.append)
    assert (
        told[-1]
        == f"{tmp_path / 'out' / 'sweep.csv'}: not updated (OSError: No space left on device)"
    )


def test_a_second_ctrl_c_while_the_partial_table_is_written_is_told(tmp_path, monkeypatch):
    """Ctrl-C again while the interrupted sweep writes its table and map left them missing or
    stale without a word; it is now told, and the first interruption still reaches the
    command."""
    from scai.experiments.sweep import run as sweep_run

    def stopped(cond, settings, seed, hypothesis=None):
        raise KeyboardInterrupt

    def stopped_again(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_condition", stopped)
    monkeypatch.setattr(sweep_run, "_write_table_and_map", stopped_again)
    told = []
    with pytest.raises(Interrupted, match="0 of 8 conditions finished"):
        run_sweep(load_spec(write_spec(tmp_path)), tmp_path / "out", workers=1, tell=told.append)
    assert told[-1].startswith(f"{tmp_path / 'out' / 'sweep.csv'}: interrupted again")


def test_a_failing_cell_is_retried_once_then_kept_as_failed(tmp_path, monkeypatch, capsys):
    """One condition always fails, another fails once: the second is retried and its cell is
    done; the first's cell is told on its own line, kept in sweep.csv as failed, and the command
    exits 1 saying how to retry. Then, fixed, the same command computes only that cell."""
    real = runner.run_condition
    calls: dict[str, int] = {}
    always, once = "sweep s=0.8 lam=4.0 neutral", "sweep s=0.0 lam=1.0 rude"

    def flaky(cond, settings, seed, hypothesis=None):
        calls[cond.name] = calls.get(cond.name, 0) + 1
        if cond.name == always or (cond.name == once and calls[cond.name] == 1):
            raise ValueError(f"boom in {cond.name}")
        return real(cond, settings, seed, hypothesis)

    monkeypatch.setattr(runner, "run_condition", flaky)
    spec = write_spec(tmp_path)
    assert sweep(spec, tmp_path / "out", "--workers", "1") == 1
    err = capsys.readouterr().err
    assert calls[always] == 2 and calls[once] == 2
    assert f"cell stereotype_strength=0.0 rationality=1.0: ValueError: boom in {once}; " in err
    assert (
        f"cell stereotype_strength=0.8 rationality=4.0: failed again (ValueError: boom in "
        f"{always}); skipped" in err
    )
    assert "cells: 3 done, 1 failed, 0 remaining" in err
    assert "1 of 4 cells failed" in err and "run the same command again" in err
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    failed = table[table.status != "ok"]
    assert len(failed) == 1 and failed.status.iloc[0] == f"failed: ValueError: boom in {always}"
    assert failed.slowdown.isna().all()
    computed = []
    monkeypatch.setattr(
        runner,
        "run_condition",
        lambda c, s, seed, h=None: computed.append(c.name) or real(c, s, seed, h),
    )
    assert sweep(spec, tmp_path / "out", "--workers", "1") == 0
    assert computed == [always]
    assert (pd.read_csv(tmp_path / "out" / "sweep.csv").status == "ok").all()
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "out" / "cache").glob("*.done")]
    assert len(manifests) == 8


def test_a_cell_whose_inputs_fail_it_is_not_retried(tmp_path, monkeypatch, capsys):
    """A condition that fails with a scai error of its own inputs (the exact engine's grid
    budget: the same data fail the same way) was computed a second time and told as 'failed
    again'; it is now given up at once, and told so. A memory limit taken from the memory
    available may pass (other programs' memory comes and goes): retried as before."""
    from scai.inference.errors import EngineError
    from scai.models.memory import check_memory

    real = runner.run_condition
    calls: dict[str, int] = {}
    budget, memory = "sweep s=0.8 lam=4.0 neutral", "sweep s=0.0 lam=1.0 rude"

    def failing(cond, settings, seed, hypothesis=None):
        calls[cond.name] = calls.get(cond.name, 0) + 1
        if cond.name == budget:
            raise EngineError("engine 'exact': its grid would need 9 points, beyond 4e+07")
        if cond.name == memory and calls[cond.name] == 1:
            check_memory(10**30, lambda text: EngineError(f"the draws {text}"))
        return real(cond, settings, seed, hypothesis)

    monkeypatch.setattr(runner, "run_condition", failing)
    assert sweep(write_spec(tmp_path), tmp_path / "out", "--workers", "1") == 1
    err = capsys.readouterr().err
    assert calls[budget] == 1 and calls[memory] == 2
    assert (
        "cell stereotype_strength=0.8 rationality=4.0: failed, not retried: its inputs fail it "
        "(EngineError: engine 'exact': its grid would need 9 points" in err
    )
    assert "cell stereotype_strength=0.0 rationality=1.0: EngineError: the draws needs" in err
    assert "cells: 3 done, 1 failed, 0 remaining" in err


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT", "EROFS"])
def test_a_disk_that_cannot_take_the_results_stops_the_sweep_at_once(
    tmp_path, monkeypatch, capsys, code
):
    """A full disk failed every cell in turn, each retried (a review's run: 472 lines of 'No
    space left on device' over 160 cells, then the table not written either): the first such
    error now stops the sweep, naming the file; the cells stored before it are kept, and the
    same command resumes from them once there is room."""
    real_write = runner.write_csv_atomic
    writes = {"n": 0}

    def full_after_one_cell(table, path, *args, **kwargs):
        writes["n"] += 1
        if writes["n"] > 3:  # one condition's three tables, then the disk is full
            raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(path))
        return real_write(table, path, *args, **kwargs)

    computed = []
    real = runner.run_condition
    monkeypatch.setattr(runner, "write_csv_atomic", full_after_one_cell)
    monkeypatch.setattr(
        runner,
        "run_condition",
        lambda c, s, seed, h=None: computed.append(c.name) or real(c, s, seed, h),
    )
    spec = write_spec(tmp_path)
    assert sweep(spec, tmp_path / "out", "--workers", "1") == 2
    err = capsys.readouterr().err
    assert len(computed) == 2  # the stored one and the one the disk refused: no retry, no other
    assert os.strerror(getattr(errno, code)) in err and "trying it once more" not in err
    assert len(list((tmp_path / "out" / "cache").glob("*.done"))) == 1
    monkeypatch.setattr(runner, "write_csv_atomic", real_write)
    computed.clear()
    assert sweep(spec, tmp_path / "out", "--workers", "1") == 0
    assert len(computed) == 7


def test_a_memory_limit_says_whether_it_may_pass_again():
    """The limit taken from the memory available may pass; one the caller gave does not."""
    from scai.inference.errors import EngineError
    from scai.models.memory import check_memory

    for max_bytes, passes in ((None, True), (10**6, False)):
        with pytest.raises(EngineError) as caught:
            check_memory(10**30, EngineError, max_bytes)
        assert caught.value.may_pass_again is passes
        assert runner.may_pass_again(caught.value) is passes
    assert not runner.may_pass_again(EngineError("bad option"))
    assert runner.may_pass_again(ValueError("a bug"))


def test_the_documented_example_spec_loads(tmp_path):
    """The example in :mod:`scai.experiments.sweep.spec`'s docstring (the README's too) is a
    valid spec: the inconsistency experiment's full sweep, 16 cells."""
    import textwrap

    from scai.experiments.sweep import spec as module

    example = module.__doc__.split("::\n", 1)[1].split("\n\nA bad file", 1)[0]
    spec = load_spec(write_spec(tmp_path, textwrap.dedent(example)))
    assert spec.cells == 16 and spec.measure == "slowdown"
    assert spec.figure == ("rationality", "stereotype_strength")


@pytest.mark.parametrize("where", ["axes", "condition"])
@pytest.mark.parametrize(
    ("hypothesis", "key", "values", "named"),
    [
        ("neutral", "stereotype_strength", (0.0, 0.5), "has no stereotype"),
        ("real_agents_stereotyped", "stereotype_strength", (0.0, 0.5), "stereotype_prior"),
        ("real_agents", "lapse", (0.0, 0.1), "hypothesis 'real_agents' learns"),
        ("stereotyped", "essential_shift", (0.0, 2.0), "none of them essential"),
        ("neutral", "tone_fidelity", (0.5, 0.2), "hypothesis 'neutral' ties no manner to a type"),
    ],
)
def test_a_setting_the_hypothesis_ignores_is_refused(
    tmp_path, capsys, where, hypothesis, key, values, named
):
    """Under ``neutral`` a stereotype strength changes nothing (every cell's two curves were
    the same bytes, its slowdown 1.0); a fixed strength or lapse where the hypothesis learns it
    neither: such an axis is refused before any work, naming the reason. The same settings
    given once in [condition] were accepted and ignored (the sweep's table byte-identical to
    the one without them, with no word): refused alike."""
    if where == "axes":
        setting, axes = "", f"{key} = [{values[0]}, {values[1]}]"
    else:
        setting, axes = f"{key} = {values[1]}\n", "rationality = [0.5, 4.0]"
    text = (
        f'measure = "interactions_to_95"\n[condition]\nhypothesis = "{hypothesis}"\n{setting}'
        f"[axes]\n{axes}\n"
    )
    assert sweep(write_spec(tmp_path, text), tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "change nothing" in err, err
    assert f"{where}.{key}: " in err, err
    assert not (tmp_path / "out" / "sweep.csv").exists()


def test_a_spec_refused_for_its_cells_makes_no_output_folder(tmp_path, capsys):
    """The checks of the cells (a setting the hypothesis ignores, a hypothesis file that does
    not load) refuse the spec before any work: --out is not made either (it was, holding only
    the lock file of a run that never started)."""
    text = '[condition]\nhypothesis = "neutral"\n[axes]\nstereotype_strength = [0.0, 0.5]\n'
    out = tmp_path / "new" / "out"
    assert sweep(write_spec(tmp_path, text), out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no stereotype" in err, err
    assert not (tmp_path / "new").exists()


def test_a_contrast_of_manners_under_a_hypothesis_without_a_stereotype_is_refused(tmp_path, capsys):
    """Slowdown and belief deficit compare a manner with neutral; where no manner is tied to a
    type every cell was exactly the same (a 16-cell sweep ran 86 s for it): refused at once,
    naming the measure that works."""
    text = '[condition]\nhypothesis = "pooled"\n[axes]\nseed = [1, 2]\n'
    assert sweep(write_spec(tmp_path, text), tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "measure 'slowdown'" in err, err
    assert "interactions_to_95" in err and not (tmp_path / "out" / "sweep.csv").exists()


@pytest.mark.parametrize(
    ("measure", "axes", "named"),
    [
        ("slowdown", "rationality = [1.0, 4.0]", "measure 'slowdown'"),
        ("interactions_to_95", "tone_fidelity = [0.6, 0.9]", "tone_fidelity"),
    ],
)
def test_a_stereotype_strength_axis_of_zero_alone_ties_no_manner_to_a_type(
    tmp_path, capsys, measure, axes, named
):
    """``stereotype_strength = 0.0`` in [condition] is refused with a contrast or a tones'
    fidelity axis (every cell the same); as a one-value axis, ``[0.0]``, it was accepted and
    every cell came out the same (a slowdown of exactly 1.0, equal reach over fidelities):
    refused alike. An axis with a strength above 0 still lets its cells of 0 run."""
    text = f'measure = "{measure}"\n[axes]\nstereotype_strength = [0.0]\n{axes}\n'
    assert sweep(write_spec(tmp_path, text), tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "ties no manner" in err, err
    assert not (tmp_path / "out" / "sweep.csv").exists()
    from scai.experiments.sweep.cells import make_cells

    both = text.replace("[0.0]", "[0.0, 0.5]")
    assert len(make_cells(load_spec(write_spec(tmp_path, both, "both.toml")))) == 4


def test_a_sweep_into_a_folder_in_use_says_how_to_wait_and_can(tmp_path, capsys):
    """The refusal's hint, '--wait', is an option of scai sweep too (it was not)."""
    from scai.experiments.cli import build_parser
    from scai.experiments.locking import locked

    spec, out = write_spec(tmp_path), tmp_path / "out"
    with locked(out):  # another process's lock: a second open file description here
        assert sweep(spec, out) == 2
        assert "pass --wait to wait for it" in capsys.readouterr().err
    assert build_parser().parse_args(["sweep", str(spec), "--out", str(out), "--wait"]).wait


def test_a_sweep_keeps_to_its_own_table_and_figures(tmp_path, capsys):
    """A sweep into ``scai run inconsistency``'s folder (whose cells it reuses from the cache
    they share: tests/test_experiments.py) replaced that experiment's sweep.csv with its own
    without a word: it says so; two sweeps into one ``--figures`` each drew its map there
    (only --out was locked), and one reported the other's as its own (a red-team's finds)."""
    from scai.experiments.locking import locked

    spec, out = write_spec(tmp_path), tmp_path / "run" / "inconsistency"
    out.mkdir(parents=True)
    (out / "sweep.csv").write_text("stereotype_strength,rationality,ratio,lo,hi\n0.0,1.0,1,1,1\n")
    assert sweep(spec, out) == 0
    err = capsys.readouterr().err
    assert "sweep.csv: another command's table (no 'status' column" in err, err
    assert "status" in (out / "sweep.csv").read_text().splitlines()[0]
    figures = tmp_path / "figures"
    with locked(figures):  # another sweep's, drawing its map there
        assert sweep(spec, tmp_path / "mine", "--figures", str(figures)) == 2
        err = capsys.readouterr().err
        assert "--figures" in err and "pass --wait to wait for it" in err, err
    assert not (tmp_path / "mine" / "sweep.csv").exists()


def test_a_local_dask_cluster_says_nothing_of_a_busy_dashboard_port(tmp_path, capsys):
    """``--backend dask`` without ``--scheduler`` starts a local cluster whose dashboard
    starts whatever ``dashboard_address`` says (None too), on 8787 by default: where another
    program held that port, Dask printed a four-line warning into the sweep's output (a
    red-team find). It takes any free port now."""
    import socket
    import warnings

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
    except OSError:
        holder.close()
        pytest.skip("port 8787 is taken here already: nothing to hold")
    holder.listen()
    spec = write_spec(tmp_path, TINY.replace("rationality = [1.0, 4.0]", "rationality = [1.0]"))
    try:
        with time_limit(150), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = sweep(spec, tmp_path / "out", "--backend", "dask", "--workers", "1")
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == 0, err
    assert "cells: 2 done, 0 failed, 0 remaining" in err
    said = err + " ".join(str(w.message) for w in caught)
    assert "8787" not in said and "already in use" not in said, said


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("tls://127.0.0.1:8786", "cannot reach a Dask scheduler there"),  # no security context
        ("tcp://127.0.0.1:99999", "port '99999' is not a TCP port"),  # waited 30 s
        ("tcp://127.0.0.1:-5", "port '-5' is not a TCP port"),  # waited 30 s too
        ("127.0.0.1:abc", "port 'abc' is not a TCP port"),
        # Dask's own words were "not enough values to unpack (expected 3, got 1)"
        ("inproc://x", "an in-process address"),
        # refused by Dask after the run had announced itself on it (a review's find)
        ("http://127.0.0.1:8080", "'http' is not a Dask scheduler's protocol; allowed: tcp://"),
    ],
)
def test_a_scheduler_address_dask_cannot_use_is_one_line(tmp_path, capsys, address, named):
    """A tls:// address (no security context) failed with 'internal error: TypeError', and
    port 99999 waited out the connection timeout: each is the option's one line, exit 2,
    and no folder left behind (a tls:// address, refused once the sweep held --out, left its
    lock notes there)."""
    pytest.importorskip("distributed")
    spec = write_spec(tmp_path)
    assert sweep(spec, tmp_path / "out", "--backend", "dask", "--scheduler", address) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert last.startswith(f"scai sweep: error: --scheduler {address}: ") and named in last, last
    if address.startswith("http"):  # refused before the run says where it runs
        assert "on dask" not in err, err
    assert not (tmp_path / "out").exists()
    # The client left connecting is not Dask's default: as one, it made xarray wait on a
    # distributed lock in every later netCDF write of this process (the next test hung).
    from distributed.client import _get_global_client

    assert _get_global_client() is None


def test_progress_tells_the_time_left_at_the_pace_of_computed_cells(tmp_path):
    """Cached cells count as done but not toward the pace; the time left is the remaining
    cells at the seconds each computed cell has taken since the cache was read."""
    from scai.experiments.sweep.cells import make_cells
    from scai.experiments.sweep.report import Progress, duration

    cells = make_cells(load_spec(write_spec(tmp_path)))  # 4 cells of 2 conditions
    now = [100.0]
    lines: list[str] = []
    progress = Progress(cells, lines.append, every=0.0, clock=lambda: now[0])
    now[0] = 200.0  # the time to find the cached cells does not count
    progress("cached", [0, 1], None)
    assert lines[-1] == "cells: 1 done, 0 failed, 3 remaining"
    now[0] = 290.0
    progress("done", [2], None)  # half a cell: no cell computed yet
    assert lines[-1] == "cells: 1 done, 0 failed, 3 remaining"
    now[0] = 320.0
    progress("done", [3], None)  # one cell in 120 s: two more take 240 s
    assert lines[-1] == "cells: 2 done, 0 failed, 2 remaining, about 4 min left at this pace"
    now[0] = 560.0
    progress("failed", [4, 5], "boom")  # a failed cell is finished too: 2 in 360 s
    assert lines[-1] == "cells: 2 done, 1 failed, 1 remaining, about 3 min left at this pace"
    progress("done", [6, 7], None)
    assert lines[-1] == "cells: 3 done, 1 failed, 0 remaining"
    assert [duration(s) for s in (29, 31, 3569, 3599, 11100)] == [
        "under a minute",
        "about 1 min",
        "about 59 min",
        "about 1 h 00 min",
        "about 3 h 05 min",
    ]


def test_progress_tells_each_retry_and_the_last_count_once(tmp_path):
    """A cluster lost mid-run fails both conditions of a cell alike: "trying it once more" was
    told once per condition, and the last count line again on every event after the last
    cell (both conditions of a failed cell end after it has counted as finished)."""
    from scai.experiments.sweep.cells import make_cells
    from scai.experiments.sweep.report import Progress

    cells = make_cells(load_spec(write_spec(tmp_path)))  # 4 cells of 2 conditions
    lines: list[str] = []
    progress = Progress(cells, lines.append, every=0.0, clock=lambda: 0.0)
    progress("done", [0, 1, 2, 3, 4, 5], None)
    progress("retry", [6], "lost")
    progress("retry", [7], "lost")
    progress("failed", [6], "lost")
    progress("failed", [7], "lost")
    assert [line for line in lines if "trying it once more" in line] == [
        f"cell {cells[3].label()}: lost; trying it once more"
    ]
    assert lines.count("cells: 3 done, 1 failed, 0 remaining") == 1, lines


@pytest.mark.parametrize(
    ("speaks", "named"),
    [
        (b"", "no Dask scheduler answered within 3 s"),  # an HTTP server: waited for good
        (b"SSH-2.0-OpenSSH_8.9p1\r\n" * 4, "not a Dask scheduler"),  # was 'out of memory'
    ],
    ids=["silent", "speaks first"],
)
def test_a_service_that_is_not_a_dask_scheduler_is_named(
    tmp_path, capsys, monkeypatch, speaks, named
):
    """A scheduler address where another service listens: one that accepts and never answers
    held the sweep past Dask's connect timeout (over 150 s), one that speaks first made Dask
    allocate exabytes (reported as 'out of memory'). Each is now the option's one line."""
    import socket
    import threading
    import time

    pytest.importorskip("distributed")
    from scai.experiments.sweep import backends

    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", 2.0)
    monkeypatch.setattr(backends, "HANDSHAKE_GRACE", 1.0)
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve() -> None:
        while True:
            connection, _ = server.accept()
            accepted.append(connection)  # kept open, as the service would
            if speaks:
                connection.sendall(speaks)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    with time_limit(30):
        code = sweep(
            write_spec(tmp_path), tmp_path / "out", "--backend", "dask", "--scheduler", address
        )
    assert code == 2 and time.monotonic() - start < 20
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"scai sweep: error: --scheduler {address}: ") and named in last, last
    assert "nothing listens" not in err  # something did
    # The client left connecting is not Dask's default: as one, it made xarray wait on a
    # distributed lock in every later netCDF write of this process (the next test hung).
    from distributed.client import _get_global_client

    assert _get_global_client() is None


def test_a_scheduler_address_where_nothing_listens_is_told_at_once(tmp_path, capsys, monkeypatch):
    """A refused scheduler address: Dask retries for CONNECT_TIMEOUT (a scheduler may be
    starting), and the sweep said nothing for those 30 s. It says so before it waits."""
    import socket

    pytest.importorskip("distributed")
    from scai.experiments.sweep import backends

    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", 2.0)
    with socket.create_server(("127.0.0.1", 0)) as closed:  # a port nothing listens on after
        address = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    told = []
    monkeypatch.setattr(backends, "_connect", lambda *a: told.append(capsys.readouterr().err))
    with time_limit(30):
        code = sweep(
            write_spec(tmp_path), tmp_path / "out", "--backend", "dask", "--scheduler", address
        )
    assert code != 0 and len(told) == 1, told  # told before connecting
    assert f"--scheduler {address}: nothing listens there yet; waiting up to 2 s" in told[0]


def test_the_order_of_the_axes_in_the_file_changes_no_number(tmp_path):
    """A TOML table's keys have no order that means anything: swapping two axes in the file
    gave cell s=0.8 lam=1 a slowdown of 1.091 one way and 1.035 the other (its stream named
    the values in the file's order), and no longer matched ``scai run inconsistency``'s sweep
    cell of the same name."""
    from scai.experiments.sweep.cells import make_cells

    axes = {"stereotype_strength": "[0.0, 0.8]", "rationality": "[1.0, 4.0]", "users": "[10]"}
    streams = []
    for order in (list(axes), list(reversed(axes))):
        text = "[axes]\n" + "".join(f"{key} = {axes[key]}\n" for key in order)
        (folder := tmp_path / "-".join(order)).mkdir()
        cells = make_cells(load_spec(write_spec(folder, text)))
        streams.append(
            {
                (dict(c.values)["stereotype_strength"], dict(c.values)["rationality"]): (
                    c.stream,
                    [cond.name for cond in c.conditions],
                )
                for c in cells
            }
        )
    assert streams[0] == streams[1]
    assert streams[0][(0.8, 4.0)][0] == "sweep s=0.8 lam=4.0 users=10"


# Four users' worth of one epoch pins the shifts to less than a grid step: the engine says so.
@pytest.mark.filterwarnings("ignore::scai.inference.diagnostics.DiagnosticWarning")
def test_per_currency_shifts_run_in_a_sweep_whose_simulations_trade_in_several(tmp_path):
    """``pooled`` has a latent shift per currency; a cell's simulations each trade in one of the
    three training currencies, and the exact engine grids, per simulation, the shifts of the
    currencies it plays (it refused the cell: three latent scalars, from the whole table)."""
    text = (
        'measure = "interactions_to_95"\n[settings]\nsims = 3\nepochs = 1\n[condition]\n'
        'users = 4\nhypothesis = "pooled"\n[axes]\nseed = [1]\n'
    )
    assert sweep(write_spec(tmp_path, text), tmp_path / "out", "--workers", "1") == 0
    assert list(pd.read_csv(tmp_path / "out" / "sweep.csv").status) == ["ok"]
    played = pd.concat(
        pd.read_csv(p) for p in (tmp_path / "out" / "cache").glob("*.interactions.csv")
    )
    assert played.currency.nunique() >= 2


def test_spec_checks_that_scale(tmp_path):
    """A figure with only ``y`` given takes another axis for ``x`` (it said "x and y are both
    'rationality'", of an x the user never gave); 100,000 seeds are checked for repeats in a
    moment (the check was quadratic: ~2 minutes)."""
    text = '[axes]\nrationality = [1.0, 2.0]\nusers = [5, 10]\n[figure]\ny = "users"\n'
    assert load_spec(write_spec(tmp_path, text)).figure == ("rationality", "users")
    text = '[axes]\nrationality = [1.0, 2.0]\nusers = [5, 10]\n[figure]\ny = "rationality"\n'
    assert load_spec(write_spec(tmp_path, text)).figure == ("users", "rationality")
    seeds = ", ".join(map(str, range(100_000)))
    with time_limit(10.0):
        assert load_spec(write_spec(tmp_path, f"[axes]\nseed = [{seeds}]\n")).cells == 100_000


def test_the_map_of_a_table_with_no_finished_cell_is_drawn_without_warnings(tmp_path):
    """An interrupted sweep's table may hold no number yet: its heat-map is drawn (an empty
    map), and NumPy's All-NaN warnings do not reach the user."""
    import warnings

    from scai.experiments.sweep.cells import make_cells
    from scai.experiments.sweep.report import heat_map, sweep_table

    cells = make_cells(load_spec(write_spec(tmp_path)))
    table = sweep_table(cells, "slowdown", [None] * len(cells), [NOT_RUN] * len(cells))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = heat_map(
            table,
            "slowdown",
            "stereotype_strength",
            "rationality",
            tmp_path / "sweep.png",
            "slowdown",
        )
    assert path.stat().st_size > 0


def test_the_map_marks_censored_values_and_cells_that_warned(tmp_path, monkeypatch):
    """The heat-map showed a censored value (a simulation that never reached 95%) and a value
    computed under an engine's warning as any other: they are marked, and a note under the map
    says what the marks mean (on a map too large for its values: how many cells are which)."""
    from scai.experiments import plots
    from scai.experiments.sweep.cells import make_cells
    from scai.experiments.sweep.report import heat_map, sweep_table

    drawn = {}

    def keep_texts(fig, path, **options):
        drawn["cells"] = {t.get_text() for ax in fig.axes for t in ax.texts}
        drawn["notes"] = [t.get_text() for t in fig.texts]
        return real(fig, path, **options)

    real = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", keep_texts)
    cells = make_cells(load_spec(write_spec(tmp_path)))  # strength x rationality, 2 x 2
    values = [(1.0 + i / 10, 1.0, 2.0) for i in range(4)]
    never, warned = [0, 2, 0, 0], [[], [], ["DiagnosticWarning: coarse"], []]
    table = sweep_table(cells, "slowdown", values, ["ok"] * 4, never, warned)
    heat_map(table, "slowdown", "stereotype_strength", "rationality", tmp_path / "m.png", "t")
    assert drawn["cells"] == {"1.00", "1.10*", "1.20!", "1.30"}
    (note,) = drawn["notes"]
    censored, warning = note.split("\n! ")  # a line each
    assert censored.startswith("* some simulations never reached 95%")
    assert warning.startswith("scai warned")
    heat_map(table.iloc[[0, 2, 3]], "slowdown", "stereotype_strength", "rationality",
             tmp_path / "m.png", "t")  # fmt: skip
    assert drawn["cells"] == {"1.00", "1.20!", "1.30"} and drawn["notes"][0].startswith("!")
    heat_map(table.iloc[[0, 3]], "slowdown", "stereotype_strength", "rationality",
             tmp_path / "m.png", "t")  # fmt: skip
    blank = "2 blank: no value, every cell there failed or was not run (sweep.csv: status)"
    assert [" ".join(n.split()) for n in drawn["notes"]] == [blank]
    failed = table.copy()  # a cell with no value shows no mark; the note counts the blanks
    failed.loc[[1, 2], "slowdown"] = np.nan
    heat_map(failed, "slowdown", "stereotype_strength", "rationality", tmp_path / "m.png", "t")
    assert drawn["cells"] == {"1.00", "1.30"}
    assert [" ".join(n.split()) for n in drawn["notes"]] == [blank]  # (no word before)
    big = pd.concat([table] * 150, ignore_index=True)  # 600 distinct cells: no values written
    big["stereotype_strength"] = range(600)
    heat_map(big, "slowdown", "stereotype_strength", None, tmp_path / "m.png", "t")
    (note,) = drawn["notes"]
    assert drawn["cells"] == set() and " ".join(note.split()) == (
        "150 values: some simulations never reached 95% (a censored value, not a measurement) "
        "150 values: scai warned while computing it (sweep.csv: warnings)"
    )


def test_outputs_that_cannot_be_written_are_refused_before_any_cell(tmp_path, capsys):
    """sweep.csv or sweep.png in a folder's place, or a file where the figures' folder goes:
    refused at once (every cell was computed first, then the sweep failed, once after writing
    the table but not the figure)."""
    (tmp_path / "a" / "sweep.csv").mkdir(parents=True)
    (tmp_path / "b" / "figures" / "sweep.png").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "figures").write_text("a file")
    for out, named in (
        ("a", "sweep.csv is a folder"),
        ("b", "sweep.png is a folder"),
        ("c", "is a file"),
    ):
        assert sweep(write_spec(tmp_path), tmp_path / out) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and named in err, err
        assert not (tmp_path / out / "cache").exists()


def test_no_cells_given_is_refused_before_any_file(tmp_path):
    """``run_sweep(spec, out, cells=[])`` told "0 cells (0 conditions)" and then failed with
    ``KeyError: 'never_reached_95'`` (a review): refused, naming ``cells``, nothing written."""
    (tmp_path / "out").mkdir()
    with pytest.raises(RunError, match="cells: none given"):
        run_sweep(load_spec(write_spec(tmp_path)), tmp_path / "out", cells=[], tell=print)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_spec_saved_with_a_byte_order_mark_loads(tmp_path):
    """Editors on Windows save UTF-8 with a BOM; hypothesis files allowed it, specs did not."""
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff".encode() + TINY.encode())
    assert load_spec(path).cells == load_spec(write_spec(tmp_path)).cells == 4


def test_a_cell_whose_curves_cannot_be_measured_is_kept_as_failed(tmp_path, monkeypatch, capsys):
    """A cached learning curve edited by hand (its checksum rewritten to match) stopped the
    whole sweep with an internal error: the cell is kept as failed, saying why, and the
    others' rows are written."""
    from scai.experiments.sweep import run as sweep_run

    real = sweep_run.measure

    def damaged(cell, curves, name):
        if cell.values == (("stereotype_strength", 0.8), ("rationality", 4.0)):
            raise TypeError("unsupported operand type(s) for -: 'str' and 'float'")
        return real(cell, curves, name)

    monkeypatch.setattr(sweep_run, "measure", damaged)
    assert sweep(write_spec(tmp_path), tmp_path / "out", "--workers", "1") == 1
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(table.status[:3]) == ["ok"] * 3
    assert table.status[3] == (
        "failed: its learning curves cannot be measured "
        "(unsupported operand type(s) for -: 'str' and 'float')"
    )
    assert "1 of 4 cells failed" in capsys.readouterr().err


def test_simulations_that_never_reach_95_are_counted_and_told(tmp_path, capsys):
    """A cell whose users (nearly random: rationality 0.001) never let the belief reach 0.95
    was measured as '11.0, 11.0, 11.0, ok', the last interaction + 1 read as a value with a
    zero-width interval (a red-team find). The table now counts such simulations in
    ``never_reached_95``, and the command says which measure is a bound."""
    spec = write_spec(
        tmp_path,
        'measure = "interactions_to_95"\n[settings]\nsims = 3\nepochs = 1\n'
        "[axes]\nrationality = [0.001, 4.0]\n",
    )
    assert sweep(spec, tmp_path / "out", "--workers", "1") == 0
    frame = pd.read_csv(tmp_path / "out" / "sweep.csv")
    by_rationality = frame.set_index("rationality")["never_reached_95"]
    assert by_rationality[0.001] == 3 and by_rationality[4.0] < 3
    err = capsys.readouterr().err
    assert "1 of 2 cells hold simulations whose belief never reached 0.95" in err
    assert "their interactions_to_95 counts each at its last interaction + 1, a censored" in err
    # a contrast's two conditions share their simulations: counted once, at most sims
    spec = write_spec(
        tmp_path,
        'measure = "slowdown"\n[settings]\nsims = 2\nepochs = 1\n[axes]\nrationality = [0.001]\n',
        "slow.toml",
    )
    assert sweep(spec, tmp_path / "slow", "--workers", "1") == 0
    assert pd.read_csv(tmp_path / "slow" / "sweep.csv")["never_reached_95"].tolist() == [2]


# A prior far sharper than the simplex lattice's step: the exact engine warns of its accuracy.
WARNS = (
    'measure = "interactions_to_95"\n[settings]\nsims = 3\nepochs = 1\n[condition]\n'
    "users = 4\npi_concentration = 0.001\n[axes]\nseed = [1, 2]\n"
)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_cell_that_warned_says_so_in_its_row_and_again_from_the_cache(tmp_path, capsys, workers):
    """A cell whose engine warned was ``ok`` with nothing in its row, and a re-run from the
    cache said nothing at all: the warning is kept with the cell's results, in the row's
    ``warnings`` (the cell stays ``ok``: its value is there), and told once per condition,
    naming it, by the run that computed it (in this process or a worker) and by every run
    that reads it from the cache."""
    spec = write_spec(tmp_path, WARNS)
    out = tmp_path / "out"
    assert sweep(spec, out, "--workers", workers) == 0
    first = capsys.readouterr().err
    frame = pd.read_csv(out / "sweep.csv")
    assert list(frame.status) == ["ok", "ok"] and frame.interactions_to_95.notna().all()
    for told in frame.warnings:
        assert told.startswith("DiagnosticWarning: engine 'exact': its simplex lattice"), told
        assert "pi_concentration down to 0.001" in told and " | " not in told  # said once
    (name,) = {json.loads(p.read_text())["condition"]["name"] for p in out.glob("cache/*.done")}
    (message,) = {told.removeprefix("DiagnosticWarning: ") for told in frame.warnings}

    def told_once_then_counted(err: str) -> None:
        """The first condition to give it names itself; the other is counted at the end (the
        cells' one condition differs by its seed alone)."""
        said = [line for line in err.splitlines() if line.endswith(message)]
        first, counted = (f"'{name}' (seed {seed})" for seed in (1, 2))
        if said and first not in said[0]:
            first, counted = counted, first
        assert said == [
            f"scai sweep: warning: condition {first}: {message}",
            f"scai sweep: warning: 1 more condition(s) warned the same ({counted}): {message}",
        ], err

    told_once_then_counted(first)
    assert "2 of 2 cells warned while they were computed" in first
    table = (out / "sweep.csv").read_bytes()
    assert sweep(spec, out, "--workers", workers) == 0  # every cell from the cache
    told_once_then_counted(capsys.readouterr().err)
    assert (out / "sweep.csv").read_bytes() == table


def test_the_map_stays_readable_on_large_partial_and_uncensored_sweeps(tmp_path, monkeypatch):
    """A red-team review's four cases: a map of 2,000 values along one axis was a figure
    of ~1.8 million pixels across that took minutes to draw (a Ctrl-C waited for it); now it is
    at most MAX_WIDTH x MAX_HEIGHT inches. A mean over seeds of which some cells never ran
    showed as any other; now it is marked ``~``. ``belief_deficit``, which counts no reach
    time, was marked censored. A long title was cut at the figure's edge."""
    from scai.experiments import plots
    from scai.experiments.sweep.cells import make_cells
    from scai.experiments.sweep.report import MAX_HEIGHT, MAX_WIDTH, heat_map, sweep_table

    drawn = {}

    def keep(fig, path, **options):
        drawn["size"] = tuple(fig.get_size_inches())
        drawn["cells"] = {t.get_text() for ax in fig.axes for t in ax.texts}
        drawn["notes"] = [t.get_text() for t in fig.texts]
        drawn["title"] = fig.axes[0].get_title()
        return real(fig, path, **options)

    real = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", keep)
    cells = make_cells(load_spec(write_spec(tmp_path)))  # strength x rationality, 2 x 2
    values = [(1.0 + i / 10, 1.0, 2.0) for i in range(4)]
    table = sweep_table(cells, "slowdown", values, ["ok"] * 4, [0, 2, 0, 0], [[]] * 4)
    wide = pd.concat([table] * 500, ignore_index=True)
    wide["stereotype_strength"] = range(2000)
    heat_map(wide, "slowdown", "stereotype_strength", None, tmp_path / "m.png", "t")
    assert drawn["size"][0] <= MAX_WIDTH and drawn["size"][1] <= MAX_HEIGHT
    thirty = wide.iloc[:30]  # 30 values: too narrow a room for each at the largest size
    heat_map(thirty, "slowdown", "stereotype_strength", None, tmp_path / "m.png", "t")
    assert drawn["cells"] == set() and drawn["notes"][0].startswith("8 values: some")
    # both cells of one rationality, one of the other's (with a censored value): that mean is
    # over one cell of two
    seeds = table.assign(seed=[1, 1, 2, 2])
    seeds.loc[3, "slowdown"] = np.nan
    title = "slowdown of a sweep with a title long enough to leave a narrow figure's edges"
    heat_map(seeds, "slowdown", "rationality", None, tmp_path / "m.png", title)
    assert drawn["cells"] == {"1.10", "1.10*~"}
    assert any(note.startswith("~ a mean over only some") for note in drawn["notes"][0].split("\n"))
    assert " ".join(drawn["title"].split()) == title + " (mean over stereotype_strength, seed)"
    deficit = table.rename(columns={"slowdown": "belief_deficit"})
    heat_map(deficit, "belief_deficit", "stereotype_strength", "rationality",
             tmp_path / "m.png", "t")  # fmt: skip
    assert drawn["cells"] == {"1.00", "1.10", "1.20", "1.30"} and drawn["notes"] == []


def test_minus_zero_is_the_cell_of_zero(tmp_path):
    """An axis value of ``-0.0`` was a cell of its own random stream (``s=-0.0``) while
    ``[0.0, -0.0]`` was refused as one value given twice: it is 0.0, the same cell."""
    from scai.experiments.sweep.cells import make_cells

    def streams(value: str) -> set:
        # (not a contrast: a strength of 0 alone ties no manner to a type, and is refused)
        text = (
            'measure = "interactions_to_95"\n'
            f"[axes]\nstereotype_strength = [{value}]\nrationality = [0.5]\n"
        )
        cells = make_cells(load_spec(write_spec(tmp_path, text)))
        return {c.stream for cell in cells for c in cell.conditions}

    assert streams("-0.0") == streams("0.0") and "-0.0" not in str(streams("-0.0"))


def test_a_hypothesis_file_named_in_capitals_is_a_file(tmp_path):
    """``H.TOML`` is a hypothesis file as ``h.toml`` is (it was refused as an unknown preset),
    in a sweep and wherever a hypothesis is named."""
    from scai.models.hypotheses import PRESETS, get_hypothesis

    PRESETS["stereotyped"].save(tmp_path / "H.TOML")
    assert get_hypothesis(tmp_path / "H.TOML") == PRESETS["stereotyped"]
    spec = load_spec(
        write_spec(tmp_path, '[condition]\nhypothesis = "H.TOML"\n[axes]\nseed = [1]\n')
    )
    assert spec.cells == 1


def test_the_schedulers_own_refusal_is_not_wrapped_again(tmp_path, capsys, monkeypatch):
    """The connection's own RunError (not a Dask scheduler; no answer) is a ValueError too,
    and was caught and wrapped: '--scheduler X: cannot reach a Dask scheduler there
    (--scheduler X: not a Dask scheduler (...))', the option twice and two reasons."""
    pytest.importorskip("distributed")
    from scai.experiments.sweep import backends
    from scai.models.errors import RunError

    address = "tcp://127.0.0.1:9"

    def refused(client_class, scheduler):
        raise RunError(f"--scheduler {scheduler}: not a Dask scheduler (what it sent ...)")

    monkeypatch.setattr(backends, "_connect", refused)
    code = sweep(
        write_spec(tmp_path), tmp_path / "out", "--backend", "dask", "--scheduler", address
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last == (
        f"scai sweep: error: --scheduler {address}: not a Dask scheduler (what it sent ...)"
    ), last


def test_a_hypothesis_files_rationality_is_not_replaced_without_a_word(tmp_path, capsys):
    """A sweep's assistant assumes the users' rationality (4.0 unless given): a hypothesis file
    with ``rationality = 1.0`` was fitted at 4.0 in every cell, silently. Refused where the spec
    gives neither rationality, naming the setting that keeps it; accepted with it."""
    from scai.experiments.conditions import assistant_hypothesis
    from scai.experiments.sweep.cells import make_cells

    (tmp_path / "h.toml").write_text("rationality = 1.0\n")
    text = (
        'measure = "interactions_to_95"\n[condition]\nhypothesis = "h.toml"\n{}'
        "[axes]\nusers = [3, 4]\n"
    )
    assert sweep(write_spec(tmp_path, text.format("")), tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rationality 1" in err, err
    assert "condition.assistant_rationality = 1" in err, err
    kept = load_spec(write_spec(tmp_path, text.format("assistant_rationality = 1.0\n"), "k.toml"))
    cells = make_cells(kept)
    assert {assistant_hypothesis(c.conditions[0]).rationality for c in cells} == {1.0}


def test_a_sweep_interrupted_outside_its_condition_loop_says_how_to_resume(tmp_path):
    """A Ctrl-C that is not the condition loop's (the backend starting, a Dask cluster
    closing) printed 'scai sweep: interrupted' alone; scai run's said how to resume."""
    import argparse

    from scai.experiments.cli import _resume_hint_of

    args = argparse.Namespace(command="sweep", out=tmp_path / "out")
    # before any cell finished (a review: interrupted while 89,698 cells were laid out, it
    # named a cache folder that did not exist)
    assert _resume_hint_of(args) == "; no cell had finished: the same command starts afresh"
    (tmp_path / "out" / "cache").mkdir(parents=True)
    assert _resume_hint_of(args) == "; no cell had finished: the same command starts afresh"
    (tmp_path / "out" / "cache" / "0123456789abcdef.done").write_text("{}")
    assert _resume_hint_of(args) == (
        f"; run the same command again to resume (finished cells are in {tmp_path}/out/cache)"
    )


@pytest.mark.parametrize("sims", [34, 40])
def test_a_cell_whose_curves_the_exact_engine_cannot_fit_is_refused_before_any_work(tmp_path, sims):
    """With lapse, strength and clone latent and rationality fixed, a learning curve's
    prefixes (sims x epochs x (rounds + 2) groups) share one grid: at 40 simulations its
    230,400 points passed make_cells, and every cell was computed, failed, retried and failed
    again (a review helper's repro); 34 fit (the same sweep ran). Refused at once, naming the
    settings and the most groups allowed."""
    spec = (
        TINY.replace("sims = 2", f"sims = {sims}")
        .replace(
            "users = 4",
            'users = 3\nhypothesis = "real_agents_stereotyped"\nassistant_rationality = 4.0',
        )
        .replace("stereotype_strength = [0.0, 0.8]\nrationality = [1.0, 4.0]", "seed = [1, 2]")
    )
    spec = spec.replace('measure = "slowdown"', 'measure = "interactions_to_95"')
    spec = spec.replace("seed = 3\n", "")
    loaded = load_spec(write_spec(tmp_path, spec))
    if sims == 34:
        assert len(make_cells(loaded)) == 2
        return
    with pytest.raises(
        HypothesisError,
        match=r"cell seed=1: settings sims=40, epochs=1, .* "
        r"one grid of 230,400 points .* allowed here: at most 347 groups",
    ):
        make_cells(loaded)


@pytest.mark.parametrize(
    "hypothesis", ["real_agents_stereotyped", "real_agents", "lapse_only", "one_policy"]
)
def test_the_check_before_a_sweep_refuses_exactly_what_the_engine_cannot_fit(hypothesis):
    """check_groups_fit counts the bounded sites' grid without building it: it refuses the
    number of groups at which the exact engine's own budget (fit_budget, given the grid's
    points) refuses, and not one fewer (a review's find: a one-policy lattice is one point)."""
    import torch

    from scai.inference.errors import EngineError
    from scai.inference.exact_bounded import bounded_points, check_groups_fit
    from scai.inference.exact_budget import fit_budget
    from scai.inference.grids.simplex import simplex_lattice
    from scai.models.hypotheses import PRESETS
    from scai.models.prior import GroupPrior

    hyp = {
        "lapse_only": PRESETS["neutral"].with_(lapse_prior=(1.0, 30.0)),
        "one_policy": PRESETS["neutral"]
        .with_(policies=PRESETS["neutral"].policies[:1])
        .with_(lapse_prior=(1.0, 30.0)),
    }.get(hypothesis) or PRESETS[hypothesis]
    K = len(hyp.policies)
    B = len(bounded_points(GroupPrior(hyp))[0])
    lattice = simplex_lattice(K).to(torch.float64)

    def engine_fits(groups: int) -> bool:
        try:
            fit_budget(lattice, K, B * groups, len(lattice))
        except EngineError:
            return False
        return True

    def check_fits(groups: int) -> bool:
        try:
            check_groups_fit(hyp, groups, "groups")
        except EngineError:
            return False
        return True

    most = next(n for n in (10**k for k in range(1, 8)) if not engine_fits(n))
    low, high = most // 10, most  # the engine's threshold, by bisection
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if engine_fits(mid) else (low, mid)
    assert [check_fits(n) for n in (low, high)] == [True, False], (low, high)


def test_a_dask_cluster_left_without_workers_is_told(monkeypatch):
    """A sweep on a scheduler whose every worker died sat without a word, its last line
    "about 1 min left", until a worker came back (a red-team find): the backend tells when no
    worker is left and when some are back, and says nothing while workers are there."""
    import threading

    from distributed import LocalCluster

    from scai.experiments.sweep import backends

    counts = iter([2, 0, 0, RuntimeError("scheduler busy"), 1, 1])
    told: list[str] = []
    stop = threading.Event()

    def count() -> int:
        n = next(counts, None)
        if n is None:
            stop.set()
            return 1
        if isinstance(n, Exception):  # a look that fails is skipped, not the end of watching
            raise n
        return n

    backends.watch_workers(count, "dask (here)", told.append, stop, interval=0.001)
    assert len(told) == 2, told
    assert told[0].startswith("dask (here): no workers are left; the sweep waits for one")
    assert told[1] == "dask (here): 1 worker again; the sweep goes on"

    monkeypatch.setattr(backends, "WORKER_WATCH_SECONDS", 0.1)
    told.clear()
    one = {"n_workers": 1, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    with time_limit(120), LocalCluster(**one) as cluster:
        address = cluster.scheduler_address
        with backends.open_backend("dask", address, tell=told.append) as where:
            where.executor()  # connects, and starts watching: a look every 0.1 s
            time.sleep(1.0)
            assert told == []  # ten looks at a worker that is there: nothing to tell
            cluster.scale(0)
            while not told:
                time.sleep(0.1)
            assert "no workers are left" in told[0]


def test_an_empty_scheduler_and_a_device_as_out_are_named(tmp_path, capsys):
    """``--scheduler ''`` was taken and failed at connecting ("missing port number in address
    ''"), and ``--out /dev/null`` was called "a file" (red-team finds): each is named for what
    it is, exit 2, before any work."""
    spec = write_spec(tmp_path)
    assert sweep(spec, tmp_path / "out", "--backend", "dask", "--scheduler", "") == 2
    assert "--scheduler: the address is empty" in capsys.readouterr().err
    assert sweep(spec, "/dev/null") == 2
    assert "/dev/null: is a character device, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_sweep_from_python_checks_its_arguments_before_any_file(tmp_path):
    """``run_sweep(spec, out, workers=1.5)`` made ``out`` then failed with Python's TypeError,
    ``workers=-1`` ran on "-1 worker process", a file for ``out`` gave NotADirectoryError (a
    review's finds): each is refused, naming the argument, before anything is written."""
    spec = load_spec(write_spec(tmp_path))
    (tmp_path / "afile").write_text("x")
    for options, said in (
        ({"workers": 1.5}, "--workers: must be a whole number from 1 to 256, got 1.5"),
        ({"workers": -1}, "--workers: must be a whole number from 1 to 256, got -1"),
        ({"backend": "ray"}, "--backend 'ray': unknown; allowed: local, dask"),
        ({"backend": "dask", "scheduler": 8786}, "--scheduler: expected an address"),
    ):
        with pytest.raises(RunError, match=re.escape(said)):
            run_sweep(spec, tmp_path / "out", tell=lambda line: None, **options)
        assert not (tmp_path / "out").exists()
    with pytest.raises(RunError, match="out: .*afile is a file; give a folder"):
        run_sweep(spec, tmp_path / "afile", tell=lambda line: None)
    with pytest.raises(RunError, match="out: the path is empty"):
        run_sweep(spec, "", tell=lambda line: None)
    with pytest.raises(RunError, match="out: .*afile is a file; give a folder"):  # on the way
        run_sweep(spec, tmp_path / "afile" / "sub", tell=lambda line: None)
    with pytest.raises(RunError, match="figures: .*afile is a file; give a folder"):
        run_sweep(spec, tmp_path / "out", figures=tmp_path / "afile", tell=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "spec.toml"]


DIES = """\
import os
if os.environ.get("SCAI_TEST_CELL_KILLS_ITS_WORKER"):
    import scai.experiments.runner as runner
    compute = runner.run_condition

    def run_condition(cond, *args):
        if cond.rationality == 2.0:
            os._exit(9)  # as the kernel's OOM killer would end it
        return compute(cond, *args)

    runner.run_condition = run_condition
"""


def test_a_cell_that_kills_its_dask_worker_fails_alone(tmp_path, monkeypatch, capsys):
    """On a local Dask cluster, a cell whose worker dies (out of memory, a crash) each time it
    runs made the sweep wait for good: the cluster closes a worker gone longer than Dask's
    lost-worker-timeout (15 s) and never starts it again, and a finished cell's result lost
    with its worker left its future unsettled (a review). The cell is failed as its worker
    died, the others finish, exit 1. (The workers load a sitecustomize that kills theirs;
    Dask's timeout made 1 s and one death per task, to keep it short.)"""
    import dask

    from scai.experiments.sweep import backends

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(DIES)
    path = os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path.rstrip(os.pathsep))
    monkeypatch.setenv("SCAI_TEST_CELL_KILLS_ITS_WORKER", "1")
    monkeypatch.setattr(backends, "WORKER_WATCH_SECONDS", 0.5)
    spec = write_spec(tmp_path, TINY.replace("[0.0, 0.8]", "[0.8]").replace("1.0, 4.0", "2.0, 4.0"))
    config = {
        "distributed.deploy.lost-worker-timeout": "1s",
        "distributed.scheduler.allowed-failures": 0,
    }
    with time_limit(150), dask.config.set(config):
        code = sweep(spec, tmp_path / "out", "--backend", "dask", "--workers", "1")
    err = capsys.readouterr().err
    assert code == 1, err
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert table.set_index("rationality")["status"].to_dict() == {
        2.0: f"failed: {runner.WORKER_DIED}",
        4.0: "ok",
    }, err


def test_the_dask_executors_futures_settle_whatever_happens():
    """scai's executor for Dask (a review of it): a task's result or error settles its future;
    a future the caller cancelled wakes ``wait()``, cancels its task, and its task's late
    end is dropped without an error (Dask's loop printed ``InvalidStateError``)."""
    import asyncio
    from concurrent.futures import wait

    from scai.experiments.sweep.backends import DaskExecutor

    class Task:
        def __init__(self, outcome):
            self.outcome, self.status = outcome, "pending"

        def cancel(self):
            self.status = "cancelled"

        async def _result(self):
            if isinstance(self.outcome, BaseException):
                raise self.outcome
            return self.outcome

    class Client:
        def __init__(self):
            self.loop, self.callbacks = self, []

        def submit(self, fn, *args, pure):
            assert pure is False  # each submission runs: a retry too
            return Task(fn(*args))

        def add_callback(self, callback):
            self.callbacks.append(callback)

    client = Client()
    executor = DaskExecutor(client)
    done, failed, dropped = (
        executor.submit(lambda x: x, value) for value in (7, RuntimeError("KilledWorker"), 9)
    )
    assert dropped.cancel() and wait([dropped], timeout=1).done == {dropped}
    for settle in client.callbacks:  # the tasks end after the cancellation
        asyncio.run(settle())
    assert done.result() == 7 and str(failed.exception()) == "KilledWorker"
    assert dropped.cancelled()
