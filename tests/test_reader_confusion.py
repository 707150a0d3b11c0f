"""A tone reader's confusion matrix in the model (``Hypothesis.reader_confusion``).

The model scores a reported tone ``t`` of a user of manner ``m`` with
``P(t | m) = sum_tone E[m, tone] R[tone, t]``: checked against a hand computation, an identity
``R`` changes nothing, a reader that mistakes rude and neutral 30% of the time weakens a rude
tone's evidence accordingly, and a reader that never reports a tone (a column of zeros) gives a
finite density equal to the Pyro model's, with such a tone refused in the data.
"""

from __future__ import annotations

import math

import pandas as pd
import pyro
import pytest
import reference as ref
import torch
from pyro.infer.mcmc.util import initialize_model

from scai.inference.fit import fit
from scai.models.data import validate_frame
from scai.models.errors import DataError, HypothesisError
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.language import MANNERS
from scai.models.layout import GroupData
from scai.models.marginal import tone_loglik
from scai.models.model import MAX_PLATE_NESTING, social_contract_model
from scai.models.simulate import simulate

IDENTITY = tuple(tuple(float(i == j) for j in range(4)) for i in range(4))
#: rows and columns: neutral, polite, rude, sycophantic
RUDE_NEUTRAL_30 = (
    (0.7, 0.0, 0.3, 0.0),
    (0.0, 1.0, 0.0, 0.0),
    (0.3, 0.0, 0.7, 0.0),
    (0.0, 0.0, 0.0, 1.0),
)
#: a reader that never reports polite (it was not trained on it): polite messages are read as
#: each of the other three alike
NEVER_POLITE = (
    (0.98, 0.0, 0.01, 0.01),
    (1 / 3, 0.0, 1 / 3, 1 / 3),
    (0.02, 0.0, 0.97, 0.01),
    (0.0, 0.0, 0.02, 0.98),
)


def test_emission_is_tone_emission_times_confusion(float64):
    hyp = Hypothesis(tone_fidelity=0.7, reader_confusion=NEVER_POLITE)
    got = hyp.emission()
    for i, m in enumerate(MANNERS):
        for j, t in enumerate(MANNERS):
            want = ref.reported_emission(m, t, 0.7, NEVER_POLITE)
            assert float(got[i, j]) == pytest.approx(want, abs=1e-12)
    torch.testing.assert_close(got.sum(-1), torch.ones(4, dtype=torch.float64))
    assert (got[:, MANNERS.index("polite")] == 0).all()


def test_identity_confusion_changes_nothing():
    sim = simulate(PRESETS["stereotyped"], policy="selfish=0.5,altruistic=0.5", users=6, seed=3)
    given = PRESETS["stereotyped"]
    read = given.with_(reader_confusion=IDENTITY)
    assert torch.equal(read.emission(), given.emission())
    data = GroupData.from_table(sim.interactions)
    assert torch.equal(tone_loglik(data, read), tone_loglik(data, given))
    a = fit(sim.interactions, given, num_draws=200)
    b = fit(sim.interactions, read, num_draws=200)
    torch.testing.assert_close(b.pi_mean(), a.pi_mean(), rtol=0, atol=0)


def _one_rude_message() -> GroupData:
    """One game: user ``u`` proposes in a (reported) rude tone, ``v`` accepts in silence."""
    row = dict(sim="0", epoch=1, round=1, proposer="u", responder="v", currency="dollars")
    row |= dict(pot=10, offer=5, accepted=1, proposer_tone="rude", responder_tone="")
    return GroupData.from_table(validate_frame(pd.DataFrame([row])))


def test_a_reader_that_confuses_rude_and_neutral_weakens_a_rude_tones_evidence(float64):
    """Fidelity 0.85: a rude tone is 0.85 / 0.05 = 17 times likelier from a rude user than
    from a neutral one. Read by a reader that reports rude for 30% of neutral messages and
    neutral for 30% of rude ones, the report "rude" is (0.85 * 0.7 + 0.05 * 0.3) /
    (0.05 * 0.7 + 0.85 * 0.3) = 0.61 / 0.29 = 2.1 times likelier: the same message is weaker
    evidence, and so is the user's type under the stereotype."""
    given = PRESETS["stereotyped"]
    read = given.with_(reader_confusion=RUDE_NEUTRAL_30)
    rude, neutral = MANNERS.index("rude"), MANNERS.index("neutral")
    for hyp, ratio in ((given, 0.85 / 0.05), (read, 0.61 / 0.29)):
        e = hyp.emission()
        assert float(e[rude, rude] / e[neutral, rude]) == pytest.approx(ratio, rel=1e-9)
    data = _one_rude_message()
    u = data.user_ids[0].index("u")
    selfish, fair = given.policy_index("selfish"), given.policy_index("fair")
    evidence = {}
    for name, hyp in (("given", given), ("read", read)):
        tones = tone_loglik(data, hyp)[0, u]
        # by hand: log sum_m rho[k, m] P(reported rude | m)
        for k, policy in enumerate(hyp.policy_names):
            rho = ref.coupling_row(hyp.stereotype.get(policy), hyp.stereotype_strength)
            want = math.log(
                sum(
                    rho[j] * ref.reported_emission(m, "rude", 0.85, hyp.reader_confusion)
                    for j, m in enumerate(MANNERS)
                )
            )
            assert float(tones[k]) == pytest.approx(want, abs=1e-12)
        evidence[name] = float(tones[selfish] - tones[fair])
    # selfish over fair (stereotype rows 0.85 on rude, resp. neutral, 0.05 elsewhere):
    # (0.85 * 0.85 + 3 * 0.05 * 0.05) / (0.85 * 0.05 + 0.05 * 0.85 + 2 * 0.05 * 0.05) = 8.1
    # as given; (0.85 * 0.61 + 0.05 * 0.39) / (0.85 * 0.29 + 0.05 * 0.71) = 1.9 as read
    assert math.exp(evidence["given"]) == pytest.approx(0.73 / 0.09, rel=1e-9)
    assert math.exp(evidence["read"]) == pytest.approx(0.538 / 0.282, rel=1e-9)


def test_a_tone_the_reader_never_reports_keeps_the_density_finite_and_pyros(float64):
    """Reported tones simulated from the model itself (with the reader in it, so never
    polite): the density (torch and NumPy backends) equals the Pyro model's, finite, although
    ``log P(polite)`` is ``-inf``; a reported polite tone is refused before any engine runs."""
    from scai.models.density import MarginalDensity

    hyp = PRESETS["stereotyped"].with_(reader_confusion=NEVER_POLITE, rationality_scale=0.3)
    sim = simulate(hyp, policy="selfish=0.4,fair=0.3,altruistic=0.3", users=5, sims=2, seed=8)
    tones = sim.interactions[["proposer_tone", "responder_tone"]].to_numpy().ravel()
    assert "polite" not in set(tones) and {"neutral", "rude", "sycophantic"} <= set(tones)
    data = GroupData.from_table(sim.interactions)
    density = MarginalDensity(data, hyp)
    pyro.set_rng_seed(0)
    _, pyro_potential, _, _ = initialize_model(
        social_contract_model, model_args=(data, hyp), max_plate_nesting=MAX_PLATE_NESTING
    )
    generator = torch.Generator().manual_seed(0)
    theta = density.initial() + 0.3 * torch.randn(density.coords.size, generator=generator)
    ours = -density.log_joint(theta).sum()
    cols = theta.reshape(density.coords.n_sims, density.coords.width)
    S = density.coords.n_sims
    shapes = {"pi": (S, 1, 1, -1), "lam": (S, 1, 1)}
    params = {n: cols[:, where].reshape(shapes[n]) for n, where in density.columns.items()}
    want = pyro_potential(params)
    assert math.isfinite(float(ours))
    assert float(ours) == pytest.approx(float(want), abs=1e-9)
    assert float(density(theta)) == pytest.approx(float(want), abs=1e-9)  # NumPy backend

    polite = sim.interactions.copy()
    polite.loc[3, "responder_tone"] = "polite"
    assert float(tone_loglik(GroupData.from_table(validate_frame(polite)), hyp).min()) == (
        -math.inf
    )
    with pytest.raises(DataError, match=r"row 4, column 'responder_tone'.*never reports"):
        fit(polite, hyp)
    fit(polite, hyp.with_(reader_confusion=None), num_draws=10)  # as given: fine
    # an update names the row in the new table, not in the previous and new ones together
    from scai.inference import online

    previous = fit(sim.interactions, hyp, num_draws=10)
    with pytest.raises(DataError, match=r"(?s)new_interactions: .*row 4, column 'responder_tone'"):
        online.update(previous, polite)


def test_reader_confusion_is_validated_and_round_trips_through_toml(tmp_path):
    hyp = PRESETS["stereotyped"].with_(reader_confusion=[list(r) for r in NEVER_POLITE])
    assert hyp.reader_confusion == NEVER_POLITE  # lists become tuples
    path = tmp_path / "read.toml"
    hyp.save(path)
    assert "reader_confusion" in path.read_text()
    back = Hypothesis.load(path)
    assert back.reader_confusion == NEVER_POLITE
    assert torch.equal(back.emission(), hyp.emission())
    assert "reader_confusion" not in PRESETS["stereotyped"].to_dict()  # None is left out
    bad = {
        "not a matrix": 0.5,
        "3 rows": NEVER_POLITE[:3],
        "row of 3": (*NEVER_POLITE[:3], (0.5, 0.5, 0.0)),
        "above 1": (*NEVER_POLITE[:3], (1.5, -0.5, 0.0, 0.0)),
        "NaN": (*NEVER_POLITE[:3], (math.nan, 0.0, 0.0, 1.0)),
        "text": (*NEVER_POLITE[:3], ("1", 0, 0, 0)),
        "sum 0.9": (*NEVER_POLITE[:3], (0.9, 0.0, 0.0, 0.0)),
    }
    for why, matrix in bad.items():
        with pytest.raises(HypothesisError, match="reader_confusion") as caught:
            Hypothesis(reader_confusion=matrix)
        assert "must" in str(caught.value), why
    path.write_text('reader_confusion = "identity"\n')
    with pytest.raises(HypothesisError, match="reader_confusion.*4 rows of 4 numbers"):
        Hypothesis.load(path)
    path.write_text("reader_confusion = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0.5]]\n")
    with pytest.raises(HypothesisError, match=r"reader_confusion\[3\] \(sycophantic\)"):
        Hypothesis.load(path)
