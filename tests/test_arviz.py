"""ArviZ export, NetCDF storage and the ArviZ tools on it, for every engine.

The MCMC posterior is a deliberately short run (the diagnostics are not the point here; its
DiagnosticWarning is expected and silenced). An exact posterior with latent rationality and a
latent currency shift covers ``lam`` and the ``currency`` dimension, so every dimension of the
format (``sim``, ``policy``, ``currency``, ``user``, ``manner``) is exercised; an SVI posterior
(with its importance correction) completes the engines.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scai.inference import Posterior, fit  # noqa: E402
from scai.inference.diagnostics import DiagnosticWarning  # noqa: E402
from scai.inference.replicates import posterior_replicates  # noqa: E402
from scai.inference.svi import ConvergenceWarning  # noqa: E402
from scai.models.hypotheses import PRESETS  # noqa: E402
from scai.models.language import MANNERS  # noqa: E402
from scai.models.simulate import simulate  # noqa: E402

LAM_AND_SHIFT = PRESETS["essential_goods_shared"].with_(name="egs_lam", rationality_scale=0.3)
SIMS = 2
USERS = 6
POLICIES = ["selfish", "fair", "altruistic"]
REQUIRED = (
    "posterior",
    "sample_stats",
    "log_likelihood",
    "observed_data",
    "constant_data",
    "posterior_predictive",
    "prior",
    "user_posterior",
)
OBSERVED = {"offer", "accepted", "proposer_tone", "responder_tone", "user_actions"}


@pytest.fixture(scope="module")
def sim():
    return simulate(
        PRESETS["neutral"],
        policy="selfish=0.4,fair=0.3,altruistic=0.3",
        users=USERS,
        rounds=USERS,
        epochs=2,
        sims=SIMS,
        currency="medicine",
        seed=5,
        pot_range=(2, 8),
    )


@pytest.fixture(scope="module")
def mcmc(sim) -> Posterior:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        return fit(
            sim.interactions,
            "neutral",
            engine="mcmc",
            seed=1,
            warmup=25,
            samples=30,
            num_chains=2,
            parallel=False,
        )


@pytest.fixture(scope="module")
def exact(sim) -> Posterior:
    return fit(sim.interactions, LAM_AND_SHIFT, engine="exact", seed=3, num_draws=300)


@pytest.fixture(scope="module")
def svi(sim) -> Posterior:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(sim.interactions, "neutral", engine="svi", seed=2, max_steps=200, num_draws=200)


@pytest.fixture(scope="module")
def saved(mcmc, exact, svi, tmp_path_factory):
    folder = tmp_path_factory.mktemp("arviz")
    for name, post in (("mcmc", mcmc), ("exact", exact), ("svi", svi)):
        post.save(folder / f"{name}.nc")
    return {name: folder / f"{name}.nc" for name in ("mcmc", "exact", "svi")}


def from_file(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_netcdf(path)


def same(a, b) -> bool:
    """``identical`` (values, dtypes, coords, attributes) except the creation timestamps."""
    a, b = a.copy(), b.copy()
    for key in ("created_at", "created"):
        a.attrs.pop(key, None)
        b.attrs.pop(key, None)
    return a.identical(b)


def test_groups_present(saved):
    for engine, path in saved.items():
        idata = from_file(path)
        groups = set(idata.groups())
        assert set(REQUIRED) <= groups, engine
        assert set(idata.log_likelihood.data_vars) == {"user_actions"}
        assert set(idata.observed_data.data_vars) == OBSERVED
        assert set(idata.posterior_predictive.data_vars) == OBSERVED
        # covariates and labels are constant data, not observations
        assert {"sim", "proposer", "responder", "pot", "currency"} <= set(
            idata.constant_data.data_vars
        )
        # predictive and log-likelihood over the posterior's draws
        sizes = idata.posterior.sizes
        for group in ("log_likelihood", "posterior_predictive"):
            assert idata[group].sizes["chain"] == sizes["chain"], (engine, group)
            assert idata[group].sizes["draw"] == sizes["draw"], (engine, group)
        for group in groups:
            assert idata[group].attrs["engine"] == engine
            for name, var in idata[group].data_vars.items():
                if var.dtype.kind in "fiub":
                    assert np.all(np.isfinite(var.values.astype(float))), (engine, group, name)
    idata = from_file(saved["mcmc"])
    assert "sample_stats" in idata.groups()
    assert {"diverging", "step_size", "tree_depth", "energy"} <= set(idata.sample_stats.data_vars)
    assert idata.sample_stats["diverging"].dtype == bool
    assert idata.sample_stats["step_size"].dims == ("chain", "draw")
    rate = idata.sample_stats["acceptance_rate"].values  # ArviZ's name: NUTS's statistic
    assert ((rate >= 0) & (rate <= 1)).all() and rate.std() > 0
    assert set(idata.posterior.data_vars) == {"pi"}
    assert set(from_file(saved["exact"]).posterior.data_vars) == {"pi", "lam", "shift"}


def test_exact_sample_stats_lp(saved, exact):
    idata = from_file(saved["exact"])
    lp = idata.sample_stats["lp"]
    assert lp.dims == ("chain", "draw")
    np.testing.assert_allclose(lp.values, exact.log_joint().numpy(), rtol=1e-6)


def test_dims_and_coords(saved, mcmc, exact):
    idata = from_file(saved["mcmc"])
    post = idata.posterior
    assert post["pi"].dims == ("chain", "draw", "sim", "policy")
    assert list(post["policy"].values) == POLICIES
    assert list(post["sim"].values) == ["0", "1"]
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 30
    users = [
        f"{s}:{u}"
        for s, ids in zip(mcmc.data.sim_ids, mcmc.data.user_ids, strict=True)
        for u in ids
    ]
    assert len(users) == SIMS * USERS
    assert idata.log_likelihood["user_actions"].dims == ("chain", "draw", "user")
    assert list(idata.log_likelihood["user"].values) == users
    group = idata["user_posterior"]
    assert group["policy_prob"].dims == ("user", "policy")
    assert group["manner_prob"].dims == ("user", "manner")
    assert list(group["user"].values) == users
    assert list(group["manner"].values) == list(MANNERS)
    np.testing.assert_allclose(group["policy_prob"].sum("policy"), 1.0, rtol=1e-5)
    np.testing.assert_allclose(group["manner_prob"].sum("manner"), 1.0, rtol=1e-5)
    assert idata.posterior_predictive["offer"].dims == ("chain", "draw", "interaction")
    assert idata.observed_data.sizes["interaction"] == len(mcmc.table)
    # replicated offers are valid offers of each game's pot; replicated decisions are 0/1
    offers = idata.posterior_predictive["offer"].values
    assert np.all(offers >= 0) and np.all(offers <= idata.constant_data["pot"].values)
    assert set(np.unique(idata.posterior_predictive["accepted"].values)) <= {0, 1}

    exact_post = from_file(saved["exact"]).posterior
    assert exact_post["lam"].dims == ("chain", "draw", "sim")
    assert exact_post["shift"].dims == ("chain", "draw", "sim", "currency")
    assert list(exact_post["currency"].values) == ["medicine"]
    assert list(exact_post["sim"].values) == ["0", "1"]


def test_summary_and_loo_on_the_file(saved, mcmc):
    idata = from_file(saved["mcmc"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(idata)
        loo = az.loo(idata, pointwise=True)
    expected = {f"pi[{s}, {k}]" for s in "01" for k in POLICIES}
    assert set(summary.index) == expected
    assert summary[["mean", "sd", "r_hat", "ess_bulk"]].notna().all().all()
    # the file's posterior mean is the Posterior's
    np.testing.assert_allclose(
        summary.loc["pi[1, fair]", "mean"], float(mcmc.pi_mean()[1, 1]), atol=1e-3
    )
    n_users = SIMS * USERS
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == n_users
    assert len(loo.loo_i) == n_users
    # elpd_loo <= lppd, the in-sample log pointwise predictive density
    ll = idata.log_likelihood["user_actions"].values.reshape(-1, n_users)
    top = ll.max(0)
    lppd = np.sum(np.log(np.mean(np.exp(ll - top), 0)) + top)
    assert loo.elpd_loo <= lppd + 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact_summary = az.summary(from_file(saved["exact"]))
    assert set(exact_summary.index) == expected | {
        "lam[0]",
        "lam[1]",
        "shift[0, medicine]",
        "shift[1, medicine]",
    }


@pytest.mark.parametrize("engine", ["mcmc", "exact", "svi"])
def test_round_trip(saved, mcmc, exact, svi, engine):
    post = {"mcmc": mcmc, "exact": exact, "svi": svi}[engine]
    path = saved[engine]
    original = post.to_arviz()
    on_disk = from_file(path)
    loaded = Posterior.load(path)
    again = loaded.to_arviz()
    assert set(original.groups()) == set(on_disk.groups()) == set(again.groups())
    for group in original.groups():
        # the file holds exactly what to_arviz() built ...
        assert same(original[group], on_disk[group]), group
        # ... and the Posterior rebuilt from it builds the same again (the fit's provenance)
        assert same(original[group], again[group]), group
    assert loaded.engine == engine and loaded.seed == post.seed
    assert loaded.hypothesis == post.hypothesis
    assert loaded.settings == post.settings
    assert set(loaded.draws) == set(post.draws)
    for site, value in post.draws.items():
        assert torch.equal(loaded.draws[site], value), site
    assert torch.equal(loaded.policy_probs, post.policy_probs)
    assert torch.equal(loaded.manner_probs, post.manner_probs)
    assert torch.equal(loaded.pi_mean(), post.pi_mean())
    assert set(loaded.sample_stats) == set(post.sample_stats)
    for key, value in post.sample_stats.items():
        np.testing.assert_array_equal(loaded.sample_stats[key], value)
    pd.testing.assert_frame_equal(
        loaded.table.reset_index(drop=True), post.table.reset_index(drop=True), check_dtype=False
    )
    assert loaded.data.user_ids == post.data.user_ids
    assert loaded.data.currencies == post.data.currencies
    # what the assistant acts with is unchanged
    for who in ("member", "new"):
        a = post.predictive(pot=10, currency="medicine", who=who)
        b = loaded.predictive(pot=10, currency="medicine", who=who)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


#: HDF5 attributes that name other objects of the file (their numbering is the writer's).
LINKS = {"DIMENSION_LIST", "REFERENCE_LIST", "_Netcdf4Dimid", "_Netcdf4Coordinates"}


@pytest.mark.parametrize("engine", ["mcmc", "exact", "svi"])
def test_the_file_is_the_one_arviz_writes(saved, mcmc, exact, svi, engine, tmp_path):
    # save() writes through h5netcdf alone (write_netcdf), not through ArviZ and xarray: the
    # same groups, variables, dtypes, storage (chunks, compression, fill value) and attributes
    # as ArviZ's own writing of to_arviz(), so that every reader sees the same file.
    import h5py

    from scai.inference.arviz_schema import save_netcdf

    post = {"mcmc": mcmc, "exact": exact, "svi": svi}[engine]
    path = tmp_path / "by_arviz.nc"
    save_netcdf(post.to_arviz(), path)

    def described(handle):
        out = {}
        for group in handle:
            attrs = dict(handle[group].attrs)
            for key in ("created_at", "created"):  # the times they were written
                attrs.pop(key, None)
            out[group] = {"attrs": attrs}
            for name, obj in handle[group].items():
                # repr: NaN (a float's fill value) equals itself
                kept = {
                    k: repr(np.asarray(v).tolist()) for k, v in obj.attrs.items() if k not in LINKS
                }
                layout = (obj.chunks, obj.compression, obj.compression_opts, obj.shuffle)
                fill = repr(np.asarray(obj.fillvalue).tolist())
                text = h5py.check_string_dtype(obj.dtype) is not None
                values = obj.asstr()[()].tolist() if text else obj[()].tobytes()
                out[group][name] = (obj.dtype, obj.shape, layout, fill, kept, values)
        return out

    with h5py.File(saved[engine]) as ours, h5py.File(path) as arviz_file:
        assert list(ours) == list(arviz_file)
        assert described(ours) == described(arviz_file)


def test_compare_two_hypotheses(sim):
    posts = {
        name: fit(sim.interactions, name, engine="exact", seed=0, num_draws=300)
        for name in ("neutral", "stereotyped")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare({k: v.to_arviz() for k, v in posts.items()}, ic="loo")
    assert set(table.index) == {"neutral", "stereotyped"}
    assert sorted(table["rank"]) == [0, 1]
    assert np.isclose(table["weight"].sum(), 1.0)
    assert table["elpd_diff"].min() == 0 and table["elpd_diff"].max() >= 0
    assert np.all(np.isfinite(table["elpd_loo"]))


def test_plot_trace(saved):
    idata = from_file(saved["mcmc"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            axes = az.plot_trace(idata, var_names=["pi"])
        assert axes.shape == (1, 2)
        assert all(ax.has_data() for ax in axes.ravel())
    finally:
        plt.close("all")


@pytest.mark.parametrize("engine", ["mcmc", "exact", "svi"])
def test_arviz_tools_run_on_every_engines_file(saved, engine):
    """``az.loo``, ``az.loo_pit``, ``az.plot_ppc`` and ``az.compare`` on the file as written."""
    idata = from_file(saved[engine])
    n_users = SIMS * USERS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = az.loo(idata)
            pit = az.loo_pit(idata, y="user_actions")
            axes = az.plot_ppc(idata, var_names=["offer", "user_actions"], num_pp_samples=20)
            table = az.compare({"a": idata, "b": idata})
        assert np.isfinite(loo.elpd_loo) and loo.n_data_points == n_users
        assert pit.shape == (n_users,) and np.all((pit >= 0) & (pit <= 1))
        assert all(ax.has_data() for ax in np.ravel(axes))
        assert table["elpd_diff"].max() == pytest.approx(0.0, abs=1e-9)
        # user_actions counts whole units, stored as floats: ArviZ's loo_pit smooths integer
        # data over the observations' order (a user's PIT read from its neighbours', a review
        # found when they were int64), on floats it is each user's own
        for group in ("observed_data", "posterior_predictive"):
            assert idata[group]["user_actions"].dtype == np.float64, group
    finally:
        plt.close("all")


@pytest.mark.parametrize("engine", ["mcmc", "exact", "svi"])
def test_provenance_attributes(saved, mcmc, exact, svi, engine):
    """Provenance on every group; ``settings``, ``diagnostics`` and ``command`` are JSON; the
    data hash is the input table's; the draws say what they are."""
    import scai

    post = {"mcmc": mcmc, "exact": exact, "svi": svi}[engine]
    idata = from_file(saved[engine])
    for group in idata.groups():
        attrs = idata[group].attrs
        assert attrs["scai_version"] == scai.__version__
        assert attrs["seed"] == str(post.seed) and attrs["engine"] == engine
        assert json.loads(attrs["settings"]) == json.loads(json.dumps(post.settings))
        assert isinstance(json.loads(attrs["diagnostics"]), dict)
        assert isinstance(json.loads(attrs["command"]), list)
        csv = post.table.reset_index(drop=True).to_csv(index=False).encode()
        assert attrs["data_sha256"] == hashlib.sha256(csv).hexdigest()
        # what the codes mean, and how many tones the data held (fits with and without tones
        # are not comparable by az.compare)
        assert (
            "-1 where none heard" in json.loads(attrs["variables"])["proposer_tone, responder_tone"]
        )
        tones = post.table[["proposer_tone", "responder_tone"]].astype(str) != ""
        assert attrs["tones_heard"] == str(int(tones.to_numpy().sum()))
    draws = idata.posterior.attrs["draws"]
    assert ("Markov" in draws) if engine == "mcmc" else ("independent" in draws)
    # SVI's corrected draws repeat: az.ess counts each (a review: 955 where PSIS's ESS was 400)
    assert ("at most diagnostics.importance.ess" in draws) == (engine == "svi"), draws


def test_a_loaded_posterior_saved_again_keeps_the_fits_provenance(saved, tmp_path, monkeypatch):
    """Saving a loaded posterior wrote the re-saving script's command and time as the fit's
    (a red-team find): the copy keeps the fit's command, time and versions, and says when and
    by what command it was written again. A posterior updated from a loaded one is a new fit:
    its provenance is its own."""
    import sys

    from scai.inference.online import update

    monkeypatch.setattr(sys, "argv", ["copy-script", "--again"])
    loaded = Posterior.load(saved["exact"])
    loaded.save(tmp_path / "copy.nc")
    fitted, copied = from_file(saved["exact"]).posterior.attrs, from_file(tmp_path / "copy.nc")
    for group in copied.groups():
        attrs = copied[group].attrs
        for key in ("command", "created", "scai_version", "torch_version", "pyro_version"):
            assert attrs[key] == fitted[key], (group, key)
        assert json.loads(attrs["resaved_command"]) == ["copy-script", "--again"]
        assert attrs["resaved"] >= fitted["created"]
    assert Posterior.load(tmp_path / "copy.nc").provenance == loaded.provenance
    built = loaded.to_arviz().posterior.attrs  # not saved: no copy's stamp
    assert "resaved" not in built and built["command"] == fitted["command"]
    new_games = loaded.table.assign(epoch=loaded.table["epoch"].max() + 1)
    update(loaded, new_games).save(tmp_path / "updated.nc")
    updated = from_file(tmp_path / "updated.nc").posterior.attrs
    assert json.loads(updated["command"]) == ["copy-script", "--again"]
    assert "resaved" not in updated


def test_replicates_follow_the_models_action_probabilities(exact):
    """The posterior predictive is the model run forward: averaged over draws, each user's
    replicated ``user_actions`` matches its expectation under the model's action tables given
    the draw, with the user's type drawn from the group's ``pi`` (the predictive the
    ``log_likelihood`` group scores and ``az.loo_pit`` checks, not the type the user's own
    data point to: the replicates drew that before, and failed this test), exact to the
    Monte Carlo error: 4 standard errors. A responder decides on the offer the table holds,
    as the user's ``log_likelihood`` term conditions on it (the replicates had it decide on
    its partner's replicated offer, a wider predictive than the one scored: 600 of 1,200
    users' expected accepts off by more than 4 standard errors, a review). Four replicates
    per draw (seeds 11-14): a user whose ``T`` is almost always one value
    needs more than one per draw for the standard error estimated from them to see its rare
    other values."""
    from scai.models.model import group_tables

    data = exact.data
    T = np.stack(
        [
            posterior_replicates(exact, seed=seed)
            .replicated["user_actions"]
            .reshape(-1, SIMS * USERS)
            for seed in range(11, 15)
        ]
    )  # [seeds, D, users]
    # expectation: sum over the user's events of E[offer] (proposer) + P(accept) (responder)
    lam, shift = exact.lam(), exact.shifts_in_data()
    pi = exact.flat_draws("pi").double()  # [D, S, K]: every user's type probabilities
    probs = pi.unsqueeze(2).expand(-1, -1, USERS, -1)  # [D, S, U, K]
    tables = group_tables(exact.hypothesis, data.pots, lam.double(), shift.double())
    offer_p = tables.offer_logp.exp()  # [D, S, C, K, P, O]
    accept_p = tables.accept_prob()
    D = lam.shape[0]
    expected = torch.zeros(D, SIMS, USERS, dtype=torch.float64)
    offers = torch.arange(offer_p.shape[-1], dtype=torch.float64)
    for s in range(SIMS):
        for u in range(USERS):
            for e in torch.nonzero(data.event_mask[s, u]).flatten().tolist():
                c, p = int(data.currency_index[s, u, e]), int(data.pot_index[s, u, e])
                if data.is_proposer[s, u, e]:
                    per_type = (offer_p[:, s, c, :, p] * offers).sum(-1)  # [D, K]
                else:  # the offer the user saw
                    per_type = accept_p[:, s, c, :, p, int(data.offer[s, u, e])]
                expected[:, s, u] += (probs[:, s, u] * per_type.double()).sum(-1)
    expected = expected.reshape(D, -1).numpy()
    deviation = (T - expected).reshape(-1, SIMS * USERS)  # independent given the draws
    err = deviation.std(0) / np.sqrt(len(deviation)) + 1e-9
    assert np.all(np.abs(deviation.mean(0)) < 4 * err + 1e-6), deviation.mean(0) / err


def test_replicated_tones_follow_each_users_manner():
    """Replicated tones (drawn by inverse CDF): over the heard events of users of manner ``m``,
    each tone's frequency is the hypothesis's emission ``E[m, t]``, to 4 standard errors
    (exactly 0 where ``E`` is 0). Manners are set at random per draw and user."""
    from scai.models.layout import GroupData
    from scai.models.predictive import replicate

    hyp = PRESETS["stereotyped"]
    table = simulate(hyp, policy="fair", users=4, rounds=4, sims=2, seed=3).interactions
    data = GroupData.from_table(table)
    S, U, _ = data.shape
    D, K = 4000, len(hyp.policies)
    generator = torch.Generator().manual_seed(0)
    manner = torch.randint(len(MANNERS), (D, S, U), generator=generator)
    sites = {
        "pi": torch.full((D, S, K), 1 / K),
        "policy": torch.randint(K, (D, S, U), generator=generator),
        "manner": manner,
    }
    tones = replicate(data, hyp, sites, seed=5)["tone"]  # [D, S, U, E]
    heard = data.tone_mask & data.event_mask  # [S, U, E]
    emission = hyp.emission().double()
    for m in range(len(MANNERS)):
        drawn = tones[(manner.unsqueeze(-1) == m) & heard]
        freq = torch.bincount(drawn, minlength=emission.shape[1]).double() / len(drawn)
        se = (emission[m] * (1 - emission[m]) / len(drawn)).sqrt()
        assert torch.all((freq - emission[m]).abs() <= 4 * se + 1e-12), (m, freq, emission[m])


def test_corrupt_or_foreign_file_is_a_clear_error(tmp_path, saved):
    from scai.inference.arviz_schema import PosteriorFileError

    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(saved["exact"].read_bytes()[:2000])
    foreign = tmp_path / "foreign.nc"
    az.from_dict(posterior={"x": np.zeros((1, 5))}).to_netcdf(foreign, engine="h5netcdf")
    for path in (empty, truncated, foreign):
        with pytest.raises(PosteriorFileError, match=str(path.name)):
            Posterior.load(path)


@pytest.mark.parametrize("engine", ["mcmc", "exact", "svi"])
def test_the_plain_hdf5_read_gives_arviz_values(saved, engine):
    # Posterior.load reads the groups it needs straight from HDF5: the same variables, in the
    # same order, with the same values and dtypes as ArviZ (xarray) decodes them.
    from scai.inference.arviz_io import LOADED_GROUPS, REQUIRED_GROUPS
    from scai.inference.arviz_schema import read_plain_groups

    plain = read_plain_groups(saved[engine], LOADED_GROUPS, REQUIRED_GROUPS)
    assert plain is not None
    idata = from_file(saved[engine])
    for group in LOADED_GROUPS:
        assert list(plain.groups[group]) == list(idata[group].data_vars), group
        for name, values in plain.groups[group].items():
            expected = idata[group][name].values
            assert (values.dtype, values.shape) == (expected.dtype, expected.shape), name
            np.testing.assert_array_equal(values, expected)
    assert plain.attrs == dict(idata.posterior.attrs)


def test_a_file_with_other_encodings_is_read_by_arviz(saved, exact, tmp_path):
    # An attribute the plain read does not interpret (here a harmless one, as another writer
    # may add) sends the file to ArviZ's read; the Posterior is the same.
    import shutil

    import h5py

    from scai.inference.arviz_io import LOADED_GROUPS
    from scai.inference.arviz_schema import read_plain_groups

    path = tmp_path / "annotated.nc"
    shutil.copyfile(saved["exact"], path)
    with h5py.File(path, "r+") as handle:
        handle["posterior/pi"].attrs["long_name"] = "mixture weights"
    assert read_plain_groups(path, LOADED_GROUPS) is None
    loaded = Posterior.load(path)
    for site, value in exact.draws.items():
        assert torch.equal(loaded.draws[site], value), site
    assert torch.equal(loaded.policy_probs, exact.policy_probs)


@pytest.mark.parametrize(
    "prior", [{"lapse_prior": (1.0, 30.0)}, {"clone_prior": (1.0, 1.0)}], ids=["lapse", "clone"]
)
def test_the_bounded_sites_draws_survive_the_file(tmp_path, prior):
    """A latent lapse or clone probability is drawn by the engines like pi: its draws are
    written and read back bit for bit (they were written and then dropped on loading)."""
    from scai.inference.exact import fit_exact
    from scai.models.hypotheses import PRESETS
    from scai.models.layout import GroupData
    from scai.models.simulate import simulate

    hyp = PRESETS["neutral"].with_(name="bounded", **prior)
    sim = simulate(hyp, policy="selfish", users=6, rounds=6, sims=2, seed=1)
    post = fit_exact(GroupData.from_table(sim.interactions), hyp, table=sim.interactions, seed=0)
    site = {"lapse_prior": "lapse", "clone_prior": "clone"}[next(iter(prior))]
    assert site in post.draws
    idata = post.to_arviz()
    assert idata.posterior[site].dims == ("chain", "draw", "sim")
    # The file says what a user's log-likelihood is: with clones, given the others' data (it
    # said "| the draw" alone, and the stored terms differ from that by 0.56 nats on average).
    note = json.loads(idata.posterior.attrs["variables"])["log_likelihood.user_actions"]
    assert ("the other users' data" in note) == (site == "clone"), note
    post.save(tmp_path / "post.nc")
    loaded = Posterior.load(tmp_path / "post.nc")
    assert set(loaded.draws) == set(post.draws)
    for name, value in post.draws.items():
        assert torch.equal(loaded.draws[name], value), name


def test_the_leave_one_user_out_pit_of_the_true_model_is_uniform():
    """Data simulated from the hypothesis fitted: the randomised LOO-PIT of ``user_actions``
    (importance weights ``1 / p(y_u | theta)`` from the ``log_likelihood`` group, ties split
    by a uniform: the statistic is discrete) is uniform over the 100 users (Kolmogorov-Smirnov
    at the 1% level; fixed seeds). When the replicates drew each user's type given its own
    data, a replicate equalled the observation 56% of the time here (17% now) and ArviZ's
    ``loo_pit`` piled at 1."""
    from scipy import stats

    from scai.models.simulate import simulate

    hyp = PRESETS["neutral"]
    sim = simulate(
        hyp, policy="selfish=0.5,fair=0.2,altruistic=0.3", users=10, epochs=5, sims=10, seed=3
    )
    idata = fit(sim.interactions, hyp, engine="exact").to_arviz()
    loglik = idata.log_likelihood["user_actions"].values.reshape(-1, 100)
    replicated = idata.posterior_predictive["user_actions"].values.reshape(-1, 100)
    observed = idata.observed_data["user_actions"].values
    weights = np.exp(-loglik - (-loglik).max(0))
    weights /= weights.sum(0)
    below = (weights * (replicated < observed)).sum(0)
    tied = (weights * (replicated == observed)).sum(0)
    pit = below + np.random.default_rng(0).uniform(size=100) * tied
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    assert float(tied.mean()) < 0.3


def test_user_labels_are_one_per_user_even_when_ids_hold_the_separator():
    """Group ``a:b``'s user ``c`` and group ``a``'s user ``b:c`` were both ``a:b:c``: the
    ``user`` index had duplicates and ``.sel`` returned two rows (a review). Plain ids keep
    plain ``sim:user`` labels."""
    rows = [
        ("a:b", 1, 1, "c", "d", "apples", 10, 5, 1, "", ""),
        ("a", 1, 1, "b:c", "d", "apples", 10, 1, 0, "", ""),
    ]
    columns = ["sim", "epoch", "round", "proposer", "responder", "currency", "pot", "offer"]
    table = pd.DataFrame(rows, columns=[*columns, "accepted", "proposer_tone", "responder_tone"])
    users = fit(table, "neutral").to_arviz().user_posterior["user"].values.tolist()
    assert len(users) == len(set(users)) == 4
    assert "'a:b':'c'" in users and "'a':'b:c'" in users
    plain = fit(table.assign(sim=["x", "y"]), "neutral").to_arviz().user_posterior["user"]
    assert sorted(plain.values.tolist()) == ["x:c", "x:d", "y:b:c", "y:d"]


def test_every_engine_lists_the_sites_in_one_order(tmp_path):
    """The exact engine listed ``pi, shift, shift_shared`` where SVI and MCMC listed ``pi,
    shift_shared, shift`` (a review): a summary's rows, and a saved file's variables, came in
    another order by engine, and after loading. Both follow the schema's order now."""
    from scai.inference import fit
    from scai.inference.diagnostics import SITE_DIMS
    from scai.inference.posterior import Posterior
    from scai.models.hypotheses import PRESETS
    from scai.models.simulate import simulate

    table = simulate(
        PRESETS["pooled"], policy="selfish", users=4, rounds=4, epochs=1, seed=1
    ).interactions
    order = list(SITE_DIMS)
    for engine, options in (
        ("exact", {"num_draws": 50}),
        ("mcmc", {"samples": 100, "warmup": 100}),
    ):
        posterior = fit(table, "pooled", engine=engine, seed=0, **options)
        sites = list(dict.fromkeys(p.split("[")[0] for p in posterior.summary().parameter))
        assert sites == sorted(sites, key=order.index) and "shift" in sites, (engine, sites)
        posterior.save(tmp_path / f"{engine}.nc")
        saved = list(Posterior.load(tmp_path / f"{engine}.nc").to_arviz().posterior.data_vars)
        assert saved == sorted(saved, key=order.index), (engine, saved)


@pytest.mark.parametrize("bad", ["x", "1000000000", 2.5e9, -5, 0, True])
def test_to_arviz_and_save_check_max_memory_as_fit_does(tmp_path, bad):
    """``to_arviz(max_memory="x")`` was int()'s ValueError, a string or a float was accepted,
    and -5 'the limit of -5 B' (a review of the Python API): an EngineError naming it."""
    from scai.inference.errors import EngineError
    from scai.models.simulate import simulate

    table = simulate("neutral", policy="selfish", users=3, seed=1).interactions
    post = fit(table, "neutral", engine="exact", num_draws=10)
    for call in (
        lambda: post.to_arviz(max_memory=bad),
        lambda: post.save(tmp_path / "p.nc", max_memory=bad),
    ):
        with pytest.raises(EngineError, match="max_memory: must be a whole number >= 1"):
            call()
    assert not (tmp_path / "p.nc").exists()


def test_the_readmes_recipes_for_concat_dataframes_and_one_simulations_users(saved):
    """``user_posterior`` has no chain or draw: ``az.concat`` and ``to_dataframe()`` refuse
    the whole object, and work as the README says (the group removed, or the posterior's
    group named); one simulation's users are picked by their ``sim:`` label."""
    idata = from_file(saved["mcmc"])
    with pytest.raises((TypeError, AttributeError)):
        az.concat(idata, idata, dim="chain")
    assert (
        len(idata.to_dataframe(groups="posterior"))
        == idata.posterior.sizes["chain"] * (idata.posterior.sizes["draw"])
    )
    del idata.user_posterior
    both = az.concat(idata, idata, dim="chain")
    assert both.posterior.sizes["chain"] == 2 * idata.posterior.sizes["chain"]
    labels = idata.log_likelihood.user.values
    one = idata.sel(user=[u for u in labels if u.startswith("1:")])
    assert 0 < one.log_likelihood.sizes["user"] < len(labels)
    assert az.loo(one).n_data_points == one.log_likelihood.sizes["user"]


def test_the_loo_pit_of_user_actions_is_each_users_own(saved):
    """``user_actions`` is stored as floats: on integers ArviZ's ``loo_pit`` smooths the data
    with a spline over the users' order first, so that a user's PIT depended on its
    neighbours' (a review found it when they were int64). Users reordered, each keeps its
    PIT."""
    idata = from_file(saved["exact"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pit = az.loo_pit(idata, y="user_actions")
        order = np.random.default_rng(0).permutation(idata.observed_data.sizes["user"])
        users = idata.observed_data["user"].values[order]
        groups = ("log_likelihood", "posterior_predictive", "observed_data")
        shuffled = az.InferenceData(
            posterior=idata.posterior, **{g: idata[g].sel(user=users) for g in groups}
        )
        again = az.loo_pit(shuffled, y="user_actions")
    np.testing.assert_allclose(again, pit[order], rtol=1e-12)


def test_a_loaded_hypothesis_warning_names_the_file(tmp_path):
    """A posterior of a hypothesis whose types act alike warned again when loaded, as
    "hypothesis: policies: ..." (a review): it names the file's attribute now."""
    from scai.models.errors import HypothesisWarning
    from scai.models.hypotheses import Hypothesis
    from scai.models.policies import PolicyType

    with pytest.warns(HypothesisWarning):
        alike = Hypothesis(
            policies=(PolicyType("fair", w=0.5), PolicyType("fair2", w=0.5)),
            pi_concentration=(0.5, 0.5),
        )
    table = simulate("neutral", policy="fair", users=4, epochs=1, seed=0).interactions
    fit(table, alike).save(tmp_path / "alike.nc")
    with pytest.warns(HypothesisWarning) as told:
        Posterior.load(tmp_path / "alike.nc")
    assert str(told[0].message).startswith(f"{tmp_path / 'alike.nc'}: attribute hypothesis_toml")


def test_the_prior_group_holds_the_hypothesis_prior_beside_the_posterior(saved, exact):
    """The file had no ``prior`` group, so ArviZ could not set prior and posterior side by
    side (``az.plot_dist_comparison``; a review). It holds as many draws of the hypothesis's
    prior as the posterior has, of the same sites and dims, and they are the prior: each
    site's mean within 4 Monte Carlo standard errors of the closed form (Dirichlet(0.5, 0.5,
    0.5): 1/3 each; LogNormal(log 4, 0.3): 4 exp(0.045); essential_goods_shared's shift of
    medicine, an essential good: Normal(essential_shift, currency_scale))."""
    idata = from_file(saved["exact"])
    assert list(idata.prior.data_vars) == list(idata.posterior.data_vars)
    for name, value in idata.prior.data_vars.items():
        assert value.dims == idata.posterior[name].dims, name
        assert value.shape == idata.posterior[name].shape, name
        for dim in value.dims[2:]:
            assert list(idata.prior[dim].values) == list(idata.posterior[dim].values)
    hyp = LAM_AND_SHIFT
    conc = np.asarray(hyp.pi_concentration)
    pi_sd = np.sqrt(conc / conc.sum() * (1 - conc / conc.sum()) / (conc.sum() + 1))
    lam_mean = hyp.rationality * np.exp(hyp.rationality_scale**2 / 2)
    lam_sd = lam_mean * np.sqrt(np.exp(hyp.rationality_scale**2) - 1)
    shift_sd = np.hypot(hyp.shared_scale, hyp.currency_scale)
    expected = {
        "pi": (conc / conc.sum(), pi_sd),
        "lam": (lam_mean, lam_sd),
        "shift": (hyp.essential_shift, shift_sd),  # the data's one currency: medicine
    }
    assert list(idata.prior["currency"].values) == ["medicine"]
    for site, (mean, sd) in expected.items():
        values = idata.prior[site].values
        n = values.shape[0] * values.shape[1]
        assert np.all(np.abs(values.mean(axis=(0, 1)) - mean) < 4 * sd / np.sqrt(n)), site
        # the sd within 4 of its Monte Carlo errors, relative: sqrt((kurtosis - 1) / 4n) (a
        # fixed 0.25 at n = 300 was ~6 of them for a normal, a review)
        centred = values - values.mean(axis=(0, 1))
        kurtosis = (centred**4).mean(axis=(0, 1)) / (centred**2).mean(axis=(0, 1)) ** 2
        relative_se = np.sqrt((kurtosis - 1) / (4 * n))
        off = np.abs(values.std(axis=(0, 1)) / sd - 1)
        assert np.all(off < 4 * relative_se), (site, off, relative_se)
    # the draws are the fit's: the same seed writes the same prior
    again = exact.to_arviz()
    np.testing.assert_array_equal(again.prior["lam"].values, idata.prior["lam"].values)
