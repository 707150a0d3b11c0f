"""Coverage by registry: every registered currency, manner and experiment is exercised by
name, so a new entry that something else was not taught about fails here, by its name
(rather than, as before, only when a random draw happened to pick it).

Registries: ``models/game.py`` ``CURRENCIES``, ``models/language.py`` ``MANNERS``,
``experiments/registry.py`` ``EXPERIMENTS``.
"""

from __future__ import annotations

import importlib
import random

import pytest

from scai.experiments.conditions import Condition, Settings
from scai.experiments.protocol import run_condition
from scai.experiments.registry import EXPERIMENTS, load
from scai.inference import fit
from scai.models import PRESETS, simulate
from scai.models.data import validate_frame
from scai.models.game import CURRENCIES
from scai.models.language import MANNERS, render_proposal, render_reply
from scai.models.simulate import transcript


@pytest.mark.parametrize("manner", MANNERS)
def test_every_manner_can_be_written(manner):
    """A manner (and tone) in the registry has a proposal and a reply for each decision: a
    new manner without them made ``scai simulate --transcript`` an internal KeyError."""
    rng = random.Random(0)
    assert "3" in render_proposal(manner, 3, 10, "apples", rng)
    assert render_reply(manner, True, rng)
    assert render_reply(manner, False, rng)


@pytest.mark.parametrize("manner", MANNERS)
def test_every_manner_simulates_and_is_transcribed(manner):
    sim = simulate(PRESETS["neutral"], policy="selfish", users=4, manner=manner, seed=1)
    assert set(sim.users["manner"]) == {manner}
    text = transcript(sim.interactions, seed=1)
    assert text.count("\n") == 2 * len(sim.interactions)


@pytest.mark.parametrize("currency", list(CURRENCIES))
def test_every_currency_simulates_validates_transcribes_and_fits(currency):
    """Each registered currency goes through the whole path by name: simulate, the table's
    validation, the transcript (its unit) and an exact fit, under a hypothesis whose currencies
    shift the norm (one shift per currency played)."""
    hyp = PRESETS["essential_goods_shared"]
    sim = simulate(hyp, policy="selfish", users=4, currency=currency, seed=2)
    assert set(validate_frame(sim.interactions)["currency"]) == {currency}
    assert CURRENCIES[currency].unit in transcript(sim.interactions)
    summary = fit(sim.interactions, hyp, engine="exact", num_draws=50).summary()
    assert f"shift[{currency}]" in set(summary["parameter"])


def test_a_condition_with_an_unknown_manner_names_it():
    """An experiment's condition with a manner not in the registry fails naming the manner
    and the ones allowed (it was ``ValueError: tuple.index(x): x not in tuple``)."""
    cond = Condition("c", "selfish", manner="snarky", users=4, save_posterior=False)
    with pytest.raises(ValueError, match=r"snarky.*allowed: " + ", ".join(MANNERS)):
        run_condition(cond, Settings(sims=2, epochs=1, seed=0), seed=0)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_registered_experiment_is_a_module_of_its_name(name):
    """The registry's other direction (``test_experiments`` checks modules -> registry): each
    entry imports, has ``main(args)``, and names itself by its key (``NAME``)."""
    module = load(name)
    assert module is importlib.import_module(EXPERIMENTS[name])
    assert callable(getattr(module, "main", None)), f"{EXPERIMENTS[name]} has no main(args)"
    assert getattr(module, "NAME", None) == name, f"{EXPERIMENTS[name]}.NAME is not {name!r}"
