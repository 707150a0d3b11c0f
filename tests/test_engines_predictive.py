"""The posterior predictive the assistant acts with is a function of the posterior: calling it
twice gives the same answer, in and out of the data's currencies; and its values are the
model's action probabilities averaged over the posterior."""

from __future__ import annotations

import pytest
import torch

from scai.inference import fit
from scai.models.hypotheses import PRESETS
from scai.models.simulate import simulate


@pytest.fixture(scope="module")
def posterior():
    sim = simulate(
        PRESETS["neutral"],
        policy="selfish=0.5,altruistic=0.5",
        users=6,
        rounds=6,
        epochs=2,
        currency="dollars",
        seed=4,
        pot_range=(2, 8),
    )
    return fit(sim.interactions, "essential_goods_shared", engine="exact", seed=0, num_draws=200)


def test_predictive_in_data_currency_is_a_distribution_and_deterministic(posterior):
    a = posterior.predictive(pot=10, currency="dollars")
    b = posterior.predictive(pot=10, currency="dollars")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    torch.testing.assert_close(a["offer_probs"].sum(-1), torch.ones(1), rtol=0, atol=1e-5)
    assert torch.all((a["accept_probs"] >= 0) & (a["accept_probs"] <= 1))


def test_predictive_out_of_data_currency_is_deterministic(posterior):
    a = posterior.predictive(pot=10, currency="medicine")
    torch.manual_seed(12345)  # the global RNG must not matter
    b = posterior.predictive(pot=10, currency="medicine")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the unseen currency's shift really is random (its prior), so determinism is not trivial
    assert float(posterior.shift("medicine").std()) > 0.1


def test_predictive_is_the_posterior_average_of_the_models_action_tables(posterior):
    """``predictive`` = sum over draws and types of ``P(type) P(action | type, draw)``, computed
    here from the model's own tables; and for a new member (``who="new"``) the type weights
    are the draw's ``pi``."""
    from scai.models.model import group_tables

    pot = 10
    lam = posterior.lam()
    shift = posterior.shift("dollars").unsqueeze(-1)  # [D, S, 1]
    tables = group_tables(posterior.hypothesis, torch.tensor([pot]), lam, shift)
    offer = tables.offer_logp[..., 0, :, 0, :].exp()  # [D, S, K, O]
    accept = torch.sigmoid(tables.accept_logit[..., 0, :, 0, :])
    for who in ("member", "new"):
        weights = posterior.type_weights(who).unsqueeze(-1)  # [D, S, K, 1]
        got = posterior.predictive(pot=pot, currency="dollars", who=who)
        torch.testing.assert_close(got["offer_probs"], (weights * offer).sum(-2).mean(0))
        torch.testing.assert_close(got["accept_probs"], (weights * accept).sum(-2).mean(0))
    torch.testing.assert_close(posterior.type_weights("new"), posterior.flat_draws("pi"))
    # a 50/50 selfish/altruistic group: the offer distribution is bimodal, mass at both ends
    offer_probs = posterior.predictive(pot=pot, currency="dollars", who="new")["offer_probs"][0]
    assert float(offer_probs[:3].sum()) > 0.25 and float(offer_probs[-3:].sum()) > 0.25


def test_predictive_matches_the_reference_formulas_draw_by_draw(posterior):
    """``predictive`` against ``tests/reference.py``'s scalar formulas (no model tables): for
    each draw ``d``, simulation and type ``k``, ``P(offer | k, d)`` from ``ref.offer_logps``
    and ``P(accept | k, d)`` from ``ref.log_response``, the type's ``w`` (its proposer's and
    its responder's) shifted by the draw's dollar shift and rationality ``lam_d``, weighted by
    the draw's type weights and averaged. Tolerance 2e-6: the float32 tables and sums agree to
    2e-7 (measured), a wrong table term is off by 1e-2 (rationality 0.9x in the proposer's
    projection: 3e-2; an accept logit off by 0.1: 1.5e-2)."""
    import functools

    import reference as ref
    from test_model_logdensity import responder_of

    pot, hyp = 10, posterior.hypothesis
    lam, shift = posterior.lam().double(), posterior.shift("dollars").double()  # [D, S]
    assert posterior.bounded("lapse") is None  # the hypothesis's fixed lapse
    D, S = lam.shape
    assert not bool((shift == shift[:1]).all())  # the draws' tables differ: per draw

    @functools.cache  # (the draws of the exact engine repeat its grid's points)
    def actions(k: int, lam: float, delta: float) -> torch.Tensor:
        """``[2, pot + 1]``: P(offer = o) and P(accept | o) of type ``k``."""
        p = hyp.policies[k]
        rw, ra, rb = responder_of(p)
        offer = ref.offer_logps(pot, p.w + delta, p.alpha, p.beta, lam, hyp.lapse)
        accept = [
            ref.log_response(1, pot, o, (rw + delta, ra, rb), lam, hyp.lapse)
            for o in range(pot + 1)
        ]
        return torch.tensor([offer, accept], dtype=torch.float64).exp()

    K = len(hyp.policies)
    tables = torch.stack(  # [D, S, K, 2, pot + 1]
        [
            torch.stack([actions(k, float(lam[d, s]), float(shift[d, s])) for k in range(K)])
            for d in range(D)
            for s in range(S)
        ]
    ).reshape(D, S, K, 2, pot + 1)
    for who in ("member", "new"):
        weights = posterior.type_weights(who).double()  # [D, S, K]
        offer, accept = torch.einsum("dsk,dskao->aso", weights, tables) / D
        got = posterior.predictive(pot=pot, currency="dollars", who=who)
        torch.testing.assert_close(got["offer_probs"].double(), offer, rtol=0, atol=2e-6)
        torch.testing.assert_close(got["accept_probs"].double(), accept, rtol=0, atol=2e-6)


def test_some_draws_type_weights_are_those_rows_of_all_draws(posterior):
    """The assistant's posterior sampling asks for one draw's type weights at a time
    (``type_weights(who, draws)``): exactly those rows of all draws', bit for bit, before and
    after all draws' are memoised."""
    D = posterior.lam().shape[0]
    posterior._memo.pop("member_weights", None)
    some = [posterior.type_weights("member", slice(d, d + 1)) for d in (0, 7, D - 1)]
    assert "member_weights" not in posterior._memo  # worked out for those draws alone
    every = posterior.type_weights("member")
    for d, one in zip((0, 7, D - 1), some, strict=True):
        assert one.shape == (1, *every.shape[1:]) and torch.equal(one[0], every[d])
    assert torch.equal(posterior.type_weights("member", slice(3, 5)), every[3:5])
    assert torch.equal(posterior.type_weights("new", slice(3, 5)), posterior.flat_draws("pi")[3:5])


@pytest.mark.parametrize("clones", [False, True])
def test_member_weights_at_one_draw_per_simulation_are_those_of_all_draws(clones):
    """The assistant samples one draw per simulation (``member_weights_at``): simulation
    ``s``'s weights are row ``draw[s]`` of all draws' for that simulation, bit for bit, with
    and without clones (whose users are coupled through the prototype)."""
    hypothesis = PRESETS["neutral"].with_(clone_prior=(1.0, 3.0)) if clones else "neutral"
    sim = simulate(PRESETS["neutral"], policy="fair", users=5, rounds=4, sims=4, seed=2)
    post = fit(sim.interactions, hypothesis, engine="exact", seed=0, num_draws=50)
    draw = torch.tensor([3, 0, 49, 3])
    some = post.member_weights_at(draw)
    assert "member_weights" not in post._memo
    every = post.type_weights("member")
    assert torch.equal(some, every[draw, torch.arange(4)])
    assert torch.equal(post.member_weights_at(draw), some)  # from the memo now


def test_the_assistant_picks_the_type_rng_choice_would():
    """``assistant_norms`` draws each simulation's draw and the uniform of its type first, then
    picks the types from all simulations' weights at once: the draws and types that
    ``rng.integers`` and ``rng.choice`` per simulation give, for many seeds."""
    import numpy as np

    from scai.experiments.assistant import assistant_norms

    sim = simulate(
        PRESETS["neutral"], policy="selfish=0.5,fair=0.5", users=4, rounds=2, sims=5, seed=1
    )
    posterior = fit(sim.interactions, "neutral", engine="exact", seed=0, num_draws=100)
    S = posterior.data.shape[0]
    every = posterior.type_weights("member").double().numpy()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        norms = assistant_norms(posterior, posterior.hypothesis, [6] * S, ["dollars"] * S, rng)
        reference = np.random.default_rng(seed)
        expected = []
        for s in range(S):
            d = int(reference.integers(every.shape[0]))
            p = every[d, s]
            expected.append(int(reference.choice(len(p), p=p / p.sum())))
        assert norms.types == expected
        assert rng.random() == reference.random()  # the stream goes on where it would


def test_the_assistant_takes_one_pot_and_currency_per_simulation_of_the_posterior(posterior):
    """``assistant_norms`` pairs the s-th pot and currency with the posterior's s-th
    simulation: a list of another length (another group's pots, or one too few) is refused,
    naming the simulations, not paired by position as far as it goes."""
    import numpy as np

    from scai.experiments.assistant import assistant_norms

    S = posterior.data.shape[0]
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=rf"one per simulation of the posterior.*got {S + 1}"):
        assistant_norms(posterior, posterior.hypothesis, [6] * (S + 1), ["dollars"] * (S + 1), rng)
    with pytest.raises(ValueError, match=r"pots and currencies: one per simulation, got 2 and 1"):
        assistant_norms(None, posterior.hypothesis, [6, 6], ["dollars"], rng)


@pytest.mark.parametrize("pot", [0, -5, 1001, 10**6, 10.5, True])
def test_predictive_refuses_a_pot_out_of_range_before_any_work(posterior, pot):
    """A pot of a million would ask for terabytes (the tables grow with its square), a negative
    one failed inside torch, 0 and 10.5 answered silently: each is refused naming ``pot``."""
    from scai.models.errors import RunError

    with pytest.raises(RunError, match=r"pot: must be a whole number from 1 to 1,000"):
        posterior.predictive(pot, "dollars")


def test_unseen_currency_shift_with_a_large_seed(posterior):
    """The exact engine gives each simulation of a per-simulation fit a seed up to 2**62: an
    unseen currency's prior draws are then still made (they overflowed torch's 64-bit seed),
    deterministic, and the same as before for the seeds a user gives."""
    import dataclasses

    big = dataclasses.replace(posterior, seed=2**62 - 1)
    a, b = big.shift("medicine"), big.shift("medicine")
    assert torch.equal(a, b)
    assert not torch.equal(a, posterior.shift("medicine"))
    assert float(a.std()) > 0.1


@pytest.mark.parametrize("currency", [None, ["dollars"], "euros"])
def test_a_currency_that_is_not_one_is_named(posterior, currency):
    """``predictive(50, None)`` failed deep inside (``'NoneType' object has no attribute
    'encode'``, a review): any currency that is not a known name is one error listing them."""
    from scai.models.errors import RunError

    with pytest.raises(RunError, match=r"unknown currency .*; allowed: .*dollars"):
        posterior.predictive(pot=50, currency=currency)


def test_a_new_member_of_a_group_with_clones_may_copy_its_prototype():
    """With clones a user's type is ``c [z0] + (1 - c) pi``: ``type_weights("new")`` returned
    ``pi`` alone, so six selfish users' group (clone ~0.83) gave a new member 0.60 selfish
    where the model says ~0.93, and ``predictive(who="new")`` put a quarter of its mass on
    others' offers (a review). Checked against the model summed by brute force: ``P(z_new = k
    | theta, y) ∝ sum_z0 pi[z0] prod_u sum_j P(z_u = j | z0) f_u(j) P(z_new = k | z0)``."""
    hyp = PRESETS["real_agents"]
    table = simulate(hyp, policy="selfish", users=4, rounds=2, seed=2).interactions
    post = fit(table, hyp, num_draws=40, seed=1)
    new = post.type_weights("new").double()  # [D, S, K]
    pi = post.flat_draws("pi").double()
    c = post.flat_draws("clone").double()
    f = post.user_loglik().double().exp()  # [D, S, U, K]
    mask = post.data.user_mask
    D, S, K = pi.shape
    expected = torch.zeros(D, S, K, dtype=torch.float64)
    for d in range(D):
        for s in range(S):
            for z0 in range(K):
                given = c[d, s] * torch.eye(K, dtype=torch.float64)[z0] + (1 - c[d, s]) * pi[d, s]
                users = [
                    float((given * f[d, s, u]).sum()) for u in range(mask.shape[1]) if mask[s, u]
                ]
                expected[d, s] += pi[d, s, z0] * torch.tensor(users).prod() * given
    expected /= expected.sum(-1, keepdim=True)
    torch.testing.assert_close(new, expected, rtol=1e-6, atol=1e-9)
    assert float(new[..., hyp.policy_index("selfish")].mean()) > 0.85
    assert not torch.allclose(new, pi)


def _recording_tables(monkeypatch) -> list[int]:
    """The number of draws of each ``group_tables`` call the posterior makes."""
    from scai.inference import posterior as module

    calls: list[int] = []
    build = module.group_tables

    def recording(hypothesis, pots, lam, shift, *args, **kwargs):
        calls.append(lam.shape[0])
        return build(hypothesis, pots, lam, shift, *args, **kwargs)

    monkeypatch.setattr(module, "group_tables", recording)
    return calls


def test_predictive_builds_its_tables_a_block_of_draws_at_a_time(posterior, monkeypatch):
    """All draws' tables at once took memory growing with the draws (2.4 GB for 200,000 draws
    of a pot of 1,000: a bare RuntimeError from the allocator, a red-team find): at most
    ``PREDICTIVE_ENTRIES`` entries at a time, the same answer."""
    from scai.inference import posterior as module

    calls = _recording_tables(monkeypatch)
    whole = posterior.predictive(pot=10, currency="dollars")
    D = posterior.lam().shape[0]
    assert calls == [D]  # the shift is latent: a table per draw, all in one block here
    calls.clear()
    S, K = posterior.pi_mean().shape
    monkeypatch.setattr(module, "PREDICTIVE_ENTRIES", 7 * S * K * 11)  # 7 draws of a pot of 10
    blocked = posterior.predictive(pot=10, currency="dollars")
    assert calls == [7] * (D // 7) + [D % 7] * (D % 7 > 0)
    for key in whole:  # (float32 sums in another order: torch's tolerances for float32)
        torch.testing.assert_close(blocked[key], whole[key])


def test_predictive_with_nothing_varying_across_draws_builds_one_table(monkeypatch):
    """Under a hypothesis that fixes rationality, shifts and lapse every draw's tables are the
    same: one is built, whatever the number of draws, and the answer is the per-draw average."""
    from scai.models.model import group_tables

    sim = simulate(PRESETS["neutral"], policy="selfish=0.5,altruistic=0.5", users=6, seed=4)
    posterior = fit(sim.interactions, "neutral", engine="exact", seed=0, num_draws=5000)
    tables = group_tables(
        posterior.hypothesis,
        torch.tensor([40]),
        posterior.lam(),
        posterior.shift("medicine").unsqueeze(-1),
    )
    weights = posterior.type_weights().unsqueeze(-1)
    calls = _recording_tables(monkeypatch)
    got = posterior.predictive(pot=40, currency="medicine")
    assert calls == [1]
    offer = (weights * tables.offer_logp[..., 0, :, 0, :].exp()).sum(-2).mean(0)
    accept = (weights * torch.sigmoid(tables.accept_logit[..., 0, :, 0, :])).sum(-2).mean(0)
    torch.testing.assert_close(got["offer_probs"], offer)
    torch.testing.assert_close(got["accept_probs"], accept)


def test_what_the_accessors_return_is_the_caller_s_to_change():
    """``lam()``, ``shift()``, ``bounded()``, ``user_loglik()`` and ``draws_loglik()`` handed
    back the posterior's own tensors (a review find): ``p.lam() *= 0.001`` changed its summary,
    predictive and saved file. Each returns a new tensor; the posterior answers as before."""
    latent = PRESETS["pooled"].with_(rationality_scale=0.3)
    lapse = PRESETS["neutral"].with_(lapse_prior=(1.0, 30.0))
    for hyp, values in (
        (latent, lambda p: [p.lam(), p.shift("dollars"), p.user_loglik(), p.draws_loglik()]),
        (lapse, lambda p: [p.bounded("lapse"), p.user_loglik(), p.draws_loglik()]),
    ):
        sim = simulate(hyp, policy="selfish=0.5,fair=0.5", users=6, epochs=2, seed=3)
        posterior = fit(sim.interactions, hyp, engine="exact", seed=0, num_draws=100)
        before = posterior.predictive(pot=10, currency="dollars")
        weights = posterior.type_weights()
        for value in values(posterior):
            value.mul_(0.001).add_(5.0)
        after = posterior.predictive(pot=10, currency="dollars")
        for key in before:
            assert torch.equal(before[key], after[key]), (hyp.name, key)
        assert torch.equal(posterior.type_weights(), weights), hyp.name
        if "lam" in posterior.draws:  # the draws themselves, unchanged
            assert torch.equal(posterior.lam(), posterior.flat_draws("lam"))
        if "lapse" in posterior.draws:
            assert torch.equal(posterior.bounded("lapse"), posterior.flat_draws("lapse"))


def test_a_likelihood_that_repeats_one_draw_is_handed_back_without_a_copy_per_draw():
    """Under ``neutral`` every draw's user likelihoods are the same (a stride of 0): a whole
    copy per call took 240 MB for 10 groups of 2,000 users (a review's find). The tensor handed
    back repeats one copied draw, and cannot be written to (every draw is one element)."""
    sim = simulate(PRESETS["neutral"], policy="selfish=0.5,fair=0.5", users=6, epochs=2, seed=3)
    posterior = fit(sim.interactions, "neutral", engine="exact", seed=0, num_draws=100)
    own = posterior._user_loglik_memo()
    for value in (posterior.user_loglik(), posterior.draws_loglik()):
        assert value.stride(0) == 0 and torch.equal(value, own)
        assert value.data_ptr() != own.data_ptr()
        with pytest.raises(RuntimeError):
            value.mul_(2.0)


def test_predictive_acceptance_is_a_probability():
    """A group that accepted an offer of 0 of 1,000: every draw accepts with probability ~1,
    and the float32 mixture of them came to 1.0000001 at 265 offers (a red-team find)."""
    import pandas as pd

    row = [0, 1, 1, "a", "b", "dollars", 1000, 0, 1, "", ""]
    columns = ["sim", "epoch", "round", "proposer", "responder", "currency", "pot", "offer",
               "accepted", "proposer_tone", "responder_tone"]  # fmt: skip
    post = fit(pd.DataFrame([row], columns=columns), "neutral", engine="svi", max_steps=300,
               num_draws=200, seed=0)  # fmt: skip
    accept = post.predictive(1000, "dollars")["accept_probs"]
    assert float(accept.max()) <= 1.0 and float(accept.min()) >= 0.0
    assert float(accept.max()) > 0.999  # (the case: acceptance all but certain)
