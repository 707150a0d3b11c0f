"""Responder models for people (models.responders) and ``scai run human-data`` (issue 5).

* the marginal models (what NUTS samples) equal the explicit Pyro models: exactly for the norm
  mixture (norm and attention enumerated by Pyro), and to quadrature accuracy for the
  continuous envy (a fine numerical integral of the explicit model's likelihood);
* hypotheses load from TOML, and bad keys are named;
* a 20-subject-per-role subset of the real data is fitted in under a minute (CPU time), its
  predicted rejection rate rises with unfairness and matches the subset's data within 0.05 at
  every offer level, for both roles;
* the CLI writes the CSV with exactly the required columns, the comparison, the posteriors
  and the figures; a file with bad rows stops with their row numbers unless --skip-invalid.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from scai.experiments import human_data as H
from scai.experiments.cli import main as cli
from scai.models.human_data import read_human_data, rejection_by_offer
from scai.models.hypotheses import Hypothesis, HypothesisError
from scai.models.responders import (
    DTYPE,
    InequitySpec,
    NormMixtureSpec,
    ResponderData,
    inequity_model,
    load_responder_spec,
    marginal_model,
    norm_mixture_model,
    subject_joint,
)

matplotlib.use("Agg")

STUDY1_HEADER = "sub,role,trial,unfairness,choice,choice_RT"


def needs_data(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"human data not found at {path}")


def small_table() -> pd.DataFrame:
    """6 subjects in two roles, 100-unit pots, a few offers each."""
    rng = np.random.default_rng(3)
    rows = []
    for s in range(6):
        role = "self" if s < 3 else "other"
        for t, offer in enumerate([5, 20, 35, 50, 10] if s % 2 else [5, 25, 45]):
            accepted = int(rng.random() < offer / 50)
            rows.append(
                {
                    "sim": role,
                    "epoch": 1,
                    "round": t,
                    "proposer": "",
                    "responder": f"p{s}",
                    "currency": "cents",
                    "pot": 100,
                    "offer": offer,
                    "accepted": accepted,
                    "proposer_tone": "",
                    "responder_tone": "",
                }
            )
    return pd.DataFrame(rows)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=DTYPE)


def test_norm_mixture_marginal_equals_enumerated_model():
    data = ResponderData.from_table(small_table())
    spec = NormMixtureSpec(
        Hypothesis.load(H.NORMS_FILE), rationality_spread_scale=0.0
    )  # lam_s = lam_r: every latent is discrete, so Pyro can enumerate them all
    K = len(spec.norms)
    fixed = {
        "pi": torch.softmax(torch.randn(2, K, dtype=DTYPE), -1),
        "lam": t(0.3, 0.7),
        "lapse": t(0.02, 0.1),
        "inattentive": t(0.05, 0.2),
    }
    model = pyro.poutine.condition(norm_mixture_model, data=fixed)
    elbo = TraceEnum_ELBO(max_plate_nesting=2)
    explicit = -elbo.loss(model, lambda *a, **k: None, data, spec)
    trace = pyro.poutine.trace(pyro.poutine.condition(marginal_model, data=fixed)).get_trace(
        data, spec
    )
    marginal = trace.log_prob_sum().item()
    assert marginal == pytest.approx(explicit, abs=1e-8)


def test_inequity_marginal_equals_integral_of_explicit_model():
    """``log p(y_s | theta)`` from the envy grid vs a fine trapezoid integral over log envy of
    the explicit model's likelihood (its ``reject`` site with ``envy`` conditioned)."""
    data = ResponderData.from_table(small_table())
    spec = InequitySpec(rationality_spread_scale=0.0)
    fixed = {
        "envy_mu": t(-1.5, -0.5),
        "envy_sigma": t(1.2, 0.8),
        "lam": t(0.4, 0.6),
        "lapse": t(0.02, 0.05),
        "inattentive": t(0.05, 0.1),
    }
    grid = torch.linspace(-10, 6, 641, dtype=DTYPE)
    r = data.role_index
    loglik = []
    for log_alpha in grid:
        envy = torch.full((data.n_subjects, 1), float(log_alpha.exp()), dtype=DTYPE)
        cond = {**fixed, "envy": envy, "attention": torch.zeros(data.n_subjects, 1)}
        tr = pyro.poutine.trace(pyro.poutine.condition(inequity_model, data=cond)).get_trace(
            data, spec
        )
        site = tr.nodes["reject"]
        loglik.append((site["fn"].log_prob(site["value"]) * data.mask).sum(-1))
    attentive = torch.stack(loglik, -1)  # [S, grid]
    mu, sigma = fixed["envy_mu"][r, None], fixed["envy_sigma"][r, None]
    log_density = torch.distributions.Normal(mu, sigma).log_prob(grid)
    integrand = torch.exp(attentive + log_density)
    p_attentive = torch.trapezoid(integrand, grid, dim=-1)
    rho = fixed["inattentive"][r]
    n = data.n_trials.sum(-1)
    expected = torch.log((1 - rho) * p_attentive + rho * 0.5**n)
    for bins, tol in ((60, 0.02), (400, 0.005)):
        joint = subject_joint(dataclasses.replace(spec, envy_bins=bins), data, fixed)
        got = torch.logsumexp(joint, -1)
        assert torch.allclose(got, expected, atol=tol), (bins, got, expected)


def test_hypothesis_files_load_and_bad_keys_are_named(tmp_path):
    norms = load_responder_spec(H.NORMS_FILE)
    assert isinstance(norms, NormMixtureSpec)
    assert norms.norms[0] == "selfish" and "fair" in norms.norms
    assert Hypothesis.load(H.NORMS_FILE).rationality_is_latent
    inequity = load_responder_spec(H.INEQUITY_FILE)
    assert isinstance(inequity, InequitySpec) and inequity.name == "human_inequity"

    bad = tmp_path / "bad.toml"
    bad.write_text('model = "inequity_aversion"\nenvy_sigma = 1.0\n')
    with pytest.raises(HypothesisError, match="unknown key 'envy_sigma'.*envy_sigma_scale"):
        InequitySpec.load(bad)
    bad.write_text('model = "inequity_aversion"\nlapse_b = -1\n')
    with pytest.raises(HypothesisError, match="lapse_b: got -1"):
        load_responder_spec(bad)
    bad.write_text('model = "inequity_aversion"\nenvy_bins = "many"\n')
    with pytest.raises(HypothesisError, match="envy_bins"):
        InequitySpec.load(bad)


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
    spec = InequitySpec.load(H.INEQUITY_FILE)
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
