"""Interrupted runs (issue 13): whenever ``scai run`` is killed (SIGKILL, as by the
out-of-memory killer) no process of it is alive 5 s later, so nothing writes after it; Ctrl-C
ends in one line on standard error and exit code 130 with no worker left and no half-written
file; and the run resumed after any of these is byte-identical to an uninterrupted run.

One ``--out`` is interrupted at four moments in turn, each time by a fresh ``scai run`` child
process with two workers (in a session of its own, as a shell's job), of a run with 16 quick
conditions (:data:`runs.LONG_RUN`: the four moments together must leave work for the last one
however fast the machine):

1. SIGKILL while the parent starts, before any worker exists;
2. SIGKILL once both workers are started (forked by the worker server, which imported
   torch & co. for them);
3. SIGKILL once one more condition is cached (the workers are computing and writing);
4. Ctrl-C (SIGINT to the run's process group, what a terminal sends) once both workers are
   started, before the run can end (the last conditions can finish within a second or two
   of the workers' start);

then the run is finished in this process and compared with the reference
(:func:`runs.results`: every file, a posterior file's numbers). Each moment is its trigger
plus a random delay; the seed is printed (pytest shows it when the test fails), and
``SCAI_INTERRUPT_SEED`` repeats a run of the test. One chain of moments, not a test per moment:
each child run costs its start (seconds of imports in three processes on two cores).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runs import (
    LONG_CONDITIONS,
    LONG_RUN,
    _terminal_signals,
    in_session,
    kill_leftovers,
    leftovers,
    reference,
    results,
    running,
    scai_run,
    start_run,
    wait_for,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

START_SECONDS = 90.0  # until a run's workers are busy (imports and spawning included)
GONE_SECONDS = 5.0  # the bound: no process of a killed run alive 5 s after
EXIT_SECONDS = 15.0  # from Ctrl-C to the run's exit


@pytest.fixture(autouse=True)
def python_ctrl_c():
    """Ctrl-C as Python sets it up in a terminal (``KeyboardInterrupt``), whatever this pytest
    inherited: started as a background job of a shell without job control, it inherits SIGINT
    ignored, and the checks below that the handler is restored would see ``SIG_IGN``."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


CONDITIONS = LONG_CONDITIONS
EXPERIMENT = LONG_RUN[1]


def cached(out: Path) -> int:
    return len(list((out / EXPERIMENT / "cache").glob("*.done")))


def workers(process: subprocess.Popen) -> list[int]:
    """The run's workers, once both exist: forked by its worker server (a process of the
    same command line as the server, whose parent is the server), or spawned."""

    def server(pid: int) -> bool:
        return b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()

    def both() -> list[int] | None:
        started = []
        for pid in in_session(process.pid):
            try:
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                spawned = b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
                if spawned or (server(pid) and server(parent)):
                    started.append(pid)
            except (OSError, ValueError):
                continue
        return started if len(started) >= 2 else None

    return wait_for(both, START_SECONDS, "two workers", process)


def all_gone(process: subprocess.Popen, what: str) -> float:
    """Wait until no process of the run's session is alive; the seconds it took."""
    start = time.monotonic()
    wait_for(lambda: not in_session(process.pid), GONE_SECONDS, f"end of every process {what}")
    return time.monotonic() - start


def test_a_run_killed_or_interrupted_at_any_moment_resumes_byte_identically(tmp_path):
    seed = int(os.environ.get("SCAI_INTERRUPT_SEED", random.randrange(2**32)))
    print(f"SCAI_INTERRUPT_SEED={seed}")
    delay = random.Random(seed).uniform
    out = tmp_path / "out"
    started: list[int] = []

    def run() -> subprocess.Popen:
        process = start_run(out, command=LONG_RUN)
        started.append(process.pid)
        return process

    def kill(process: subprocess.Popen, moment: str) -> None:
        alive = in_session(process.pid)
        process.send_signal(signal.SIGKILL)
        gone = all_gone(process, f"after SIGKILL {moment}")
        process.wait(5)
        print(
            f"SIGKILL {moment}: {len(alive)} processes, all gone after {gone:.2f} s; "
            f"{cached(out)} of {CONDITIONS} conditions cached"
        )

    try:
        # 1. While the parent starts: nothing is cached, and no worker is left.
        process = run()
        time.sleep(delay(0.2, 1.0))
        kill(process, "while the parent starts")
        assert cached(out) == 0

        # 2. While the workers start.
        process = run()
        workers(process)
        time.sleep(delay(0.0, 0.3))
        kill(process, "while the workers start")

        # 3. While the workers compute: once one more condition is cached.
        before = cached(out)
        process = run()
        wait_for(lambda: cached(out) > before, START_SECONDS, "a finished condition", process)
        time.sleep(delay(0.0, 0.1))  # a condition takes a fraction of a second: leave work
        kill(process, "while the workers compute")
        assert cached(out) < CONDITIONS, "the run finished before it was killed"

        # 4. Ctrl-C while the run works: within 0.3 s of both workers' spawn; the conditions
        # left take about a second here (the workers are forked ready to compute), so the run
        # is still computing. A run with one condition left would start no pool.
        assert CONDITIONS - cached(out) >= 2, "too little work left for two workers"
        process = run()
        pids = workers(process)
        time.sleep(delay(0.0, 0.3))
        os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        _, err = process.communicate(timeout=EXIT_SECONDS)
        took = time.monotonic() - interrupted
        left = [pid for pid in pids if running(pid)]  # the run ended: its workers too
        all_gone(process, "after Ctrl-C")
        print(f"Ctrl-C: exit {process.returncode} after {took:.2f} s")
    finally:
        for pid in started:  # a failing test leaves nothing running (by id)
            kill_leftovers(in_session(pid))
    assert process.returncode == 130, err
    # A SIGKILL in step 3 between moving a condition's files into place and writing its
    # manifest makes this run warn once that it recomputes that condition (the behaviour the
    # end of this test checks); every other line is the interruption's one line.
    lines = [
        line
        for line in err.strip().splitlines()
        if not (line.startswith("scai run: warning: cache: ") and "has no manifest" in line)
    ]
    assert "Traceback" not in err and len(lines) == 1, err
    line = lines[0]
    cache = out / EXPERIMENT / "cache"
    if "conditions finished" in line and cached(out) < CONDITIONS:  # the usual case
        assert line == (
            f"scai run: interrupted: {cached(out)} of {CONDITIONS} conditions finished (kept in "
            f"{cache}); run the same command again to resume"
        )
    elif "conditions finished" in line:  # in the condition loop, after the last was stored
        assert line == (
            f"scai run: interrupted: all {CONDITIONS} conditions finished (kept in {cache}), not "
            "yet reported; run the same command again to report them"
        )
    else:  # the workers were faster than the delay: interrupted while reporting
        assert line == (
            "scai run: interrupted; run the same command again to resume (finished conditions "
            "are cached)"
        )
    assert left == [], "workers outlived the interrupted run"
    assert leftovers(out) == []  # no half-written file: no temporary or staged file is left

    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*.done")}
    # No stale lock: each killed run's lock ended with it.
    code, err = scai_run(out, command=LONG_RUN)
    assert code == 0, err
    # A SIGKILL between moving a condition's files into place and writing its manifest leaves
    # an unfinished entry, recomputed with a warning; nothing else may be warned about.
    warned = [line for line in err.splitlines() if "warning" in line]
    assert all("has no manifest" in line for line in warned), err
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished ones were reused
    assert cached(out) == CONDITIONS and leftovers(out) == []
    assert results(out) == results(reference(LONG_RUN))


def test_an_error_after_a_held_back_ctrl_c_is_the_interruption():
    """Ctrl-C held back while the pool starts its workers: an error the block then raises (the
    workers or their server got the same Ctrl-C) is reported as the interruption, not as an
    internal error; without a Ctrl-C the error goes through."""
    import os
    import signal

    import pytest

    from scai.inference.workers import ctrl_c_deferred

    with pytest.raises(KeyboardInterrupt), ctrl_c_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        raise EOFError("the server went away")
    with pytest.raises(EOFError), ctrl_c_deferred():
        raise EOFError("the server went away")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_during_the_cleanup_is_ignored():
    """The cleanup after a Ctrl-C (stopping the workers, removing unfinished files) runs with
    Ctrl-C ignored: a second one printed two tracebacks. The handler is back after it."""
    import os
    import signal
    import time

    from scai.worker_start import ignoring_ctrl_c

    with ignoring_ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # a KeyboardInterrupt would be raised here
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


HOLDING = """
import os, signal, subprocess, sys, time
from multiprocessing import resource_tracker
from scai.worker_start import holding_ctrl_c

resource_tracker.ensure_running()  # as the sweep does: its start unblocks SIGINT
inside = False
try:
    with holding_ctrl_c():
        code = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # held: not raised here
        inside = True
    print("not raised")
except KeyboardInterrupt:
    print("raised as the block ended" if inside else "raised inside the block")
print("child blocked:", child.stdout.strip())
print("unblocked after:", signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, []))
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_a_ctrl_c_held_back_is_raised_as_the_block_ends_and_its_processes_never_get_it():
    """A Ctrl-C while a local Dask cluster started was ignored (to keep it from the cluster's
    processes), and the sweep ran to its end (a review helper's repro). ``holding_ctrl_c``
    raises it as its block ends, and a process started in the block has it blocked. (In a
    program of its own: a thread that another test left, SIGINT unblocked, would take it.)"""
    done = subprocess.run(
        [sys.executable, "-c", HOLDING], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        "raised as the block ended",
        "child blocked: True",
        "unblocked after: True",
    ], done.stdout + done.stderr


def test_a_ctrl_c_while_waiting_on_many_futures_leaves_none_of_their_locks_held():
    """``concurrent.futures.wait`` takes each future's lock in turn; a Ctrl-C in that loop left
    some held by this thread, so the pool's thread, setting the next result, waited for ever,
    and so did the pool's shutdown: a 20,000-cell sweep hung, Ctrl-C ignored. Here a thread
    finishes 5,000 futures one by one while this one takes them in turn through ``Finished``
    (waiting with ``wait`` on the rest, as the runner did, hung in 5 of 10 tries); each
    Ctrl-C ends the wait, in the order they finished, and the thread finishes them all."""
    import os
    import signal
    import threading
    import time
    from concurrent.futures import Future

    import pytest

    from scai.inference.workers import Finished, ctrl_c_deferred

    def finish_all(futures: list[Future], interrupted: threading.Event) -> None:
        for future in futures:
            future.set_result(None)
            if not interrupted.is_set():
                time.sleep(1e-4)

    rng = random.Random(0)
    for _ in range(10):
        finishing = Finished()
        futures = [finishing.watch(Future()) for _ in range(5_000)]
        interrupted = threading.Event()
        pool = threading.Thread(target=finish_all, args=(futures, interrupted), daemon=True)
        ctrl_c = threading.Timer(rng.uniform(0.02, 0.1), os.kill, (os.getpid(), signal.SIGINT))
        taken = []
        pool.start()
        ctrl_c.start()
        with pytest.raises(KeyboardInterrupt), ctrl_c_deferred() as check:
            while True:
                taken.append(finishing.next(check))
        interrupted.set()
        ctrl_c.join()
        pool.join(10.0)
        assert not pool.is_alive(), "a future's lock is still held"
        assert taken == futures[: len(taken)]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _quick_jobs(count: int):
    from scai.experiments.conditions import Condition, Settings

    settings = Settings(sims=2, epochs=2, seed=3)
    return [
        (Condition(f"c{i}", "fair", users=3, save_posterior=False), settings) for i in range(count)
    ]


def test_a_worker_killed_while_jobs_wait_to_be_submitted_costs_no_job(tmp_path, monkeypatch):
    """A worker dies (as by the out-of-memory killer) while jobs still wait to be submitted
    (two in flight at a time) and no retries are allowed: its pool's jobs run again (none of
    them was alone in the pool), the others are submitted to a fresh pool, and all finish.
    The run ended with the broken pool's error from the next submission, whenever the pool
    broke between two; then the broken pool's jobs failed."""
    import multiprocessing
    import time

    from scai.experiments import runner

    monkeypatch.setattr(runner, "IN_FLIGHT", 2)
    killed: list[int] = []

    def on_event(kind, indices, error):
        if kind == "done" and not killed:
            worker = multiprocessing.active_children()[0]
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)
            time.sleep(0.1)  # the pool has seen it break before the next job is submitted

    outcome = runner.run_jobs(
        _quick_jobs(8), tmp_path, workers=2, progress=False, keep_going=True, on_event=on_event
    )
    assert killed and outcome.errors == {}
    assert all(result is not None for result in outcome.results)
    assert len(list(tmp_path.glob("*.done"))) == 8


def test_ctrl_c_reaches_a_report_run_between_jobs(tmp_path):
    """``scai run all`` reports an experiment from ``on_event`` while the pool computes the
    others' conditions: a Ctrl-C during that report ends it at once (it was held back until
    the report was over)."""
    import time

    from scai.experiments import runner

    slept: list[float] = []

    def report(kind, indices, error):
        if kind == "done" and not slept:
            start = time.monotonic()
            try:
                os.kill(os.getpid(), signal.SIGINT)
                while time.monotonic() - start < 10:
                    time.sleep(0.01)
            finally:
                slept.append(time.monotonic() - start)

    with pytest.raises(runner.Interrupted):
        runner.run_jobs(_quick_jobs(6), tmp_path, workers=2, progress=False, on_event=report)
    assert slept and slept[0] < 2.0


def test_a_released_block_closed_after_its_ctrl_c_leaves_ctrl_c_working():
    """A Ctrl-C raised as a released block begins its exit leaves the block suspended; closed
    later (when the exception is dropped), it put the holding handler back for good, and every
    later Ctrl-C was noted and never raised."""
    from scai.inference.workers import ctrl_c_deferred

    with pytest.raises(KeyboardInterrupt), ctrl_c_deferred() as check:
        block = check.released()
        block.__enter__()
        raise KeyboardInterrupt  # where the block's exit would begin
    block.gen.close()  # the suspended block, closed once dropped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_program_started_with_ctrl_c_ignored_keeps_ignoring_it_while_work_is_held():
    """Started with Ctrl-C ignored (a shell's ``cmd &``), scai's CLI keeps ignoring it, but
    the deferring block put a handler of its own in: a sweep then ignored Ctrl-C while it set
    up and obeyed it while it computed (a review's find). Now the block leaves it ignored."""
    from scai.inference.workers import ctrl_c_deferred

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_deferred() as check:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            with check.released():
                assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            check()  # nothing held: nothing raised
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_pool_that_breaks_again_and_again_stops_the_run(tmp_path, monkeypatch):
    """Workers that cannot start break every pool at once: the run stops after POOL_BREAKS
    fresh pools in a row with none of their jobs finished, with one line saying so, instead of
    making a pool for every job."""
    from concurrent.futures import BrokenExecutor, Executor, Future

    from scai.experiments import runner

    class BrokenPool(Executor):
        """A process pool whose workers die at their start: its first job fails, and then
        the pool refuses any other (as ProcessPoolExecutor does once broken)."""

        broken = False

        def submit(self, fn, /, *args, **kwargs):
            if self.broken:
                raise BrokenExecutor("the pool is not usable anymore")
            self.broken = True
            future = Future()
            future.set_exception(BrokenExecutor("a worker died at its start"))
            return future

    pools: list[BrokenPool] = []
    monkeypatch.setattr(runner, "worker_pool", lambda n: pools.append(BrokenPool()) or pools[-1])
    monkeypatch.setattr(runner, "stop_workers", lambda: None)
    with pytest.raises(RuntimeError, match="broke 4 times in a row with no condition finished"):
        runner.run_jobs(_quick_jobs(12), tmp_path, workers=2, progress=False, keep_going=True)
    assert len(pools) == runner.POOL_BREAKS + 1


class _KillerPool:
    """A process pool of ``workers`` workers (threads) in which a job of a condition in
    ``killers`` kills its worker once it began (as an out-of-memory cell would): the pool then
    fails every job it holds, queued or running, and refuses new ones (as ProcessPoolExecutor
    does). ``most_queued``: the most jobs it held at once; ``held``: every set of jobs it held
    at once. A worker takes a job only once no job has been submitted for ``QUIET`` seconds:
    the jobs a run submits together are all queued before one runs, however loaded the
    machine (a test on what a broken pool held depends on it)."""

    QUIET = 0.2

    def __init__(self, killers=("c1",), workers: int = 1) -> None:
        import threading

        self.killers = set(killers)
        self.jobs: list = []
        self.running: list = []
        self.broken = False
        self.most_queued = 0
        self.held: list[set[str]] = []
        self.last_submit = 0.0
        self.lock = threading.Lock()
        for _ in range(workers):
            threading.Thread(target=self.work, daemon=True).start()

    def submit(self, fn, /, *args, **kwargs):
        import time
        from concurrent.futures import BrokenExecutor, Future

        with self.lock:
            if self.broken:
                raise BrokenExecutor("the pool is not usable anymore")
            future = Future()
            self.jobs.append((future, args))
            self.most_queued = max(self.most_queued, len(self.jobs) + len(self.running))
            names = [a[0].condition.name for _, a in [*self.jobs, *self.running]]
            self.held.append(set(names))
            self.last_submit = time.monotonic()
            return future

    def work(self) -> None:
        import time
        from concurrent.futures import BrokenExecutor

        from scai.experiments import runner

        while True:
            time.sleep(0.01)  # jobs queue up meanwhile, as behind busy workers
            with self.lock:
                if self.broken:
                    return
                if not self.jobs or time.monotonic() - self.last_submit < self.QUIET:
                    continue
                job = self.jobs.pop(0)
                future, (entry, settings, folder) = job
                (folder / runner.STARTED).touch()  # as the job begins in _compute
                if entry.condition.name in self.killers:
                    self.broken = True
                    for other, _ in [job, *self.running, *self.jobs]:
                        if not other.done():
                            other.set_exception(BrokenExecutor("a worker died"))
                    return
                self.running.append(job)
            runner._compute(entry, settings, folder)
            with self.lock:
                if job in self.running:
                    self.running.remove(job)
                if not future.done():  # not failed meanwhile by a dying worker
                    future.set_result(None)


def _run_beside_killers(tmp_path, monkeypatch, jobs: int, killers=("c1",), workers=1, retries=1):
    """``run_jobs`` of ``jobs`` quick jobs on :class:`_KillerPool` s, ``keep_going``: the
    outcome, the events told and the pools made."""
    from scai.experiments import runner

    pools: list[_KillerPool] = []

    def make(n: int) -> _KillerPool:
        pools.append(_KillerPool(killers, workers))
        return pools[-1]

    monkeypatch.setattr(runner, "worker_pool", make)
    monkeypatch.setattr(runner, "stop_workers", lambda: None)
    events = []
    outcome = runner.run_jobs(
        _quick_jobs(jobs),
        tmp_path,
        workers=2,  # a pool (the fake's own threads: `workers`)
        progress=False,
        retries=retries,
        keep_going=True,
        on_event=lambda kind, at, error: events.append((kind, at)),
    )
    return outcome, events, pools


def test_a_job_that_kills_its_worker_fails_alone(tmp_path, monkeypatch):
    """One job kills its worker whenever it runs: each time, its pool fails every job it
    held. A job is blamed only for a pool it broke running alone, so the killer fails (after
    its retry) and every other job finishes; before, the jobs queued beside it failed with
    it."""
    from scai.experiments.runner import WORKER_DIED

    outcome, events, pools = _run_beside_killers(tmp_path, monkeypatch, 8)
    assert list(outcome.errors) == [1] and outcome.errors[1] == WORKER_DIED
    assert [event for event in events if event[0] != "done"] == [("retry", [1]), ("failed", [1])]
    assert len(list(tmp_path.glob("*.done"))) == 7 and len(pools) >= 3


def test_jobs_that_had_not_begun_when_a_pool_broke_are_not_suspects(tmp_path, monkeypatch):
    """Only a job that began can have killed its worker: the killer runs alone, and the jobs
    still queued in the broken pool go back together. Before, every job of a broken pool was
    a suspect run one at a time: no later pool held more than one."""
    outcome, _, pools = _run_beside_killers(tmp_path, monkeypatch, 12)
    assert list(outcome.errors) == [1]
    assert len(list(tmp_path.glob("*.done"))) == 11
    assert max(pool.most_queued for pool in pools[1:]) >= 10  # the 10 jobs queued behind c1
    for pool in pools[1:]:  # the killer, run again, always alone
        assert all(held == {"c1"} for held in pool.held if "c1" in held), pool.held


def test_two_killers_beside_innocents_fail_and_only_they(tmp_path, monkeypatch):
    """Two jobs that kill their worker among others, two workers, no retry: each killer fails
    once it broke a pool running alone, every other job finishes, and the run goes on (a job
    resubmitted beside a lone suspect could break the pool in its name: the innocent suspect
    was charged, and four such breaks stopped a keep_going run with 'the worker pool broke 4
    times in a row')."""
    outcome, events, _ = _run_beside_killers(
        tmp_path, monkeypatch, 10, killers=("c1", "c2"), workers=2, retries=0
    )
    assert sorted(outcome.errors) == [1, 2]
    assert len(list(tmp_path.glob("*.done"))) == 8
    assert sorted(at[0] for kind, at in events if kind == "failed") == [1, 2]


def test_a_stored_result_that_cannot_be_read_back_fails_its_job_not_the_sweep(tmp_path):
    """With ``keep_going`` (a sweep), a job whose result was stored but cannot be read back
    (a disk error, a file changed under the run) is one failed job; it stopped the whole run.
    Without ``keep_going`` the error still ends the run."""
    from scai.experiments import runner

    def load(cond, entry):
        if cond.name == "c1":
            raise ValueError("simulated unreadable file")
        return runner.load_result(cond, entry)

    outcome = runner.run_jobs(
        _quick_jobs(3), tmp_path / "a", workers=1, progress=False, keep_going=True, load=load
    )
    assert list(outcome.errors) == [1]
    assert "reading it back failed" in outcome.errors[1] and "unreadable" in outcome.errors[1]
    assert outcome.results[1] is None
    assert outcome.results[0] is not None and outcome.results[2] is not None
    with pytest.raises(ValueError, match="simulated unreadable file"):
        runner.run_jobs(_quick_jobs(3), tmp_path / "b", workers=1, progress=False, load=load)


def _when_finished_meanwhile(folder: Path, count: int, timeout: float = 60.0) -> None:
    """Wait until ``count`` jobs have written their two required tables into the staging
    folder, and a moment more for their last files and their futures."""
    from scai.experiments.cache import REQUIRED, STAGING

    def written(job: Path) -> bool:
        return all(list(job.glob(f"*.{kind}")) for kind in REQUIRED)

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        staged = [job for job in (folder / STAGING).glob("*") if written(job)]
        if len(staged) >= count:
            time.sleep(1.0)  # the last of their files, and the futures, are done
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} jobs did not finish within {timeout} s")


@pytest.mark.parametrize("stop", ["ctrl_c", "error"])
def test_jobs_finished_while_a_report_ran_are_kept_when_it_is_interrupted(tmp_path, stop):
    """``scai run all`` draws an experiment's report from ``on_event`` while the workers go on;
    a Ctrl-C or an error during that report discarded every condition finished meanwhile (a
    red-team: 30 finished conditions lost). They are now stored: a rerun computes nothing."""
    from scai.experiments import runner

    jobs = _quick_jobs(6)

    def report(kind, indices, error):
        if kind == "done":
            _when_finished_meanwhile(tmp_path, 5)
            if stop == "ctrl_c":
                raise KeyboardInterrupt
            raise RuntimeError("a report that fails")

    with pytest.raises(runner.Interrupted if stop == "ctrl_c" else RuntimeError):
        runner.run_jobs(jobs, tmp_path, workers=2, progress=False, on_event=report)
    assert len(list(tmp_path.glob("*.done"))) == 6
    assert runner.run_jobs(jobs, tmp_path, workers=2, progress=False).cached == 6


def test_sigterm_stops_a_run_as_ctrl_c_does_and_it_resumes(tmp_path):
    """SIGTERM to the run's whole process group (a cluster's scheduler at a job's time limit)
    ended the program at once: exit 143, no word, the conditions finished but not stored
    lost, the staging folder left (a red-team). It is now Ctrl-C's tidy stop: exit 130, one
    line saying how to resume, nothing half-written, and the rerun's results are an
    uninterrupted run's."""
    out = tmp_path / "out"
    process = start_run(out, command=LONG_RUN)
    try:
        wait_for(lambda: cached(out) > 0, START_SECONDS, "a finished condition", process)
        os.killpg(process.pid, signal.SIGTERM)
        _, err = process.communicate(timeout=EXIT_SECONDS)
        all_gone(process, "after SIGTERM")
    finally:
        kill_leftovers(in_session(process.pid))
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "resume" in lines[0], err
    assert leftovers(out) == []
    code, err = scai_run(out, command=LONG_RUN)
    assert code == 0, err
    assert results(out) == results(reference(LONG_RUN))


def test_sigterm_while_ctrl_c_is_ignored_for_a_moment_ends_the_program():
    """SIGTERM is forwarded as Ctrl-C; where Ctrl-C is ignored for the moment (a local Dask
    cluster starting), it was lost and the program ran on (a review): it ends it, as before."""
    code = (
        "import os, signal, time\n"
        "from scai.experiments import cli\n"
        "cli._terminate_as_ctrl_c()\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(5)\n"
        "print('ran on')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_terminal_signals,
    )
    assert done.returncode == -signal.SIGTERM and "ran on" not in done.stdout, done


def test_a_dead_worker_reads_the_same_on_every_backend():
    """A cell whose worker died was 'BrokenProcessPool: ...' locally and Dask's 'KilledWorker:
    ...' with a random task id and worker address, so the same failure never gave the same
    sweep.csv bytes; both are WORKER_DIED now, and other errors keep their own text."""
    from concurrent.futures.process import BrokenProcessPool

    from scai.experiments.runner import WORKER_DIED, _failure_text

    class KilledWorker(Exception):  # distributed's, by name (not imported without Dask)
        pass

    attempt = "Attempted to run task ('cell-3f2a') on 4 different workers, tcp://10.0.0.5:41"
    assert _failure_text(BrokenProcessPool("a child process terminated")) == WORKER_DIED
    assert _failure_text(KilledWorker(attempt)) == WORKER_DIED
    assert _failure_text(ValueError("boom")) == "ValueError: boom"
    started = BrokenProcessPool("A process in the initializer failed")  # not a death: its own
    assert _failure_text(started) == "BrokenProcessPool: A process in the initializer failed"


def test_the_resume_hint_promises_a_cache_only_where_one_is_kept():
    """Ctrl-C outside the condition loop said "finished conditions are cached" whatever was
    run: ``scai run human-data`` keeps none (its re-run redoes every chain). The hint names
    what the same command redoes."""
    from scai.experiments.cli import _resume_hint

    assert _resume_hint("all").endswith("(finished conditions are cached)")
    assert _resume_hint("alignment").endswith("(finished conditions are cached)")
    assert _resume_hint("human-data") == (
        "; nothing of human-data is cached: the same command starts afresh"
    )
    # original-logs keeps each finished fit (it said it kept none: a review)
    assert _resume_hint("original-logs") == (
        "; run the same command again to resume (finished fits are cached)"
    )
    assert _resume_hint("everything") == (
        "; run the same command again to resume (alignment, generalization, inconsistency: "
        "finished conditions are cached; original-logs: finished fits are cached; human-data: "
        "start afresh)"
    )


def test_an_experiment_s_numbers_are_recorded_as_soon_as_it_reports(tmp_path, monkeypatch):
    """``scai run all`` reports an experiment while the others' conditions are computed, but
    recorded its numbers (and comparison rows) only at the run's end: a Ctrl-C in between left
    the new seed's figures beside the numbers of the run before (a review). Interrupted in the
    last experiment's report, the experiments reported before it have their new numbers."""
    import json

    from scai.experiments import registry
    from scai.experiments.cli import main

    out = tmp_path / "out"
    argv = ["run", "all", "--quick", "--workers", "1", "--out", str(out)]
    assert main(argv) == 0
    before = json.loads((out / "figures" / "numbers.json").read_text())
    compared = (out / "figures" / "comparison.md").read_text()
    last = registry.load("inconsistency")
    report = last.main

    def interrupted(args, **kwargs):
        report(args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # as the report ends: its own numbers are lost
        time.sleep(5)

    monkeypatch.setattr(last, "main", interrupted)
    assert main([*argv, "--seed", "7"]) == 130
    after = json.loads((out / "figures" / "numbers.json").read_text())
    assert after["inconsistency"] == before["inconsistency"]  # (the window left)
    for name in ("alignment", "generalization"):
        assert after[name] != before[name], name
    comparison = (out / "figures" / "comparison.md").read_text()
    assert comparison != compared and comparison == (out / "comparison.md").read_text()


def test_an_interruption_after_every_condition_was_stored_says_what_is_left():
    """A Ctrl-C between the last condition stored and the report said "8 of 8 conditions
    finished ...; run the same command again to resume": nothing is left to compute, only to
    report."""
    from scai.experiments.runner import Interrupted

    assert str(Interrupted(3, 8, Path("c"))) == (
        "interrupted: 3 of 8 conditions finished (kept in c); run the same command again to resume"
    )
    assert str(Interrupted(8, 8, Path("c"))) == (
        "interrupted: all 8 conditions finished (kept in c), not yet reported; run the same "
        "command again to report them"
    )
