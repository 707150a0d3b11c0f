"""A currency of one's own data (``register_currency``, ``--add-currency``): refused until
registered, then validated, fitted and saved like scai's own; its ``essential`` flag reaches
the prior, travels with the data to a process that never registered it, and comes back from a
posterior file."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pytest

from scai.experiments.cli import main
from scai.inference import Posterior, fit
from scai.models import PRESETS, register_currency, simulate
from scai.models.data import DataError, read_interactions, write_interactions
from scai.models.errors import RunError
from scai.models.game import CURRENCIES
from scai.models.layout import GroupData


@pytest.fixture(autouse=True)
def _registry_restored():
    """Each test registers into a copy of the registry's entries, restored after it."""
    kept = dict(CURRENCIES)
    yield
    CURRENCIES.clear()
    CURRENCIES.update(kept)


def _own_table(tmp_path):
    """Two groups' games, the first paid in points, the second in water (a table as a
    researcher's own data would name them)."""
    sim = simulate(PRESETS["neutral"], policy="fair", users=4, sims=2, seed=3)
    table = sim.interactions.assign(
        currency=sim.interactions["sim"].map({"0": "points", "1": "water"})
    )
    path = tmp_path / "own.csv"
    write_interactions(table, path)
    return path


def test_a_name_is_checked_and_a_registered_currency_is_not_redefined():
    for bad in ("Points", "", "1st", "a b", "x" * 41, None):
        with pytest.raises(RunError, match="is not a currency's name"):
            register_currency(bad)
    with pytest.raises(RunError, match="essential: must be True or False"):
        register_currency("points", essential="no")
    with pytest.raises(RunError, match="unit '' must be printable"):
        register_currency("points", unit="")
    assert register_currency("points") == CURRENCIES["points"]
    assert register_currency("points", unit="points") is not None  # the same again: no-op
    with pytest.raises(RunError, match="'points' is registered .unit 'points', essential=False"):
        register_currency("points", essential=True)
    assert register_currency("medicine", essential=True).unit == "grams of medicine"
    with pytest.raises(RunError, match="'medicine' is registered"):
        register_currency("medicine")  # an essential good of scai's, said not to be one


def test_an_own_currency_is_refused_until_registered_then_fits(tmp_path):
    path = _own_table(tmp_path)
    with pytest.raises(DataError, match="value 'points': allowed: apples"):
        read_interactions(path)
    register_currency("points")
    register_currency("water", essential=True)
    hypothesis = PRESETS["essential_goods_shared"]  # delta_c ~ N(2 if essential else 0, 0.5)
    posterior = fit(read_interactions(path), hypothesis, engine="exact", num_draws=400, seed=0)
    assert posterior.data.currencies == ("points", "water")
    assert posterior.data.essential.tolist() == [0.0, 1.0]
    # each group plays one currency: the other's shift is its prior, N(2 e_c, 0.5); 400 draws
    # put its mean within 4 standard errors (0.1) of 2 e_c
    unplayed = {"points": (1, 0.0), "water": (0, 2.0)}
    for currency, (sim, mean) in unplayed.items():
        drawn = posterior.shift(currency)[:, sim]
        assert abs(float(drawn.mean()) - mean) < 4 * 0.5 / 400**0.5, currency


def test_the_flags_travel_to_a_process_that_never_registered_them(tmp_path):
    """A worker process (MCMC's chains, a sweep's cells) unpickles the layout without the
    registration a session made; a posterior file read there registers what it flags."""
    path = _own_table(tmp_path)
    register_currency("points")
    register_currency("water", essential=True)
    table = read_interactions(path)
    (tmp_path / "data.pkl").write_bytes(pickle.dumps(GroupData.from_table(table)))
    fit(table, "neutral", engine="exact", num_draws=50, seed=0).save(tmp_path / "posterior.nc")
    script = textwrap.dedent(
        f"""
        import pickle
        from scai.inference import Posterior
        from scai.models.game import CURRENCIES
        assert "water" not in CURRENCIES
        data = pickle.loads(open({str(tmp_path / "data.pkl")!r}, "rb").read())
        print(data.essential.tolist())
        posterior = Posterior.load({str(tmp_path / "posterior.nc")!r})
        print(posterior.data.currencies, CURRENCIES["water"].essential)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[0.0, 1.0]", "('points', 'water') True"]


def test_a_file_that_flags_a_currency_otherwise_is_refused(tmp_path):
    register_currency("points")
    register_currency("water", essential=True)
    table = read_interactions(_own_table(tmp_path))
    fit(table, "neutral", engine="exact", num_draws=50, seed=0).save(tmp_path / "posterior.nc")
    CURRENCIES["water"] = CURRENCIES["water"].__class__("water", "water", essential=False)
    with pytest.raises(Exception, match="'water' is essential=True in the file but"):
        Posterior.load(tmp_path / "posterior.nc")


def test_the_command_line_adds_currencies(tmp_path, capsys):
    path = str(_own_table(tmp_path))
    assert main(["validate", path]) == 1
    assert "(one of your own: register it, --add-currency NAME" in capsys.readouterr().err
    assert main(["validate", path, "--add-currency", "points", "--add-currency", "water"]) == 0
    assert "valid (" in capsys.readouterr().out
    CURRENCIES.pop("water")  # (a new session)
    for bad in ("Water", "water:vital"):
        assert main(["validate", path, "--add-currency", bad]) == 2
        assert f"{bad!r}: allowed: NAME or NAME:essential" in capsys.readouterr().err
    out = tmp_path / "fit"
    argv = ["fit", "--data", path, "--out", str(out), "--draws", "50", "--quiet"]
    assert main([*argv, "--add-currency", "water:essential"]) == 0
    assert Posterior.load(out / "posterior.nc").data.essential_flags == (False, True)
