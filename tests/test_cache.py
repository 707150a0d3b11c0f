"""A cache that cannot lie (issue 13): every cached condition carries a manifest of its files'
checksums, written last, and a key that includes the code's version; an entry that is damaged
(a truncated or changed file, a missing one, an unreadable manifest), unfinished or made by
other code is recomputed with a one-line warning naming the file, never reused.

The command-line test damages each kind of cached file of a finished ``scai run`` (one kind per
condition), reruns it, and checks the warnings and that its results are byte-identical to an
undamaged run's. The API tests cover the rest on one small condition.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from runs import CONDITIONS, leftovers, reference, results, scai_run
from timelimit import time_limit

from scai.experiments import cache as cache_module
from scai.experiments.cache import CacheWarning, source_digest
from scai.experiments.conditions import Condition, Settings
from scai.experiments.locking import FolderInUse, locked
from scai.experiments.runner import run_conditions

SECONDS = 60.0


def manifests(folder: Path) -> dict[str, dict]:
    """Each cached condition's manifest, by condition name."""
    found = {}
    for done in sorted(folder.glob("*.done")):
        manifest = json.loads(done.read_text())
        found[manifest["condition"]["name"]] = manifest
    return found


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path: Path) -> None:
    """Same size, one digit changed: only the checksum can tell."""
    data = bytearray(path.read_bytes())
    at = max(i for i, b in enumerate(data) if chr(b).isdigit() and chr(b) != "9")
    data[at] += 1
    path.write_bytes(bytes(data))


#: condition: (the damage, the file it is done to, what the warning says); only "mixed 80/20"
#: keeps its posterior (the .nc file)
DAMAGE = {
    "selfish": (truncate, "per_sim.csv", "is damaged"),
    "fair": (truncate, "interactions.csv", "is damaged"),
    "altruistic": (flip_a_byte, "interactions.csv", "its SHA-256 is not the manifest's"),
    "mixed 80/20": (Path.unlink, "nc", "is missing"),
    "mixed 50/50": (flip_a_byte, "per_sim.csv", "its SHA-256 is not the manifest's"),
    "mixed 20/80": (truncate, "done", "is unreadable"),
}


def test_each_damaged_cache_file_is_recomputed_with_a_warning(tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference(), out)
    folder = out / "alignment" / "cache"
    entries = manifests(folder)
    assert set(entries) == set(DAMAGE) and len(entries) == CONDITIONS
    damaged = {}
    for name, (damage, kind, _) in DAMAGE.items():
        damaged[name] = folder / f"{entries[name]['key']}.{kind}"
        damage(damaged[name])
    code, err = scai_run(out)
    assert code == 0, err
    warned = [line for line in err.splitlines() if "warning" in line]
    assert len(warned) == len(DAMAGE), err
    for name, (_, _, what) in DAMAGE.items():
        line = next(w for w in warned if f"condition {name!r}" in w)
        assert line.startswith("scai run: warning: cache: ") and str(damaged[name]) in line
        assert what in line and line.endswith(f"recomputing condition {name!r}"), line
    assert results(out) == results(reference())
    again = manifests(folder)
    for name, manifest in entries.items():  # the same tables again (a posterior file records
        assert set(again[name]["files"]) == set(manifest["files"])  # when it was written)
        for file, recorded in manifest["files"].items():
            if file.endswith(".csv"):
                assert again[name]["files"][file] == recorded, (name, file)


# -- the API, on one small condition --------------------------------------------------------

CONDITION = Condition("tiny", "selfish", users=3, save_posterior=False)  # the .nc: see above
SETTINGS = Settings(sims=1, epochs=1, seed=4)


def run(folder: Path) -> tuple[pd.DataFrame, list[str]]:
    with time_limit(SECONDS), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CacheWarning)
        result = run_conditions([CONDITION], SETTINGS, folder, workers=1, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    return result["tiny"].per_sim, messages


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("first") / "cache"
    per_sim, messages = run(folder)
    assert messages == []
    return folder, per_sim


@pytest.fixture
def cached(first_run, tmp_path):
    """A copy of a cache holding one intact entry: its folder, manifest and results."""
    folder = shutil.copytree(first_run[0], tmp_path / "cache")
    (done,) = folder.glob("*.done")
    return folder, done, first_run[1]


def test_an_intact_entry_is_reused(cached):
    folder, done, per_sim = cached
    stamp = done.stat().st_mtime_ns
    again, messages = run(folder)
    assert messages == [] and done.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(again, per_sim)


def test_results_of_other_code_are_recomputed(cached, monkeypatch):
    folder, done, per_sim = cached
    monkeypatch.setattr(cache_module, "code_version", lambda: "0.2.0+fixedbug")
    again, messages = run(folder)
    assert len(messages) == 1, messages
    assert f"{done} was made by other code (code " in messages[0]
    assert "now 0.2.0+fixedbug); recomputing condition 'tiny'" in messages[0]
    assert not done.exists()  # the stale entry is gone, the new one in its place
    (new,) = folder.glob("*.done")
    assert json.loads(new.read_text())["code"] == "0.2.0+fixedbug"
    pd.testing.assert_frame_equal(again, per_sim)


def test_a_worker_of_other_code_or_sampler_refuses_the_condition(tmp_path, monkeypatch):
    """A Dask worker that joined a cluster mid-sweep with other code computed conditions the
    run stored under its own code's key (the workers' code was checked only at the start): 16
    of 60 cells were wrong, and later runs reused them. The worker computes the key again and
    refuses; ``SCAI_COMPILED`` (another MCMC sampler: other draws) is part of an MCMC
    condition's key, and a worker of the other choice refuses too."""
    from scai.experiments.cache import ConditionCache
    from scai.experiments.runner import _write_condition
    from scai.models.errors import RunError

    entry = ConditionCache(tmp_path / "cache").entry(CONDITION, SETTINGS, 7)
    monkeypatch.setattr(cache_module, "code_version", lambda: "0.2.0+another")
    with pytest.raises(RunError, match="this worker runs other scai code"):
        _write_condition(entry, SETTINGS, tmp_path)
    assert not list(tmp_path.glob(f"{entry.key}*"))
    monkeypatch.undo()
    mcmc = Settings(sims=1, epochs=1, seed=4, engine="mcmc")
    monkeypatch.setenv("SCAI_COMPILED", "1")
    compiled = ConditionCache(tmp_path / "cache").entry(CONDITION, mcmc, 7)
    exact = ConditionCache(tmp_path / "cache").entry(CONDITION, SETTINGS, 7)
    monkeypatch.setenv("SCAI_COMPILED", "0")
    assert ConditionCache(tmp_path / "cache").entry(CONDITION, mcmc, 7).key != compiled.key
    assert ConditionCache(tmp_path / "cache").entry(CONDITION, SETTINGS, 7).key == exact.key
    with pytest.raises(RunError, match="another MCMC sampler"):
        _write_condition(compiled, mcmc, tmp_path)


def test_an_older_scais_entry_without_checksums_is_recomputed(cached):
    folder, done, per_sim = cached
    fingerprint = json.loads(done.read_text())["fingerprint"]
    for path in folder.glob(f"{done.stem}.*"):  # the old layout: KEY = the fingerprint
        path.rename(folder / f"{fingerprint}{path.name[len(done.stem) :]}")
    old = folder / f"{fingerprint}.done"
    old.write_text(json.dumps({"condition": {"name": "tiny"}, "seed": 1}))
    again, messages = run(folder)
    assert len(messages) == 1 and str(old) in messages[0], messages
    assert "an older scai, without checksums" in messages[0]
    assert sorted(p.name for p in folder.glob(f"{fingerprint}.*")) == []
    pd.testing.assert_frame_equal(again, per_sim)


def test_files_without_a_manifest_are_an_unfinished_entry(cached):
    folder, done, per_sim = cached
    done.unlink()  # as if the run stopped between moving the files and writing the manifest
    again, messages = run(folder)
    assert len(messages) == 1 and "has no manifest" in messages[0], messages
    assert str(folder / done.stem) in messages[0]
    pd.testing.assert_frame_equal(again, per_sim)


def foreign_path(manifest):
    manifest["files"]["../../etc/passwd"] = manifest["files"].popitem()[1]


def unlisted_table(manifest):
    manifest["files"].pop(next(k for k in manifest["files"] if k.endswith("per_sim.csv")))


def no_checksum(manifest):
    manifest["files"] = {name: "no checksum" for name in manifest["files"]}


TAMPERED = {
    "foreign_path": (foreign_path, "lists files that are not this entry's"),
    "unlisted_table": (unlisted_table, "does not list"),
    "no_checksum": (no_checksum, "has no checksum"),
    "format": (lambda m: m.update(format=99), "has format 99"),
    "key": (lambda m: m.update(key="0" * 16), "has key '0000000000000000'"),
    "files_not_a_table": (lambda m: m.update(files=[]), "lists files that are not this entry's"),
    "not_an_object": (lambda m: m.clear(), "has format None"),
}


@pytest.mark.parametrize("name", TAMPERED)
def test_a_tampered_manifest_is_not_trusted(cached, name):
    folder, done, per_sim = cached
    tamper, what = TAMPERED[name]
    manifest = json.loads(done.read_text())
    tamper(manifest)
    done.write_text(json.dumps(manifest))
    again, messages = run(folder)
    assert len(messages) == 1 and what in messages[0] and str(done) in messages[0], messages
    pd.testing.assert_frame_equal(again, per_sim)


def test_a_cached_file_replaced_by_a_link_is_not_read(cached, tmp_path):
    folder, done, per_sim = cached
    target = folder / f"{done.stem}.per_sim.csv"
    elsewhere = tmp_path / "elsewhere.csv"
    shutil.copyfile(target, elsewhere)  # the same bytes: only the link gives it away
    target.unlink()
    target.symlink_to(elsewhere)
    again, messages = run(folder)
    assert len(messages) == 1 and f"{target} is missing" in messages[0], messages
    assert not target.is_symlink()
    assert elsewhere.read_bytes() == target.read_bytes()
    pd.testing.assert_frame_equal(again, per_sim)


def test_a_cached_file_that_cannot_be_read_or_is_a_folder_is_recomputed(cached, monkeypatch):
    """A cached file made unreadable (its permissions) ended the run, or a whole sweep, with
    "--out: Permission denied"; a folder made in a file's place ended it with "Is a
    directory", every run after it too (a review): each is a CacheWarning, and the condition
    is computed again into a file."""
    folder, done, per_sim = cached
    target = folder / f"{done.stem}.per_sim.csv"
    digest = cache_module.file_digest

    def unreadable(path):
        if Path(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return digest(path)

    monkeypatch.setattr(cache_module, "file_digest", unreadable)
    again, messages = run(folder)
    assert len(messages) == 1 and f"{target} cannot be read (Permission denied)" in messages[0]
    pd.testing.assert_frame_equal(again, per_sim)
    monkeypatch.setattr(cache_module, "file_digest", digest)
    target.unlink()
    target.mkdir()
    again, messages = run(folder)
    assert len(messages) == 1 and f"{target} is missing" in messages[0], messages
    assert target.is_file()
    pd.testing.assert_frame_equal(again, per_sim)
    assert run(folder)[1] == []  # stored whole again


def test_a_run_says_how_many_conditions_an_earlier_run_stored(cached, monkeypatch, capsys):
    """A resumed ``scai run`` said nothing of what it reused (a review): one line for the
    conditions an earlier run stored, once per process (``scai run all`` reads again what it
    computed, and its experiments what it told of), none for what it computed itself."""
    folder, done, per_sim = cached
    monkeypatch.setattr(cache_module, "_KNOWN_HERE", set())  # a new process
    for _ in range(2):
        with time_limit(SECONDS):
            run_conditions([CONDITION], SETTINGS, folder, workers=1, progress=True)
    lines = [x for x in capsys.readouterr().out.splitlines() if "earlier run" in x]
    assert lines == [f"1 of 1 conditions from an earlier run's cache ({folder})"]
    monkeypatch.setattr(cache_module, "_KNOWN_HERE", set())
    done.unlink()  # recomputed: stored by this process, then read again
    for _ in range(2):
        with time_limit(SECONDS), warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheWarning)
            run_conditions([CONDITION], SETTINGS, folder, workers=1, progress=True)
    assert "earlier run" not in capsys.readouterr().out


def test_a_killed_runs_leftovers_are_cleared(cached):
    folder, done, per_sim = cached
    (folder / ".staging" / "abc").mkdir(parents=True)
    (folder / ".staging" / "abc" / "abc.per_sim.csv").write_text("half")
    (folder / f"{done.name}.0123456789ab.tmp").write_text("{")
    again, messages = run(folder)
    assert messages == [] and leftovers(folder) == []
    pd.testing.assert_frame_equal(again, per_sim)


def test_a_cache_in_use_by_another_process_is_refused(cached):
    folder, _, _ = cached
    # flock belongs to an open file: a second open, even in this process, conflicts with it
    refused = pytest.raises(FolderInUse, match="cache folder .* in use by another scai process")
    with locked(folder, name=cache_module.LOCK, what="cache folder"), refused as caught:
        run(folder)
    # what to do names an option there is (it said "choose another cache folder"; a review)
    assert str(caught.value).endswith("wait for it to end, or give this command another --out")


def test_a_plan_is_reported_from_its_cache_while_the_next_is_computed(tmp_path, first_run):
    """``run_plans(..., on_plan_done)`` (what lets ``scai run all`` report an experiment while
    the others' conditions are computed): called once per plan, as soon as the plan's
    conditions are stored and before the next plan's are; the plan's cache can then be opened
    again by this process (it holds the lock: re-entrant), and everything is found cached."""
    from scai.experiments.runner import Plan, run_plans

    other = Condition("tiny too", "fair", users=3, save_posterior=False)
    plans = [
        Plan([CONDITION], SETTINGS, tmp_path / "a" / "cache"),
        Plan([other], SETTINGS, tmp_path / "b" / "cache"),
    ]
    seen = []

    def report(i: int) -> None:
        later = [manifests(plan.cache_dir) for plan in plans[i + 1 :]]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CacheWarning)
            results = plans[i].run(workers=1)
        assert caught == []  # found cached and intact
        seen.append((i, later, results))

    with time_limit(2 * SECONDS):
        run_plans(plans, workers=1, progress=False, on_plan_done=report)
    assert [i for i, _, _ in seen] == [0, 1]
    assert seen[0][1] == [{}]  # plan 0 reported before plan 1's condition was stored
    pd.testing.assert_frame_equal(seen[0][2]["tiny"].per_sim, first_run[1])
    assert set(seen[1][2]) == {"tiny too"}
    # the lock was released: another process (here, a second open file) may take the folder
    with locked(plans[0].cache_dir, name=cache_module.LOCK, what="cache folder"):
        pass


def test_a_plan_s_first_conditions_are_reported_before_the_rest_are_stored(tmp_path, first_run):
    """``run_plans(..., on_early_done)`` (what lets ``scai run all`` draw inconsistency's share
    figure while the sweep is computed): called once, as soon as the plan's first ``early``
    conditions are stored and before the others are, then ``on_plan_done``; never for a plan
    whose ``early`` is 0; the first conditions alone (``Plan.first``) are found cached; and
    the conditions after a plan's early ones are computed after every other plan's, so that
    the other reports are drawn while the workers compute."""
    from scai.experiments.runner import Plan, run_plans

    other = Condition("tiny too", "fair", users=3, save_posterior=False)
    plans = [
        Plan([CONDITION, other], SETTINGS, tmp_path / "a" / "cache", early=1),
        Plan([other], SETTINGS, tmp_path / "b" / "cache"),
    ]
    events = []

    def early(i: int) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CacheWarning)
            results = plans[i].first().run(workers=1)
        assert caught == []  # found cached and intact
        events.append(("early", i, set(manifests(plans[i].cache_dir)), set(results)))

    def done(i: int) -> None:
        events.append(("done", i, set(manifests(plans[i].cache_dir)), None))

    with time_limit(2 * SECONDS):
        run_plans(plans, workers=1, progress=False, on_plan_done=done, on_early_done=early)
    assert events == [
        ("early", 0, {"tiny"}, {"tiny"}),  # before "tiny too" was stored
        ("done", 1, {"tiny too"}, None),  # plan 1 before the rest of plan 0
        ("done", 0, {"tiny", "tiny too"}, None),
    ]


def test_the_code_digest_follows_the_bytes_not_the_place(tmp_path):
    one = tmp_path / "one"
    for folder in ("models", "inference", "experiments/commands"):
        (one / folder).mkdir(parents=True)
        (one / folder / "m.py").write_text("x = 1\n")
    (one / "__init__.py").write_text("")
    (one / "README.md").write_text("not code")
    two = tmp_path / "two"
    shutil.copytree(one, two)
    assert source_digest(one) == source_digest(two)
    (two / "README.md").write_text("changed, not code")
    assert source_digest(one) == source_digest(two)
    (two / "experiments" / "commands" / "m.py").write_text("x = 2\n")
    assert source_digest(one) != source_digest(two)
    assert source_digest(one) != source_digest(one, ["torch==0"])
    assert cache_module.code_version() == cache_module.code_version()


def test_plans_share_one_pool_and_keep_their_own_caches(tmp_path, first_run):
    """``scai run all`` computes every experiment's conditions with one pool (``run_plans``):
    each condition is stored in its own plan's cache, byte for byte what a run of that plan
    alone stores, and the plans then find everything cached."""
    from scai.experiments.runner import Plan, run_plans

    other = Condition("tiny too", "fair", users=3, save_posterior=False)
    plans = [
        Plan([CONDITION], SETTINGS, tmp_path / "a" / "cache"),
        Plan([other, CONDITION], SETTINGS, tmp_path / "b" / "cache"),
    ]
    with time_limit(2 * SECONDS):
        run_plans(plans, workers=2, progress=False)
    a, b = manifests(plans[0].cache_dir), manifests(plans[1].cache_dir)
    assert set(a) == {"tiny"} and set(b) == {"tiny", "tiny too"}
    alone = manifests(first_run[0])["tiny"]["files"]
    assert a["tiny"]["files"] == alone and b["tiny"]["files"] == alone
    stamps = {p: p.stat().st_mtime_ns for p in plans[1].cache_dir.glob("*.done")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CacheWarning)
        results_b = plans[1].run(workers=1)
    assert caught == []  # found cached and intact: nothing recomputed or rewritten
    assert {p: p.stat().st_mtime_ns for p in plans[1].cache_dir.glob("*.done")} == stamps
    pd.testing.assert_frame_equal(results_b["tiny"].per_sim, first_run[1])


def test_a_hypothesis_file_changed_after_the_start_stores_nothing(tmp_path):
    """The entry's key holds the hypothesis file as the run read it; the worker reads the file
    again. Edited in between (a red-team find: a sweep re-run then reused slowdown 1.0 where
    the file as it is gave 1.5), the results were stored under the first file's key. Now the
    condition fails, nothing is stored, and a run with the file as it is computes afresh."""
    from scai.experiments.cache import ConditionCache
    from scai.experiments.runner import _write_condition
    from scai.models.errors import RunError

    hyp = tmp_path / "hyp.toml"
    hyp.write_text("stereotype_strength = 0.8\n")
    cond = Condition("rude altruists", "altruistic", manner="rude", hypothesis=str(hyp))
    settings = Settings(sims=2, epochs=1)
    cache = ConditionCache(tmp_path / "cache")
    entry = cache.entry(cond, settings, 3)
    staging = tmp_path / "staging"
    staging.mkdir()
    hyp.write_text("stereotype_strength = 0.0\n")
    with pytest.raises(RunError, match="not what it was when the run started"):
        _write_condition(entry, settings, staging)
    assert not any(staging.iterdir())
    _write_condition(cache.entry(cond, settings, 3), settings, staging)  # the file as it is now
    assert any(staging.iterdir())


def test_a_conditions_own_warnings_are_kept_and_told_again_from_the_cache(tmp_path, monkeypatch):
    """What a condition's computation warned of was printed by the process that computed it
    and lost: a re-run from the cache said nothing. scai's own warnings are now stored with the
    results (one line each, each once: the protocol fits epoch by epoch), whatever the filters
    of the process that computes them, and told in their category, naming the condition, by
    every run that reads it, under that run's filters; other libraries' warnings are shown as
    before and not stored."""
    from scai.experiments import runner
    from scai.inference.diagnostics import DiagnosticWarning

    real, computed = runner.run_condition, []

    def warning(*args):
        computed.append(args[0].name)
        for _ in range(3):
            warnings.warn("a grid too coarse\n  for this posterior", DiagnosticWarning, 1)
        warnings.warn("a library's own news", FutureWarning, 1)
        return real(*args)

    monkeypatch.setattr(runner, "run_condition", warning)
    line = "DiagnosticWarning: a grid too coarse for this posterior"
    shown = (DiagnosticWarning, "condition 'tiny': a grid too coarse for this posterior")
    news = (FutureWarning, "a library's own news")
    # computed by a process that ignores it; read from the cache by one that does not, then
    # by one that does
    for ignored, expected in ((True, [news]), (False, [shown]), (True, [])):
        with time_limit(SECONDS), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if ignored:
                warnings.simplefilter("ignore", DiagnosticWarning)
            outcome = runner.run_jobs([(CONDITION, SETTINGS)], tmp_path, workers=1, progress=False)
        assert [(w.category, str(w.message)) for w in caught] == expected
        assert outcome.warned == {0: [line]}
    assert computed == ["tiny"] and outcome.cached == 1
    (stored,) = tmp_path.glob("*.warnings.txt")
    assert stored.read_text() == line + "\n"
    (manifest,) = manifests(tmp_path).values()
    assert stored.name in manifest["files"]  # checked before reuse, as the results are


def test_a_condition_that_fails_shows_what_it_warned_of(tmp_path, monkeypatch):
    """A condition that warned, then failed, lost its warnings (recorded for storing, and
    nothing was stored): they are given as they come, scai's each once and naming the
    condition, through the filters (here: the second time, DiagnosticWarning ignored)."""
    from scai.experiments import runner
    from scai.inference.diagnostics import DiagnosticWarning

    def failing(*args):
        for _ in range(2):
            warnings.warn("the step size fell to 1e-9", DiagnosticWarning, 1)
        warnings.warn("overflow in exp", RuntimeWarning, 1)
        raise FloatingPointError("the log density is NaN")

    monkeypatch.setattr(runner, "run_condition", failing)
    overflow = (RuntimeWarning, "overflow in exp")
    step = (DiagnosticWarning, "condition 'tiny': the step size fell to 1e-9")
    for ignored, expected in ((False, [overflow, step]), (True, [overflow])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if ignored:
                warnings.simplefilter("ignore", DiagnosticWarning)
            outcome = runner.run_jobs(
                [(CONDITION, SETTINGS)], tmp_path, workers=1, progress=False, keep_going=True
            )
        assert outcome.errors == {0: "FloatingPointError: the log density is NaN"}
        assert [(w.category, str(w.message)) for w in caught] == expected
        assert not list(tmp_path.glob("*.warnings.txt")) and outcome.warned == {}


def test_warnings_repeated_by_conditions_are_counted_even_when_the_run_stops(tmp_path, monkeypatch):
    """A warning that several conditions gave is told once, then counted as the run ends: also
    when it ends on a condition's error (the count was lost with the run)."""
    from dataclasses import replace

    from scai.experiments import runner
    from scai.inference.diagnostics import DiagnosticWarning

    real = runner.run_condition

    def warning(cond, *args):
        if cond.name == "third":
            raise FloatingPointError("the log density is NaN")
        warnings.warn("a grid too coarse", DiagnosticWarning, 1)
        return real(cond, *args)

    monkeypatch.setattr(runner, "run_condition", warning)
    jobs = [(replace(CONDITION, name=n), SETTINGS) for n in ("first", "second", "third")]
    with warnings.catch_warnings(record=True) as caught, pytest.raises(FloatingPointError):
        warnings.simplefilter("always")
        runner.run_jobs(jobs, tmp_path, workers=1, progress=False)
    assert [str(w.message) for w in caught] == [
        "condition 'first': a grid too coarse",
        "1 more condition(s) warned the same ('second'): a grid too coarse",
    ]


def test_a_warning_made_an_error_stops_the_run_and_is_not_a_failed_read(tmp_path, monkeypatch):
    """Under an 'error' filter, a condition's warning (recorded whatever the filters, so the
    condition finished and was stored) was raised while telling it, inside the read's error
    handling: the cell said 'stored, but reading it back failed'. It now stops the run as the
    error it was made, the condition kept in the cache."""
    from scai.experiments import runner
    from scai.inference.diagnostics import DiagnosticWarning

    real = runner.run_condition

    def warning(*args):
        warnings.warn("a grid too coarse", DiagnosticWarning, 1)
        return real(*args)

    monkeypatch.setattr(runner, "run_condition", warning)
    for _ in range(2):  # computed, then read from the cache: the same error
        with warnings.catch_warnings():
            warnings.simplefilter("error", DiagnosticWarning)
            with pytest.raises(DiagnosticWarning, match="condition 'tiny': a grid too coarse"):
                runner.run_jobs(
                    [(CONDITION, SETTINGS)], tmp_path, workers=1, progress=False, keep_going=True
                )
        assert len(list(tmp_path.glob("*.done"))) == 1


def test_conditions_run_together_are_told_once_by_the_experiment_that_reads_them(
    tmp_path, monkeypatch
):
    """scai run all computes every experiment's conditions in one pool, then each experiment
    reads its own again: their warnings were told twice, the first time with a seed that told
    nothing apart (the name was another experiment's too). The experiments tell them."""
    from scai.experiments import runner
    from scai.experiments.runner import Plan, run_plans
    from scai.inference.diagnostics import DiagnosticWarning

    real = runner.run_condition

    def warning(*args):
        warnings.warn("a grid too coarse", DiagnosticWarning, 1)
        return real(*args)

    monkeypatch.setattr(runner, "run_condition", warning)
    plans = [Plan([CONDITION], SETTINGS, tmp_path / name / "cache") for name in ("a", "b")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_plans(plans, workers=1, progress=False)
    assert caught == [] and len(list(tmp_path.glob("*/cache/*.warnings.txt"))) == 2
    for plan in plans:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan.run(workers=1)
        told = [(w.category, str(w.message)) for w in caught]
        assert told == [(DiagnosticWarning, "condition 'tiny': a grid too coarse")]


def test_a_warnings_file_its_manifest_does_not_list_is_not_trusted(cached):
    """The entry's warnings file is read and told: one its manifest does not list (put there
    by hand) makes the entry damaged, as a changed result file does."""
    folder, done, first = cached
    (folder / done.name.replace(".done", ".warnings.txt")).write_text("DiagnosticWarning: x\n")
    again, messages = run(folder)
    pd.testing.assert_frame_equal(again, first)
    assert len(messages) == 1 and "is not in its manifest" in messages[0], messages
    assert not list(folder.glob("*.warnings.txt"))


def test_one_hypothesis_file_spelled_two_ways_is_one_condition(tmp_path, monkeypatch):
    """``--hypothesis h.toml`` then ``./h.toml`` computed every condition again (a red-team:
    the fingerprint hashed the path as typed), and generalization's conditions, named and so
    seeded by it, gave other numbers: the file's contents count, not its spelling."""
    from scai.experiments import alignment, generalization, inconsistency
    from scai.experiments.conditions import Settings, fingerprint
    from scai.models.hypotheses import PRESETS

    monkeypatch.chdir(tmp_path)
    PRESETS["pooled"].with_(name="mine").save(tmp_path / "h.toml")
    spellings = ("h.toml", "./h.toml", str(tmp_path / "h.toml"))
    builds = (
        alignment.conditions,
        lambda h: generalization.conditions([h]),
        lambda h: inconsistency.main_conditions([h]),
    )
    for build in builds:
        for conds in zip(*(build(h) for h in spellings), strict=True):
            assert len({c.name for c in conds}) == 1
            assert len({fingerprint(c, Settings(), 0) for c in conds}) == 1
    # a preset keeps its name (and so its seed), and another file's contents another print
    (preset,) = generalization.conditions(["pooled"])
    assert preset.name == "selfish on dollars | pooled"
    PRESETS["pooled"].with_(name="mine", shared_scale=0.25).save(tmp_path / "other.toml")
    (mine,) = generalization.conditions(["h.toml"])
    (other,) = generalization.conditions(["other.toml"])
    assert fingerprint(mine, Settings(), 0) != fingerprint(other, Settings(), 0)


def test_exact_conditions_are_computed_in_inference_mode_with_the_same_files(tmp_path, monkeypatch):
    """A condition of the exact engine is computed in torch's inference mode (less CPU per
    tensor operation): its files are byte for byte those computed with autograd on, and an SVI
    condition computed next in the same process (a worker reuses what an exact fit cached for
    the process) differentiates as before, outside the mode."""
    import arviz as az
    import torch

    from scai.experiments import runner
    from scai.experiments.cache import ConditionCache

    modes = []
    compute = runner.run_condition

    def recording(*args, **kwargs):
        modes.append(torch.is_inference_mode_enabled())
        return compute(*args, **kwargs)

    monkeypatch.setattr(runner, "run_condition", recording)
    cond = Condition(
        "rude altruists",
        "altruistic",
        manner="rude",
        hypothesis="stereotyped",
        true_policy="altruistic",
    )
    exact = Settings(sims=2, epochs=2, curve=True)
    entry = ConditionCache(tmp_path / "cache").entry(cond, exact, 3)
    files = {}
    for name, inference in (("inference", True), ("autograd", False)):
        (tmp_path / name).mkdir()
        if inference:
            runner._compute(entry, exact, tmp_path / name)
        else:  # the same computation with autograd's bookkeeping on
            with monkeypatch.context() as m:
                m.setattr(runner.torch, "inference_mode", lambda on: contextlib.nullcontext())
                runner._compute(entry, exact, tmp_path / name)
        files[name] = {p.name: p.read_bytes() for p in (tmp_path / name).iterdir()}
    assert modes == [True, False]
    # a posterior file records when it was written: its arrays are compared
    posterior = [name for name in files["inference"] if name.endswith(".nc")]
    assert len(posterior) == 1
    drop = lambda tables: {k: v for k, v in tables.items() if not k.endswith(".nc")}  # noqa: E731
    assert drop(files["inference"]) == drop(files["autograd"])
    saved = [az.from_netcdf(tmp_path / name / posterior[0]) for name in files]
    assert saved[0].groups() == saved[1].groups()
    for group in saved[0].groups():
        assert saved[0][group].equals(saved[1][group]), group

    svi = Settings(sims=1, epochs=1, engine="svi")
    cond = Condition("mixed", "selfish=0.5,altruistic=0.5", users=4)
    (tmp_path / "svi").mkdir()
    runner._compute(ConditionCache(tmp_path / "cache").entry(cond, svi, 4), svi, tmp_path / "svi")
    assert modes[-1] is False
    assert any(p.name.endswith(".per_sim.csv") for p in (tmp_path / "svi").iterdir())
