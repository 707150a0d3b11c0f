"""Policies as social utilities: the action tables, and the prior predictive behaviour of the
three named types at the default rationality.

Monte Carlo tolerances: offers are independent given the pot and the proposer's type, so the
standard error of a mean offered share is ``sd(share - E[share | pot]) / sqrt(n)``, with
``E[share | pot]`` read from the exact action tables. Each simulation check asserts (a) the
standard error is small, (b) the simulated mean is within 4 standard errors of the exact
expectation (the simulator draws from the tables), and (c) the behavioural claim itself, whose
margin is tens of standard errors wide. Seeds are fixed, so the checks are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref
import torch

from scai.models.hypotheses import Hypothesis
from scai.models.policies import DEFAULT_POLICIES, PolicyType, action_tables, policy_parameters
from scai.models.simulate import simulate

POTS = torch.arange(10, 101)  # the protocol's pots, 10-100 units
LAM = Hypothesis().rationality  # the default rationality (4.0 per unit of the pot)


@pytest.fixture(scope="module")
def default_tables():
    return action_tables(*policy_parameters(DEFAULT_POLICIES), POTS, LAM)


def expected_share(tables, k: int, pots: np.ndarray) -> np.ndarray:
    """``E[offer / pot | pot]`` of type ``k`` for each pot in ``pots`` (exact, from tables)."""
    probs = tables.offer_logp[k].exp()  # [P, O]
    offers = torch.arange(probs.shape[-1], dtype=probs.dtype)
    per_pot = ((probs * offers).sum(-1) / tables.pots.to(probs.dtype)).numpy()
    index = {int(p): i for i, p in enumerate(tables.pots)}
    return per_pot[[index[int(p)] for p in pots]]


# -- the tables against a direct scalar formula -----------------------------------------------

PARAMETERS = [
    # (w, alpha, beta, lam, shift)
    (0.0, 0.0, 0.0, 4.0, 0.0),  # selfish
    (0.0, 2.0, 2.0, 4.0, 0.0),  # fair
    (2.0, 0.0, 0.0, 4.0, 0.0),  # altruistic
    (-1.0, 0.0, 0.0, 4.0, 0.0),  # spiteful
    (0.3, 0.7, 1.3, 0.37, 0.0),  # inequity averse, noisy
    (0.0, 0.5, 0.2, 2.5, 0.8),  # with a currency shift on w
    (1.2, 3.0, 0.0, 9.0, -0.4),
]
SMALL_POTS = (1, 2, 3, 7, 10, 23)


@pytest.mark.parametrize("w, alpha, beta, lam, shift", PARAMETERS)
def test_action_tables_match_scalar_formula(float64, w, alpha, beta, lam, shift):
    pots = torch.tensor(SMALL_POTS)
    t = action_tables(
        torch.tensor([w]), torch.tensor([alpha]), torch.tensor([beta]), pots, lam, shift
    )
    assert t.offer_logp.shape == (1, len(SMALL_POTS), max(SMALL_POTS) + 1)
    for i, pot in enumerate(SMALL_POTS):
        want = ref.offer_logps(pot, w + shift, alpha, beta, lam)
        np.testing.assert_allclose(t.offer_logp[0, i, : pot + 1].numpy(), want, atol=1e-10)
        # offers above the pot are impossible
        assert torch.all(t.offer_logp[0, i, pot + 1 :] == -math.inf)
        for o in range(pot + 1):
            want_logit = ref.accept_logit(pot, o, w + shift, alpha, beta, lam)
            assert t.accept_logit[0, i, o].item() == pytest.approx(want_logit, abs=1e-10)


def test_action_tables_batch_dimensions(float64):
    """Batch dims of the parameters (draws, sims) broadcast against ``lam`` and ``shift``."""
    w, alpha, beta = policy_parameters(DEFAULT_POLICIES)
    lam = torch.tensor([0.5, 4.0])
    shift = torch.tensor([0.3, -0.2])
    pots = torch.tensor([5, 12])
    t = action_tables(w.expand(2, 3), alpha, beta, pots, lam, shift)
    assert t.offer_logp.shape == (2, 3, 2, 13)
    for b in range(2):
        for k, pol in enumerate(DEFAULT_POLICIES):
            for i, pot in enumerate(pots.tolist()):
                want = ref.offer_logps(
                    pot, pol.w + shift[b].item(), pol.alpha, pol.beta, lam[b].item()
                )
                got = t.offer_logp[b, k, i, : pot + 1].numpy()
                np.testing.assert_allclose(got, want, atol=1e-10)


def test_offer_distributions_are_normalised(float64):
    # in float64: altruistic logits reach lam * 2 * pot = 800, where float32 rounds at ~1e-5
    t = action_tables(*policy_parameters(DEFAULT_POLICIES), POTS, LAM)
    total = torch.logsumexp(t.offer_logp, dim=-1)
    assert total.shape == (3, len(POTS))
    assert total.abs().max().item() < 1e-12


# -- prior predictive behaviour of the named types --------------------------------------------


@pytest.mark.parametrize(
    "policy, seed, low, high",
    [
        # Standard errors of the mean share at these settings (2,000 games): selfish ~2e-4,
        # fair ~7e-5, altruistic ~1.3e-4. Exact expectations: 0.034, 0.494, 0.9995.
        ("selfish", 11, 0.0, 0.05),
        ("fair", 12, 0.45, 0.55),
        ("altruistic", 13, 0.95, 1.0),
    ],
)
def test_proposers_offer_their_norm(default_tables, policy, seed, low, high):
    sim = simulate(Hypothesis(), policy=policy, users=10, rounds=10, epochs=10, sims=20, seed=seed)
    df = sim.interactions
    assert len(df) == 2000
    assert set(sim.users["policy"]) == {policy}
    share = (df["offer"] / df["pot"]).to_numpy()
    exact = expected_share(default_tables, Hypothesis().policy_index(policy), df["pot"].to_numpy())
    se = np.std(share - exact, ddof=1) / np.sqrt(len(share))
    assert se < 1e-3
    assert abs(share.mean() - exact.mean()) < 4 * se
    assert low <= share.mean() <= high


@pytest.fixture(scope="module")
def mixed_group():
    """A third of each type, every pair playing both roles: responders see all kinds of offers.
    20 sims x 5 epochs x 10 games = 1,000 games, ~330 per responder type."""
    sim = simulate(
        Hypothesis(),
        policy={"selfish": 1 / 3, "fair": 1 / 3, "altruistic": 1 / 3},
        assign="exact",
        users=9,
        rounds=10,
        epochs=5,
        sims=20,
        seed=5,
    )
    types = sim.users.rename(columns={"user": "responder", "policy": "responder_policy"})
    return sim.interactions.merge(types[["sim", "responder", "responder_policy"]])


def test_selfish_responders_accept_nonzero_offers_table(default_tables):
    k = Hypothesis().policy_index("selfish")
    accept = default_tables.accept_prob()[k]
    for i, pot in enumerate(POTS.tolist()):
        # U = offer >= 1 unit, so P(accept) >= sigmoid(lam) = 0.98 at lam = 4
        assert accept[i, 1 : pot + 1].min().item() >= 0.9


def test_selfish_responders_accept_nonzero_offers_simulated(mixed_group):
    # ~330 responses with p ~ 0.98: binomial sd ~ 0.008, so 0.9 is ~10 sd below.
    rows = mixed_group[(mixed_group["responder_policy"] == "selfish") & (mixed_group["offer"] > 0)]
    assert len(rows) > 250
    assert rows["accepted"].mean() >= 0.9


def test_fair_responders_reject_low_offers_table(default_tables):
    k = Hypothesis().policy_index("fair")
    accept = default_tables.accept_prob()[k]
    for i, pot in enumerate(POTS.tolist()):
        low = [o for o in range(pot + 1) if o < 0.2 * pot]
        # every offer below 20% of the pot is rejected more often than not ...
        assert accept[i, low].max().item() < 0.5
    # ... and, on average over those offers, almost always
    lows = [
        accept[i, o].item() for i, p in enumerate(POTS.tolist()) for o in range(p) if o < 0.2 * p
    ]
    assert np.mean(lows) < 0.01


def test_fair_responders_reject_low_offers_simulated(mixed_group):
    rows = mixed_group[
        (mixed_group["responder_policy"] == "fair")
        & (mixed_group["offer"] < 0.2 * mixed_group["pot"])
    ]
    # the low offers come from the selfish proposers: ~110 of them
    assert len(rows) > 50
    assert 1 - rows["accepted"].mean() > 0.5


def test_altruistic_and_fair_responders_accept_what_their_norm_offers(mixed_group):
    """A fair responder accepts half the pot; an altruistic one accepts anything."""
    fair = mixed_group[
        (mixed_group["responder_policy"] == "fair")
        & ((mixed_group["offer"] - mixed_group["pot"] / 2).abs() <= 1)
    ]
    assert len(fair) > 50
    assert fair["accepted"].mean() > 0.95
    alt = mixed_group[mixed_group["responder_policy"] == "altruistic"]
    assert alt["accepted"].mean() > 0.95


@pytest.mark.parametrize("policy", DEFAULT_POLICIES + (PolicyType("spiteful", w=-1.0),))
def test_offers_become_uniform_as_rationality_vanishes(float64, policy):
    w, alpha, beta = policy_parameters((policy,))
    t = action_tables(w, alpha, beta, POTS, 1e-6)
    probs = t.offer_logp[0].exp()
    for i, pot in enumerate(POTS.tolist()):
        assert (probs[i, : pot + 1] - 1 / (pot + 1)).abs().max().item() < 1e-3
        assert probs[i, pot + 1 :].sum().item() == 0
    # and responders accept or reject with probability 1/2
    assert (t.accept_prob() - 0.5).abs().max().item() < 1e-3
