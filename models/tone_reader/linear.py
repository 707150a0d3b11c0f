"""The default tone reader: TF-IDF of word and character n-grams, then multinomial logistic
regression, predicted from its stored numbers alone (no scikit-learn, no pickle).

For a text with n-gram counts ``c_f`` (:func:`scai.models.tone_reader.text.features`, kept
when ``f`` is in the vocabulary)::

    x_f = (1 + log c_f) idf_f / || (1 + log c) idf ||_2        (sublinear tf, l2 norm)
    P(label l | text) = softmax_l(coef[l] . x + intercept[l])

which is scikit-learn's ``TfidfVectorizer(sublinear_tf=True)`` followed by
``LogisticRegression.predict_proba`` (:mod:`.classifier` trains it; a test holds the two
equal). A text with no known n-gram gets ``x = 0``: the intercepts decide (whatever its tone, so
:meth:`LinearToneReader.knows` says so, and ``read_tones`` leaves such a text unread); so does
one whose only known n-grams are its numbers, currency words and punctuation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from scai.models.tone_reader.interface import Matrix
from scai.models.tone_reader.text import FeatureSettings, content_features, features


@dataclass(frozen=True, eq=False)
class LinearToneReader:
    """A :class:`~scai.models.tone_reader.interface.ToneReader` from stored numbers.

    ``vocabulary[i]`` is feature ``i``, with weight ``idf[i]``; ``coef`` is
    ``[labels, features]`` and ``intercept`` ``[labels]``. ``confusion``: ``P(reported |
    tone)`` estimated on held-out messages (``None`` for a reader not yet evaluated), with the
    held-out ``confusion_counts`` it came from. ``provenance``: how it was trained.
    """

    labels: tuple[str, ...]
    settings: FeatureSettings
    vocabulary: tuple[str, ...]
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    confusion: Matrix | None = None
    confusion_counts: tuple[tuple[int, ...], ...] | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_labels, n_features = len(self.labels), len(self.vocabulary)
        shapes = {
            "idf": (self.idf, (n_features,)),
            "coef": (self.coef, (n_labels, n_features)),
            "intercept": (self.intercept, (n_labels,)),
        }
        for name, (array, shape) in shapes.items():
            if np.shape(array) != shape:
                raise ValueError(f"{name}: shape {np.shape(array)}, expected {shape}")
            if not np.isfinite(array).all():
                raise ValueError(f"{name}: must be finite numbers")
        if len(set(self.vocabulary)) != n_features:
            raise ValueError("vocabulary: features must be distinct")
        object.__setattr__(self, "_index", {f: i for i, f in enumerate(self.vocabulary)})

    def with_confusion(
        self, confusion: Matrix, counts: np.ndarray | None = None, **provenance
    ) -> LinearToneReader:
        """A copy carrying ``confusion`` (and the held-out counts it was estimated from)."""
        return LinearToneReader(
            self.labels,
            self.settings,
            self.vocabulary,
            self.idf,
            self.coef,
            self.intercept,
            confusion,
            None if counts is None else tuple(tuple(int(v) for v in r) for r in counts),
            {**self.provenance, **provenance},
        )

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """``[texts, features]``: the TF-IDF rows (module docstring)."""
        indptr, indices, values = [0], [], []
        for text in texts:
            counts = Counter(
                i for f in features(text, self.settings) if (i := self._index.get(f)) is not None
            )
            cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            row = tf * self.idf[cols]
            norm = np.sqrt(np.dot(row, row))
            indices.append(cols)
            values.append(row / norm if norm > 0 else row)
            indptr.append(indptr[-1] + len(cols))
        return sparse.csr_matrix(
            (
                np.concatenate(values) if values else np.zeros(0),
                np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
                np.asarray(indptr),
            ),
            shape=(len(texts), len(self.vocabulary)),
        )

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``[texts, labels]``: ``P(label | text)``; each distinct text is computed once."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)))
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        logits = self.transform(list(unique)) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p[inverse.reshape(-1)]

    def knows(self, texts: Sequence[str]) -> list[bool]:
        """Per text, whether it holds an n-gram of the vocabulary with a letter, its numbers
        and currency words aside (:func:`~scai.models.tone_reader.text.content_features`):
        one that does not is read by the intercepts and the weights of numbers or punctuation
        alone, whatever its tone ("5" was read as rude); each distinct text is looked at
        once."""
        texts = list(texts)
        if not texts:
            return []
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        known = np.array(
            [
                any(f in self._index for f in content_features(text, self.settings))
                for text in unique
            ],
            dtype=bool,
        )
        return known[inverse.reshape(-1)].tolist()

    def read(self, texts: Sequence[str]) -> list[str]:
        """The most probable label of each text (ties: the first label)."""
        p = self.probabilities(texts)
        return [self.labels[i] for i in p.argmax(axis=1)]
