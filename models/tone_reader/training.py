"""Training a reader on labelled messages: the users' messages of an interaction table, each
labelled with the manner its writer was prompted with (the users table).

:func:`labelled_messages` takes every user's proposals and replies (not the assistant's: the
users file gives no manner for it); :func:`load_messages` reads them from the original study's
logs (a folder or archive, imported in memory) or from a table ``FILE.csv`` written by ``scai
import`` (with ``FILE.users.csv`` and, for the condition of each run, ``FILE.runs.csv``
beside it). :func:`train_reader` estimates the confusion matrix with whole conditions held out
(or, for messages without conditions, runs: :func:`~scai.models.tone_reader.evaluation.held_out`),
then fits the reader on every message.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from scai.models.companions import companion_path, users_path
from scai.models.data import read_interactions, wrong_header
from scai.models.errors import DataError, Problem, RunsHeldOutWarning, missing, outside_scai
from scai.models.layout import ASSISTANT
from scai.models.table_file import EMPTY_FILE, not_utf8
from scai.models.tone_reader.classifier import TrainingOptions, fit_classifier
from scai.models.tone_reader.evaluation import Evaluation, held_out, lone_tones
from scai.models.tone_reader.interface import DEFAULT_SMOOTHING
from scai.models.tone_reader.linear import LinearToneReader
from scai.models.users_table import read_users

#: The columns of a table of labelled messages.
MESSAGE_COLUMNS = ("sim", "condition", "role", "speaker", "text", "tone")


def labelled_messages(
    interactions: pd.DataFrame,
    users: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    names: tuple[str, str] = ("interactions", "users"),
) -> pd.DataFrame:
    """Every non-empty message a user wrote (:data:`MESSAGE_COLUMNS`): ``role`` is
    ``proposer`` or ``responder``, ``tone`` the writer's manner in ``users``, ``condition``
    the run's in ``runs`` (``""`` without it). ``names``: the two tables' in an error (their
    files)."""
    manner = {(str(s), str(u)): m for s, u, m in users[["sim", "user", "manner"]].itertuples(False)}
    condition = (
        {} if runs is None else dict(zip(runs["sim"].astype(str), runs["condition"], strict=True))
    )
    parts = []
    for role in ("proposer", "responder"):
        column = f"{role}_text"
        if column not in interactions.columns:
            continue
        rows = interactions[(interactions[role] != ASSISTANT) & (interactions[role] != "")]
        rows = rows[rows[column].fillna("").str.strip() != ""]
        keys = list(zip(rows["sim"].astype(str), rows[role].astype(str), strict=True))
        parts.append(
            pd.DataFrame(
                {
                    "sim": rows["sim"].astype(str).to_numpy(),
                    "condition": [condition.get(s, "") for s, _ in keys],
                    "role": role,
                    "speaker": rows[role].astype(str).to_numpy(),
                    "text": rows[column].to_numpy(),
                    "tone": [manner.get(k, "") for k in keys],
                }
            )
        )
    if not parts:
        raise DataError(
            names[0],
            [
                Problem(
                    None,
                    None,
                    None,
                    "no text columns to learn from (proposer_text, responder_text: the "
                    "messages as written, which scai import scai-logs keeps)",
                )
            ],
        )
    out = pd.concat(parts, ignore_index=True)
    unlabelled = out[out["tone"] == ""]
    if len(unlabelled):
        first = unlabelled.iloc[0]
        raise DataError(
            names[1],
            [
                Problem(
                    None,
                    "manner",
                    None,
                    f"{len(unlabelled)} messages of {names[0]} come from users this table does "
                    f"not list, e.g. {first.speaker!r} in sim {first.sim!r}",
                )
            ],
        )
    return out


def _is_table(source: Path) -> bool:
    """Whether ``source`` names a table of ``scai import scai-logs`` (``FILE.csv``, any case)
    rather than the logs themselves (a folder or archive)."""
    return source.suffix.lower() == ".csv"


def _runs_path(table: Path) -> Path:
    return companion_path(table, "runs")


def source_files(source: str | Path) -> list[Path]:
    """The files and folders :func:`load_messages` reads for ``source``: a table with its
    users and runs files beside it, or the logs' folder or archive."""
    source = Path(source)
    if _is_table(source):
        return [source, users_path(source), _runs_path(source)]
    return [source]


def load_messages(source: str | Path) -> pd.DataFrame:
    """Labelled messages from the original study's logs (a folder or archive) or from a
    table written by ``scai import scai-logs`` (``FILE.csv`` with ``FILE.users.csv`` beside
    it, and ``FILE.runs.csv`` for the conditions)."""
    source = Path(source)
    if _is_table(source):
        interactions = read_interactions(source)
        users = read_users(users_path(source), _policies(users_path(source)))
        runs_file = _runs_path(source)
        runs = _companion(runs_file, ("sim", "condition")) if runs_file.exists() else None
        if runs is not None and (twice := runs["sim"][runs["sim"].duplicated()]).any():
            # which of its rows holds the run's condition is not said (the last one won)
            row = int(twice.index[0]) + 1
            raise DataError(
                str(runs_file),
                [Problem(row, "sim", twice.iloc[0], "listed again; each run once")],
            )
        messages = labelled_messages(
            interactions, users, runs, (str(source), str(users_path(source)))
        )
    else:
        from scai.models.scai_logs import import_logs
        from scai.models.scai_logs.importer import check_converted

        result = import_logs(source)
        check_converted(result, source)
        messages = labelled_messages(result.interactions, result.users, result.runs)
    return _check_learnable(messages, source)


def _check_learnable(messages: pd.DataFrame, source: Path) -> pd.DataFrame:
    """``messages``, or a :class:`DataError` naming ``source`` where a reader cannot learn from
    them: no message with text (it was told as "these come from 0" groups, after a warning
    about held-out runs), or one tone only (told without the file)."""
    if not len(messages):
        why = "no user message with text (proposer_text and responder_text empty): nothing to learn"
    elif messages["tone"].nunique() < 2:
        why = (
            f"every message is of one tone ({messages['tone'].iloc[0]}, by its writer's manner): "
            "a reader learns to tell tones apart; give messages of two tones or more"
        )
    else:
        return messages
    raise DataError(str(source), [Problem(None, None, None, why)])


def _policies(path: Path) -> tuple[str, ...]:
    """The policies a users file names (a reader learns manners, whatever the policies)."""
    if not path.exists():
        raise DataError(str(path), [Problem(None, None, None, missing(path))])
    return tuple(_companion(path, ()).get("policy", []))


def _companion(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A table written beside an imported one (``FILE.users.csv``, ``FILE.runs.csv``), read as
    text; a :class:`DataError` naming the file says why it cannot be, or which of ``columns``
    it lacks (pandas' own messages named no file, and a missing column was a ``KeyError``)."""

    def problem(text: str) -> DataError:
        return DataError(str(path), [Problem(None, None, None, text)])

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise problem(EMPTY_FILE) from None
    except UnicodeDecodeError as err:  # (its offset counts from pandas' buffer, not the file)
        raise problem(not_utf8(path, err)) from None
    except (OSError, pd.errors.ParserError) as err:
        raise problem(f"cannot read as CSV: {err}") from None
    if wrong := wrong_header(columns, table.columns):
        raise DataError(str(path), wrong)
    return table


def train_reader(
    messages: pd.DataFrame,
    folds: int = 10,
    seed: int = 0,
    options: TrainingOptions | None = None,
    smoothing: float = DEFAULT_SMOOTHING,
    **provenance,
) -> tuple[LinearToneReader, Evaluation]:
    """A reader fitted on every message, carrying the confusion matrix estimated with whole
    conditions held out where it can be (:func:`confusion_scheme`), and that evaluation. Not
    with runs held out: a condition's runs repeat each other's messages, so a reader tested on
    held-out runs of conditions it was trained on reads text it has seen, and its matrix would
    overstate what a report is worth on a new prompt (on the original study's logs, under
    ``stereotyped``, a rude report was worth 2.5 nats between a rude and a sycophantic
    manner, against 1.5 with conditions held out)."""
    why_runs = why_not_conditions(messages)  # (confusion_scheme's reason)
    scheme = "runs" if why_runs else "conditions"
    if why_runs:  # (it was the report's one line, and the fits using the reader said nothing)
        warnings.warn(
            f"the reader's confusion matrix is estimated with runs held out, not whole "
            f"conditions ({why_runs}): {RUNS_HELD_OUT_COST}; to hold conditions out, give each "
            "message's condition (FILE.runs.csv beside the table) with every tone written in "
            "two conditions or more",
            RunsHeldOutWarning,
            stacklevel=outside_scai(),
        )
    evaluation = held_out(messages, scheme, folds, seed, options)
    reader = fit_classifier(messages["text"].tolist(), messages["tone"].tolist(), options)
    accuracy = {m: round(float(a), 6) for m, a in evaluation.accuracy().items()}
    held = (
        f"whole conditions held out ({evaluation.predictions['fold'].nunique()} conditions)"
        if scheme == "conditions"
        else f"runs held out ({folds} folds, seed {seed}; not whole conditions: {why_runs})"
    )
    return (
        reader.with_confusion(
            evaluation.confusion(smoothing),
            evaluation.counts,
            confusion_estimate=f"held-out counts, {held}, plus {smoothing:g} per label",
            held_out_accuracy=accuracy,
            held_out=scheme,
            runs=int(messages["sim"].nunique()),
            **provenance,
        ),
        evaluation,
    )


#: What a matrix estimated with runs held out costs, in the words of its warnings.
RUNS_HELD_OUT_COST = (
    "a condition's runs repeat each other's messages, so it reads the held-out runs as text it "
    "was trained on, and the matrix overstates what a report is worth on text of a new prompt"
)


def held_out_by_runs(reader) -> bool:
    """Whether ``reader``'s confusion matrix was estimated with runs held out (its provenance's
    ``held_out``, or for a reader saved before that key, its ``confusion_estimate``)."""
    provenance = getattr(reader, "provenance", None) or {}
    if "held_out" in provenance:
        return provenance["held_out"] == "runs"
    return "runs held out" in str(provenance.get("confusion_estimate", ""))


def confusion_scheme(messages: pd.DataFrame) -> str:
    """How a reader's confusion matrix is estimated from ``messages``: with whole
    ``conditions`` held out where :func:`why_not_conditions` finds nothing against it, else
    with ``runs`` held out."""
    return "runs" if why_not_conditions(messages) else "conditions"


def why_not_conditions(messages: pd.DataFrame) -> str | None:
    """Why whole conditions cannot be held out in turn from ``messages`` (``None`` if they
    can): some message names no condition, or a tone is written in one condition only
    (holding that condition out leaves the reader without the tone: it would read none of
    them, an accuracy of 0 that measures nothing)."""
    conditions = messages.get("condition", pd.Series("", index=messages.index))
    if (conditions == "").any():
        return "some messages name no condition"
    if not len(messages):
        return "there are no messages"
    if lone := lone_tones(messages["tone"], conditions):
        said = ", ".join(f"{tone} only in {where!r}" for tone, where in sorted(lone.items()))
        return f"a tone is written in one condition only ({said})"
    return None
