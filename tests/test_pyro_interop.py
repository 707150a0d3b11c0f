"""The Pyro model used with Pyro's own tooling, not scai's engines.

A Pyro user conditions :func:`scai.models.social_contract_model` on scai's posterior draws and
scores it with ``TraceEnum_ELBO`` (``policy`` and ``manner`` are marked for enumeration), draws
replicates with ``pyro.infer.Predictive``, and builds the model's ``GroupData`` from a table.
These tests pin what that gives: the density every engine uses, the posterior predictive scai
saves, and the layout of the tones.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import Predictive, TraceEnum_ELBO

from scai.inference import fit
from scai.models import PRESETS, GroupData, simulate, social_contract_model, validate_frame
from scai.models.model import MAX_PLATE_NESTING


def _site_shapes(S: int, C: int) -> dict[str, tuple[int, ...]]:
    """The model's own shapes of the group-level sites (one draw)."""
    return {
        "pi": (S, 1, 1, -1),
        "lam": (S, 1, 1),
        "shift_shared": (S, 1, 1),
        "shift": (S, 1, C),
        "lapse": (S, 1, 1),
        "strength": (S, 1, 1),
        "clone": (S, 1, 1),
    }


def _enumerated_log_joint(data, hyp, sites) -> float:
    """``log p(sites, data)`` by Pyro: the model conditioned on ``sites``, its discrete sites
    enumerated by ``TraceEnum_ELBO`` (an empty guide: the "ELBO" is the exact marginal)."""
    conditioned = poutine.condition(social_contract_model, data=sites)
    elbo = TraceEnum_ELBO(max_plate_nesting=MAX_PLATE_NESTING)
    return -elbo.loss(conditioned, lambda *args, **kwargs: None, data, hyp)


@pytest.mark.parametrize(
    ("preset", "currency"),
    [("pooled", ["apples", "medicine"]), ("real_agents", "apples")],
)
def test_pyro_enumerated_density_is_the_posteriors_log_joint(preset, currency):
    """At an exact fit's draws, Pyro's enumerated density of the model equals
    ``Posterior.log_joint()`` (README: "one density behind every engine")."""
    hyp = PRESETS[preset]
    sim = simulate(
        hyp, policy=hyp.policy_names[0], users=8, epochs=2, sims=2, currency=currency, seed=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit(sim.interactions, hyp, engine="exact", num_draws=3)
    data = post.data
    shapes = _site_shapes(data.shape[0], len(data.currencies))
    want = post.log_joint()[0]
    for d in range(3):
        sites = {k: v[0, d].reshape(shapes[k]).float() for k, v in post.draws.items()}
        got = _enumerated_log_joint(data, hyp, sites)
        assert got == pytest.approx(float(want[d]), rel=1e-5, abs=1e-3)


def test_pyro_predictive_on_scai_draws_matches_scais_posterior_predictive():
    """``Predictive`` run on scai's draws (``observed=False, replay_offers=True``) draws from
    the distribution of ``to_arviz().posterior_predictive`` (README: the posterior predictive
    runs the Pyro model forward): the mean offer and acceptance rate agree within Monte Carlo
    error (fixed seeds, so deterministic)."""
    hyp = PRESETS["stereotyped"]
    sim = simulate(hyp, policy="selfish=0.7,altruistic=0.3", users=10, epochs=2, sims=2, seed=3)
    post = fit(sim.interactions, hyp, engine="exact", num_draws=400)
    data = post.data
    pi = post.flat_draws("pi")
    N, S, K = pi.shape
    pyro.set_rng_seed(0)
    out = Predictive(
        social_contract_model,
        posterior_samples={"pi": pi.reshape(N, S, 1, 1, K)},
        return_sites=["offer", "accept"],
    )(data, hyp, observed=False, replay_offers=True)
    proposed = data.is_proposer & data.event_mask
    responded = data.is_responder & data.event_mask
    pyro_offer = out["offer"][:, proposed].double().mean(-1).numpy()  # per draw
    pyro_accept = out["accept"][:, responded].double().mean(-1).numpy()
    pp = post.to_arviz().posterior_predictive
    scai_offer = pp["offer"].values.reshape(N, -1).mean(-1)
    scai_accept = pp["accepted"].values.reshape(N, -1).mean(-1)
    for a, b in ((pyro_offer, scai_offer), (pyro_accept, scai_accept)):
        se = np.sqrt((a.var() + b.var()) / N)
        assert abs(a.mean() - b.mean()) < 4 * se + 1e-9


def _small_group(hyp):
    sim = simulate(hyp, policy="selfish=0.7,altruistic=0.3", users=6, epochs=1, sims=2, seed=1)
    return GroupData.from_table(sim.interactions)


@pytest.mark.parametrize(
    ("site", "latent"),
    [
        ("lam", {"rationality_scale": 0.3}),
        ("lapse", {"lapse_prior": (1.0, 30.0)}),
        ("strength", {}),  # real_agents_stereotyped's s ~ Beta(4, 1)
    ],
)
def test_a_batch_of_a_latent_scalar_is_refused_by_name(site, latent):
    """A batch dimension left of the plates (``Predictive(parallel=True)``,
    ``vectorize_particles=True``, ArviZ's ``from_pyro``) on a latent scalar, which the model's
    action tables (one per distinct row of the scalars) cannot take: it failed as
    ``RuntimeError: shape '[2]' is invalid for input of size 100``. It is refused naming the
    site and what to do. A ``pi`` of other types than the hypothesis's is refused too (it ran,
    never drawing the types it left out)."""
    hyp = PRESETS["neutral"].with_(**latent) if latent else PRESETS["real_agents_stereotyped"]
    data = _small_group(hyp)
    N, S = 5, data.shape[0]
    K = len(hyp.policies)
    with pytest.raises(ValueError, match=rf"site 'pi' has shape \[2, 1, 1, {K + 1}\], a mixture"):
        poutine.condition(social_contract_model, data={"pi": torch.ones(S, 1, 1, K + 1)})(data, hyp)
    pi = torch.full((S, 1, 1, K), 1 / K)
    value = {"lam": 4.0, "lapse": 0.05, "strength": 0.8}[site]
    batched = poutine.condition(
        social_contract_model, data={"pi": pi, site: torch.full((N, S, 1, 1), value)}
    )
    with pytest.raises(NotImplementedError, match=rf"site '{site}' has shape \[5, 2, 1, 1\]"):
        batched(data, hyp)
    one = poutine.condition(
        social_contract_model, data={"pi": pi, site: torch.full((S, 1, 1), value)}
    )
    assert set(one(data, hyp)) >= {"offer", "accept"}


def test_a_batch_of_pi_scores_the_data_as_one_sample_at_a_time():
    """With ``pi`` the only latent site, a batch of it scores the data as each sample alone
    (what ArviZ's ``from_pyro`` asks of ``Predictive.get_vectorized_trace`` for its
    ``log_likelihood``), and replays the table's offers; a forward run, whose responders answer
    their partners' drawn offers, is refused (it failed as an ``IndexError``)."""
    hyp = PRESETS["stereotyped"]
    data = _small_group(hyp)
    N, S = 4, data.shape[0]
    pi = torch.distributions.Dirichlet(torch.ones(3)).sample((N, S)).reshape(N, S, 1, 1, 3)
    pyro.set_rng_seed(0)
    trace = Predictive(
        social_contract_model, posterior_samples={"pi": pi}, parallel=True
    ).get_vectorized_trace(data, hyp)
    for name in ("offer", "accept", "tone"):
        node = trace.nodes[name]
        scored = node["fn"].log_prob(node["value"])  # [N, S, U, E]
        for n in range(N):
            given = {k: trace.nodes[k]["value"][n] for k in ("policy", "manner")}
            alone = poutine.trace(
                poutine.condition(social_contract_model, data={"pi": pi[n], **given})
            ).get_trace(data, hyp)
            want = alone.nodes[name]["fn"].log_prob(alone.nodes[name]["value"])
            assert torch.allclose(scored[n], want), name

    def offers(parallel, **kwargs):
        pyro.set_rng_seed(0)
        run = Predictive(
            social_contract_model,
            posterior_samples={"pi": pi},
            parallel=parallel,
            return_sites=["offer"],
        )
        return run(data, hyp, observed=False, **kwargs)["offer"]

    shape = (N, S, *data.shape[1:])
    assert offers(True, replay_offers=True).shape == offers(False, replay_offers=True).shape
    assert offers(False).shape == shape
    with pytest.raises(
        NotImplementedError, match=r"site 'pi' has shape \[4, 2, 1, 1, 3\]: a forward"
    ):
        offers(True)


def test_the_hand_marginalised_model_refuses_a_batch_of_pi():
    """``marginal_model`` (the same density with the types summed out by hand) takes no batch
    of pi: once ``social_contract_model`` took one, it reached its reshape and mixed the batch
    into the types (``The size of tensor a (15) must match the size of tensor b (3)``)."""
    from scai.models.marginal import marginal_model

    hyp = PRESETS["neutral"]
    data = _small_group(hyp)
    S = data.shape[0]
    batched = torch.full((5, S, 1, 1, 3), 1 / 3)
    with pytest.raises(NotImplementedError, match=r"marginal_model: site 'pi' has shape \[5, 2"):
        poutine.condition(marginal_model, data={"pi": batched})(data, hyp)
    one = poutine.trace(poutine.condition(marginal_model, data={"pi": batched[0]}))
    assert torch.isfinite(one.get_trace(data, hyp).log_prob_sum())


@pytest.mark.parametrize("kind", ["object", "str", "category", "float"])
def test_layout_of_an_unvalidated_table_does_not_invent_tones(kind):
    """``GroupData`` (exported by ``scai.models`` as the model's data) built from a table whose
    unheard tones are missing values (``None``/NaN, as ``pd.read_csv`` gives for empty cells)
    must not count them as heard: ``pd.factorize``'s -1 for a missing value indexes the last
    distinct tone (``models/layout.py``, ``_tone_codes``), so each unheard message is scored
    as that tone. Either the same layout as the validated table, or a refusal."""
    hyp = PRESETS["stereotyped"]
    sim = simulate(hyp, policy="selfish=0.7,altruistic=0.3", users=6, epochs=1, sims=1, seed=1)
    table = sim.interactions.copy()
    # None in an object column; NaN in pandas' str dtype (pd.read_csv's empty cell, which
    # was factorised as -1: the last distinct tone), in a categorical, in a column of NaN alone
    tones = table["proposer_tone"].astype(object)
    tones[tones.index[::2]] = None
    if kind == "float":
        tones[:] = np.nan
    table["proposer_tone"] = tones if kind in ("object", "float") else tones.astype(kind)
    if kind == "float":
        table["proposer_tone"] = table["proposer_tone"].astype(float)
    want = GroupData.from_table(validate_frame(table))
    try:
        got = GroupData.from_table(table)
    except (ValueError, TypeError):
        return  # a refusal is fine
    heard, should = int(got.tone_mask.sum()), int(want.tone_mask.sum())
    assert heard == should, f"{heard} messages heard, {should} in the table"
    assert torch.equal(got.tone_mask, want.tone_mask)


def test_pandas_missing_tones_are_read_as_unheard_by_validate_frame():
    """The validated path (what ``fit`` reads) treats the same missing tones as unheard."""
    sim = simulate("stereotyped", policy="selfish", users=4, epochs=1, seed=2)
    table = sim.interactions.copy()
    table["responder_tone"] = table["responder_tone"].astype(object)
    table.loc[table.index[:3], "responder_tone"] = np.nan
    checked = validate_frame(table)
    assert (checked["responder_tone"].iloc[:3] == "").all()
    assert isinstance(checked, pd.DataFrame)
