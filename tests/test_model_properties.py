"""Property-based tests (the Hypothesis library) of the model's mathematics: symmetries of the
density and of the exact engine that hold for any data, checked on generated tables, groups and
parameters rather than on a few fixed examples.

* Normalisation: every type's offers sum to 1 over ``0..pot`` in the float32 the engines build
  their tables in, for any pot, utility, currency shift, lapse and rationality the hypothesis
  bounds allow; the posterior's type probabilities and its predictive are distributions.
* Exchangeability: the order of a table's rows and the names of its users are not data.
* Relabelling: listing the policy types in another order permutes the posterior of ``pi``.
* Independence: each simulation's posterior is its own (fitted together or alone, copied).
* Splitting: the exact fit on ``A`` updated with ``B`` is the fit on ``A`` and ``B``.
* One density: on random tables the hand-marginalised density is Pyro's enumerated one, its
  NumPy backend equals its torch reference, and doubling the games or the users doubles the
  log-likelihood where the model says it must.

Every test runs on fixed examples (``derandomize=True``, no example database), so a failure is
the same on every run and machine.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
from fixed_examples import SETTINGS, quietly
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from small_groups import RUDE_AS_NEUTRAL

from scai.inference import fit
from scai.inference.exact import fit_exact
from scai.inference.online import update
from scai.inference.svi import default_dtype, float64_default
from scai.models import PRESETS, GroupData, Hypothesis, simulate, validate_frame
from scai.models.data import INTERACTION_COLUMNS
from scai.models.density import MarginalDensity
from scai.models.game import MAX_POT
from scai.models.hypotheses import BOUNDS
from scai.models.language import TONES
from scai.models.model import MAX_PLATE_NESTING, social_contract_model
from scai.models.policies import action_tables

#: Hypotheses the exact engine fits in well under a second on the small groups below: one of
#: each kind of latent site it grids (none, a stereotype, a currency shift, the rationality).
QUICK = {
    "neutral": PRESETS["neutral"],
    "stereotyped": PRESETS["stereotyped"],
    "pooled": PRESETS["pooled"],
    "latent_rationality": PRESETS["neutral"].with_(rationality_scale=0.5),
}
#: The largest rationality a hypothesis reaches: the bound, with a latent one (scale 3) 6 prior
#: sd above it, where the exact engine's grid ends (models/hypothesis_bounds.py).
MAX_LAM = BOUNDS["rationality"][1] * math.exp(6 * BOUNDS["rationality_scale"][1])


def float32_default():
    """torch's default dtype float32 for the block (what the engines build action tables in)."""
    return default_dtype(torch.float32)


def exact(table, hypothesis) -> object:
    return quietly(fit, table, hypothesis, engine="exact", num_draws=20)


def evidence(posterior) -> np.ndarray:
    return np.array(posterior.diagnostics["log_evidence"])


def users_table(posterior) -> pd.DataFrame:
    """Each user's type probabilities, indexed by ``(sim, user)`` in sorted order."""
    return posterior.policy_table().set_index(["sim", "user"]).sort_index()


def small_group(hypothesis: Hypothesis, seed: int, sims: int = 2) -> pd.DataFrame:
    """A mixed group of 4 users, 6 games each simulation, in dollars and medicine."""
    names = hypothesis.policy_names
    return quietly(
        simulate,
        hypothesis,
        policy=f"{names[0]}=0.5,{names[-1]}=0.5",
        users=4,
        rounds=6,
        sims=sims,
        currency=["dollars", "medicine"][:sims],
        seed=seed,
    ).interactions


# -- normalisation ----------------------------------------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(
    w=st.floats(*BOUNDS["w"]),
    alpha=st.floats(*BOUNDS["alpha"]),
    beta=st.floats(*BOUNDS["beta"]),
    log_lam=st.floats(math.log(BOUNDS["rationality"][0]), math.log(MAX_LAM)),
    shift=st.floats(-950.0, 950.0),
    lapse=st.one_of(st.just(0.0), st.floats(1e-6, BOUNDS["lapse"][1])),
    pot=st.integers(1, MAX_POT),
)
@example(w=0.0, alpha=0.0, beta=0.0, log_lam=math.log(MAX_LAM), shift=0.0, lapse=0.0, pot=2)
@example(w=2.0, alpha=0.0, beta=0.0, log_lam=math.log(4.0), shift=0.5, lapse=0.0, pot=820)
def test_offers_sum_to_one_in_float32_wherever_the_bounds_allow(
    w, alpha, beta, log_lam, shift, lapse, pot
):
    """``P(offer | type, pot)`` is a distribution over ``0..pot`` (``-inf`` beyond), and the
    acceptance log-odds are numbers, for every utility, shift, lapse and rationality a
    hypothesis allows, in the float32 every engine's tables are in. A softmax normalised as
    ``x - logsumexp(x)`` rounds its normaliser to the float32 spacing of ``lam * E[U]``: a
    selfish proposer's two best offers of a pot of 2 (tied) at the largest rationality each
    had probability 1 (the offers summed to 2, ``log 2`` nats too much per such offer), and
    altruists at the default rationality summed to ``1 + 4.5e-4`` on pots near 800."""
    with float32_default():
        tables = action_tables(
            torch.tensor([w]),
            torch.tensor([alpha]),
            torch.tensor([beta]),
            torch.tensor([pot]),
            torch.tensor(math.exp(log_lam)),
            torch.tensor(shift),
            lapse=torch.tensor(lapse) if lapse else None,
        )
        offer_logp = tables.offer_logp[0, 0]
        assert offer_logp.dtype == torch.float32
    assert (offer_logp[pot + 1 :] == -torch.inf).all()
    assert not offer_logp[: pot + 1].isnan().any()
    assert float(offer_logp[: pot + 1].double().exp().sum()) == pytest.approx(1.0, abs=1e-5)
    assert not tables.accept_logit[0, 0, : pot + 1].isnan().any()


def test_a_tie_of_the_best_offers_at_the_largest_rationality_keeps_the_posterior():
    """Regression (the float32 softmax above): four selfish users on pots of 2, under the
    latent-rationality corner (rationality 1000, scale 3). Their two best offers tie, so
    no rationality lets either take more than half; with the offers summing to 2 in float32
    the posterior put 9% on rationalities above 1e7 (0.05% in float64) and its predictive
    offers of a pot of 2 summed to 1.09. The float32 fit is the float64 one."""
    hypothesis = Hypothesis(name="latent_corner", rationality=1e3, rationality_scale=3.0)
    table = quietly(
        simulate,
        hypothesis.with_(rationality_scale=0.0),
        policy="selfish",
        users=4,
        rounds=4,
        epochs=2,
        seed=2,
        pot_range=(2, 2),
    ).interactions
    fits = {}
    for dtype, default in (("float32", float32_default), ("float64", float64_default)):
        with default():
            fits[dtype] = quietly(fit, table, hypothesis, engine="exact", num_draws=400)
    offers = fits["float32"].predictive(2, "dollars")["offer_probs"]
    assert float(offers.sum()) == pytest.approx(1.0, abs=1e-5)
    assert evidence(fits["float32"]) == pytest.approx(evidence(fits["float64"]), abs=1e-4)
    lam = {dtype: post.lam().double() for dtype, post in fits.items()}
    assert float((lam["float32"] > 1e7).double().mean()) < 0.01
    assert float(lam["float32"].log().mean()) == pytest.approx(
        float(lam["float64"].log().mean()), abs=1e-3
    )


CORNERS = {
    "flat": Hypothesis(name="flat", rationality=BOUNDS["rationality"][0]),
    "steep_latent": Hypothesis(name="steep_latent", rationality=1e3, rationality_scale=3.0),
    "lapse_at_bound": Hypothesis(name="lapse_at_bound", lapse=BOUNDS["lapse"][1]),
    "learned_lapse": Hypothesis(name="learned_lapse", lapse_prior=(0.01, 0.01)),
    "shifted": PRESETS["essential_goods_shared"],
}


@pytest.mark.parametrize("name", list(CORNERS))
def test_the_posteriors_probabilities_are_distributions_at_the_bounds(name):
    """At the hypotheses' corners (rationality at either bound, latent up to 6.6e10, the
    lapse at its bound or learned from a U-shaped prior, a currency shift), every user's type
    probabilities, the group's ``pi`` and the assistant's type weights sum to 1, and the
    predictive offers sum to 1 over ``0..pot`` with acceptances in [0, 1], for the smallest,
    a small even and the largest pot, in a currency seen and in unseen ones."""
    hypothesis = CORNERS[name]
    table = quietly(
        simulate, hypothesis, policy="selfish=0.5,fair=0.5", users=4, rounds=4, seed=2
    ).interactions
    posterior = exact(table, hypothesis)
    for probs in (
        posterior.policy_probs,
        posterior.pi_mean(),
        posterior.type_weights("member"),
        posterior.type_weights("new"),
    ):
        assert ((probs >= 0) & (probs <= 1)).all()
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]), atol=1e-5, rtol=0)
    for pot in (1, 2, MAX_POT):
        for currency in ("dollars", "medicine", "cents"):
            predicted = posterior.predictive(pot, currency)
            offers, accepts = predicted["offer_probs"], predicted["accept_probs"]
            assert offers.shape[-1] == pot + 1 and (offers >= 0).all()
            assert float(offers.double().sum()) == pytest.approx(1.0, abs=1e-5)
            assert ((accepts >= 0) & (accepts <= 1)).all()


# -- exchangeability, relabelling, independence -----------------------------------------------


@settings(max_examples=8, **SETTINGS)
@given(
    name=st.sampled_from(list(QUICK)),
    seed=st.integers(0, 50),
    order=st.randoms(use_true_random=False),
)
def test_the_exact_fit_ignores_row_order_and_user_names(name, seed, order):
    """The users are exchangeable and a table is a set of games: shuffling its rows and
    renaming its users (a bijection) leaves each simulation's log evidence and posterior mean
    of ``pi`` and each user's type probabilities (looked up by its new name) unchanged."""
    hypothesis = QUICK[name]
    table = small_group(hypothesis, seed)
    users = sorted(set(table["proposer"]) | set(table["responder"]))
    names = [f"p{i}" for i in range(len(users))]
    order.shuffle(names)
    rename = dict(zip(users, names, strict=True))
    changed = table.sample(frac=1, random_state=order.randrange(2**31)).reset_index(drop=True)
    changed["proposer"] = changed["proposer"].map(rename)
    changed["responder"] = changed["responder"].map(rename)
    before, after = exact(table, hypothesis), exact(changed, hypothesis)
    sims = [after.data.sim_ids.index(sim) for sim in before.data.sim_ids]  # (by appearance)
    np.testing.assert_allclose(evidence(after)[sims], evidence(before), rtol=0, atol=1e-9)
    torch.testing.assert_close(after.pi_mean()[sims], before.pi_mean(), rtol=0, atol=1e-6)
    renamed = users_table(before).rename(index=rename, level="user").sort_index()
    pd.testing.assert_frame_equal(users_table(after), renamed, atol=1e-6, rtol=0)


@settings(max_examples=6, **SETTINGS)
@given(
    seed=st.integers(0, 50),
    permutation=st.permutations(range(3)),
    concentration=st.lists(st.floats(0.1, 5.0), min_size=3, max_size=3),
)
def test_relabelling_the_policy_types_permutes_the_exact_posterior(
    seed, permutation, concentration
):
    """Nothing in the model depends on the order in which the types are listed: listing them
    (with their Dirichlet concentrations, here unequal) in another order permutes the
    posterior mean of ``pi`` and every user's type probabilities the same way, and leaves the
    log evidence (a sum over the lattice of ``pi``, which must be closed under the
    permutation) unchanged."""
    hypothesis = PRESETS["stereotyped"].with_(pi_concentration=tuple(concentration))
    relabelled = hypothesis.with_(
        policies=tuple(hypothesis.policies[i] for i in permutation),
        pi_concentration=tuple(concentration[i] for i in permutation),
    )
    table = small_group(hypothesis, seed, sims=1)
    before, after = exact(table, hypothesis), exact(table, relabelled)
    back = list(np.argsort(permutation))
    np.testing.assert_allclose(evidence(after), evidence(before), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(after.pi_mean()[:, back], before.pi_mean(), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        after.policy_probs[..., back], before.policy_probs, rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("name", list(QUICK))
def test_each_simulation_is_fitted_as_if_alone(name):
    """The simulations share no latent site: fitted together, each has the log evidence and
    posterior of ``pi`` it has alone, and a copy of a simulation under another id has the
    original's (with a latent scalar the engine grids each simulation on its own grid; without,
    on one lattice for all)."""
    hypothesis = QUICK[name]
    table = small_group(hypothesis, seed=3)
    copied = pd.concat([table, table[table["sim"] == "0"].assign(sim="copy")], ignore_index=True)
    together = exact(copied, hypothesis)
    for i, sim in enumerate(together.data.sim_ids):
        source = "0" if sim == "copy" else sim
        alone = exact(table[table["sim"] == source].reset_index(drop=True), hypothesis)
        assert evidence(together)[i] == pytest.approx(evidence(alone)[0], abs=1e-9)
        torch.testing.assert_close(together.pi_mean()[i], alone.pi_mean()[0], rtol=0, atol=1e-6)


def test_a_user_who_never_played_is_a_draw_from_pi():
    """A listed user with no games adds no evidence, and the exact posterior of its type is
    the posterior mean of ``pi`` (its type is a draw from ``pi``, and nothing else is known)."""
    hypothesis = PRESETS["stereotyped"]
    table = validate_frame(small_group(hypothesis, seed=3, sims=1))
    played = GroupData.from_table(table)
    listed = GroupData.from_table(table, users={"0": [*played.user_ids[0], "idle"]})
    before = quietly(fit_exact, played, hypothesis, num_draws=20)
    after = quietly(fit_exact, listed, hypothesis, num_draws=20)
    np.testing.assert_allclose(evidence(after), evidence(before), rtol=0, atol=1e-6)
    torch.testing.assert_close(after.policy_probs[0, -1], after.pi_mean()[0], rtol=0, atol=1e-6)


# -- splitting ---------------------------------------------------------------------------------


@settings(max_examples=8, **SETTINGS)
@given(
    name=st.sampled_from(list(QUICK)),
    seed=st.integers(0, 50),
    split=st.floats(0.0, 1.0),
    order=st.randoms(use_true_random=False),
)
@example(name="neutral", seed=0, split=1.0, order=random.Random(0))  # B empty
@example(name="latent_rationality", seed=0, split=11 / 12, order=random.Random(0))  # one game
def test_an_exact_update_is_the_fit_on_all_games(name, seed, split, order):
    """The likelihood factorises over games given each user's type, so conditioning on ``A``
    and then on ``B`` is conditioning on both: the exact fit on ``A`` updated with ``B`` has
    the fit on ``A + B``'s log evidence, ``pi`` and users' types, for any split of the rows
    (in any order: a user and a simulation can be in both parts, in ``B`` alone, or ``B`` can
    be empty or one game)."""
    hypothesis = QUICK[name]
    table = small_group(hypothesis, seed)
    rows = list(range(len(table)))
    order.shuffle(rows)
    cut = max(1, round(split * len(rows)))
    first, second = table.iloc[sorted(rows[:cut])], table.iloc[sorted(rows[cut:])]
    whole = exact(pd.concat([first, second], ignore_index=True), hypothesis)
    updated = quietly(update, exact(first.reset_index(drop=True), hypothesis), second)
    np.testing.assert_allclose(evidence(updated), evidence(whole), rtol=0, atol=1e-6)
    torch.testing.assert_close(updated.pi_mean(), whole.pi_mean(), rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(users_table(updated), users_table(whole), atol=1e-6, rtol=0)


# -- one density -------------------------------------------------------------------------------

#: Few participants, so that users recur; the assistant and no one ("") are not users.
PARTICIPANTS = st.sampled_from(["a", "b", "c", "assistant", ""])
#: One of each latent kind the density marginalises: none, the rationality, the shifts, a
#: lapse, role-dependent norms, a learned stereotype, a tone reader, clones.
DENSITY_HYPOTHESES = {
    "neutral": PRESETS["neutral"],
    "latent_rationality_and_shift": PRESETS["essential_goods_shared"].with_(rationality_scale=0.4),
    "pooled": PRESETS["pooled"],
    "learned_lapse": PRESETS["neutral"].with_(name="learned_lapse", lapse_prior=(2.0, 20.0)),
    "learned_stereotype": PRESETS["stereotyped"].with_(
        name="learned_stereotype", stereotype_strength=0.0, stereotype_prior=(8.0, 2.0)
    ),
    "read_tones": PRESETS["stereotyped"].with_(reader_confusion=RUDE_AS_NEUTRAL),
    "real_agents": PRESETS["real_agents"],
}
GROUP_SITES = ("pi", "lam", "shift_shared", "shift", "lapse", "strength", "clone")


@st.composite
def games(draw) -> tuple:
    proposer = draw(PARTICIPANTS)
    responder = draw(PARTICIPANTS.filter(lambda r: r != proposer or r == ""))
    pot = draw(st.sampled_from([1, 2, 3, 10, 57, MAX_POT]))
    return (
        draw(st.sampled_from(["s0", "s1"])),
        draw(st.integers(0, 2)),
        draw(st.integers(0, 9)),
        proposer,
        responder,
        draw(st.sampled_from(["dollars", "medicine", "apples"])),
        pot,
        draw(st.sampled_from([0, 1, pot // 2, pot])),
        draw(st.integers(0, 1)),
        "" if proposer == "" else draw(st.sampled_from(("", *TONES))),
        draw(st.sampled_from(("", *TONES))),
    )


@st.composite
def layouts(draw) -> tuple[pd.DataFrame, GroupData]:
    """A valid table of a few games in which some user acts, and its layout."""
    records = draw(st.lists(games(), min_size=1, max_size=6))
    table = pd.DataFrame.from_records(records, columns=list(INTERACTION_COLUMNS))
    try:
        table = quietly(validate_frame, table)
    except ValueError:  # (a DataError: a game with no one in it, a repeated game)
        assume(False)
    data = GroupData.from_table(table)
    assume(data.shape[1] > 0 and bool(data.event_mask.any()))
    return table, data


def pyro_loglik(data: GroupData, hypothesis: Hypothesis, sites: dict) -> float:
    """``log p(data | sites)`` by Pyro: ``TraceEnum_ELBO`` of the model conditioned on the
    group-level ``sites`` (an empty guide: the "ELBO" is the log joint, policy and manner summed
    out), less the log prior of those sites."""
    S, C = data.shape[0], len(data.currencies)
    shapes = {"pi": (S, 1, 1, -1), "shift": (S, 1, C)}
    sites = {k: v.reshape(shapes.get(k, (S, 1, 1))) for k, v in sites.items()}
    conditioned = poutine.condition(social_contract_model, data=sites)
    elbo = TraceEnum_ELBO(max_plate_nesting=MAX_PLATE_NESTING)
    log_joint = -elbo.loss(conditioned, lambda *args, **kwargs: None, data, hypothesis)
    trace = poutine.trace(conditioned).get_trace(data, hypothesis)
    prior = sum(
        float(trace.nodes[k]["fn"].log_prob(trace.nodes[k]["value"]).sum())
        for k in GROUP_SITES
        if k in trace.nodes
    )
    return log_joint - prior


@settings(max_examples=12, **SETTINGS)
@given(
    layout=layouts(),
    name=st.sampled_from(list(DENSITY_HYPOTHESES)),
    seed=st.integers(0, 100),
    order=st.randoms(use_true_random=False),
)
def test_the_density_is_pyros_on_any_table_in_any_row_order(float64, layout, name, seed, order):
    """On random tables (users who only propose or only respond, the assistant as partner,
    games with no proposer, pots of 1 and 1000, offers of 0 and the whole pot, tones or none,
    two simulations padded to the larger one's users): the hand-marginalised log-likelihood of
    :class:`MarginalDensity` is Pyro's enumerated one at a random point, its NumPy backend's
    potential is its torch reference's, and shuffling the table's rows changes neither."""
    table, data = layout
    hypothesis = DENSITY_HYPOTHESES[name]
    density = MarginalDensity(data, hypothesis)
    generator = torch.Generator().manual_seed(seed)
    theta = density.initial() + 0.7 * torch.randn(density.coords.size, generator=generator)
    log_joint = density.log_joint(theta)
    loglik = float((log_joint - density.log_prior(theta)).sum())
    want = pyro_loglik(data, hypothesis, density.constrain(theta))
    assert loglik == pytest.approx(want, rel=1e-9, abs=1e-9)
    potential, _ = density.value_and_grad(theta.numpy())
    assert -potential == pytest.approx(float(log_joint.sum()), rel=1e-12, abs=1e-9)
    shuffled = table.sample(frac=1, random_state=order.randrange(2**31))
    again = GroupData.from_table(shuffled.reset_index(drop=True), currencies=data.currencies)
    rows = [data.sim_ids.index(sim) for sim in again.sim_ids]  # (sims in order of appearance)
    cols = theta.reshape(data.shape[0], -1)[rows].reshape(-1)
    torch.testing.assert_close(
        MarginalDensity(again, hypothesis).log_joint(cols), log_joint[rows], rtol=1e-12, atol=1e-9
    )


@settings(max_examples=12, **SETTINGS)
@given(
    layout=layouts(),
    name=st.sampled_from([n for n, h in DENSITY_HYPOTHESES.items() if not h.clones]),
    seed=st.integers(0, 100),
)
def test_doubling_the_games_or_the_users_doubles_the_loglik(float64, layout, name, seed):
    """Given its type, a user's actions are independent games: every game played twice (in a
    later epoch) doubles each user's log-likelihood under each type (without tones: a user's
    tones share its manner, a latent it keeps). Given the group's sites, users are
    independent (without clones): every user copied under a new name doubles the group's
    log-likelihood, tones included."""
    table, data = layout
    hypothesis = DENSITY_HYPOTHESES[name]
    density = MarginalDensity(data, hypothesis)
    generator = torch.Generator().manual_seed(seed)
    theta = density.initial() + 0.7 * torch.randn(density.coords.size, generator=generator)
    cols = theta.reshape(data.shape[0], -1)

    def user_loglik(games: pd.DataFrame) -> torch.Tensor:
        silent = quietly(validate_frame, games.assign(proposer_tone="", responder_tone=""))
        layout = GroupData.from_table(silent, currencies=data.currencies)
        assert layout.user_ids == data.user_ids
        return MarginalDensity(layout, hypothesis).user_loglik(cols)

    twice = pd.concat([table, table.assign(epoch=table["epoch"] + 10)], ignore_index=True)
    users = data.user_mask.unsqueeze(-1)
    torch.testing.assert_close(
        torch.where(users, user_loglik(twice), 0.0),
        torch.where(users, 2 * user_loglik(table), 0.0),
        rtol=1e-10,
        atol=1e-10,
    )

    def copy(names: pd.Series) -> pd.Series:
        return names.where(names.isin(["", "assistant"]), names + "_copy")

    copies = table.assign(proposer=copy(table["proposer"]), responder=copy(table["responder"]))
    both = GroupData.from_table(
        quietly(validate_frame, pd.concat([table, copies], ignore_index=True)),
        currencies=data.currencies,
    )
    assert both.sim_ids == data.sim_ids
    doubled = MarginalDensity(both, hypothesis)
    torch.testing.assert_close(
        doubled.log_joint(theta) - doubled.log_prior(theta),
        2 * (density.log_joint(theta) - density.log_prior(theta)),
        rtol=1e-10,
        atol=1e-10,
    )


@pytest.mark.parametrize("name", ["neutral", "currency_invariant"])
def test_tones_move_nothing_without_a_stereotype(name):
    """Without a stereotype a user's manner is independent of its type, so the tones it
    speaks in say nothing of the norm: removing every tone leaves each user's type
    probabilities and the posterior of ``pi`` unchanged and moves the log evidence by the
    tones' own log-probability only."""
    hypothesis = PRESETS[name]
    assert not hypothesis.ties_manners_to_types
    table = small_group(PRESETS["stereotyped"], seed=5)
    silent = table.assign(proposer_tone="", responder_tone="")
    spoken, mute = exact(table, hypothesis), exact(silent, hypothesis)
    assert (evidence(spoken) < evidence(mute) - 1).all()  # the tones were scored
    torch.testing.assert_close(spoken.pi_mean(), mute.pi_mean(), rtol=0, atol=1e-6)
    torch.testing.assert_close(spoken.policy_probs, mute.policy_probs, rtol=0, atol=1e-6)
