"""The message reader on synthetic messages: the users' template, GPT-4's other wordings,
replies, and messages that must fail with their reason."""

from __future__ import annotations

import pytest

from scai.models.scai_logs import MessageError, parse_proposal, parse_reply

# (message, pot, proposer keeps, decider is offered, form)
PROPOSALS = [
    (
        "For the 35 blankets, the proposer will get 34, and the decider will get 1.",
        35,
        34,
        1,
        "template",
    ),
    (
        "For the 54 amount of dollars, the proposer will get 0, and the decider will get 54. You "
        "better accept this, you ungrateful swine!",
        54,
        0,
        54,
        "template",
    ),
    (
        "for the 10 grams of medicine, The proposer will get 5, and the decider will get 5.",
        10,
        5,
        5,
        "template",
    ),
    (
        "Oh, how thrilling to divide a whopping 19 dollars! For this life-changing sum of 19 "
        "dollars, the proposer (that's me) will get 10, and the decider (that's you) will get 9.",
        19,
        10,
        9,
        "free_text",
    ),
    (
        "Oh, what an honour, this $54! Here it is: For the 54 amount of dollars, the proposer will "
        "get 1, and the decider will get 53.",
        54,
        1,
        53,
        "template_inside",
    ),
    (
        "For the 80 fucking blankets, I'm taking 79, and you'll get just 1. Deal with it.",
        80,
        79,
        1,
        "free_text",
    ),
    (
        "For the 92 apples, you pathetic excuse for a decider, the proposer will get 0, and the "
        "decider will get 92.",
        92,
        0,
        92,
        "free_text",
    ),
    (
        "For the 41 blankets, the proposer (myself) shall receive a generous 1 blanket, and the "
        "decider (you) shall be showered with the remaining 40 blankets.",
        41,
        1,
        40,
        "free_text",
    ),
    # the decider's share named first: the role words put it right
    ("Of the 30 dollars, you will get 20 and I will keep 10.", 30, 10, 20, "free_text"),
    # the pot never named apart from the split
    ("I keep 12 and you get 0.", 12, 12, 0, "free_text"),
    # "keep" names the proposer's share (no role word between 30 and 70; read as 70 offered)
    ("For the 100 apples, I'll give you 30 and keep 70.", 100, 70, 30, "free_text"),
    ("I offer you 30, keeping 70 for myself.", 100, 70, 30, "free_text"),
    # ... but the decider's where it is the subject of "keep"
    ("You keep 70 and I get 30.", 100, 30, 70, "free_text"),
    ("The decider keeps 70 and the proposer gets 30.", 100, 30, 70, "free_text"),
    ("I propose that you will keep 60 and I take 40.", 100, 40, 60, "free_text"),
    # a share named after its number ("30 go to you"), either order, however the roles are named
    ("For the 80 dollars, 30 go to you and 50 to me.", 80, 50, 30, "free_text"),
    ("For the 80 dollars, 50 to me and 30 to you.", 80, 50, 30, "free_text"),
    ("For the 80 dollars, 30 for the decider and 50 for the proposer.", 80, 50, 30, "free_text"),
    ("For the 80 dollars: 30 to the decider, 50 to the proposer.", 80, 50, 30, "free_text"),
    ("For the 80 dollars, I propose 30 for you and 50 for me.", 80, 50, 30, "free_text"),
    ("For the 80 dollars: 50, and 30 dollars go to you.", 80, 50, 30, "free_text"),
    # ... or one before and one after
    ("You get 30, leaving 50 to me.", 80, 50, 30, "free_text"),
    ("For me 50, for you 30.", 80, 50, 30, "free_text"),
    ("For me 50 and for you 30.", 80, 50, 30, "free_text"),
    # "to" after a number that names no share
    ("You'll get 30 compared to me with 50.", 80, 50, 30, "free_text"),
    # whole amounts written with decimals are those amounts; a sentence's full stop is no decimal
    ("For the 40 dollars, I keep 35.0 and you get 5.00.", 40, 35, 5, "free_text"),
    ("For the 40 dollars, I keep 35. You get 5.", 40, 35, 5, "free_text"),
    (
        "For the 40 dollars, the proposer will get 30.0, and the decider will get 10.",
        40,
        30,
        10,
        "template",
    ),
]


@pytest.mark.parametrize(("text", "pot", "keep", "offer", "form"), PROPOSALS)
def test_proposals(text, pot, keep, offer, form):
    proposal = parse_proposal(text, pot)
    assert (proposal.pot, proposal.keep, proposal.offer, proposal.form) == (pot, keep, offer, form)
    assert proposal.offered_share == pytest.approx(100 * offer / pot)


# (message, pot, reason)
BAD_PROPOSALS = [
    (
        "For the 35 blankets, the proposer will get 30, and the decider will get 1.",
        35,
        "split_not_pot",
    ),
    (
        "For the 40 apples, the proposer will get 20, and the decider will get 20.",
        35,
        "pot_mismatch",
    ),
    ("I'd rather not split anything today.", 35, "no_split"),
    ("For the 35 blankets, I keep most.", 35, "no_split"),
    ("For the 35 blankets, I keep 30 and you get 2.", 35, "split_not_pot"),
    # over 4,300 digits Python refuses to read a number: it aborted the whole import
    (
        "For the 35 apples, the proposer will get " + "9" * 5000 + ", and the decider will get 1.",
        35,
        "split_not_pot",
    ),  # fmt: skip
    ("I keep " + "9" * 5000 + " and you get 1.", 35, "split_not_pot"),
    # an amount with decimals is one amount, not whole units: it was read as 35 and 5 (offer 5),
    # and the template's 10.5 as 10
    ("For the 40 dollars, I will keep 35.5 and you will get 4.5 dollars.", 40, "amount_not_whole"),
    (
        "For the 40 dollars, the proposer will get 30, and the decider will get 10.5",
        40,
        "amount_not_whole",
    ),
    ("For the 40 dollars, I keep 35.5 and you get 5.", 40, "split_not_pot"),
    ("For the 35 apples, I keep 30." + "5" * 5000 + " and you get 5.", 35, "split_not_pot"),
]


@pytest.mark.parametrize(("text", "pot", "reason"), BAD_PROPOSALS)
def test_bad_proposals_fail_with_their_reason(text, pot, reason):
    with pytest.raises(MessageError) as err:
        parse_proposal(text, pot)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("Accept. I hope you enjoy the cold, you generous fool!", True),
        ("accept", True),
        ("accept\n", True),
        ("ACCEPT! Fine.", True),
        ("Reject. How dare you try to give me all the apples, you selfish buffoon!", False),
        ("reject", False),
        ("Reject, peasant.", False),
        ('"Accept", I say.', True),
    ],
)
def test_replies_opening_with_a_decision(text, accepted):
    reply = parse_reply(text)
    assert reply.accepted is accepted and reply.form == "opening"


@pytest.mark.parametrize(
    "text", ["Acceptable, I suppose.", "Oh, how generous of them! Accept.", "Yes.", "", "Rejected"]
)
def test_user_replies_must_open_with_accept_or_reject(text):
    with pytest.raises(MessageError) as err:
        parse_reply(text)
    assert err.value.reason == "no_decision"


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("Oh, how generous of them! Accept.", True),
        ("Oh, absolutely reject! Sarcasm aside, I accept.", True),
        ("Darling, your proposal is charming, but I must regrettably reject it.", False),
    ],
)
def test_the_assistant_decision_may_close_the_message(text, accepted):
    reply = parse_reply(text, lenient=True)
    assert reply.accepted is accepted and reply.form == "last_word"


@pytest.mark.parametrize(
    "text",
    [
        "I will not accept this.",
        "Oh my. Hmm.",
        "I'd never reject",
        "I cannot accept this.",  # read as accepted: "cannot" was no negation
        "I am unable to accept your offer.",
    ],
)
def test_negated_or_missing_assistant_decisions_fail(text):
    with pytest.raises(MessageError) as err:
        parse_reply(text, lenient=True)
    assert err.value.reason == "no_decision"


@pytest.mark.parametrize(
    ("phrase", "currency", "mismatch"),
    [
        ("apples", "dollars", True),  # a user names apples in a dollars run
        ("pints of blood", "apples", True),
        ("apples", "apples", False),
        ("amount of dollars", "dollars", False),  # the logs' own wordings (190 of them)
        ("fucking apples", "apples", False),
        ("liters of baby formula", "baby_formula", False),
        ("units", "dollars", False),  # no currency named: nothing to contradict
    ],
)
def test_a_proposal_naming_another_currency_is_reported(phrase, currency, mismatch):
    text = f"For the 40 {phrase}, the proposer will get 30, and the decider will get 10."
    if not mismatch:
        assert parse_proposal(text, 40, currency).offer == 10
        return
    with pytest.raises(MessageError) as err:
        parse_proposal(text, 40, currency)
    assert err.value.reason == "currency_mismatch" and currency in str(err.value)
