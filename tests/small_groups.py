"""Small data sets shared by several test modules."""

from __future__ import annotations

from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.simulate import simulate


def three_mixed_groups() -> GroupData:
    """Three simulations of 5 mixed-norm users with stereotyped tones, in dollars, medicine
    (an essential good) and dollars: every kind of latent site has data to act on. Build it
    inside a test (or after the ``float64`` fixture) to get the dtype the test wants."""
    sim = simulate(
        PRESETS["stereotyped"],
        policy="selfish=0.4,fair=0.3,altruistic=0.3",
        users=5,
        rounds=5,
        epochs=2,
        sims=3,
        currency=["dollars", "medicine", "dollars"],
        seed=5,
        pot_range=(2, 9),
    )
    return GroupData.from_table(sim.interactions)
