# ruff: noqa: E501  (the case tables keep one case a line)
"""Red team: malformed and extreme inputs, generated here, end in a clear typed error (or a
correct result) quickly, never a traceback, a hang or a silent wrong result (issue 13).

Command-line cases run ``scai`` in process (``scai.experiments.cli.main``): each must exit with
code 2 and one line on standard error that names the option, file, row, column or key and the
value. API cases must raise the layer's :class:`~scai.models.errors.ScaiError`. Every case runs
under a deadline (a ``SIGALRM``): the ones that used to hang or exhaust memory (a 20-type
hypothesis, ``--epochs 1000000000``, a table whose padded layout needs terabytes) must be
refused in seconds, before any work.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from timelimit import time_limit

from scai.experiments.cli import build_parser, main
from scai.inference import EngineError, fit, online
from scai.models import Hypothesis, PolicyType, simulate
from scai.models.data import read_interactions, validate_frame
from scai.models.errors import (
    DataError,
    DuplicateGamesWarning,
    HypothesisError,
    RunError,
    ScaiError,
)
from scai.models.hypotheses import MAX_POLICIES, PRESETS
from scai.models.simulate import parse_mixture
from scai.models.writing import write_csv_atomic

CLI_SECONDS = 5.0  # parse-time and entry-point refusals: well under a second each
API_SECONDS = 5.0


# -- inputs, generated ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Every file the cases refer to, by name."""
    root = tmp_path_factory.mktemp("redteam")
    build_parser()  # import every command's modules once, outside the cases' deadlines
    paths: dict[str, Path] = {"root": root}
    table = simulate(Hypothesis(), policy="selfish", users=4, rounds=4, epochs=1, seed=1)
    good = root / "good.csv"
    write_csv_atomic(table.interactions, good)
    paths["good"] = good
    lines = good.read_text().splitlines()
    header = lines[0].split(",")

    def corrupt(name: str, column: str, value: str, row: int = 1) -> None:
        cells = [line.split(",") for line in lines]
        cells[row][header.index(column)] = value
        path = root / f"{name}.csv"
        path.write_text("\n".join(",".join(c) for c in cells) + "\n")
        paths[name] = path

    for name, first, second in (("loop", "loop_a", "loop_b"), ("loop_toml", "a.toml", "b.toml")):
        (root / first).symlink_to(root / second)  # each link names the other
        (root / second).symlink_to(root / first)
        paths[name] = root / first
    corrupt("epoch_huge", "epoch", "99999999999999999999")
    corrupt("round_1e300", "round", "1e300", row=2)
    corrupt("offer_underscore", "offer", "5_3", row=3)
    corrupt("pot_arabic_digit", "pot", "\u0665", row=1)
    corrupt("zero_width_user", "proposer", "u1\u200b", row=2)  # looks like "u1"
    corrupt("long_cell", "currency", "x" * 1_000_000, row=1)
    # pandas slowed down faster than linearly in the columns: a 10 MB header did not finish
    (root / "wide_header.csv").write_text(",".join(f"c{i}" for i in range(5_000)) + "\n1\n")
    paths["wide_header"] = root / "wide_header.csv"
    (root / "long_header.csv").write_text("sim," * 50_000 + "\n")
    paths["long_header"] = root / "long_header.csv"
    (root / "dup.csv").write_text("\n".join([*lines, lines[2]]) + "\n")
    paths["dup"] = root / "dup.csv"
    (root / "latin1.csv").write_bytes(good.read_bytes().replace(b"u1", b"\xe9"))
    paths["latin1"] = root / "latin1.csv"
    # one user of sim 0 plays 10,000 games against 10,000 others, and 1,000 more sims hold one
    # game each: every sim is padded to 10,001 users x 10,000 events, 7 TB from 11,000 rows
    n, extra = 10_000, 1_000
    hog = pd.DataFrame(
        {
            "sim": ["0"] * n + [str(s) for s in range(1, extra + 1)],
            "epoch": 1,
            "round": np.r_[np.arange(1, n + 1), np.ones(extra, int)],
            "proposer": ["hog"] * n + ["a"] * extra,
            "responder": [f"v{i}" for i in range(n)] + ["b"] * extra,
            "currency": "dollars",
            "pot": 10,
            "offer": 1,
            "accepted": 1,
            "proposer_tone": "neutral",
            "responder_tone": "neutral",
        }
    )
    write_csv_atomic(hog, root / "hog.csv")
    paths["hog"] = root / "hog.csv"

    toml = {
        "rationality_1e308": "rationality = 1e308\n",
        "w_1e308": "[policies.greedy]\nw = 1e308\n",
        "alpha_1e300": "[policies.envious]\nalpha = 1e300\n",
        "rationality_nan": "rationality = nan\n",
        "scale_inf": "rationality_scale = inf\n",
        "huge_int": f"rationality = {10**400}\n",
        "fidelity_1": "tone_fidelity = 1.0\n",
        "fidelity_0": "tone_fidelity = 0.0\n",
        "concentration_1e6": "pi_concentration = 1e6\n",
        "shift_1e9": "[currency]\nessential_shift = 1e9\n",
        "twenty_types": "".join(f"[policies.p{i}]\nw = {i / 10}\n" for i in range(20)),
        "evil_name": 'name = "../../outside"\n',
        "control_name": 'name = "a\\u0007b"\n',
        "unknown_key": "rationalty = 3.0\n",
        "unknown_policy_key": "[policies.x]\ngamma = 1.0\n",
        "stereotype_weight": "[stereotype.selfish]\nrude = 1e309\n",
        "deep": "a = " + "[" * 5000 + "]" * 5000 + "\n",
    }
    for name, text in toml.items():
        (root / f"{name}.toml").write_text(text)
        paths[name] = root / f"{name}.toml"
    (root / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    paths["latin1_toml"] = root / "latin1.toml"
    (root / "inequity_evil.toml").write_text('model = "inequity_aversion"\nname = "../escape"\n')
    paths["inequity_evil"] = root / "inequity_evil.toml"
    (root / "folder.toml").mkdir()
    paths["folder_toml"] = root / "folder.toml"
    (root / "a_folder").mkdir()
    paths["a_folder"] = root / "a_folder"
    (root / "a_file").write_text("not a folder")
    paths["a_file"] = root / "a_file"
    for name in ("zero.csv", "zero.toml"):  # a device: reading /dev/zero never ends
        (root / name).symlink_to("/dev/zero")
    paths["device"], paths["device_toml"] = root / "zero.csv", root / "zero.toml"
    (root / "precious").write_text("precious")
    (root / "link.csv").symlink_to(root / "precious")
    paths["link"] = root / "link.csv"
    os.mkfifo(root / "pipe.csv")  # an output path that is a pipe: replacing it is no write
    paths["pipe"] = root / "pipe.csv"
    (root / "pipe_out").mkdir()
    os.mkfifo(root / "pipe_out" / "posterior.nc")
    paths["pipe_in_out"] = root / "pipe_out"
    return paths


# (id, argv with {placeholders} for `files`, fragments the one line must contain)
CLI_CASES: list[tuple[str, str, list[str]]] = [
    # where output goes
    ("simulate out is a folder", "simulate --policy selfish --out {a_folder}", ["--out", "is a folder"]),
    ("simulate out under a file", "simulate --policy selfish --out {a_file}/x.csv", ["--out", "is a file"]),
    ("simulate out is a link", "simulate --policy selfish --out {link}", ["--out", "symbolic link"]),
    ("simulate out is a pipe", "simulate --policy selfish --out {pipe}", ["--out", "is a named pipe", "give a file path"]),
    ("fit out holds a pipe", "fit --data {good} --out {pipe_in_out}", ["--out", "posterior.nc is a named pipe"]),
    ("transcript is a folder", "simulate --policy selfish --out {root}/s.csv --transcript {a_folder}", ["--transcript", "is a folder"]),
    ("transcript is a link", "simulate --policy selfish --out {root}/s.csv --transcript {link}", ["--transcript", "symbolic link"]),
    ("transcript is the table", "simulate --policy selfish --out {root}/s.csv --transcript {root}/s.csv", ["--transcript", "s.csv"]),
    ("transcript is the users, a CSV name", "simulate --policy selfish --out {root}/s.csv --transcript {a_folder}/../s.users.csv", ["--transcript", "s.users.csv", "names a CSV table"]),
    ("transcript is the table, spelled round", "simulate --policy selfish --out {root}/s.txt --transcript {a_folder}/../s.txt", ["--transcript", "s.txt", "is one of the tables"]),
    ("fit out is a file", "fit --data {good} --out {a_file}", ["--out", "is a file"]),
    ("run out is a file", "run alignment --out {a_file}", ["--out", "is a file"]),
    ("run figures is a file", "run alignment --out {root}/r --figures {a_file}", ["--figures", "is a file"]),
    # counts and sizes
    ("epochs a billion", "simulate --policy selfish --out {root}/s.csv --epochs 1000000000", ["--epochs", "1000000000", "100,000"]),
    ("epochs 0", "simulate --policy selfish --out {root}/s.csv --epochs 0", ["--epochs", "'0'"]),
    ("sims 0", "simulate --policy selfish --out {root}/s.csv --sims 0", ["--sims", "'0'"]),
    ("sims -2", "simulate --policy selfish --out {root}/s.csv --sims -2", ["--sims", "'-2'"]),
    ("users 1", "simulate --policy selfish --out {root}/s.csv --users 1", ["--users", "'1'", "from 2"]),
    ("users 5_3", "simulate --policy selfish --out {root}/s.csv --users 5_3", ["--users", "'5_3'"]),
    ("rounds 1e300", "simulate --policy selfish --out {root}/s.csv --rounds 1e300", ["--rounds", "'1e300'"]),
    ("rounds text", "simulate --policy selfish --out {root}/s.csv --rounds many", ["--rounds", "'many'"]),
    ("too many games", "simulate --policy selfish --out {root}/s.csv --sims 10000 --epochs 1000 --rounds 8", ["80,000,000 games", "10,000,000 in one call"]),
    ("seed -1", "simulate --policy selfish --out {root}/s.csv --seed -1", ["--seed", "'-1'"]),
    ("seed 2^32", "simulate --policy selfish --out {root}/s.csv --seed 4294967296", ["--seed", "4294967296"]),
    ("draws -5", "fit --data {good} --out {root}/f --draws -5", ["--draws", "'-5'"]),
    ("draws 0", "fit --data {good} --out {root}/f --draws 0", ["--draws", "'0'"]),
    ("warmup -1", "fit --data {good} --out {root}/f --engine mcmc --warmup -1", ["--warmup", "'-1'"]),
    ("chains 0", "fit --data {good} --out {root}/f --engine mcmc --chains 0", ["--chains", "'0'"]),
    ("max-steps 0", "fit --data {good} --out {root}/f --engine svi --max-steps 0", ["--max-steps", "'0'"]),
    ("tones with alignment", "run alignment --quick --out {root}/r --tones read", ["--tones read", "scai run original-logs", "not of alignment"]),
    ("data with all", "run all --quick --out {root}/r --data {good}", ["--data", "scai run human-data", "not of all"]),
    ("warmup with exact", "fit --data {good} --out {root}/f --warmup 10", ["--warmup 10", "--engine mcmc", "not of --engine exact"]),
    ("subsample with mcmc", "fit --data {good} --out {root}/f --engine mcmc --subsample 3", ["--subsample 3", "--engine svi"]),
    ("laplace start of mvn", "fit --data {good} --out {root}/f --engine svi --guide mvn --init laplace", ["--init laplace", "--guide normal", "prior median"]),
    ("fit out a file name", "fit --data {good} --out {root}/post.nc", ["--out", "post.nc", "a folder", "--out " + "{root}/post"]),
    ("fit seed -1", "fit --data {good} --out {root}/f --seed -1", ["--seed", "'-1'"]),
    ("max-memory text", "fit --data {good} --out {root}/f --max-memory lots", ["--max-memory", "'lots'"]),
    ("run sims 0", "run alignment --out {root}/r --sims 0", ["--sims", "'0'"]),
    ("run sims -2", "run alignment --out {root}/r --sims -2", ["--sims", "'-2'"]),
    ("run epochs 0", "run alignment --out {root}/r --epochs 0", ["--epochs", "'0'"]),
    ("run workers -1", "run alignment --out {root}/r --workers -1", ["--workers", "'-1'"]),
    ("run workers 0", "run alignment --out {root}/r --workers 0", ["--workers", "'0'"]),
    ("run seed -1", "run alignment --out {root}/r --seed -1", ["--seed", "'-1'"]),
    # mixtures and choices
    ("mixture sums to 0.9", "simulate --policy selfish=0.5,altruistic=0.4 --out {root}/s.csv", ["sum to 0.9", "selfish=0.5556"]),
    ("mixture weight text", "simulate --policy selfish=lots --out {root}/s.csv", ["'lots'", "not a number"]),
    ("mixture unknown policy", "simulate --policy greedy=1 --out {root}/s.csv", ["'greedy'", "allowed: selfish"]),
    ("mixture negative", "simulate --policy selfish=-0.5,fair=1.5 --out {root}/s.csv", ["'selfish'", ">= 0"]),
    ("unknown manner", "simulate --policy selfish --manner grumpy --out {root}/s.csv", ["--manner", "'grumpy'"]),
    ("unknown engine", "fit --data {good} --out {root}/f --engine nuts", ["--engine", "'nuts'"]),
    ("unknown experiment", "run nonsense", ["'nonsense'"]),
    ("unknown command", "frobnicate", ["'frobnicate'"]),
    ("no command", "", ["required: COMMAND"]),
    # interaction tables
    ("epoch 10^20", "fit --data {epoch_huge} --out {root}/f", ["row 1", "'epoch'", "99999999999999999999", "<= 1,000,000,000"]),
    ("round 1e300", "fit --data {round_1e300} --out {root}/f", ["row 2", "'round'", "'1e300'"]),
    ("offer 5_3", "fit --data {offer_underscore} --out {root}/f", ["row 3", "'offer'", "'5_3'"]),
    ("pot non-ASCII digit", "fit --data {pot_arabic_digit} --out {root}/f", ["row 1", "'pot'"]),
    ("duplicate games strict", "fit --data {dup} --out {root}/f --strict", ["row 5", "the same game as row 2"]),
    ("data not UTF-8", "fit --data {latin1} --out {root}/f", ["latin1.csv", "cannot read"]),
    ("data is a folder", "fit --data {a_folder} --out {root}/f", ["a_folder", "is a folder"]),
    ("data missing", "fit --data {root}/missing.csv --out {root}/f", ["missing.csv", "does not exist"]),
    ("layout needs 7 TB", "fit --data {hog} --out {root}/f", ["too large for memory", "[1,001 sims x 10,001 users x 10,000 events", "7.2 TB", "split the table"]),
    ("layout above max-memory", "fit --data {good} --out {root}/f --max-memory 1K", ["too large for memory", "1.0 KB"]),
    # hypotheses
    ("rationality 1e308", "fit --data {good} --out {root}/f --hypothesis {rationality_1e308}", ["rationality", "1e+308", "[1e-06, 1000]"]),
    ("w 1e308", "simulate --policy greedy --out {root}/s.csv --hypothesis {w_1e308}", ["policies.greedy.w", "1e+308", "[-100, 100]"]),
    ("alpha 1e300", "fit --data {good} --out {root}/f --hypothesis {alpha_1e300}", ["policies.envious.alpha", "1e+300"]),
    ("rationality nan", "fit --data {good} --out {root}/f --hypothesis {rationality_nan}", ["rationality", "nan"]),
    ("rationality_scale inf", "fit --data {good} --out {root}/f --hypothesis {scale_inf}", ["rationality_scale", "inf"]),
    ("rationality 10^400", "fit --data {good} --out {root}/f --hypothesis {huge_int}", ["rationality", "1000000"]),
    ("tone fidelity 1", "fit --data {good} --out {root}/f --hypothesis {fidelity_1}", ["tone_fidelity", "1.0", "other tones", "-inf"]),
    ("tone fidelity 0", "fit --data {good} --out {root}/f --hypothesis {fidelity_0}", ["tone_fidelity", "0.0", "own tone", "-inf"]),
    ("concentration 1e6", "fit --data {good} --out {root}/f --hypothesis {concentration_1e6}", ["pi_concentration", "1000000.0", "[0.001, 100]"]),
    ("essential shift 1e9", "fit --data {good} --out {root}/f --hypothesis {shift_1e9}", ["essential_shift", "1000000000.0"]),
    ("twenty policy types", "fit --data {good} --out {root}/f --hypothesis {twenty_types}", ["20 policy types", f"1 to {MAX_POLICIES}"]),
    ("twenty types in a run", "run alignment --out {root}/r --hypothesis {twenty_types}", ["20 policy types"]),
    ("name with ../", "fit --data {good} --out {root}/f --hypothesis {evil_name}", ["name", "'../../outside'", "path separators"]),
    ("name with a control character", "fit --data {good} --out {root}/f --hypothesis {control_name}", ["name", "control characters"]),
    ("human-data name with ../", "run human-data --data {good} --out {root}/r --hypothesis {inequity_evil}", ["inequity_evil.toml", "'../escape'"]),
    ("unknown key", "fit --data {good} --out {root}/f --hypothesis {unknown_key}", ["'rationalty'", "allowed:"]),
    ("unknown policy key", "fit --data {good} --out {root}/f --hypothesis {unknown_policy_key}", ["policies.x", "'gamma'"]),
    ("stereotype weight inf", "fit --data {good} --out {root}/f --hypothesis {stereotype_weight}", ["stereotype.selfish.rude", "inf"]),
    ("TOML nested too deeply", "fit --data {good} --out {root}/f --hypothesis {deep}", ["deep.toml", "nested too deeply"]),
    ("TOML not UTF-8", "fit --data {good} --out {root}/f --hypothesis {latin1_toml}", ["latin1.toml", "not UTF-8", "0xe9"]),
    ("TOML is a folder", "fit --data {good} --out {root}/f --hypothesis {folder_toml}", ["folder.toml", "is a folder"]),
    ("TOML missing", "fit --data {good} --out {root}/f --hypothesis {root}/none.toml", ["none.toml", "No such file"]),
    ("unknown preset", "fit --data {good} --out {root}/f --hypothesis nihilist", ["'nihilist'", "allowed: neutral"]),
    # devices, which every reader read for ever
    ("table is a device", "validate {device}", ["zero.csv", "a character device"]),
    ("fit data is a device", "fit --data {device} --out {root}/f", ["--data", "character device"]),
    ("hypothesis is a device", "fit --data {good} --out {root}/f --hypothesis {device_toml}", ["zero.toml", "character device"]),
    ("sweep spec is a device", "sweep {device_toml} --out {root}/w", ["SPEC.toml", "character device"]),
    ("reader is a device", "fit --data {good} --out {root}/f --tones read --reader {device}", ["--reader", "character device"]),
    ("logs source is a device", "import scai-logs {device} --out {root}/l.csv", ["SOURCE", "character device"]),
    # a folder whose permissions allow writing but whose file system does not (checked before
    # the whole source was read, and then named a temporary file)
    ("import out in /proc", "import scai-logs {good} --out /proc/x.csv", ["--out", "cannot create files in /proc"]),
    # a loop of symbolic links was an internal error (Path.resolve raising RuntimeError)
    ("table is a link loop", "fit --data {loop} --out {root}/f", ["loop_a", "a loop of symbolic links"]),
    ("hypothesis is a link loop", "fit --data {good} --out {root}/f --hypothesis {loop_toml}", ["a.toml", "a loop of symbolic links"]),
    ("logs source is a link loop", "import scai-logs {loop} --out {root}/l.csv", ["loop_a", "a loop of symbolic links"]),
    # tables that looked valid or never finished
    ("a user name with a zero-width space", "fit --data {zero_width_user} --out {root}/f", ["row 2", "'proposer'", "invisible characters"]),
    ("a 1 MB cell is shown cut", "fit --data {long_cell} --out {root}/f", ["row 1", "(1,000,000 characters)"]),
    ("5,000 columns", "fit --data {wide_header} --out {root}/f", ["wide_header.csv", "5,000 columns", "at most 1,000"]),
    ("a 200 KB header line", "fit --data {long_header} --out {root}/f", ["long_header.csv", "longer than 65,536 characters"]),
    # an option given twice: the last value was used in silence (selfish users, table b)
    ("an option twice", "simulate --policy fair --policy selfish --users 4 --out {root}/s.csv", ["scai simulate: error: --policy: given twice; give it once"]),
    ("data twice", "fit --data {good} --data {root}/b.csv --out {root}/f", ["--data: given twice"]),
    ("an option of a subcommand's subcommand twice", "import scai-logs {good} --out {root}/a.csv --out {root}/b.csv", ["scai import scai-logs: error: --out: given twice"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "argv, fragments", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_command_line_case(files, capsys, argv, fragments):
    args = [a.format(**files) for a in argv.split()]
    with time_limit(CLI_SECONDS):
        code = main(args)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    (line,) = lines
    assert line.startswith("scai") and ": error: " in line and "Traceback" not in line
    for fragment in fragments:
        assert fragment.format(**files) in line, line
    assert (files["root"] / "precious").read_text() == "precious"
    assert not (files["root"] / "s.csv").exists()  # nothing half-done
    assert not (files["root"] / "f" / "posterior.nc").exists()


def test_every_red_team_file_is_used(files):
    used = " ".join(c[1] for c in CLI_CASES)
    for name in files:
        if name not in ("root", "precious"):
            assert "{" + name + "}" in used, name


def test_debug_shows_the_traceback(files, capsys):
    with pytest.raises(RunError, match="sum to 0.9"):
        main(["--debug", "simulate", "--policy", "selfish=0.5,fair=0.4", "--out", "x.csv"])
    # after the command it was "unrecognized arguments: --debug" alone (a red-team find)
    assert main(["simulate", "--policy", "selfish", "--out", "x.csv", "--debug"]) == 2
    assert "--debug is scai's, before the command: scai --debug COMMAND" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_with_exit_1(files, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(sys.modules["scai.models.simulate"], "simulate", broken)
    code = main(["simulate", "--policy", "selfish", "--out", str(files["root"] / "b.csv")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert "internal error: KeyError" in err and "--debug" in err


def test_an_os_error_names_the_option_and_path(files, capsys, monkeypatch):
    """An OS error while writing (a disk that fills, a folder that appears in the file's place
    after the checks) names the option whose path it is."""
    import errno

    from scai.inference.posterior import Posterior

    out = files["root"] / "blocked"

    def save(self, path, max_memory=None):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))

    monkeypatch.setattr(Posterior, "save", save)
    with time_limit(60):
        code = main(["fit", "--data", str(files["good"]), "--out", str(out), "--draws", "20"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--out {out}: Is a directory ({out / 'posterior.nc'})" in err


def test_validate_reports_duplicates_as_a_warning_or_strict_error(files, capsys):
    assert main(["validate", str(files["dup"])]) == 0
    captured = capsys.readouterr()
    assert "valid (5 interactions" in captured.out
    assert captured.err.startswith("scai validate: warning: ") and "row 5 = row 2" in captured.err
    assert main(["validate", "--strict", str(files["dup"])]) == 1
    assert "row 5: the same game as row 2" in capsys.readouterr().err


def test_validate_names_the_bad_epoch(files, capsys):
    assert main(["validate", str(files["epoch_huge"])]) == 1
    err = capsys.readouterr().err
    assert "row 1, column 'epoch': value '99999999999999999999': must be >= 0 and <=" in err


# -- the Python API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table(files) -> pd.DataFrame:
    return read_interactions(files["good"])


def tbl(table: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    out = table.copy().astype(object)
    out.loc[row, column] = value
    return out


def refuse_engines(monkeypatch):
    import scai.inference.exact
    import scai.inference.mcmc
    import scai.inference.svi

    def refuse(*args, **kwargs):
        raise AssertionError("an inference engine ran on bad input")

    for module, name in (
        (scai.inference.exact, "fit_exact"),
        (scai.inference.svi, "fit_svi"),
        (scai.inference.mcmc, "fit_mcmc"),
    ):
        monkeypatch.setattr(module, name, refuse)


# (id, call(table) -> anything, error type, fragments of the message)
API_CASES: list[tuple[str, Callable, type, list[str]]] = [
    ("svi max_steps 0", lambda t: fit(t, engine="svi", max_steps=0), EngineError, ["max_steps", "got 0"]),
    ("num_draws 0", lambda t: fit(t, num_draws=0), EngineError, ["num_draws", "got 0"]),
    ("num_draws 10^9", lambda t: fit(t, num_draws=10**9), EngineError, ["num_draws", "1,000,000"]),
    ("num_draws float", lambda t: fit(t, num_draws=10.5), EngineError, ["num_draws", "10.5"]),
    ("mcmc warmup -1", lambda t: fit(t, engine="mcmc", warmup=-1), EngineError, ["warmup", "-1"]),
    ("mcmc samples 0", lambda t: fit(t, engine="mcmc", samples=0), EngineError, ["samples", "got 0"]),
    ("mcmc chains 0", lambda t: fit(t, engine="mcmc", num_chains=0), EngineError, ["num_chains"]),
    ("mcmc target_accept 1.5", lambda t: fit(t, engine="mcmc", target_accept=1.5), EngineError, ["target_accept", "1.5"]),
    ("svi learning_rate 0", lambda t: fit(t, engine="svi", learning_rate=0.0), EngineError, ["learning_rate", "above 0"]),
    ("svi learning_rate inf", lambda t: fit(t, engine="svi", learning_rate=math.inf), EngineError, ["learning_rate", "finite"]),
    ("svi proposal_draws 1", lambda t: fit(t, engine="svi", proposal_draws=1), EngineError, ["proposal_draws", "from 2"]),
    ("seed -1", lambda t: fit(t, seed=-1), EngineError, ["seed", "-1"]),
    ("seed 2^32", lambda t: fit(t, seed=2**32), EngineError, ["seed", "4294967296"]),
    ("unknown engine", lambda t: fit(t, engine="nuts"), EngineError, ["'nuts'", "allowed: exact"]),
    ("max_memory 0", lambda t: fit(t, max_memory=0), EngineError, ["max_memory", "got 0"]),
    ("data an int", lambda t: fit(5), DataError, ["expected a DataFrame or a CSV path"]),
    ("two header levels", lambda t: fit(t.set_axis(pd.MultiIndex.from_tuples([(c, "x") for c in t.columns]), axis=1)), DataError, ["several header levels"]),
    ("users without policy", lambda t: fit(t, users=pd.DataFrame({"x": [1]})), DataError, ["'policy'"]),
    ("epoch 1e300 in a frame", lambda t: fit(tbl(t, 0, "epoch", 1e300)), DataError, ["row 1", "'epoch'", "1e+300"]),
    ("round 10^20 in a frame", lambda t: fit(tbl(t, 1, "round", 10**20)), DataError, ["row 2", "'round'", "100000000000000000000"]),
    ("offer '5_3' in a frame", lambda t: fit(tbl(t, 2, "offer", "5_3")), DataError, ["row 3", "'offer'", "'5_3'"]),
    ("pot True in a frame", lambda t: fit(tbl(t, 0, "pot", True)), DataError, ["row 1", "'pot'", "'True'"]),
    ("duplicated columns", lambda t: validate_frame(pd.concat([t, t["sim"]], axis=1)), DataError, ["'sim'", "more than once"]),
    ("strict duplicates", lambda t: fit(pd.concat([t, t.iloc[[0]]]), strict=True), DataError, ["row 5", "the same game as row 1"]),
    ("layout over max_memory", lambda t: fit(t, max_memory=100), DataError, ["too large for memory", "100 B"]),
    ("no user acts", lambda t: fit(t.assign(proposer="", responder="assistant", proposer_tone="")), DataError, ["no user acts in any of the", "nothing to fit"]),
    ("Hypothesis rationality 1e308", lambda t: Hypothesis(rationality=1e308), HypothesisError, ["rationality", "1e+308"]),
    ("Hypothesis w 1e308", lambda t: Hypothesis(policies=(PolicyType("x", w=1e308),), pi_concentration=(1.0,)), HypothesisError, ["policies.x.w", "1e+308"]),
    ("Hypothesis alpha 1e300", lambda t: Hypothesis(policies=(PolicyType("x", alpha=1e300),), pi_concentration=(1.0,)), HypothesisError, ["policies.x.alpha"]),
    ("Hypothesis rationality text", lambda t: Hypothesis(rationality="high"), HypothesisError, ["rationality", "'high'"]),
    ("Hypothesis concentration text", lambda t: Hypothesis(pi_concentration="0.5"), HypothesisError, ["pi_concentration", "'0.5'"]),
    ("Hypothesis fidelity 1", lambda t: Hypothesis(tone_fidelity=1.0), HypothesisError, ["tone_fidelity"]),
    ("Hypothesis shift nan", lambda t: Hypothesis(essential_shift=math.nan), HypothesisError, ["essential_shift", "nan"]),
    ("Hypothesis name ../x", lambda t: Hypothesis(name="../x"), HypothesisError, ["name", "'../x'"]),
    ("Hypothesis name not text", lambda t: Hypothesis(name=3), HypothesisError, ["name", "3"]),
    ("Hypothesis 13 types", lambda t: Hypothesis(policies=tuple(PolicyType(f"p{i}") for i in range(13)), pi_concentration=(1.0,) * 13), HypothesisError, ["13 policy types"]),
    ("Hypothesis stereotype not a table", lambda t: Hypothesis(stereotype={"selfish": 1.0}), HypothesisError, ["stereotype.selfish"]),
    ("Hypothesis.from_dict text", lambda t: Hypothesis.from_dict("rationality = 3"), HypothesisError, ["expected a table"]),
    ("simulate sims 0", lambda t: simulate(Hypothesis(), policy="selfish", users=4, sims=0), RunError, ["sims", "got 0"]),
    ("simulate sims -2", lambda t: simulate(Hypothesis(), policy="selfish", users=4, sims=-2), RunError, ["sims", "-2"]),
    ("simulate epochs 10^9", lambda t: simulate(Hypothesis(), policy="selfish", users=4, epochs=10**9), RunError, ["epochs", "1000000000"]),
    ("simulate users 1", lambda t: simulate(Hypothesis(), policy="selfish", users=1), RunError, ["users", "got 1"]),
    ("simulate seed -1", lambda t: simulate(Hypothesis(), policy="selfish", users=4, seed=-1), RunError, ["seed", "-1"]),
    ("simulate pot range 0..5", lambda t: simulate(Hypothesis(), policy="selfish", users=4, pot_range=(0, 5)), RunError, ["pot_range low", "got 0"]),
    ("simulate pot range reversed", lambda t: simulate(Hypothesis(), policy="selfish", users=4, pot_range=(9, 2)), RunError, ["pot_range high", "got 2"]),
    ("simulate currency gold", lambda t: simulate(Hypothesis(), policy="selfish", users=4, currency="gold"), RunError, ["'gold'", "allowed: apples"]),
    ("simulate too much memory", lambda t: simulate(Hypothesis(), policy="selfish", users=100_000, rounds=100, epochs=1, sims=10_000), RunError, ["needs about", "GB", "fewer sims"]),
    ("mixture sums to 2", lambda t: parse_mixture({"selfish": 1.0, "fair": 1.0}, ("selfish", "fair")), RunError, ["sum to 2"]),
    ("mixture name twice", lambda t: parse_mixture("fair=0.5,fair=0.5", ("fair",)), RunError, ["'fair' appears twice"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "call, error, fragments", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_api_case(table, monkeypatch, call, error, fragments):
    refuse_engines(monkeypatch)
    with time_limit(API_SECONDS), pytest.raises(error) as info:
        call(table)
    assert isinstance(info.value, ScaiError)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_duplicate_games_warning_names_the_rows(table):
    with pytest.warns(DuplicateGamesWarning, match=r"1 duplicated game\(s\).*row 5 = row 1"):
        validate_frame(pd.concat([table, table.iloc[[0]]], ignore_index=True))
    # the concatenated index (0, 1, 2, 3, 0) is not the rows' positions: labels too
    label = r"row 5 \(index label 0\) = row 1 \(index label 0\)"
    with pytest.warns(DuplicateGamesWarning, match=label):
        validate_frame(pd.concat([table, table.iloc[[0]]]))


def test_the_padded_7_tb_table_is_refused_without_building_it(files):
    with time_limit(API_SECONDS), pytest.raises(DataError, match="too large for memory"):
        fit(files["hog"])


# -- valid extremes give correct, finite results ------------------------------------------------

CORNERS = {
    "steep": dict(
        rationality=1e3,
        policies=(PolicyType("a", w=100.0, alpha=100.0, beta=100.0), PolicyType("b", w=-100.0)),
        pi_concentration=(1e-3, 100.0),
    ),
    "flat": dict(rationality=1e-6, tone_fidelity=1e-6),
    "loud": dict(tone_fidelity=1 - 1e-6, stereotype={"selfish": {"rude": 1e6}}, stereotype_strength=1.0),
    "latent": dict(rationality=1e3, rationality_scale=3.0),
    "shifted": dict(shared_scale=100.0, essential_shift=-100.0),
}  # fmt: skip


@pytest.fixture(scope="module")
def big_pots() -> pd.DataFrame:
    sim = simulate(
        Hypothesis(), policy="selfish", users=4, rounds=4, epochs=2, seed=2, pot_range=(900, 1000)
    )
    return sim.interactions


@pytest.mark.parametrize("corner", list(CORNERS))
def test_the_corners_of_the_bounds_give_finite_posteriors(big_pots, corner):
    """The hypothesis bounds are where the model's arithmetic holds: at each corner, pots up
    to 1000 give a finite posterior (rationality 1e308 gave NaN)."""
    hypothesis = Hypothesis(name=corner, **CORNERS[corner])
    with time_limit(30), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = fit(big_pots, hypothesis, engine="exact", num_draws=50)
        # the guide's own draws: the importance correction would rebuild the exact potential
        svi = fit(
            big_pots,
            hypothesis,
            engine="svi",
            max_steps=5,
            num_draws=20,
            init="median",
            correction=None,
        )
    for posterior in (exact, svi):
        pi = posterior.pi_mean().numpy()
        assert np.isfinite(pi).all() and np.allclose(pi.sum(-1), 1, atol=1e-4)


def test_twelve_policy_types_are_accepted():
    types = tuple(PolicyType(f"p{i}", w=i / 4) for i in range(MAX_POLICIES))
    hypothesis = Hypothesis(policies=types, pi_concentration=(1.0,) * MAX_POLICIES)
    assert len(hypothesis.policy_names) == MAX_POLICIES


def test_an_unknown_engine_option_is_refused_before_any_work(table):
    with time_limit(API_SECONDS), pytest.raises(EngineError) as info:
        fit(table, engine="exact", max_steps=10)
    assert "unknown option 'max_steps' for engine 'exact'; allowed: num_draws" in str(info.value)


def test_every_case_is_distinct():
    for cases in (CLI_CASES, API_CASES):
        ids = [c[0] for c in cases]
        assert len(set(ids)) == len(ids)
    assert len(CLI_CASES) + len(API_CASES) >= 100


@pytest.mark.parametrize("blocker", ["folder", "link"])
def test_a_command_checks_every_output_before_writing_any(files, tmp_path, capsys, blocker):
    """``simulate`` writes FILE.csv and FILE.users.csv, ``fit`` posterior.nc and
    policy_probs.csv: when the second cannot be written (a folder or a link in its place), the
    command fails with one line before writing the first."""

    def block(path: Path) -> None:
        if blocker == "folder":
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(files["root"] / "precious")

    block(tmp_path / "sim" / "t.users.csv")
    block(tmp_path / "fit" / "policy_probs.csv")
    cases = [
        (["simulate", "--policy", "selfish", "--out", str(tmp_path / "sim" / "t.csv")], "t.users.csv"),
        (["fit", "--data", str(files["good"]), "--out", str(tmp_path / "fit")], "policy_probs.csv"),
    ]  # fmt: skip
    for argv, named in cases:
        assert main(argv) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert "--out" in line and named in line and "Traceback" not in line, line
    assert not (tmp_path / "sim" / "t.csv").exists()
    assert not (tmp_path / "fit" / "posterior.nc").exists()
    assert (files["root"] / "precious").read_text() == "precious"


@pytest.mark.parametrize("missing", [None, np.nan, np.float32("nan"), pd.NA], ids=repr)
def test_every_kind_of_missing_cell_is_an_empty_one(table, missing):
    """A DataFrame's missing cell (``None``, NaN of any width, pandas' ``NA``) reads as an empty
    CSV cell: no proposer, not a user named ``<NA>`` or ``nan``; a missing offer is 'a value is
    required', not 'must be a whole number'."""
    from scai.models.data import validate_frame

    frame = table.astype(object)
    frame.loc[0, "proposer"] = missing
    frame.loc[0, "proposer_tone"] = ""  # an unknown proposer's tone has no one to go to
    assert validate_frame(frame).loc[0, "proposer"] == ""
    frame = table.astype(object)
    frame.loc[0, "offer"] = missing
    with pytest.raises(DataError) as err:
        validate_frame(frame)
    assert "a value is required" in str(err.value), str(err.value)


def test_simulate_takes_a_preset_name_and_a_numpy_seed_and_save_refuses_a_folder(tmp_path):
    """``simulate("stereotyped", ...)`` as ``fit`` takes a name (it raised AttributeError); a
    NumPy integer seed gives the int seed's games (it raised TypeError in Python's random); a
    posterior saved onto a folder is refused naming it (not a temporary file's IsADirectory)."""
    from scai.models.errors import RunError

    by_name = simulate("stereotyped", policy="selfish", users=3, seed=np.uint32(7))
    from scai.models.hypotheses import PRESETS

    by_object = simulate(PRESETS["stereotyped"], policy="selfish", users=3, seed=7)
    pd.testing.assert_frame_equal(by_name.interactions, by_object.interactions)
    post = fit(by_name.interactions, "neutral", num_draws=20)
    with pytest.raises(RunError, match="is a folder"):
        post.save(tmp_path)


def test_spaces_around_a_csv_value_are_layout(tmp_path):
    """A space after a value ("u0 ,") made a second user "u0 " while one before it was
    skipped, and so did a quoted one (" u0"): all are layout now, in every column but the
    messages as written."""
    from scai.models.data import read_interactions

    header = "sim,epoch,round,proposer,responder,currency,pot,offer,accepted,proposer_tone"
    path = tmp_path / "spaces.csv"
    path.write_text(
        f"{header},responder_tone,proposer_text\n"
        "0,1,1,u0 ,u1,dollars,10,2,1,neutral,neutral,keep  \n"
        "0,1,2, u0,u1 ,dollars ,10,2,1 ,neutral ,neutral,keep\n"
        '0,1,3," u0"," u1 ",dollars,10,2,1,neutral,neutral," keep"\n'  # quoted: the same
    )
    table = read_interactions(path)
    assert table.proposer.tolist() == ["u0"] * 3 and table.responder.tolist() == ["u1"] * 3
    assert table.currency.tolist() == ["dollars"] * 3 and table.accepted.tolist() == [1] * 3
    assert table.proposer_text.tolist() == ["keep  ", "keep", " keep"]


def test_spaces_around_a_dataframe_value_are_layout_as_in_a_csv():
    """A DataFrame is read as its CSV would be: ``"u1 "`` (a spreadsheet's trailing space) is
    ``"u1"``, not a second user (the fit saw 18 users where the CSV has 9, and ``pi`` moved),
    and ``"rude "`` a tone (refused from a DataFrame, read from the CSV). The messages as
    written are kept."""
    from scai.models.data import validate_frame

    table = simulate(PRESETS["neutral"], policy="selfish", users=4, epochs=1, seed=2).interactions
    table["proposer_text"] = "keep "
    spaced = table.copy()
    spaced["proposer"] = spaced["proposer"] + " "
    spaced["responder"] = " " + spaced["responder"]
    spaced["proposer_tone"] = spaced["proposer_tone"] + " "
    spaced["currency"] = " " + spaced["currency"]
    got = validate_frame(spaced)
    pd.testing.assert_frame_equal(got, validate_frame(table))
    assert got["proposer_text"].tolist() == ["keep "] * len(got)


@pytest.mark.parametrize("engine", ["exact", "svi", "mcmc"])
def test_numpy_integers_are_whole_numbers_for_every_engine(engine):
    """A NumPy integer seed or count (``np.int64(3)``, from an array of seeds) passed the checks
    and then failed inside every engine (torch's and Python's generators take only ``int``);
    it is now the same fit as the Python int's."""
    table = simulate(PRESETS["neutral"], policy="selfish", users=4, epochs=1, seed=1).interactions
    counts = {"samples": 30, "warmup": 30} if engine == "mcmc" else {"num_draws": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        numpy = fit(
            table, engine=engine, seed=np.int64(3), **{k: np.int64(v) for k, v in counts.items()}
        )
        plain = fit(table, engine=engine, seed=3, **counts)
    assert numpy.n_draws == 30
    for site, value in plain.draws.items():
        assert np.array_equal(numpy.draws[site], value), site


def test_simulate_and_fit_leave_the_callers_random_state_as_it_was():
    """``simulate`` and the SVI and MCMC engines seed Python's, NumPy's and torch's global
    generators (``pyro.set_rng_seed``); a notebook's own random numbers after them were those
    of scai's seed. They are now the numbers the caller's own seed gives, after ``fit`` and
    ``update`` alike."""
    import random

    import torch

    def draws():
        return np.random.rand(), random.random(), float(torch.rand(1))

    def seeded():
        np.random.seed(99), random.seed(99), torch.manual_seed(99)

    seeded()
    expected = draws()
    seeded()
    table = simulate(PRESETS["neutral"], policy="selfish", users=4, epochs=1, seed=5).interactions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, second = table[table["round"] <= 4], table[table["round"] > 4]
        for engine, options in (("svi", {"num_draws": 20}), ("mcmc", {"samples": 20})):
            online.update(fit(first, engine=engine, **options), second)
    assert draws() == expected


def test_small_things_a_notebook_user_meets():
    """``with_(pi_concentration=0.5)`` is one number for every policy, as in a TOML file (it was
    refused); ``simulate``'s bad currency list and manner are scai's errors (``except
    ScaiError`` missed builtin ``ValueError`` s); a posterior's repr is one line (the dataclass's
    held the whole table and every tensor: 31 kB for 200 users)."""
    from scai.models.errors import ScaiError

    assert PRESETS["neutral"].with_(pi_concentration=2).pi_concentration == (2.0, 2.0, 2.0)
    # and so in the constructor (it was refused there alone: a review)
    assert Hypothesis(pi_concentration=0.5).pi_concentration == (0.5, 0.5, 0.5)
    for bad in ({"currency": ["dollars", "apples"]}, {"manner": "angry"}):
        with pytest.raises(ScaiError):
            simulate(PRESETS["neutral"], policy="selfish", users=4, sims=3, **bad)
    table = simulate(PRESETS["neutral"], policy="selfish", users=200, rounds=200, seed=1)
    posterior = fit(table.interactions)
    text = repr(posterior)
    assert text.startswith("Posterior(engine='exact', hypothesis='neutral', simulations=1,")
    assert "\n" not in text and len(text) < 300, text
    posterior.table = None  # as the engines make it when called without a table
    assert "interactions=None" in repr(posterior)


def test_what_a_fuzz_of_the_new_input_paths_found():
    """NumPy int32 counts wrapped in ``simulate``'s size check (4.3 billion games passed as 0
    and ran); ``None`` for an option that needs a value failed inside the engine; an empty
    typed DataFrame met ``.str`` on an int column; a tar holding only a folder, a link or a
    gzipped table named ``.tgz`` was pandas' internal error, while a table inside folders was
    refused as several files; ``with_`` kept a list (unequal to the tuple) and overflowed on a huge int;
    NumPy floats and bools were refused as rates and flags; ``strict="no"`` was true."""
    import io
    import tarfile

    from scai.models.errors import HypothesisError, ScaiError

    with pytest.raises(RunError, match="4,294,967,296 games"):
        simulate(
            Hypothesis(), policy="selfish", users=np.int32(2), rounds=np.int32(8),
            epochs=np.int32(65536), sims=np.int32(8192), seed=1,
        )  # fmt: skip
    table = simulate(PRESETS["neutral"], policy="selfish", users=4, epochs=1, seed=1).interactions
    with pytest.raises(EngineError, match="num_draws=None .* needs a value"):
        fit(table, num_draws=None)
    with pytest.raises(DataError, match="no rows"):
        fit(table.iloc[:0])
    assert fit(table, engine="svi", learning_rate=np.float32(0.05), jit=np.False_, num_draws=20)
    with pytest.raises(EngineError, match="strict: must be True or False"):
        fit(table, strict="no")
    h = PRESETS["neutral"].with_(pi_concentration=[1.0, 1.0, 1.0])
    assert h == PRESETS["neutral"].with_(pi_concentration=1) and h.pi_concentration == (1.0,) * 3
    with pytest.raises(HypothesisError):
        PRESETS["neutral"].with_(pi_concentration=10**400)
    root = Path(tempfile.mkdtemp())
    text = table.to_csv(index=False).encode()
    with tarfile.open(root / "nested.tgz", "w:gz") as archive:
        info = tarfile.TarInfo("a/b/t.csv")
        info.size = len(text)
        archive.addfile(info, io.BytesIO(text))
    assert len(read_interactions(root / "nested.tgz")) == len(table)
    with tarfile.open(root / "folder.tar.gz", "w:gz") as archive:
        folder = tarfile.TarInfo("d")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)  # a folder alone
    (root / "plain.tgz").write_bytes(__import__("gzip").compress(text))
    for name, said in (("folder.tar.gz", "a TAR with no file"), ("plain.tgz", "named .csv.gz")):
        with pytest.raises(ScaiError, match=said):
            read_interactions(root / name)
    # and the smaller ones: NumPy mixture weights, currency=None, min_steps above max_steps,
    # a DataFrame column named " pot " (a CSV's header is stripped)
    mixture = {"selfish": np.float32(0.5), "fair": np.float64(0.5)}
    assert len(simulate(PRESETS["neutral"], policy=mixture, users=4, seed=1).interactions)
    with pytest.raises(RunError, match="currency: one name, or one per simulation"):
        simulate(PRESETS["neutral"], policy="selfish", users=4, currency=None)
    with pytest.raises(EngineError, match="min_steps=100 is above max_steps=10"):
        fit(table, engine="svi", min_steps=100, max_steps=10)
    assert fit(table.rename(columns={"pot": " pot "})).data.shape == fit(table).data.shape
    # bytes ids became users named "b'u0'"
    with pytest.raises(DataError, match="bytes; decode them to text first"):
        fit(table.assign(proposer=table["proposer"].map(str.encode)))


def test_scai_fit_defaults_are_the_engines_own():
    """``scai fit`` passes every engine option explicitly, with the defaults of ``fit_mcmc``
    and ``fit_svi``: the same data and seed fit alike from the shell and from Python (the
    command line's warmup was 500 where ``fit_mcmc``'s is 300)."""
    import inspect

    from scai.experiments.commands.fit import ENGINE_OPTIONS
    from scai.inference.mcmc import fit_mcmc
    from scai.inference.svi import fit_svi

    function = {"mcmc": fit_mcmc, "svi": fit_svi}
    parameter = {"chains": "num_chains", "subsample": "subsample_size"}
    for option, (engine, default) in ENGINE_OPTIONS.items():
        name = parameter.get(option, option)
        assert inspect.signature(function[engine]).parameters[name].default == default, option


def test_scai_fit_shows_the_worst_diagnostics_on_one_readable_line():
    """Per-parameter or per-simulation diagnostics come out as their worst value and whose
    it is (the largest r-hat and Pareto k, the smallest ESS); short lists whole, long ones as
    a range; nested entries under their parent's name."""
    from scai.experiments.commands.fit import diagnostics_line

    line = diagnostics_line(
        {
            "r_hat": {"pi[0, fair]": 1.004, "lam[0]": 1.031},
            "ess_bulk": {"pi[0, fair]": 812.0, "lam[0]": 377.0},
            "divergences": 2,
            "bfmi": [1.046, 0.231],
            "log_evidence": [float(-v) for v in range(20)],
            "importance": {"pareto_k": {"0": 0.2, "1": 0.83}, "proposal_draws": 2000},
            "converged": True,
            "grid_size": [1, 2926],
        }
    )
    assert line == (
        "r_hat max 1.031 (lam[0]), ess_bulk min 377 (lam[0]), divergences 2, "
        "bfmi [1.046, 0.231], log_evidence -19..0 (20 values), "
        "importance.pareto_k max 0.83 (1), importance.proposal_draws 2000, converged True, "
        "grid_size (grid points of the scalars and bounded sites, lattice points) [1, 2926]"
    )


@pytest.mark.parametrize(
    "argv, option",
    [
        (["fit", "--data", "{good}", "--out", ""], "--out"),
        (["run", "alignment", "--quick", "--out", ""], "--out"),
        (["import", "scai-logs", "", "--out", "{root}/l.csv"], "SOURCE"),
        (["import", "scai-logs", "{good}", "--out", ""], "--out"),
        (["validate", ""], "FILE.csv"),
    ],
    ids=["fit out", "run out", "import source", "import out", "validate"],
)
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(files, capsys, argv, option):
    """An empty path meant the current folder: ``fit --out ''`` wrote there and ``import
    scai-logs ''`` read all of it, archives included."""
    with time_limit(CLI_SECONDS):
        code = main([a.format(**files) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"argument {option}: an empty path" in err, err


def test_an_svi_minibatch_larger_than_a_simulation_is_refused(table):
    """A minibatch of more users than a simulation has leaked Pyro's 'subsample_size does not
    match len(subsample)' with its trace shapes."""
    users = len(set(table.proposer) | set(table.responder))
    with time_limit(API_SECONDS), pytest.raises(EngineError, match=f"at most {users}"):
        fit(table, engine="svi", subsample_size=users + 1)


def test_a_table_piped_to_dev_stdin_is_read(files):
    """A pipe is read to its end (``cat t.csv | scai validate /dev/stdin``): refusing devices
    must not refuse the standard input."""
    import subprocess

    text = Path(files["good"]).read_text()
    done = subprocess.run(
        [sys.executable, "-m", "scai", "validate", "/dev/stdin"],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "valid" in done.stdout, done.stderr


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "pipe"])
def test_a_wide_header_is_refused_before_parsing_in_an_archive_or_a_pipe(tmp_path, kind):
    """The header guard opened only plain, .gz, .bz2 and .xz files: a .zip, a .tar or a pipe
    holding 100,000 columns went to pandas, which ran for minutes over it."""
    import io
    import subprocess
    import tarfile
    import zipfile

    header = ",".join(f"c{i}" for i in range(100_000)) + "\n"
    path = tmp_path / f"wide.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("wide.csv", header)
    elif kind == "tar.gz":
        data = header.encode()
        member = tarfile.TarInfo("wide.csv")
        member.size = len(data)
        with tarfile.open(path, "w:gz") as archive:
            archive.addfile(member, io.BytesIO(data))
    argv = [sys.executable, "-m", "scai", "validate", "/dev/stdin" if kind == "pipe" else path]
    done = subprocess.run(
        argv,
        input=header if kind == "pipe" else None,
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "header line is longer than 65,536 characters" in said, said


def test_an_undefined_diagnostic_is_shown_as_the_worst_whatever_the_order():
    """A NaN r-hat (undefined) is the worst; with ``max`` it showed or hid depending on the
    order of the entries."""
    from scai.experiments.commands.fit import diagnostics_line

    nan = float("nan")
    for r_hat in ({"a": nan, "b": 1.5}, {"b": 1.5, "a": nan}):
        assert diagnostics_line({"r_hat": r_hat}) == "r_hat max nan (a)"
    for ess in ({"a": nan, "b": 800.0}, {"b": 800.0, "a": nan}):
        assert diagnostics_line({"ess_bulk": ess}) == "ess_bulk min nan (a)"


def test_output_to_a_closed_pipe_ends_quietly(files):
    """``scai fit ... | head -1``: the reader closed the pipe, and the command said
    ``scai fit: error: Broken pipe``; it now ends with code 1 and nothing on stderr."""
    import subprocess

    argv = [sys.executable, "-m", "scai", "fit", "--data", str(files["good"])]
    argv += ["--out", str(files["root"] / "piped")]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # before the command writes anything: every write meets a closed pipe
    _, err = child.communicate(timeout=120)
    assert child.returncode == 1 and err.decode() == "", err.decode()
    assert (files["root"] / "piped" / "posterior.nc").exists()  # the work was done


def test_a_pipe_with_a_compressed_name_is_decompressed(files, tmp_path):
    """A pipe is read into memory to check its header; one named ``.csv.gz`` is left to pandas,
    which decompresses it by its name (read into memory, it lost the name: 'not UTF-8')."""
    import gzip
    import threading

    from scai.models.data import read_interactions

    pipe = tmp_path / "piped.csv.gz"
    os.mkfifo(pipe)
    packed = gzip.compress(Path(files["good"]).read_bytes())
    writer = threading.Thread(target=lambda: pipe.write_bytes(packed))
    writer.start()
    try:
        table = read_interactions(pipe)
    finally:
        writer.join(timeout=30)
    assert len(table) == len(read_interactions(files["good"]))


def test_a_dataframe_holds_decisions_as_booleans():
    """A DataFrame's ``accepted`` of ``True``/``False`` (bool or pandas' nullable boolean) is
    1/0, the same fit as the table of ints (it was refused at every row); a missing one is the
    one problem named, at its row; the strings ``"True"``/``"False"`` are 1/0, as in a CSV, and
    another word is refused."""
    table = simulate(PRESETS["neutral"], policy="selfish", users=4, epochs=1, seed=1).interactions
    expected = fit(table).pi_mean()
    as_bool = table.assign(accepted=table["accepted"].astype(bool))
    assert bool((fit(as_bool).pi_mean() == expected).all())
    nullable = as_bool.assign(accepted=as_bool["accepted"].astype("boolean"))
    assert bool((fit(nullable).pi_mean() == expected).all())
    nullable.loc[2, "accepted"] = pd.NA
    with pytest.raises(DataError) as caught:
        fit(nullable)
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, "accepted")]
    as_words = as_bool.assign(accepted=as_bool["accepted"].astype(str))
    assert bool((fit(as_words).pi_mean() == expected).all())
    with pytest.raises(DataError, match="value 'yes': must be 1"):
        fit(as_words.replace({"accepted": {"True": "yes"}}))
    # objects that are all bools or missing (a map with an unmapped value) are read alike
    objects = as_bool.assign(accepted=as_bool["accepted"].astype(object))
    assert bool((fit(objects).pi_mean() == expected).all())
    objects.loc[4, "accepted"] = np.nan
    with pytest.raises(DataError) as caught:
        fit(objects)
    assert [(p.row, p.column) for p in caught.value.problems] == [(5, "accepted")]


def test_duplicated_games_are_named_by_their_index_labels_at_the_callers_line():
    """A DataFrame's duplicated games are named by position and index label, as its other
    problems are, and the warning points at the caller's line (a hand-counted stack level
    pointed inside scai's ``prepare``)."""
    table = simulate(PRESETS["neutral"], policy="selfish", users=4, epochs=1, seed=1).interactions
    doubled = pd.concat([table, table.iloc[[1]]])
    doubled.index = [f"g{i}" for i in range(len(doubled))]
    last = len(doubled)
    with pytest.warns(DuplicateGamesWarning) as caught:
        fit(doubled)
    assert f"row {last} (index label 'g{last - 1}') = row 2 (index label 'g1')" in str(
        caught[0].message
    )
    assert caught[0].filename == __file__
    with pytest.raises(DataError) as refused:
        fit(doubled, strict=True)
    (problem,) = refused.value.problems
    assert problem.row == last and "row 2 (index label 'g1')" in str(problem)
    assert f"(index label 'g{last - 1}')" in str(problem)
    doubled.index = pd.MultiIndex.from_tuples([(i % 3, i) for i in range(last)])
    with pytest.warns(DuplicateGamesWarning, match=r"\(index label \(1, 1\)\)"):
        fit(doubled)  # a MultiIndex's numbers as written, not np.int64(1)


def test_python_flags_paths_and_currency_names_are_checked(tmp_path):
    """From Python (a review's finds): ``strict="no"`` (true to Python) switched strict mode
    on and ``skip_invalid="no"`` dropped bad rows; ``currencies="dollars"`` was read letter by
    letter and ``["euros"]`` was taken; ``None`` or a buffer for a path gave Python's
    TypeError, and ``fit("")`` said the current folder is a folder. Each is refused naming
    the argument and the value; a single currency name is one name."""
    from scai.inference.fit import prepare
    from scai.models.human_data import read_human_data

    table = simulate("neutral", policy="fair", users=4, seed=1).interactions
    path = tmp_path / "t.csv"
    write_csv_atomic(table, path)
    posterior = fit(os.fsencode(path), "neutral", engine="exact", num_draws=20)  # bytes: a path
    refused = [
        (
            lambda: read_interactions(path, strict="no"),
            RunError,
            "strict: must be True or False, got 'no'",
        ),
        (
            lambda: read_interactions(path, allow_empty=1),
            RunError,
            "allow_empty: must be True or False, got 1",
        ),
        (
            lambda: validate_frame(table.iloc[:0], allow_empty="no"),
            RunError,
            "allow_empty: must be",
        ),
        (
            lambda: prepare(table, "neutral", strict="no"),
            EngineError,
            "strict: must be True or False",
        ),
        (
            lambda: read_human_data(path, skip_invalid="no"),
            RunError,
            "skip_invalid: must be True or False",
        ),
        (
            lambda: read_interactions(path, currencies=["euros"]),
            RunError,
            "currencies: unknown currency 'euros'; allowed: apples",
        ),
        (lambda: read_interactions(None), RunError, "path: expected a file path, got None"),
        (lambda: read_interactions(""), RunError, "path: the path is empty"),
        (lambda: read_human_data(None), RunError, "path: expected a file path, got None"),
        (lambda: fit("", "neutral"), EngineError, "data: the path is empty"),
        (lambda: online.update(posterior, ""), EngineError, "new_interactions: the path is empty"),
        (lambda: online.update(posterior, 5), DataError, "\n  argument: expected a DataFrame"),
    ]
    for call, error, said in refused:
        with pytest.raises(error) as caught:
            call()
        assert said in str(caught.value)
    assert len(read_interactions(path, currencies="dollars")) == len(table)
    with pytest.raises(DataError, match="'currency'.*'dollars'.*allowed: apples"):
        read_interactions(path, currencies="apples")  # one name: the table's are not it
    with pytest.raises(DataError, match="is a folder"):
        read_human_data(tmp_path)


def test_a_problem_of_no_file_is_not_told_as_a_file_s():
    """An in-memory table's layout too large, an unknown tones mode, a reader without the
    reader's methods, data of the wrong type: each was told as "file: ..." though no file
    was read (a review's finds); each names what it is a problem of."""
    from scai.models.tone_reader.reading import apply_tones

    table = simulate("neutral", policy="fair", users=4, seed=1).interactions
    neutral = Hypothesis()
    for call, where in (
        (lambda: fit(table, neutral, max_memory=10), "\n  table: too large for memory"),
        (lambda: apply_tones(table, neutral, "Read"), "\n  mode: value 'Read'"),
        (lambda: apply_tones(table, neutral, "read", reader=object()), "\n  reader: must have"),
        (lambda: fit(table.to_dict("records"), neutral), "\n  argument: expected a DataFrame"),
    ):
        with pytest.raises(DataError) as caught:
            call()
        assert where in str(caught.value) and "file" not in str(caught.value)


def test_saving_under_another_format_s_name_is_refused(tmp_path):
    """``Posterior.save("p.csv")`` wrote NetCDF, ``Hypothesis.save("h.json")`` TOML and
    ``save_reader(r, "r.csv")`` JSON without a word (the command line refuses such names;
    reviews' finds): refused, naming the ending to give, nothing written; their own endings,
    and none, are taken."""
    from scai.models.tone_reader.serialise import default_reader, save_reader

    table = simulate("neutral", policy="fair", users=4, seed=1).interactions
    posterior = fit(table, "neutral", engine="exact", num_draws=20)
    for save, name, error, said in (
        (
            posterior.save,
            "p.csv",
            EngineError,
            "names a CSV table, and Posterior.save writes NetCDF",
        ),
        (posterior.save, "p.nc.gz", EngineError, "give a name ending .nc"),
        (
            Hypothesis().save,
            "h.json",
            HypothesisError,
            "names JSON, and Hypothesis.save writes TOML",
        ),
        (Hypothesis().save, "h.TOML.xz", HypothesisError, "give a name ending .toml"),
        (lambda p: save_reader(default_reader(), p), "r.csv", RunError, "save_reader writes JSON"),
        (lambda p: save_reader(default_reader(), p), "r.json.gz", RunError, "ending .json"),
    ):
        with pytest.raises(error, match=re.escape(said)):
            save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    posterior.save(tmp_path / "p.nc")
    Hypothesis().save(tmp_path / "h.TOML")
    Hypothesis().save(tmp_path / "h")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h", "h.TOML", "p.nc"]


def test_an_output_on_a_read_only_mount_says_so(tmp_path, monkeypatch):
    """An output folder on a read-only mount was refused as "(permission denied)": access()
    says no there too, whatever the folder's permissions (a review). The mount is faked: a
    test cannot mount one."""
    import argparse
    import os
    from types import SimpleNamespace

    from scai.experiments import commands

    monkeypatch.setattr(os, "access", lambda path, mode: False)
    for flags, why in ((os.ST_RDONLY, "read-only file system"), (0, "permission denied")):
        monkeypatch.setattr(os, "statvfs", lambda path, flags=flags: SimpleNamespace(f_flag=flags))
        with pytest.raises(argparse.ArgumentTypeError, match=rf"cannot write in .* \({why}\)$"):
            commands._check_writable_folder(tmp_path / "out", "--out out")
