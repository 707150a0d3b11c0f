"""``scai import FORMAT SOURCE --out FILE.csv``: bring other studies' logs into scai's tables.

Formats: ``scai-logs``, the original Social Contract AI study's GPT-4 logs
(:mod:`scai.models.scai_logs`).
"""

from __future__ import annotations

import argparse

from scai.experiments.commands import check_outputs, command, input_path, output_table
from scai.models.table_file import TAR_ENDINGS

#: The formats ``scai import`` reads: name -> help.
FORMATS: dict[str, str] = {
    "scai-logs": "the original Social Contract AI study's logs (run folders with id_N_config "
    f"and id_N_run_K.csv), from a folder or a tar archive ({', '.join(TAR_ENDINGS)}), read "
    "in place",
}


def _add_import(p: argparse.ArgumentParser) -> None:
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    logs = formats.add_parser(
        "scai-logs", help=FORMATS["scai-logs"], description=FORMATS["scai-logs"]
    )
    logs.add_argument(
        "source",
        type=input_path,
        metavar="SOURCE",
        help="a folder (its tar archives are read too) or a tar archive holding run folders "
        "anywhere inside",
    )
    logs.add_argument(
        "--out",
        required=True,
        type=output_table,
        metavar="FILE.csv",
        help="the interaction table (with the messages as written); beside it FILE.users.csv, "
        "FILE.gpt4.csv, FILE.runs.csv and the parse report FILE.report.md (a failed import "
        "writes only FILE.failed-import.md, leaving an earlier import's five files as they were)",
    )
    logs.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2, no table written) if anything could not be converted; the report is "
        "still written, as FILE.failed-import.md",
    )


@command("import", "import other logs into scai's tables (scai import scai-logs ...)")(_add_import)
def run_import(args: argparse.Namespace) -> int:
    from scai.models.errors import RunError
    from scai.models.scai_logs import (
        failed_report_path,
        import_logs,
        output_paths,
        write_failed_report,
        write_import,
    )
    from scai.models.scai_logs.importer import check_converted

    outputs = [*output_paths(args.out).values(), failed_report_path(args.out)]
    check_outputs("--out", args.out, outputs, args.source)
    result = import_logs(args.source, progress=True)
    report = result.report
    # a failed import writes its report apart: FILE.report.md belongs with the tables, and an
    # earlier import's five files stay together, untouched
    kept = f"an earlier import's tables and report at {args.out}, if any, are left as they were"
    try:
        check_converted(result, args.source)
    except RunError as err:
        path = write_failed_report(result, args.out, "no game converted")
        raise RunError(
            f"{err}; nothing written but the failed import's report {path}; {kept}"
        ) from None
    if args.strict and report.problems:
        n = len(report.problems)
        path = write_failed_report(result, args.out, f"--strict, and {n} problem(s)")
        raise ValueError(
            f"{n} problem(s) in {args.source}, first: {report.problems[0]}; nothing written but "
            f"the failed import's report {path}; {kept}"
        )
    paths = write_import(result, args.out)
    print(report.summary())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
