"""A :class:`~scai.models.tone_reader.linear.LinearToneReader` as a JSON file, and the one
that ships with scai (:func:`default_reader`).

The file holds numbers and strings only (never pickle: loading it runs no code)::

    {
     "format": "scai-tone-reader", "version": 1,
     "labels": ["neutral", "rude", "sycophantic"],
     "features": {"word_ngrams": [1, 2], "char_ngrams": [3, 5], "currency_phrases": [...],
                  "mask_numbers": true, "mask_decision": true},
     "confusion": [[...], ...],            P(reported | tone), rows and columns MANNERS
     "confusion_counts": [[...], ...],     the held-out counts it was estimated from
     "provenance": {...},                  how it was trained, its held-out accuracy
     "vocabulary": [...], "idf": [...],    feature i and its idf weight
     "coef": [[...], ...], "intercept": [...]
    }

Floats are written in Python's shortest round-trip form, so a loaded reader predicts exactly
what the saved one did. ``scai tone-reader train`` writes one.
"""

from __future__ import annotations

import functools
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from scai.models.errors import DataError, Problem, check_path, missing, not_a_regular_file
from scai.models.language import MANNERS
from scai.models.tone_reader.interface import check_reader
from scai.models.tone_reader.linear import LinearToneReader
from scai.models.tone_reader.text import FeatureSettings, SettingError
from scai.models.writing import check_format_ending, write_atomic

FORMAT = "scai-tone-reader"
VERSION = 1
#: The reader shipped with scai, trained on the original study's logs.
DEFAULT_READER_FILE = "default_reader.json"
_KEYS = (
    "format",
    "version",
    "labels",
    "features",
    "confusion",
    "confusion_counts",
    "provenance",
    "vocabulary",
    "idf",
    "coef",
    "intercept",
)


def reader_to_dict(reader: LinearToneReader) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "labels": list(reader.labels),
        "features": reader.settings.to_dict(),
        "confusion": None if reader.confusion is None else [list(r) for r in reader.confusion],
        "confusion_counts": (
            None if reader.confusion_counts is None else [list(r) for r in reader.confusion_counts]
        ),
        "provenance": reader.provenance,
        "vocabulary": list(reader.vocabulary),
        "idf": reader.idf.tolist(),
        "coef": reader.coef.tolist(),
        "intercept": reader.intercept.tolist(),
    }


def save_reader(reader: LinearToneReader, path: str | Path) -> Path:
    """Write ``reader`` as JSON (one top-level key per line), atomically; a name that says
    another format (``r.csv``, ``r.json.gz``) is refused, as ``scai tone-reader train`` does."""
    path = check_path(path, "save_reader")
    check_format_ending(path, ".json", "save_reader")
    doc = reader_to_dict(reader)
    text = (
        "{\n"
        + ",\n".join(
            f" {json.dumps(k)}: {json.dumps(doc[k], ensure_ascii=False, allow_nan=False)}"
            for k in _KEYS
        )
        + "\n}\n"
    )

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    return write_atomic(path, write)


#: The largest weight (idf, coefficient, intercept) a reader file may hold.
MAX_WEIGHT = 1e6


def reader_from_dict(
    doc: Any, source: str = "tone reader", need_confusion: bool = False
) -> LinearToneReader:
    """The reader a :func:`reader_to_dict` document describes; a :class:`DataError` naming
    the key, the value and what is allowed if anything is missing or malformed (and, with
    ``need_confusion``, if it has no confusion matrix, as reading tones needs)."""

    def bad(key: str | None, why: str, value: object = None) -> DataError:
        return DataError(source, [Problem(None, key, value, why, part="key")])

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad("format", f'not a scai tone reader (expected "format": "{FORMAT}")')
    version = doc.get("version")
    if isinstance(version, bool) or version != VERSION:  # true == 1 in Python
        raise bad("version", f"must be {VERSION}, the version this scai reads", version)
    missing = [k for k in _KEYS if k not in doc]
    if missing:
        raise bad(None, f"missing key(s): {', '.join(missing)}")
    # a key of another version's reader, or a misspelt one, was ignored (a review): what the
    # file meant by it is not what this scai reads
    if unknown := [k for k in doc if k not in _KEYS]:
        raise bad(
            unknown[0], f"not a key of a version {VERSION} reader; allowed: {', '.join(_KEYS)}"
        )
    for key in ("confusion", "confusion_counts"):
        if tones := _square_of_other_size(doc[key]):
            raise bad(
                key,
                f"is {tones} rows of {tones}: the reader was trained when scai had {tones} "
                f"tones, and its matrices are by position; this scai has {len(MANNERS)} "
                f"({', '.join(MANNERS)}): train it again (scai tone-reader train)",
            )
    labels = doc["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise bad("labels", "must be a list of tone names")
    try:
        settings = FeatureSettings.from_dict(doc["features"])
    except SettingError as err:
        key = f"features.{err.key}" if err.key else "features"
        raise bad(key, err.allowed, err.value) from None
    if doc["confusion"] is None and need_confusion:
        raise bad(
            "confusion",
            "is null: the reader was never evaluated, and reading tones needs its confusion "
            "matrix P(reported | tone) (scai tone-reader train writes one)",
        )
    arrays = {}
    for key, ndim in (("idf", 1), ("coef", 2), ("intercept", 1)):
        array = _numbers(doc[key], ndim)  # np.asarray read "1.5" and true as numbers
        if isinstance(array, tuple):
            where, value, why = array
            shape = "a list of numbers" if ndim == 1 else "a list of rows of as many numbers"
            raise bad(f"{key}{where}", f"{why}: {key} must be {shape}", value)
        # a trained reader's weights are tens at most; 1e308 overflows its scores to NaN
        if not (np.isfinite(array).all() and (np.abs(array) <= MAX_WEIGHT).all()):
            raise bad(key, f"must hold finite numbers of size at most {MAX_WEIGHT:g}")
        if key == "idf" and not (array > 0).all():
            raise bad(key, "must be positive (inverse document frequencies are at least 1)")
        arrays[key] = array
    vocabulary = doc["vocabulary"]
    if not isinstance(vocabulary, list) or not all(isinstance(x, str) for x in vocabulary):
        raise bad("vocabulary", "must be a list of strings")
    counts = doc["confusion_counts"]
    if counts is not None and not _is_count_matrix(counts):
        n = len(MANNERS)
        raise bad(
            "confusion_counts",
            f"must be null or {n} rows of {n} whole numbers >= 0 (held-out messages of each "
            f"tone, rows, reported as each tone, columns: {', '.join(MANNERS)})",
            counts,
        )
    provenance = doc["provenance"]
    if not isinstance(provenance, dict):
        raise bad("provenance", "must be a table")
    try:
        reader = LinearToneReader(
            labels=tuple(labels),
            settings=settings,
            vocabulary=tuple(vocabulary),
            confusion=None if doc["confusion"] is None else tuple(map(tuple, doc["confusion"])),
            confusion_counts=None if counts is None else tuple(map(tuple, counts)),
            provenance=provenance,
            **arrays,
        )
        return check_reader(reader, need_confusion=need_confusion)
    except (TypeError, ValueError) as err:
        if isinstance(err, DataError):
            raise DataError(source, err.problems) from None
        raise bad(None, str(err)) from None


def _numbers(value: object, ndim: int) -> np.ndarray | tuple[str, object, str]:
    """``value`` (nested lists, ``ndim`` deep, of JSON numbers) as a float array; else where it
    goes wrong (``"[2]"``, ``"[0][3]"``, ``""``), the value there and what is wrong."""
    rows = value if ndim == 2 else [value]
    if not isinstance(rows, list):
        return "", value, "is not a list of rows"
    for i, row in enumerate(rows):
        at = f"[{i}]" if ndim == 2 else ""
        if not isinstance(row, list):
            return at, row, "is not a list"
        for j, item in enumerate(row):
            if isinstance(item, bool) or not isinstance(item, int | float):
                return f"{at}[{j}]", item, "is not a number"
    lengths = sorted({len(row) for row in rows})
    if len(lengths) > 1:
        return "", None, f"has rows of {', '.join(map(str, lengths))} numbers"
    try:
        array = np.asarray(rows, dtype=np.float64)
    except OverflowError:  # a whole number too large for a float
        array = np.asarray([np.inf])
    return array if ndim == 2 else array.reshape(-1)


def _square_of_other_size(value: object) -> int:
    """The size of ``value`` where it is a square matrix (a list of as many lists) of another
    size than :data:`MANNERS`' (a reader trained before a manner was added); else 0."""
    if not isinstance(value, list) or len(value) < 2 or len(value) == len(MANNERS):
        return 0
    return len(value) if all(isinstance(r, list) and len(r) == len(value) for r in value) else 0


def _is_count_matrix(value: object) -> bool:
    """Held-out counts: ``len(MANNERS)`` rows of as many whole numbers >= 0."""
    n = len(MANNERS)
    return (
        isinstance(value, list)
        and len(value) == n
        and all(
            isinstance(row, list)
            and len(row) == n
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row)
            for row in value
        )
    )


def load_reader(path: str | Path, need_confusion: bool = False) -> LinearToneReader:
    """A reader saved by :func:`save_reader` (with ``need_confusion``, only one that has its
    confusion matrix, as reading tones needs: a :class:`DataError` naming the file if not)."""
    path = Path(path)
    if why := not_a_regular_file(path):
        raise DataError(str(path), [Problem(None, None, None, why)])
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as Windows editors save
    except FileNotFoundError:
        raise DataError(str(path), [Problem(None, None, None, missing(path))]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise DataError(str(path), [Problem(None, None, None, f"not a JSON file: {err}")]) from None
    except ValueError as err:  # a number of more digits than Python reads (4,300)
        if "digits" not in str(err):
            raise
        why = f"a number of more than {sys.get_int_max_str_digits():,} digits, beyond any value"
        raise DataError(str(path), [Problem(None, None, None, why)]) from None
    return reader_from_dict(doc, str(path), need_confusion)


@functools.cache
def default_reader() -> LinearToneReader:
    """The reader shipped with scai (``scai tone-reader train`` rebuilds it from the logs)."""
    path = resources.files(__package__) / DEFAULT_READER_FILE
    with resources.as_file(path) as file:
        return load_reader(file)
