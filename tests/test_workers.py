"""The worker pool: its workers are forked from one server that imported their modules once
(so no shared file is raced on, and no thread is copied half-way), and they end with the
program that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runs import running

linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

SCRIPT = """
import os, sys, time
from scai.inference.workers import worker_pool

def state(_):
    # what this worker holds before it imports anything itself, and its parent's threads
    threads = len(os.listdir(f"/proc/{os.getppid()}/task"))
    return "arviz" in sys.modules, "torch" in sys.modules, threads

if __name__ == "__main__":
    pool = worker_pool(2)
    print(list(pool.map(state, range(4))), flush=True)
    print(pool.submit(os.getpid).result(), flush=True)  # then that worker is busy for a minute
    pool.submit(time.sleep, 60)
    time.sleep(60)
"""


@linux
def test_workers_come_from_a_server_without_threads_and_end_with_their_program(tmp_path):
    # ArviZ 0.23 writes a daily stamp file on import through one temporary name; processes
    # that import it together race on it. Only the server imports it, before any fork, with
    # torch; it runs one thread when it forks (OpenBLAS stops its idle ones before a fork),
    # so a forked worker inherits no lock or thread pool half-way.
    # The worker's parent is the server, which outlives the program while workers hold it
    # open: a worker watches the program itself, and ends with it (one program for both
    # checks: each start of a server costs seconds of imports).
    (script := tmp_path / "pool.py").write_text(SCRIPT)
    cache = tmp_path / "fresh-cache"
    program = subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert eval(program.stdout.readline()) == [(True, True, 1)] * 4
        assert (cache / "arviz" / "daily_warning").is_file()
        worker = int(program.stdout.readline())
        assert running(worker)
        program.send_signal(signal.SIGKILL)
        program.wait()
        end = time.monotonic() + 5
        while running(worker) and time.monotonic() < end:
            time.sleep(0.05)
        assert not running(worker)
    finally:
        program.kill()
        program.wait()


SERVER_HELD_IN_ITS_IMPORTS = """
import time
import scai.worker_start as worker_start
worker_start.WORKER_MODULES = ("slow_module",)
worker_start.start_worker_server(arviz=False)
time.sleep(60)
"""

# Imported by the server after scai.worker_start_server, in torch's place: it says it has begun,
# then takes a minute, in a call a signal interrupts (torch's imports spend up to ~0.3 s at a
# time in C calls, measured with three busy loops on two cores, which Python's handlers wait
# for: a deadline on them fails by chance on a loaded machine).
SLOW_MODULE = """
import pathlib, time
pathlib.Path(__file__).with_name("began").touch()
time.sleep(60)
"""


def _server_of(program: int) -> int | None:
    """The worker server that ``program`` started, once it exists."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if parent == program and b"multiprocessing.forkserver" in command:
                return int(entry.name)
    return None


def _catches_hangup(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    return False


def _wait(condition, seconds: float):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {seconds} s")


SERVER_THEN_POOL = """
import os, sys
from scai.worker_start import start_worker_server
from scai.inference.workers import worker_pool
start_worker_server(arviz=False)
sys.stdin.readline()  # the test sends Ctrl-C to the server meanwhile
print(worker_pool(1).submit(os.getpid).result() > 0, flush=True)
"""


@linux
def test_a_ctrl_c_while_the_server_imports_does_not_kill_it():
    """A terminal's Ctrl-C reaches the server too: while it imported, it died of it with a
    traceback and the program reported the broken pool as an internal error. It ignores
    Ctrl-C from its first module on, and serves workers after one."""
    program = subprocess.Popen(
        [sys.executable, "-c", SERVER_THEN_POOL],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server = _wait(lambda: _server_of(program.pid), 30)
        _wait(lambda: running(server) and _catches_hangup(server), 30)  # importing by now
        os.kill(server, signal.SIGINT)
        out, err = program.communicate("go\n", timeout=120)
        assert out.strip() == "True" and "KeyboardInterrupt" not in err, err
    finally:
        program.kill()
        program.wait()


@linux
def test_the_server_ends_with_a_program_killed_while_it_imports(tmp_path):
    # Killed while the server imports the workers' modules, the program leaves no server
    # importing on for the rest of them (a minute here): it is gone within seconds.
    (tmp_path / "slow_module.py").write_text(SLOW_MODULE)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    program = subprocess.Popen(
        [sys.executable, "-c", SERVER_HELD_IN_ITS_IMPORTS],
        env={**os.environ, "PYTHONPATH": path},  # the server's path (it is exec'd afresh)
    )
    server = None
    try:
        server = _wait(lambda: _server_of(program.pid), 30)
        _wait(lambda: (tmp_path / "began").exists(), 30)
        program.kill()
        program.wait()
        _wait(lambda: not running(server), 5.0)
    finally:
        program.kill()
        program.wait()
        if server and running(server):
            os.kill(server, signal.SIGKILL)  # so a failure leaves no server behind


def test_the_server_starts_before_the_program_imports_torch():
    # `scai run` starts the server first so that it imports the workers' modules while the
    # program imports its own: reaching the function must not import torch (~2.3 s).
    code = (
        "import sys; import scai.experiments.cli; from scai.worker_start import "
        "start_worker_server; print(sorted(m for m in ('torch', 'pandas', 'pyro') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "needed"),
    [
        ("run all --out x --workers 2", False),
        ("--debug run inconsistency --engine exact --out run", False),
        ("run generalization --engine=exact", False),
        ("run all --engine mcmc", True),
        ("run generalization --engine=svi", True),
        ("run everything", True),
        ("run human-data", True),
        ("run original-logs", True),
        ("run --out x all", True),  # in doubt (the experiment not right after run): imported
    ],
)
def test_the_server_imports_arviz_unless_the_workers_fit_by_the_exact_engine_alone(argv, needed):
    # The study's experiments by the exact engine never import ArviZ in a worker (posterior
    # files are written by h5netcdf), so the server spares its imports; every other run may
    # (diagnostics), and then only the server may import it (its daily stamp: above).
    from scai.experiments.cli import _workers_need_arviz

    assert _workers_need_arviz(argv.split()) is needed


WARNING_IN_A_WORKER = """
import warnings
from scai.inference.workers import worker_pool

if __name__ == "__main__":
    text = "a grid too coarse\\n  for this posterior"
    worker_pool(1).submit(warnings.warn, text, UserWarning).result()
"""


def test_a_workers_warning_is_one_line():
    """A warning in a worker (a sweep cell's DiagnosticWarning) printed Python's form, the
    path and source line of the warn call inside scai: one line now, category and message."""
    done = subprocess.run(
        [sys.executable, "-c", WARNING_IN_A_WORKER], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "grid" in line or "posterior" in line]
    assert lines == ["scai: warning: UserWarning: a grid too coarse for this posterior"], lines


BARS_THEN_CTRL_C = """
from scai.inference.workers import stop_workers, worker_pool

def make_a_bar(_):
    from scai.inference.progress import progress_bar

    bar = progress_bar(10, "chain", disable=True)
    bar.close()
    return type(bar.get_lock()).__name__

if __name__ == "__main__":
    print(sorted(set(worker_pool(2).map(make_a_bar, range(4)))))
    stop_workers()  # what Ctrl-C does: the workers are killed
"""


def test_workers_killed_after_drawing_bars_leave_no_semaphore(tmp_path):
    """tqdm made each worker's bar lock a named semaphore, which a worker killed on Ctrl-C
    left behind: Python's resource tracker warned of "leaked semaphore objects" at the exit
    of every interrupted human-data run. A worker's bars now take a thread lock."""
    (script := tmp_path / "bars.py").write_text(BARS_THEN_CTRL_C)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['RLock']"]  # tqdm's default: TqdmDefaultWriteLock
    assert "leaked" not in done.stderr, done.stderr


POOL_GARBAGE_COLLECTION = """
import gc
from scai.worker_start import start_worker_server
from scai.inference.workers import worker_pool
start_worker_server(arviz=False)
pool = worker_pool(1)
print(pool.submit(gc.isenabled).result(), pool.submit(gc.get_freeze_count).result())
"""


@linux
def test_workers_collect_garbage_but_never_walk_the_server_s_imports():
    """The server imports without cyclic garbage collection and freezes what it imported: a
    worker collects (gc on) but its collections skip the inherited modules' objects (hundreds
    of thousands: torch, pandas, scai), which they walked, copying their pages, before."""
    done = subprocess.run(
        [sys.executable, "-c", POOL_GARBAGE_COLLECTION], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    enabled, frozen = done.stdout.split()
    assert enabled == "True"
    assert int(frozen) > 100_000
