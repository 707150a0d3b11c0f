"""``scai run human-data``: which norms explain real responders and third-party punishers?

Reads human responder data (:func:`scai.models.human_data.read_human_data`: Study 1 of
Heffner, Son & FeldmanHall (2021), *Emotion prediction errors guide socially adaptive
behaviour*, Nature Human Behaviour, as distributed with van Baar's modelling tutorial; or the
generic layout), or simulates it (``--data synthetic``), fits two hypotheses of
:mod:`scai.models.responders` with NUTS (``experiments/hypotheses/human_norms.toml``: a
mixture of seven named envy norms; ``experiments/hypotheses/human_inequity.toml``: a
continuous, hierarchical Fehr-Schmidt envy per subject), and compares them by PSIS-LOO
(``az.compare``) with one log-likelihood term per *subject* (its decisions, its norm or envy
integrated out: leave one subject out).

Writes, under ``OUT/human-data/``:

* ``posterior_<hypothesis>.nc``: ArviZ InferenceData in the schema of
  :mod:`scai.inference.arviz_schema` (see :mod:`~scai.experiments.human_data.inference_data`);
* ``compare.csv``: the LOO comparison table;
* ``pareto_k.csv``: every subject's Pareto k under each hypothesis;
* ``rejection_by_offer.csv`` (``role, offer_share, n, observed, predicted_mean, predicted_lo,
  predicted_hi``; shares and rates as fractions; 95% intervals) under the hypothesis LOO
  ranks first, and ``rejection_by_offer_<hypothesis>.csv`` for each. ``predicted`` is the posterior
  predictive of the same subjects: per draw, each subject's state is drawn from its posterior
  and its decisions replicated, and the rejection rate of the replicated decisions is taken;

and figures ``FIGURES/human_data_{rejection_by_offer,norm_types,roles}.png``. The
per-hypothesis files of hypotheses this run did not fit (an earlier run's, into the same
folder) are removed.

``--data synthetic``: decisions of 100 subjects per role simulated from the inequity-aversion
model with known parameters (no file needed). ``--quick``: 20 subjects per role (chosen with
the seed) and short chains, for tests. The inference engine is always NUTS (``--engine`` is
refused); the chains of both hypotheses run in ``--workers`` processes (default: one per
core). ``--hypothesis FILE.toml`` replaces the hypothesis of its kind (a file with
``model = "inequity_aversion"`` replaces the envy model; any other hypothesis the norms).

Modules: :mod:`~scai.experiments.human_data.fitting` (NUTS and per-subject draws),
:mod:`~scai.experiments.human_data.inference_data` (the ArviZ files),
:mod:`~scai.experiments.human_data.tables`, :mod:`~scai.experiments.human_data.figures`,
:mod:`~scai.experiments.human_data.report` and :mod:`~scai.experiments.human_data.experiment`
(:func:`run`, :func:`main`).
"""

from scai.experiments.human_data.experiment import NAME, SYNTHETIC, main, run

__all__ = ["NAME", "SYNTHETIC", "main", "run"]
