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
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from scai.models.data import write_atomic
from scai.models.errors import DataError, Problem, not_a_regular_file
from scai.models.tone_reader.interface import check_reader
from scai.models.tone_reader.linear import LinearToneReader
from scai.models.tone_reader.text import FeatureSettings

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
    """Write ``reader`` as JSON (one top-level key per line), atomically."""
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


def reader_from_dict(doc: Any, source: str = "tone reader") -> LinearToneReader:
    """The reader a :func:`reader_to_dict` document describes; a :class:`DataError` naming
    the key if anything is missing or malformed."""

    def bad(key: str | None, why: str) -> DataError:
        return DataError(source, [Problem(None, key, None, why)])

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad("format", f'not a scai tone reader (expected "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        raise bad("version", f"version {doc.get('version')!r}; this scai reads {VERSION}")
    missing = [k for k in _KEYS if k not in doc]
    if missing:
        raise bad(None, f"missing key(s): {', '.join(missing)}")
    labels = doc["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise bad("labels", "must be a list of tone names")
    try:
        settings = FeatureSettings.from_dict(doc["features"])
    except (KeyError, TypeError, ValueError) as err:
        raise bad("features", f"malformed feature settings: {err}") from None
    arrays = {}
    for key, ndim in (("idf", 1), ("coef", 2), ("intercept", 1)):
        try:
            array = np.asarray(doc[key], dtype=np.float64)
        except (TypeError, ValueError):
            array = None
        if array is None or array.ndim != ndim:
            raise bad(key, f"must be a {ndim}-dimensional array of numbers")
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
        return check_reader(reader, need_confusion=False)
    except (TypeError, ValueError) as err:
        if isinstance(err, DataError):
            raise DataError(source, err.problems) from None
        raise bad(None, str(err)) from None


def load_reader(path: str | Path) -> LinearToneReader:
    """A reader saved by :func:`save_reader`."""
    path = Path(path)
    if why := not_a_regular_file(path):
        raise DataError(str(path), [Problem(None, None, None, why)])
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(str(path), [Problem(None, None, None, "file does not exist")]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise DataError(str(path), [Problem(None, None, None, f"not a JSON file: {err}")]) from None
    return reader_from_dict(doc, str(path))


@functools.cache
def default_reader() -> LinearToneReader:
    """The reader shipped with scai (``scai tone-reader train`` rebuilds it from the logs)."""
    path = resources.files(__package__) / DEFAULT_READER_FILE
    with resources.as_file(path) as file:
        return load_reader(file)
