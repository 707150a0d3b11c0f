"""The condition cache: every finished condition's files, kept so that a re-run is free and an
interrupted run resumes, and checked so that a cached result is never wrong.

A cache folder (``OUT/NAME/cache``) holds, per condition::

    KEY.per_sim.csv  KEY.interactions.csv  [KEY.curve.csv]  [KEY.nc]   the results
    [KEY.warnings.txt]          what the computation warned of (scai's own warnings, one a line)
    KEY.done                                                           the manifest, written last

and ``.staging/`` (files being written, moved into place only by the process that owns the
cache) and ``.lock`` (held while a run uses the cache: :func:`scai.experiments.locking.locked`).

``KEY`` hashes the condition's fingerprint (:func:`scai.experiments.conditions.fingerprint`:
the condition, the settings, the seed and the hypothesis's contents) with
:func:`code_version`, so results of other code (a fixed bug's) are never reused. The manifest
(JSON) records the key's parts and each file's size and SHA-256; it is written atomically after
every file is in place, so an entry without one is unfinished. Before an entry is reused,
:meth:`ConditionCache.lookup` checks every file against it; a damaged entry (a truncated, changed
or missing file, an unreadable manifest), an unfinished one, or an entry the same condition got
from other code is removed and recomputed, with a :class:`CacheWarning` naming the file and what
was wrong.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from scai.experiments.conditions import Condition, Settings, fingerprint
from scai.experiments.locking import LOCK_NAME, locked
from scai.models.errors import ScaiWarning
from scai.models.writing import write_atomic

#: The manifest's format (a manifest of another format is not trusted).
FORMAT = 1
#: The kind of the file of what a condition's computation warned of (scai's own warnings).
WARNINGS = "warnings.txt"
#: What a condition may store, by file-name suffix; the first two always.
KINDS = ("per_sim.csv", "interactions.csv", "curve.csv", "nc", WARNINGS)
REQUIRED = KINDS[:2]
#: The package's folders whose modules make up :func:`code_version`.
PACKAGE_FOLDERS = ("models", "inference", "experiments")
#: Libraries whose versions are part of :func:`code_version` (the numbers come from them).
LIBRARIES = ("torch", "pyro-ppl", "numpy")
STAGING = ".staging"
LOCK = ".lock"


class CacheWarning(ScaiWarning):
    """A cached result was damaged, unfinished or made by other code, and is recomputed."""


@functools.cache
def code_version() -> str:
    """``VERSION+HASH``: scai's version and :func:`source_digest` of the installed package
    with the versions of :data:`LIBRARIES`. Computed once per process."""
    from importlib.metadata import PackageNotFoundError, version

    import scai

    libraries = []
    for library in LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):
            libraries.append(f"{library}=={version(library)}")
    digest = source_digest(Path(scai.__file__).parent, libraries)
    return f"{scai.__version__}+{digest[:16]}"


def cache_key(fingerprint: str, settings: Settings) -> str:
    """A condition's key in the cache: of its :func:`fingerprint` and the code that computes it
    (:func:`code_version`), and with MCMC, of the sampler ``SCAI_COMPILED`` chooses (the
    compiled one and Python's give the same distribution, not the same draws: a run with the
    other took the cached numbers of this one). A worker computes the key again: one running
    other code, or the other sampler, refuses the condition (:func:`scai.experiments.runner.
    _write_condition`)."""
    text = f"{fingerprint}:{code_version()}"
    if settings.engine == "mcmc":
        from scai.inference.compiled import compiled_enabled

        if not compiled_enabled():  # (the default's keys are those of the code before this)
            text += ":python sampler"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_digest(root: Path, extra: Sequence[str] = ()) -> str:
    """SHA-256 of the package's source under ``root``: the modules at its top and in
    :data:`PACKAGE_FOLDERS` (each file's path relative to ``root`` and its bytes, in path
    order, so the same code anywhere has the same digest), then the ``extra`` strings."""
    files = sorted(
        [*root.glob("*.py"), *(p for d in PACKAGE_FOLDERS for p in (root / d).rglob("*.py"))]
    )
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        digest.update(b"%d:%s%d:" % (len(name), name, len(data)) + data)
    for text in extra:
        digest.update(f"{text};".encode())
    return digest.hexdigest()


def file_digest(path: Path) -> tuple[int, str]:
    """``(size in bytes, SHA-256 hex)`` of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """Where one condition's results are (or will be) cached."""

    folder: Path
    key: str
    fingerprint: str
    condition: Condition | None
    seed: int

    def path(self, kind: str) -> Path:
        return self.folder / f"{self.key}.{kind}"

    @property
    def stem(self) -> Path:
        return self.folder / self.key

    @property
    def done(self) -> Path:
        return self.path("done")

    def warned(self) -> list[str]:
        """What the condition's computation warned of (:data:`WARNINGS`: scai's own warnings,
        ``Category: message``), one line each; none if it warned of nothing."""
        path = self.path(WARNINGS)
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def files(self) -> list[Path]:
        """The files of this entry present on disk (results and manifest)."""
        return [p for kind in (*KINDS, "done") if (p := self.path(kind)).exists()]


#: The cache folders this process holds (:meth:`ConditionCache.open`).
_HELD: set[Path] = set()
#: The manifests (absolute paths) of the entries this process stored, or told the user it
#: found from an earlier run (:func:`known_here`): ``scai run all`` reads again what it
#: computed, and tells once what an earlier run had.
_KNOWN_HERE: set[str] = set()


def known_here(entry: Entry, mark: bool = False) -> bool:
    """Whether this process stored ``entry`` or already told of it (``mark``: it does now)."""
    name = os.path.abspath(entry.done)
    known = name in _KNOWN_HERE
    if mark:
        _KNOWN_HERE.add(name)
    return known


class ConditionCache:
    """One cache folder, used by one process at a time (:meth:`open`)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._by_fingerprint: dict[str, list[str]] = {}
        # The keys with a file in the folder when it was indexed (None: not indexed): a key
        # without any needs no look at the disk (40,000 of a new sweep's: 7 stats each).
        self._keys_present: set[str] | None = None

    @contextlib.contextmanager
    def open(self) -> Iterator[ConditionCache]:
        """Hold the folder's lock (another process using it is a :class:`RunError`), clear what
        a killed run left half-written, and index the manifests present.

        Re-entrant within this process: opened again while this process holds it (``scai run
        all`` reports an experiment as soon as its conditions are stored, while the others'
        are still computed into their caches), the folder is only indexed; its staging folder,
        where the outer run's workers are writing, is left alone."""
        self.folder.mkdir(parents=True, exist_ok=True)
        held = self.folder.resolve()
        if held in _HELD:
            self._index()
            yield self
            return
        with locked(self.folder, name=LOCK, what="cache folder"):
            _HELD.add(held)
            try:
                self.clear_staging()
                for leftover in self.folder.glob("*.tmp"):  # a manifest's temporary file
                    leftover.unlink(missing_ok=True)
                self._index()
                yield self
                self.clear_staging()
            finally:
                _HELD.discard(held)

    def entry(self, cond: Condition, settings: Settings, seed: int) -> Entry:
        fp = fingerprint(cond, settings, seed)
        return Entry(self.folder, cache_key(fp, settings), fp, cond, seed)

    def lookup(self, entry: Entry) -> bool:
        """True if ``entry`` is cached and intact. Otherwise its files, and any entry of the same
        condition from other code, are removed (with a :class:`CacheWarning` saying why), and
        the condition is to be recomputed."""
        stale = [k for k in self._by_fingerprint.get(entry.fingerprint, []) if k != entry.key]
        for key in stale:
            other = Entry(self.folder, key, entry.fingerprint, entry.condition, entry.seed)
            self._warn(
                other,
                f"{other.done} was made by other code ({self._code_of(other)}, "
                f"now {code_version()})",
            )
            self._remove(other)
        self._by_fingerprint[entry.fingerprint] = [entry.key]
        if self._keys_present is not None and entry.key not in self._keys_present:
            return False  # no file of it: nothing to check or remove
        if not entry.done.exists():
            if entry.files():
                self._warn(
                    entry,
                    f"{entry.folder / entry.key}.* has no manifest "
                    f"({entry.done.name}): a run stopped while storing it",
                )
                self._remove(entry)
            return False
        problem = self.check(entry)
        if problem is None:
            return True
        self._warn(entry, problem)
        self._remove(entry)
        return False

    def check(self, entry: Entry) -> str | None:
        """What is wrong with a cached entry (naming the file), or None if every file is as
        its manifest says."""
        manifest = self._manifest(entry)
        if not isinstance(manifest, dict):
            return f"{entry.done} is unreadable ({manifest})"
        expect = {"format": FORMAT, "key": entry.key, "code": code_version()}
        for field, value in expect.items():
            if manifest.get(field) != value:
                return f"{entry.done} has {field} {manifest.get(field)!r}, not {value!r}"
        files = manifest.get("files")
        names = {entry.path(kind).name: kind for kind in KINDS}
        if not isinstance(files, dict) or not set(files) <= set(names):
            return f"{entry.done} lists files that are not this entry's"
        for kind in REQUIRED:
            if entry.path(kind).name not in files:
                return f"{entry.done} does not list {entry.path(kind).name}"
        for kind in KINDS:  # a file the entry would read (its warnings), never checked
            if (path := entry.path(kind)).name not in files and path.exists():
                return f"{path} is not in its manifest ({entry.done.name})"
        for name, recorded in sorted(files.items()):
            path = self.folder / name
            if not path.is_file() or path.is_symlink():
                return f"{path} is missing"
            if not isinstance(recorded, dict):
                return f"{entry.done} has no checksum for {name}"
            try:
                size, sha = file_digest(path)
            except OSError as err:  # unreadable (its permissions): recomputed, not the run's end
                return f"{path} cannot be read ({err.strerror or err})"
            if size != recorded.get("bytes"):
                expected = recorded.get("bytes")
                return f"{path} is damaged ({size} bytes; the manifest says {expected})"
            if sha != recorded.get("sha256"):
                return f"{path} is damaged (its SHA-256 is not the manifest's)"
        return None

    def staging(self, entry: Entry) -> Path:
        """A fresh folder where ``entry``'s files are written before :meth:`store`."""
        folder = self.folder / STAGING / entry.key
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def store(self, entry: Entry, staged: Path) -> None:
        """Move the files written in ``staged`` into place, then write the manifest of their
        sizes and checksums (last, atomically: until then the entry is unfinished)."""
        files = {}
        for kind in KINDS:
            source = staged / entry.path(kind).name
            if source.exists():
                size, sha = file_digest(source)
                os.replace(source, entry.path(kind))
                files[entry.path(kind).name] = {"bytes": size, "sha256": sha}
        manifest = {
            "format": FORMAT,
            "key": entry.key,
            "fingerprint": entry.fingerprint,
            "code": code_version(),
            "condition": asdict(entry.condition),
            "seed": entry.seed,
            "files": files,
        }
        text = json.dumps(manifest, indent=1, default=str) + "\n"
        write_atomic(entry.done, lambda tmp: Path(tmp).write_text(text))
        known_here(entry, mark=True)
        shutil.rmtree(staged, ignore_errors=True)

    def discard_unfinished(self, entries: list[Entry]) -> None:
        """After an interruption (no writer left): remove every file being written and the
        files of each of ``entries`` that has no manifest (stopped while being stored)."""
        self.clear_staging()
        for entry in entries:
            if not entry.done.exists():
                self._remove(entry)

    def clear_staging(self) -> None:
        """Remove every file being written (only when no writer is left)."""
        shutil.rmtree(self.folder / STAGING, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------
    def _index(self) -> None:
        """Map each condition fingerprint to the keys cached for it. A manifest without a
        format is an older scai's, keyed by the fingerprint itself."""
        self._by_fingerprint = {}
        names = sorted(name for name in os.listdir(self.folder) if not name.startswith("."))
        self._keys_present = {name.split(".", 1)[0] for name in names}
        for done in (self.folder / name for name in names if name.endswith(".done")):
            manifest = self._manifest(Entry(self.folder, done.stem, "", None, 0))
            if isinstance(manifest, dict):
                fp = manifest.get("fingerprint", done.stem)
                self._by_fingerprint.setdefault(str(fp), []).append(done.stem)

    def _manifest(self, entry: Entry) -> dict | str:
        """The manifest, or what made it unreadable."""
        try:
            manifest = json.loads(entry.done.read_bytes())
        except (OSError, ValueError) as err:
            return " ".join(str(err).split())
        return manifest if isinstance(manifest, dict) else "not a JSON object"

    def _code_of(self, entry: Entry) -> str:
        manifest = self._manifest(entry)
        code = manifest.get("code") if isinstance(manifest, dict) else None
        return f"code {code}" if code else "an older scai, without checksums"

    def _remove(self, entry: Entry) -> None:
        """Remove ``entry``'s manifest, then its files (a folder made in a file's place too:
        it would stop the condition's results from being stored again)."""
        for path in (entry.done, *entry.files()):  # the manifest first: without it, unfinished
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _warn(self, entry: Entry, problem: str) -> None:
        name = entry.condition.name if entry.condition is not None else entry.key
        warnings.warn(
            f"cache: {problem}; recomputing condition {name!r}", CacheWarning, stacklevel=3
        )


@contextlib.contextmanager
def nothing_left_on_failure(folders: list[Path]):
    """On an error (or an interruption), remove each of ``folders`` that was not there before
    and holds nothing but folders and lock notes (the run's
    :data:`~scai.experiments.locking.LOCK_NAME`, a cache's :data:`LOCK`): a run that fails on
    its input (a table in no known layout, a Dask scheduler out of reach) left ``--out`` with
    its lock notes, the experiment's folder and the figures' empty. A folder with anything
    else in it (a condition cached before an interruption) is kept as it is."""
    absent = [folder for folder in folders if not folder.exists() and not folder.is_symlink()]
    try:
        yield
    except BaseException:
        for folder in sorted(absent, key=lambda path: len(path.parts), reverse=True):
            if _holds_only_lock_notes(folder):
                shutil.rmtree(folder, ignore_errors=True)
        raise


def _holds_only_lock_notes(folder: Path) -> bool:
    if not folder.is_dir() or folder.is_symlink():
        return False
    notes = {LOCK_NAME, LOCK}
    return all(set(files) <= notes for _, _, files in os.walk(folder))
