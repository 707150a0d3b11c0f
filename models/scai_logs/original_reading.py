"""How the original study's own code read the assistant's offers, replicated to show its misreads.

The published curves come from ``scan_experiment_for_scores`` in
``experiments/dictator_simulation/combine.py`` of the study's repository
(``janphilippfranken/scai``). For each epoch file it reads every message's whole numbers
(``\\d+``); a message with at least three is taken for a proposal, its third number for the
decider's units and its first for the pot (the pot of the *last* such message in the file
divides them all); the assistant's share of the epoch is the sum of the decider's units over its
messages so read, divided by their count times that pot.

For a template proposal ("For the P ..., the proposer will get X, and the decider will get Y")
the numbers are P, X, Y and the reading is right. It is wrong when a number precedes the split
("...divide a whopping 19 dollars! For this ... sum of 19 dollars, the proposer ... will get 10,
and the decider ... will get 9": the third number is the proposer's 10), and it would count a
reply with three numbers as a proposal. :func:`authors_offered_share` applies this reading to
an epoch's messages in file order; :func:`epoch_messages` rebuilds that order from scai's
interaction table (the system rows that open each file only ever set the pot before the first
proposal resets it, so they are left out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from scai.models.layout import ASSISTANT

_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class AuthorsReading:
    """What the original code read from one epoch of one run."""

    offers: tuple[int, ...]  # the decider's units of each assistant message taken for a proposal
    pot: int  # the pot it divided by

    @property
    def offered_share(self) -> float:
        """The assistant's offered share (% of the pot) as the original code computed it."""
        return 100.0 * sum(self.offers) / (len(self.offers) * self.pot)


def authors_offered_share(messages: Iterable[tuple[bool, str]]) -> AuthorsReading:
    """The original code's reading of one epoch: ``messages`` are ``(by_assistant, text)`` in
    the file's order. Raises ``ValueError`` when no assistant message has three numbers (the
    original code divided by zero there)."""
    offers: list[int] = []
    pot = 0
    for by_assistant, text in messages:
        numbers = [int(n) for n in _NUMBER.findall(text or "")]
        if len(numbers) < 3:
            continue
        if by_assistant:
            offers.append(numbers[2])
        pot = numbers[0]
    if not offers or pot == 0:
        raise ValueError("no assistant message with three numbers: the original code fails")
    return AuthorsReading(tuple(offers), pot)


def epoch_messages(games: pd.DataFrame) -> list[tuple[bool, str]]:
    """An epoch's messages in the original file's order (game by game, the proposal before the
    reply) from its rows of an interaction table with text columns."""
    out: list[tuple[bool, str]] = []
    for game in games.sort_values("round").itertuples(index=False):
        out.append((game.proposer == ASSISTANT, game.proposer_text))
        out.append((game.responder == ASSISTANT, game.responder_text))
    return out
