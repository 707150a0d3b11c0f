"""From read run folders to scai's tables: interactions, users, the GPT-4 assistant, runs.

- **interactions** (:data:`scai.models.data.INTERACTION_COLUMNS` plus the messages as written):
  one row per game, user-user and assistant-user alike. ``epoch`` and ``round`` count from 1
  (file ``id_N_run_K.csv`` is epoch ``K + 1``, the paper's numbering; game ``agent_id`` i is
  round ``i + 1``). The assistant plays as :data:`scai.models.layout.ASSISTANT`, as in scai's
  own protocol: its offers and decisions are in the table, and the model does not score them
  (only the users' actions are evidence). Tones are left empty.
- **users**: ``sim, user, policy, manner`` from the configuration, every configured user
  (those who meet only the assistant too).
- **gpt4**: one row per ``sim, epoch``: the assistant's proposal (``offer, pot,
  offered_share`` in % of the pot, how it was read, the text), the user's reply to it
  (``accepted``), the user's proposal to it (``proposer, proposer_offer``) and its decision
  (``assistant_accepted``, how it was read, the text), and its principles: ``principle_before``
  (stated in the prompt of the agent that proposes), ``decision_principle`` (of the agent that
  decides: the two differ only in the first epoch, when they start from the configured
  ``initial_util`` of each) and ``principle_after`` (the meta-prompt's output, as written).
  A field that could not be read is empty, and the report says why. (The shared runs play one
  game each way with the assistant per epoch; with more, the row holds the first of each.)
- **runs**: ``sim, experiment, condition, policy, manner, currency, source`` and the run's
  number, the assistant's manner and starting policies, users and epochs converted.

``sim`` is ``EXPERIMENT/CONDITION/NN``: ``exp3/altruistic_rude/07``, the experiment read from
the folder's path (``experiment_3...``) or the configuration's ``sim.sim_dir``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from scai.models.data import INTERACTION_COLUMNS, TEXT_COLUMNS, USER_COLUMNS
from scai.models.layout import ASSISTANT
from scai.models.scai_logs.config import ConfigError, Game, RunConfig, is_assistant, parse_config
from scai.models.scai_logs.epoch_file import EpochLog, Message
from scai.models.scai_logs.messages import MessageError, parse_proposal, parse_reply
from scai.models.scai_logs.report import ImportReport, LogProblem
from scai.models.scai_logs.sources import RunFolder

GPT4_COLUMNS: tuple[str, ...] = (
    "sim",
    "epoch",
    "currency",
    "pot",
    "offer",
    "offered_share",
    "proposal_form",
    "responder",
    "accepted",
    "proposer",
    "proposer_offer",
    "assistant_accepted",
    "decision_form",
    "proposal_text",
    "decision_text",
    "principle_before",
    "decision_principle",
    "principle_after",
)
RUN_COLUMNS: tuple[str, ...] = (
    "sim",
    "experiment",
    "condition",
    "policy",
    "manner",
    "currency",
    "source",
    "run",
    "assistant_manner",
    "assistant_start_proposing",
    "assistant_start_deciding",
    "users",
    "epochs",
)
_EXPERIMENT = re.compile(r"experiment_(\d+)")


@dataclass
class ImportResult:
    interactions: pd.DataFrame  # INTERACTION_COLUMNS + TEXT_COLUMNS
    users: pd.DataFrame  # USER_COLUMNS
    gpt4: pd.DataFrame  # GPT4_COLUMNS
    runs: pd.DataFrame  # RUN_COLUMNS
    report: ImportReport


@dataclass
class _Game:
    """One converted game: the interaction row's values."""

    proposer: str
    responder: str
    offer: int
    accepted: int
    proposal: Message
    reply: Message
    form: tuple[str, str]  # how the proposal and the reply were read


def build_tables(
    runs: list[RunFolder], report: ImportReport, progress: bool = False
) -> ImportResult:
    """Convert every run; count what converted and record every problem in ``report``.
    ``progress``: a bar of the runs converted on a terminal (50 times the original logs: a
    minute and a half)."""
    from scai.inference.progress import progress_bar  # (the layer above, on first use)

    bar = progress_bar(len(runs), "runs", disable=None if progress else True)
    try:
        return _build_tables(runs, report, bar)
    finally:
        bar.close()


def _build_tables(runs: list[RunFolder], report: ImportReport, bar) -> ImportResult:
    games, users, gpt4, run_rows = [], [], [], []
    seen: dict[str, str] = {}
    for run in runs:
        bar.update(1)
        config = _config(run, report)
        if config is None:
            continue
        sim = f"{_experiment(run, config)}/{config.condition()}/{run.run:02d}"
        if sim in seen:
            detail = f"{sim} is also {seen[sim]}"
            report.problem(LogProblem(run.folder, None, "duplicate_run", detail))
            _not_converted(report, [g for epoch in config.games for g in epoch])
            continue
        seen[sim] = run.folder
        epochs = 0
        for k, (pot, epoch_games) in enumerate(zip(config.pots, config.games, strict=True)):
            log = _epoch(run, k, epoch_games, report)
            if log is None:
                continue
            epochs += 1
            played = _convert_epoch(
                run.epoch_files[k], log, epoch_games, pot, config.currency, report
            )
            for i, game in sorted(played.items()):
                games.append(_interaction(sim, k, i, config.currency, pot, game))
            gpt4.append(_gpt4_row(sim, k, config.currency, pot, log, played, epoch_games))
        for k in sorted(set(run.epoch_files) - set(range(len(config.pots)))):
            detail = f"epoch {k}; the configuration has {len(config.pots)} pots"
            report.problem(LogProblem(run.epoch_files[k], None, "extra_epoch", detail))
        users += [(sim, u.name, u.policy, u.manner) for u in config.users]
        report.count("users", len(config.users))
        report.count("runs")
        run_rows.append(_run_row(sim, run, config, epochs))
    columns = [*INTERACTION_COLUMNS, *TEXT_COLUMNS]
    return ImportResult(
        interactions=pd.DataFrame(games, columns=columns),
        users=pd.DataFrame(users, columns=list(USER_COLUMNS)),
        gpt4=pd.DataFrame(gpt4, columns=list(GPT4_COLUMNS)),
        runs=pd.DataFrame(run_rows, columns=list(RUN_COLUMNS)),
        report=report,
    )


def _config(run: RunFolder, report: ImportReport) -> RunConfig | None:
    expected = run.config_file or run.label(f"id_{run.run}_config")
    lost = sum(len(log.games) for log in run.epochs.values() if log is not None)
    if run.config_text is None:
        if run.config_file is None:
            detail = f"{len(run.epoch_files)} epoch file(s) without it"
            report.problem(LogProblem(expected, None, "missing_config", detail))
        report.not_converted["games of runs without a readable configuration"] += lost
        return None
    try:
        return parse_config(run.config_text)
    except ConfigError as err:
        report.problem(LogProblem(expected, None, "bad_config", str(err)))
        report.not_converted["games of runs without a readable configuration"] += lost
        return None


def _experiment(run: RunFolder, config: RunConfig) -> str:
    """``expN`` from the innermost ``experiment_N`` folder (or archive) around the run: the
    source's own name comes first in its label, and a source folder ``experiment_9_data``
    holding the original archives named every run ``exp9`` (and dropped runs of two
    experiments as duplicates)."""
    found = _EXPERIMENT.findall(run.folder) or _EXPERIMENT.findall(config.sim_dir)
    return f"exp{found[-1]}" if found else "exp"


def _kind(game: Game) -> str:
    if is_assistant(game.proposer):
        return "assistant_proposes"
    return "assistant_responds" if is_assistant(game.responder) else "user_user_games"


def _not_converted(report: ImportReport, games: list[Game]) -> None:
    for game in games:
        report.not_converted[_kind(game)] += 1


def _epoch(
    run: RunFolder, k: int, games: tuple[Game, ...], report: ImportReport
) -> EpochLog | None:
    if k not in run.epochs:
        detail = f"epoch files found: {sorted(run.epochs)}"
        missing = run.label(f"id_{run.run}_run_{k}.csv")
        report.problem(LogProblem(missing, None, "missing_epoch", detail))
    log = run.epochs.get(k)
    if log is None:  # missing, or unreadable (already reported)
        _not_converted(report, list(games))
    else:
        report.count("epochs")
    return log


def _convert_epoch(
    file: str,
    log: EpochLog,
    games: tuple[Game, ...],
    pot: int,
    currency: str,
    report: ImportReport,
) -> dict[int, _Game]:
    played: dict[int, _Game] = {}
    for i in sorted(set(log.games) - set(range(len(games)))):
        detail = f"game {i}; the configuration lists {len(games)}"
        report.problem(LogProblem(file, log.games[i][0].row, "game_not_in_config", detail))
    for i, game in enumerate(games):
        kind = _kind(game)
        try:
            played[i] = _convert_game(file, log.games.get(i, []), game, pot, currency, report)
        except _GameError as err:
            report.problem(err.problem)
            report.not_converted[kind] += 1
            continue
        report.count(kind)
    return played


class _GameError(Exception):
    def __init__(self, problem: LogProblem):
        self.problem = problem


def _convert_game(
    file: str, messages: list[Message], game: Game, pot: int, currency: str, report: ImportReport
) -> _Game:
    if not messages:
        raise _GameError(LogProblem(file, None, "game_missing", f"game {game}"))
    roles = sorted(m.role for m in messages)
    if roles != ["decider", "proposer"]:
        detail = f"roles {roles} for game {game.proposer} -> {game.responder}"
        raise _GameError(LogProblem(file, messages[0].row, "game_messages", detail))
    proposal, reply = sorted(messages, key=lambda m: m.role != "proposer")
    expected = "flexible" if is_assistant(game.proposer) else "fixed"
    if proposal.agent != expected:
        detail = f"a {proposal.agent} agent proposes; the configuration says {game.proposer}"
        raise _GameError(LogProblem(file, proposal.row, "role_mismatch", detail))
    by_assistant = proposal.agent == "flexible"
    try:
        split = parse_proposal(proposal.text, pot, currency)
    except MessageError as err:
        problem = LogProblem(file, proposal.row, err.reason, str(err), proposal.text)
        raise _GameError(problem) from None
    try:
        decision = parse_reply(reply.text, lenient=reply.agent == "flexible")
    except MessageError as err:
        raise _GameError(LogProblem(file, reply.row, err.reason, str(err), reply.text)) from None
    report.count(f"{'gpt4' if by_assistant else 'user'}_proposal:{split.form}")
    report.count(
        f"{'gpt4_decision' if reply.agent == 'flexible' else 'user_reply'}:{decision.form}"
    )
    return _Game(
        proposer=ASSISTANT if by_assistant else game.proposer,
        responder=ASSISTANT if is_assistant(game.responder) else game.responder,
        offer=split.offer,
        accepted=int(decision.accepted),
        proposal=proposal,
        reply=reply,
        form=(split.form, decision.form),
    )


def _interaction(sim: str, k: int, i: int, currency: str, pot: int, game: _Game) -> tuple:
    return (
        sim,
        k + 1,
        i + 1,
        game.proposer,
        game.responder,
        currency,
        pot,
        game.offer,
        game.accepted,
        "",
        "",
        game.proposal.text,
        game.reply.text,
    )


def _gpt4_row(
    sim: str,
    k: int,
    currency: str,
    pot: int,
    log: EpochLog,
    played: dict[int, _Game],
    games: tuple[Game, ...],
) -> dict:
    row: dict = {"sim": sim, "epoch": k + 1, "currency": currency, "pot": pot}
    for i, game in enumerate(games):
        messages = {m.role: m for m in log.games.get(i, [])}
        converted = played.get(i)
        if is_assistant(game.proposer) and "responder" not in row:
            mine = messages.get("proposer")
            row["responder"] = game.responder
            row["proposal_text"] = mine.text if mine else ""
            row["principle_before"] = (mine and mine.principle) or log.principle_before
            if converted:
                row["offer"] = converted.offer
                row["offered_share"] = round(100.0 * converted.offer / pot, 6)
                row["proposal_form"] = converted.form[0]
                row["accepted"] = converted.accepted
        elif is_assistant(game.responder) and "proposer" not in row:
            mine = messages.get("decider")
            row["proposer"] = game.proposer
            row["decision_text"] = mine.text if mine else ""
            row["decision_principle"] = (mine and mine.principle) or log.principle_before
            if converted:
                row["proposer_offer"] = converted.offer
                row["assistant_accepted"] = converted.accepted
                row["decision_form"] = converted.form[1]
    row["principle_after"] = log.principle_after
    return row


def _run_row(sim: str, run: RunFolder, config: RunConfig, epochs: int) -> tuple:
    first = config.games[0] if config.games else ()
    start = config.assistant_start_policies
    proposing = next((start[g.proposer] for g in first if is_assistant(g.proposer)), "")
    deciding = next((start[g.responder] for g in first if is_assistant(g.responder)), "")
    experiment, condition, _ = sim.split("/")
    return (
        sim,
        experiment,
        condition,
        config.policy,
        config.manner,
        config.currency,
        run.folder,
        run.run,
        config.assistant_manner,
        proposing,
        deciding,
        len(config.users),
        epochs,
    )
