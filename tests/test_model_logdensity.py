"""The key correctness test: the Pyro model's log-density, with the discrete sites (each user's
``policy`` and ``manner``, and with clones the group's ``prototype``) enumerated out, equals an
independent hand computation made directly from the rows of the interaction table.

For each simulation ``s`` and user ``u`` the hand computation is::

    L[u, k] = log sum_m rho[k, m] * prod_(u's offers)    P(offer | k, pot, currency)
                                  * prod_(u's responses) P(accept | k, pot, offer, currency)
                                  * prod_(u's messages)  E[m, tone]

    sum_u log sum_k pi_k exp(L[u, k])                                      without clones
    log sum_z0 pi_z0 prod_u sum_k (c [k = z0] + (1 - c) pi_k) exp(L[u, k])   with clones

with the README's actions: ``P(offer) = (1 - eps) softmax(lam EU_k) + eps / (pot + 1)`` and
``P(accept) = (1 - eps) sigmoid(lam U'_k) + eps / 2``, ``U'_k`` by the type's responder's
parameters (role-dependent norms) and ``EU_k`` by its proposer's (see ``tests/reference.py``).

Plus the prior log-densities of the continuous sites the test fixes (``pi`` and, when latent,
``lam``, ``shift_shared``, ``shift``, ``lapse``, ``strength``, ``clone``): conditioning makes
them observed, so the model's trace includes them. It uses the scalar formulas in
``tests/reference.py``, not ``scai.models.layout``, ``scai.models.policies``,
``scai.models.language`` or ``scai.models.marginal``; of ``scai.models`` it reads only the
hypothesis's parameters and the currencies' ``essential`` flags.

The model side is ``-TraceEnum_ELBO.loss`` with an empty guide: with every continuous site
conditioned, the guide has nothing to sample and the "ELBO" is the exact log marginal of the
enumerated sites.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pyro
import pytest
import reference as ref
import torch
from pyro.poutine.util import site_is_subsample
from small_groups import RUDE_AS_NEUTRAL

from scai.inference.posterior import Posterior
from scai.models.data import validate_frame
from scai.models.game import CURRENCIES
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.language import TONES
from scai.models.layout import GroupData
from scai.models.model import MAX_PLATE_NESTING, social_contract_model
from scai.models.policies import PolicyType
from scai.models.simulate import simulate

CURRENCY_ORDER = ("apples", "medicine", "dollars")
MIX = "selfish=0.4,fair=0.3,altruistic=0.3"
# sim "2" has 4 players and a ghost that never played: the users plate is padded there
USERS = {"2": ["u0", "u1", "u2", "u3", "ghost"]}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """3 sims (6, 6 and 4 players) x 3 epochs, three currencies, ~30% of tones unheard and,
    in sim 1, a third of the proposers unknown (responder-only rows)."""
    hyp = PRESETS["stereotyped"]
    six = simulate(
        hyp,
        policy=MIX,
        users=6,
        rounds=6,
        epochs=3,
        sims=2,
        currency=["apples", "medicine"],
        seed=21,
    )
    four = simulate(hyp, policy=MIX, users=4, rounds=4, epochs=3, currency="dollars", seed=22)
    four.interactions["sim"] = "2"
    df = pd.concat([six.interactions, four.interactions], ignore_index=True)
    rng = np.random.default_rng(0)
    for col in ("proposer_tone", "responder_tone"):
        df.loc[rng.random(len(df)) < 0.3, col] = ""
    unknown = (df["sim"] == "1") & (rng.random(len(df)) < 0.35)
    df.loc[unknown, ["proposer", "proposer_tone"]] = ""
    assert unknown.sum() >= 3
    assert (df["proposer_tone"] == "").sum() > unknown.sum()
    return validate_frame(df)


@functools.cache
def offer_logps(
    pot: int, w: float, alpha: float, beta: float, lam: float, lapse: float
) -> list[float]:
    return ref.offer_logps(pot, w, alpha, beta, lam, lapse)


def responder_of(p: PolicyType) -> tuple[float, float, float]:
    """A type's responder's ``(w, alpha, beta)``, read off its fields: ``responder`` where the
    norm is role-dependent, else the type's own."""
    return p.responder if p.responder is not None else (p.w, p.alpha, p.beta)


def hand_log_density(
    df: pd.DataFrame,
    hyp: Hypothesis,
    pi: dict[str, list[float]],
    lam: dict[str, float],
    shift0: dict[str, float],
    shift: dict[tuple[str, str], float],
    currencies: tuple[str, ...],
    sims: list[str],
    lapse: dict[str, float] | None = None,
    strength: dict[str, float] | None = None,
    clone: dict[str, float] | None = None,
) -> float:
    """``log p(data, continuous sites)`` straight from the table rows (see module docstring).
    ``lapse``, ``strength`` and ``clone``: each simulation's value where the hypothesis makes
    the site latent (a Beta prior), else the hypothesis's fixed lapse and strength and no
    clones."""
    K = len(hyp.policies)
    M = ref.MANNERS
    mu = hyp.essential_shift
    priors = {"lapse": hyp.lapse_prior, "strength": hyp.stereotype_prior, "clone": hyp.clone_prior}
    given = {"lapse": lapse, "strength": strength, "clone": clone}
    fixed = {"lapse": hyp.lapse, "strength": hyp.stereotype_strength, "clone": 0.0}

    def bounded(site: str, s: str) -> float:
        return given[site][s] if priors[site] is not None else fixed[site]

    def weight_shift(s: str, c: str) -> float:
        if hyp.currency_scale > 0:
            return shift[(s, c)]
        return shift0[s] + mu * CURRENCIES[c].essential

    total = 0.0
    # the prior of every conditioned continuous site, for every simulation (and currency)
    for s in sims:
        total += ref.dirichlet_logpdf(pi[s], hyp.pi_concentration)
        if hyp.rationality_scale > 0:
            total += ref.lognormal_logpdf(lam[s], math.log(hyp.rationality), hyp.rationality_scale)
        if hyp.shared_scale > 0:
            total += ref.normal_logpdf(shift0[s], 0.0, hyp.shared_scale)
        if hyp.currency_scale > 0:
            for c in currencies:
                mean = shift0[s] + mu * CURRENCIES[c].essential
                total += ref.normal_logpdf(shift[(s, c)], mean, hyp.currency_scale)
        for site, ab in priors.items():
            if ab is not None:
                total += ref.beta_logpdf(given[site][s], *ab)

    # the users: policy-dependent and manner-dependent log-likelihood terms, then the mixture
    for s, rows in df.groupby("sim", sort=False):
        lam_s = lam[s] if hyp.rationality_scale > 0 else hyp.rationality
        eps = bounded("lapse", s)
        rho = [
            ref.coupling_row(hyp.stereotype.get(p.name), bounded("strength", s))
            for p in hyp.policies
        ]
        by_policy: dict[str, list[float]] = defaultdict(lambda: [0.0] * K)
        by_manner: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(M))
        for row in rows.itertuples(index=False):
            d = weight_shift(s, row.currency)
            pot, offer = int(row.pot), int(row.offer)
            if row.proposer:
                for k, p in enumerate(hyp.policies):
                    logps = offer_logps(pot, p.w + d, p.alpha, p.beta, lam_s, eps)
                    by_policy[row.proposer][k] += logps[offer]
                if row.proposer_tone:
                    for j, m in enumerate(M):
                        e = ref.reported_emission(
                            m, row.proposer_tone, hyp.tone_fidelity, hyp.reader_confusion
                        )
                        by_manner[row.proposer][j] += math.log(e)
            for k, p in enumerate(hyp.policies):
                w, alpha, beta = responder_of(p)
                by_policy[row.responder][k] += ref.log_response(
                    int(row.accepted), pot, offer, (w + d, alpha, beta), lam_s, eps
                )
            if row.responder_tone:
                for j, m in enumerate(M):
                    e = ref.reported_emission(
                        m, row.responder_tone, hyp.tone_fidelity, hyp.reader_confusion
                    )
                    by_manner[row.responder][j] += math.log(e)
        # each user's log-likelihood were it of type k, its manner summed out
        user_logliks = [
            [
                ref.logsumexp(
                    [math.log(rho[k][j]) + by_policy[u][k] + by_manner[u][j] for j in range(len(M))]
                )
                for k in range(K)
            ]
            for u in set(by_policy) | set(by_manner)
        ]
        if priors["clone"] is None:
            total += ref.mixture_loglik([math.log(v) for v in pi[s]], user_logliks)
        else:
            total += ref.clone_loglik(pi[s], bounded("clone", s), user_logliks)
    return total


def empty_guide(*args, **kwargs) -> None:
    pass


def model_log_density(data: GroupData, hyp: Hypothesis, conditioned: dict) -> float:
    model = pyro.poutine.condition(social_contract_model, data=conditioned)
    elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=MAX_PLATE_NESTING)
    return -elbo.loss(model, empty_guide, data, hyp)


SPITE = Hypothesis(
    name="everything",
    policies=(
        PolicyType("selfish"),
        PolicyType("spiteful", w=-1.0),
        PolicyType("averse", w=0.2, alpha=0.8, beta=0.5),
    ),
    pi_concentration=(0.7, 1.3, 2.0),
    rationality=2.5,
    rationality_scale=0.4,
    stereotype={"spiteful": {"rude": 3.0, "neutral": 1.0}, "averse": {"polite": 1.0}},
    stereotype_strength=0.6,
    tone_fidelity=0.7,
    shared_scale=0.3,
    currency_scale=0.2,
    essential_shift=0.5,
)
#: A role-dependent type whose responder's weight on the other's payoff is shifted by the
#: currency too, with a fixed lapse and clones: every new term at once, beside the presets'.
ROLES = Hypothesis(
    name="roles",
    policies=(
        PolicyType("selfish"),
        PolicyType("grudging", w=0.3, beta=0.4, responder=(-0.5, 1.5, 0.2)),
        PolicyType("fair", alpha=2.0, beta=2.0),
    ),
    pi_concentration=(1.0, 1.0, 1.0),
    stereotype={"grudging": {"rude": 1.0}},
    stereotype_strength=0.5,
    currency_scale=0.4,
    essential_shift=1.0,
    lapse=0.1,
    clone_prior=(2.0, 2.0),
)
HYPOTHESES = {
    "neutral": PRESETS["neutral"],
    "stereotyped": PRESETS["stereotyped"],
    "latent_rationality": Hypothesis(rationality_scale=0.3),
    "pooled": PRESETS["pooled"],
    "essential_goods_shared": PRESETS["essential_goods_shared"],
    "shared_shift_only": Hypothesis(shared_scale=0.5, essential_shift=1.0),
    "everything": SPITE,
    # tones read by a reader that mistakes rude and neutral for each other 30% of the time
    "read_tones": PRESETS["stereotyped"].with_(reader_confusion=RUDE_AS_NEUTRAL),
    # role-dependent norms (selfish_rejecting responds by alpha = 0.5), a latent lapse and clones
    "real_agents": PRESETS["real_agents"],
    # ... and a stereotype whose strength is latent
    "real_agents_stereotyped": PRESETS["real_agents_stereotyped"],
    "fixed_lapse": SPITE.with_(lapse=0.15),
    "clones": PRESETS["stereotyped"].with_(clone_prior=(2.0, 2.0)),
    "roles": ROLES,
}


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_log_density_matches_hand_computation(float64, table, name):
    hyp = HYPOTHESES[name]
    data = GroupData.from_table(table, users=USERS, currencies=CURRENCY_ORDER)
    sims = data.sim_ids
    S, U, _ = data.shape
    C, K = len(CURRENCY_ORDER), len(hyp.policies)
    assert sorted(sims) == ["0", "1", "2"]
    assert not bool(data.user_mask.all())  # padding in the users plate is exercised

    # values for the continuous sites, fixed per simulation name
    rng = np.random.default_rng(sum(map(ord, name)))
    pi = {s: rng.dirichlet([2.0] * K).tolist() for s in sims}
    lam = {s: float(rng.uniform(1.5, 6.0)) for s in sims}
    shift0 = {s: float(rng.normal(0, 0.5)) if hyp.shared_scale > 0 else 0.0 for s in sims}
    shift = {
        (s, c): shift0[s]
        + hyp.essential_shift * CURRENCIES[c].essential
        + float(rng.normal(0, 0.3))
        for s in sims
        for c in CURRENCY_ORDER
    }

    conditioned = {"pi": torch.tensor([pi[s] for s in sims]).reshape(S, 1, 1, K)}
    if hyp.rationality_scale > 0:
        conditioned["lam"] = torch.tensor([lam[s] for s in sims]).reshape(S, 1, 1)
    if hyp.shared_scale > 0:
        conditioned["shift_shared"] = torch.tensor([shift0[s] for s in sims]).reshape(S, 1, 1)
    if hyp.currency_scale > 0:
        values = [[shift[(s, c)] for c in CURRENCY_ORDER] for s in sims]
        conditioned["shift"] = torch.tensor(values).reshape(S, 1, C)
    # the Beta sites in (0, 1) where latent: clone probabilities away from 1/2, where c and
    # 1 - c would be the same mixture
    bounded = {
        "lapse": {s: float(rng.uniform(0.02, 0.3)) for s in sims},
        "strength": {s: float(rng.uniform(0.3, 0.95)) for s in sims},
        "clone": {s: float(rng.uniform(0.6, 0.95)) for s in sims},
    }
    latent = {"lapse": hyp.lapse_prior, "strength": hyp.stereotype_prior, "clone": hyp.clone_prior}
    for site, prior in latent.items():
        if prior is not None:
            conditioned[site] = torch.tensor([bounded[site][s] for s in sims]).reshape(S, 1, 1)
    hand = functools.partial(
        hand_log_density,
        pi=pi,
        lam=lam,
        shift0=shift0,
        shift=shift,
        currencies=CURRENCY_ORDER,
        sims=sims,
        **bounded,
    )

    got = model_log_density(data, hyp, conditioned)
    want = hand(table, hyp)
    assert math.isfinite(want) and want < 0
    assert got == pytest.approx(want, abs=1e-5)

    # the posterior's log joint of a draw (ArviZ's sample_stats "lp") is this same density
    draws = {k: v.reshape(1, 1, S, -1).squeeze(-1) for k, v in conditioned.items()}
    post = Posterior.from_draws("mcmc", data, hyp, table, draws)
    assert float(post.log_joint()[0, 0]) == pytest.approx(want, abs=1e-5)

    # the check has teeth: changing one observed decision changes both sides alike
    flipped = table.copy()
    flipped.loc[0, "accepted"] = 1 - flipped.loc[0, "accepted"]
    data2 = GroupData.from_table(flipped, users=USERS, currencies=CURRENCY_ORDER)
    got2 = model_log_density(data2, hyp, conditioned)
    want2 = hand(flipped, hyp)
    assert abs(got2 - got) > 1e-3
    assert got2 == pytest.approx(want2, abs=1e-5)


def test_model_trace_has_the_named_sites(float64, table):
    """Every site the docstring names, with the plates' shapes, and nothing unconditioned
    left for a guide when the continuous sites are fixed."""
    hyp = PRESETS["pooled"]
    data = GroupData.from_table(table, users=USERS, currencies=CURRENCY_ORDER)
    S, U, E = data.shape
    trace = pyro.poutine.trace(social_contract_model).get_trace(data, hyp)
    sites = {
        n: s for n, s in trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)
    }
    assert set(sites) == {
        "pi",
        "shift_shared",
        "shift",
        "policy",
        "manner",
        "offer",
        "accept",
        "tone",
    }
    assert sites["pi"]["value"].shape == (S, 1, 1, 3)
    assert sites["shift"]["value"].shape == (S, 1, len(CURRENCY_ORDER))
    assert sites["policy"]["value"].shape == (S, U, 1)
    for name in ("offer", "accept", "tone"):
        assert sites[name]["is_observed"]
        assert sites[name]["value"].shape == (S, U, E)
    assert sites["policy"]["infer"].get("enumerate") == "parallel"
    assert sites["manner"]["infer"].get("enumerate") == "parallel"


def test_layout_keeps_every_message_and_decision(table):
    """Counts read from the padded tensors equal counts read from the table rows."""
    data = GroupData.from_table(table, users=USERS, currencies=CURRENCY_ORDER)
    known = table["proposer"] != ""
    assert int(data.is_proposer.sum()) == int(known.sum())
    assert int(data.is_responder.sum()) == len(table)
    assert int(data.event_mask.sum()) == len(table) + int(known.sum())
    heard = (table.loc[known, "proposer_tone"] != "").sum() + (table["responder_tone"] != "").sum()
    assert int(data.tone_mask.sum()) == heard
    # per-user tone counts
    counts = data.tone_counts()
    for s, sim in enumerate(data.sim_ids):
        rows = table[table["sim"] == sim]
        for u, user in enumerate(data.user_ids[s]):
            said = pd.concat(
                [
                    rows.loc[rows["proposer"] == user, "proposer_tone"],
                    rows.loc[rows["responder"] == user, "responder_tone"],
                ]
            )
            want = [int((said == t).sum()) for t in TONES]
            assert counts[s, u].tolist() == want, (sim, user)
    # the ghost is a user with no events
    s = data.sim_ids.index("2")
    ghost = data.user_ids[s].index("ghost")
    assert bool(data.user_mask[s, ghost]) and not bool(data.event_mask[s, ghost].any())


def test_reference_clone_mixture_is_the_sum_over_every_type_assignment():
    """``ref.clone_loglik`` (the prototype summed out in closed form per user) equals the
    brute-force sum over the prototype and every user's type of ``P(z0) prod_u P(z_u | z0)
    e^L[u, z_u]``; at ``c = 0`` it is the independent mixture, and lapse mixing keeps
    probabilities normalised."""
    rng = np.random.default_rng(5)
    K, U = 3, 4
    pi = rng.dirichlet([1.0] * K).tolist()
    L = rng.normal(-3.0, 2.0, size=(U, K)).tolist()
    for c in (0.0, 0.3, 0.8, 1.0):
        brute = []
        for z0 in range(K):
            for zs in itertools.product(range(K), repeat=U):
                p = pi[z0]
                for u, z in enumerate(zs):
                    p *= (c * (z == z0) + (1 - c) * pi[z]) * math.exp(L[u][z])
                if p > 0:
                    brute.append(math.log(p))
        assert ref.clone_loglik(pi, c, L) == pytest.approx(ref.logsumexp(brute), abs=1e-10)
    independent = ref.mixture_loglik([math.log(v) for v in pi], L)
    assert ref.clone_loglik(pi, 0.0, L) == pytest.approx(independent, abs=1e-10)
    assert abs(ref.clone_loglik(pi, 0.8, L) - independent) > 1e-2

    for eps in (0.0, 0.2, 1.0):
        offers = ref.offer_logps(7, 0.3, 0.5, 0.2, 3.0, eps)
        assert sum(math.exp(v) for v in offers) == pytest.approx(1.0, abs=1e-12)
        responses = [ref.log_response(a, 7, 2, (0.0, 0.5, 0.0), 3.0, eps) for a in (0, 1)]
        assert sum(math.exp(v) for v in responses) == pytest.approx(1.0, abs=1e-12)
    assert ref.offer_logps(7, 0.3, 0.5, 0.2, 3.0, 1.0) == pytest.approx([-math.log(8)] * 8)
