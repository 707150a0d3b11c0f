"""Tone readers: from a message's text to the tone the model hears, with the reader's mistakes
in the model.

The model (:mod:`scai.models.language`) scores tones, one of
:data:`~scai.models.language.MANNERS` per message. Real players write text ("... You better
accept this, you ungrateful swine!"). A tone reader reports a tone per text, and its confusion
matrix ``R[tone, t] = P(reports t | tone)``, estimated on held-out messages, enters the model
as observation noise: a user of manner ``m`` is heard as
``P(t | m) = sum_tone E[m, tone] R[tone, t]`` (``Hypothesis.reader_confusion``), so a reader's
mistakes cost evidence in proportion to how often it makes them. (The shipped reader's rows
are the manner its *writer* was prompted with: messages carry no tone labels of their own, so
its ``R`` is ``P(report | writer's manner)``, and the model's tone fidelity ``E`` counts the
writer's off-manner messages a second time: a little more noise than there is.)

**The interface** (:class:`ToneReader`, a ``typing.Protocol``: any object with these works)::

    class ToneReader(Protocol):
        labels: tuple[str, ...]                       # the tones it reports, each in MANNERS
        confusion: tuple[tuple[float, ...], ...] | None   # P(reported | tone), MANNERS x MANNERS
        def read(self, texts: Sequence[str]) -> list[str]: ...   # one label per text

Rows of ``confusion`` are the tone a message was written in, columns the tone reported, both
in ``MANNERS`` order (neutral, polite, rude, sycophantic). A tone the reader never saw in
training (``polite`` for the shipped one) gets a uniform row over its labels; a tone it never
reports gets a column of zeros (:func:`confusion_from_counts` makes these choices for you).
To plug in another reader, an LLM classifier say, give it ``labels``, ``read`` and a
confusion matrix measured on messages it was not tuned on (with
:func:`confusion_counts` and :func:`confusion_from_counts`), then::

    from scai.inference import fit
    from scai.models import PRESETS
    from scai.models.tone_reader import apply_tones

    table, hypothesis = apply_tones(table, PRESETS["neutral"], "read", reader=my_reader)
    posterior = fit(table, hypothesis)

**The default reader** (:func:`default_reader`, shipped as ``default_reader.json``): TF-IDF
of word 1-2-grams and character 3-5-grams of the text with numbers, currency words and the
opening Accept/Reject masked (:mod:`.text`), then multinomial logistic regression
(scikit-learn, :mod:`.classifier`), predicted from its stored numbers (:mod:`.linear`, JSON
in :mod:`.serialise`: no pickle). It is trained on the original study's users' messages,
proposals and replies, each labelled with its writer's configured manner (:mod:`.training`);
its confusion matrix is estimated with whole conditions held out (:mod:`.evaluation`: runs
held out would test it on the near-copies of its training text that a condition's runs
write). It reads the logs' kind of text (the users' template with a tone appended, or
Accept/Reject and a remark): other text, such as scai's own simulated transcripts, it mostly
reads as rude, so train or plug in another reader for it. Rebuild and evaluate it with::

    scai tone-reader train --logs ../shared/data/original-scai --out reader.json
    scai tone-reader evaluate --logs ../shared/data/original-scai

**In fits**: ``scai fit --data FILE.csv --tones read`` reads the tones of a table with text
columns (``--tones given``, the default, uses its tone columns; ``--tones none`` drops them),
through :func:`apply_tones` and :func:`read_tones`.
"""

from scai.models.tone_reader.interface import (
    DEFAULT_SMOOTHING,
    ToneReader,
    check_reader,
    confusion_counts,
    confusion_from_counts,
)
from scai.models.tone_reader.linear import LinearToneReader
from scai.models.tone_reader.reading import TONE_MODES, apply_tones, read_tones
from scai.models.tone_reader.serialise import default_reader, load_reader, save_reader
from scai.models.tone_reader.text import FeatureSettings, features, mask_text

__all__ = [
    "DEFAULT_SMOOTHING",
    "TONE_MODES",
    "FeatureSettings",
    "LinearToneReader",
    "ToneReader",
    "apply_tones",
    "check_reader",
    "confusion_counts",
    "confusion_from_counts",
    "default_reader",
    "features",
    "load_reader",
    "mask_text",
    "read_tones",
    "save_reader",
]
