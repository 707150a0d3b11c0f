"""``scai run human-data`` (issue 5) on the real data.

* a 20-subject-per-role subset of the real data is fitted in under a minute (CPU time), its
  predicted rejection rate rises with unfairness and matches the subset's data within 0.05 at
  every offer level, for both roles;
* the CLI writes the CSV with exactly the required columns, the comparison, the posteriors
  and the figures; a file with bad rows stops with their row numbers unless --skip-invalid.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from scai.experiments import human_data as H
from scai.experiments.cli import main as cli
from scai.models.human_data import read_human_data, rejection_by_offer
from scai.models.hypothesis_files import load_hypothesis_file
from scai.models.responders import ResponderData

matplotlib.use("Agg")


def needs_data(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"human data not found at {path}")


def check_rejection_table(table: pd.DataFrame, tolerance: float) -> None:
    """Rising with unfairness, and within ``tolerance`` of the data at every offer level."""
    assert set(table.role) == {"self", "other"}
    for role, rows in table.groupby("role"):
        rows = rows.sort_values("offer_share")
        predicted = rows.predicted_mean.to_numpy()
        # lower offers (more unfair) are rejected more: allow Monte Carlo noise at the flat top
        assert np.all(np.diff(predicted) <= 0.01), (role, predicted)
        assert predicted[0] - predicted[-1] > 0.3, (role, predicted)
        error = (rows.observed - rows.predicted_mean).abs()
        assert error.max() <= tolerance, (role, rows.to_string())
        assert np.all(rows.predicted_lo <= rows.predicted_mean)
        assert np.all(rows.predicted_mean <= rows.predicted_hi)


@pytest.mark.slow
def test_subset_fit_in_a_minute_matches_data(study1_ug_path):
    needs_data(study1_ug_path)
    imported = read_human_data(study1_ug_path)
    table, roles = H.subset(imported, H.QUICK_SUBJECTS, seed=0)
    assert len(roles) == 2 * H.QUICK_SUBJECTS
    data = ResponderData.from_table(table, roles)
    observed = rejection_by_offer(table, roles)
    spec = load_hypothesis_file(H.INEQUITY_FILE)
    settings = H.Settings.for_run(quick=True, seed=0)
    wall, cpu = time.perf_counter(), time.process_time()
    fit = H.fit_responders(data, spec, settings)  # chains one after another, in this process
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"subset fit: {wall:.1f} s wall, {cpu:.1f} s CPU")
    assert cpu < 60, f"the 20-subject fit took {cpu:.1f} s of CPU time"
    assert int(fit.stats["diverging"].sum()) == 0
    check_rejection_table(H.rejection_table(fit, observed), tolerance=0.05)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, study1_ug_path) -> tuple[Path, Path]:
    needs_data(study1_ug_path)
    out = tmp_path_factory.mktemp("human")
    figures = out / "figs"
    argv = ["run", "human-data", "--quick", "--data", str(study1_ug_path)]
    code = cli([*argv, "--out", str(out), "--figures", str(figures)])
    assert code == 0
    return out / "human-data", figures


@pytest.mark.slow
def test_cli_writes_table_comparison_posteriors_and_figures(quick_run):
    import arviz as az

    outdir, figures = quick_run
    table = pd.read_csv(outdir / "rejection_by_offer.csv")
    assert tuple(table.columns) == H.CSV_COLUMNS
    assert len(table) == 20  # 2 roles x 10 offer levels
    assert table.offer_share.between(0, 1).all() and table.observed.between(0, 1).all()
    assert (table.n == 40).all()  # 20 subjects x 2 decisions per offer level
    check_rejection_table(table, tolerance=0.05)
    compare = pd.read_csv(outdir / "compare.csv")
    assert set(compare.hypothesis) == {"human_norms", "human_inequity"}
    assert {"elpd_loo", "p_loo", "elpd_diff", "weight", "se"} <= set(compare.columns)
    pareto = pd.read_csv(outdir / "pareto_k.csv")
    assert len(pareto) == 2 * 40 and pareto.pareto_k.notna().all()
    for name in ("human_norms", "human_inequity"):
        idata = az.from_netcdf(outdir / f"posterior_{name}.nc")
        assert idata.log_likelihood["decisions"].dims == ("chain", "draw", "subject")
        assert list(idata.posterior["lam"].coords["role"].values) == ["self", "other"]
        assert idata.posterior_predictive["rejection_rate"].dims[-2:] == ("role", "offer_share")
    for name in ("rejection_by_offer", "norm_types", "roles"):
        path = figures / f"human_data_{name}.png"
        assert path.exists() and path.stat().st_size > 10_000


def bad_file(tmp_path: Path, study1_ug_path: Path) -> Path:
    lines = study1_ug_path.read_text().splitlines()[:201]  # the header and 200 rows
    lines[3] = "1,self,3,50,maybe,1.0"  # data row 3: choice
    lines[7] = "1,boss,7,50,0,1.0"  # data row 7: role
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_rows_stop_the_import_with_their_row_numbers(tmp_path, study1_ug_path, capsys):
    needs_data(study1_ug_path)
    path = bad_file(tmp_path, study1_ug_path)
    code = cli(["run", "human-data", "--data", str(path), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "row 3, column 'choice'" in err and "row 7, column 'role'" in err
    assert not (tmp_path / "out" / "human-data").exists()


@pytest.mark.slow
def test_skip_invalid_keeps_the_good_rows(tmp_path, study1_ug_path):
    needs_data(study1_ug_path)
    path = bad_file(tmp_path, study1_ug_path)
    tiny = H.Settings(chains=1, warmup=20, samples=20)
    result = H.run(
        path, tmp_path / "out", tmp_path / "figs", skip_invalid=True, settings=tiny, workers=1
    )
    assert result.imported.skipped == 2
    assert "skipped 2 bad row(s)" in result.report
    assert len(result.imported.table) == 198
    table = pd.read_csv(tmp_path / "out" / "human-data" / "rejection_by_offer.csv")
    assert tuple(table.columns) == H.CSV_COLUMNS
