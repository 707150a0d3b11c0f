"""Every registered experiment runs with ``--quick`` and shows the study's directional results.

The registry is discovered, so a new experiment cannot go untested; the full-size numbers are
in the README table, produced by ``scai run all``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from scai_logs_fixture import make_archive, write_run

from scai.experiments.cli import main
from scai.experiments.registry import EXPERIMENTS

REQUIRED = [
    "experiment",
    "condition",
    "hypothesis",
    "epoch",
    "agent",
    "offered_share_mean",
    "offered_share_lo",
    "offered_share_hi",
    "n",
]


def run_quick(name, tmp_path, *extra, workers: int = 1):
    out, figs = tmp_path / "out", tmp_path / "figures"
    code = main(
        [
            "run",
            name,
            "--quick",
            "--workers",
            str(workers),
            "--out",
            str(out),
            "--figures",
            str(figs),
            "--seed",
            "3",
            *extra,
        ]
    )
    assert code == 0
    return out / name, figs


def synthetic_logs(folder: Path) -> Path:
    """A small archive in the original study's log format (``tests/scai_logs_fixture.py``):
    two conditions of two runs, five epochs each."""
    root = folder / "logs"
    for run, (policy, manner) in enumerate(
        [("altruistic", "rude"), ("altruistic", "rude"), ("selfish", "neutral")] * 1
    ):
        write_run(root / str(run), run, policy, manner, pots=(30, 40, 20, 50, 60))
    return make_archive(root, folder / "logs.tgz")


def extra_options(name: str, folder: Path) -> list[str]:
    """What an experiment needs beyond the common options: data made here, never ../shared."""
    if name == "original-logs":
        return ["--logs", str(synthetic_logs(folder)), "--tones", "config", "none"]
    return []


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory, human_synthetic_run):
    """Every registered experiment once at ``--quick`` size, discovered from the registry
    (module-scoped: several tests read the same runs), on two workers (the other runs here
    take ``--workers 1``, in this process). human-data's is the session's synthetic run, which
    the human-data tests read too."""
    base = tmp_path_factory.mktemp("experiments")
    return {
        name: human_synthetic_run
        if name == "human-data"
        else run_quick(
            name, base / name, *extra_options(name, tmp_path_factory.mktemp(name)), workers=2
        )
        for name in EXPERIMENTS
    }


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_registered_experiment_runs_quick(quick_runs, name):
    """``scai run NAME --quick`` exits 0 and writes its results and figures for every
    experiment in the registry: a new experiment cannot go untested."""
    out, figs = quick_runs[name]
    assert any(out.glob("*.csv")), f"{name} wrote no table"
    assert any(figs.glob("*.png")), f"{name} drew no figure"


def test_every_experiment_module_is_registered():
    """A module of ``scai.experiments`` with ``NAME`` and ``main(args)`` is an experiment: it
    must be in the registry (or the test above would not run it)."""
    import importlib
    import pkgutil

    import scai.experiments

    registered = set(EXPERIMENTS.values())
    for info in pkgutil.iter_modules(scai.experiments.__path__, "scai.experiments."):
        module = importlib.import_module(info.name)
        if hasattr(module, "NAME") and callable(getattr(module, "main", None)):
            assert info.name in registered, f"{info.name} defines an experiment; register it"
            assert EXPERIMENTS[module.NAME] == info.name


@pytest.mark.parametrize("name", ["alignment", "generalization", "inconsistency"])
def test_summary_is_tidy_and_figures_written(quick_runs, name):
    out, figs = quick_runs[name]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[: len(REQUIRED)]) == REQUIRED
    assert set(summary["agent"]) == {"users", "assistant"}
    assert summary["offered_share_mean"].between(0, 100).all()
    assert (summary["offered_share_lo"] <= summary["offered_share_hi"] + 1e-9).all()
    assert list(out.glob("posterior_*.nc")), "a representative posterior is saved"
    assert list(figs.glob(f"{name}*.png"))


def test_alignment_directional(quick_runs):
    out, _ = quick_runs["alignment"]
    s = pd.read_csv(out / "summary.csv")
    later = s[s.epoch >= 2]
    for cond in ("selfish", "fair", "altruistic"):
        part = later[later.condition == cond].pivot(
            index="epoch", columns="agent", values="offered_share_mean"
        )
        assert (part["assistant"] - part["users"]).abs().max() <= 2, cond
    last = s[(s.epoch == s.epoch.max()) & (s.agent == "assistant")].set_index("condition")
    assert abs(last.loc["mixed 80/20", "pi_selfish_mean"] - 0.8) <= 0.1
    assert abs(last.loc["mixed 20/80", "pi_selfish_mean"] - 0.2) <= 0.1


def test_generalization_directional(quick_runs):
    out, _ = quick_runs["generalization"]
    test = pd.read_csv(out / "test_offers.csv")
    ood = test.currency != "dollars"
    gap = (
        test[ood].groupby("hypothesis")["share"].mean()
        - test[~ood].groupby("hypothesis")["share"].mean()
    )
    assert abs(gap["currency_invariant"]) < 3
    assert abs(gap["pooled"]) < 3
    assert gap["essential_goods_shared"] > 30
    # every interval is over simulations, the independent unit: the users' test rows too
    # (they were over the simulation x epoch rows, n = sims x epochs)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["n"]) == {test["sim"].nunique()}


def test_inconsistency_directional(quick_runs):
    """Contrasted conditions share their random numbers (same users, games and actions; only
    the tones differ), so: under ``neutral`` tones carry no information and the curves are the
    same; under ``stereotyped`` misleading tones cost belief in the true norm all along the
    first epoch, and both inconsistent groups need more interactions to reach 95% (the paired
    interval of the ratio lies above 1; at this size its lower end was 1.10-1.20 over seeds
    0-3)."""
    out, _ = quick_runs["inconsistency"]
    ratios = pd.read_csv(out / "slowdown.csv").set_index(["hypothesis", "group"])
    for group in ("altruistic + rude", "selfish + sycophantic"):
        stereo, neutral = ratios.loc[("stereotyped", group)], ratios.loc[("neutral", group)]
        assert stereo["deficit_lo"] > 0, stereo.to_dict()
        assert stereo["lo"] > 1, stereo.to_dict()
        assert neutral["ratio"] == 1 and neutral["lo"] == 1 == neutral["hi"]
        assert abs(neutral["deficit"]) < 1e-9
    by_level = pd.read_csv(out / "slowdown_by_level.csv")
    assert set(by_level.level) == {0.8, 0.9, 0.95, 0.97, 0.99}
    neutral = by_level[by_level.hypothesis == "neutral"]
    assert (neutral.ratio == 1).all()  # identical curves cross every line together


def test_rerun_resumes_from_cache(quick_runs, tmp_path):
    """A second run with the same settings reuses every finished condition."""
    out, _ = quick_runs["alignment"]
    cached = sorted((out / "cache").glob("*.done"))
    stamps = [p.stat().st_mtime_ns for p in cached]
    base = out.parent
    assert (
        main(
            [
                "run",
                "alignment",
                "--quick",
                "--workers",
                "1",
                "--out",
                str(base),
                "--figures",
                str(tmp_path),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert [p.stat().st_mtime_ns for p in cached] == stamps


def test_inconsistency_s_early_figure_is_its_report_s(quick_runs, tmp_path):
    """``scai run all`` draws inconsistency's share figure as soon as its main conditions are
    stored (``report_early``, from the cache) and its report takes it up: the same bytes as
    the figure the report draws itself."""
    from scai.experiments import inconsistency
    from scai.experiments.cli import build_parser

    out, figs = quick_runs["inconsistency"]
    args = build_parser().parse_args(
        ["run", "inconsistency", "--quick", "--workers", "1", "--seed", "3"]
        + ["--out", str(out.parent), "--figures", str(tmp_path)]
    )
    drawn = inconsistency.report_early(args)
    assert drawn == tmp_path / "inconsistency_share.png"
    assert drawn.read_bytes() == (figs / "inconsistency_share.png").read_bytes()
    result = inconsistency.main(args, early=drawn)
    assert result.figures[0] == drawn and drawn.read_bytes() == (figs / drawn.name).read_bytes()
    learning = "inconsistency.png"
    assert (tmp_path / learning).read_bytes() == (figs / learning).read_bytes()


def test_sweep_reuses_the_inconsistency_experiments_own_cells(quick_runs, tmp_path, capsys):
    """``scai sweep`` runs its cells through ``scai run``'s runner and cache: a sweep of the
    inconsistency experiment's own sweep cells (its --quick grid, settings and seed), pointed
    at a copy of that run's folder, computes nothing and finds the same slowdown ratios (the
    intervals differ: the experiment draws every bootstrap from one generator, a sweep each
    cell's from its own)."""
    out, _ = quick_runs["inconsistency"]
    expected = pd.read_csv(out / "sweep.csv")
    copy = shutil.copytree(out, tmp_path / "inconsistency")
    stamps = {p: p.stat().st_mtime_ns for p in (copy / "cache").glob("*.done")}
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'base = "inconsistency"\nmeasure = "slowdown"\n'
        "[settings]\nsims = 6\nepochs = 3\nseed = 3\n"
        "[axes]\nstereotype_strength = [0.0, 0.8]\nrationality = [1.0, 4.0]\n"
    )
    capsys.readouterr()
    assert main(["sweep", str(spec), "--out", str(copy), "--workers", "1"]) == 0
    assert "cells: 4 done, 0 failed, 0 remaining" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (copy / "cache").glob("*.done")} == stamps
    got = pd.read_csv(copy / "sweep.csv")
    assert got[["stereotype_strength", "rationality"]].equals(
        expected[["stereotype_strength", "rationality"]]
    )
    assert got["slowdown"].tolist() == expected["ratio"].tolist()


def test_a_run_of_one_experiment_keeps_the_other_rows_of_the_comparison(tmp_path):
    """The table beside the figures is rewritten from OUT's results: a run of alignment alone
    replaces alignment's rows and keeps the rows of the other experiments it held (a fresh
    OUT of one experiment left a table of that experiment's rows only)."""
    from scai.experiments.original import ALIGNMENT
    from scai.experiments.report import HEADER, write_comparison

    committed = (Path(__file__).parents[1] / "figures" / "comparison.md").read_text()
    rows = [
        {"condition": cond, "agent": agent, "epoch": epoch, "offered_share_mean": 10.0 * epoch}
        for cond in ALIGNMENT
        for agent in ("assistant", "users")
        for epoch in (1, 2)
    ]
    (tmp_path / "out" / "alignment").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "out" / "alignment" / "summary.csv", index=False)
    target = tmp_path / "figures" / "comparison.md"
    target.parent.mkdir()
    target.write_text(committed)
    write_comparison(tmp_path / "out", target)
    old, new = committed.splitlines(), target.read_text().splitlines()
    n = len(ALIGNMENT)
    assert new[:2] == old[:2] == HEADER.splitlines()
    # two epochs where the header promises the study's five: each row says which it shows
    assert all("| 10.0, 20.0 (epochs 1-2) | 15.0 |" in line for line in new[2 : 2 + n])
    assert new[2 : 2 + n] != old[2 : 2 + n]
    assert new[2 + n :] == old[2 + n :] and len(new[2 + n :]) >= 5  # inconsistency, OOD
    alone = write_comparison(tmp_path / "out").read_text().splitlines()
    assert alone == new[: 2 + n]  # OUT's own table: its results only


def test_a_run_whose_results_have_no_compared_rows_drops_the_earlier_runs_rows(tmp_path):
    """``scai run inconsistency --hypothesis neutral`` into an OUT that held a default run: the
    table compares the stereotyped prior's conditions, which the new summary.csv does not hold,
    and both tables (OUT's and the one beside the figures) kept the earlier run's rows (its
    seed, its hypothesis) beside CSVs and a numbers.json of other results (a red-team find)."""
    from scai.experiments.original import INCONSISTENCY
    from scai.experiments.report import HEADER, write_comparison

    out, figures = tmp_path / "out", tmp_path / "figures"
    (out / "inconsistency").mkdir(parents=True)
    figures.mkdir()
    summary = out / "inconsistency" / "summary.csv"

    def write(hypothesis: str, share: float) -> None:
        rows = [
            {
                "condition": f"{group} | {hypothesis}",
                "agent": agent,
                "epoch": 1,
                "offered_share_mean": share,
            }
            for group in INCONSISTENCY
            for agent in ("assistant", "users")
        ]
        pd.DataFrame(rows).to_csv(summary, index=False)

    write("stereotyped", 12.3)
    for target in (None, figures / "comparison.md"):
        assert "12.3" in write_comparison(out, target, only=["inconsistency"]).read_text()
    write("neutral", 45.6)
    for target in (None, figures / "comparison.md"):
        table = write_comparison(out, target, only=["inconsistency"]).read_text()
        assert table == HEADER + "\n", table


def test_a_run_updates_only_its_own_experiments_rows_beside_the_figures(tmp_path):
    """OUT may hold an older (say --quick) run of another experiment: a run of inconsistency
    into it must not copy that experiment's rows over the figures' table."""
    from scai.experiments.original import ALIGNMENT
    from scai.experiments.report import write_comparison

    committed = (Path(__file__).parents[1] / "figures" / "comparison.md").read_text()
    rows = [
        {"condition": cond, "agent": agent, "epoch": 1, "offered_share_mean": 11.1}
        for cond in ALIGNMENT
        for agent in ("assistant", "users")
    ]
    (tmp_path / "out" / "alignment").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "out" / "alignment" / "summary.csv", index=False)
    target = tmp_path / "comparison.md"
    target.write_text(committed)
    write_comparison(tmp_path / "out", target, only=["inconsistency"])
    assert target.read_text() == committed
    write_comparison(tmp_path / "out", target, only=["alignment"])
    assert "11.1" in target.read_text()


def test_numbers_json_does_not_move_with_a_hosts_last_bits(tmp_path):
    """Inconsistency's belief deficit came out 0.069183896035 on an AMD EPYC and
    0.0691839049757 on an Intel Xeon (float32 vector maths): the recorded numbers keep 6
    significant digits, so both write the committed file, and a number that differs in its
    6th digit still shows."""
    import json

    from scai.experiments.report import record_numbers

    written = []
    for deficit in (0.069183896035, 0.0691839049757, 0.0691849):
        folder = tmp_path / str(len(written))
        record_numbers(folder, "inconsistency", {"deficit": deficit, "n": 40})
        written.append((folder / "numbers.json").read_text())
    assert written[0] == written[1] != written[2]
    numbers = json.loads(written[0])["inconsistency"]
    assert numbers == {"deficit": 0.0691839, "n": 40.0}


def test_mean_interval_is_the_t_interval_of_the_mean():
    """The 95% interval is mean +- t(0.975, n - 1) sd / sqrt(n), with SciPy's t quantile
    (the report computes it without importing scipy.stats), cut to the shares' range 0-100
    (two simulations' interval once reached -553 to 658); non-finite values are left out."""
    import numpy as np
    from scipy import stats

    from scai.experiments.statistics import mean_interval

    rng = np.random.default_rng(3)
    for n in (2, 5, 20, 137):
        values = rng.normal(size=n)
        within = mean_interval(np.append(values, [np.nan, np.inf]), bounds=(-np.inf, np.inf))
        mean, lo, hi, count = within
        half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
        assert count == n
        assert mean == values.mean()
        assert (lo, hi) == (values.mean() - half, values.mean() + half)
        shares = mean_interval(values)  # shares: below 0 is cut
        assert shares[:2] == (values.mean(), max(values.mean() - half, 0.0))
    assert mean_interval(np.array([99.0, 100.0, 100.0]))[2] == 100.0
    assert mean_interval(np.array([2.0, 90.0]))[1:3] == (0.0, 100.0)
    assert mean_interval(np.array([4.0]))[1:] == (4.0, 4.0, 1)
    assert mean_interval(np.array([np.nan]))[3] == 0


def test_original_logs_without_interaction_curves(tmp_path):
    """With no tones heard (``--tones none``) no interaction curve is fitted: the run wrote its
    summary, then stopped with ``KeyError: ['p_true_norm'] not in index`` (a red-team find).
    Now the curves file holds its columns and no row. The logs hold two epochs of the five the
    study played: the assistant's fits stopped at the missing third (``IndexError``)."""
    root = tmp_path / "logs"
    write_run(root / "0", 0, "selfish", "neutral", pots=(30, 40))
    write_run(root / "1", 1, "selfish", "neutral", pots=(30, 40))
    out, figs = run_quick("original-logs", tmp_path, "--logs", str(root), "--tones", "none")
    curves = pd.read_csv(out / "interaction_curves.csv")
    assert len(curves) == 0 and "p_true_norm" in curves.columns
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["tones"]) == {"none"} and set(summary["epoch"]) == {1, 2}
    # the comparison and the figure show the tones fitted (they showed "config": no row)
    table = (figs / "original_logs_comparison.md").read_text()
    assert table.startswith("Tones: none.") and "| exp" in table, table
    assert list(figs.glob("original_logs_*.png"))


def test_original_logs_figures_of_what_a_run_did_not_fit_are_removed(tmp_path):
    """A run with interaction curves (and both experiments of the logs), then one into the same
    figures with none (``--tones none``) and experiment 3 alone (``--quick``): the first run's
    interaction figure and experiment-1 figure were left beside an empty
    interaction_curves.csv, as if this run's (a red-team find)."""
    from scai.experiments.original_logs.report import INCONSISTENT, STEREOTYPED, write_figures

    conditions = ["exp1/selfish_neutral", *INCONSISTENT, *INCONSISTENT.values()]
    summary = pd.DataFrame(
        [
            {
                "condition": cond,
                "hypothesis": hyp,
                "tones": "config",
                "sim": f"{cond}/00",
                "epoch": epoch,
                "agent": agent,
                "offered_share": 50.0,
                "p_true_norm": 0.5 if agent == "scai" else None,
            }
            for cond in conditions
            for hyp in ("real_agents", STEREOTYPED)
            for epoch in (1, 2)
            for agent in ("users", "gpt4", "scai")
        ]
    )
    curves = pd.DataFrame(
        [
            {
                "condition": cond,
                "hypothesis": STEREOTYPED,
                "tones": "config",
                "sim": f"{cond}/00",
                "interactions": n,
                "p_true_norm": 0.1 * n,
            }
            for cond in (*INCONSISTENT, *INCONSISTENT.values())
            for n in (1, 2, 3)
        ]
    )
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "alignment.png").write_bytes(b"another experiment's")
    first = write_figures(summary, figures, curves)
    names = {"original_logs_exp1.png", "original_logs_exp3.png", "original_logs_interactions.png"}
    assert {p.name for p in first} == names
    exp3 = summary[summary.condition.str.startswith("exp3/")]
    second = write_figures(exp3, figures, curves.iloc[:0])
    assert [p.name for p in second] == ["original_logs_exp3.png"]
    assert sorted(p.name for p in figures.iterdir()) == ["alignment.png", "original_logs_exp3.png"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["human-data", "--data", "synthetic", "--engine", "svi"], "--engine svi: an option"),
        (["original-logs", "--sims", "3"], "--sims 3: an option of scai run alignment"),
        (["human-data", "--data", "synthetic", "--schedule", "alternating"], "--schedule"),
        (["original-logs", "--tones", "config", "config"], "at most once"),
        (["inconsistency", "--engine", "mcmc"], "--engine mcmc: an option of scai run alignment"),
        (
            ["alignment", "--data-dir", "/nowhere", "--quick", "--sims", "2", "--epochs", "1"],
            "--data-dir /nowhere: an option of scai run human-data or original-logs, not of "
            "alignment",
        ),
        (
            ["human-data", "--quick", "--data", "synthetic", "--format", "study1"],
            "--format study1: applies to a data file (--data PATH), not to --data synthetic",
        ),
        (
            ["human-data", "--quick", "--data", "synthetic", "--skip-invalid"],
            "--skip-invalid: applies to",
        ),
        (
            ["human-data", "--quick", "--data", "synthetic", "--data-dir", "/nowhere"],
            "--data-dir /nowhere: the folder scai run looks in for study1_ug.csv when --data is "
            "not given; this run gives --data synthetic",
        ),
        (
            ["everything", "--data", "d.csv", "--logs", "l.tgz", "--data-dir", "/nowhere"],
            "--data-dir /nowhere: the folder scai run looks in for study1_ug.csv when --data is "
            "not given and original-scai/ when --logs is not given; this run gives --data d.csv "
            "and --logs l.tgz",
        ),
    ],
)
def test_run_refuses_options_that_would_do_nothing(tmp_path, capsys, argv, message):
    """An option none of the run's experiments reads was accepted and ignored (``--engine svi``
    on human-data fitted with NUTS as always; ``--data-dir`` on alignment, or where every
    experiment of the run names its data with its own option; ``--format`` and
    ``--skip-invalid`` with ``--data synthetic``, which reads no file); a repeated ``--tones``
    fitted everything twice and wrote every row twice."""
    assert main(["run", *argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_human_data_run_refuses_file_options_with_synthetic_data(tmp_path):
    """:func:`scai.experiments.human_data.run` (the library's entry) ran ``--data synthetic``
    with ``skip_invalid=True`` or a ``format`` as if neither were given; refused before any
    work."""
    from scai.experiments.human_data import run
    from scai.models.errors import RunError

    for options, named in (
        ({"skip_invalid": True}, "--skip-invalid"),
        ({"format": "generic"}, "--format generic"),
    ):
        with pytest.raises(RunError, match=f"^{named}: applies to a data file"):
            run("synthetic", tmp_path / "out", tmp_path / "figures", quick=True, **options)
    assert not (tmp_path / "out").exists()
    from scai.experiments.human_data.experiment import check_synthetic_options

    check_synthetic_options(tmp_path / "data.csv", "generic", True)  # a data file takes both


def test_inconsistency_fits_exactly_whatever_the_engine_of_the_others(tmp_path):
    """``scai run all --engine mcmc`` (and ``run inconsistency --engine svi``) ran the
    inconsistency experiment's conditions with that engine, which then had no learning curve:
    the report failed with ``TypeError: 'NoneType' object is not subscriptable`` (a red-team
    find). Its learning curves are exact posteriors: it fits exactly, and a learning curve asked
    of another engine is refused where the settings are made."""
    from scai.experiments import inconsistency
    from scai.experiments.cli import build_parser
    from scai.experiments.conditions import Settings

    args = build_parser().parse_args(
        ["run", "all", "--engine", "mcmc", "--quick", "--out", str(tmp_path / "out")]
    )
    assert inconsistency.plan(args).settings.engine == "exact"
    with pytest.raises(ValueError, match="engine='svi' is not allowed"):
        Settings(curve=True, engine="svi")


def test_inconsistency_with_one_hypothesis_draws_its_figure(tmp_path, monkeypatch):
    """``scai run inconsistency --hypothesis NAME`` compares one hypothesis: drawing the
    interactions-needed panel failed with ``ZeroDivisionError`` (seaborn dodges ``n - 1``
    hue levels apart) after every condition was computed, and the learning-curve panel
    showed the stereotyped prior's curves alone, none under another name (a red-team find)."""
    from scai.experiments import inconsistency

    drawn = {}
    save = inconsistency.save_figure

    def keep_panels(fig, path, **options):
        drawn[path.name] = [(ax.get_title(), len(ax.get_lines())) for ax in fig.axes]
        return save(fig, path, **options)

    monkeypatch.setattr(inconsistency, "save_figure", keep_panels)
    _, figs = run_quick("inconsistency", tmp_path, "--hypothesis", "neutral")
    assert (figs / "inconsistency.png").stat().st_size > 0
    title, lines = drawn["inconsistency.png"][0]
    assert title == "Learning curves, neutral prior (mean, 95% CI)" and lines >= 4


def test_one_simulation_is_refused_with_the_reason(tmp_path, capsys):
    """``scai run inconsistency --sims 1`` reported zero-width "95% intervals" (one value's
    mean, low and high alike) and PASS lines that rest on an interval, such as "interval
    above 1" (a red-team find). A run needs two simulations; so does a sweep's settings."""
    assert main(["run", "alignment", "--sims", "1", "--out", str(tmp_path / "out")]) == 2
    assert "--sims: must be a whole number from 2 to 1,000, got '1'" in capsys.readouterr().err
    spec = tmp_path / "one.toml"
    spec.write_text(
        'base = "inconsistency"\nmeasure = "slowdown"\n[settings]\nsims = 1\nepochs = 1\n'
        "[axes]\nrationality = [1.0]\n"
    )
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sweep")]) == 2
    assert "settings.sims: 1 is out of range; allowed: a whole number from 2" in (
        capsys.readouterr().err
    )


def test_a_check_one_epoch_leaves_nothing_to_check_on_is_told_as_skipped(tmp_path, capsys):
    """``scai run alignment --epochs 1`` printed three PASS lines of its six and exited 0,
    silent about the three that need a second epoch (a review's find): each is told as SKIP,
    with what it needs."""
    argv = ["run", "alignment", "--sims", "2", "--epochs", "1", "--workers", "1"]
    argv += ["--out", str(tmp_path / "out"), "--figures", str(tmp_path / "figs")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for cond in ("selfish", "fair", "altruistic"):
        assert (
            f"  SKIP  {cond}: assistant within 2 points of users from epoch 2 (needs --epochs 2 "
            "or more)" in out
        )
    assert out.count("  PASS  ") + out.count("  FAIL  ") == 3


@pytest.mark.parametrize("blocked", ["figures", "alignment"])
def test_a_file_in_the_way_of_an_output_folder_is_named_before_any_work(tmp_path, capsys, blocked):
    """A file named ``OUT/figures`` stopped ``scai run`` with 'File exists' after every
    condition had been computed, naming no file (a red-team find): the run's folders are made
    first, and the message says which file is in the way."""
    out = tmp_path / "out"
    out.mkdir()
    (out / blocked).write_text("not a folder")
    assert main(["run", "alignment", "--quick", "--workers", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / blocked} is a file where scai needs a folder" in err
    if blocked == "figures":  # nothing computed first
        assert not (out / "alignment" / "cache").exists()


def test_an_output_folder_no_file_can_be_made_in_is_named_before_any_work(
    tmp_path, capsys, monkeypatch
):
    """An existing ``OUT/figures`` that refuses new files (immutable, a read-only mount) was
    found only once every condition was computed and the tables written, the figures and
    numbers then missing (a review, with ``chattr +i``); an explicit ``--figures`` was
    checked first. The default one is too. (The refusal is simulated: root writes anywhere.)"""
    import errno
    import tempfile

    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    made = tempfile.TemporaryFile

    def refused_in_figures(*args, **kwargs):
        if Path(kwargs.get("dir", "")) == out / "figures":
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return made(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refused_in_figures)
    assert main(["run", "alignment", "--quick", "--workers", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot create files in {out / 'figures'} (Operation not permitted)" in err, err
    assert not (out / "alignment").exists()


@pytest.mark.parametrize(
    "name, content, named",
    [
        ("numbers.json", b"<<<<<<< HEAD\n{}\n", "not JSON"),
        ("numbers.json", b"[1]\n", "a JSON object of experiments"),
        ("numbers.json", b'{"alignment": 3}\n', "a JSON object of experiments"),
        ("comparison.md", b"| caf\xe9 |\n", "not UTF-8 text"),
    ],
)
def test_a_file_the_run_merges_into_that_it_cannot_read_is_named_before_any_work(
    tmp_path, capsys, name, content, named
):
    """A merge conflict in ``figures/numbers.json`` failed ``scai run`` after every condition
    with "Expecting value: line 1 column 1 (char 0)", naming no file; a JSON list was an
    internal error (a red-team). It is now one line naming the file, before any work."""
    out, figures = tmp_path / "out", tmp_path / "figures"
    figures.mkdir()
    (figures / name).write_bytes(content)
    argv = ["run", "alignment", "--quick", "--workers", "1", "--out", str(out)]
    assert main([*argv, "--figures", str(figures)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scai run: error: ") and len(err.splitlines()) == 1, err
    assert f"{figures / name}: not the file scai writes here" in err and named in err
    assert not (out / "alignment" / "cache").exists()


@pytest.mark.parametrize(
    "experiment, kept, missing",
    [("alignment", "altruistic", "fair"), ("inconsistency", "fair", "altruistic")],
)
def test_a_hypothesis_without_the_users_type_is_refused_before_any_work(
    tmp_path, capsys, experiment, kept, missing
):
    """``scai run alignment --hypothesis F`` with no ``fair`` type in F failed in a worker,
    after the run had begun, with "unknown policy 'fair'; allowed: ...", naming no condition
    or file (a red-team find): each condition's users have a norm whose posterior probability
    is measured, so the hypothesis must hold that type. Refused first; nothing written."""
    hypothesis = tmp_path / "two.toml"
    hypothesis.write_text(f"[policies.selfish]\nw = 0.0\n[policies.{kept}]\nw = 1.0\n")
    out = tmp_path / "out"
    argv = ["run", experiment, "--quick", "--workers", "1", "--out", str(out)]
    assert main([*argv, "--hypothesis", str(hypothesis)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"scai run: error: --hypothesis {hypothesis}: {experiment}'s ")
    assert (
        f"simulates users of the norm {missing!r}, not a type of the hypothesis (its types: "
        f"selfish, {kept}), and measures the assistant's belief in it"
    ) in err
    assert not out.exists()


def test_the_check_of_a_hypothesis_tells_its_warnings_once(tmp_path, capsys):
    """The check above read the file once per condition, and each read told the file's
    warnings again (a lapse beside lapse_prior: 7 times for generalization, 49 for
    inconsistency; a review): once now, before the refusal."""
    hypothesis = tmp_path / "h.toml"
    text = "lapse = 0.05\nlapse_prior = [1.0, 30.0]\n[policies.selfish]\nw = 0.0\n"
    hypothesis.write_text(text + "[policies.fair]\nw = 1.0\n")
    argv = ["run", "inconsistency", "--quick", "--workers", "1", "--out", str(tmp_path / "o")]
    assert main([*argv, "--hypothesis", str(hypothesis)]) == 2
    err = capsys.readouterr().err
    assert err.count("lapse = 0.05 is not used") == 1, err
    assert "has no type" in err or "not a type of the hypothesis" in err


def test_generalization_into_a_used_folder_keeps_only_its_own_posteriors(tmp_path):
    """``scai run generalization --hypothesis B`` into an --out of a run with ``A`` left
    ``posterior_A.nc`` beside a summary without A (a review's find, as in human-data)."""
    out = tmp_path / "out" / "generalization"
    run_quick("generalization", tmp_path, "--hypothesis", "pooled")
    assert sorted(p.name for p in out.glob("posterior_*.nc")) == ["posterior_pooled.nc"]
    run_quick("generalization", tmp_path, "--hypothesis", "currency_invariant")
    kept = sorted(p.name for p in out.glob("posterior_*.nc"))
    assert kept == ["posterior_currency_invariant.nc"]
    assert set(pd.read_csv(out / "summary.csv")["hypothesis"]) == {"currency_invariant"}


def test_the_comparison_names_the_hypothesis_of_an_alignment_run_with_another(tmp_path):
    """``scai run alignment --hypothesis stereotyped``: its rows read "our assistant" as a
    default (neutral) run's do; they name the hypothesis now, and a default run's do not."""
    from scai.experiments.original import ALIGNMENT
    from scai.experiments.report import comparison_rows

    (tmp_path / "alignment").mkdir()
    for hypothesis, named in (("neutral", False), ("stereotyped", True)):
        rows = [
            {"condition": c, "hypothesis": hypothesis, "agent": a, "epoch": 1,
             "offered_share_mean": 50.0}
            for c in ALIGNMENT for a in ("assistant", "users")
        ]  # fmt: skip
        pd.DataFrame(rows).to_csv(tmp_path / "alignment" / "summary.csv", index=False)
        lines = comparison_rows(tmp_path)["alignment"]
        assert len(lines) == len(ALIGNMENT)
        assert all((", `stereotyped` prior |" in line) == named for line in lines), lines
