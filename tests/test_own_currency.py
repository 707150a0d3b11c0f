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
    assert main(["validate", path, "--add-currency", "points,water"]) == 0  # comma-separated
    CURRENCIES.pop("water")
    simulated = tmp_path / "sim.csv"
    argv = ["simulate", "--policy", "fair", "--currency", "water", "--out", str(simulated)]
    assert main(argv) == 2
    assert "unknown currency 'water'" in capsys.readouterr().err
    assert main([*argv, "--add-currency", "water:essential", "--sims", "1"]) == 0
    assert set(read_interactions(simulated)["currency"]) == {"water"}
    CURRENCIES.pop("water")
    out = tmp_path / "fit"
    argv = ["fit", "--data", path, "--out", str(out), "--draws", "50", "--quiet"]
    assert main([*argv, "--add-currency", "water:essential"]) == 0
    assert Posterior.load(out / "posterior.nc").data.essential_flags == (False, True)


def test_human_data_reads_a_currency_registered_after_import(tmp_path):
    """Human data's generic layout took its allowed currencies from the registry as it was
    when scai.models.human_data was imported: a currency registered since was refused in the
    file's currency column (though taken as the ``currency`` argument), in both reads, the
    clean one and the row by row one (a review)."""
    from scai.models.human_data import read_human_data

    lines = ["subject,trial,pot,offer,accepted,currency", "p1,1,100,50,TRUE,points"]
    path = tmp_path / "human.csv"
    path.write_text("\n".join([*lines, "p1,2,100,10,false,points"]) + "\n")
    bad = tmp_path / "bad.csv"  # a bad row: every row read one by one
    bad.write_text("\n".join([*lines, "p1,2,100,10,maybe,points"]) + "\n")
    register_currency("points")
    table = read_human_data(path).table
    assert table["currency"].tolist() == ["points", "points"]
    assert table["accepted"].tolist() == [1, 0]
    with pytest.raises(DataError) as caught:
        read_human_data(bad)
    assert [(p.row, p.column) for p in caught.value.problems] == [(2, "accepted")]


def test_the_command_line_names_its_option_for_a_currency_flagged_otherwise(tmp_path, capsys):
    """``--add-currency apples:essential`` (scai's own apples are no essential good) was told
    as ``register_currency: 'apples' is registered (unit 'apples', essential=False); got unit
    'apples', essential=True``: a function the command's user never called and a unit they
    never gave (a review)."""
    path = str(_own_table(tmp_path))
    for given, told in (("apples:essential", "apples"), ("medicine", "medicine:essential")):
        assert main(["validate", path, "--add-currency", given]) == 2
        err = capsys.readouterr().err
        assert f"--add-currency {given}: {given.split(':')[0]!r} is a currency already" in err
        assert f"give it as --add-currency {told}, or leave it out" in err
        assert "register_currency" not in err


def test_a_posterior_file_keeps_the_unit_its_currency_was_registered_with(tmp_path):
    """Reading a posterior file registered its own currency with the name as its unit: a
    session that read the file, then registered the currency as it always does (with its
    unit), was refused ('points' is registered (unit 'points', ...); got unit 'reward
    points'), though it was the fit's own definition (a review)."""
    register_currency("points", unit="reward points")
    register_currency("water", unit="litres of water", essential=True)
    table = read_interactions(_own_table(tmp_path))
    fit(table, "neutral", engine="exact", num_draws=50, seed=0).save(tmp_path / "posterior.nc")
    script = textwrap.dedent(
        f"""
        from scai.inference import Posterior
        from scai.models.game import CURRENCIES, register_currency
        Posterior.load({str(tmp_path / "posterior.nc")!r})
        print(CURRENCIES["points"].unit, CURRENCIES["water"].unit, CURRENCIES["water"].essential)
        register_currency("points", unit="reward points")
        register_currency("water", unit="litres of water", essential=True)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["reward points litres of water True"]


def test_a_currency_in_capitals_is_told_as_such_not_to_be_registered(tmp_path):
    """A table's 'Apples' was told "(one of your own: register it, --add-currency NAME ...)",
    and 'Apples' cannot be registered (a name is lower case): it is scai's apples in capitals;
    'Points' is told that a currency of one's own needs a name that can be one (a review)."""
    sim = simulate(PRESETS["neutral"], policy="fair", users=4, sims=2, seed=3)
    table = sim.interactions.assign(
        currency=sim.interactions["sim"].map({"0": "Apples", "1": "Points"})
    )
    path = tmp_path / "capitals.csv"
    write_interactions(table, path)
    with pytest.raises(DataError) as caught:
        read_interactions(path)
    told = {p.value: p.allowed for p in caught.value.problems}
    assert told["Apples"].endswith("(currency names are lower case: 'Apples' is 'apples')")
    assert "under a name of lower case letters" in told["Points"]
