"""Concurrent runs (issue 13): a second ``scai run`` into the same ``--out`` is refused, with
one line naming the lock file and the first run's pid and start time, while the first holds
the lock; ``--wait`` waits for it instead; a killed run leaves no stale lock (the kernel
releases an ``flock`` with its holder); a lock file that is a link is refused, not followed.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from leftovers import age, dead_pid
from runs import LONG_RUN, kill_leftovers, scai_run, start_run, wait_for
from timelimit import time_limit

from scai.experiments.locking import LOCK_NAME, FolderInUse, locked

START_SECONDS = 60.0


def test_a_second_run_into_the_same_out_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    out = tmp_path / "out"
    process = start_run(out, workers=1, command=LONG_RUN)  # seconds of work: time to be refused
    lock = out / LOCK_NAME
    try:

        def holder() -> dict | None:
            try:
                note = json.loads(lock.read_text())
            except (OSError, ValueError):
                return None
            return note if note.get("pid") == process.pid else None

        note = wait_for(holder, START_SECONDS, "lock held by the first run", process)
        code, err = scai_run(out)
        assert code == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"scai run: error: --out {out}: in use by another scai process")
        for part in (f"pid {process.pid}", f"started {note['started']}", str(lock), "--wait"):
            assert part in err, (part, err)
        assert process.poll() is None  # the first run goes on
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        kill_leftovers([process.pid])
    with time_limit(2.0), locked(out):  # the kernel released the killed run's lock
        pass


def test_wait_waits_for_the_other_run(tmp_path):
    """``--wait``: the lock is taken once its holder ends (here a process that holds it 1.5 s)."""
    hold = """if True:
        import fcntl, json, os, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        note = {"pid": os.getpid(), "started": "now", "command": "holder"}
        os.write(fd, json.dumps(note).encode())
        print("held", flush=True)
        time.sleep(1.5)
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path / LOCK_NAME)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        refused = f"pid {holder.pid}, started now: holder"
        with pytest.raises(FolderInUse, match=refused), locked(tmp_path):
            pass
        told = []
        start = time.monotonic()
        with time_limit(10.0), locked(tmp_path, wait=True, on_wait=told.append):
            waited = time.monotonic() - start
    finally:
        kill_leftovers([holder.pid])
        holder.wait(5)
    assert 0.5 < waited < 10
    assert len(told) == 1 and f"pid {holder.pid}" in told[0] and "waiting" in told[0]


def test_a_lock_file_that_is_a_link_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("not scai's")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(target)
    code, err = scai_run(out)
    assert code == 2 and "is a symbolic link" in err and str(out / LOCK_NAME) in err, err
    assert target.read_text() == "not scai's"


def test_a_fit_writes_its_pair_of_files_when_the_folder_is_free(tmp_path, capsys):
    """``scai fit`` writes ``posterior.nc`` and ``policy_probs.csv`` under the folder's lock: a
    second writer (here a thread holding it) makes it wait, so two fits into one folder leave
    one fit's pair, not one file of each."""
    import threading

    from scai.experiments.cli import main

    table = tmp_path / "t.csv"
    argv = ["simulate", "--policy", "fair", "--users", "4", "--sims", "1", "--epochs", "1"]
    assert main([*argv, "--out", str(table)]) == 0
    out = tmp_path / "fit"
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with locked(out):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    threading.Timer(1.0, release.set).start()
    capsys.readouterr()
    start = time.monotonic()
    try:
        assert main(["fit", "--data", str(table), "--out", str(out), "--draws", "10"]) == 0
    finally:
        release.set()
        holder.join()
    err = capsys.readouterr().err
    assert f"scai fit: --out {out} is in use by another scai process" in err, err
    assert time.monotonic() - start >= 1.0  # it waited for the release
    assert (out / "posterior.nc").exists() and (out / "policy_probs.csv").exists()


def test_an_interrupted_fit_leaves_one_fits_pair(tmp_path, monkeypatch, capsys):
    """A Ctrl-C while ``scai fit`` writes its table, after its posterior, left the new
    ``posterior.nc`` beside the previous fit's ``policy_probs.csv`` (a review's race): both
    are written aside first and moved in together, so the previous pair stays whole, and no
    temporary file is left."""
    from scai.experiments.cli import main
    from scai.experiments.commands import fit as fit_command

    argv = ["simulate", "--users", "4", "--sims", "1", "--epochs", "1"]
    for name, policy in (("a.csv", "fair"), ("b.csv", "selfish")):
        assert main([*argv, "--policy", policy, "--out", str(tmp_path / name)]) == 0
    out = tmp_path / "fit"
    assert main(["fit", "--data", str(tmp_path / "a.csv"), "--out", str(out), "--draws", "10"]) == 0
    pair = ("posterior.nc", "policy_probs.csv")
    before = {name: (out / name).read_bytes() for name in pair}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_command, "write_csv_atomic", interrupted)
    code = main(["fit", "--data", str(tmp_path / "b.csv"), "--out", str(out), "--draws", "10"])
    assert code == 130
    assert {name: (out / name).read_bytes() for name in pair} == before
    assert sorted(p.name for p in out.iterdir()) == sorted([*pair, LOCK_NAME])  # nothing aside


def test_an_interrupted_simulate_leaves_one_runs_table_and_users(tmp_path, monkeypatch):
    """``scai simulate`` wrote its interactions, then its users: a Ctrl-C between them left
    the new interactions beside the previous run's users (a red-team: a ground truth that no
    longer matches its data). Both are written aside and moved in together."""
    from scai.experiments.cli import main
    from scai.experiments.commands import data as data_command

    out = tmp_path / "a.csv"
    argv = ["simulate", "--users", "4", "--sims", "1", "--epochs", "1", "--out", str(out)]
    assert main([*argv, "--policy", "fair", "--seed", "1"]) == 0
    pair = (out, tmp_path / "a.users.csv", tmp_path / "a.parameters.csv")
    before = {path: path.read_bytes() for path in pair}
    real = data_command.write_csv_atomic

    def interrupted_at_the_users(df, path, *args, **kwargs):
        if Path(path).name.endswith(".users.csv"):  # after the interactions
            raise KeyboardInterrupt
        real(df, path, *args, **kwargs)

    monkeypatch.setattr(data_command, "write_csv_atomic", interrupted_at_the_users)
    assert main([*argv, "--policy", "selfish", "--seed", "2"]) == 130
    assert {path: path.read_bytes() for path in pair} == before
    # none aside
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in sorted(pair)]


def test_merging_into_figures_waits_for_another_run_and_not_for_its_own_out(tmp_path, capsys):
    """Two runs into other ``--out`` folders but one ``--figures`` each read, changed and
    wrote ``numbers.json``: one's numbers could be lost (a red-team). The merge holds the
    figures folder, waiting for another holder; a ``--figures`` that is the run's own ``--out``
    (held already) is not waited for."""
    import threading

    from scai.experiments.commands.run import merging

    figures, out = tmp_path / "figures", tmp_path / "out"
    held, release = threading.Event(), threading.Event()

    def another_run() -> None:
        with locked(figures, what="--figures"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=another_run)
    holder.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    start = time.monotonic()
    with merging(figures, out):
        waited = time.monotonic() - start
    holder.join()
    assert waited >= 0.9
    assert "--figures" in capsys.readouterr().err
    with locked(out), merging(out, out):  # its own --out: no deadlock
        pass


def test_two_runs_whose_figures_are_each_others_out_do_not_wait_for_each_other(tmp_path):
    """``--out A --figures B`` beside ``--out B --figures A``: each held its --out and, at the
    merge, waited for the other's, forever (a red-team find). The run that would wait for a
    holder that will wait for it is refused instead, naming both folders."""
    import threading

    from scai.experiments.commands.run import merging

    a, b = tmp_path / "a", tmp_path / "b"
    held, release = threading.Event(), threading.Event()

    def the_other_run() -> None:  # --out b --figures a, computing
        with locked(b, merges_into=a):
            held.set()
            release.wait(10)

    other = threading.Thread(target=the_other_run)
    other.start()
    try:
        held.wait(10)
        refusal = pytest.raises(FolderInUse, match="each would wait for the other")
        with time_limit(5.0), locked(a, merges_into=b), refusal as refused, merging(b, a):
            pass
        assert f"--figures {b}" in str(refused.value) and str(a) in str(refused.value)
    finally:
        release.set()
        other.join()
    with time_limit(5.0), locked(a, merges_into=b), merging(b, a):  # the other ended: merges
        pass


def test_files_written_together_keep_long_names_and_their_formats(tmp_path):
    """The hidden name of a file written aside added 19 characters to the final one: a name
    of 240 characters, which worked before, failed as too long, and the clean-up's own error
    hid the first (a review). It is short now, and keeps the suffixes the format is read
    from; two files of one suffix in one folder are kept apart."""
    import gzip

    from scai.models.writing import write_together

    long = tmp_path / ("x" * 236 + ".csv")
    packed = tmp_path / "t.csv.gz"
    other = tmp_path / "u.csv"
    seen = {}

    def writer(text: str):
        def write(path: Path) -> None:
            seen[text] = path.name
            if path.name.endswith(".gz"):
                with gzip.open(path, "wt") as f:
                    f.write(text)
            else:
                path.write_text(text)

        return write

    write_together({long: writer("long"), packed: writer("packed"), other: writer("other")})
    assert long.read_text() == "long" and other.read_text() == "other"
    assert gzip.decompress(packed.read_bytes()) == b"packed" and seen["packed"].endswith(".csv.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([long.name, packed.name, "u.csv"])


@pytest.mark.parametrize("unlinkable", [(), ("a.users.csv",), ("a.csv", "a.users.csv")])
def test_files_written_together_stay_as_they_were_if_one_cannot_be_replaced(
    tmp_path, monkeypatch, unlinkable
):
    """A table, its users and a new report written together, where the users' file cannot be
    replaced (a review made it immutable; or another user's in a folder with the sticky bit):
    the error names it, and the previous table and users stay, the new report is not left
    beside them (the table was replaced: a new table beside the previous run's users). The
    previous files are kept by hard links, or moved aside where they cannot be linked (Linux
    refuses a link to an immutable file; some file systems have none: ``unlinkable``, where
    a later review found two such files left mixed)."""
    import scai.models.writing as writing

    table, users, report = tmp_path / "a.csv", tmp_path / "a.users.csv", tmp_path / "a.md"
    table.write_text("old table")
    users.write_text("old users")
    replace, link = os.replace, os.link

    def replace_but_users(src, dst):
        new = Path(src).name.startswith(".scai-") and not Path(src).name.endswith(".old")
        if Path(dst) == users and new:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(dst))
        replace(src, dst)

    def link_but(src, dst, **kwargs):
        if Path(src).name in unlinkable:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(src))
        link(src, dst, **kwargs)

    monkeypatch.setattr(writing.os, "replace", replace_but_users)
    monkeypatch.setattr(writing.os, "link", link_but)
    writes = {
        p: (lambda text: lambda path: Path(path).write_text(text))(f"new {p.stem}")
        for p in (table, users, report)
    }
    with pytest.raises(PermissionError, match="a.users.csv"):
        writing.write_together(writes)
    assert table.read_text() == "old table" and users.read_text() == "old users"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.users.csv"]
    monkeypatch.setattr(writing.os, "replace", replace)
    writing.write_together(writes)  # and where every file can be replaced, every one is
    assert [p.read_text() for p in (table, users, report)] == ["new a", "new a.users", "new a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.md", "a.users.csv"]


def test_another_users_file_in_a_sticky_folder_is_refused_before_any_move(tmp_path, monkeypatch):
    """In a folder with the sticky bit (as /tmp), another user's file can be neither replaced
    nor, once linked, its link removed: a review found the link left behind for good. It is
    refused before anything is linked or moved, naming it; the folder is as it was."""
    import stat

    import scai.models.writing as writing

    table, users = tmp_path / "a.csv", tmp_path / "a.users.csv"
    table.write_text("old table")
    users.write_text("old users")
    tmp_path.chmod(tmp_path.stat().st_mode | stat.S_ISVTX)
    real_lstat, me = os.lstat, 4242
    owner = me + 1  # (the folder's owner is neither: this test's user, root or another)

    class Stat:  # the users' file owned by someone else, the table by this user
        def __init__(self, inner, uid):
            self._inner, self.st_uid = inner, uid

        def __getattr__(self, name):
            return getattr(self._inner, name)

    def lstat(path, *args, **kwargs):
        found = real_lstat(path, *args, **kwargs)
        return (
            Stat(found, owner if Path(path) == users else me)
            if Path(path).parent == tmp_path
            else found
        )

    monkeypatch.setattr(writing.os, "geteuid", lambda: me)
    monkeypatch.setattr(writing.os, "lstat", lstat)
    writes = {p: (lambda path: Path(path).write_text("new")) for p in (table, users)}
    with pytest.raises(PermissionError, match="a.users.csv.*sticky bit|sticky bit.*a.users.csv"):
        writing.write_together(writes)
    assert table.read_text() == "old table" and users.read_text() == "old users"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.users.csv"]


def test_files_written_together_by_a_killed_writer_are_removed_by_the_next(tmp_path):
    """``scai fit`` killed (kill -9) while it wrote its pair left its hidden files (the file
    written aside and that write's own temporary file) under names of a random token, which no
    later write looked for: every killed fit added one to the folder for good (a review)."""
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from scai.models.writing import write_atomic, write_together\n"
        "def write(path):\n"
        "    def die(tmp):\n"
        "        Path(tmp).write_text('half')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    write_atomic(path, die)\n"
        "write_together({Path(sys.argv[1]) / 'posterior.nc': write})\n"
    )
    script_aside = script.replace(  # written aside whole, killed before the move into place
        "    write_atomic(path, die)\n", "    Path(path).write_text('whole')\n"
    ).replace(
        "write_together({Path(sys.argv[1]) / 'posterior.nc': write})\n",
        "import scai.models.data as d\n"
        "def stop(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "d.os.replace = stop\n"
        "write_together({Path(sys.argv[1]) / 'posterior.nc': write})\n",
    )
    for code in (script, script_aside):
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
        assert done.returncode == -signal.SIGKILL
        # it left its hidden file (and removed the one the killed run before it left)
        hidden = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
        assert len(hidden) == 1
        age(hidden[0])  # only then is a dead pid's file abandoned
    from scai.models.writing import write_csv_atomic, write_together

    live = tmp_path / f".scai-{os.getpid()}-000000000000-0.nc"  # a writer still running
    live.write_text("being written")
    # a dead pid's young file: a writer in another PID namespace (a container) or on another
    # host sharing the folder may be writing it: kept until it is an hour old
    young = tmp_path / f".scai-{dead_pid()}-111111111111-0.nc"
    young.write_text("being written elsewhere")
    write_together(
        {
            tmp_path / "policy_probs.csv": lambda path: write_csv_atomic(
                pd.DataFrame({"a": [1]}), path
            )
        }
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, young.name, "policy_probs.csv"]
    )


def test_a_ctrl_c_while_the_copies_aside_are_removed_leaves_none(tmp_path, monkeypatch):
    """A Ctrl-C (or a SIGTERM, forwarded as one) landing while ``write_together`` removed the
    previous files' copies kept aside stopped that loop: the copies stayed in the folder
    beside the new set, hidden (a review: 7 of 7 times with a slow cleanup, 17 MB). The loop
    runs with Ctrl-C held back; the Ctrl-C comes after it."""
    import signal

    from scai.models.writing import write_together

    table, users = tmp_path / "a.csv", tmp_path / "a.users.csv"
    table.write_text("old table")
    users.write_text("old users")
    unlink, sent = Path.unlink, []

    def unlink_then_ctrl_c(self, *args, **kwargs):
        unlink(self, *args, **kwargs)
        if not sent and self.name.startswith(".scai-"):
            sent.append(self.name)
            os.kill(os.getpid(), signal.SIGINT)  # (its handler runs before the next line)

    monkeypatch.setattr(Path, "unlink", unlink_then_ctrl_c)
    writes = {
        p: (lambda text: lambda path: Path(path).write_text(text))(f"new {p.stem}")
        for p in (table, users)
    }
    with pytest.raises(KeyboardInterrupt):
        write_together(writes)
    assert sent, "the cleanup removed nothing"
    assert [p.read_text() for p in (table, users)] == ["new a", "new a.users"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.users.csv"]
