"""scai installs as one import package, ``scai``, and nothing else at top level.

The repository keeps the product's folders (``models/``, ``inference/``, ``experiments/``);
``pyproject.toml`` maps them to ``scai.models``, ``scai.inference`` and ``scai.experiments``.
These tests run the installed package the way a user would: from a folder that holds its own
``models.py`` (which a bare ``import models`` would pick up), through the console script and
through ``python -m``.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import scai

ROOT = Path(__file__).resolve().parents[1]
GENERIC_NAMES = ("models", "inference", "experiments")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def decoy_dir(tmp_path_factory) -> Path:
    """An empty working folder holding a ``models.py`` of the user's own."""
    folder = tmp_path_factory.mktemp("user_project")
    (folder / "models.py").write_text("raise ImportError('the user project models.py')\n")
    return folder


def test_every_module_imports_without_generic_top_level_packages(decoy_dir):
    code = (
        "import importlib, pkgutil, sys, scai\n"
        "names = [m.name for m in pkgutil.walk_packages(scai.__path__, 'scai.')]\n"
        "skip = ('scai.__main__',)\n"
        "[importlib.import_module(n) for n in names if n not in skip]\n"
        f"bad = [n for n in {GENERIC_NAMES!r} if n in sys.modules]\n"
        "print(len(names), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = _run([sys.executable, "-c", code], decoy_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(done.stdout.split()[0]) > 30  # every module was walked


def test_no_generic_top_level_module_is_loaded_in_this_session():
    # Everything the test suite imported so far came through ``scai``.
    loaded = [n for n in GENERIC_NAMES if n in sys.modules]
    assert not loaded, f"bare top-level modules imported: {loaded}"


def test_version_everywhere(decoy_dir):
    assert scai.__version__ == importlib.metadata.version("scai")
    script = Path(sys.executable).with_name("scai")
    for args in ([str(script), "--version"], [sys.executable, "-m", "scai", "--version"]):
        done = _run(args, decoy_dir)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"scai {scai.__version__}"


def test_console_ends_the_process_as_python_would(decoy_dir):
    """The console script ends the process without the interpreter's teardown: the exit code,
    all that was written to a pipe, a non-daemon thread's work and the exit handlers (after
    the thread, as Python orders them) are all still there."""
    code = (
        "import atexit, sys, threading, time\n"
        "import scai.experiments.cli as cli\n"
        "atexit.register(lambda: print('exit handler ran'))\n"
        "command = cli.main\n"
        "def main(argv):\n"  # a thread still working when the command returns
        "    code = command(argv)\n"
        "    threading.Thread(target=lambda: (time.sleep(0.5), print('thread done'))).start()\n"
        "    return code\n"
        "cli.main = main\n"
        "print('x' * 100_000)\n"  # more than the pipe's buffer holds
        "cli.console(sys.argv[1:])\n"
    )
    done = _run([sys.executable, "-c", code, "run", "nothing"], decoy_dir)
    assert done.returncode == 2, done.stderr
    assert "invalid choice: 'nothing'" in done.stderr
    assert done.stdout.splitlines() == ["x" * 100_000, "thread done", "exit handler ran"]


def test_a_signal_once_the_work_is_done_ends_the_process_with_its_code(decoy_dir):
    """Ctrl-C or SIGTERM arriving as the command returns (a review's script sent it on the
    run's last line) hit the wait for the worker threads: a traceback of KeyboardInterrupt
    and exit 130 after every file was written. The command's own code stands, and the exit
    handlers still run."""
    code = (
        "import atexit, sys, threading\n"
        "import scai.experiments.cli as cli\n"
        "atexit.register(lambda: print('exit handler ran'))\n"
        "join = threading._shutdown\n"
        "def late():\n"
        "    join()\n"
        "    raise KeyboardInterrupt\n"  # as the signal's handler raises it
        "threading._shutdown = late\n"
        "cli.console(sys.argv[1:])\n"
    )
    done = _run([sys.executable, "-c", code, "--version"], decoy_dir)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.splitlines() == [f"scai {scai.__version__}", "exit handler ran"]
    # in an exit handler (Python prints what one raises: "Exception ignored in atexit
    # callback", a review): the process ends there, with the command's code
    code = (
        "import atexit, os, signal, sys, time\n"
        "import scai.experiments.cli as cli\n"
        "atexit.register(lambda: print('not reached'))\n"  # (handlers run last first)
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(60)))\n"
        "cli.console(sys.argv[1:])\n"
    )
    start = time.monotonic()
    done = _run([sys.executable, "-c", code, "--version"], decoy_dir)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines() == [f"scai {scai.__version__}"]
    assert time.monotonic() - start < 40  # at once, not after the handler's 60 s


def test_the_console_freezes_its_imports_and_collects_garbage(decoy_dir):
    """The console script imports its commands with cyclic garbage collection off (~0.3 s of
    CPU of collections saved), then freezes what they imported (never walked again) and turns
    collection on for the command's work; on a way out before the commands ran, it is on too."""
    code = (
        "import atexit, gc, sys\n"
        "import scai.experiments.cli as cli\n"
        "atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 100_000))\n"
        "cli.console(sys.argv[1:])\n"
    )
    done = _run([sys.executable, "-c", code, "validate", "no-such-table.csv"], decoy_dir)
    assert done.returncode == 1 and "file does not exist" in done.stderr, done.stderr
    assert done.stdout.split() == ["True", "True"]
    done = _run([sys.executable, "-c", code, "nothing"], decoy_dir)
    assert done.returncode == 2, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_the_console_leaves_a_host_program_s_garbage_collection_alone(decoy_dir):
    """Run inside a host program (``runpy``, as IPython's ``%run -m`` does), the console does
    not freeze the host's objects nor turn its collection on or off."""
    code = (
        "import gc, runpy, sys\n"
        "gc.disable()\n"
        "sys.argv[1:] = ['validate', 'no-such-table.csv']\n"
        "try:\n"
        "    runpy.run_module('scai', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    done = _run([sys.executable, "-c", code], decoy_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "0"]


def test_a_profiler_still_gets_its_profile(decoy_dir, tmp_path):
    """Under ``python -m cProfile -m scai`` the console script exits the usual way, so that
    the profiler writes its file after the program returns."""
    out = tmp_path / "scai.prof"
    done = _run(
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "scai", "--version"], decoy_dir
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0


def test_a_host_program_gets_the_exit_back(decoy_dir):
    """Run by a host program (``runpy.run_module``, as IPython's ``%run -m`` does), scai
    raises ``SystemExit`` as a program should, and the host goes on."""
    code = (
        "import runpy\n"
        "try:\n"
        "    runpy.run_module('scai', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    print('host caught', done.code)\n"
        "print('host goes on')\n"
    )
    done = _run([sys.executable, "-c", code, "--version"], decoy_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"scai {scai.__version__}", "host caught 0", "host goes on"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_an_error(decoy_dir):
    """Output to a full device fails when the buffered stream is flushed at the end: Python's
    own exit reports it (exit code 120), as without the fast exit, not a silent success."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "scai", "--version"],
            cwd=decoy_dir,
            env={**env, "PYTHONPATH": ""},
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert done.returncode == 120, done.stderr
    assert "No space left on device" in done.stderr


def test_python_m_cli_registers_every_subcommand(decoy_dir):
    from scai.experiments.commands import load_commands

    def help_of(name: str) -> subprocess.CompletedProcess:
        return _run([sys.executable, "-m", "scai.experiments.cli", name, "--help"], decoy_dir)

    names = list(load_commands())
    with ThreadPoolExecutor(2) as pool:  # a fresh interpreter each, two at a time (2 cores)
        runs = list(pool.map(help_of, names))
    for name, done in zip(names, runs, strict=True):
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert f"usage: scai {name}" in done.stdout


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"scai": "."}
    on_disk = {"scai"} | {"scai." + p for p in _package_folders()}
    assert set(config["packages"]) == on_disk


def _package_folders() -> list[str]:
    out = []
    for top in GENERIC_NAMES:
        for init in (ROOT / top).rglob("__init__.py"):
            out.append(".".join(init.parent.relative_to(ROOT).parts))
    return out


def test_wheel_holds_only_scai_and_its_license(tmp_path):
    """The wheel, built from a copy of the sources (setuptools writes build/ and *.egg-info
    beside the sources it builds: a stale copy of the package in the checkout)."""
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "venv", "build", "*.egg-info", "__pycache__", ".*_cache", "results"
        ),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("scai-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"scai", f"scai-{scai.__version__}.dist-info"}
    assert any(n.endswith("licenses/LICENSE") for n in names)
    # the packaged hypothesis files travel with the code
    assert "scai/experiments/hypotheses/human_norms.toml" in names
    assert "scai/models/tone_reader/default_reader.json" in names  # the shipped tone reader


def test_command_line_starts_without_plotting_or_the_experiments(decoy_dir):
    """``scai``'s parser (every subcommand's options) and ``scai run all``'s plans, what the
    command reads before its workers start, import neither matplotlib (~0.17 s) nor the
    experiments behind ``scai sweep`` and ``scai run original-logs`` (~0.2 s with it): the
    start-up of ``scai run all`` is the command's imports racing the worker server's. What the
    parser reads of those packages (option choices) lives in light modules; they import the
    rest, and the figures matplotlib, on first use."""
    code = (
        "import sys\n"
        "from scai.experiments.cli import build_parser\n"
        "from scai.experiments.registry import STUDY, load\n"
        "args = build_parser().parse_args(['run', 'all'])\n"
        "plans = [load(name).plan(args) for name in STUDY]\n"
        "import scai.experiments.runner\n"
        "heavy = ('matplotlib', 'seaborn', 'scai.experiments.sweep.run',\n"
        "         'scai.experiments.original_logs.experiment')\n"
        "print([n for n in heavy if n in sys.modules])\n"
        "from scai.experiments.sweep import load_spec, run_sweep\n"
        "from scai.experiments.original_logs import NAME, main\n"
        "print(run_sweep.__module__, main.__module__, NAME)\n"
    )
    done = _run([sys.executable, "-c", code], decoy_dir)
    assert done.returncode == 0, done.stderr
    loaded, names = done.stdout.splitlines()
    assert loaded == "[]"
    assert names.split() == [
        "scai.experiments.sweep.run",
        "scai.experiments.original_logs.experiment",
        "original-logs",
    ]
