"""``scai run original-logs``: the Bayesian assistant fitted on the original study's GPT-4
users, epoch by epoch, beside the users and the GPT-4 assistant (see :mod:`.experiment`)."""

from scai.experiments.original_logs.experiment import NAME, main, run

__all__ = ["NAME", "main", "run"]
