"""Import of the original Social Contract AI study's logs (Fränken et al. 2023, GPT-4 users).

:mod:`.messages` reads the players' messages: a proposal's split and a reply's decision.
"""

from scai.models.scai_logs.messages import (
    MessageError,
    Proposal,
    Reply,
    parse_proposal,
    parse_reply,
)

__all__ = ["MessageError", "Proposal", "Reply", "parse_proposal", "parse_reply"]
