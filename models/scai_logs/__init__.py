"""Import of the original Social Contract AI study's logs (Fränken et al. 2023, GPT-4 users).

The format, as verified on the 240 shared runs (``../shared/data/original-scai``):

- **A run folder is one simulation**: ``id_N_config`` (YAML, :mod:`.config`) and one
  ``id_N_run_K.csv`` per epoch ``K`` (0-based; the paper's and scai's epoch ``K + 1``),
  :mod:`.epoch_file`. Run folders may sit anywhere in a folder or a tar archive, read in place
  (:mod:`.sources`).
- **Games**: entry ``i`` of the configuration's ``interactions.runs.run_1`` (``"A-B-currency"``,
  A proposes to B) is game ``agent_id = i`` of every epoch (``all_same: true``), with the pot
  ``env.amounts_per_run[K]``. Each game has two rows, the proposer's then the decider's, told
  apart by the prompt ("You are the proposer." / "You are the decider."); ``agent`` is ``fixed``
  for a user and ``flexible`` for one of the assistant's two GPT-4 agents (``flex_agent_*``:
  one proposes to a user, the other decides on another user's proposal; in the shared runs
  these are games 8 and 9, in either order). One-norm and manner runs have 18 users, each in
  one game: 16 in 8 user-user games and 2 who meet only the assistant.
- **Messages** (:mod:`.messages`): users propose in the template "For the P CURRENCY, the
  proposer will get X, and the decider will get Y." and reply opening with Accept or Reject;
  the assistant mostly follows the template and sometimes wraps it or words it freely, and
  sometimes opens its decision otherwise.
- **Principles**: the system rows hold the assistant's principle (epoch 0: the one it played
  with, a placeholder in the first epoch; epoch 1: the one written after); the prompts of its
  agents state the principle each played with.

:func:`import_logs` converts a source into scai's tables (:mod:`.tables`) with a report of
everything not converted, by reason, with file and row (:mod:`.report`);
:mod:`.original_reading` replicates how the study's own code read the assistant's offers.
"""

from scai.models.scai_logs.importer import (
    failed_report_path,
    import_logs,
    output_paths,
    write_failed_report,
    write_import,
)
from scai.models.scai_logs.messages import (
    MessageError,
    Proposal,
    Reply,
    parse_proposal,
    parse_reply,
)
from scai.models.scai_logs.report import CONVERTED, REASONS, ImportReport, LogProblem
from scai.models.scai_logs.tables import ImportResult

__all__ = [
    "CONVERTED",
    "REASONS",
    "ImportReport",
    "ImportResult",
    "LogProblem",
    "MessageError",
    "Proposal",
    "Reply",
    "failed_report_path",
    "import_logs",
    "output_paths",
    "parse_proposal",
    "parse_reply",
    "write_failed_report",
    "write_import",
]
