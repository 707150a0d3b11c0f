"""Hostile posterior files (issue 13): HDF5 can make a file borrow data from elsewhere, and
loading such a file would read another local file into the posterior's tables. Each construct
(an external link, a dataset with external storage, a virtual dataset) is crafted here in a
copy of a real posterior file, and :func:`~scai.inference.arviz_schema.read_netcdf` must refuse
it with a :class:`PosteriorFileError` naming the file and the object, before ArviZ reads it.
"""

from __future__ import annotations

import json
import shutil
import warnings

import arviz as az
import h5py
import numpy as np
import pytest
import tomli_w
import torch
import xarray as xr
from timelimit import time_limit

from scai.inference import Posterior, fit
from scai.inference.arviz_schema import PosteriorFileError, check_self_contained
from scai.models.game import CURRENCIES
from scai.models.hypotheses import PRESETS
from scai.models.simulate import simulate

SECRET = b"another local file's contents\n" * 8
SECONDS = 10.0


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A genuine posterior file, and a 'secret' file beside it that the crafted files point at."""
    folder = tmp_path_factory.mktemp("hostile")
    sim = simulate(PRESETS["neutral"], policy="selfish", users=3, rounds=3, sims=1, seed=1)
    path = folder / "genuine.nc"
    fit(sim.interactions, "neutral", engine="exact", num_draws=50).save(path)
    (folder / "secret.txt").write_bytes(SECRET)
    return path


def crafted(original, name: str, craft) -> object:
    path = original.with_name(f"{name}.nc")
    shutil.copyfile(original, path)
    with h5py.File(path, "r+") as handle:
        craft(handle, original.parent)
    return path


def external_storage(handle, folder):
    """The classic: a variable whose bytes are those of another file."""
    group = handle["constant_data"]
    group.create_dataset(
        "leak",
        shape=(len(SECRET),),
        dtype="u1",
        external=[(str(folder / "secret.txt"), 0, len(SECRET))],
    )


def external_storage_replacing_a_variable(handle, folder):
    group = handle["posterior"]
    shape, dtype = group["pi"].shape, group["pi"].dtype
    del group["pi"]
    nbytes = dtype.itemsize * int(np.prod(shape))
    group.create_dataset(
        "pi", shape=shape, dtype=dtype, external=[(str(folder / "secret.txt"), 0, nbytes)]
    )


def external_link_in_group(handle, folder):
    handle["posterior"]["elsewhere"] = h5py.ExternalLink(
        str(folder / "genuine.nc"), "/posterior/pi"
    )


def external_link_at_root(handle, folder):
    handle["elsewhere"] = h5py.ExternalLink(str(folder / "genuine.nc"), "/posterior")


def virtual_dataset(handle, folder):
    layout = h5py.VirtualLayout(shape=(3,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(folder / "genuine.nc"), "posterior/pi", shape=(3,))
    handle["constant_data"].create_virtual_dataset("mapped", layout)


def external_storage_deep(handle, folder):
    """Nested groups, and a hard-link cycle on the way (the walk must still end)."""
    deep = handle.create_group("a/b/c")
    deep["cycle"] = handle["a"]
    deep.create_dataset(
        "leak", shape=(8,), dtype="u1", external=[(str(folder / "secret.txt"), 0, 8)]
    )


CASES = {
    "external_storage": (external_storage, "/constant_data/leak has external storage"),
    "replaced_variable": (
        external_storage_replacing_a_variable,
        "/posterior/pi has external storage",
    ),
    "external_link_in_group": (external_link_in_group, "/posterior/elsewhere is an external link"),
    "external_link_at_root": (external_link_at_root, "/elsewhere is an external link"),
    "virtual_dataset": (virtual_dataset, "/constant_data/mapped is a virtual dataset"),
    "deep_with_cycle": (external_storage_deep, "/a/b/c/leak has external storage"),
}


def assert_refused(path, what: str) -> None:
    """Loading ``path`` is a one-line :class:`PosteriorFileError` naming it and ``what``."""
    with time_limit(SECONDS), pytest.raises(PosteriorFileError) as caught:
        Posterior.load(path)
    message = caught.value.one_line()
    assert str(path) in message and what in message, message
    assert "Traceback" not in message and "\n" not in message


@pytest.mark.parametrize("name", CASES)
def test_a_file_that_reads_other_files_is_refused(original, name):
    craft, what = CASES[name]
    assert_refused(crafted(original, name, craft), what)


def test_the_attack_is_real_without_the_check(original):
    """The crafted file is a working attack: read as NetCDF, the secret file's bytes appear."""
    path = crafted(original, "attack", external_storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        leaked = xr.open_dataset(path, group="constant_data", engine="h5netcdf")["leak"].values
    assert leaked.tobytes() == SECRET


def test_a_genuine_file_still_loads(original):
    with time_limit(SECONDS):
        check_self_contained(original)
        posterior = Posterior.load(original)
    assert np.isfinite(posterior.pi_mean().numpy()).all()


def test_a_file_that_is_not_hdf5_is_a_clear_error(original, tmp_path):
    for name, data in {
        "text.nc": b"CDF\x01 not really",
        "hdf5_head_only.nc": original.read_bytes()[:512],
        "zeros.nc": bytes(4096),
    }.items():
        path = tmp_path / name
        path.write_bytes(data)
        with time_limit(SECONDS), pytest.raises(PosteriorFileError, match=name):
            Posterior.load(path)


def test_a_damaged_file_is_a_clear_error(original, tmp_path):
    """A file with bytes flipped in its HDF5 metadata raised h5py's bare ``RuntimeError``
    ('Object visitation failed (incorrect metadata checksum ...)') from ``Posterior.load``
    (a red-team find): it is a :class:`PosteriorFileError` naming the file."""
    import random

    data = bytearray(original.read_bytes())
    random.seed(1)
    for i in random.sample(range(2000, len(data)), 50):
        data[i] ^= 0xFF
    path = tmp_path / "damaged.nc"
    path.write_bytes(bytes(data))
    with time_limit(SECONDS), pytest.raises(PosteriorFileError, match=r"damaged\.nc: cannot read"):
        Posterior.load(path)


# -- Files edited apart from their arrays (a review's finds) ----------------------------------
# Each raised a bare KeyError, ValueError or RuntimeError from Posterior.load, or loaded
# silently (a newer scai_schema, an unknown engine): each is a PosteriorFileError naming the
# file, what is missing or inconsistent, and what is allowed.


def set_attribute(key, value):
    def craft(handle, folder):
        handle["posterior"].attrs[key] = value

    return craft


def edit_layout(edit):
    def craft(handle, folder):
        layout = json.loads(handle["posterior"].attrs["layout"])
        edit(layout)
        handle["posterior"].attrs["layout"] = json.dumps(layout)

    return craft


def delete_attribute(key):
    def craft(handle, folder):
        del handle["posterior"].attrs[key]

    return craft


def delete(name):
    def craft(handle, folder):
        del handle[name]

    return craft


def set_values(name, edit):
    def craft(handle, folder):
        values = handle[name][()]
        edit(values)
        handle[name][...] = values

    return craft


def set_variable_attribute(name, key, value):
    def craft(handle, folder):
        handle[name].attrs[key] = value

    return craft


def edit_settings(edit):
    def craft(handle, folder):
        settings = json.loads(handle["posterior"].attrs["settings"])
        edit(settings)
        for group in handle.values():  # every group carries the provenance
            group.attrs["settings"] = json.dumps(settings)

    return craft


FOUR_POLICIES = tomli_w.dumps(PRESETS["real_agents"].to_dict())
EDITS = {
    "no_user_posterior": (delete("user_posterior"), "missing group(s) user_posterior; a scai"),
    "newer_schema": (set_attribute("scai_schema", "999"), "'999': the file is from a newer scai"),
    "older_schema": (set_attribute("scai_schema", "1"), "'1': the file is from an older scai"),
    "schema_not_a_number": (set_attribute("scai_schema", "two"), "'two' is not a schema version"),
    "other_hypothesis": (
        set_attribute("hypothesis_toml", FOUR_POLICIES),
        "posterior.pi has shape (1, 50, 1, 3), but attributes hypothesis_toml ('real_agents')",
    ),
    "seed_not_a_number": (set_attribute("seed", "n/a"), "seed is 'n/a'; allowed: a whole number"),
    "unknown_engine": (set_attribute("engine", "foo"), "engine is 'foo'; allowed: exact, svi"),
    "layout_without_sim_ids": (
        edit_layout(lambda layout: layout.pop("sim_ids")),
        "layout lacks the list(s) sim_ids",
    ),
    "layout_with_another_user": (
        edit_layout(lambda layout: layout["user_ids"][0].append("someone")),
        "user_posterior.policy_prob has shape (3, 3), but",
    ),
    "layout_without_the_currency": (
        edit_layout(lambda layout: layout.__setitem__("currencies", ["gold"])),
        "currency 'dollars' of the table is not in attribute layout's currencies",
    ),
    # loaded with every row of one currency at another's index (crashed before with pandas'
    # InvalidIndexError)
    "layout_with_a_currency_twice": (
        edit_layout(lambda layout: layout.__setitem__("currencies", ["dollars", "dollars"])),
        "layout's currencies ['dollars', 'dollars'] are not distinct names",
    ),
    "no_offer": (delete("observed_data/offer"), "observed_data lacks variable(s) offer"),
    "no_sim": (delete("constant_data/sim"), "constant_data lacks variable(s) sim"),
    "no_pi": (delete("posterior/pi"), "posterior lacks variable(s) pi"),
    "no_hypothesis": (delete_attribute("hypothesis_toml"), "missing attribute hypothesis_toml"),
    # Each of these raised a bare IndexError, TypeError or UFuncTypeError, or loaded values
    # that fit refuses (an offer above its pot: an IndexError later, in to_arviz).
    "tone_code_out_of_range": (
        set_values("observed_data/proposer_tone", lambda v: v.__setitem__(0, 7)),
        "observed_data.proposer_tone holds codes other than -1 (none heard) and 0..3",
    ),
    "offer_above_its_pot": (
        set_values("observed_data/offer", lambda v: v.__setitem__(0, 10**6)),
        "row 1, column 'offer': value '1000000'",
    ),
    "scale_factor_text": (
        set_variable_attribute("posterior/pi", "scale_factor", "abc"),
        "cannot decode its variables (UFuncTypeError",
    ),
    "pi_decoded_as_dates": (
        set_variable_attribute("posterior/pi", "units", "days since 2000-01-01"),
        "posterior.pi holds datetime64[ns] values; allowed: numbers",
    ),
    "pi_scaled_off_the_simplex": (
        set_variable_attribute("posterior/pi", "scale_factor", 2.0),
        "posterior.pi is not on the simplex",
    ),
    "settings_with_an_unknown_option": (
        edit_settings(lambda settings: settings.__setitem__("foo", 1)),
        "bad attribute settings (unknown option 'foo' for engine 'exact'; allowed: num_draws",
    ),
    "settings_with_a_bad_value": (
        edit_settings(lambda settings: settings.__setitem__("num_draws", 0)),
        "bad attribute settings (num_draws",
    ),
    "settings_not_an_object": (
        set_attribute("settings", "[1]"),
        "attribute settings is [1]; allowed: a JSON object of engine 'exact''s options",
    ),
}


@pytest.mark.parametrize("name", EDITS)
def test_an_edited_file_is_a_clear_error(original, name):
    """Each edit is refused naming what fits; a file refused registers none of its currencies
    (one that named 'gold' left it registered for the rest of the session: a later test's
    table in gold was read as valid)."""
    craft, what = EDITS[name]
    registered = dict(CURRENCIES)
    assert_refused(crafted(original, name, craft), what)
    assert registered == CURRENCIES


def test_a_newer_schema_says_to_upgrade(original):
    path = crafted(original, "newer", set_attribute("scai_schema", "3"))
    with pytest.raises(PosteriorFileError, match=r"newer\.nc: .*upgrade scai"):
        Posterior.load(path)


def test_files_arviz_wrote_again_still_load(original, tmp_path):
    """A scai file read and written again by ArviZ, whole or thinned, is still a scai file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(original, engine="h5netcdf")
        idata.to_netcdf(tmp_path / "again.nc", engine="h5netcdf")
        idata.sel(draw=slice(0, 20)).to_netcdf(tmp_path / "thinned.nc", engine="h5netcdf")
    genuine = Posterior.load(original)
    again = Posterior.load(tmp_path / "again.nc")
    assert torch.equal(again.draws["pi"], genuine.draws["pi"])
    assert Posterior.load(tmp_path / "thinned.nc").n_draws == 21


def test_a_file_whose_games_were_cut_or_changed_is_refused(original, tmp_path):
    """A file whose interactions were cut (``idata.sel(interaction=...)``) or one offer
    changed loaded as a posterior of the games it held (its draws fitted to others: the
    stored lp 11 and 52 nats from the loaded posterior's), and an update then dropped games in
    silence. Its games' SHA-256 is not the file's data_sha256: refused, naming the attribute."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(original, engine="h5netcdf")
        idata.sel(interaction=slice(0, 1)).to_netcdf(tmp_path / "cut.nc", engine="h5netcdf")
        changed = az.from_netcdf(original, engine="h5netcdf")
        changed.observed_data.load()  # (an edit of a lazy array is read from the file again)
        offer = changed.observed_data["offer"].values
        offer[0] = offer[0] + 1 if offer[0] < 5 else offer[0] - 1  # still within its pot
        changed.to_netcdf(tmp_path / "changed.nc", engine="h5netcdf")
    for name in ("cut", "changed"):
        with pytest.raises(PosteriorFileError, match=rf"{name}\.nc: its games are not the ones"):
            Posterior.load(tmp_path / f"{name}.nc")
    with warnings.catch_warnings():  # draws or chains selected: the same games, loaded
        warnings.simplefilter("ignore")
        idata.sel(chain=[0]).to_netcdf(tmp_path / "chain.nc", engine="h5netcdf")
    assert Posterior.load(tmp_path / "chain.nc").n_chains == 1


def test_loading_a_folder_says_so_in_one_line(tmp_path):
    """``Posterior.load`` of a folder gave HDF5's message (two lines of its internals: a file
    descriptor, a buffer address); it says the path is a folder, as ``save`` does."""
    with pytest.raises(PosteriorFileError) as err:
        Posterior.load(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a folder, not a posterior file"


def test_a_file_saved_with_a_strength_beside_its_prior_loads_without_a_word(tmp_path):
    """``real_agents_stereotyped`` saved a fixed strength beside its ``stereotype_prior``
    until it dropped it; such a file's hypothesis now warns when read from a hypothesis file,
    but a posterior file's is not its reader's to edit: it loads quietly, with the strength
    the file holds."""
    from scai.models.errors import StereotypeStrengthWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StereotypeStrengthWarning)
        hypothesis = PRESETS["stereotyped"].with_(stereotype_prior=(4.0, 1.0))
    assert hypothesis.stereotype_strength == 0.8
    sim = simulate(hypothesis, policy="selfish", users=3, rounds=3, sims=1, seed=1)
    fit(sim.interactions, hypothesis, engine="exact", num_draws=50).save(tmp_path / "old.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", StereotypeStrengthWarning)
        loaded = Posterior.load(tmp_path / "old.nc")
    assert loaded.hypothesis == hypothesis


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A posterior of two groups on two currencies, three types, with a latent shift: every
    labelled dim (sim, policy, currency, user, manner) has more than one label."""
    folder = tmp_path_factory.mktemp("labelled")
    sim = simulate(
        PRESETS["pooled"],
        policy="selfish=0.6,altruistic=0.4",
        users=3,
        rounds=4,
        sims=2,
        currency=["dollars", "medicine"],
        seed=2,
    )
    path = folder / "fit.nc"
    fit(sim.interactions, "pooled", engine="exact", num_draws=40).save(path)
    return path


def _reversed(idata, dim: str):
    group = "user_posterior" if dim in ("user", "manner") else "posterior"
    labels = list(idata[group][dim].values)
    return idata.sel(**{dim: labels[::-1]})


@pytest.mark.parametrize("xarray_path", [False, True], ids=["hdf5", "xarray"])
@pytest.mark.parametrize("dim", ["sim", "policy", "currency", "user", "manner"])
def test_a_file_whose_labels_were_reordered_is_refused(
    labelled, tmp_path, monkeypatch, dim, xarray_path
):
    """The loader reads arrays by position: a file reordered by label after the fit
    (``idata.sel(sim=["1", "0"])``, then saved) loaded with group 0's ``pi`` under group 1's
    name, selfish and altruistic swapped, one currency's shift draws under the other's, users'
    type probabilities on other users, in silence (a review), and saving it again wrote the
    wrong pairs under the right labels. Refused, naming the group, the dim and the label, on
    both of the loader's reading paths (HDF5 straight, and xarray for files needing decoding)."""
    import scai.inference.arviz_io as arviz_io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(labelled, engine="h5netcdf")
        _reversed(idata, dim).to_netcdf(tmp_path / "reordered.nc", engine="h5netcdf")
    if xarray_path:
        monkeypatch.setattr(arviz_io, "read_plain_groups", lambda *args: None)
    Posterior.load(labelled)  # the file as written loads on either path
    with pytest.raises(
        PosteriorFileError,
        match=rf"reordered\.nc: \w+'s coordinate {dim} has "
        r"label .* at position 0 where the attributes give",
    ):
        Posterior.load(tmp_path / "reordered.nc")
