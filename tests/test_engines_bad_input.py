"""Bad input to :func:`scai.inference.fit` fails with a clear error *before any inference runs*.

Every engine entry point is replaced by a function that fails the test if it is called, so a
check that only happened inside an engine (after building grids, compiling or sampling) would
be caught as well as a missing check.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

import scai.inference.exact
import scai.inference.mcmc
import scai.inference.svi
from scai.inference import ENGINES, EngineError, fit
from scai.models.data import INTERACTION_COLUMNS, DataError
from scai.models.hypotheses import PRESETS, Hypothesis

ROWS = [
    ("0", 1, 1, "u0", "u1", "apples", 10, 5, 1, "neutral", "polite"),
    ("0", 1, 2, "u1", "u0", "apples", 10, 1, 0, "rude", "neutral"),
    ("0", 1, 3, "u2", "u0", "apples", 10, 4, 1, "polite", ""),
]


def table(**change) -> pd.DataFrame:
    """A valid three-row table, with ``{column: (row_index, value)}`` changes."""
    df = pd.DataFrame(ROWS, columns=list(INTERACTION_COLUMNS))
    for column, (row, value) in change.items():
        df[column] = df[column].astype(object)
        df.loc[row, column] = value
    return df


@pytest.fixture
def no_inference(monkeypatch):
    """Make every engine fail loudly if it is reached."""

    def refuse(*args, **kwargs):
        raise AssertionError("an inference engine ran on bad input")

    monkeypatch.setattr(scai.inference.exact, "fit_exact", refuse)
    monkeypatch.setattr(scai.inference.svi, "fit_svi", refuse)
    monkeypatch.setattr(scai.inference.mcmc, "fit_mcmc", refuse)


def test_engine_guard_is_live(no_inference):
    """The guard itself works: valid input does reach the (refusing) engine."""
    for engine in ENGINES:
        with pytest.raises(AssertionError, match="engine ran"):
            fit(table(), "neutral", engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_table(no_inference, engine):
    with pytest.raises(DataError, match="no rows"):
        fit(pd.DataFrame(columns=list(INTERACTION_COLUMNS)), "neutral", engine=engine)
    with pytest.raises(DataError, match="missing column"):
        fit(pd.DataFrame(), "neutral", engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_unknown_currency(no_inference, engine):
    with pytest.raises(DataError) as err:
        fit(table(currency=(1, "bitcoin")), "neutral", engine=engine)
    (problem,) = err.value.problems
    assert (problem.row, problem.column, problem.value) == (2, "currency", "bitcoin")
    assert "apples" in problem.allowed and "medicine" in problem.allowed


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "column, value",
    [("offer", math.nan), ("offer", math.inf), ("pot", -math.inf), ("accepted", np.nan)],
)
def test_non_finite_value(no_inference, engine, column, value):
    with pytest.raises(DataError) as err:
        fit(table(**{column: (2, value)}), "neutral", engine=engine)
    assert [(p.row, p.column) for p in err.value.problems] == [(3, column)]
    assert "row 3" in str(err.value) and repr(column) in str(err.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_users_table_with_unknown_policy(no_inference, engine):
    users = pd.DataFrame(
        {
            "sim": ["0", "0", "0"],
            "user": ["u0", "u1", "u2"],
            "policy": ["selfish", "spiteful", "fair"],
            "manner": ["rude", "rude", "neutral"],
        }
    )
    with pytest.raises(DataError) as err:
        fit(table(), "neutral", engine=engine, users=users)
    (problem,) = err.value.problems
    assert (problem.row, problem.column, problem.value) == (2, "policy", "spiteful")
    assert "selfish, fair, altruistic" in problem.allowed
    assert "neutral" in str(err.value)  # names the hypothesis the policies come from


def test_unknown_engine(no_inference):
    with pytest.raises(EngineError, match=r"unknown engine 'nuts'; allowed: exact, svi, mcmc"):
        fit(table(), "neutral", engine="nuts")


def test_exact_refuses_more_than_two_latent_scalars(no_inference):
    hyp = Hypothesis(rationality_scale=0.3, shared_scale=0.5, currency_scale=0.1)
    two = table(currency=(2, "medicine"))
    with pytest.raises(EngineError) as err:
        fit(two, hyp, engine="exact")
    message = str(err.value)
    assert "'svi'" in message and "'mcmc'" in message
    # The exact engine grids what the data identify: log lam and each data currency's shift.
    assert "lam, shift[apples], shift[medicine]" in message
    # ... while svi and mcmc accept the hypothesis (and reach the refusing engine).
    for engine in ("svi", "mcmc"):
        with pytest.raises(AssertionError, match="engine ran"):
            fit(two, hyp, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_non_finite_option(no_inference, engine):
    with pytest.raises(ValueError, match="must be finite"):
        fit(table(), "neutral", engine=engine, learning_rate=math.nan)


def test_unknown_hypothesis(no_inference):
    with pytest.raises(ValueError, match="unknown hypothesis 'nihilist'"):
        fit(table(), "nihilist", engine="exact")


def test_minibatches_refused_where_users_copy_a_prototype():
    """With clones the group likelihood is no sum over users: minibatches cannot estimate it
    (Pyro's enumeration failed on the plate's scale before this check)."""
    with pytest.raises(
        EngineError, match=r"subsample_size=2 cannot be used with hypothesis 'real_agents'"
    ):
        fit(table(), "real_agents", engine="svi", subsample_size=2)


@pytest.mark.parametrize(
    "engine, option, value, allowed",
    [
        ("mcmc", "compiled", "no", "True or False"),  # a non-empty string ran compiled
        ("mcmc", "parallel", 1, "True, False or None"),
        ("svi", "jit", "yes", "True or False"),
        ("svi", "guide", "laplace", "'normal', 'mvn'"),
        ("svi", "correction", "none", "'importance', None"),
        ("svi", "init", "prior", "'laplace', 'median'"),
    ],
)
def test_flags_and_choices_are_checked_before_inference(engine, option, value, allowed):
    """(Not with ``no_inference``: the checks read the real engine's signature.) Each failed
    only inside the engine, as a plain ValueError, or not at all."""
    with pytest.raises(EngineError, match=f"{option}={value!r}.*allowed: {allowed}"):
        fit(table(), "neutral", engine=engine, **{option: value})


@pytest.mark.parametrize("option", ["action_loglik", "bounded_grids"])
def test_the_exact_engines_internal_arguments_are_not_options(option):
    """scai passes these itself (online updates, zooms); from a user a tensor of another
    shape crashed deep in the engine (``not enough values to unpack``)."""
    with pytest.raises(EngineError, match=f"unknown option '{option}'"):
        fit(table(), "neutral", engine="exact", **{option: {}})


def test_mcmc_refuses_a_hypothesis_with_nothing_continuous_to_sample():
    """One type and nothing else latent: ``pi`` is 1, and the sampler crashed on an empty
    vector (``cannot reshape array of size 0``). The exact engine and SVI give pi = 1, SVI
    without an importance warning (its draws are all the same point)."""
    import warnings

    from scai.models.policies import PolicyType

    one = Hypothesis(name="one", policies=(PolicyType("selfish"),), pi_concentration=(0.5,))
    with pytest.raises(EngineError, match="nothing continuous for MCMC to sample"):
        fit(table(), one, engine="mcmc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for engine in ("exact", "svi"):
            assert fit(table(), one, engine=engine).pi_mean().tolist() == [[1.0]]


def test_draws_of_a_site_the_hypothesis_fixes_are_asked_for_by_name():
    """``flat_draws("lam")`` where the hypothesis fixes rationality was a bare KeyError 'lam'
    (a review of the Python API): the error names the latent sites and ``lam()``."""
    from scai.inference import fit
    from scai.models.simulate import simulate

    post = fit(simulate("neutral", policy="selfish", users=3, seed=1).interactions, num_draws=10)
    with pytest.raises(KeyError, match=r"'lam' is not a latent site .*latent sites: pi.*lam\(\)"):
        post.flat_draws("lam")
    assert post.flat_draws("pi").shape == (10, 1, 3)


def test_posterior_from_draws_checks_what_it_is_given():
    """``Posterior.from_draws`` (public) took pi without its chain dimension as 10 chains of 1
    draw, pi of the wrong number of policies to a RuntimeError deep in the likelihood, pi * 5
    to type means above 1, and engine 'foo' to a file load then refused (a review)."""
    from scai.inference.errors import EngineError
    from scai.inference.posterior import Posterior
    from scai.models.data import validate_frame
    from scai.models.hypotheses import PRESETS
    from scai.models.layout import GroupData
    from scai.models.simulate import simulate

    table = validate_frame(simulate("neutral", policy="selfish", users=4, seed=1).interactions)
    data = GroupData.from_table(table)
    pi = torch.distributions.Dirichlet(torch.ones(3)).sample((2, 10, 1))
    hyp = PRESETS["neutral"]
    for draws, engine, said in (
        (
            {"pi": pi[0]},
            "mcmc",
            "pi has shape (10, 1, 3); expected [chains, draws, sim 1, policy 3]",
        ),
        ({"pi": pi[..., :2]}, "mcmc", "pi has shape (2, 10, 1, 2)"),
        ({"pi": pi * 5}, "mcmc", "pi must lie on the simplex"),
        ({"pi": pi}, "foo", "engine 'foo'; allowed: exact, svi, mcmc"),
        ({"pi": pi, "lamb": pi[..., 0]}, "mcmc", "unknown site 'lamb'"),
    ):
        with pytest.raises(EngineError, match=re.escape(said)):
            Posterior.from_draws(engine, data, hyp, table, draws)
    assert Posterior.from_draws("mcmc", data, hyp, table, {"pi": pi}).pi_mean().shape == (1, 3)


def test_a_posteriors_helpers_name_a_bad_argument():
    """``shift("blood", generator=5)`` was torch's TypeError from ``randn``;
    ``member_weights_at(torch.tensor([0]))`` with two simulations broadcast draw 0 to both,
    and an index past the draws was an IndexError (a review of the Python API)."""
    from scai.inference import fit
    from scai.models.simulate import simulate

    table = simulate("pooled", policy="selfish", users=3, sims=2, seed=1).interactions
    post = fit(table, "pooled", num_draws=10)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        post.shift("blood", generator=5)
    for bad in (torch.tensor([0]), torch.tensor([0, 10]), torch.tensor([0.0, 1.0]), [0, 1]):
        with pytest.raises(ValueError, match="a tensor of 2 whole numbers in 0..9"):
            post.member_weights_at(bad)
    both = post.member_weights_at(torch.tensor([3, 4]))
    every = post.type_weights("member")
    for bad in (999, 3, [0, 1]):  # an index dropped the draws' dimension, 999 an IndexError
        with pytest.raises(ValueError, match="draws must be a slice of the flat draws"):
            post.type_weights("member", draws=bad)
    torch.testing.assert_close(both, torch.stack([every[3, 0], every[4, 1]]))
    # a red-team's: a mask of draws passed the check (an IndexError), a backwards or text
    # slice was torch's or Python's error, a list of sites an unhashable TypeError
    with pytest.raises(ValueError, match="a tensor of 2 whole numbers in 0..9"):
        post.member_weights_at(torch.tensor([True, False]))
    for bad in (slice(None, None, -1), slice("a", None), slice(0, 5, 0), slice(0.5, 3)):
        for method in (post.type_weights, post.type_probabilities):
            with pytest.raises(ValueError, match="draws must be a slice .* whole-number bounds"):
                method(draws=bad)
    with pytest.raises(KeyError, match=r"\['pi'\] is not a latent site"):
        post.flat_draws(["pi"])


def test_what_a_posterior_returns_is_the_callers_to_change():
    """The exact engine's ``pi_mean()`` and ``type_weights()`` returned the posterior's own
    tensors (a red-team find: ``pi_mean().zero_()`` zeroed its summary, ``type_weights()
    .zero_()`` its predictive), where the other engines return new ones: now every engine's."""
    from scai.inference import fit
    from scai.models.simulate import simulate

    table = simulate("neutral", policy="selfish=0.7,altruistic=0.3", users=6, sims=2, seed=1)
    post = fit(table.interactions, "neutral", num_draws=20)
    before = (post.pi_mean(), post.summary(), post.predictive(10, "dollars"))
    for who in ("member", "new"):
        post.type_weights(who).zero_()
        post.type_weights(who, slice(0, 5)).zero_()
    post.pi_mean().zero_()
    torch.testing.assert_close(post.pi_mean(), before[0], rtol=0, atol=0)
    pd.testing.assert_frame_equal(post.summary(), before[1])
    for key, value in post.predictive(10, "dollars").items():
        torch.testing.assert_close(value, before[2][key], rtol=0, atol=0)
    assert float(post.pi_mean().sum()) == pytest.approx(2.0)


def test_a_posterior_without_its_table_and_bad_paths_are_named(tmp_path):
    """A posterior from an engine function called directly (``table=None``) crashed in
    ``update`` (TypeError), ``to_arviz`` and ``save`` (AttributeError); ``save(None)``,
    ``save(3)`` and ``load(None)`` were Python's TypeErrors, ``save("")`` said "." is a folder
    (a red-team's finds). A path as bytes is a path, as ``open`` takes it."""
    from scai.inference import online, prepare
    from scai.inference.exact import fit_exact
    from scai.inference.posterior import Posterior
    from scai.models.simulate import simulate

    table = simulate("neutral", policy="selfish", users=4, epochs=2, seed=1).interactions
    _, data, hyp = prepare(table[table.epoch == 1], "neutral")
    bare = fit_exact(data, hyp, num_draws=10)
    for call in (
        lambda: online.update(bare, table[table.epoch == 2]),
        bare.to_arviz,
        lambda: bare.save(tmp_path / "bare.nc"),
    ):
        with pytest.raises(EngineError, match="holds no interaction table .* pass table="):
            call()
    assert not (tmp_path / "bare.nc").exists()
    post = fit(table, "neutral", num_draws=10)
    for path, said in ((None, "got None"), (3, "got 3"), ("", "the path is empty")):
        with pytest.raises(EngineError, match=f"Posterior.save: .*{said}"):
            post.save(path)
        with pytest.raises(EngineError, match=f"Posterior.load: .*{said}"):
            Posterior.load(path)
    post.save(bytes(tmp_path / "bytes.nc"))
    torch.testing.assert_close(Posterior.load(tmp_path / "bytes.nc").pi_mean(), post.pi_mean())


@pytest.mark.parametrize(
    ("engine", "options", "named"),
    [
        ("mcmc", {"warmup": -1, "samples": 5}, "warmup"),
        ("mcmc", {"samples": 0}, "samples"),
        ("mcmc", {"target_accept": 1.5, "warmup": 5, "samples": 5}, "target_accept"),
        ("svi", {"learning_rate": -1.0, "max_steps": 5}, "learning_rate"),
        ("svi", {"num_draws": 0, "max_steps": 5}, "num_draws"),
        ("exact", {"num_draws": 0}, "num_draws"),
    ],
)
def test_an_engine_called_directly_checks_its_options(engine, options, named):
    """The engine functions are called directly too (the README's ``fit_mcmc(compiled=False)``,
    the benchmarks): they checked nothing, only ``fit`` did. ``fit_mcmc(warmup=-1, samples=5)``
    returned one draw per chain, ``fit_svi(learning_rate=-1.0)`` climbed the loss and returned
    its draws without a word, ``samples=0`` and ``num_draws=0`` failed in a reshape."""
    from scai.inference.fit import _engine, prepare

    _, group, hypothesis = prepare(table(), "stereotyped")
    with pytest.raises(EngineError, match=rf"^{named}: must be"):
        _engine(engine)(group, hypothesis, **options)


@pytest.mark.parametrize(
    ("hypothesis", "options", "named", "most"),
    [
        (
            PRESETS["pooled"].with_(rationality_scale=0.5),
            {"grid_points": 100_000},
            "grid_points",
            447,
        ),
        (PRESETS["pooled"].with_(rationality_scale=0.5), {"zoom_points": 200}, "zoom_points", 116),
        (PRESETS["pooled"], {"zoom_points": 100_000}, "zoom_points", 13_670),
    ],
)
def test_a_grid_beyond_the_exact_engines_budget_is_refused(hypothesis, options, named, most):
    """``grid_points`` and ``zoom_points`` are per latent scalar: with two, 100,000 asked torch
    for 80 GB and ended in a raw allocation error (10,000: 1.6 GB); with one, a window of
    ``zoom_points=100000`` on the whole lattice for 9 GB. An EngineError names the option and
    the most the budget allows, before any work."""
    with pytest.raises(EngineError, match=rf"^{named}=\d+: .* allowed here: at most {most:,}$"):
        fit(table(), hypothesis, engine="exact", **options)


def test_users_given_twice_are_refused(no_inference):
    """``fit(users=...)``: a user listed twice (two true types, or the same twice) is a
    DataError naming the rows; it was accepted and the table dropped (a red-team find)."""
    from scai.models.simulate import simulate

    sim = simulate("neutral", policy="selfish=0.5,altruistic=0.5", users=4, epochs=2, seed=4)
    twice = pd.concat([sim.users, sim.users.iloc[[2]].assign(policy="fair")], ignore_index=True)
    with pytest.raises(DataError) as err:
        fit(sim.interactions, "neutral", users=twice)
    (problem,) = err.value.problems
    assert (problem.row, problem.value) == (5, "u2")
    assert problem.allowed == "listed before, at row 3: one row per user"
    with pytest.raises(AssertionError, match="engine ran"):  # one row each: accepted
        fit(sim.interactions, "neutral", users=sim.users)
    two = simulate("neutral", policy="selfish", users=2, sims=2, seed=4)
    with pytest.raises(DataError, match=r"row 3,.*of several simulations: add a 'sim' column"):
        fit(two.interactions, "neutral", users=two.users.drop(columns="sim"))
