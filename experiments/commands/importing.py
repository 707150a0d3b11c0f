"""``scai import FORMAT SOURCE --out FILE.csv``: bring other studies' logs into scai's tables.

Formats: ``scai-logs``, the original Social Contract AI study's GPT-4 logs
(:mod:`scai.models.scai_logs`).
"""

from __future__ import annotations

import argparse

from scai.experiments.commands import check_outputs, command, input_path, output_table

#: The formats ``scai import`` reads: name -> help.
FORMATS: dict[str, str] = {
    "scai-logs": "the original Social Contract AI study's logs (run folders with id_N_config "
    "and id_N_run_K.csv), from a folder or a .tar.gz/.tgz, read in place",
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
        help="a folder (its archives are read too) or a tar archive holding run folders anywhere "
        "inside",
    )
    logs.add_argument(
        "--out",
        required=True,
        type=output_table,
        metavar="FILE.csv",
        help="the interaction table (with the messages as written); beside it FILE.users.csv, "
        "FILE.gpt4.csv, FILE.runs.csv and the parse report FILE.report.md",
    )
    logs.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2, tables not written) if anything could not be converted; the report "
        "is still written",
    )


@command("import", "import other logs into scai's tables (scai import scai-logs ...)")(_add_import)
def run_import(args: argparse.Namespace) -> int:
    from scai.models.errors import RunError
    from scai.models.scai_logs import import_logs, write_import, write_report
    from scai.models.scai_logs.importer import check_converted, output_paths

    check_outputs("--out", args.out, list(output_paths(args.out).values()), args.source)
    result = import_logs(args.source)
    report = result.report
    try:
        check_converted(result, args.source)
    except RunError as err:
        path = write_report(result, args.out)
        raise RunError(f"{err}; nothing written but {path}") from None
    if args.strict and report.problems:
        path = write_report(result, args.out)
        first = report.problems[0]
        raise ValueError(
            f"{len(report.problems)} problem(s) in {args.source}, first: {first}; nothing "
            f"written but the report {path}"
        )
    paths = write_import(result, args.out)
    print(report.summary())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
