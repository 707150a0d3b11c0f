"""One epoch's log (``id_N_run_K.csv``) as the rows scai needs, prompts left behind.

The file is a CSV with the columns ``response, agent, epoch, prompt, full_response, run,
agent_id`` (messages hold commas, quotes and line breaks). Its rows:

- ``agent = system``: the assistant's principle; ``epoch = 0`` the one it played this epoch
  with (in epoch 0 a placeholder, "Some principle was given to the flexible agents"),
  ``epoch = 1`` the one the meta-prompt wrote after it (a critique, then "Principle: ...");
- ``agent = fixed`` (a user) or ``flexible`` (one of the assistant's GPT-4 agents): a message
  of game ``agent_id``; the prompt says the role ("You are the proposer." / "You are the
  decider."), and a flexible agent's prompt states the principle it plays with ("...you must
  adhere to this principle: P You MUST follow YOUR principle...").

Rows are numbered as data records (1-based, the header not counted), the numbering a report
uses: a message with line breaks spans several lines of the file but is one row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from scai.models.cell_text import parse_whole

COLUMNS = ("response", "agent", "epoch", "prompt", "agent_id")
_PRINCIPLE = re.compile(
    r"adhere to this principle:\s*(.*?)\s*You MUST follow YOUR principle", re.DOTALL
)


class EpochFileError(ValueError):
    """An epoch file whose layout is not the one described above."""

    def __init__(self, detail: str, row: int | None = None):
        super().__init__(detail)
        self.row = row


@dataclass(frozen=True)
class Message:
    row: int  # data row in the file (1-based)
    game: int  # agent_id
    agent: str  # "fixed" or "flexible"
    role: str  # "proposer" or "decider"
    text: str
    principle: str | None  # flexible agents: the principle their prompt states


@dataclass
class EpochLog:
    """The messages of one epoch, per game, and the assistant's principles."""

    principle_before: str  # the system row with epoch 0, as written
    principle_after: str  # the system row with epoch 1, as written
    games: dict[int, list[Message]] = field(default_factory=dict)
    # a second system row for an epoch already read (not read itself): (its row, what it is)
    repeated: list[tuple[int, str]] = field(default_factory=list)


def read_epoch(lines: Iterable[str]) -> EpochLog:
    """Read an epoch file's text (an iterable of lines, as from an open file).

    Raises :class:`EpochFileError` for a missing column, an unknown agent or role, a game id
    that is not a whole number, or missing system rows; a game's own completeness (one
    proposal, one reply) is checked when the game is converted. A second system row for the
    same epoch is not read: it is listed in ``repeated`` (the first is read)."""
    reader = csv.DictReader(lines)
    try:
        return _read_rows(reader)
    except csv.Error as err:
        raise EpochFileError(f"not a readable CSV (line {reader.line_num}): {err}") from None


def _read_rows(reader: csv.DictReader) -> EpochLog:
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise EpochFileError(f"missing column(s) {', '.join(missing)}")
    system: dict[str, tuple[int, str]] = {}  # epoch: (row, principle)
    games: dict[int, list[Message]] = {}
    repeated: list[tuple[int, str]] = []
    header = reader.fieldnames or []
    for row, rec in enumerate(reader, start=1):
        fields = sum(rec.get(c) is not None for c in header)
        if fields < len(header):  # a cut file's last row (it read "agent_id None")
            raise EpochFileError(
                f"{fields} fields, fewer than the header's {len(header)} columns (a cut file?)",
                row,
            )
        agent = rec["agent"]
        if agent == "system":
            epoch = rec["epoch"]
            if epoch in system:  # not silently: the last one was read
                detail = (
                    f"a second system row with epoch {epoch!r}; the one at row "
                    f"{system[epoch][0]} is read, this row is not"
                )
                repeated.append((row, detail))
            else:
                system[epoch] = (row, rec["response"] or "")
            continue
        if agent not in ("fixed", "flexible"):
            raise EpochFileError(f"unknown agent {agent!r}", row)
        game = parse_whole(rec["agent_id"] or "")  # ``3`` or ``3.0``; not ``3.7`` nor ``inf``
        if game is None:
            detail = f"agent_id {rec['agent_id']!r} is not a whole game number"
            raise EpochFileError(detail, row)
        prompt = rec["prompt"] or ""
        if "You are the proposer" in prompt:
            role = "proposer"
        elif "You are the decider" in prompt:
            role = "decider"
        else:
            raise EpochFileError("the prompt names neither the proposer nor the decider", row)
        principle = _PRINCIPLE.search(prompt) if agent == "flexible" else None
        games.setdefault(game, []).append(
            Message(row, game, agent, role, rec["response"] or "", principle and principle[1])
        )
    if set(system) != {"0", "1"}:
        raise EpochFileError(f"expected system rows with epoch 0 and 1, found {sorted(system)}")
    return EpochLog(system["0"][1], system["1"][1], games, repeated)
