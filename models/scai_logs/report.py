"""What an import converted and what it could not, by reason, with the file and row of each.

Every message, game, file and run the importer meets is either counted as converted (under a
key of :data:`CONVERTED`) or recorded as a :class:`LogProblem` (under a key of :data:`REASONS`):
nothing is dropped without a line in the report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: What is counted as converted, and how it reads in the report.
CONVERTED: dict[str, str] = {
    "runs": "runs (one run folder: one simulation)",
    "epochs": "epoch files",
    "user_user_games": "user-user games",
    "assistant_proposes": "games where the assistant proposes to a user",
    "assistant_responds": "games where a user proposes to the assistant",
    "user_proposal:template": "user proposals in the template",
    "user_proposal:template_inside": "user proposals with the template inside other text",
    "user_proposal:free_text": "user proposals read from free text",
    "user_reply:opening": "user replies opening with Accept or Reject",
    "gpt4_proposal:template": "GPT-4 proposals in the template",
    "gpt4_proposal:template_inside": "GPT-4 proposals with the template inside other text",
    "gpt4_proposal:free_text": "GPT-4 proposals read from free text",
    "gpt4_decision:opening": "GPT-4 decisions opening with Accept or Reject",
    "gpt4_decision:last_word": "GPT-4 decisions read from their last 'accept' or 'reject'",
    "users": "users (from the configurations)",
}

#: Why something was not converted.
REASONS: dict[str, str] = {
    "unreadable_source": "the source cannot be read",
    "unreadable_folder": "a folder of the source cannot be listed, or is a link (not followed)",
    "unreadable_file": "a configuration or epoch file cannot be read",
    "truncated_archive": "the archive ends early; the files after this point are missing",
    "too_large": "a configuration or epoch file too large to be one (not read)",
    "missing_config": "a run's epoch files have no id_N_config beside them",
    "bad_config": "the configuration cannot be read",
    "conflicting_files": "a second file for a run's configuration or epoch (id_0_config and "
    "id_00_config, id_0_run_1.csv and id_0_run_01.csv, or a member repeated in an archive): "
    "the first, in path order, is read",
    "missing_epoch": "an epoch the configuration plays has no id_N_run_K.csv",
    "extra_epoch": "an epoch file beyond the configuration's epochs",
    "bad_epoch_file": "the epoch file's layout is not the original code's",
    "repeated_system_row": "a second system row (the assistant's principle) for the same epoch "
    "in an epoch file: the first is read",
    "duplicate_run": "two run folders make the same sim id",
    "game_not_in_config": "a game number the configuration does not list",
    "game_missing": "a game the configuration lists has no messages",
    "game_messages": "a game without exactly one proposal and one reply",
    "role_mismatch": "the prompt's role differs from the configuration's",
    "no_split": "a proposal with no split (fewer than two numbers)",
    "split_not_pot": "a proposal whose split does not sum to the pot",
    # (no example value: told beside the problem's own amounts, "35.5" read as one of them)
    "amount_not_whole": "a proposal with an amount that is not whole units",
    "pot_mismatch": "a proposal naming another pot than the configuration's",
    "currency_mismatch": "a proposal naming another currency than the configuration's",
    "no_decision": "a reply that opens with neither Accept nor Reject",
}


@dataclass(frozen=True)
class LogProblem:
    """Something not converted: where (file inside the source, data row) and why."""

    file: str
    row: int | None
    reason: str  # a key of REASONS
    detail: str
    text: str = ""  # the message concerned, if any

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; allowed: {', '.join(REASONS)}")

    def where(self) -> str:
        return self.file if self.row is None else f"{self.file} row {self.row}"

    def __str__(self) -> str:
        quoted = f': "{_short(self.text)}"' if self.text else ""
        return f"{self.where()}: {REASONS[self.reason]} ({self.detail}){quoted}"


@dataclass
class ImportReport:
    source: str
    converted: Counter = field(default_factory=Counter)
    not_converted: Counter = field(default_factory=Counter)  # games, by kind
    problems: list[LogProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        if key not in CONVERTED:
            raise ValueError(f"unknown count {key!r}; allowed: {', '.join(CONVERTED)}")
        self.converted[key] += n

    def problem(self, problem: LogProblem) -> None:
        self.problems.append(problem)

    def by_reason(self) -> Counter:
        return Counter(p.reason for p in self.problems)

    def summary(self) -> str:
        """A few lines for the terminal."""
        c = self.converted
        games = c["user_user_games"] + c["assistant_proposes"] + c["assistant_responds"]
        lines = [
            f"{self.source}: {c['runs']} runs, {c['epochs']} epochs, {games} games converted "
            f"({c['user_user_games']} user-user, {c['assistant_proposes']} assistant proposes, "
            f"{c['assistant_responds']} assistant responds); "
            f"{sum(self.not_converted.values())} games not converted; "
            f"{len(self.problems)} problem(s)"
        ]
        for reason, n in self.by_reason().most_common():
            first = next(p for p in self.problems if p.reason == reason)
            lines.append(f"  {n} x {REASONS[reason]}; first: {first.where()}")
        return "\n".join(lines)

    def markdown(self, examples: int = 5) -> str:
        """The full report: counts converted, then every problem grouped by reason."""
        out = [f"# Import of the original study's logs: {self.source}", ""]
        out += ["## Converted", "", "| what | count |", "|---|---|"]
        out += [f"| {label} | {self.converted[k]} |" for k, label in CONVERTED.items()]
        out += ["", "## Not converted", ""]
        if self.not_converted:
            out += ["| games | count |", "|---|---|"]
            out += [
                f"| {CONVERTED.get(k, k)} | {n} |" for k, n in sorted(self.not_converted.items())
            ]
            out.append("")
        if not self.problems:
            out += ["Nothing: every file, game and message converted.", ""]
        for reason, n in self.by_reason().most_common():
            out += [f"### {REASONS[reason]}: {n}", ""]
            group = [p for p in self.problems if p.reason == reason]
            out += [f"- {p}" for p in group[:examples]]
            if len(group) > examples:
                out.append(f"- ... and {len(group) - examples} more (all listed below)")
            out.append("")
        if any(self.by_reason()[r] > examples for r in self.by_reason()):
            out += ["## Every problem", ""] + [f"- {p}" for p in self.problems] + [""]
        if self.notes:
            out += ["## Notes", ""] + [f"- {note}" for note in self.notes] + [""]
        out.append(
            "Rows are data records of the named file, 1-based, header not counted (a message "
            "with line breaks is one row)."
        )
        return "\n".join(out) + "\n"


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
