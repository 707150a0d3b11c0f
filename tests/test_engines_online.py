"""Online updating: conditioning on the data epoch by epoch gives the posterior of all the data
at once (exact engine: to 1e-6, the two differ only in float rounding)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from scai.inference import fit, online
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.simulate import simulate

EPOCHS = 3


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Two groups, three epochs; 8 users but 4 games per epoch, so users join in later epochs,
    and group "1" plays no game in epoch 1 (it first appears in an update)."""
    sim = simulate(
        PRESETS["neutral"],
        policy="selfish=0.4,fair=0.3,altruistic=0.3",
        users=8,
        rounds=4,
        epochs=EPOCHS,
        sims=2,
        seed=21,
        pot_range=(2, 9),
    )
    df = sim.interactions
    return df[~((df["sim"] == "1") & (df["epoch"] == 1))].reset_index(drop=True)


def assert_same(a, b, atol=1e-6):
    assert a.data.sim_ids == b.data.sim_ids
    assert a.data.user_ids == b.data.user_ids
    torch.testing.assert_close(a.pi_mean(), b.pi_mean(), rtol=0, atol=atol)
    torch.testing.assert_close(a.policy_probs, b.policy_probs, rtol=0, atol=atol)
    torch.testing.assert_close(a.manner_probs, b.manner_probs, rtol=0, atol=atol)
    ev_a = torch.tensor(a.diagnostics["log_evidence"])
    ev_b = torch.tensor(b.diagnostics["log_evidence"])
    torch.testing.assert_close(ev_a, ev_b, rtol=1e-7, atol=1e-6)
    # the same seed resamples (almost always) the same grid points from the same weights
    assert set(a.draws) == set(b.draws)
    for site in a.draws:
        assert (a.draws[site] != b.draws[site]).float().mean() < 0.01, site


@pytest.mark.parametrize(
    "hypothesis",
    [PRESETS["stereotyped"], Hypothesis(name="latent_lam", rationality_scale=0.3)],
    ids=["stereotyped", "latent_lam"],
)
def test_epoch_by_epoch_equals_all_at_once(table, hypothesis):
    first = table[table["epoch"] == 1]
    post = fit(first, hypothesis, engine="exact", seed=5)
    assert post.data.sim_ids == ["0"]
    for epoch in range(2, EPOCHS + 1):
        post = online.update(post, table[table["epoch"] == epoch])
        seen = table[table["epoch"] <= epoch]
        whole = fit(seen, hypothesis, engine="exact", seed=5)
        assert_same(post, whole)
    assert post.data.sim_ids == ["0", "1"]
    assert len(post.table) == len(table)
    # the data did move the posterior: it is not the prior's
    assert (post.pi_mean() - 1 / 3).abs().max() > 0.05


@pytest.mark.parametrize("hypothesis", [PRESETS["stereotyped"], PRESETS["pooled"]])
def test_an_update_without_new_interactions_keeps_the_posterior(table, hypothesis):
    # an epoch in which nothing was played: the same data, the same posterior (the exact
    # update used to score the empty table and fail inside torch)
    post = fit(table, hypothesis, engine="exact", seed=5)
    same = online.update(post, table.iloc[:0])
    assert_same(same, post, atol=0)


def test_an_update_names_its_own_rows_and_reads_a_path(table, tmp_path):
    """A bad row of the new interactions is reported at its row in that table (it was counted
    after the previous table's rows), and a CSV path is read as ``fit`` reads one."""
    from scai.models.errors import DataError
    from scai.models.writing import write_csv_atomic

    first, second = table[table.epoch == 1], table[table.epoch == 2].reset_index(drop=True)
    post = fit(first, "neutral")
    bad = second.copy()
    bad.loc[2, "offer"] = 999
    with pytest.raises(DataError) as err:
        online.update(post, bad)
    assert "new_interactions" in str(err.value) and "row 3, column 'offer'" in str(err.value)
    write_csv_atomic(second, tmp_path / "second.csv")
    from_path = online.update(post, tmp_path / "second.csv")
    assert torch.equal(from_path.pi_mean_exact, online.update(post, second).pi_mean_exact)
    with pytest.raises(DataError, match="expected a DataFrame or a CSV path"):
        online.update(post, 5)


@pytest.mark.parametrize("name", ["stereotyped", "pooled"])
def test_an_svi_update_that_brings_a_new_group_fits_it_afresh(table, name):
    """The SVI guide has a block per group and a shift per currency: a warm start from a fit
    without group "1" cannot hold it (it crashed: ``Sizes of tensors must match``, ``shape
    '[2, -1]' is invalid``). Such an update starts as a fresh fit of all the data would,
    with the same seed: the same posterior."""
    first = table[table["sim"] == "0"]
    updated = online.update(fit(first, name, engine="svi"), table[table["sim"] == "1"])
    fresh = fit(pd.concat([first, table[table["sim"] == "1"]]), name, engine="svi")
    assert updated.data.sim_ids == ["0", "1"]
    assert updated.diagnostics["start"] == fresh.diagnostics["start"] != "warm"
    torch.testing.assert_close(updated.pi_mean(), fresh.pi_mean(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["stereotyped", "pooled"])
def test_an_svi_update_of_the_same_groups_starts_from_the_previous_guide(table, name):
    """The next epoch of the same groups and currencies: warm, not refused as a new group's."""
    first = table[table["epoch"] < EPOCHS]
    previous = fit(first, name, engine="svi")
    updated = online.update(previous, table[table["epoch"] == EPOCHS])
    assert updated.data.sim_ids == previous.data.sim_ids
    assert updated.diagnostics["start"] == "warm"


def test_an_svi_update_leaves_the_previous_posterior_as_it_was(table):
    """The optimiser updates the guide's tensors in place: they are the previous posterior's
    no more, so updating it twice gives the same posterior and its guide state is unchanged.
    (When the store held the previous fit's own tensors, each update moved them on and gave
    another posterior.)"""
    first = table[table["epoch"] < EPOCHS]
    new = table[table["epoch"] == EPOCHS]
    hypothesis = PRESETS["neutral"].with_(rationality_scale=0.3)
    previous = fit(first, hypothesis, engine="svi", seed=3, num_draws=300)
    before = {k: v.clone() for k, v in previous.engine_state["params"].items()}
    once = online.update(previous, new)
    twice = online.update(previous, new)
    assert once.diagnostics["start"] == "warm" and once.diagnostics["steps"] > 1
    for name, value in previous.engine_state["params"].items():
        assert torch.equal(value, before[name]), name
    assert torch.equal(once.pi_mean(), twice.pi_mean())
    assert torch.equal(once.policy_probs, twice.policy_probs)


def test_an_svi_warm_start_must_be_a_posterior_of_the_same_sites(table):
    from scai.inference.errors import EngineError

    first = fit(table, "neutral", engine="svi")
    with pytest.raises(EngineError, match="warm_start must be a Posterior"):
        fit(table, "neutral", engine="svi", warm_start="x")
    with pytest.raises(EngineError, match="latent sites"):
        fit(table, "pooled", engine="svi", warm_start=first)


def test_an_updates_options_are_checked_and_used(table):
    """``update`` checks its options as ``fit`` does and passes them on: the exact update
    dropped them (``num_draws=50`` gave 1,000 draws, a misspelt option went unseen) and bad
    values reached the engines (MCMC's ``samples=-3`` failed in a reshape)."""
    from scai.inference.errors import EngineError

    first, new = table[table["epoch"] < EPOCHS], table[table["epoch"] == EPOCHS]
    previous = fit(first, "neutral")
    assert online.update(previous, new, num_draws=50).n_draws == 50
    with pytest.raises(EngineError, match="unknown option 'bogus' for engine 'exact'"):
        online.update(previous, new, bogus=1)
    with pytest.raises(EngineError, match="num_draws: must be a whole number from 1"):
        online.update(previous, new, num_draws=0)
    with pytest.raises(EngineError, match="warm_start is not an option here"):
        online.update(fit(first, "neutral", engine="svi", num_draws=20), new, warm_start=None)


@pytest.mark.parametrize(
    ("before", "then"),
    [({"max_steps": 150}, {"min_steps": 400}), ({"min_steps": 400}, {"max_steps": 150})],
)
def test_an_svi_updates_step_range_is_checked_with_the_previous_settings(table, before, then):
    """``fit`` refuses ``min_steps`` above ``max_steps`` (SVI would run ``max_steps`` without
    one convergence check); ``update`` compared an option only with ``fit``'s defaults, not
    with the previous fit's settings it keeps: ``update(fit(..., max_steps=150), new,
    min_steps=400)`` ran 150 steps unchecked (a ConvergenceWarning after the run). Also
    ``update(fit(..., min_steps=400), new, max_steps=150)``."""
    from scai.inference.errors import EngineError

    first, new = table[table["epoch"] < EPOCHS], table[table["epoch"] == EPOCHS]
    previous = fit(first, "neutral", engine="svi", num_draws=20, correction=None, **before)
    with pytest.raises(EngineError, match="min_steps=400 is above max_steps=150"):
        online.update(previous, new, **then)


def test_an_svi_updates_step_range_is_the_settings_it_runs_with(table, monkeypatch):
    """An update keeps the previous fit's ``max_steps`` where it gives none: ``min_steps=4000``
    over a fit of ``max_steps=5000`` runs 4,000 to 5,000 steps, and was refused with
    "min_steps=4000 is above max_steps=3000" (``fit``'s default, not the update's)."""
    first, new = table[table["epoch"] < EPOCHS], table[table["epoch"] == EPOCHS]
    previous = fit(first, "neutral", engine="svi", num_draws=20, correction=None, max_steps=5000)
    ran = {}
    monkeypatch.setattr(online, "fit_svi", lambda *args, **settings: ran.update(settings))
    online.update(previous, new, min_steps=4000)
    assert (ran["min_steps"], ran["max_steps"]) == (4000, 5000), ran


def test_an_svi_update_without_the_correction_drops_the_previous_proposal_draws(table, monkeypatch):
    """``proposal_draws`` with ``correction=None`` is refused (it would be ignored). An update
    of a corrected fit of ``proposal_draws=3000`` with ``correction=None`` kept the previous
    ``proposal_draws`` and was refused, its advice "leave proposal_draws out" for an option
    the caller never gave. The previous fit's proposals go with its correction."""
    first, new = table[table["epoch"] < EPOCHS], table[table["epoch"] == EPOCHS]
    previous = fit(first, "neutral", engine="svi", num_draws=20, max_steps=300, proposal_draws=3000)
    post = online.update(previous, new, correction=None)
    assert post.settings["correction"] is None and post.settings["proposal_draws"] is None
    ran = {}
    monkeypatch.setattr(online, "fit_svi", lambda *args, **settings: ran.update(settings))
    online.update(previous, new)  # the correction kept, and its proposals
    assert ran["correction"] == "importance" and ran["proposal_draws"] == 3000, ran


def test_an_updates_draws_must_fit_in_memory(table, monkeypatch):
    """As ``fit``'s: the exact update passes ``num_draws`` on now, so a number of draws that
    would not fit is refused before any work, naming the option."""
    import scai.models.memory as memory
    from scai.inference.errors import EngineError
    from scai.inference.fit import BYTES_PER_DRAW_AND_SIM, DRAWS_SHARE

    first, new = table[table["epoch"] < EPOCHS], table[table["epoch"] == EPOCHS]
    previous = fit(first, "neutral")
    need = 100_000 * 2 * BYTES_PER_DRAW_AND_SIM  # two groups
    monkeypatch.setattr(memory, "available_memory", lambda: int(need / DRAWS_SHARE * 0.9))
    with pytest.raises(EngineError, match="num_draws"):
        online.update(previous, new, num_draws=100_000)
    assert online.update(previous, new, num_draws=1_000).n_draws == 1_000


def test_an_exact_update_grids_as_a_refit_does():
    """A one-group exact fit recorded the grid sizes it chose for its own latent scalars as if
    given, and an update adding a group with more scalars was gridded at them (pooled, six
    users: 7.1 s against a refit's 0.15 s; essential_goods_shared, 30 users: 8,127 grid points
    against 452). The settings keep what was given; the update grids as a refit."""
    hyp = PRESETS["pooled"]
    one = simulate(hyp, policy="selfish=0.7,altruistic=0.3", users=6, epochs=1, seed=3,
                   currency="dollars").interactions  # fmt: skip
    two = simulate(hyp, policy="selfish=0.7,altruistic=0.3", users=6, epochs=1, seed=4,
                   currency="medicine").interactions.assign(epoch=2)  # fmt: skip
    first = fit(one, hyp, engine="exact")
    assert first.settings["grid_points"] is None and first.settings["zoom_points"] is None
    updated = online.update(first, two)
    refit = fit(pd.concat([one, two], ignore_index=True), hyp, engine="exact")
    assert updated.diagnostics["grid_size"] == refit.diagnostics["grid_size"]
    assert torch.allclose(updated.pi_mean(), refit.pi_mean(), atol=1e-6)


def test_update_takes_fits_table_options_and_tells_duplicates_at_their_rows(table, monkeypatch):
    """``update`` refused ``max_memory`` and ``strict`` although its own messages named them,
    told a game repeated in the new table at the combined table's row (row 10 for its row 2),
    said nothing useful for a previous that is no posterior, and skipped the memory check of
    the users' likelihoods per draw that ``fit`` makes."""
    import warnings

    from scai.inference.errors import EngineError
    from scai.models import memory
    from scai.models.errors import DataError, DuplicateGamesWarning

    first_epoch = table[table["epoch"] == 1].reset_index(drop=True)
    second = table[table["epoch"] == 2].reset_index(drop=True)
    previous = fit(first_epoch, "neutral", engine="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        online.update(previous, second, max_memory=2 * 10**9)
    twice = pd.concat([second.iloc[:1], second], ignore_index=True)  # its rows 1 and 2 alike
    with pytest.warns(DuplicateGamesWarning, match=r"row 2 = row 1") as caught:
        online.update(previous, twice)
    assert len([w for w in caught if issubclass(w.category, DuplicateGamesWarning)]) == 1
    with pytest.raises(DataError, match="row 2"):
        online.update(previous, twice, strict=True)
    with pytest.warns(DuplicateGamesWarning, match=r"game\(s\) of previous's table again"):
        online.update(previous, first_epoch)  # the first epoch given again
    with pytest.raises(DataError, match=r"game\(s\) of previous's table again"):
        online.update(previous, first_epoch, strict=True)
    # given again with its tones read anew or emptied (--tones none): the same games, which
    # were counted twice without a word, even under strict
    for tones in ("", "rude"):
        retold = first_epoch.assign(proposer_tone=tones, responder_tone="")
        with pytest.warns(DuplicateGamesWarning, match=r"4 game\(s\) of previous's table again"):
            online.update(previous, retold)
        with pytest.raises(DataError, match="row 1 = previous's row 1"):
            online.update(previous, retold, strict=True)
    doubled = pd.concat([first_epoch.iloc[:1], first_epoch], ignore_index=True)
    with pytest.warns(DuplicateGamesWarning):  # told once, at its own fit
        own = fit(doubled, "neutral", engine="exact")
    with warnings.catch_warnings():  # previous's own repeats are not the new table's
        warnings.simplefilter("error", DuplicateGamesWarning)
        online.update(own, second)
    with pytest.raises(EngineError, match="previous must be a Posterior.*got str"):
        online.update("fit/posterior.nc", second)
    noisy = fit(first_epoch, Hypothesis().with_(rationality_scale=0.3), engine="exact")
    monkeypatch.setattr(memory, "available_memory", lambda: 200_000)
    with pytest.raises(EngineError, match="each user's likelihood under each type per draw"):
        online.update(noisy, second)


def test_an_update_of_a_fit_with_read_tones_warns_of_unread_text(table):
    """A fit whose tones a reader read (its hypothesis carries the reader's confusion), updated
    with new rows whose text was not read, fitted those messages as unheard without a word."""
    import warnings

    from scai.models.errors import TableWarning
    from scai.models.tone_reader import apply_tones, default_reader, read_tones

    texts = table.assign(
        proposer_text="For the pot, I keep most. Take it or leave it, fool.",
        responder_text="Reject. Nice try, loser.",
        proposer_tone="",
        responder_tone="",
    )
    first = texts[texts["epoch"] == 1].reset_index(drop=True)
    second = texts[texts["epoch"] == 2].reset_index(drop=True)
    read, hypothesis = apply_tones(first, PRESETS["stereotyped"], "read")
    previous = fit(read, hypothesis, engine="exact")
    n = 2 * len(second)
    with pytest.warns(TableWarning, match=rf"{n} message\(s\) with text and no tone"):
        online.update(previous, second)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TableWarning)
        online.update(previous, read_tones(second, default_reader()))


def test_an_update_of_a_fit_without_tones_warns_of_the_new_tones(table):
    """``scai fit --tones none`` empties the tones and its file cannot say so: an update of it
    with new games that carry tones scored them without a word (the posterior then heard
    tones in one epoch and not in the other)."""
    import warnings

    from scai.models.errors import TableWarning

    first = table[table["epoch"] == 1].reset_index(drop=True)
    second = table[table["epoch"] == 2].reset_index(drop=True)
    silent = first.assign(proposer_tone="", responder_tone="")
    previous = fit(silent, "stereotyped", engine="exact")
    heard = int((second["proposer_tone"] != "").sum() + (second["responder_tone"] != "").sum())
    assert heard > 0
    with pytest.warns(TableWarning, match=rf"{heard} tone\(s\) where previous's table has none"):
        online.update(previous, second)
    with warnings.catch_warnings():  # the same games without tones, or a fit that heard them
        warnings.simplefilter("error", TableWarning)
        online.update(previous, second.assign(proposer_tone="", responder_tone=""))
        online.update(fit(first, "stereotyped", engine="exact"), second)
        # a hypothesis that ties no manner to a type: tones change no posterior of its
        online.update(fit(silent, "neutral", engine="exact"), second)


def test_an_epoch_with_no_games_is_the_same_as_a_header_alone_or_an_empty_frame(table, tmp_path):
    """An empty DataFrame was an epoch with no games (the same posterior), the same epoch
    as a CSV with its header alone a DataError ('no rows'); both are now the same update.
    A header alone is still no table to fit, nor one for scai validate."""
    from scai.models.data import INTERACTION_COLUMNS, read_interactions
    from scai.models.errors import DataError

    previous = fit(table[table["epoch"] == 1].reset_index(drop=True), "neutral", engine="exact")
    header = tmp_path / "epoch2.csv"
    header.write_text(",".join(INTERACTION_COLUMNS) + "\n")
    from_csv = online.update(previous, header)
    from_frame = online.update(previous, table.iloc[:0])
    assert len(from_csv.table) == len(previous.table)
    assert torch.equal(from_csv.pi_mean(), previous.pi_mean())
    assert torch.equal(from_csv.pi_mean(), from_frame.pi_mean())
    with pytest.raises(DataError, match="no rows"):
        read_interactions(header)
    with pytest.raises(DataError, match="no rows"):
        fit(header, "neutral", engine="exact")


def test_an_update_on_a_coarse_lattice_warns_as_fit_does(table):
    """``fit(..., max_simplex_points=3)`` warns that the lattice is too coarse for its prior;
    ``update(..., max_simplex_points=3)`` fitted on it without a word (a red-team find)."""
    import warnings

    from scai.inference.diagnostics import DiagnosticWarning

    first = table[table["epoch"] == 1]
    previous = fit(first, "neutral", engine="exact")
    with pytest.warns(DiagnosticWarning, match=r"simplex lattice \(3 points for 3 types\)"):
        fit(first, "neutral", engine="exact", max_simplex_points=3)
    with pytest.warns(DiagnosticWarning, match=r"simplex lattice \(3 points for 3 types\)"):
        online.update(previous, table[table["epoch"] == 2], max_simplex_points=3)
    with warnings.catch_warnings():  # the default lattice: nothing to say
        warnings.simplefilter("error", DiagnosticWarning)
        online.update(previous, table[table["epoch"] == 2])


def test_an_svi_updates_unknown_option_is_told_without_warm_start(table):
    """An SVI update's unknown option listed ``warm_start`` as allowed, and passing it was then
    refused ("not an option here"; a red-team find): the list leaves it out."""
    from scai.inference.errors import EngineError

    previous = fit(table[table["epoch"] == 1], "neutral", engine="svi", max_steps=20, seed=0)
    with pytest.raises(EngineError, match="unknown option 'bogus' for engine 'svi'") as caught:
        online.update(previous, table[table["epoch"] == 2], bogus=1)
    assert "max_steps" in str(caught.value) and "warm_start" not in str(caught.value)
    with pytest.raises(EngineError, match="warm_start is not an option here"):
        online.update(previous, table[table["epoch"] == 2], warm_start=previous)


def test_an_update_as_fitted_gives_the_table_a_fit_of_all_the_games_validates(table):
    """``update_as_fitted`` (the protocol's) lays out the two validated tables together
    without validating the previous rows again: the table (values, dtypes, row labels) is the
    one ``fit`` gets from all the games, the posterior ``update``'s, and the table owns its
    arrays even with no new rows. A new text column, absent from the previous table, is
    validated together: the previous rows' texts empty. ``update`` validates the previous
    rows, which their holder can edit (a review: an offer above the pot went through)."""
    from scai.models.data import validate_frame
    from scai.models.errors import DataError

    first, second = table[table.epoch == 1], table[table.epoch == 2]
    previous = fit(first, "neutral", engine="exact")
    post = online.update_as_fitted(previous, second)
    pd.testing.assert_frame_equal(post.table, validate_frame(pd.concat([first, second])))
    assert torch.equal(post.pi_mean_exact, online.update(previous, second).pi_mean_exact)
    same = online.update_as_fitted(previous, second.iloc[:0])
    offers = previous.table["offer"].to_numpy().copy()
    same.table["offer"].array[0] = 99  # a write into the update's table, not previous's
    assert (previous.table["offer"].to_numpy() == offers).all()
    texts = online.update_as_fitted(previous, second.assign(proposer_text="hello"))
    assert texts.table["proposer_text"].tolist() == [""] * len(first) + ["hello"] * len(second)
    previous.table.loc[0, "offer"] = previous.table.loc[0, "pot"] + 50
    with pytest.raises(DataError, match="must be at most the pot"):
        online.update(previous, second)
