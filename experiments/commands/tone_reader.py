"""``scai tone-reader train`` and ``scai tone-reader evaluate``: the default tone reader
(:mod:`scai.models.tone_reader`), rebuilt from labelled messages and measured on held-out ones.

``--logs`` is the original study's logs (a folder or archive, read in place) or a table
written by ``scai import scai-logs`` (``FILE.csv``, with ``FILE.users.csv`` and
``FILE.runs.csv`` beside it). The shipped reader was made with::

    scai tone-reader train --logs ../shared/data/original-scai \\
        --out models/tone_reader/default_reader.json
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from scai.experiments.commands import (
    check_outputs,
    command,
    count,
    input_path,
    output_in,
    seed_option,
)
from scai.models.errors import RunError, UnusedOptionWarning
from scai.models.table_file import TAR_ENDINGS

_SCHEMES = ("runs", "conditions", "both")
#: ``--folds`` and ``--seed`` where not given (``None`` until then: one given where no runs
#: are held out is told, not ignored).
FOLDS, SEED = 10, 0


def _add_common(p: argparse.ArgumentParser) -> None:
    from scai.models.tone_reader.classifier import TrainingOptions

    defaults = TrainingOptions()
    p.add_argument(
        "--logs",
        required=True,
        type=input_path,
        metavar="SOURCE",
        help=f"the original study's logs (a folder or a tar archive, {', '.join(TAR_ENDINGS)}, "
        "read in place) or a table written by `scai import scai-logs` (FILE.csv with "
        "FILE.users.csv and FILE.runs.csv beside it); each message is labelled with its "
        "writer's manner from the users' file, not with the table's tone columns",
    )
    p.add_argument(
        "--folds",
        type=count("--folds", 2, 1000),
        default=None,
        help=f"folds of runs where runs are held out (default {FOLDS}, or one per run where "
        "there are fewer; a trained reader's "
        "matrix holds whole conditions out where the messages allow it)",
    )
    seed_option(p, f"random seed of the folds (default {SEED})", default=None)
    p.add_argument(
        "--min-df",
        type=count("--min-df", 1, 10**6),
        default=defaults.min_df,
        help=f"the fewest training messages an n-gram must occur in (default {defaults.min_df})",
    )


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        type=output_in("the reader", ".json"),
        metavar="FILE.json",
        help="the trained reader (JSON: vocabulary, idf weights, coefficients, the confusion "
        "matrix estimated with whole conditions held out where the messages allow it, else "
        "with runs held out, told; provenance)",
    )
    _add_common(p)


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    p.add_argument(
        "--scheme",
        choices=_SCHEMES,
        default="both",
        help="hold out runs (grouped k-fold), whole conditions (leave one out), or both (default)",
    )


def _add_tone_reader(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, add, text in (
        ("train", _add_train, "train the reader on labelled messages and save it"),
        ("evaluate", _add_evaluate, "print its accuracy per manner on held-out messages"),
    ):
        add(actions.add_parser(name, help=text, description=text))


@command("tone-reader", "train or evaluate the tone reader (scai tone-reader train|evaluate ...)")(
    _add_tone_reader
)
def run_tone_reader(args: argparse.Namespace) -> int:
    from scai.models.tone_reader.classifier import TrainingOptions
    from scai.models.tone_reader.evaluation import held_out, lone_tones
    from scai.models.tone_reader.serialise import save_reader
    from scai.models.tone_reader.training import (
        load_messages,
        source_files,
        train_reader,
        why_not_conditions,
    )

    if args.action == "train":  # before minutes of training, not after
        check_outputs("--out", args.out, [args.out], reading=list(source_files(args.logs)))
    start = time.perf_counter()
    messages = load_messages(args.logs)
    print(
        f"{len(messages)} messages from {messages['sim'].nunique()} runs of {args.logs} "
        f"({time.perf_counter() - start:.1f} s); by tone: "
        + ", ".join(f"{t} {n}" for t, n in messages["tone"].value_counts().sort_index().items())
    )
    options = TrainingOptions(min_df=args.min_df)
    given = [f"--{n} {v}" for n, v in (("folds", args.folds), ("seed", args.seed)) if v is not None]
    # (not given: as many as there are runs, up to FOLDS; given, a number beyond them is told)
    folds, seed = args.folds or min(FOLDS, messages["sim"].nunique()), args.seed or SEED
    why_runs = why_not_conditions(messages)  # (None: whole conditions can be held out)

    def check_folds() -> None:  # where folds of runs are held out (as the option, by name)
        runs = messages["sim"].nunique()
        if args.folds is not None and 2 <= runs < args.folds:  # (one run: the evaluation's)
            raise RunError(
                f"--folds {args.folds}: more folds than the {runs} runs of {args.logs} to hold "
                f"out in turn; allowed: 2 to {runs}"
            )

    if args.action == "train":
        if why_runs:
            check_folds()
        if given and why_runs is None:
            warnings.warn(
                f"{' and '.join(given)}: not used: the reader's matrix holds whole conditions "
                "out (every tone is written in two conditions or more), not folds of runs",
                UnusedOptionWarning,
                stacklevel=1,
            )
        reader, evaluation = train_reader(
            messages,
            folds=folds,
            seed=seed,
            options=options,
            trained_on=args.logs.name,
            command=f"scai tone-reader train --logs {args.logs.name} "
            + (f"--folds {folds} --seed {seed} " if why_runs else "")
            + f"--min-df {args.min_df}",
        )
        print(evaluation.report())
        save_reader(reader, args.out)
        print(
            f"wrote {args.out}: {len(reader.vocabulary)} features, labels "
            f"{', '.join(reader.labels)} ({time.perf_counter() - start:.1f} s in all)"
        )
        return 0
    schemes = ("runs", "conditions") if args.scheme == "both" else (args.scheme,)
    if given and "runs" not in schemes:
        raise RunError(
            f"{' and '.join(given)}: only used where runs are held out (--scheme runs or "
            "both); --scheme conditions holds each condition out in turn"
        )
    if "conditions" in schemes and (messages["condition"] == "").any():
        # before the runs are held out (minutes), not after
        where = (
            f"{Path(args.logs).with_suffix('')}.runs.csv (written by scai import scai-logs beside "
            "the table) gives each run's"
            if Path(args.logs).suffix.lower() == ".csv"
            else "the logs give each run's in its configuration"
        )
        raise RunError(
            f"--scheme {args.scheme}: holding out whole conditions needs each message's "
            f"condition, and some of {args.logs}'s have none ({where}); use --scheme runs"
        )
    if "conditions" in schemes and lone_tones(messages["tone"], messages["condition"]):
        # (held_out refuses it too; told here before the runs are held out, or skipped)
        why = f"{why_runs}: holding that condition out leaves the reader without the tone"
        if args.scheme == "conditions":
            raise RunError(f"--scheme conditions: {why}; use --scheme runs")
        warnings.warn(f"whole conditions not held out: {why}", UnusedOptionWarning, stacklevel=1)
        schemes = ("runs",)
    if "runs" in schemes:
        check_folds()
    for scheme in schemes:
        evaluation = held_out(messages, scheme, folds, seed, options, progress=True)
        print(evaluation.report())
        if scheme == "conditions":
            table = evaluation.by_group("condition")
            print(table.to_string(index=False, float_format=lambda x: f"{x:.2%}"))
    return 0
