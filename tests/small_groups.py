"""Small data sets shared by several test modules."""

from __future__ import annotations

from scai.models.hypotheses import PRESETS
from scai.models.layout import GroupData
from scai.models.simulate import simulate

#: A tone reader's confusion (rows: the tone said; columns: the tone read, in ``TONES``' order)
#: that mistakes rude and neutral for each other 30% of the time.
RUDE_AS_NEUTRAL = (
    (0.7, 0.0, 0.3, 0.0),
    (0.1, 0.8, 0.0, 0.1),
    (0.3, 0.0, 0.7, 0.0),
    (0.0, 0.05, 0.0, 0.95),
)


def three_mixed_groups() -> GroupData:
    """Three simulations of 5 mixed-norm users with stereotyped tones, in dollars, medicine
    (an essential good) and dollars: every kind of latent site has data to act on. Build it
    inside a test (or after the ``float64`` fixture) to get the dtype the test wants."""
    return GroupData.from_table(_mixed_stereotyped(users=5, rounds=5, epochs=2, seed=5))


def _mixed_stereotyped(users: int, rounds: int, epochs: int, seed: int):
    """Three simulations of mixed-norm users with stereotyped tones, in dollars, medicine and
    dollars, pots 2-9: the interaction table."""
    return simulate(
        PRESETS["stereotyped"],
        policy="selfish=0.4,fair=0.3,altruistic=0.3",
        users=users,
        rounds=rounds,
        epochs=epochs,
        sims=3,
        currency=["dollars", "medicine", "dollars"],
        seed=seed,
        pot_range=(2, 9),
    ).interactions


def padded_two_currency_groups() -> GroupData:
    """:func:`three_mixed_groups`' design with 6 users and 3 epochs, then: in the first
    simulation two users' games dropped (the users plate padded: 4 users of 6 there, 5 in the
    third, where one never played), and in the second its even rounds played in dollars (two
    currencies in one simulation, medicine essential). The data are no longer a draw from the
    model; they are for checks that hold for any data (a gradient equal to autograd's)."""
    table = _mixed_stereotyped(users=6, rounds=4, epochs=3, seed=3).copy()
    first, second = table["sim"].unique()[:2]
    table.loc[(table["sim"] == second) & (table["round"] % 2 == 0), "currency"] = "dollars"
    gone = sorted(set(table.loc[table["sim"] == first, "proposer"]))[:2]
    playing = table["proposer"].isin(gone) | table["responder"].isin(gone)
    return GroupData.from_table(table[~((table["sim"] == first) & playing)])
