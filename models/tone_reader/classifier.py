"""Training the default reader with scikit-learn, and taking out the numbers it is made of.

:func:`fit_classifier` fits ``TfidfVectorizer(sublinear_tf=True, min_df)`` on the n-grams of
:func:`scai.models.tone_reader.text.features` and a multinomial ``LogisticRegression`` (L2,
``C``, classes weighted to balance: the logs hold twice as many neutral messages as rude or
sycophantic ones; see :func:`fit_pipeline`) and returns the
:class:`~scai.models.tone_reader.linear.LinearToneReader` holding the vocabulary, idf
weights, coefficients and intercepts, which predicts as the pipeline does. scikit-learn is
needed to train, never to read.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scai.models.language import MANNERS
from scai.models.tone_reader.linear import LinearToneReader
from scai.models.tone_reader.text import FeatureSettings, features


@dataclass(frozen=True)
class TrainingOptions:
    """The classifier's settings: features, the smallest number of training messages an
    n-gram must occur in (``min_df``), the inverse regularisation ``C`` and ``max_iter``."""

    settings: FeatureSettings = FeatureSettings()
    min_df: int = 5
    C: float = 1.0
    max_iter: int = 2000

    def to_dict(self) -> dict:
        return {"min_df": self.min_df, "C": self.C, "max_iter": self.max_iter}


def pipeline(options: TrainingOptions):
    """The unfitted scikit-learn pipeline (TF-IDF, then logistic regression)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    analyzer = functools.lru_cache(maxsize=None)(
        functools.partial(features, settings=options.settings)
    )  # messages repeat (clones, templates): each distinct text is cut once per fit
    return make_pipeline(
        TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=options.min_df),
        LogisticRegression(C=options.C, max_iter=options.max_iter),
    )


def fit_pipeline(texts: Sequence[str], tones: Sequence[str], options: TrainingOptions):
    """The fitted scikit-learn pipeline; ``tones`` must hold at least two manners.

    The messages repeat (about 1,700 distinct ones among the logs' 21,600), so the logistic
    regression is fitted on each distinct (text, tone) once with its count as sample weight,
    and with scikit-learn's "balanced" class weights ``n / (classes * n_class)`` computed on
    every message: the same objective as a fit on every message, many times faster."""
    texts, tones = list(texts), list(tones)
    unknown = sorted(set(tones) - set(MANNERS))
    if unknown:
        raise ValueError(f"unknown tone label(s) {unknown}; allowed: {', '.join(MANNERS)}")
    if len(set(tones)) < 2:
        raise ValueError(f"need messages of at least two tones to train, got {sorted(set(tones))}")
    fitted = pipeline(options)
    vectorizer, model = fitted.named_steps.values()
    if options.min_df > len(texts):  # scikit-learn: "max_df corresponds to < documents than min_df"
        raise ValueError(
            f"min_df (--min-df): {options.min_df} messages an n-gram must occur in, but the "
            f"training messages number {len(texts)}; allowed: 1 to {len(texts)}"
        )
    matrix = vectorizer.fit_transform(texts)
    first: dict[tuple[str, str], int] = {}
    weight: Counter[tuple[str, str]] = Counter()
    for i, key in enumerate(zip(texts, tones, strict=True)):
        first.setdefault(key, i)
        weight[key] += 1
    per_class = Counter(tones)
    model.set_params(
        class_weight={c: len(tones) / (len(per_class) * n) for c, n in per_class.items()}
    )
    rows = list(first.values())
    model.fit(
        matrix[rows],
        [tones[i] for i in rows],
        sample_weight=np.array([weight[k] for k in first], dtype=np.float64),
    )
    return fitted


def from_pipeline(fitted, options: TrainingOptions, **provenance) -> LinearToneReader:
    """The :class:`LinearToneReader` holding a fitted pipeline's numbers."""
    import sklearn

    vectorizer, model = fitted.named_steps.values()
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    if len(model.classes_) == 2:  # binary: P(second) = sigmoid(z) = softmax([0, z])[1]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return LinearToneReader(
        labels=tuple(str(c) for c in model.classes_),
        settings=options.settings,
        vocabulary=tuple(vocabulary),
        idf=vectorizer.idf_.astype(np.float64),
        coef=coef,
        intercept=intercept,
        provenance={
            "model": "TfidfVectorizer(sublinear_tf=True) + LogisticRegression(multinomial, L2)",
            **options.to_dict(),
            "scikit-learn": sklearn.__version__,
            **provenance,
        },
    )


def fit_classifier(
    texts: Sequence[str], tones: Sequence[str], options: TrainingOptions | None = None
) -> LinearToneReader:
    """A reader trained on ``texts`` labelled ``tones`` (no confusion matrix yet: that needs
    held-out messages, :func:`scai.models.tone_reader.training.train_reader`)."""
    options = options or TrainingOptions()
    return from_pipeline(fit_pipeline(texts, tones, options), options, messages=len(texts))
